//! Attacks on the punishment of contradictions (protocol version 5): framing honest voters,
//! splitting replicas with evidence, escaping the bar, and stalling rounds through the new
//! vote counting. Written by a reviewer with a fresh context; the punishment withstood these
//! (the attacks that broke it, on the watch, are in watch_attacks.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod net;

use common::*;
use net::*;
use slotmesh_proto::{
    codec, contradicts, open_carried, Accepted, Acceptor, AgentId, CheckpointVote, Envelope,
    Identity, Limits, Message, Offence, Payload, PayloadKind, Phase, SignedMessage, Stage, SwarmId,
    VoteTally, DOMAIN_TAG, PROTOCOL_VERSION,
};
use std::collections::BTreeSet;

fn punished(outcome: &slotmesh_proto::RoundOutcome) -> Vec<AgentId> {
    outcome
        .offences
        .iter()
        .filter(|(_, o)| *o == Offence::Contradiction)
        .map(|(id, _)| *id)
        .collect()
}

/// Signs `message` with `who`'s key as-is (any version, any encoding of the body).
fn raw_envelope(who: &Identity, body: Vec<u8>) -> Envelope {
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(&who.secret());
    let mut input = DOMAIN_TAG.to_vec();
    input.extend_from_slice(&body);
    Envelope {
        body,
        signature: key.sign(&input),
    }
}

fn message_of(
    who: &Identity,
    version: u16,
    swarm: SwarmId,
    round: u64,
    payload: Payload,
) -> Message {
    Message {
        version,
        swarm,
        round,
        sender: who.id(),
        payload,
    }
}

// ----- 1. framing an honest member -----

/// Every sequence of up to five steps an honest `Acceptor` allows (promises to later
/// attempts, reporting its last vote; at most one vote an attempt, never behind a promise),
/// signed as the engine signs them: no two of the messages contradict each other.
#[test]
fn an_honest_acceptor_never_signs_a_contradicting_pair() {
    let who = agent(1);
    // Operations: promise(a) for a in 1..=3, vote(a, digest) for a in 0..=3, digest 1 or 2.
    let mut ops: Vec<(bool, u32, u8)> = Vec::new();
    for a in 1..=3 {
        ops.push((true, a, 0));
    }
    for a in 0..=3 {
        for digest in 1..=2 {
            ops.push((false, a, digest));
        }
    }
    let mut checked = 0usize;
    let len = 5;
    let total = ops.len().pow(len as u32);
    for code in 0..total {
        let mut c = code;
        let mut acceptor = Acceptor::default();
        let mut signed: Vec<SignedMessage> = Vec::new();
        for _ in 0..len {
            let (is_promise, attempt, digest) = ops[c % ops.len()];
            c /= ops.len();
            if is_promise {
                if let Some(p) = acceptor.promise(Stage::Outcome, attempt) {
                    signed.push(sign(&who, 1, Payload::Promise(p)));
                }
            } else if acceptor.vote(attempt, d(digest)) {
                signed.push(vote(&who, 1, Stage::Outcome, attempt, d(digest)));
            }
        }
        for (i, a) in signed.iter().enumerate() {
            for b in &signed[i + 1..] {
                assert!(
                    !contradicts(a, b) && !contradicts(b, a),
                    "honest sequence {code}: {a:?} / {b:?}"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, total);
}

/// Pairs an honest member signs (or that were never its pair at all) do not punish it,
/// whoever reports them: the founding round's re-votes in a new attempt, a promise after a
/// vote, a proposer's proposal and its own vote, one attempt in the two agreements, one
/// attempt in two rounds; and nothing forged, re-encoded, of another version or another
/// swarm proves anything.
#[test]
fn evidence_against_an_honest_member_never_punishes_it() {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let state = founded(&all);
    let honest = &all[2];
    let v = |round, stage, attempt, n| vote(honest, round, stage, attempt, d(n)).envelope();
    let accepted = |attempt, n| {
        Some(Accepted {
            attempt,
            digest: d(n),
        })
    };
    // A vote of an old protocol version (a version-4 vote and a version-5 vote that
    // contradict it), and a contradicting pair of version 4.
    let old = |attempt: u32, n: u8| {
        let m = message_of(
            honest,
            PROTOCOL_VERSION - 1,
            swarm(),
            1,
            Payload::CheckpointVote(CheckpointVote {
                stage: Stage::Outcome,
                digest: d(n),
                attempt,
            }),
        );
        raw_envelope(honest, codec::encode(&m))
    };
    // The honest vote's body with one byte flipped, the honest signature kept.
    let mut flipped = v(1, Stage::Outcome, 0, 1);
    let at = flipped.body.len() - 3;
    flipped.body[at] ^= 0x01;
    // The honest vote's body with trailing bytes (the signature kept, then re-signed by a
    // stranger's key: neither verifies under the honest key).
    let mut trailing = v(1, Stage::Outcome, 0, 1);
    trailing.body.push(0);
    let stranger = raw_envelope(&all[0], trailing.body.clone());
    // Another swarm.
    let elsewhere = |n| {
        honest
            .sign(
                SwarmId::from_name("elsewhere"),
                1,
                Payload::CheckpointVote(CheckpointVote {
                    stage: Stage::Outcome,
                    digest: d(n),
                    attempt: 0,
                }),
            )
            .envelope()
    };
    // The honest vote with a signature made for another message.
    let mut swapped_signature = v(1, Stage::Outcome, 0, 2);
    swapped_signature.signature = v(1, Stage::Outcome, 0, 1).signature;
    let cases: Vec<(&str, Envelope, Envelope)> = vec![
        (
            "founding re-vote in a new attempt",
            vote(honest, 0, Stage::Outcome, 0, d(1)).envelope(),
            vote(honest, 0, Stage::Outcome, 1, d(2)).envelope(),
        ),
        (
            "a vote and the promise that reports it",
            v(1, Stage::Outcome, 2, 1),
            promise_in(honest, 1, Stage::Outcome, 5, accepted(2, 1)).envelope(),
        ),
        (
            "a jump: promise to attempt 18 reporting the vote of attempt 2",
            v(1, Stage::Seal, 2, 1),
            promise_in(honest, 1, Stage::Seal, 18, accepted(2, 1)).envelope(),
        ),
        (
            "a promise before any vote, then a vote in the promised attempt",
            promise_in(honest, 1, Stage::Outcome, 3, None).envelope(),
            v(1, Stage::Outcome, 3, 1),
        ),
        (
            "a proposer's proposal and its own vote for it",
            proposal_in(honest, 1, Stage::Outcome, 0, d(1), None).envelope(),
            v(1, Stage::Outcome, 0, 1),
        ),
        (
            "proposals of one attempt in the two agreements",
            proposal_in(honest, 1, Stage::Seal, 0, d(1), None).envelope(),
            proposal_in(honest, 1, Stage::Outcome, 0, d(2), None).envelope(),
        ),
        (
            "proposals of one attempt in two rounds",
            proposal_in(honest, 1, Stage::Outcome, 0, d(1), None).envelope(),
            proposal_in(honest, 2, Stage::Outcome, 0, d(2), None).envelope(),
        ),
        (
            "a seal vote and an outcome promise reporting nothing",
            v(1, Stage::Seal, 0, 1),
            promise_in(honest, 1, Stage::Outcome, 1, None).envelope(),
        ),
        (
            "votes of one attempt in two rounds",
            v(1, Stage::Outcome, 0, 1),
            v(2, Stage::Outcome, 0, 2),
        ),
        (
            "a version-4 vote and a version-5 vote",
            old(0, 2),
            v(1, Stage::Outcome, 0, 1),
        ),
        ("two version-4 votes", old(0, 1), old(0, 2)),
        (
            "a tampered body under the honest signature",
            v(1, Stage::Outcome, 0, 2),
            flipped,
        ),
        (
            "a body with trailing bytes",
            v(1, Stage::Outcome, 0, 2),
            trailing,
        ),
        (
            "a body with trailing bytes signed by a stranger",
            v(1, Stage::Outcome, 0, 2),
            stranger,
        ),
        (
            "a signature of another message",
            v(1, Stage::Outcome, 0, 1),
            swapped_signature,
        ),
        ("messages of another swarm", elsewhere(1), elsewhere(2)),
        (
            "one message twice",
            v(1, Stage::Outcome, 0, 1),
            v(1, Stage::Outcome, 0, 1),
        ),
    ];
    for (what, first, second) in cases {
        for (a, b) in [(&first, &second), (&second, &first)] {
            let report = evidence(&all[0], 1, a.clone(), b.clone());
            let (next, outcome) = round_with(&state, &all, vec![report]);
            assert!(punished(&outcome).is_empty(), "{what}");
            assert!(next.members[&honest.id()].may_vote(), "{what}");
            assert!(
                next.members[&honest.id()].trust >= state.members[&honest.id()].trust,
                "{what}"
            );
        }
    }
}

/// The culprit signs a body in a non-canonical encoding (or of an old version): no replica
/// would ever have taken such a message, and the rule does not take it either, so nobody is
/// punished for messages that never counted; the same pair canonically signed does punish.
#[test]
fn only_canonical_current_messages_prove_a_contradiction() {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let state = founded(&all);
    let culprit = &all[3];
    let payload = |n| {
        Payload::CheckpointVote(CheckpointVote {
            stage: Stage::Outcome,
            digest: d(n),
            attempt: 300,
        })
    };
    let canonical = codec::encode(&message_of(
        culprit,
        PROTOCOL_VERSION,
        swarm(),
        1,
        payload(1),
    ));
    // bincode varint: 300 is [251, 44, 1]; the same value as a u32 marker is non-canonical.
    let mut longer = canonical.clone();
    let pos = longer
        .windows(3)
        .rposition(|w| w == [251, 44, 1])
        .expect("the attempt's encoding");
    longer.splice(pos..pos + 3, [252, 44, 1, 0, 0]);
    let non_canonical = raw_envelope(culprit, longer);
    assert!(open_carried(&non_canonical, swarm()).is_err());
    let other = vote(culprit, 1, Stage::Outcome, 300, d(2)).envelope();
    let (_, outcome) = round_with(
        &state,
        &all,
        vec![evidence(&all[0], 1, non_canonical, other.clone())],
    );
    assert!(punished(&outcome).is_empty());
    let fair = raw_envelope(culprit, canonical);
    let (_, outcome) = round_with(&state, &all, vec![evidence(&all[0], 1, fair, other)]);
    assert_eq!(punished(&outcome), vec![culprit.id()]);
}

/// Honest engines under loss, long delays, one-way links, duplicated delivery (every vote
/// ever signed delivered again to everyone, again and again) and a restart (a replica
/// replaced by a new engine from its last final state, silent through the round it was
/// in): no replica ever holds proof against anyone, no record punishes anyone, and
/// agreement holds.
#[test]
fn honest_engines_never_report_anyone_under_faults_restarts_and_duplicates() {
    use rand::{Rng, SeedableRng};
    for seed in 0..8u64 {
        let n = 4 + (seed % 2) as usize;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xbad);
        let cut: Vec<(usize, usize, u64)> = (0..n)
            .map(|_| {
                (
                    rng.gen_range(0..n),
                    rng.gen_range(0..n),
                    rng.gen_range(0..20 * TIMEOUT_MS),
                )
            })
            .collect();
        let mut fate = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let nemesis: Nemesis = Box::new(move |from, to, _m, now| {
            if cut.iter().any(|(a, b, start)| {
                *a == from && *b == to && (*start..*start + 2 * TIMEOUT_MS).contains(&now)
            }) {
                return Fate::Drop;
            }
            match fate.gen_range(0..40) {
                0 => Fate::Drop,
                1 | 2 => Fate::Delay(fate.gen_range(0..3 * TIMEOUT_MS)),
                _ => Fate::Deliver,
            }
        });
        let mut net = Net::new(n, seed, nemesis);
        let restarted = (seed as usize) % n;
        let mut restart_done = false;
        let all_at = |net: &Net, round: u64| (0..n).all(|h| net.final_round_of(h) >= Some(round));
        while !all_at(&net, 8) && net.now < 150 * TIMEOUT_MS {
            net.run_until(net.now + 2 * TIMEOUT_MS, |net| all_at(net, 8));
            net.publish_all_votes();
            net.check_no_contradictions();
            if !restart_done && all_at(&net, 3) {
                restart_done = true;
                net.restart(restarted, false);
            }
        }
        assert!(restart_done, "seed {seed}: the restart happened");
        net.check_agreement();
        net.check_records();
        net.check_no_contradictions();
        assert!(all_at(&net, 8), "seed {seed}: every replica went on");
    }
}

/// The founding round re-votes in a new attempt, for another digest, when a founder's join
/// reaches some founders late (unanimity: an attempt is left only when it cannot finish).
/// Those votes are not contradictions: nobody holds proof, nobody is punished.
#[test]
fn founding_re_votes_are_not_contradictions() {
    let mut re_votes = 0;
    for seed in 0..12u64 {
        let n = 4;
        let late = (seed % n as u64) as usize;
        let slow = ((seed / n as u64 + 1 + late as u64) % n as u64) as usize;
        let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
            if from == late && to == slow && m.is_some_and(|m| turn_kind(m) == PayloadKind::Join) {
                Fate::Delay(TIMEOUT_MS + TIMEOUT_MS / 2)
            } else {
                Fate::Deliver
            }
        });
        let mut net = Net::founding(n, n - 1, seed, nemesis);
        net.run(30 * TIMEOUT_MS);
        net.publish_all_votes();
        re_votes += net
            .votes
            .iter()
            .filter(|(round, _, _, attempt, _)| *round == 0 && *attempt > 0)
            .count();
        net.check_agreement();
        net.check_no_contradictions();
        for h in 0..n {
            assert!(net.final_round_of(h) >= Some(2), "seed {seed}: host {h}");
        }
    }
    assert!(re_votes > 0, "some founding round went to a second attempt");
}

// ----- 2. determinism -----

/// Evidence that reaches some replicas only, after the seal at one of them, and two
/// different reports by one member sent to different replicas: the seal decides which
/// reports count (both: the member equivocated and neither counts; one: it counts), every
/// replica stores the same digests and the same punishments, and every record replays.
#[test]
fn evidence_seen_by_some_replicas_or_after_the_seal_never_splits_them() {
    for seed in 0..4u64 {
        let n = 4;
        let mut net = Net::new(n, seed, Box::new(|_, _, _, _| Fate::Deliver));
        let (culprit, twice, late) = (agent(0), agent(1), agent(2));
        let v1 = vote(&culprit, 1, Stage::Outcome, 40, d(1));
        let v2 = vote(&culprit, 1, Stage::Outcome, 40, d(2));
        // Buffered as next-round messages while the swarm founds.
        let one = evidence(&twice, 1, v1.envelope(), v2.envelope());
        let other = evidence(&twice, 1, v2.envelope(), v1.envelope());
        for to in 0..n {
            inject(
                &mut net,
                to,
                if to < 2 { one.clone() } else { other.clone() },
            );
        }
        // A third member's report reaches one replica once it has sealed round 1.
        let target = 3;
        assert!(net.run_until(20 * TIMEOUT_MS, |net| {
            in_phase(net, target, 1, Phase::Reveal) || in_finalize(net, target, 1)
        }));
        inject(
            &mut net,
            target,
            evidence(&late, 1, v1.envelope(), v2.envelope()),
        );
        run_to(&mut net, None, 2);
        net.check_agreement();
        net.check_records();
        let mut records: Vec<_> = (0..n)
            .map(|h| {
                let state = net.engines[h].as_ref().unwrap().state();
                (
                    state.members[&culprit.id()].offences,
                    state.members[&twice.id()].offences,
                )
            })
            .collect();
        records.dedup();
        assert_eq!(records.len(), 1, "seed {seed}: {records:#?}");
    }
}

// ----- 3. liveness -----

/// Every member sends, every round, a report as large as a message may be that proves
/// nothing (junk bodies, or two honest messages that do not contradict): rounds go on,
/// nobody is punished, every record replays.
#[test]
fn a_flood_of_empty_reports_stalls_nothing_and_punishes_no_one() {
    let n = 4;
    let mut net = Net::new(n, 3, Box::new(|_, _, _, _| Fate::Deliver));
    for round in 1..=3u64 {
        assert!(net.run_until(net.now + 50 * TIMEOUT_MS, |net| {
            (0..n).all(|h| round_of(net, h) >= round)
        }));
        for reporter in 0..n {
            let who = agent(reporter as u8);
            let report = if reporter % 2 == 0 {
                let junk = |b: u8| Envelope {
                    body: vec![b; 1_900],
                    signature: ed25519_dalek::Signature::from_bytes(&[b; 64]),
                };
                evidence(&who, round, junk(1), junk(2))
            } else {
                let honest = agent(((reporter + 1) % n) as u8);
                evidence(
                    &who,
                    round,
                    vote(&honest, round, Stage::Seal, 0, d(1)).envelope(),
                    vote(&honest, round, Stage::Seal, 1, d(2)).envelope(),
                )
            };
            assert!(report.bytes().len() <= Limits::default().max_message_bytes);
            for to in 0..n {
                inject(&mut net, to, report.clone());
            }
        }
    }
    run_to(&mut net, None, 4);
    net.check_agreement();
    net.check_records();
    net.check_no_contradictions();
}

/// The tally counts an equivocator's two votes of one attempt, each for its digest, so a
/// certificate forms whatever order they arrive in; a voter signing many digests and
/// attempts cannot make the tally grow.
#[test]
fn an_equivocating_voter_neither_splits_the_order_nor_grows_the_tally() {
    let all: Vec<Identity> = (0..3).map(agent).collect();
    let voters: BTreeSet<AgentId> = all.iter().map(Identity::id).collect();
    let (a, x) = (&all[0], &all[1]);
    let pool = [
        vote(a, 1, Stage::Outcome, 0, d(1)),
        vote(x, 1, Stage::Outcome, 0, d(1)),
        vote(x, 1, Stage::Outcome, 0, d(2)),
    ];
    for perm in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let mut tally = VoteTally::new(1, Stage::Outcome, voters.clone());
        for i in perm {
            tally.add(pool[i].clone());
        }
        let certificate = tally.certificate().expect("a certificate");
        assert_eq!(
            (certificate.attempt, certificate.digest),
            (0, d(1)),
            "{perm:?}"
        );
        assert_eq!(certificate.votes.len(), 2, "{perm:?}");
    }
    let mut tally = VoteTally::new(1, Stage::Outcome, voters);
    for attempt in 0..200u32 {
        for digest in 0..50u8 {
            tally.add(vote(x, 1, Stage::Outcome, attempt, d(digest)));
        }
    }
    assert!(
        tally.votes().len() <= 4,
        "{} votes kept",
        tally.votes().len()
    );
    assert!(tally.certificate().is_none());
}

/// A member barred for a contradiction cannot come back as a voter by leaving and joining
/// again with its key (a join from a known key admits nothing); and barring never hands the
/// vote to the barred: with two of five barred the three others are the voters, and when
/// all but one are barred that one alone votes.
#[test]
fn the_bar_holds_through_leave_and_rejoin_and_leaves_the_honest_voting() {
    let all: Vec<Identity> = (0..5).map(agent).collect();
    let mut state = founded(&all);
    for culprit in [&all[3], &all[4]] {
        let round = state.next_round;
        let a = vote(culprit, round, Stage::Seal, 0, d(1));
        let b = vote(culprit, round, Stage::Seal, 0, d(2));
        let proof = evidence(&all[0], round, a.envelope(), b.envelope());
        state = round_with(&state, &all, vec![proof]).0;
    }
    let honest: BTreeSet<AgentId> = all[..3].iter().map(Identity::id).collect();
    assert_eq!(state.voters_for(&state), honest);
    // The culprit leaves, then joins again with its key.
    let culprit = &all[4];
    let round = state.next_round;
    state = round_with(&state, &all, vec![leave(culprit, round)]).0;
    let round = state.next_round;
    state = round_with(&state, &all, vec![join(culprit, round, "again")]).0;
    let record = &state.members[&culprit.id()];
    assert!(!record.is_active() && !record.may_vote());
    assert!(!state.voters_for(&state).contains(&culprit.id()));
    // All but one barred: that one votes alone.
    for culprit in [&all[1], &all[2]] {
        let round = state.next_round;
        let a = proposal_in(culprit, round, Stage::Outcome, 3, d(1), None);
        let b = proposal_in(culprit, round, Stage::Outcome, 3, d(2), None);
        let proof = evidence(&all[0], round, a.envelope(), b.envelope());
        state = round_with(&state, &all, vec![proof]).0;
    }
    assert_eq!(state.voters_for(&state), BTreeSet::from([all[0].id()]));
}
