//! Founding by known keys (`EngineConfig::known_founders`, `slotmesh daemon --founder`):
//! the founding round runs the agreement of every later round among founders known in
//! advance, so a majority of them founds the swarm. A founder that never starts, or crashes
//! after its join but before it votes, does not stall founding — it did with unanimity
//! (`--founders N`), which the contrast test below keeps showing. Joins from other keys never
//! change the founding digest, and every stored record replays from genesis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod net;

use common::*;
use net::*;
use slotmesh_proto::{
    resolve_round, AgentId, Identity, Join, LedgerState, Payload, PayloadKind, Quorum,
    RoundMessages,
};
use std::collections::BTreeSet;

fn founding_join(_who: &Identity, name: &str, founders: &BTreeSet<AgentId>) -> Payload {
    Payload::Join(Join {
        name: name.into(),
        founders: founders.iter().copied().collect(),
        absence_limit: 0,
        restarted: false,
    })
}

/// Every replica but those in `dead` has stored round `round`.
fn all_reach(net: &Net, dead: &[usize], round: u64) -> bool {
    (0..net.engines.len())
        .filter(|h| !dead.contains(h))
        .all(|h| net.final_round_of(h) >= Some(round))
}

/// A host that sends nothing at all from the start (never started), or nothing but its
/// founding join (crashed after joining, before it voted).
fn silent(host: usize, join_goes_out: bool) -> Nemesis {
    Box::new(move |from, _to, m, _now| {
        let join = m.is_some_and(|m| m.payload().kind() == PayloadKind::Join);
        if from == host && !(join_goes_out && join) {
            return Fate::Drop;
        }
        Fate::Deliver
    })
}

#[test]
fn a_founder_that_never_starts_or_never_votes_does_not_stall_founding() {
    for n in [3usize, 4, 5] {
        for dead in 0..n {
            for join_goes_out in [false, true] {
                for seed in 0..3u64 {
                    let mut net = Net::known_founders(n, seed, silent(dead, join_goes_out));
                    let done = net.run_until(120 * TIMEOUT_MS, |net| all_reach(net, &[dead], 3));
                    let what =
                        format!("n {n}, silent founder {dead}, join {join_goes_out}, seed {seed}");
                    assert!(done, "{what}: the others did not found and go on");
                    net.check_agreement();
                    net.check_records();
                    net.check_no_contradictions();
                    let state = net.engines[(dead + 1) % n].as_ref().unwrap().state();
                    assert_eq!(
                        state.members.contains_key(&agent(dead as u8).id()),
                        join_goes_out,
                        "{what}: admitted exactly when its join was heard"
                    );
                    assert_eq!(state.founders.len(), n, "{what}");
                }
            }
        }
    }
}

/// The same founder crash with unanimity (`--founders N`): founding never completes. This is
/// the limit known founders remove.
#[test]
fn with_unanimity_a_founder_that_never_votes_stalls_founding() {
    let n = 3;
    let mut net = Net::founding(n, n, 1, silent(2, true));
    let done = net.run_until(60 * TIMEOUT_MS, |net| all_reach(net, &[2], 0));
    assert!(!done, "unanimity founded without a founder's vote");
    net.check_agreement();
}

/// A founder's join reaches one replica only, late (the bug that made a founding record
/// fail its own verification), over seeds and hosts: still one digest, and the records
/// replay from genesis.
#[test]
fn a_late_founding_join_gives_one_founding_record_that_verifies() {
    for late in 0..4usize {
        for reached in (0..4).filter(|r| *r != late) {
            let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
                let join = m.is_some_and(|m| m.payload().kind() == PayloadKind::Join);
                if from == late && join && to != reached {
                    return Fate::Delay(3 * TIMEOUT_MS);
                }
                Fate::Deliver
            });
            let mut net = Net::known_founders(4, (late * 4 + reached) as u64, nemesis);
            assert!(
                net.run_until(120 * TIMEOUT_MS, |net| all_reach(net, &[], 2)),
                "late {late}, reached {reached}"
            );
            net.check_agreement();
            net.check_records();
        }
    }
}

/// Joins from keys that are not founders, or that name other founders, are not inputs of
/// the founding round: injected at one replica, they change nothing.
#[test]
fn outsiders_cannot_join_or_split_the_founding_round() {
    let n = 3;
    for seed in 0..4u64 {
        let mut net = Net::known_founders(n, seed, Box::new(|_, _, _, _| Fate::Deliver));
        let founders: BTreeSet<AgentId> = (0..n as u8).map(|i| agent(i).id()).collect();
        let outsider = agent(9);
        let mut theirs = founders.clone();
        theirs.insert(outsider.id());
        // An outsider naming itself among the founders; a founder's second join naming
        // other founders (it would void the founder's turn as an equivocation).
        inject(
            &mut net,
            0,
            sign(&outsider, 0, founding_join(&outsider, "x", &theirs)),
        );
        let other = BTreeSet::from([agent(1).id(), outsider.id()]);
        inject(
            &mut net,
            0,
            sign(&agent(1), 0, founding_join(&agent(1), "y", &other)),
        );
        assert!(net.run_until(60 * TIMEOUT_MS, |net| all_reach(net, &[], 2)));
        net.check_agreement();
        net.check_records();
        for engine in net.engines.iter().flatten() {
            let state = engine.state();
            assert!(!state.members.contains_key(&outsider.id()), "seed {seed}");
            assert_eq!(
                state.members.len(),
                n,
                "seed {seed}: every founder admitted"
            );
        }
    }
}

/// The rule: a founding round whose joins name founders admits only those founders' joins
/// that name the same ones, records the founders, and needs a majority of them.
#[test]
fn the_rule_admits_only_the_named_founders() {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let founders: BTreeSet<AgentId> = all[..3].iter().map(Identity::id).collect();
    let genesis = LedgerState::genesis(swarm());
    let mut messages = RoundMessages::new(0);
    messages.insert(sign(&all[0], 0, founding_join(&all[0], "a", &founders)));
    messages.insert(sign(&all[1], 0, founding_join(&all[1], "b", &founders)));
    // A plain join (founding by whoever joins): not admitted in a known-founders round.
    messages.insert(join(&all[3], 0, "plain"));
    let (next, outcome) = resolve_round(&genesis, &messages);
    let admitted: BTreeSet<AgentId> = outcome.joined.iter().copied().collect();
    let expected: BTreeSet<AgentId> = all[..2].iter().map(Identity::id).collect();
    assert_eq!(admitted, expected);
    assert_eq!(next.founders, founders);
    // The third founder never joined, but it is one of the founding round's voters: two
    // certificates must each hold two of the three.
    assert_eq!(genesis.voters_for(&next), founders);
    assert_eq!(genesis.quorum(&next), Quorum::Majority);
    // Without founders named: everyone who joined, unanimously.
    let mut plain = RoundMessages::new(0);
    for (i, a) in all.iter().enumerate() {
        plain.insert(join(a, 0, &format!("p{i}")));
    }
    let (next, _) = resolve_round(&genesis, &plain);
    assert!(next.founders.is_empty());
    assert_eq!(genesis.quorum(&next), Quorum::All);
    assert_eq!(genesis.voters_for(&next).len(), 4);
}
