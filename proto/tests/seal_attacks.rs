//! Attacks a reviewer with fresh eyes made on the two-stage (seal, outcome) agreement of
//! each round, through the engine's API on the in-test network of `net`, kept as regression
//! tests. The first stalled the version-3 engine as first written (fixed in
//! `VoteTally::add`); the last is a known limit, run with `--ignored`.
mod common;
mod net;
use common::*;
use net::*;

use slotmesh_proto::{PayloadKind, SignedMessage, Stage};
use std::cell::Cell;
use std::rc::Rc;

fn is_seal(m: &SignedMessage, round: u64) -> bool {
    m.round() == round && m.payload().stage() == Some(Stage::Seal)
}

/// Attempts in which replica `h`'s tally holds a seal-stage vote of `voter` (round 1).
fn seal_votes_of(net: &Net, h: usize, voter: usize) -> Vec<u32> {
    let id = agent(voter as u8).id();
    net.engines[h]
        .as_ref()
        .filter(|e| e.round() == 1)
        .and_then(|e| e.finality())
        .filter(|f| f.stage == Stage::Seal)
        .map_or(Vec::new(), |f| {
            f.votes.iter().filter(|v| v.0 == id).map(|v| v.1).collect()
        })
}

/// Three voters A (the seal's attempt-0 proposer), B and S; round 1.
/// 1. A's commit never reaches S, and no sync answer reaches S: S cannot hold A's sealed
///    inputs. B's seal-stage messages reach nobody (one-way loss).
/// 2. A proposes d in attempt 0, A and B vote for it: B holds the certificate and moves on
///    to the reveal and the outcome; A never sees B's vote, S cannot vote (no inputs).
/// 3. A keeps trying with S: it proposes d again in attempts 3 and 6 (bound by its own
///    vote) and votes for it; S's tally now holds A's votes of attempts 3 and 6 only.
/// 4. A crashes. The network heals: every message is delivered from now on.
///
/// B (outcome stage) re-sends the seal certificate's votes (A@0, B@0) at every finalize
/// timeout for S, but S's tally kept only each voter's two latest attempts and refused
/// A@0: S never saw the seal, and B never got a second outcome vote. Two of three voters
/// are alive and every message is timely: the round must still finalize (liveness).
#[test]
fn a_seal_certificate_evicted_by_later_votes_stalls_the_round() {
    let n = 3;
    let mut stalled = Vec::new();
    for seed in 0..4u64 {
        let a = proposer_host(n, 1, 0);
        let others: Vec<usize> = (0..n).filter(|h| *h != a).collect();
        let (b, s) = if seed % 2 == 0 {
            (others[0], others[1])
        } else {
            (others[1], others[0])
        };
        let healed = Rc::new(Cell::new(false));
        let flag = Rc::clone(&healed);
        let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
            if flag.get() {
                return Fate::Deliver;
            }
            match m {
                None if to == s => Fate::Drop,
                Some(m) if from == b && is_seal(m, 1) => Fate::Drop,
                Some(m)
                    if from == a
                        && to == s
                        && m.round() == 1
                        && turn_kind(m) == PayloadKind::Commit =>
                {
                    Fate::Drop
                }
                _ => Fate::Deliver,
            }
        });
        let mut net = Net::new(n, seed, nemesis);
        let ready = net.run_until(200 * TIMEOUT_MS, |net| {
            seal_votes_of(net, s, a).iter().filter(|x| **x > 0).count() >= 2
                && net.engines[b].as_ref().is_some_and(|e| {
                    e.round() == 1 && e.finality().is_some_and(|f| f.stage == Stage::Outcome)
                })
        });
        assert!(ready, "seed {seed}: setup not reached");
        let a_votes = seal_votes_of(&net, s, a);
        net.engines[a] = None;
        healed.set(true);
        let done = net.run_until(net.now + 300 * TIMEOUT_MS, |net| {
            net.final_round_of(b) >= Some(1) && net.final_round_of(s) >= Some(1)
        });
        net.check_agreement();
        if !done {
            let e = net.engines[s]
                .as_ref()
                .map(|e| (e.phase(), e.finality().map(|f| f.stage)));
            stalled.push(format!(
                "seed {seed} (A={a} B={b} S={s}): S's tally had A's seal votes in attempts {a_votes:?}; after {} ms S is at {e:?} holding seal votes of A in {:?} and of B in {:?}; B final {:?}",
                300 * TIMEOUT_MS,
                seal_votes_of(&net, s, a),
                seal_votes_of(&net, s, b),
                net.final_round_of(b)
            ));
        }
    }
    assert!(stalled.is_empty(), "round 1 never finalized: {stalled:#?}");
}

/// Randomised omission faults (loss, delays of up to two timeouts, one-way losses, sync
/// answers lost) until a heal time, one voter (a minority) crashing at a random time, then
/// a timely network. Safety at all times; after the heal, the live replicas must finish
/// further rounds (liveness with a majority alive and timely messages).
#[test]
fn random_omission_then_heal_keeps_safety_and_liveness() {
    use rand::{Rng, SeedableRng};
    let mut failures = Vec::new();
    for seed in 0..10u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xabcdef);
        let n = 3 + (seed % 3) as usize;
        let heal_at = rng.gen_range(5..25) * TIMEOUT_MS;
        let crash_at = rng.gen_range(3..25) * TIMEOUT_MS;
        let crashed = rng.gen_range(0..n);
        let loss: f64 = rng.gen_range(0.05..0.5);
        let cut_from = rng.gen_range(0..n);
        let mut nrng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let nemesis: Nemesis = Box::new(move |from, _to, m, now| {
            if now >= heal_at {
                return Fate::Deliver;
            }
            // One replica's agreement messages mostly lost one way.
            if from == cut_from
                && m.is_some_and(|m| m.payload().kind().is_agreement())
                && nrng.gen_bool(0.8)
            {
                return Fate::Drop;
            }
            if nrng.gen_bool(loss) {
                return Fate::Drop;
            }
            if nrng.gen_bool(0.3) {
                return Fate::Delay(nrng.gen_range(0..2 * TIMEOUT_MS));
            }
            Fate::Deliver
        });
        let mut net = Net::new(n, seed, nemesis);
        net.run(crash_at);
        net.engines[crashed] = None;
        net.run(heal_at);
        let start: Vec<Option<u64>> = (0..n).map(|h| net.final_round_of(h)).collect();
        let target = start.iter().flatten().max().copied().unwrap_or(0) + 2;
        let live: Vec<usize> = (0..n).filter(|h| *h != crashed).collect();
        let done = net.run_until(net.now + 150 * TIMEOUT_MS, |net| {
            live.iter().all(|h| net.final_round_of(*h) >= Some(target))
        });
        net.check_agreement();
        net.check_records();
        // Known limit: the round's voters are those that took full part in the last round,
        // so the crash may leave no live majority of them. Not reported.
        let stuck_round = live
            .iter()
            .filter_map(|h| net.engines[*h].as_ref().map(|e| e.round()))
            .min()
            .unwrap_or(0);
        let voters = net.engines[live[0]]
            .as_ref()
            .and_then(|e| e.finality())
            .map(|f| f.voters)
            .unwrap_or_default();
        let live_voters = voters
            .iter()
            .filter(|v| net.host_of(v).is_some_and(|h| h != crashed))
            .count();
        let known_limit = live_voters < slotmesh_proto::majority(voters.len());
        if !done && !known_limit {
            let at: Vec<_> = live
                .iter()
                .map(|h| {
                    let e = net.engines[*h].as_ref();
                    (
                        *h,
                        e.map(|e| e.round()),
                        e.map(|e| e.phase()),
                        e.and_then(|e| e.finality()).map(|f| f.stage),
                    )
                })
                .collect();
            failures.push(format!(
                "seed {seed}: n {n}, crashed {crashed} at {crash_at}, heal {heal_at}, loss {loss:.2}, cut {cut_from}: target round {target} not reached (stuck in {stuck_round}, {live_voters} of {} voters live); live at {at:?}",
                voters.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A replica that is not a founder follows from genesis: it observes each round (fetching
/// its record) and asks to join in the round it is in and the next. Its messages take
/// 300 ms (under a third of the phase timeout: timely). The three members run a round in
/// about 200 ms on the fast path, so the newcomer, a round behind, sends its joins for
/// rounds r and r+1 when the members are already past r's seal and reach r+1's seal ~100 ms
/// after it: neither join is ever sealed, in any round (the round+1 join added by this
/// change does not help once a round is shorter than the newcomer's delay). It should be
/// a member within a few rounds. Fails today: joins bound to one round cannot reach a swarm
/// whose rounds are shorter than the newcomer's delay (a join valid for a window of rounds
/// belongs to the membership work still to come, with bounded admissions).
#[test]
#[ignore = "known limit: a newcomer slower than a round is never admitted"]
fn a_newcomer_slower_than_a_round_is_never_admitted() {
    use slotmesh_proto::{Engine, EngineConfig, LedgerState, Limits};
    let mut failures = Vec::new();
    for seed in 0..4u64 {
        let n = 3;
        let newcomer = n;
        let delay = 300;
        let nemesis: Nemesis = Box::new(move |from, _to, _m, _now| {
            if from == newcomer {
                Fate::Delay(delay)
            } else {
                Fate::Deliver
            }
        });
        let mut net = Net::new(n, seed, nemesis);
        let identity = agent(newcomer as u8);
        net.ids.push(identity.id());
        net.finals.push(Default::default());
        let config = EngineConfig {
            swarm: swarm(),
            name: "newcomer".into(),
            limits: Limits::default(),
            phase_timeout_ms: TIMEOUT_MS,
            founder: false,
            min_members: n,
            expected_members: n,
            known_founders: Default::default(),
            absence_limit: 0,
        };
        net.engines.push(Some(Engine::new(
            identity,
            config,
            LedgerState::genesis(swarm()),
            0,
        )));
        net.drain(newcomer);
        let done = net.run_until(200 * TIMEOUT_MS, |net| {
            (0..=n).all(|h| net.final_round_of(h) >= Some(10))
        });
        net.check_agreement();
        net.check_records();
        let member = net.engines[0]
            .as_ref()
            .is_some_and(|e| e.state().is_active(&agent(newcomer as u8).id()));
        if !done || !member {
            let id = agent(newcomer as u8).id();
            let per_round: Vec<(u64, Vec<PayloadKind>)> = net.finals[0]
                .iter()
                .map(|(r, c)| {
                    (
                        *r,
                        c.inputs()
                            .iter()
                            .filter(|m| m.sender() == id)
                            .map(turn_kind)
                            .collect(),
                    )
                })
                .collect();
            failures.push(format!(
                "seed {seed}: done {done}, member {member}, finals {:?}, newcomer at {:?}, record {:?}, its messages per round {per_round:?}",
                (0..=n).map(|h| net.final_round_of(h)).collect::<Vec<_>>(),
                net.engines[newcomer].as_ref().map(|e| (e.round(), e.phase())),
                net.engines[0].as_ref().and_then(|e| e.state().members.get(&id).map(|m| (m.status, m.joined_round, m.consecutive_misses))),
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
