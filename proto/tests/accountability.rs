//! Accountable safety, checked against an adversary: honest voters run the real
//! `Acceptor`, `AgreementLog` (`choice`, `justify`) and `proposer` on whatever subset of the
//! messages the schedule delivers to them, byzantine voters sign anything at all, and an
//! omniscient adversary assembles every certificate it can from all messages ever signed.
//! Every pair of certificates that verify (`CheckpointCertificate::verify`) for different
//! digests must name a culprit (`culprits`), and only byzantine voters are ever named.
//! Without byzantine voters no two certificates conflict at all.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{
    culprits, majority, proposer, Accepted, Acceptor, AgentId, AgreementLog, CertifiedVotes,
    CheckpointCertificate, CheckpointVote, Choice, Digest, Identity, Limits, Payload, Promise,
    Proposal, SignedMessage, Stage,
};
use std::collections::{BTreeMap, BTreeSet};

const ROUND: u64 = 1;
const STAGE: Stage = Stage::Outcome;
const ATTEMPTS: u32 = 5;
const VALUES: [Digest; 3] = [Digest([1; 32]), Digest([2; 32]), Digest([3; 32])];

struct Honest {
    who: Identity,
    acceptor: Acceptor,
    log: AgreementLog,
    value: Digest,
}

struct World {
    voters: BTreeSet<AgentId>,
    byzantine: Vec<Identity>,
    honest: Vec<Honest>,
    sent: Vec<SignedMessage>,
}

impl World {
    fn new(n: u8, byzantine: u8, rng: &mut ChaCha8Rng) -> World {
        let all: Vec<Identity> = (0..n).map(agent).collect();
        let voters = all.iter().map(Identity::id).collect();
        let honest = all[usize::from(byzantine)..]
            .iter()
            .map(|who| Honest {
                who: who.clone(),
                acceptor: Acceptor::default(),
                log: AgreementLog::new(ROUND, STAGE, all.iter().map(Identity::id).collect()),
                value: VALUES[rng.gen_range(0..VALUES.len())],
            })
            .collect();
        World {
            voters,
            byzantine: all[..usize::from(byzantine)].to_vec(),
            honest,
            sent: Vec::new(),
        }
    }

    fn publish(&mut self, from: usize, message: SignedMessage) {
        self.honest[from].log.add(message.clone());
        self.sent.push(message);
    }

    /// One step of the schedule, chosen at random.
    fn step(&mut self, rng: &mut ChaCha8Rng) {
        let h = rng.gen_range(0..self.honest.len());
        match rng.gen_range(0..10) {
            // Deliveries are the most common step: any message, to any honest voter, late or
            // never; now and then everything sent so far (what a timeout's resends bring).
            0 | 1 => {
                for message in self.sent.clone() {
                    self.honest[h].log.add(message);
                }
            }
            2 | 3 if !self.sent.is_empty() => {
                let message = self.sent[rng.gen_range(0..self.sent.len())].clone();
                self.honest[h].log.add(message);
            }
            4 => {
                // Catching up with the attempt the others are provably in, as the engine does,
                // or a timeout: the next attempt, sometimes a jump.
                let me = &self.honest[h];
                let latest = me.log.latest_attempt();
                let attempt = if latest > me.acceptor.promised() {
                    latest
                } else if rng.gen_bool(0.3) {
                    (me.acceptor.promised() + 1).min(ATTEMPTS)
                } else if rng.gen_bool(0.1) {
                    rng.gen_range(1..=ATTEMPTS)
                } else {
                    return;
                };
                if let Some(promise) = self.honest[h].acceptor.promise(STAGE, attempt) {
                    let message = sign(&self.honest[h].who, ROUND, Payload::Promise(promise));
                    self.publish(h, message);
                }
            }
            5 => self.propose(h),
            6 | 7 => self.vote(h),
            _ => self.byzantine_step(rng),
        }
    }

    fn propose(&mut self, h: usize) {
        let me = &mut self.honest[h];
        let attempt = me.acceptor.promised();
        if proposer(&self.voters, ROUND, attempt) != Some(me.who.id()) {
            return;
        }
        let choice = if attempt == 0 {
            Some(Choice::Free)
        } else {
            me.log.choice(attempt)
        };
        let (digest, bound) = match choice {
            None => return,
            Some(Choice::Free) => (me.value, None),
            Some(Choice::Bound(latest)) => (latest.digest, Some(latest.attempt)),
        };
        let message = sign(
            &me.who,
            ROUND,
            Payload::Proposal(Proposal {
                stage: STAGE,
                attempt,
                digest,
                bound,
            }),
        );
        self.publish(h, message);
    }

    fn vote(&mut self, h: usize) {
        let me = &mut self.honest[h];
        let attempt = me.acceptor.promised();
        let Some(digest) = me.log.proposal(attempt) else {
            return;
        };
        if me.log.justify(attempt).is_none() || !me.acceptor.vote(attempt, digest) {
            return;
        }
        let message = sign(
            &me.who,
            ROUND,
            Payload::CheckpointVote(CheckpointVote {
                stage: STAGE,
                digest,
                attempt,
            }),
        );
        self.sent.push(message);
    }

    /// A byzantine voter signs any vote, promise or proposal: at random, but leaning to
    /// what splits a round (votes for proposals that exist, promises that hide its votes,
    /// free proposals in its own attempts).
    fn byzantine_step(&mut self, rng: &mut ChaCha8Rng) {
        if self.byzantine.is_empty() {
            return;
        }
        let who = self.byzantine[rng.gen_range(0..self.byzantine.len())].clone();
        let proposed: Vec<(u32, Digest)> = self
            .sent
            .iter()
            .filter_map(|m| match m.payload() {
                Payload::Proposal(p) => Some((p.attempt, p.digest)),
                _ => None,
            })
            .collect();
        let (attempt, digest) = if !proposed.is_empty() && rng.gen_bool(0.6) {
            proposed[rng.gen_range(0..proposed.len())]
        } else {
            (
                rng.gen_range(0..=ATTEMPTS),
                VALUES[rng.gen_range(0..VALUES.len())],
            )
        };
        let earlier = (attempt > 0 && rng.gen_bool(0.3)).then(|| rng.gen_range(0..attempt));
        let payload = match rng.gen_range(0..3) {
            0 => Payload::CheckpointVote(CheckpointVote {
                stage: STAGE,
                digest,
                attempt,
            }),
            1 if attempt > 0 => Payload::Promise(Promise {
                stage: STAGE,
                attempt,
                accepted: earlier.map(|a| Accepted {
                    attempt: a,
                    digest: VALUES[rng.gen_range(0..VALUES.len())],
                }),
            }),
            _ => {
                let attempt = (0..=ATTEMPTS)
                    .filter(|a| proposer(&self.voters, ROUND, *a) == Some(who.id()))
                    .nth(rng.gen_range(0..2))
                    .unwrap_or(attempt);
                Payload::Proposal(Proposal {
                    stage: STAGE,
                    attempt,
                    digest,
                    bound: earlier.filter(|b| *b < attempt),
                })
            }
        };
        self.sent.push(sign(&who, ROUND, payload));
    }

    /// Every certificate the adversary can assemble from all messages: for each attempt and
    /// digest with a majority of votes, each justification some log can build (every
    /// honest voter's, and one that has seen everything in each of two orders).
    fn certificates(&self) -> Vec<CertifiedVotes> {
        let mut votes: BTreeMap<(u32, Digest), BTreeMap<AgentId, SignedMessage>> = BTreeMap::new();
        for message in &self.sent {
            if let Payload::CheckpointVote(v) = message.payload() {
                votes
                    .entry((v.attempt, v.digest))
                    .or_default()
                    .entry(message.sender())
                    .or_insert_with(|| message.clone());
            }
        }
        let mut logs: Vec<AgreementLog> = self.honest.iter().map(|h| h.log.clone()).collect();
        for order in [false, true] {
            let mut log = AgreementLog::new(ROUND, STAGE, self.voters.clone());
            let mut all: Vec<&SignedMessage> = self.sent.iter().collect();
            if order {
                all.reverse();
            }
            for message in all {
                log.add(message.clone());
            }
            logs.push(log);
        }
        let need = majority(self.voters.len());
        let mut found = Vec::new();
        for ((attempt, digest), by) in votes {
            if by.len() < need {
                continue;
            }
            // Justifications the logs assemble, and forged ones: none, or a bare proposal.
            let mut chains: Vec<Vec<SignedMessage>> = vec![Vec::new()];
            chains.extend(
                self.sent
                    .iter()
                    .filter(|m| {
                        matches!(m.payload(), Payload::Proposal(p) if p.attempt == attempt && p.digest == digest)
                    })
                    .map(|m| vec![m.clone()]),
            );
            for log in &mut logs {
                if log.proposal(attempt) == Some(digest) {
                    chains.extend(log.justify(attempt).map(|chain| chain.to_vec()));
                }
            }
            let mut tried = BTreeSet::new();
            for chain in chains {
                if !tried.insert(chain.iter().map(SignedMessage::id).collect::<Vec<_>>()) {
                    continue;
                }
                let certificate = CheckpointCertificate {
                    round: ROUND,
                    stage: STAGE,
                    digest,
                    attempt,
                    votes: by
                        .values()
                        .take(need)
                        .map(SignedMessage::envelope)
                        .collect(),
                    justification: chain.iter().map(SignedMessage::envelope).collect(),
                };
                if let Ok(verified) = certificate.verify(swarm(), &self.voters, &Limits::default())
                {
                    found.push(verified);
                }
            }
        }
        found
    }
}

/// What the schedules of [`attack`] produced.
#[derive(Debug, Default)]
struct Tally {
    /// Schedules in which some certificate verified.
    certified: usize,
    /// Schedules with two verified certificates for different digests.
    conflicted: usize,
    /// Conflicting pairs in all.
    pairs: usize,
}

/// Runs `runs` seeded schedules with `n` voters, the first `byzantine` of them byzantine.
fn attack(n: u8, byzantine: u8, runs: u64) -> Tally {
    let mut tally = Tally::default();
    for seed in 0..runs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut world = World::new(n, byzantine, &mut rng);
        for _ in 0..rng.gen_range(50..300) {
            world.step(&mut rng);
        }
        let certificates = world.certificates();
        let byzantine_ids: BTreeSet<AgentId> = world.byzantine.iter().map(Identity::id).collect();
        let mut any = false;
        for (i, one) in certificates.iter().enumerate() {
            for other in &certificates[i + 1..] {
                if one.digest == other.digest {
                    continue;
                }
                any = true;
                tally.pairs += 1;
                let named = culprits(one, other);
                assert!(
                    !named.is_empty(),
                    "seed {seed}: certificates for {:?} (attempt {}) and {:?} (attempt {}) name nobody",
                    one.digest,
                    one.attempt,
                    other.digest,
                    other.attempt
                );
                for c in &named {
                    assert!(
                        byzantine_ids.contains(&c.signer),
                        "seed {seed}: an honest voter was named: {c:?}"
                    );
                    assert!(slotmesh_proto::contradicts(&c.first, &c.second));
                }
            }
        }
        tally.conflicted += usize::from(any);
        tally.certified += usize::from(!certificates.is_empty());
    }
    tally
}

#[test]
fn honest_voters_never_make_conflicting_certificates() {
    for n in [3, 4] {
        let tally = attack(n, 0, 300);
        assert_eq!(tally.conflicted, 0, "{n} honest voters");
        // The schedules must certify something, or the check proves nothing.
        assert!(tally.certified > 100, "{n} honest voters: {tally:?}");
    }
}

#[test]
fn conflicting_certificates_always_name_a_byzantine_voter_and_never_an_honest_one() {
    // One byzantine voter of three, and two of four: enough to split a round (a majority
    // shares a byzantine voter), never enough to frame an honest one.
    let three = attack(3, 1, 400);
    let four = attack(4, 2, 1500);
    // The schedules must actually produce conflicts, or the test proves nothing.
    assert!(
        three.conflicted > 10 && four.conflicted > 5,
        "3 voters: {three:?}; 4 voters: {four:?}"
    );
    println!("3 voters, 1 byzantine: {three:?}; 4 voters, 2 byzantine: {four:?}");
}
