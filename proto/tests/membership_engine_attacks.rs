//! Attacks on the membership of protocol version 6 through `Engine` replicas on the in-test
//! network of `net/mod.rs` (one-way links, lost commits and reveals, crashes, a censoring
//! minority, members cut off and back, join variants seen by some replicas only). The
//! rule-level attacks are in `membership_attacks.rs`; same reviewer, same conventions.
//!
//! Failing on the code this was written against: 6a (a one-way link makes the seal proposer
//! the only voter; its crash stalls all), 6b (lost reveals punish honest members), 6c (two
//! voters of five suspend members that take part), 6d (one lost commit, then one crash of
//! three, stalls the swarm). Passing then: 4b, 5a, 5b. Fixed since: a voter that missed one
//! round stays while those that took part are a majority of the voters kept (6d); a voter
//! does not vote for a fresh value that leaves out its own claim, commit, leave or reveal,
//! and sends them again (6b). 6a and 6c stay known limits (ignored, docs/PROTOCOL.md §7): a
//! censored value the proposer itself (or a minority) voted for binds the next proposers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod net;

use common::*;
use net::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{
    admission_limit, AgentId, LedgerState, Limits, MemberStatus, PayloadKind, SignedMessage,
};
use std::collections::BTreeSet;

// ----- engine-level helpers -----

fn all_final(net: &Net, round: u64, live: &[usize]) -> bool {
    live.iter().all(|h| net.finals[*h].contains_key(&round))
}

fn state_at(net: &Net, h: usize) -> &LedgerState {
    net.engines[h].as_ref().unwrap().state()
}

fn is_turn(m: &SignedMessage) -> bool {
    !m.payload().kind().is_agreement()
}

// ----- 5/6. the engine: one-way links, reveals, crashes, rejoins -----

/// In `round`, the link into host `b` carries none of the others' turns of the `dropped`
/// kinds, and `b`'s own turn of kind `delayed` reaches the others 300 ms late.
fn starving(
    b: usize,
    round: u64,
    dropped: &'static [PayloadKind],
    delayed: PayloadKind,
) -> Nemesis {
    Box::new(move |from, to, m, _now| match m {
        Some(m) if m.round() == round && is_turn(m) => {
            let kind = m.payload().kind();
            if to == b && from != b && dropped.contains(&kind) {
                Fate::Drop
            } else if from == b && kind == delayed {
                Fate::Delay(300)
            } else {
                Fate::Deliver
            }
        }
        _ => Fate::Deliver,
    })
}

/// Attack 6a (and 3, 5). §7: "Crash faults of a minority never stall the swarm" and
/// one-way links are in the fault model. In round R the link into the round's attempt-0
/// proposer `b` (one of three founders and voters) carries no claim or commit of the other
/// two for that round (a one-way fault; a byzantine `b` that ignores them is the same), and
/// `b`'s commit reaches them a little late. `b` times out, seals only its own turns; the
/// other voters fetch and vote for those inputs (nothing makes a voter refuse a seal
/// without its own commit). They missed round R, so the rule keeps only `b` as a voter
/// (a voter that misses a round stops voting, and nobody else has the streak to be
/// added). Then `b` crashes: one crash of three, and the swarm never finalizes again.
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §7): the proposer's own vote for its censored value binds the next proposer whose majority of promises includes it"]
fn a_one_way_link_into_the_seal_proposer_makes_it_the_only_voter_whose_crash_stalls_all() {
    let n = 3;
    let big_r = 3u64;
    let mut report = Vec::new();
    for seed in 1..=3u64 {
        let b = proposer_host(n, big_r, 0);
        let nemesis = starving(
            b,
            big_r,
            &[PayloadKind::Claim, PayloadKind::Commit],
            PayloadKind::Commit,
        );
        let mut net = Net::known_founders(n, seed, nemesis);
        let everyone: Vec<usize> = (0..n).collect();
        assert!(net.run_until(100 * TIMEOUT_MS, |net| all_final(net, big_r, &everyone)));
        let live: Vec<usize> = (0..n).filter(|h| *h != b).collect();
        let after = state_at(&net, live[0]).clone();
        let v = voters(&after);
        // b crashes.
        net.engines[b] = None;
        let start = net.now;
        net.run_until(start + 120 * TIMEOUT_MS, |net| {
            all_final(net, big_r + 3, &[live[0], live[1]])
        });
        net.check_agreement();
        let reached: Vec<Option<u64>> = live.iter().map(|h| net.final_round_of(*h)).collect();
        report.push(format!(
            "seed {seed}: voters after round {big_r}: {} (b = host {b} among them: {}); \
             after b crashed the two live replicas' last final rounds are {reached:?} \
             after {} s",
            v.len(),
            v.contains(&net.ids[b]),
            (net.now - start) / 1000
        ));
        if reached.iter().any(|r| r.is_none_or(|r| r < big_r + 3)) {
            panic!(
                "a crash of one of three members stalled the swarm: {}",
                report.join("; ")
            );
        }
    }
}

/// Attack 6c (a byzantine minority). Five founders; two of them (`b`, the attempt-0
/// proposer of round R, and `s`) ignore the other members' commits from round R on
/// (modelled by dropping those commits on the way into them: their engines are honest
/// otherwise). In round R `b` seals without the three honest commits and the honest voters
/// vote for it (attack 6a); the three missed R, so the next voters are `b` and `s` only,
/// who from then on seal no honest commit: the three honest members, which send every
/// turn of every round, miss round after round and are suspended (then removed at the
/// absence limit; a rejoin is undone 3 rounds later). §4 step 8 suspends a member
/// "missing 3 rounds"; none of them missed anything but the attackers' seals. (With one
/// attacker alone, attack 6a makes it the only voter and the same follows; the test
/// network cannot run a lone voter that waits for nobody, hence two.)
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §7): a censoring minority's value, once two voters accepted it, binds the next proposers"]
fn a_minority_of_two_voters_in_five_suspends_members_that_take_part_in_every_round() {
    let n = 5;
    let big_r = 3u64;
    let b = proposer_host(n, big_r, 0);
    let s = (0..n).find(|h| *h != b).unwrap();
    let attackers = [b, s];
    let nemesis: Nemesis = Box::new(move |from, to, m, _now| match m {
        Some(m) if m.round() >= big_r && m.payload().kind() == PayloadKind::Commit => {
            if attackers.contains(&to) && !attackers.contains(&from) {
                Fate::Drop
            } else if attackers.contains(&from) && m.round() == big_r {
                Fate::Delay(300)
            } else {
                Fate::Deliver
            }
        }
        _ => Fate::Deliver,
    });
    let mut net = Net::known_founders(n, 4, nemesis);
    let honest: Vec<usize> = (0..n).filter(|h| !attackers.contains(h)).collect();
    let ids: Vec<AgentId> = honest.iter().map(|h| net.ids[*h]).collect();
    let suspended = net.run_until(200 * TIMEOUT_MS, |net| {
        net.engines[b].as_ref().is_some_and(|e| {
            ids.iter()
                .all(|id| e.state().members.get(id).is_some_and(|m| m.is_suspended()))
        })
    });
    net.check_agreement();
    let state = state_at(&net, b);
    let statuses: Vec<(usize, MemberStatus)> = honest
        .iter()
        .map(|h| (*h, state.members[&net.ids[*h]].status))
        .collect();
    let v = voters(state);
    assert!(
        !suspended,
        "the three honest members, which sent every turn, were all suspended by round {} \
         (host, status): {statuses:?}; the voters are {} of 5, attackers {:?} only: {}",
        state.next_round - 1,
        v.len(),
        attackers,
        v == attackers
            .iter()
            .map(|h| net.ids[*h])
            .collect::<BTreeSet<_>>()
    );
}

/// Attack 6d. The two-voter limit of §7, reached from three live members by one lost
/// message: in round R one member's commit is lost (so it misses that round, nothing
/// else); the rule drops it from the voters for the two rounds it takes to earn the vote
/// again, and a crash of either of the two others in that time stalls the swarm for good
/// (round R+1 needs both of its two voters). §7: "Crash faults of a minority never stall
/// the swarm"; one crash of three, and one lost message.
#[test]
fn one_lost_commit_then_one_crash_of_three_stalls_the_swarm() {
    let n = 3;
    let big_r = 3u64;
    let late = 2usize;
    let nemesis: Nemesis = Box::new(move |from, _to, m, _now| match m {
        Some(m)
            if from == late && m.round() == big_r && m.payload().kind() == PayloadKind::Commit =>
        {
            Fate::Drop
        }
        _ => Fate::Deliver,
    });
    let mut net = Net::known_founders(n, 6, nemesis);
    let everyone: Vec<usize> = (0..n).collect();
    assert!(net.run_until(100 * TIMEOUT_MS, |net| all_final(net, big_r, &everyone)));
    let v = voters(state_at(&net, 0));
    // One of the two voters crashes.
    let crashed = (0..n).find(|h| *h != late).unwrap();
    net.engines[crashed] = None;
    let live = [(0..n).find(|h| *h != late && *h != crashed).unwrap(), late];
    let start = net.now;
    net.run_until(start + 120 * TIMEOUT_MS, |net| {
        all_final(net, big_r + 3, &live)
    });
    net.check_agreement();
    let reached: Vec<Option<u64>> = live.iter().map(|h| net.final_round_of(*h)).collect();
    assert!(
        reached.iter().all(|r| r.is_some_and(|r| r >= big_r + 3)),
        "after host {late} missed round {big_r} (its commit lost) the voters were {} of 3; \
         host {crashed} crashed and the two live replicas' last final rounds are \
         {reached:?} after {} s",
        v.len(),
        (net.now - start) / 1000
    );
}

/// Attack 6b. §3 and §5: a commit without its reveal is `Withheld` (deposit forfeited,
/// trust halved twice); the record "cannot tell it from a withholder" after a *crash*. Here
/// nobody crashes: two members reveal on time and every replica but the outcome proposer
/// receives their reveals (the link into the proposer loses them: a one-way fault, or a
/// byzantine proposer that ignores them). The proposer resolves without them at its reveal
/// timeout and the others vote for its value: two honest members are punished (and lose
/// their votes) for a fault that is not theirs.
#[test]
fn reveals_lost_on_the_way_to_the_outcome_proposer_punish_honest_members() {
    let n = 3;
    let big_r = 3u64;
    for seed in 1..=3u64 {
        let b = proposer_host(n, big_r, 0);
        let nemesis = starving(b, big_r, &[PayloadKind::Reveal], PayloadKind::Reveal);
        let mut net = Net::known_founders(n, seed, nemesis);
        let everyone: Vec<usize> = (0..n).collect();
        assert!(net.run_until(100 * TIMEOUT_MS, |net| all_final(net, big_r, &everyone)));
        net.check_agreement();
        let state = state_at(&net, b).clone();
        let punished: Vec<(usize, u32, u32)> = (0..n)
            .filter(|h| *h != b)
            .map(|h| {
                let m = &state.members[&net.ids[h]];
                (h, m.offences.withheld, m.trust)
            })
            .filter(|(_, withheld, _)| *withheld > 0)
            .collect();
        assert!(
            punished.is_empty(),
            "seed {seed}: honest members that revealed on time were punished as withholders \
             (host, withheld, trust ppm): {punished:?}; the voters of round {} are {} \
             (proposer host {b})",
            big_r + 1,
            voters(&state).len()
        );
    }
}

/// Attack 5a. A member cut off (both ways) long enough to be suspended, then back on a
/// lossy network (10% of messages lost): it catches up, rejoins and is active again; the
/// others never stall; no two replicas store different digests for a round; records replay.
#[test]
fn a_member_cut_off_then_back_on_a_lossy_network_rejoins_without_a_split() {
    let n = 4;
    for seed in 1..=2u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xabc);
        let cut = 3usize;
        let nemesis: Nemesis = Box::new(move |from, to, _m, now| {
            if (3_000..20_000).contains(&now) && (from == cut || to == cut) {
                return Fate::Drop;
            }
            if now >= 20_000 && rng.gen_bool(0.1) {
                return Fate::Drop;
            }
            Fate::Deliver
        });
        let mut net = Net::known_founders(n, seed, nemesis);
        let id = net.ids[cut];
        let suspended = net.run_until(20_000, |net| {
            net.engines[0]
                .as_ref()
                .is_some_and(|e| e.state().members.get(&id).is_some_and(|m| m.is_suspended()))
        });
        assert!(suspended, "seed {seed}: never suspended");
        let back = net.run_until(net.now + 300 * TIMEOUT_MS, |net| {
            (0..n).all(|h| {
                net.engines[h].as_ref().is_some_and(|e| {
                    e.state()
                        .members
                        .get(&id)
                        .is_some_and(|m| m.is_active() && m.rejoins >= 1)
                })
            }) && net.engines[0]
                .as_ref()
                .is_some_and(|e| voters(e.state()).contains(&id))
        });
        net.check_agreement();
        net.check_records();
        let rounds: Vec<Option<u64>> = (0..n).map(|h| net.final_round_of(h)).collect();
        assert!(
            back,
            "seed {seed}: the cut-off member did not come back and vote; last final rounds \
             {rounds:?}"
        );
    }
}

/// Attack 5b. A voter that goes silent (crash-like: nothing in or out) for many rounds and
/// comes back, in a swarm of three: the other two go on (a majority of three), the silent
/// one is suspended, catches up, rejoins and votes again.
#[test]
fn a_voter_silent_for_many_rounds_comes_back_and_votes_again() {
    let n = 3;
    let silent = 0usize;
    let nemesis: Nemesis = Box::new(move |from, to, _m, now| {
        if (2_000..40_000).contains(&now) && (from == silent || to == silent) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let mut net = Net::known_founders(n, 5, nemesis);
    let id = net.ids[silent];
    net.run(40_000);
    let during = net.final_round_of(1).unwrap_or(0);
    assert!(during >= 10, "the other two went on: round {during}");
    assert!(state_at(&net, 1).members[&id].is_suspended());
    let back = net.run_until(net.now + 300 * TIMEOUT_MS, |net| {
        (0..n).all(|h| {
            net.engines[h]
                .as_ref()
                .is_some_and(|e| voters(e.state()).contains(&id))
        })
    });
    net.check_agreement();
    net.check_records();
    assert!(back, "the silent voter never votes again");
}

/// Attack 4b / 1d. Outsiders' joins (more than the limit, some with two variants) reach
/// only one replica, or different variants reach different replicas: the seal fixes one
/// set, the replicas agree and go on, and at most `admission_limit` are admitted a round.
#[test]
fn joins_and_join_variants_seen_by_some_replicas_only_split_nothing() {
    let n = 3;
    let mut net = Net::known_founders(n, 11, Box::new(|_, _, _, _| Fate::Deliver));
    let everyone: Vec<usize> = (0..n).collect();
    for step in 0..4u64 {
        let r = net.engines[0].as_ref().unwrap().round();
        for i in 0..8u64 {
            let o = key(5_000 + step * 100 + i);
            let to = (i as usize) % n;
            inject(&mut net, to, join(&o, r, "o"));
            if i % 2 == 0 {
                inject(&mut net, (to + 1) % n, join(&o, r, "variant"));
            }
            inject(&mut net, to, join(&o, r + 1, "ahead"));
        }
        assert!(
            net.run_until(net.now + 100 * TIMEOUT_MS, |net| all_final(
                net,
                r + 1,
                &everyone
            )),
            "step {step}: stalled at round {r}"
        );
    }
    net.check_agreement();
    net.check_records();
    // Replay host 0's records from genesis: each verifies, and admits within the limit.
    let mut state = LedgerState::genesis(swarm());
    let mut outsiders_admitted = 0;
    for (round, certified) in &net.finals[0] {
        assert_eq!(*round, state.next_round);
        let (next, outcome, _) = certified
            .record()
            .apply(&state, &Limits::default())
            .expect("a stored record verifies");
        let admitted = outcome.joined.len() + outcome.rejoined.len();
        if *round > 0 {
            let limit = admission_limit(state.active_members().count());
            assert!(admitted <= limit, "round {round}: {admitted} > {limit}");
            outsiders_admitted += outcome.joined.len();
        }
        state = next;
    }
    assert!(outsiders_admitted > 0);
}

/// Attack 1e. §1/§2: "afterwards at most 256 + 8 per member newcomers' messages are
/// buffered per round", and a replica buffers from unknown senders "joins of the current
/// round and any message of the next round". The bound counts every message held for the
/// round, and anything of the next round from any key is taken, so an outsider that sends
/// each replica 300 junk claims for the next round from throw-away keys (never inputs:
/// no such key is a member) fills the room before the round starts; an honest newcomer's
/// joins for that round are then refused at every replica, round after round.
#[test]
fn junk_for_the_next_round_from_throwaway_keys_shuts_out_a_newcomer() {
    // Without junk the newcomer is admitted at once (control); with it, never.
    let (admitted, round) = newcomer_against_junk(0);
    assert!(
        admitted,
        "control: no junk, yet not admitted by round {round}"
    );
    let (admitted, round) = newcomer_against_junk(300);
    assert!(
        admitted,
        "a newcomer that sent its joins in each of 5 rounds was never admitted (300 junk \
         claims a round for the next round, from throw-away keys, took the newcomers' room \
         at every replica; the swarm is at round {round})"
    );
}

/// Three founders; in each of 6 rounds every replica gets `junk` claims for the next round
/// from fresh keys, and from the second round on a newcomer's joins for the round and the
/// next. Whether the newcomer was admitted, and the round reached.
fn newcomer_against_junk(junk: usize) -> (bool, u64) {
    let n = 3;
    let mut net = Net::known_founders(n, 2, Box::new(|_, _, _, _| Fate::Deliver));
    let everyone: Vec<usize> = (0..n).collect();
    assert!(net.run_until(100 * TIMEOUT_MS, |net| all_final(net, 1, &everyone)));
    let newcomer = key(6_000);
    let mut junk_key = 7_000u64;
    for step in 0..6 {
        // Every replica is in round r (round r - 1 final everywhere).
        let r = (0..n)
            .filter_map(|h| net.engines[h].as_ref().map(|e| e.round()))
            .min()
            .unwrap();
        for h in 0..n {
            for _ in 0..junk {
                junk_key += 1;
                inject(&mut net, h, claim(&key(junk_key), r + 1, 1));
            }
            // The newcomer follows a step behind: a join for the round it is in and one
            // for the next.
            if step > 0 {
                inject(&mut net, h, join(&newcomer, r, "newcomer"));
                inject(&mut net, h, join(&newcomer, r + 1, "newcomer"));
            }
        }
        net.run_until(net.now + 100 * TIMEOUT_MS, |net| {
            all_final(net, r, &everyone)
        });
    }
    net.check_agreement();
    let state = state_at(&net, 0);
    (state.members.contains_key(&newcomer.id()), state.next_round)
}

/// Found by the review of protocol version 8 (`sim/tests/v8_attacks.rs`, a4): a member whose
/// job restarted claimed its new job in the same round as its restart join; when the join
/// was lost or late, that claim met the record of the lost job, with slots won since, and the
/// honest member was charged `Lie { bought }` (trust to the floor) and its slots counted as
/// debt twice. The engine now keeps a restarted member silent until the record counts its
/// restart (`Engine::speaking`). Here host 0's agent, the shortest job and so the winner of
/// the early slots, restarts with its joins lost for two rounds: the record takes no claim
/// of it from the restart until the round that counts the restart, and claims again after.
#[test]
fn a_restarted_member_claims_nothing_until_the_record_counts_its_restart() {
    for seed in 0..4 {
        let mut net = Net::new(3, seed, Box::new(|_, _, _, _| Fate::Deliver));
        run_to(&mut net, None, 3);
        let me = net.ids[0];
        assert!(state_at(&net, 0).members[&me].used_slots > 0, "seed {seed}");
        // The restart comes once the round's inputs are sealed (its reveal phase), in a round
        // whose next one another host proposes: no value can carry its join before the
        // others hold it.
        let reveal_of = |net: &Net| {
            let round = round_of(net, 0);
            in_phase(net, 0, round, slotmesh_proto::Phase::Reveal)
                && proposer_host(3, round + 1, 0) != 0
        };
        assert!(
            net.run_until(net.now + 200 * TIMEOUT_MS, reveal_of),
            "seed {seed}"
        );
        let restart_round = round_of(&net, 0);
        // Its joins lost for two rounds (they may still reach the others in a round's
        // synced inputs).
        net.nemesis = Box::new(move |from, _to, m, _now| match m {
            Some(m) if from == 0 && m.sender() == me && m.payload().kind() == PayloadKind::Join => {
                if m.round() <= restart_round + 1 {
                    Fate::Drop
                } else {
                    Fate::Deliver
                }
            }
            _ => Fate::Deliver,
        });
        net.engines[0].as_mut().unwrap().job_restarted(me);
        net.drain(0);
        run_to(&mut net, None, restart_round + 6);
        assert_eq!(state_at(&net, 1).members[&me].restarts, 1, "seed {seed}");
        // What the record took from it, round by round.
        let took = |kind: PayloadKind, from: u64| -> Vec<u64> {
            net.finals[1]
                .iter()
                .filter(|(round, certified)| {
                    **round >= from
                        && certified
                            .inputs()
                            .turns()
                            .any(|(sender, k, _)| sender == me && k == kind)
                })
                .map(|(round, _)| *round)
                .collect()
        };
        // (Its own replica may put its join in a value it proposes in the restart round.)
        let counted = took(PayloadKind::Join, restart_round)[0];
        let claimed = took(PayloadKind::Claim, restart_round + 1);
        assert!(
            claimed.iter().all(|r| *r > counted) && !claimed.is_empty(),
            "seed {seed}: claims taken in rounds {claimed:?}, restart in round {restart_round}, counted in round {counted}"
        );
    }
}
