//! Accountable safety: what a certificate must carry so that two certificates of one round
//! for different digests prove who broke the acceptor rule.
//!
//! A certificate of a round after the founding one carries a *justification*: the proposal
//! of its attempt, and, for an attempt after 0, a majority of signed promises for that
//! attempt whose latest reported vote is the one the proposal is bound to
//! ([`crate::Proposal::bound`]), then the justification of that earlier proposal, and so on
//! back to a free proposal ([`check_justification`]). Given two verified certificates for
//! different digests, [`culprits`] follows the later one's chain to the first link at or
//! before the earlier one's attempt; the promises there and the earlier certificate's votes
//! are two majorities of the same voters, so some voter is in both, and its signed vote and
//! promise contradict each other ([`contradicts`]); otherwise the attempt's proposer signed
//! two proposals. Honest voters never sign contradicting messages, so only a voter that broke
//! the rule is ever named. docs/PROTOCOL.md §6 gives the argument.

use crate::envelope::SignedMessage;
use crate::finality::CertifiedVotes;
use crate::ids::{AgentId, Digest};
use crate::state::majority;
use crate::wire::{Accepted, Payload, Promise, Proposal, Stage};
use std::collections::{BTreeMap, BTreeSet};

/// Why a justification does not justify a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JustificationError {
    /// A message of another round or agreement, or not a proposal or promise.
    #[error("{0} signed a message that is no proposal or promise of this agreement")]
    Foreign(AgentId),
    /// A proposal by someone other than its attempt's proposer, or a promise by a non-voter.
    #[error("{0} is not the proposer of its attempt, or not a voter")]
    NotEntitled(AgentId),
    /// Two different proposals of one attempt, or two promises of one voter for one attempt.
    #[error("{0} signed two different messages for one attempt")]
    Ambiguous(AgentId),
    /// The proposal a link of the chain needs is missing, or for another digest.
    #[error("no proposal for digest {digest} in attempt {attempt}")]
    NoProposal {
        /// The attempt.
        attempt: u32,
        /// The digest the chain carries.
        digest: Digest,
    },
    /// Fewer promises for a bound attempt than a majority.
    #[error("attempt {attempt}: {have} promises, {need} needed")]
    TooFewPromises {
        /// The attempt.
        attempt: u32,
        /// Promises held.
        have: usize,
        /// Promises needed.
        need: usize,
    },
    /// The promises do not bind the proposal to the vote it names (or to none).
    #[error("the promises for attempt {0} do not give its proposal")]
    Unbound(u32),
    /// A message the chain does not use.
    #[error("{0} messages the chain does not use")]
    Unused(usize),
}

/// The messages of a justification, indexed.
struct Indexed<'a> {
    proposals: BTreeMap<u32, &'a SignedMessage>,
    promises: BTreeMap<(u32, AgentId), &'a SignedMessage>,
}

fn index<'a>(
    round: u64,
    stage: Stage,
    voters: &BTreeSet<AgentId>,
    messages: &'a [SignedMessage],
) -> Result<Indexed<'a>, JustificationError> {
    let mut indexed = Indexed {
        proposals: BTreeMap::new(),
        promises: BTreeMap::new(),
    };
    for message in messages {
        let sender = message.sender();
        if message.round() != round || message.payload().stage() != Some(stage) {
            return Err(JustificationError::Foreign(sender));
        }
        let held = match message.payload() {
            Payload::Proposal(p) => {
                if crate::agreement::proposer(voters, round, p.attempt) != Some(sender) {
                    return Err(JustificationError::NotEntitled(sender));
                }
                indexed.proposals.insert(p.attempt, message)
            }
            Payload::Promise(p) => {
                if !voters.contains(&sender) {
                    return Err(JustificationError::NotEntitled(sender));
                }
                indexed.promises.insert((p.attempt, sender), message)
            }
            _ => return Err(JustificationError::Foreign(sender)),
        };
        if held.is_some_and(|held| held.id() != message.id()) {
            return Err(JustificationError::Ambiguous(sender));
        }
    }
    Ok(indexed)
}

/// Checks that `messages` justify a certificate for `digest` in `attempt` of this round's
/// agreement `stage` among `voters`: the proposal of `attempt` for `digest` is there, and
/// each proposal of the chain is either free (attempt 0, or a majority of promises for its
/// attempt reporting no vote) or bound to the latest vote a majority of promises for its
/// attempt report, whose attempt's proposal (for the same digest) is the next link. Every
/// message must be used. Signatures are the caller's: these are verified messages.
pub fn check_justification(
    round: u64,
    stage: Stage,
    voters: &BTreeSet<AgentId>,
    attempt: u32,
    digest: Digest,
    messages: &[SignedMessage],
) -> Result<(), JustificationError> {
    let indexed = index(round, stage, voters, messages)?;
    let need = majority(voters.len());
    let mut used = 0;
    let mut at = Some(attempt);
    while let Some(attempt) = at {
        let proposal = indexed
            .proposals
            .get(&attempt)
            .copied()
            .ok_or(JustificationError::NoProposal { attempt, digest })?;
        let Some(p) = proposal_of(proposal).filter(|p| p.digest == digest) else {
            return Err(JustificationError::NoProposal { attempt, digest });
        };
        if p.bound.is_some_and(|b| b >= attempt) {
            // Refused on decoding; checked here too so that the chain always goes back.
            return Err(JustificationError::Unbound(attempt));
        }
        let promises: Vec<&SignedMessage> = indexed
            .promises
            .range((attempt, AgentId([0; 32]))..=(attempt, AgentId([u8::MAX; 32])))
            .map(|(_, m)| *m)
            .collect();
        if attempt > 0 {
            if promises.len() < need {
                return Err(JustificationError::TooFewPromises {
                    attempt,
                    have: promises.len(),
                    need,
                });
            }
            let latest = promises
                .iter()
                .filter_map(|m| promise_of(m).and_then(|p| p.accepted))
                .max();
            let expected = p.bound.map(|b| Accepted { attempt: b, digest });
            if latest != expected {
                return Err(JustificationError::Unbound(attempt));
            }
        } else if p.bound.is_some() || !promises.is_empty() {
            return Err(JustificationError::Unbound(attempt));
        }
        // `bound < attempt`: the chain goes strictly back.
        at = p.bound;
        used += 1 + promises.len();
    }
    if used != messages.len() {
        return Err(JustificationError::Unused(messages.len() - used));
    }
    Ok(())
}

/// Whether two messages signed by one voter contradict the acceptor rule (one round and
/// agreement): two votes of one attempt for different digests; two different proposals of
/// one attempt; or a vote in attempt `a` and a promise for a later attempt that reports no
/// vote, an earlier one, or another vote in `a` (an honest voter's promise reports its
/// latest vote, and it never votes behind a promise). Symmetric.
pub fn contradicts(first: &SignedMessage, second: &SignedMessage) -> bool {
    if first.sender() != second.sender()
        || first.round() != second.round()
        || first.payload().stage().is_none()
        || first.payload().stage() != second.payload().stage()
        || first.id() == second.id()
    {
        return false;
    }
    match (first.payload(), second.payload()) {
        (Payload::CheckpointVote(a), Payload::CheckpointVote(b)) => {
            a.attempt == b.attempt && a.digest != b.digest
        }
        (Payload::Proposal(a), Payload::Proposal(b)) => a.attempt == b.attempt,
        (Payload::CheckpointVote(vote), Payload::Promise(promise))
        | (Payload::Promise(promise), Payload::CheckpointVote(vote)) => {
            promise.attempt > vote.attempt
                && promise.accepted.is_none_or(|reported| {
                    reported.attempt < vote.attempt
                        || (reported.attempt == vote.attempt && reported.digest != vote.digest)
                })
        }
        _ => false,
    }
}

/// Two signed messages of one voter that contradict each other ([`contradicts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contradiction {
    /// The voter (or proposer) that signed both.
    pub signer: AgentId,
    /// One message.
    pub first: SignedMessage,
    /// The other.
    pub second: SignedMessage,
}

/// The signers whose messages in two verified certificates of one round and agreement, for
/// different digests, contradict each other, with the pairs. Never empty for two such
/// certificates of a round after the founding one (whose certificates carry no
/// justification) whose voters are the same set (the certificates of one round always are),
/// and names only voters that broke the acceptor rule. Empty if the certificates agree or
/// belong to different rounds or agreements.
pub fn culprits(one: &CertifiedVotes, other: &CertifiedVotes) -> Vec<Contradiction> {
    if one.round != other.round || one.stage != other.stage || one.digest == other.digest {
        return Vec::new();
    }
    let (earlier, later) = if one.attempt <= other.attempt {
        (one, other)
    } else {
        (other, one)
    };
    // Every pair of signed messages from the two certificates: the proof guarantees one
    // contradicting pair among them (see the module comment), and checking all pairs by
    // signer names every voter that can be shown to have broken the rule.
    let mut mine: BTreeMap<AgentId, Vec<&SignedMessage>> = BTreeMap::new();
    for message in earlier.votes.iter().chain(&earlier.justification) {
        mine.entry(message.sender()).or_default().push(message);
    }
    let mut found = Vec::new();
    let mut named = BTreeSet::new();
    for message in later.votes.iter().chain(&later.justification) {
        let Some(theirs) = mine.get(&message.sender()) else {
            continue;
        };
        if let Some(pair) = theirs.iter().find(|m| contradicts(m, message)) {
            if named.insert((message.sender(), pair.id(), message.id())) {
                found.push(Contradiction {
                    signer: message.sender(),
                    first: (*pair).clone(),
                    second: message.clone(),
                });
            }
        }
    }
    found
}

/// Agreement messages a replica kept per signer and agreement in one round, and at most this
/// many (an honest voter signs about two per attempt).
const WATCHED_PER_SIGNER: usize = 16;

/// Catches contradictions as agreement messages of one round arrive: each new message of a
/// signer is checked against the first [`WATCHED_PER_SIGNER`] kept of that signer and
/// agreement ([`contradicts`]). A signer that pads with harmless messages first hides only
/// contradictions between messages it signs later, and those that decide anything meet in
/// two certificates ([`culprits`]).
#[derive(Debug, Clone, Default)]
pub struct ContradictionWatch {
    round: u64,
    kept: BTreeMap<(AgentId, Stage), Vec<SignedMessage>>,
}

impl ContradictionWatch {
    /// A watch over `round`'s agreement messages.
    pub fn new(round: u64) -> ContradictionWatch {
        ContradictionWatch {
            round,
            kept: BTreeMap::new(),
        }
    }

    /// [`ContradictionWatch::observe`] for a signer already watched in this agreement only
    /// (a late message: whether its signer was a voter is no longer known).
    pub fn observe_known(&mut self, message: &SignedMessage) -> Option<Contradiction> {
        let stage = message.payload().stage()?;
        if !self.kept.contains_key(&(message.sender(), stage)) {
            return None;
        }
        self.observe(message)
    }

    /// Files a verified agreement message of the round (anything else is ignored); the
    /// contradiction it completes, if any.
    pub fn observe(&mut self, message: &SignedMessage) -> Option<Contradiction> {
        let stage = message.payload().stage()?;
        if message.round() != self.round {
            return None;
        }
        let kept = self.kept.entry((message.sender(), stage)).or_default();
        if let Some(earlier) = kept.iter().find(|m| contradicts(m, message)) {
            return Some(Contradiction {
                signer: message.sender(),
                first: earlier.clone(),
                second: message.clone(),
            });
        }
        if kept.len() < WATCHED_PER_SIGNER && kept.iter().all(|m| m.id() != message.id()) {
            kept.push(message.clone());
        }
        None
    }
}

fn proposal_of(message: &SignedMessage) -> Option<Proposal> {
    match message.payload() {
        Payload::Proposal(p) => Some(*p),
        _ => None,
    }
}

fn promise_of(message: &SignedMessage) -> Option<Promise> {
    match message.payload() {
        Payload::Promise(p) => Some(*p),
        _ => None,
    }
}
