//! Attacks on the watch for contradictions around round boundaries (protocol version 5):
//! halves of a contradiction buffered before their round, completed after the seal or after
//! the round, proofs starved by later culprits, and the certificates a byzantine proposer
//! can make. Written by a reviewer with a fresh context; five of these failed before the
//! fixes that followed. The ignored one is a known limit (docs/PROTOCOL.md §7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod net;

use common::*;
use net::*;
use slotmesh_proto::{Digest, Identity, LedgerState, Limits, Payload, PayloadKind, Phase, Stage};

// ----- 1. escaping the watch -----

/// A voter double-votes in the seal of round 2 while a replica is still finishing round 1:
/// the replica buffers both votes as early agreement messages and counts both in its
/// round-2 tally when the round starts, but its watch still belongs to round 1 then (it is
/// renewed only afterwards), so it never sees the contradiction it holds both halves of.
#[test]
fn a_contradiction_buffered_before_its_round_starts_is_caught() {
    for seed in 0..3u64 {
        let (mut net, b, h) = finalizing_replica(seed);
        let culprit = agent(b as u8);
        inject(&mut net, h, vote(&culprit, 2, Stage::Seal, 0, d(1)));
        inject(&mut net, h, vote(&culprit, 2, Stage::Seal, 0, d(2)));
        assert!(net.run_until(net.now + 100 * TIMEOUT_MS, |net| round_of(net, h) >= 2));
        let engine = net.engines[h].as_ref().unwrap();
        let counted = engine
            .finality()
            .map(|f| f.votes.iter().filter(|v| v.0 == culprit.id()).count());
        assert_eq!(
            counted,
            Some(2),
            "seed {seed}: both votes count in round 2's seal"
        );
        assert_eq!(
            engine.contradicting(),
            vec![culprit.id()],
            "seed {seed}: the replica holds both halves of a double vote it counted"
        );
    }
}

/// The second half of a seal contradiction reaches a replica after it sealed the round
/// (it is in the outcome's agreement of the same round): the message is dropped before the
/// watch sees it, although the watch still holds the first half.
#[test]
fn a_seal_contradiction_completed_after_the_seal_is_caught() {
    for seed in 0..3u64 {
        let n = 3;
        let b = proposer_host(n, 1, 0);
        let mut net = Net::new(n, seed, muted_agreement(b));
        let h = (0..n).find(|h| *h != b).unwrap();
        let culprit = agent(b as u8);
        assert!(net.run_until(20 * TIMEOUT_MS, |net| in_phase(net, h, 1, Phase::Seal)));
        inject(&mut net, h, vote(&culprit, 1, Stage::Seal, 0, d(1)));
        assert!(net.run_until(net.now + 20 * TIMEOUT_MS, |net| in_finalize(net, h, 1)));
        inject(&mut net, h, vote(&culprit, 1, Stage::Seal, 0, d(2)));
        assert_eq!(
            contradicting(&net, h),
            vec![culprit.id()],
            "seed {seed}: both halves of one round's seal contradiction reached the replica"
        );
    }
}

/// The second half of a contradiction reaches a replica just after it completed the round:
/// the watch is gone with the round, so the pair it received is never compared.
#[test]
fn a_contradiction_completed_just_after_the_round_is_caught() {
    for seed in 0..3u64 {
        let (mut net, b, h) = finalizing_replica(seed);
        let culprit = agent(b as u8);
        inject(&mut net, h, vote(&culprit, 1, Stage::Outcome, 0, d(1)));
        assert!(net.run_until(net.now + 100 * TIMEOUT_MS, |net| round_of(net, h) >= 2));
        inject(&mut net, h, vote(&culprit, 1, Stage::Outcome, 0, d(2)));
        assert_eq!(
            contradicting(&net, h),
            vec![culprit.id()],
            "seed {seed}: both halves reached the replica, one round apart"
        );
    }
}

/// Starvation: every replica reports its pending proof with the lowest signer id, so fresh
/// culprits with lower ids (keys are free to grind; a newcomer votes after one full round)
/// are reported first, every round, and a culprit whose proof every replica has held since
/// round 1 is not barred however long that goes on. Here three lower-id culprits contradict
/// in rounds 1, 2 and 3; the high-id culprit of round 1 is still not barred after round 3,
/// although two reports per replica were made since its proof was caught with only one
/// other.
#[test]
fn a_held_proof_is_not_starved_by_later_culprits_with_lower_ids() {
    let n = 5;
    let mut net = Net::new(n, 7, Box::new(|_, _, _, _| Fate::Deliver));
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|h| agent(*h as u8).id());
    let target = order[n - 1];
    let lower = &order[..3];
    for round in 1..=3u64 {
        assert!(net.run_until(net.now + 50 * TIMEOUT_MS, |net| {
            (0..n).all(|h| round_of(net, h) >= round)
        }));
        let mut culprits = vec![lower[round as usize - 1]];
        if round == 1 {
            culprits.push(target);
        }
        for c in culprits {
            let who = agent(c as u8);
            for to in 0..n {
                inject(&mut net, to, vote(&who, round, Stage::Seal, 9, d(1)));
                inject(&mut net, to, vote(&who, round, Stage::Seal, 9, d(2)));
            }
        }
    }
    run_to(&mut net, None, 3);
    net.check_agreement();
    let id = agent(target as u8).id();
    for h in 0..n {
        let state = net.engines[h].as_ref().unwrap().state();
        assert!(state.next_round >= 4);
        assert_eq!(
            state.members[&id].offences.contradictions,
            1,
            "host {h}: the culprit every replica held proof against since round 1 is not barred \
             (punished: {:?})",
            state
                .members
                .iter()
                .filter(|(_, m)| m.offences.contradictions > 0)
                .map(|(id, _)| *id)
                .collect::<Vec<_>>()
        );
    }
}

// ----- 2. certificates a byzantine proposer makes -----

fn own_digest(net: &Net, h: usize) -> Option<Digest> {
    net.engines[h]
        .as_ref()
        .and_then(|e| e.finality())
        .and_then(|f| f.own)
        .map(|(_, d)| d)
}

/// Round 1 of three founders whose seal proposer X (muted in the agreement) showed the two
/// honest voters A and B different negotiation turns: both are in the seal, each valuing its
/// own inputs: the network, X's identity, A and B's hosts and their digests.
struct SplitSeal {
    net: Net,
    xi: Identity,
    a: usize,
    b: usize,
    da: Digest,
    db: Digest,
}

fn split_seal(seed: u64) -> SplitSeal {
    let n = 3;
    let x = proposer_host(n, 1, 0);
    let others: Vec<usize> = (0..n).filter(|h| *h != x).collect();
    let (a, b) = (others[0], others[1]);
    let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
        if from == x && m.is_none_or(|m| m.round() >= 1 && m.payload().kind().is_agreement()) {
            return Fate::Drop;
        }
        if from == x
            && to == b
            && m.is_some_and(|m| m.round() == 1 && turn_kind(m) == PayloadKind::Negotiation)
        {
            return Fate::Drop;
        }
        Fate::Deliver
    });
    let mut net = Net::new(n, seed, nemesis);
    let xi = agent(x as u8);
    // B hears another negotiation turn of X's (A hears X's engine's own).
    let other_turn = sign(
        &xi,
        1,
        Payload::Negotiation(slotmesh_proto::Negotiation {
            lines: vec![slotmesh_proto::NegotiationLine {
                to: None,
                text: "hello".into(),
            }],
            proposal: None,
        }),
    );
    inject(&mut net, b, other_turn);
    assert!(net.run_until(20 * TIMEOUT_MS, |net| {
        in_phase(net, a, 1, Phase::Seal) && in_phase(net, b, 1, Phase::Seal)
    }));
    let (Some(da), Some(db)) = (own_digest(&net, a), own_digest(&net, b)) else {
        panic!("seed {seed}: both value their inputs");
    };
    assert_ne!(da, db, "seed {seed}: A and B hold different inputs");
    SplitSeal {
        net,
        xi,
        a,
        b,
        da,
        db,
    }
}

/// The proposer X of round 1's seal (attempt 0) signs two proposals, one to each honest
/// voter, each for the value that voter holds (it showed them different negotiation turns),
/// and votes once, for B's. A votes for its proposal, B for its own; B's vote and X's make a
/// certificate for B's digest that A also completes. A's log holds the proposal A saw first
/// for attempt 0, and `check_final` attaches the justification of *that* proposal
/// (`AgreementLog::justify(attempt)`, for another digest) to the certificate: A seals,
/// completes and stores a round whose seal certificate does not verify (`NoProposal`), a
/// record every peer that fetches it rejects and A's own ledger replay refuses.
#[test]
fn an_equivocating_proposer_never_makes_a_replica_store_a_record_that_fails() {
    let mut bad = Vec::new();
    for seed in 0..4u64 {
        let SplitSeal {
            mut net,
            xi,
            a,
            b,
            da,
            db,
        } = split_seal(seed);
        inject(&mut net, a, proposal_in(&xi, 1, Stage::Seal, 0, da, None));
        inject(&mut net, b, proposal_in(&xi, 1, Stage::Seal, 0, db, None));
        for h in [a, b] {
            inject(&mut net, h, vote(&xi, 1, Stage::Seal, 0, db));
        }
        let done = net.run_until(net.now + 100 * TIMEOUT_MS, |net| {
            [a, b].iter().all(|h| net.final_round_of(*h) >= Some(2))
        });
        assert!(done, "seed {seed}: A and B go on");
        for h in [a, b] {
            let mut state = LedgerState::genesis(swarm());
            for round in 0..=2 {
                match net.finals[h][&round]
                    .record()
                    .apply(&state, &Limits::default())
                {
                    Ok((next, _, _)) => state = next,
                    Err(e) => {
                        bad.push(format!("seed {seed}, host {h}, round {round}: {e}"));
                        break;
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "honest replicas stored records that fail: {bad:#?}"
    );
}

/// Known limit, not a bug of this change (docs/PROTOCOL.md §7: with majority quorums one
/// byzantine voter in both majorities can split a round): the proposer of round 1's seal
/// signs a proposal for each honest voter's value and votes for both. With the tally now
/// counting both of its votes, each honest voter completes a certificate for its own digest
/// at once: the seal forks. Neither can then vote for the other's outcome (its sealed
/// inputs differ), so round 1 never completes, and the contradiction both replicas hold is
/// never sealed: the culprit is never punished and the swarm stalls for good. Only a live
/// comparison of conflicting certificates (`culprits`) could get it out.
#[test]
#[ignore = "known limit: a fork of the seal by a byzantine proposer stalls the swarm before any evidence can be sealed"]
fn a_forked_seal_still_lets_the_honest_voters_go_on_and_bar_the_culprit() {
    let SplitSeal {
        mut net,
        xi,
        a,
        b,
        da,
        db,
    } = split_seal(0);
    inject(&mut net, a, proposal_in(&xi, 1, Stage::Seal, 0, da, None));
    inject(&mut net, b, proposal_in(&xi, 1, Stage::Seal, 0, db, None));
    for h in [a, b] {
        inject(&mut net, h, vote(&xi, 1, Stage::Seal, 0, da));
        inject(&mut net, h, vote(&xi, 1, Stage::Seal, 0, db));
    }
    let done = net.run_until(net.now + 100 * TIMEOUT_MS, |net| {
        [a, b].iter().all(|h| net.final_round_of(*h) >= Some(3))
    });
    assert!(done, "A and B stall in round 1 after the seal forked");
    for h in [a, b] {
        let state = net.engines[h].as_ref().unwrap().state();
        assert!(!state.members[&xi.id()].may_vote());
    }
}
