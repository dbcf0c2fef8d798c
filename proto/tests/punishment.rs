//! Punishment of contradictions (protocol version 5): a member that signs two agreement
//! messages breaking the acceptor rule is reported with the two messages
//! ([`Payload::Evidence`]), and the rule takes its trust to the floor and bars it from voting
//! for good. Through the rule (what counts as proof) and through the engine (a replica that
//! sees the contradiction reports it, and every replica records the same punishment).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod net;

use common::*;
use net::*;
use slotmesh_proto::{
    after_honest_round, Accepted, AgentId, CheckpointVote, Digest, Envelope, Identity, Offence,
    Payload, Promise, Proposal, SignedMessage, Stage, SwarmId, TRUST_FLOOR,
};
use std::collections::BTreeSet;

fn promise(who: &Identity, round: u64, attempt: u32, accepted: Option<Accepted>) -> SignedMessage {
    sign(
        who,
        round,
        Payload::Promise(Promise {
            stage: Stage::Outcome,
            attempt,
            accepted,
        }),
    )
}

fn proposal(who: &Identity, round: u64, attempt: u32, digest: Digest) -> SignedMessage {
    sign(
        who,
        round,
        Payload::Proposal(Proposal {
            stage: Stage::Outcome,
            attempt,
            digest,
            bound: None,
        }),
    )
}

fn punished(outcome: &slotmesh_proto::RoundOutcome) -> Vec<AgentId> {
    outcome
        .offences
        .iter()
        .filter(|(_, o)| *o == Offence::Contradiction)
        .map(|(id, _)| *id)
        .collect()
}

/// Each kind of contradiction `contradicts` accepts, signed by `who` in round `round`.
fn contradictions(who: &Identity, round: u64) -> Vec<(&'static str, SignedMessage, SignedMessage)> {
    let voted = Accepted {
        attempt: 1,
        digest: d(1),
    };
    vec![
        (
            "two votes in one attempt",
            vote(who, round, Stage::Outcome, 0, d(1)),
            vote(who, round, Stage::Outcome, 0, d(2)),
        ),
        (
            "two proposals in one attempt",
            proposal(who, round, 2, d(1)),
            proposal(who, round, 2, d(2)),
        ),
        (
            "a promise that reports no vote after one",
            vote(who, round, Stage::Outcome, 1, d(1)),
            promise(who, round, 3, None),
        ),
        (
            "a promise that reports an earlier vote",
            vote(who, round, Stage::Outcome, 2, d(1)),
            promise(who, round, 3, Some(voted)),
        ),
        (
            "a promise that reports another vote in the attempt",
            vote(who, round, Stage::Outcome, 1, d(2)),
            promise(who, round, 3, Some(voted)),
        ),
    ]
}

#[test]
fn every_kind_of_contradiction_bars_the_signer_and_takes_its_trust() {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let founded = founded(&all);
    let culprit = &all[3];
    for (what, first, second) in contradictions(culprit, 1) {
        let proof = evidence(&all[0], 1, first.envelope(), second.envelope());
        let (next, outcome) = round_with(&founded, &all, vec![proof]);
        assert_eq!(punished(&outcome), vec![culprit.id()], "{what}");
        let record = &next.members[&culprit.id()];
        assert_eq!(record.offences.contradictions, 1, "{what}");
        assert_eq!(record.trust, TRUST_FLOOR, "{what}");
        assert!(!record.may_vote() && record.is_active(), "{what}");
        let voters = next.voters_for(&next);
        assert!(!voters.contains(&culprit.id()), "{what}");
        assert_eq!(voters.len(), 3, "{what}");
        // The order of the two messages does not matter.
        let swapped = evidence(&all[1], 1, second.envelope(), first.envelope());
        let (_, outcome) = round_with(&founded, &all, vec![swapped]);
        assert_eq!(punished(&outcome), vec![culprit.id()], "{what}, swapped");
    }
}

#[test]
fn a_culprit_is_punished_once_whoever_reports_it_and_however_often() {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let state = founded(&all);
    let culprit = &all[2];
    let kinds = contradictions(culprit, 1);
    let reports: Vec<SignedMessage> = kinds
        .iter()
        .zip([&all[0], &all[1], &all[3]])
        .map(|((_, a, b), reporter)| evidence(reporter, 1, a.envelope(), b.envelope()))
        .collect();
    let (next, outcome) = round_with(&state, &all, reports);
    assert_eq!(punished(&outcome), vec![culprit.id()]);
    assert_eq!(next.members[&culprit.id()].offences.contradictions, 1);
    // Reported again in a later round (an old proof, about an old round): nothing more.
    let (_, a, b) = &kinds[0];
    let again = evidence(&all[0], 2, a.envelope(), b.envelope());
    let (after, outcome) = round_with(&next, &all, vec![again]);
    assert!(punished(&outcome).is_empty());
    assert_eq!(after.members[&culprit.id()].offences.contradictions, 1);
}

#[test]
fn evidence_that_proves_nothing_punishes_no_one() {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let state = founded(&all);
    let c = &all[3];
    let other_swarm = |m: Payload| c.sign(SwarmId::from_name("elsewhere"), 1, m);
    let mut tampered = vote(c, 1, Stage::Seal, 0, d(2)).envelope();
    if let Some(byte) = tampered.body.last_mut() {
        *byte ^= 1;
    }
    let honest: Vec<(&str, Envelope, Envelope)> = vec![
        (
            "votes in two attempts",
            vote(c, 1, Stage::Seal, 0, d(1)).envelope(),
            vote(c, 1, Stage::Seal, 1, d(2)).envelope(),
        ),
        (
            "votes of two agreements",
            vote(c, 1, Stage::Seal, 0, d(1)).envelope(),
            vote(c, 1, Stage::Outcome, 0, d(2)).envelope(),
        ),
        (
            "votes of two rounds",
            vote(c, 1, Stage::Seal, 0, d(1)).envelope(),
            vote(c, 2, Stage::Seal, 0, d(2)).envelope(),
        ),
        (
            "votes of two signers",
            vote(c, 1, Stage::Seal, 0, d(1)).envelope(),
            vote(&all[1], 1, Stage::Seal, 0, d(2)).envelope(),
        ),
        (
            "a promise that reports the vote",
            vote(c, 1, Stage::Outcome, 1, d(1)).envelope(),
            promise(
                c,
                1,
                2,
                Some(Accepted {
                    attempt: 1,
                    digest: d(1),
                }),
            )
            .envelope(),
        ),
        (
            "a promise that reports a later vote",
            vote(c, 1, Stage::Outcome, 1, d(1)).envelope(),
            promise(
                c,
                1,
                4,
                Some(Accepted {
                    attempt: 3,
                    digest: d(2),
                }),
            )
            .envelope(),
        ),
        (
            "a promise before the vote",
            promise(c, 1, 1, None).envelope(),
            vote(c, 1, Stage::Outcome, 2, d(1)).envelope(),
        ),
        (
            "a forged signature",
            vote(c, 1, Stage::Seal, 0, d(1)).envelope(),
            tampered,
        ),
        (
            "messages of another swarm",
            other_swarm(Payload::CheckpointVote(CheckpointVote {
                stage: Stage::Seal,
                digest: d(1),
                attempt: 0,
            }))
            .envelope(),
            other_swarm(Payload::CheckpointVote(CheckpointVote {
                stage: Stage::Seal,
                digest: d(2),
                attempt: 0,
            }))
            .envelope(),
        ),
        (
            "two claims (an equivocation of a turn, punished as such)",
            claim(c, 1, 3).envelope(),
            claim(c, 1, 4).envelope(),
        ),
    ];
    for (what, first, second) in honest {
        let (next, outcome) = round_with(&state, &all, vec![evidence(&all[0], 1, first, second)]);
        assert!(punished(&outcome).is_empty(), "{what}");
        assert!(next.members[&c.id()].may_vote(), "{what}");
    }
}

#[test]
fn evidence_counts_only_from_members_that_do_not_equivocate() {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let state = founded(&all);
    let c = &all[3];
    let kinds = contradictions(c, 1);
    let (_, a, b) = &kinds[0];
    // An outsider's report is not an input of the round at all.
    let outsider = agent(9);
    assert!(!state.consumes(&evidence(&outsider, 1, a.envelope(), b.envelope())));
    // A member that sends two different reports in one round equivocates: neither counts.
    let (_, a2, b2) = &kinds[1];
    let (next, outcome) = round_with(
        &state,
        &all,
        vec![
            evidence(&all[0], 1, a.envelope(), b.envelope()),
            evidence(&all[0], 1, a2.envelope(), b2.envelope()),
        ],
    );
    assert!(punished(&outcome).is_empty());
    assert!(next.members[&c.id()].may_vote());
    assert_eq!(next.members[&all[0].id()].offences.equivocations, 1);
}

#[test]
fn barring_every_member_still_leaves_a_voter_set() {
    let all: Vec<Identity> = (0..2).map(agent).collect();
    let mut state = founded(&all);
    for (i, culprit) in all.iter().enumerate() {
        let kinds = contradictions(culprit, state.next_round);
        let (_, a, b) = &kinds[0];
        let reporter = &all[1 - i];
        let proof = evidence(reporter, state.next_round, a.envelope(), b.envelope());
        state = round_with(&state, &all, vec![proof]).0;
    }
    assert!(all.iter().all(|a| !state.members[&a.id()].may_vote()));
    let voters: BTreeSet<AgentId> = all.iter().map(Identity::id).collect();
    assert_eq!(state.voters_for(&state), voters);
}

// ----- through the engine -----

/// A voter of round 1 signs a contradiction that reaches one replica only; the others never
/// see it. That replica reports it in round 2, the rule bars the voter, and from round 3 on
/// every replica's voters leave it out, with the same record everywhere.
#[test]
fn a_replica_that_sees_a_contradiction_reports_it_and_every_record_punishes_it() {
    for (k, (what, _, _)) in contradictions(&agent(0), 1).iter().enumerate() {
        for seed in 0..3u64 {
            let (mut net, b, h) = finalizing_replica(seed * 10 + k as u64);
            let culprit = agent(b as u8);
            let kinds = contradictions(&culprit, 1);
            let (_, first, second) = &kinds[k];
            inject(&mut net, h, first.clone());
            inject(&mut net, h, second.clone());
            assert_eq!(
                net.engines[h].as_ref().map(|e| e.contradicting()),
                Some(vec![culprit.id()]),
                "{what}, seed {seed}: the replica caught it"
            );
            run_to(&mut net, Some(b), 3);
            net.check_agreement();
            net.check_records();
            for (i, engine) in net.engines.iter().enumerate() {
                let Some(engine) = engine else { continue };
                let state = engine.state();
                assert_eq!(
                    state.members[&culprit.id()].offences.contradictions,
                    1,
                    "{what}, seed {seed}, host {i}"
                );
                // At the floor, or one honest round above it (version 7 repairs 1/32 of
                // the trust itself below 0.5).
                let trust = state.members[&culprit.id()].trust;
                assert!(
                    trust == TRUST_FLOOR || trust == after_honest_round(TRUST_FLOOR, 0),
                    "{what}, seed {seed}, host {i}: trust {trust}"
                );
                assert!(!state.voters_for(state).contains(&culprit.id()));
                assert!(
                    engine.contradicting().is_empty(),
                    "{what}, seed {seed}, host {i}: the proof is dropped once punished"
                );
                for (id, member) in &state.members {
                    if *id != culprit.id() {
                        assert_eq!(member.offences.contradictions, 0, "{what}: {id:?}");
                    }
                }
            }
        }
    }
}
