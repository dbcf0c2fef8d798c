//! Sealed bids for real: a round's commits are fixed by agreement (the seal) before any bid
//! of that round is revealed, so no bid can be adapted to a revealed one. Through the
//! engine's API on the in-test network of `net`.

mod common;
mod net;

use common::*;
use net::*;
use slotmesh_proto::{majority, PayloadKind, SignedMessage, Stage};

/// Whether a reveal of `round` is on its way while no seal certificate of that round can be
/// assembled from the votes signed so far.
fn revealed_before_sealed(net: &Net, round: u64) -> bool {
    let revealing = net.queue.values().any(|(_, _, carried)| {
        matches!(carried, Carried::Message(m)
            if m.round() == round && turn_kind(m) == PayloadKind::Reveal)
    });
    if !revealing {
        return false;
    }
    let Some(voters) = net.voters.get(&round) else {
        return true;
    };
    let mut seal_votes: std::collections::BTreeMap<(u32, slotmesh_proto::Digest), usize> =
        std::collections::BTreeMap::new();
    for (r, stage, voter, attempt, digest) in &net.votes {
        if *r == round && *stage == Stage::Seal && voters.contains(voter) {
            *seal_votes.entry((*attempt, *digest)).or_default() += 1;
        }
    }
    seal_votes.values().all(|n| *n < majority(voters.len()))
}

/// The auction was not sealed: a member that kept its commit back until the others'
/// reveals were published could commit then, to a bid just above theirs, and it counted.
/// Now a commit that is not in the round's sealed inputs is void: the late bidder's commit
/// never enters the record, whatever it bids.
#[test]
fn a_commit_sent_after_the_reveals_is_void() {
    for seed in 0..8u64 {
        let n = 3;
        // The late bidder is not the seal's first proposer (whose own inputs would be sealed).
        let late = (proposer_host(n, 1, 0) + 1 + seed as usize % 2) % n;
        let nemesis: Nemesis = Box::new(move |from, _to, m, _now| {
            let own_commit =
                m.is_some_and(|m| m.round() == 1 && turn_kind(m) == PayloadKind::Commit);
            if from == late && own_commit {
                return Fate::Drop;
            }
            Fate::Deliver
        });
        let mut net = Net::new(n, seed, nemesis);
        let published = |net: &Net| {
            net.queue.values().any(|(_, from, carried)| {
                *from != late
                    && matches!(carried, Carried::Message(m)
                        if m.round() == 1 && turn_kind(m) == PayloadKind::Reveal)
            })
        };
        assert!(
            net.run_until(30 * TIMEOUT_MS, published),
            "seed {seed}: nobody revealed in round 1"
        );
        // The others' bids are 10: the late bidder commits to 500 and reveals at once.
        let liar = agent(late as u8);
        let (commit, reveal) = sealed_bid(&liar, 1, 500, None, 500);
        for to in 0..n {
            inject(&mut net, to, commit.clone());
            inject(&mut net, to, reveal.clone());
        }
        net.run(net.now + 30 * TIMEOUT_MS);
        net.check_agreement();
        net.check_records();
        for h in 0..n {
            let round_1 = net.finals[h].get(&1);
            assert!(
                round_1.is_some(),
                "seed {seed}: host {h} never finalized round 1"
            );
            let Some(round_1) = round_1 else {
                return;
            };
            assert!(
                !round_1.inputs().has_spoken(&liar.id(), PayloadKind::Commit),
                "seed {seed}: host {h} counted a commit made after the reveals"
            );
            assert!(round_1.seal().is_some(), "seed {seed}: no seal stored");
        }
    }
}

/// No reveal of a round leaves a replica before a majority of the round's voters sealed its
/// inputs, on a friendly network and with every message of a chosen sender delayed.
#[test]
fn no_bid_is_revealed_before_the_round_is_sealed() {
    for seed in 0..12u64 {
        let n = 3 + (seed % 3) as usize;
        let slow = (seed % n as u64) as usize;
        let nemesis: Nemesis = Box::new(move |from, _to, _m, _now| {
            if from == slow && seed % 2 == 1 {
                Fate::Delay(TIMEOUT_MS / 2)
            } else {
                Fate::Deliver
            }
        });
        let mut net = Net::new(n, seed, nemesis);
        let early = net.run_until(40 * TIMEOUT_MS, |net| {
            (1..=3).any(|round| revealed_before_sealed(net, round))
        });
        assert!(
            !early,
            "seed {seed}: a bid revealed before its round was sealed"
        );
        for h in 0..n {
            assert!(net.final_round_of(h) >= Some(3), "seed {seed}: host {h}");
        }
        net.check_agreement();
        net.check_records();
    }
}

/// A record whose seal does not sign its sealed messages, or that carries a reveal of a
/// commit outside them, does not apply; nor does one without a seal.
#[test]
fn a_record_must_carry_a_matching_seal() {
    let mut net = Net::new(3, 5, Box::new(|_, _, _, _| Fate::Deliver));
    net.run_until(30 * TIMEOUT_MS, |net| net.final_round_of(0) >= Some(1));
    let finals = (net.finals[0].get(&0), net.finals[0].get(&1));
    assert!(finals.1.is_some(), "round 1 was not finalized");
    let (Some(round_0), Some(round_1)) = finals else {
        return;
    };
    let limits = slotmesh_proto::Limits::default();
    let genesis = slotmesh_proto::LedgerState::genesis(swarm());
    let founded = round_0.record().apply(&genesis, &limits);
    assert!(founded.is_ok(), "round 0 does not apply: {founded:?}");
    let Ok((state, _, _)) = founded else {
        return;
    };
    assert!(round_1.record().apply(&state, &limits).is_ok());

    let mut unsealed = round_1.record();
    unsealed.seal = None;
    assert!(matches!(
        unsealed.apply(&state, &limits),
        Err(slotmesh_proto::FinalRoundError::Stages(1))
    ));

    let mut other_seal = round_1.record();
    if let Some(seal) = other_seal.seal.as_mut() {
        seal.digest = slotmesh_proto::Digest([9; 32]);
    }
    assert!(matches!(
        other_seal.apply(&state, &limits),
        Err(slotmesh_proto::FinalRoundError::SealMismatch { .. })
    ));

    // A reveal whose commit is not among the sealed messages, under a seal that a majority
    // of the voters did sign for the messages without that commit.
    let bidder = agent(1);
    let kept: Vec<SignedMessage> = round_1
        .inputs()
        .iter()
        .filter(|m| !(m.sender() == bidder.id() && turn_kind(m) == PayloadKind::Commit))
        .cloned()
        .collect();
    let mut without = slotmesh_proto::RoundMessages::new(1);
    for m in &kept {
        without.insert(m.clone());
    }
    assert!(without.has_spoken(&bidder.id(), PayloadKind::Reveal));
    let digest = without.sealed_part().inputs_digest();
    let vote = slotmesh_proto::Payload::CheckpointVote(slotmesh_proto::CheckpointVote {
        stage: Stage::Seal,
        digest,
        attempt: 0,
    });
    let voters: std::collections::BTreeSet<_> = (0..3u8).map(|i| agent(i).id()).collect();
    let proposer = (0..3u8)
        .map(agent)
        .find(|a| slotmesh_proto::proposer(&voters, 1, 0) == Some(a.id()));
    assert!(proposer.is_some(), "no proposer among the voters");
    let Some(proposer) = proposer else {
        return;
    };
    let proposal = slotmesh_proto::Payload::Proposal(slotmesh_proto::Proposal {
        stage: Stage::Seal,
        attempt: 0,
        digest,
        bound: None,
    });
    let mut stray = round_1.record();
    stray.messages = kept.iter().map(SignedMessage::envelope).collect();
    stray.seal = Some(slotmesh_proto::CheckpointCertificate {
        round: 1,
        stage: Stage::Seal,
        digest,
        attempt: 0,
        votes: (0..3u8)
            .map(|i| sign(&agent(i), 1, vote.clone()).envelope())
            .collect(),
        justification: vec![sign(&proposer, 1, proposal).envelope()],
    });
    assert!(matches!(
        stray.apply(&state, &limits),
        Err(slotmesh_proto::FinalRoundError::StrayMessage(_))
    ));
}
