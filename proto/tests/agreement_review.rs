//! Attacks a reviewer found on the agreement (two rounds of review with fresh eyes, through
//! the engine's API), each kept as a regression test on the in-test network of `net`.

mod common;
mod net;

use common::*;
use net::*;
use slotmesh_proto::{Digest, Engine, Output, Payload, PayloadKind, Phase, SignedMessage, Stage};

/// One signed proposal for attempt u32::MAX from its (byzantine) proposer used to move every
/// replica there at once and overflow the attempt counter at the next timeout.
#[test]
fn a_proposal_for_a_far_attempt_neither_overflows_nor_stalls() {
    let n = 3;
    let b = proposer_host(n, 1, u32::MAX);
    let mut net = Net::new(n, 3, muted_agreement(b));
    let honest: Vec<usize> = (0..n).filter(|h| *h != b).collect();
    assert!(net.run_until(20 * TIMEOUT_MS, |net| honest
        .iter()
        .any(|h| in_finalize(net, *h, 1))));
    let far = agent(b as u8).sign(
        swarm(),
        1,
        Payload::Proposal(slotmesh_proto::Proposal {
            stage: Stage::Outcome,
            attempt: u32::MAX,
            digest: Digest([0xee; 32]),
            bound: None,
        }),
    );
    for h in &honest {
        inject(&mut net, *h, far.clone());
    }
    net.run(net.now + 60 * TIMEOUT_MS);
    net.check_agreement();
    for h in &honest {
        assert!(
            net.final_round_of(*h) >= Some(1),
            "host {h} never finalized round 1"
        );
    }
}

/// A voter that signs promises for 20,000 attempts: a replica keeps its latest only, and a
/// timeout re-sends a bounded number of them.
#[test]
fn promises_for_many_attempts_are_not_kept_or_sent_again() {
    let (mut net, b, h) = finalizing_replica(9);
    let now = net.now;
    let Some(engine) = net.engines[h].as_mut() else {
        return;
    };
    for attempt in 1..=20_000u32 {
        let promise = agent(b as u8).sign(
            swarm(),
            1,
            Payload::Promise(slotmesh_proto::Promise {
                stage: Stage::Outcome,
                attempt,
                accepted: None,
            }),
        );
        engine.handle_message(promise, now);
    }
    while engine.poll_output().is_some() {}
    engine.handle_timeout(1, Phase::Finalize, now + 10 * TIMEOUT_MS);
    let mut from_b = 0;
    while let Some(output) = engine.poll_output() {
        if matches!(&output, Output::Send(m) if m.sender() == agent(b as u8).id()) {
            from_b += 1;
        }
    }
    assert!(from_b <= 1, "one timeout re-sends {from_b} of its promises");
}

/// An answer to a fetch of inputs nobody asked for, full of far-future messages and
/// newcomers' joins, is not held.
#[test]
fn unasked_inputs_are_not_held() {
    let n = 3;
    let mut net = Net::new(n, 11, Box::new(|_, _, _, _| Fate::Deliver));
    assert!(net.run_until(20 * TIMEOUT_MS, |net| in_finalize(net, 0, 1)));
    let now = net.now;
    let Some(engine) = net.engines[0].as_mut() else {
        return;
    };
    let far = 1_000_000_000u64;
    let junk: Vec<SignedMessage> = (0..200u8)
        .map(|i| claim(&agent(i.wrapping_add(50)), far, 1))
        .chain((0..200u8).map(|i| join(&agent(i.wrapping_add(50)), 2, "x")))
        .collect();
    engine.handle_inputs(1, Digest([1; 32]), junk, now);
    assert_eq!(engine.messages(far).map_or(0, |m| m.len()), 0);
    assert_eq!(engine.messages(2).map_or(0, |m| m.len()), 0);
}

/// A replica restarted in a round it voted in, with its votes of that round lost, must not
/// vote in it again: it is silenced through that round (the host driver does this from
/// the recorded spoken round), so no second certificate can be made.
#[test]
fn a_replica_restarted_in_its_voting_round_cannot_certify_it_twice() {
    let n = 3;
    let p = proposer_host(n, 1, 0);
    let others: Vec<usize> = (0..n).filter(|h| *h != p).collect();
    let (y, z) = (others[0], others[1]);
    let restarted = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = restarted.clone();
    let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
        if flag.get() {
            return Fate::Deliver;
        }
        // Round 1 is sealed alike everywhere; then Z misses P's reveal, and the outcome's
        // agreement is cut as the attack needs.
        let r1 = |m: &SignedMessage| m.round() == 1;
        let outcome = |m: &SignedMessage| r1(m) && m.payload().stage() == Some(Stage::Outcome);
        let reveal = m.is_some_and(|m| r1(m) && turn_kind(m) == PayloadKind::Reveal);
        if from == p && to == z && reveal {
            return Fate::Drop;
        }
        let agreement = m.is_none_or(outcome);
        if agreement && (from == p || from == y) && to == z {
            return Fate::Drop;
        }
        let vote = m.is_some_and(|m| outcome(m) && turn_kind(m) == PayloadKind::CheckpointVote);
        if from == p && to == y && vote {
            return Fate::Drop;
        }
        Fate::Deliver
    });
    let mut net = Net::new(n, 13, nemesis);
    assert!(
        net.run_until(20 * TIMEOUT_MS, |net| net.final_round_of(p) >= Some(1)),
        "the schedule reaches the state the attack needs: P stored round 1"
    );
    net.engines[p] = None;
    assert!(net.run_until(net.now + 20 * TIMEOUT_MS, |net| in_finalize(net, z, 1)));
    let Some(old) = net.engines[y].take() else {
        return;
    };
    // It comes back holding what Z holds (P's reveal lost with its memory), so any proposer
    // may propose Z's digest.
    let p_id = agent(p as u8).id();
    let again: Vec<SignedMessage> = old
        .messages(1)
        .map(|m| {
            m.iter()
                .filter(|m| !(m.sender() == p_id && turn_kind(m) == PayloadKind::Reveal))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let now = net.now;
    let mut engine = Engine::new(
        agent(y as u8),
        old.config().clone(),
        old.state().clone(),
        now,
    );
    engine.silence_through(Some(1));
    net.engines[y] = Some(engine);
    restarted.set(true);
    net.drain(y);
    for m in again {
        inject(&mut net, y, m);
    }
    net.run(now + 60 * TIMEOUT_MS);
    net.check_agreement();
    net.check_records();
}

/// Two live voters of three, one entering the agreement more than a timeout after the
/// other: each used to move one attempt per timeout, always one attempt apart, forever.
#[test]
fn two_live_voters_of_three_meet_in_one_attempt() {
    for seed in 0..6u64 {
        for c in 0..3usize {
            for l in (0..3).filter(|l| *l != c) {
                let a = 3 - c - l;
                let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
                    let bid = m.is_some_and(|m| {
                        m.round() == 1
                            && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
                    });
                    if from == c && to == l && bid {
                        return Fate::Drop;
                    }
                    Fate::Deliver
                });
                let mut net = Net::new(3, seed, nemesis);
                net.crash_after_reveal.insert(c, 1);
                net.run(120 * TIMEOUT_MS);
                net.check_agreement();
                assert!(
                    [a, l].iter().all(|h| net.final_round_of(*h) >= Some(1)),
                    "seed {seed}, crashed {c}, laggard {l}: round 1 never finalized"
                );
            }
        }
    }
}

/// A replica holds a certificate for a digest whose inputs it lacks, and the certificate's
/// first voter has crashed: it used to ask that voter, and only it, for ever.
#[test]
fn a_certificate_whose_first_voter_crashed_still_completes() {
    let n = 5;
    let p = proposer_host(n, 1, 0);
    let rest: Vec<usize> = (0..n).filter(|h| *h != p).collect();
    let x = rest
        .iter()
        .copied()
        .min_by_key(|h| agent(*h as u8).id())
        .unwrap_or(0);
    let others: Vec<usize> = rest.iter().copied().filter(|h| *h != x).collect();
    let (y, z, w) = (others[0], others[1], others[2]);
    let crashed = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = crashed.clone();
    let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
        if flag.get() {
            return Fate::Deliver;
        }
        let r1 = |m: &SignedMessage| m.round() == 1;
        let bid = m.is_some_and(|m| {
            r1(m) && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
        });
        if from == p && bid && (to == z || to == w) {
            return Fate::Drop;
        }
        let agreement = m.is_none_or(|m| r1(m) && m.payload().kind().is_agreement());
        if (from == p || from == x) && agreement {
            let vote = m.is_some_and(|m| turn_kind(m) == PayloadKind::CheckpointVote);
            if (to == y && vote) || to == w || (to == z && !vote) {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    let mut net = Net::new(n, 21, nemesis);
    assert!(
        net.run_until(30 * TIMEOUT_MS, |net| votes_at(net, z, 1, 0) >= 3),
        "Z holds the attempt-0 certificate"
    );
    assert!(net.final_round_of(z) < Some(1) && net.final_round_of(y) < Some(1));
    net.engines[p] = None;
    net.engines[x] = None;
    crashed.set(true);
    let live = [y, z, w];
    net.run_until(net.now + 100 * TIMEOUT_MS, |net| {
        live.iter().all(|h| net.final_round_of(*h) >= Some(1))
    });
    net.check_agreement();
    for h in live {
        assert!(
            net.final_round_of(h) >= Some(1),
            "host {h} never finalized round 1 with 3 of 5 voters alive"
        );
    }
}

/// A voter that signs votes for 40,000 attempts: the tally keeps a few of them.
#[test]
fn votes_for_many_attempts_are_not_kept() {
    let (mut net, b, h) = finalizing_replica(9);
    let now = net.now;
    let Some(engine) = net.engines[h].as_mut() else {
        return;
    };
    for attempt in 1..=40_000u32 {
        let vote = agent(b as u8).sign(
            swarm(),
            1,
            Payload::CheckpointVote(slotmesh_proto::CheckpointVote {
                stage: Stage::Outcome,
                attempt,
                digest: Digest([7; 32]),
            }),
        );
        engine.handle_message(vote, now);
        while engine.poll_output().is_some() {}
    }
    let kept = engine.finality().map_or(0, |f| f.votes.len());
    assert!(kept <= 12, "one voter's votes kept: {kept}");
}

/// Every message takes 0.6 phase timeouts: within the liveness assumption, but two live
/// voters of three whose timers are out of phase used to leave each attempt before the
/// other's promise or proposal arrived, for ever. Timeouts that grow with the attempt let
/// them meet.
#[test]
fn two_live_voters_out_of_phase_meet_as_timeouts_grow() {
    let n = 3;
    for seed in 0..6u64 {
        let mut net = Net::new(n, seed, Box::new(|_, _, _, _| Fate::Delay(600)));
        let crashed = seed as usize % n;
        net.crash_after_reveal.insert(crashed, 1);
        let live: Vec<usize> = (0..n).filter(|h| *h != crashed).collect();
        let done = net.run_until(300 * TIMEOUT_MS, |net| {
            live.iter().all(|h| net.final_round_of(*h) >= Some(2))
        });
        net.check_agreement();
        assert!(done, "seed {seed}: round 2 never finalized");
    }
}
