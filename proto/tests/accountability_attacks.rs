//! Attacks on accountable certificates (protocol version 4): certificates that verify but
//! name nobody, justifications that hang, and eviction games on `AgreementLog` that keep an
//! honest replica from justifying an honest proposal. Written by a reviewer with a fresh
//! context; the hang and the two eviction games failed before the fix that followed. The two
//! tests still `#[ignore]`d assert what the code does not do yet: known limits, written down
//! in docs/PROTOCOL.md §7.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use slotmesh_proto::{
    check_justification, culprits, majority, proposer, Accepted, Acceptor, AgentId, AgreementLog,
    CertificateError, CheckpointCertificate, Digest, Identity, JustificationError, Limits, Payload,
    Promise, SignedMessage, Stage,
};
use std::collections::BTreeSet;
use std::time::Duration;

const R: u64 = 1;
const S: Stage = Stage::Outcome;

/// Identities sorted by id, so `v[i]` is the voter at position `i`.
fn sorted(n: usize) -> Vec<Identity> {
    let mut all: Vec<Identity> = (0..n)
        .map(|i| {
            let mut secret = [7u8; 32];
            secret[0] = i as u8;
            secret[1] = (i >> 8) as u8;
            Identity::from_secret(secret)
        })
        .collect();
    all.sort_by_key(Identity::id);
    all
}

fn ids(all: &[Identity]) -> BTreeSet<AgentId> {
    all.iter().map(Identity::id).collect()
}

fn proposer_of(all: &[Identity], round: u64, attempt: u32) -> &Identity {
    let p = proposer(&ids(all), round, attempt).unwrap();
    all.iter().find(|i| i.id() == p).unwrap()
}

fn proposal(
    who: &Identity,
    round: u64,
    attempt: u32,
    digest: Digest,
    bound: Option<u32>,
) -> SignedMessage {
    proposal_in(who, round, S, attempt, digest, bound)
}

fn promise(
    who: &Identity,
    round: u64,
    attempt: u32,
    accepted: Option<(u32, Digest)>,
) -> SignedMessage {
    let accepted = accepted.map(|(attempt, digest)| Accepted { attempt, digest });
    promise_in(who, round, S, attempt, accepted)
}

fn vote(who: &Identity, round: u64, attempt: u32, digest: Digest) -> SignedMessage {
    common::vote(who, round, S, attempt, digest)
}

fn certificate(
    round: u64,
    attempt: u32,
    digest: Digest,
    votes: &[SignedMessage],
    justification: &[SignedMessage],
) -> CheckpointCertificate {
    CheckpointCertificate {
        round,
        stage: S,
        digest,
        attempt,
        votes: votes.iter().map(SignedMessage::envelope).collect(),
        justification: justification.iter().map(SignedMessage::envelope).collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Accountability: attacks the code resists.
// ---------------------------------------------------------------------------------------

/// The tie case of PROTOCOL §6: the later chain is bound to a vote in `a₁` with a *higher*
/// digest, while an honest voter of `C₁` reports its own lower-digest vote in `a₁` (allowed:
/// only the maximum must equal the bound). The equivocating proposer of `a₁` is named, the
/// honest voter (which ran the real `Acceptor`) is not.
#[test]
fn tie_at_the_bound_attempt_names_the_equivocating_proposer_only() {
    let v = sorted(3);
    let (lo, hi) = (d(1), d(2));
    let p1 = proposer_of(&v, R, 1); // byzantine: two proposals in attempt 1
    assert_eq!(p1.id(), v[2].id());
    let (honest_a, honest_c) = (&v[0], &v[1]);
    // The honest voter follows the Acceptor rules throughout.
    let mut acc = Acceptor::default();
    assert!(acc.promise(S, 1).is_some());
    let prom1_a = promise(honest_a, R, 1, None);
    let prom1_c = promise(honest_c, R, 1, None);
    let prop1_lo = proposal(p1, R, 1, lo, None);
    let prop1_hi = proposal(p1, R, 1, hi, None);
    assert!(acc.vote(1, lo));
    let c1_votes = [vote(honest_a, R, 1, lo), vote(honest_c, R, 1, lo)];
    let c1 = certificate(
        R,
        1,
        lo,
        &c1_votes,
        &[prop1_lo.clone(), prom1_a.clone(), prom1_c.clone()],
    );
    let p = acc.promise(S, 2).unwrap();
    assert_eq!(
        p.accepted,
        Some(Accepted {
            attempt: 1,
            digest: lo
        })
    );
    let prom2_a = promise(honest_a, R, 2, Some((1, lo)));
    let prom2_p1 = promise(p1, R, 2, Some((1, hi)));
    let prop2 = proposal(proposer_of(&v, R, 2), R, 2, hi, Some(1));
    assert!(acc.vote(2, hi));
    let c2_votes = [vote(honest_a, R, 2, hi), vote(p1, R, 2, hi)];
    let c2 = certificate(
        R,
        2,
        hi,
        &c2_votes,
        &[prop2, prom2_a, prom2_p1, prop1_hi, prom1_a, prom1_c],
    );
    let voters = ids(&v);
    let one = c1.verify(swarm(), &voters, &Limits::default()).unwrap();
    let two = c2.verify(swarm(), &voters, &Limits::default()).unwrap();
    let named = culprits(&one, &two);
    assert!(!named.is_empty());
    assert!(named.iter().all(|c| c.signer == p1.id()), "{named:?}");
    assert!(named
        .iter()
        .all(|c| slotmesh_proto::contradicts(&c.first, &c.second)));
}

/// Malformed justifications: duplicates, another stage or round, a promise from a
/// non-voter, an unused extra message, a chain bound to a missing link. All refused.
#[test]
fn malformed_justifications_are_refused() {
    let v = sorted(3);
    let voters = ids(&v);
    let p1 = proposer_of(&v, R, 1);
    let prop = proposal(p1, R, 1, d(1), None);
    let pa = promise(&v[0], R, 1, None);
    let pb = promise(&v[1], R, 1, None);
    let ok = [prop.clone(), pa.clone(), pb.clone()];
    assert_eq!(check_justification(R, S, &voters, 1, d(1), &ok), Ok(()));
    // The same message twice.
    let dup = [prop.clone(), pa.clone(), pa.clone(), pb.clone()];
    assert!(check_justification(R, S, &voters, 1, d(1), &dup).is_err());
    // A promise of the other stage.
    let seal = sign(
        &v[1],
        R,
        Payload::Promise(Promise {
            stage: Stage::Seal,
            attempt: 1,
            accepted: None,
        }),
    );
    assert!(
        check_justification(R, S, &voters, 1, d(1), &[prop.clone(), pa.clone(), seal]).is_err()
    );
    // Another round.
    let other = promise(&v[1], R + 1, 1, None);
    assert!(
        check_justification(R, S, &voters, 1, d(1), &[prop.clone(), pa.clone(), other]).is_err()
    );
    // A non-voter's promise.
    let outsider = promise(&agent(200), R, 1, None);
    assert!(check_justification(
        R,
        S,
        &voters,
        1,
        d(1),
        &[prop.clone(), pa.clone(), outsider]
    )
    .is_err());
    // An extra, unused promise of another attempt.
    let extra = promise(&v[2], R, 5, None);
    assert_eq!(
        check_justification(
            R,
            S,
            &voters,
            1,
            d(1),
            &[prop.clone(), pa.clone(), pb.clone(), extra]
        ),
        Err(JustificationError::Unused(1))
    );
    // Bound to an attempt whose proposal is missing (a chain that skips).
    let p3 = proposer_of(&v, R, 3);
    let prop3 = proposal(p3, R, 3, d(1), Some(2));
    let q = [
        prop3,
        promise(&v[0], R, 3, Some((2, d(1)))),
        promise(&v[1], R, 3, None),
    ];
    assert!(matches!(
        check_justification(R, S, &voters, 3, d(1), &q),
        Err(JustificationError::NoProposal { attempt: 2, .. })
    ));
    // A proposal bound to itself does not decode (the check's loop relies on it).
    let looping = proposal(p3, R, 3, d(1), Some(3));
    let c = certificate(
        R,
        3,
        d(1),
        &[vote(&v[0], R, 3, d(1)), vote(&v[1], R, 3, d(1))],
        &[looping],
    );
    assert!(matches!(
        c.verify(swarm(), &voters, &Limits::default()),
        Err(CertificateError::BadVote(_))
    ));
}

/// Attempts at the top of the range and the smallest voter sets.
#[test]
fn extreme_attempts_and_tiny_voter_sets() {
    for n in [1usize, 2] {
        let v = sorted(n);
        let voters = ids(&v);
        let need = majority(n);
        let top = u32::MAX;
        let p = proposer_of(&v, R, top);
        let mut j = vec![proposal(p, R, top, d(1), None)];
        j.extend(v.iter().take(need).map(|w| promise(w, R, top, None)));
        assert_eq!(check_justification(R, S, &voters, top, d(1), &j), Ok(()));
        // Conflicting certificates in attempts 0 and u32::MAX: the voters are named.
        let c1 = certificate(
            R,
            0,
            d(2),
            &v.iter()
                .take(need)
                .map(|w| vote(w, R, 0, d(2)))
                .collect::<Vec<_>>(),
            &[proposal(proposer_of(&v, R, 0), R, 0, d(2), None)],
        );
        let c2 = certificate(
            R,
            top,
            d(1),
            &v.iter()
                .take(need)
                .map(|w| vote(w, R, top, d(1)))
                .collect::<Vec<_>>(),
            &j,
        );
        let one = c1.verify(swarm(), &voters, &Limits::default()).unwrap();
        let two = c2.verify(swarm(), &voters, &Limits::default()).unwrap();
        assert!(!culprits(&one, &two).is_empty(), "{n} voters");
    }
}

// ---------------------------------------------------------------------------------------
// Accountability: gaps.
// ---------------------------------------------------------------------------------------

/// Founding round: `verify` accepts two unanimous certificates of round 0 for different
/// digests in different attempts (it checks neither the attempt nor a justification), and
/// `culprits` names nobody. Honest founders produce exactly these votes: when an attempt is
/// dead (a byzantine founder voted two digests in it) each founder revalues and votes what
/// it holds now in the next attempt (`Engine` finalize timeout, round 0). The byzantine
/// founder's double vote is in neither certificate.
#[test]
#[ignore = "known limit (PROTOCOL §7): the founding round has no proposer, so its certificates are not accountable"]
fn round0_conflicting_certificates_name_somebody() {
    let v = sorted(3);
    let voters = ids(&v);
    let c1_votes: Vec<_> = v.iter().map(|w| vote(w, 0, 0, d(1))).collect();
    let c2_votes: Vec<_> = v.iter().map(|w| vote(w, 0, 1, d(2))).collect();
    let one = certificate(0, 0, d(1), &c1_votes, &[])
        .verify(swarm(), &voters, &Limits::default())
        .unwrap();
    let two = certificate(0, 1, d(2), &c2_votes, &[])
        .verify(swarm(), &voters, &Limits::default())
        .unwrap();
    assert!(
        !culprits(&one, &two).is_empty(),
        "two verified round-0 certificates for different digests name nobody"
    );
}

// ---------------------------------------------------------------------------------------
// Resources: a justification that never ends.
// ---------------------------------------------------------------------------------------

/// `check_justification` is public and takes `SignedMessage`s, which `Identity::sign`
/// builds without the decoder's `bound < attempt` check; a proposal bound to its own
/// attempt makes the loop never end (and `AgreementLog::justify` recurse until the stack
/// overflows). Not reachable from the wire (`verify` re-decodes, see
/// `malformed_justifications_are_refused`), only through the API.
#[test]
fn check_justification_terminates_on_a_self_bound_proposal() {
    let v = sorted(3);
    let voters = ids(&v);
    let p = proposer_of(&v, R, 3);
    let j = vec![
        proposal(p, R, 3, d(1), Some(3)),
        promise(&v[0], R, 3, Some((3, d(1)))),
        promise(&v[1], R, 3, None),
    ];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(check_justification(R, S, &voters, 3, d(1), &j));
    });
    let result = rx.recv_timeout(Duration::from_secs(3));
    assert!(
        result.is_ok(),
        "check_justification still running after 3 s"
    );
}

// ---------------------------------------------------------------------------------------
// Liveness: a legitimate justification longer than verify allows.
// ---------------------------------------------------------------------------------------

/// A justification grows with every bound link back to the free proposal: `1 + majority`
/// messages per attempt in which some voter voted. `verify` caps it at `max_votes` (16,384),
/// so with 1,000 voters 33 such attempts (a partial vote in each, as an asynchronous
/// schedule gives) make the honest certificate unverifiable: every later attempt's is
/// longer still, and the round can never complete.
#[test]
#[ignore = "known limit (PROTOCOL §7): a justification grows with the attempts that got votes; past max_votes the round cannot complete"]
fn a_long_honest_justification_still_verifies() {
    let n = 1000;
    let links: u32 = 33;
    let v = sorted(n);
    let voters = ids(&v);
    let need = majority(n);
    let digest = d(9);
    // v[0] votes in every attempt and reports its last vote; the others report none.
    let mut justification = Vec::new();
    for k in (1..=links).rev() {
        let bound = (k > 1).then_some(k - 1);
        justification.push(proposal(proposer_of(&v, R, k), R, k, digest, bound));
        for (i, w) in v.iter().take(need).enumerate() {
            let reported = (i == 0).then_some(bound).flatten().map(|b| (b, digest));
            justification.push(promise(w, R, k, reported));
        }
    }
    assert_eq!(
        check_justification(R, S, &voters, links, digest, &justification),
        Ok(()),
        "the justification itself is valid"
    );
    let votes: Vec<_> = v
        .iter()
        .take(need)
        .map(|w| vote(w, R, links, digest))
        .collect();
    let c = certificate(R, links, digest, &votes, &justification);
    let verified = c.verify(swarm(), &voters, &Limits::default());
    assert!(
        verified.is_ok(),
        "{} messages of justification: {:?}",
        justification.len(),
        verified.err()
    );
}

// ---------------------------------------------------------------------------------------
// Liveness: eviction games on AgreementLog.
// ---------------------------------------------------------------------------------------

/// The honest part of the eviction scenarios, 3 voters (v0 byzantine): attempt 1 free
/// (v2 proposes, v1 votes), v1 and v2 move on through attempts 2..=6 reporting what they
/// hold, and attempt 6's proposal (v1) is bound to attempt 1. A replica needs the promises
/// of attempt 1, which are older than each voter's latest 4.
fn honest_bound_chain(v: &[Identity]) -> Vec<SignedMessage> {
    let (h1, h2) = (&v[1], &v[2]);
    assert_eq!(proposer_of(v, R, 1).id(), h2.id());
    assert_eq!(proposer_of(v, R, 6).id(), h1.id());
    let mut out = vec![
        promise(h1, R, 1, None),
        promise(h2, R, 1, None),
        proposal(h2, R, 1, d(1), None),
    ];
    for a in 2..=6 {
        out.push(promise(h1, R, a, Some((1, d(1)))));
        out.push(promise(h2, R, a, None));
    }
    out.push(proposal(h1, R, 6, d(1), Some(1)));
    out
}

#[test]
fn without_a_flood_the_bound_proposal_is_justified() {
    let v = sorted(3);
    let mut log = AgreementLog::new(R, S, ids(&v));
    for m in honest_bound_chain(&v) {
        log.add(m);
    }
    assert!(log.justify(6).is_some());
}

/// The pool of older promises is shared by all voters (`PROMISES_KEPT * voters`, evicting the
/// lowest attempt first) although PROTOCOL §6 says "4 older promises per voter": one
/// byzantine voter signing promises for later attempts pushes its own into the pool and
/// evicts the honest voters' promises of attempt 1, so the honest proposal of attempt 6 can
/// no longer be justified and no honest voter holding this log votes for it. The byzantine
/// voter can replay the same messages after every re-send.
#[test]
fn a_byzantine_promise_flood_does_not_evict_honest_older_promises() {
    let v = sorted(3);
    let mut log = AgreementLog::new(R, S, ids(&v));
    for m in honest_bound_chain(&v) {
        log.add(m);
    }
    for a in 100..120 {
        log.add(promise(&v[0], R, a, None));
    }
    assert!(
        log.justify(6).is_some(),
        "the honest proposal of attempt 6 is no longer justifiable"
    );
}

/// The same with older proposals: the pool holds 16 whoever signed them, the lowest attempt
/// evicted first. A byzantine proposer signing proposals for its own later attempts evicts
/// the honest free proposal of attempt 1, which every later bound link needs.
#[test]
fn a_byzantine_proposal_flood_does_not_evict_honest_older_proposals() {
    let v = sorted(3);
    let (h1, h2, b) = (&v[1], &v[2], &v[0]);
    // v2 proposes in attempts 1, 4 and 7; v1 votes in 1; 4 and 7 are bound to 1.
    let mut msgs = vec![
        promise(h1, R, 1, None),
        promise(h2, R, 1, None),
        proposal(h2, R, 1, d(1), None),
    ];
    for a in [4, 7] {
        assert_eq!(proposer_of(&v, R, a).id(), h2.id());
        msgs.push(promise(h1, R, a, Some((1, d(1)))));
        msgs.push(promise(h2, R, a, None));
        msgs.push(proposal(h2, R, a, d(1), Some(1)));
    }
    let mut clean = AgreementLog::new(R, S, ids(&v));
    let mut log = AgreementLog::new(R, S, ids(&v));
    for m in msgs {
        clean.add(m.clone());
        log.add(m);
    }
    assert!(clean.justify(7).is_some(), "baseline");
    for k in 0..20u32 {
        let a = 2 + 3 * k;
        assert_eq!(proposer_of(&v, R, a).id(), b.id());
        log.add(proposal(b, R, a, d(66), None));
    }
    assert!(
        log.justify(7).is_some(),
        "the honest proposal of attempt 7 is no longer justifiable"
    );
}

// ---------------------------------------------------------------------------------------
// Liveness in the engine: a byzantine voter flooding while messages are lost.
// ---------------------------------------------------------------------------------------

mod net;

/// Three replicas, one byzantine (muted in the agreement, speaking only through what the
/// test signs with its key): every timeout it sends every honest replica promises for 20
/// later attempts (pushing its older ones into the shared pool) and proposals for its own
/// attempts; the honest links drop 30% of the agreement messages for the first 40 timeouts.
/// The two honest voters (both needed for a majority) must still finalize round 1.
#[test]
fn a_flooding_byzantine_voter_with_lossy_links_does_not_stall_round_1() {
    flooded_round_1(true);
}

#[test]
fn baseline_lossy_links_without_flood_finalize_round_1() {
    flooded_round_1(false);
}

fn flooded_round_1(flooding: bool) {
    use rand::{Rng, SeedableRng};
    for seed in 0..4u64 {
        let n = 3;
        let b = net::proposer_host(n, 1, 0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let nemesis: net::Nemesis = Box::new(move |from, _to, m, now| {
            if from == b && m.is_none_or(|m| m.round() >= 1 && m.payload().kind().is_agreement()) {
                return net::Fate::Drop;
            }
            if now < 40 * net::TIMEOUT_MS
                && m.is_some_and(|m| m.round() >= 1 && m.payload().kind().is_agreement())
                && rng.gen_bool(0.3)
            {
                return net::Fate::Drop;
            }
            net::Fate::Deliver
        });
        let mut net = net::Net::new(n, seed, nemesis);
        let honest: Vec<usize> = (0..n).filter(|h| *h != b).collect();
        let who = agent(b as u8);
        let voters: BTreeSet<AgentId> = (0..n as u8).map(|i| agent(i).id()).collect();
        let mut base = 1u32;
        let mut batches = 0;
        let done = |net: &net::Net| honest.iter().all(|h| net.final_round_of(*h) >= Some(1));
        for _ in 0..120 {
            let until = net.now + net::TIMEOUT_MS;
            if net.run_until(until, done) {
                break;
            }
            net.now = net.now.max(until);
            if !flooding || !honest.iter().any(|h| net::in_finalize(&net, *h, 1)) {
                continue;
            }
            let mut flood = Vec::new();
            for a in base..base + 20 {
                flood.push(promise(&who, 1, a, None));
                if proposer(&voters, 1, a) == Some(who.id()) {
                    flood.push(proposal(&who, 1, a, d(0xee), None));
                }
            }
            base += 20;
            batches += 1;
            for h in &honest {
                for m in &flood {
                    net::inject(&mut net, *h, m.clone());
                }
            }
        }
        net.check_agreement();
        assert!(
            !flooding || batches > 0,
            "seed {seed}: the flood never started"
        );
        for h in &honest {
            assert!(
                net.final_round_of(*h) >= Some(1),
                "seed {seed}: host {h} never finalized round 1"
            );
        }
    }
}
