//! Finality: members sign the digest of a round's sealed inputs, then of the state after it
//! ([`CheckpointVote`], one per [`Stage`]); a majority of the round's voters (all of them for
//! the founding round, which has no seal) on one digest in one attempt makes a
//! [`CheckpointCertificate`]. A [`FinalRound`] (the round's messages and its two
//! certificates) is what the ledger stores and what peers send each other to sync: anyone
//! holding the state before the round can check it with [`FinalRound::apply`]. A replica
//! holds its final rounds as [`CertifiedRound`]s (verified messages, shared) and encodes a
//! record only when one is stored or sent.

use crate::accountability::{check_justification, JustificationError};
use crate::codec::{self, DecodeError};
use crate::envelope::{open_envelope, Envelope, OpenError, SignedMessage};
use crate::ids::{AgentId, Digest, SwarmId};
use crate::round_messages::{Inserted, RoundMessages};
use crate::rules::{resolve_round, RoundOutcome};
use crate::state::{LedgerState, Quorum};
use crate::wire::{CheckpointVote, Limits, Payload, PayloadKind, Stage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A majority of a round's voters signing one digest in one attempt of one agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCertificate {
    /// The round.
    pub round: u64,
    /// The agreement: the sealed inputs or the outcome.
    pub stage: Stage,
    /// The certified digest: of the sealed inputs, or of the state after the round.
    pub digest: Digest,
    /// The voting attempt the votes belong to.
    pub attempt: u32,
    /// The signed votes, in voter order.
    pub votes: Vec<Envelope>,
    /// What makes the certificate accountable (rounds after the founding one): the
    /// proposal of its attempt and the promises that bind it, back to a free proposal
    /// ([`crate::check_justification`]).
    pub justification: Vec<Envelope>,
}

/// Why a certificate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// More votes than the limit.
    #[error("{0} votes exceed the limit")]
    TooManyVotes(usize),
    /// A vote, proposal or promise does not open.
    #[error("a signed message does not verify: {0}")]
    BadVote(#[from] OpenError),
    /// A vote is not a checkpoint vote for this round, digest and attempt.
    #[error("vote by {0} is for another round, digest or attempt")]
    WrongVote(AgentId),
    /// A vote by someone who is not a voter of this round.
    #[error("{0} is not a voter of this round")]
    NotAVoter(AgentId),
    /// Two votes by one voter.
    #[error("{0} voted twice")]
    DuplicateVoter(AgentId),
    /// The justification does not justify the certificate.
    #[error("justification: {0}")]
    Justification(#[from] JustificationError),
    /// Fewer valid votes than needed.
    #[error("{have} votes, {need} needed")]
    NoMajority {
        /// Valid votes.
        have: usize,
        /// Votes needed.
        need: usize,
    },
}

impl CheckpointCertificate {
    /// Checks every vote, that enough of `voters` signed ([`crate::votes_needed`]) and the
    /// justification (none for the founding round, whose voters vote their own resolution);
    /// returns the verified votes.
    pub fn verify(
        &self,
        swarm: SwarmId,
        voters: &BTreeSet<AgentId>,
        limits: &Limits,
    ) -> Result<CertifiedVotes, CertificateError> {
        self.verify_with(swarm, voters, Quorum::for_round(self.round), limits)
    }

    /// [`CheckpointCertificate::verify`] with the round's `quorum` given
    /// ([`LedgerState::quorum`]): a unanimous certificate carries no justification, a
    /// majority one a justification that [`check_justification`] accepts.
    pub fn verify_with(
        &self,
        swarm: SwarmId,
        voters: &BTreeSet<AgentId>,
        quorum: Quorum,
        limits: &Limits,
    ) -> Result<CertifiedVotes, CertificateError> {
        if self.votes.len() > limits.max_votes || self.justification.len() > limits.max_votes {
            return Err(CertificateError::TooManyVotes(
                self.votes.len().max(self.justification.len()),
            ));
        }
        let mut signed = BTreeSet::new();
        let mut votes = Vec::with_capacity(self.votes.len());
        for envelope in &self.votes {
            let vote = open_envelope(envelope.clone(), swarm, limits)?;
            let sender = vote.sender();
            let expected = Payload::CheckpointVote(CheckpointVote {
                stage: self.stage,
                digest: self.digest,
                attempt: self.attempt,
            });
            if vote.round() != self.round || *vote.payload() != expected {
                return Err(CertificateError::WrongVote(sender));
            }
            if !voters.contains(&sender) {
                return Err(CertificateError::NotAVoter(sender));
            }
            if !signed.insert(sender) {
                return Err(CertificateError::DuplicateVoter(sender));
            }
            votes.push(vote);
        }
        let need = quorum.of(voters.len());
        if signed.len() < need {
            return Err(CertificateError::NoMajority {
                have: signed.len(),
                need,
            });
        }
        let justification = self
            .justification
            .iter()
            .map(|envelope| open_envelope(envelope.clone(), swarm, limits))
            .collect::<Result<Vec<_>, _>>()?;
        if quorum == Quorum::All {
            if !justification.is_empty() {
                return Err(JustificationError::Unused(justification.len()).into());
            }
        } else {
            check_justification(
                self.round,
                self.stage,
                voters,
                self.attempt,
                self.digest,
                &justification,
            )?;
        }
        Ok(CertifiedVotes {
            round: self.round,
            stage: self.stage,
            digest: self.digest,
            attempt: self.attempt,
            votes,
            justification,
        })
    }
}

/// A certificate as a replica holds it: the verified votes themselves.
#[derive(Debug, Clone)]
pub struct CertifiedVotes {
    /// The round.
    pub round: u64,
    /// The agreement.
    pub stage: Stage,
    /// The certified digest.
    pub digest: Digest,
    /// The voting attempt the votes belong to.
    pub attempt: u32,
    /// The votes, in voter order.
    pub votes: Vec<SignedMessage>,
    /// The proposal and promises that justify it ([`CheckpointCertificate::justification`]).
    pub justification: Vec<SignedMessage>,
}

impl CertifiedVotes {
    /// The certificate as stored and sent (signing any vote of this process not yet signed).
    pub fn to_certificate(&self) -> CheckpointCertificate {
        CheckpointCertificate {
            round: self.round,
            stage: self.stage,
            digest: self.digest,
            attempt: self.attempt,
            votes: self.votes.iter().map(SignedMessage::envelope).collect(),
            justification: self
                .justification
                .iter()
                .map(SignedMessage::envelope)
                .collect(),
        }
    }
}

/// A final round as a replica holds it: the verified messages it was resolved from (shared
/// with other replicas in the process), the certificate on their sealed part (rounds after
/// the founding one) and the certificate on the outcome. Cheap to clone;
/// [`CertifiedRound::record`] encodes it as a [`FinalRound`]. The engine also holds a
/// round's agreed sealed inputs as one (inputs and certificate of [`Stage::Seal`]).
#[derive(Debug, Clone)]
pub struct CertifiedRound {
    inputs: Arc<RoundMessages>,
    seal: Option<CertifiedVotes>,
    certificate: CertifiedVotes,
}

impl CertifiedRound {
    /// The round's `inputs` certified by `certificate`, their sealed part by `seal`.
    pub fn new(
        inputs: Arc<RoundMessages>,
        seal: Option<CertifiedVotes>,
        certificate: CertifiedVotes,
    ) -> CertifiedRound {
        CertifiedRound {
            inputs,
            seal,
            certificate,
        }
    }

    /// The certificate on the round's sealed inputs (none for the founding round).
    pub fn seal(&self) -> Option<&CertifiedVotes> {
        self.seal.as_ref()
    }

    /// The round.
    pub fn round(&self) -> u64 {
        self.certificate.round
    }

    /// The certified digest (of the state after the round, for a final round).
    pub fn digest(&self) -> Digest {
        self.certificate.digest
    }

    /// The messages the round was resolved from.
    pub fn inputs(&self) -> &RoundMessages {
        &self.inputs
    }

    /// The messages the round was resolved from, shared.
    pub fn shared_inputs(&self) -> Arc<RoundMessages> {
        Arc::clone(&self.inputs)
    }

    /// The certificate.
    pub fn certificate(&self) -> &CertifiedVotes {
        &self.certificate
    }

    /// The record as the ledger stores it and peers exchange it.
    pub fn record(&self) -> FinalRound {
        FinalRound {
            round: self.inputs.round(),
            messages: self.inputs.iter().map(|m| m.envelope()).collect(),
            seal: self.seal.as_ref().map(CertifiedVotes::to_certificate),
            certificate: self.certificate.to_certificate(),
        }
    }
}

/// Votes kept per voter in a tally: those of its latest attempts.
const VOTES_KEPT: usize = 2;

/// Collects the votes of one agreement of one round, per attempt and digest, from its
/// voters only. A certificate forms when [`crate::votes_needed`] of them signed one digest in one
/// attempt.
///
/// A voter that signs two votes in one attempt (an equivocator, punished through
/// [`crate::Evidence`]) has both counted, each for its digest, as a certificate's
/// verification counts them: a replica that met the two votes in another order than a peer
/// must still complete the certificate the peer completed and re-sends. A further variant
/// counts only if it completes a certificate.
#[derive(Debug, Clone)]
pub struct VoteTally {
    round: u64,
    stage: Stage,
    voters: BTreeSet<AgentId>,
    /// Per attempt and voter, its votes (two digests at most, but a completing one).
    votes: BTreeMap<u32, BTreeMap<AgentId, Vec<SignedMessage>>>,
    /// Voters per (attempt, digest).
    counts: BTreeMap<(u32, Digest), usize>,
    equivocators: BTreeSet<AgentId>,
    quorum: Quorum,
    /// Votes not kept, held aside per attempt and digest ([`VoteTally::refuse`]).
    refused: BTreeMap<(u32, Digest), BTreeMap<AgentId, SignedMessage>>,
}

/// Attempts and digests whose refused votes a tally holds aside.
const REFUSED_PAIRS: usize = 4;

/// Votes of one voter for different digests in one attempt that the tally counts (more only
/// when one completes a certificate).
const VARIANTS_KEPT: usize = 2;

impl VoteTally {
    /// A tally for `round`'s agreement `stage` whose votes count only from `voters`.
    pub fn new(round: u64, stage: Stage, voters: BTreeSet<AgentId>) -> VoteTally {
        VoteTally {
            round,
            stage,
            voters,
            votes: BTreeMap::new(),
            counts: BTreeMap::new(),
            equivocators: BTreeSet::new(),
            quorum: Quorum::for_round(round),
            refused: BTreeMap::new(),
        }
    }

    /// The same tally with another quorum (a majority for the founding round of a swarm
    /// founded by known keys).
    pub fn with_quorum(mut self, quorum: Quorum) -> VoteTally {
        self.quorum = quorum;
        self
    }

    /// How many votes of one digest in one attempt make a certificate.
    pub fn needed(&self) -> usize {
        self.quorum.of(self.voters.len())
    }

    /// The voters.
    pub fn voters(&self) -> &BTreeSet<AgentId> {
        &self.voters
    }

    /// Voters that signed two different votes in one attempt.
    pub fn equivocators(&self) -> &BTreeSet<AgentId> {
        &self.equivocators
    }

    /// Adds a verified vote; true if it counts. Votes from non-voters, for other rounds or
    /// agreements, and duplicates do not. Of each voter only the votes of its two latest
    /// attempts are kept, two digests an attempt at most, and besides them a vote that
    /// completes a certificate (a peer re-sends the certificate it holds to a replica that
    /// missed it; this tally may hold later votes of the same voter by then): a voter that
    /// signs votes for many attempts or digests cannot make the tally grow.
    pub fn add(&mut self, vote: SignedMessage) -> bool {
        let Payload::CheckpointVote(cast) = vote.payload() else {
            return false;
        };
        if vote.round() != self.round
            || cast.stage != self.stage
            || !self.voters.contains(&vote.sender())
        {
            return false;
        }
        let (attempt, digest, voter) = (cast.attempt, cast.digest, vote.sender());
        let held = self.votes.get(&attempt).and_then(|held| held.get(&voter));
        if held.is_some_and(|v| v.iter().any(|m| vote_digest(m) == Some(digest))) {
            return false;
        }
        let variants = held.map_or(0, Vec::len);
        if variants > 0 {
            self.equivocators.insert(voter);
        }
        let count = self.counts.get(&(attempt, digest)).copied().unwrap_or(0);
        let completes = count + 1 == self.needed();
        let mut attempts: Vec<u32> = self
            .votes
            .iter()
            .filter(|(_, held)| held.contains_key(&voter))
            .map(|(a, _)| *a)
            .collect();
        let old =
            variants == 0 && attempts.len() >= VOTES_KEPT && attempts.iter().all(|a| *a > attempt);
        if (old || variants >= VARIANTS_KEPT) && !completes {
            return self.refuse(attempt, digest, vote);
        }
        self.votes
            .entry(attempt)
            .or_default()
            .entry(voter)
            .or_default()
            .push(vote);
        *self.counts.entry((attempt, digest)).or_default() += 1;
        if variants == 0 && !old {
            attempts.push(attempt);
            attempts.sort_unstable();
            while attempts.len() > VOTES_KEPT {
                let oldest = attempts.remove(0);
                self.forget(oldest, voter);
            }
        }
        true
    }

    /// Holds a vote the tally does not keep (older than its voter's latest, or a further
    /// variant) aside with others of its attempt and digest: a peer re-sends a whole
    /// certificate one vote at a time, and once those held aside and those counted reach a
    /// certificate, they all count. At most [`REFUSED_PAIRS`] attempts and digests are held
    /// aside (the one with fewest votes goes first). True if the vote now counts.
    fn refuse(&mut self, attempt: u32, digest: Digest, vote: SignedMessage) -> bool {
        let voter = vote.sender();
        let aside = self.refused.entry((attempt, digest)).or_default();
        aside.insert(voter, vote);
        let counted = self.counts.get(&(attempt, digest)).copied().unwrap_or(0);
        if counted + aside.len() < self.needed() {
            if self.refused.len() > REFUSED_PAIRS {
                let fewest = self
                    .refused
                    .iter()
                    .filter(|(key, _)| **key != (attempt, digest))
                    .min_by_key(|(_, votes)| votes.len())
                    .map(|(key, _)| *key);
                if let Some(key) = fewest {
                    self.refused.remove(&key);
                }
            }
            return false;
        }
        let Some(aside) = self.refused.remove(&(attempt, digest)) else {
            return false;
        };
        for (voter, vote) in aside {
            let held = self
                .votes
                .entry(attempt)
                .or_default()
                .entry(voter)
                .or_default();
            if held.iter().all(|m| vote_digest(m) != Some(digest)) {
                held.push(vote);
                *self.counts.entry((attempt, digest)).or_default() += 1;
            }
        }
        true
    }

    /// Drops `voter`'s votes in `attempt` from the tally.
    fn forget(&mut self, attempt: u32, voter: AgentId) {
        let Some(held) = self.votes.get_mut(&attempt) else {
            return;
        };
        for d in held.remove(&voter).iter().flatten().filter_map(vote_digest) {
            if let Some(n) = self.counts.get_mut(&(attempt, d)) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.counts.remove(&(attempt, d));
                }
            }
        }
        if held.is_empty() {
            self.votes.remove(&attempt);
        }
    }

    /// Every counted vote: (voter, attempt, digest), in attempt and voter order.
    pub fn votes(&self) -> Vec<(AgentId, u32, Digest)> {
        let mut out = Vec::new();
        for (attempt, votes) in &self.votes {
            for (voter, held) in votes {
                for digest in held.iter().filter_map(vote_digest) {
                    out.push((*voter, *attempt, digest));
                }
            }
        }
        out
    }

    /// Voters whose vote in their latest attempt is for a digest other than `own`, in id
    /// order: the peers that hold a different message set.
    pub fn disagreeing(&self, own: Digest) -> Vec<AgentId> {
        let mut latest: BTreeMap<AgentId, Digest> = BTreeMap::new();
        for votes in self.votes.values() {
            for (voter, held) in votes {
                if let Some(digest) = held.first().and_then(vote_digest) {
                    latest.insert(*voter, digest);
                }
            }
        }
        latest
            .into_iter()
            .filter(|(_, d)| *d != own)
            .map(|(v, _)| v)
            .collect()
    }

    /// The first certificate formed, lowest attempt first, without its justification (the
    /// agreement's log holds that: [`crate::AgreementLog::justify`]).
    pub fn certificate(&self) -> Option<CertifiedVotes> {
        let need = self.needed();
        let (&(attempt, digest), _) = self.counts.iter().find(|(_, n)| **n >= need)?;
        let votes = self.votes.get(&attempt)?;
        Some(CertifiedVotes {
            round: self.round,
            stage: self.stage,
            digest,
            attempt,
            votes: votes
                .values()
                .flatten()
                .filter(|vote| vote_digest(vote) == Some(digest))
                .cloned()
                .collect(),
            justification: Vec::new(),
        })
    }

    /// Whether `attempt` can no longer finalize: for every digest, its votes plus the
    /// voters not yet heard from fall short of what is needed.
    pub fn attempt_is_dead(&self, attempt: u32) -> bool {
        let need = self.needed();
        let heard = self.votes.get(&attempt).map_or(0, BTreeMap::len);
        let unheard = self.voters.len().saturating_sub(heard);
        let best = self
            .counts
            .range((attempt, Digest::default())..)
            .take_while(|((a, _), _)| *a == attempt)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        best + unheard < need
    }
}

fn vote_digest(vote: &SignedMessage) -> Option<Digest> {
    match vote.payload() {
        Payload::CheckpointVote(cast) => Some(cast.digest),
        _ => None,
    }
}

/// A final round as stored in the ledger and exchanged when syncing: the exact messages it
/// was resolved from, the certificate on their sealed part, and the certificate on the
/// resulting state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRound {
    /// The round.
    pub round: u64,
    /// The envelopes the round was resolved from, in canonical order.
    pub messages: Vec<Envelope>,
    /// Majority signatures on the digest of every message but the reveals
    /// ([`RoundMessages::inputs_digest`] of [`RoundMessages::sealed_part`]), made before any
    /// reveal counted. `None` only for the founding round, which has no bids.
    pub seal: Option<CheckpointCertificate>,
    /// Majority signatures on the resulting state digest.
    pub certificate: CheckpointCertificate,
}

/// Why a final round does not follow from a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FinalRoundError {
    /// It is not the state's next round.
    #[error("record is round {got}, the ledger expects round {expected}")]
    WrongRound {
        /// The record's round.
        got: u64,
        /// The state's next round.
        expected: u64,
    },
    /// More messages than the limit.
    #[error("{0} messages exceed the limit")]
    TooManyMessages(usize),
    /// A message does not open.
    #[error("message does not verify: {0}")]
    BadMessage(#[from] OpenError),
    /// A message of another round, or a duplicate.
    #[error("message {0} does not belong in this record")]
    StrayMessage(Digest),
    /// Resolving the messages does not give the certified digest.
    #[error("messages resolve to {computed}, certificate says {certified}")]
    DigestMismatch {
        /// What the messages give.
        computed: Digest,
        /// What the certificate signs.
        certified: Digest,
    },
    /// The certificate does not verify.
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// The seal certificate does not verify.
    #[error("seal certificate: {0}")]
    Seal(CertificateError),
    /// A round after the founding one without a seal, the founding round with one, or a
    /// certificate of the wrong agreement.
    #[error("round {0}: seal and outcome certificates missing or misplaced")]
    Stages(u64),
    /// The sealed messages are not the ones the seal certificate signs.
    #[error("sealed messages hash to {computed}, seal says {certified}")]
    SealMismatch {
        /// What the messages give.
        computed: Digest,
        /// What the seal certificate signs.
        certified: Digest,
    },
    /// The record does not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
}

impl FinalRound {
    /// Verifies every message, checks the seal (every message but the reveals signed before
    /// any reveal counted, every reveal of a sealed commit), resolves the messages from
    /// `state`, checks the digest and the certificate, and returns the next state with the
    /// round's outcome and the verified round.
    pub fn apply(
        &self,
        state: &LedgerState,
        limits: &Limits,
    ) -> Result<(LedgerState, RoundOutcome, CertifiedRound), FinalRoundError> {
        if self.round != state.next_round
            || self.certificate.round != self.round
            || self.seal.as_ref().is_some_and(|s| s.round != self.round)
        {
            return Err(FinalRoundError::WrongRound {
                got: self.round,
                expected: state.next_round,
            });
        }
        if self.messages.len() > limits.max_round_messages {
            return Err(FinalRoundError::TooManyMessages(self.messages.len()));
        }
        let mut inputs = RoundMessages::new(self.round);
        for envelope in &self.messages {
            let message = open_envelope(envelope.clone(), state.swarm, limits)?;
            let id = message.id();
            if !state.consumes(&message)
                || !matches!(
                    inputs.insert(message),
                    Inserted::New | Inserted::Equivocation
                )
            {
                return Err(FinalRoundError::StrayMessage(id));
            }
        }
        let founding = self.round == 0;
        let seal = match &self.seal {
            Some(seal) if !founding && seal.stage == Stage::Seal => Some(seal),
            None if founding => None,
            _ => return Err(FinalRoundError::Stages(self.round)),
        };
        if self.certificate.stage != Stage::Outcome {
            return Err(FinalRoundError::Stages(self.round));
        }
        if let Some(seal) = seal {
            let sealed = inputs.sealed_part();
            let computed = sealed.inputs_digest();
            if computed != seal.digest {
                return Err(FinalRoundError::SealMismatch {
                    computed,
                    certified: seal.digest,
                });
            }
            if let Some(stray) = inputs.iter().find(|m| {
                m.payload().kind() == PayloadKind::Reveal
                    && !sealed.has_spoken(&m.sender(), PayloadKind::Commit)
            }) {
                return Err(FinalRoundError::StrayMessage(stray.id()));
            }
        }
        let (next, outcome) = resolve_round(state, &inputs);
        let computed = next.digest();
        if computed != self.certificate.digest {
            return Err(FinalRoundError::DigestMismatch {
                computed,
                certified: self.certificate.digest,
            });
        }
        let voters = state.voters_for(&next);
        let seal = seal
            .map(|seal| seal.verify(state.swarm, &voters, limits))
            .transpose()
            .map_err(FinalRoundError::Seal)?;
        let votes =
            self.certificate
                .verify_with(state.swarm, &voters, state.quorum(&next), limits)?;
        Ok((
            next,
            outcome,
            CertifiedRound::new(Arc::new(inputs), seal, votes),
        ))
    }

    /// Encodes the record (for the ledger file and sync answers).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a record of at most `limits`' size.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<FinalRound, DecodeError> {
        let max = limits
            .max_message_bytes
            .saturating_mul(limits.max_round_messages.saturating_add(limits.max_votes));
        codec::decode(bytes, max)
    }
}
