//! Wire types: the signed message body, its payloads, and the limits every field obeys.
//!
//! A member sends exactly one *turn* message per phase and round (claim, negotiation,
//! acceptance, commit, reveal, checkpoint vote); two different turn messages of one kind for
//! one round from one sender are equivocation. Join and leave are lifecycle messages.

use crate::codec::DecodeError;
use crate::envelope::Envelope;
use crate::ids::{AgentId, Digest, SwarmId};
use serde::{Deserialize, Serialize};

/// The protocol version carried by (and signed into) every message.
pub const PROTOCOL_VERSION: u16 = 9;

/// Size limits, given to every decoder. The defaults are the protocol's; a decoder never
/// accepts more than these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded envelope, in bytes.
    pub max_message_bytes: usize,
    /// Largest display name, in bytes.
    pub max_name_bytes: usize,
    /// Largest negotiation line, in bytes.
    pub max_text_bytes: usize,
    /// Most words in a negotiation line.
    pub max_words: usize,
    /// Most negotiation lines in one turn.
    pub max_lines: usize,
    /// Most partners named in a coalition proposal.
    pub max_partners: usize,
    /// Largest coalition terms text, in bytes.
    pub max_terms_bytes: usize,
    /// Most proposals accepted in one turn.
    pub max_acceptances: usize,
    /// Longest coalition, in rounds.
    pub max_coalition_rounds: u16,
    /// Largest claimable remaining burst, in slots.
    pub max_claim: u32,
    /// Most votes in a checkpoint certificate.
    pub max_votes: usize,
    /// Most messages in one round record (ledger entry or sync answer).
    pub max_round_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4096,
            max_name_bytes: 32,
            max_text_bytes: 512,
            max_words: 50,
            max_lines: 3,
            max_partners: 16,
            max_terms_bytes: 256,
            max_acceptances: 16,
            max_coalition_rounds: 64,
            max_claim: 1_000_000,
            max_votes: 16_384,
            max_round_messages: 131_072,
        }
    }
}

/// The signed part of every envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u16,
    /// The swarm this message belongs to.
    pub swarm: SwarmId,
    /// The round it belongs to.
    pub round: u64,
    /// The signer.
    pub sender: AgentId,
    /// What it says.
    pub payload: Payload,
}

/// Everything a message can say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// A newcomer asks to be a member from the next round on.
    Join(Join),
    /// A member's public claim of its remaining burst (announce phase).
    Claim(Claim),
    /// Free text and at most one coalition proposal (negotiate phase).
    Negotiation(Negotiation),
    /// The proposals this member accepts (coalition phase).
    CoalitionAcceptance(CoalitionAcceptance),
    /// A sealed bid (commit phase).
    Commit(Commit),
    /// The opening of the sealed bid (reveal phase).
    Reveal(Reveal),
    /// The member leaves: its job completed, or it departs.
    Leave(Leave),
    /// The member's signature on the state digest after resolving the round: in agreement
    /// terms, its acceptance of an attempt's proposal.
    CheckpointVote(CheckpointVote),
    /// The proposer of an attempt fixes the round's value: the state digest its inputs give.
    Proposal(Proposal),
    /// A voter moves to an attempt, promising never to vote in an earlier one, and says what
    /// it last voted for.
    Promise(Promise),
    /// A member reports two agreement messages of one signer that contradict each other
    /// (any phase; one per member and round): the rule bars the signer from voting.
    Evidence(Evidence),
}

/// The kinds of [`Payload`], ordered as the phases they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PayloadKind {
    /// [`Payload::Join`]
    Join,
    /// [`Payload::Claim`]
    Claim,
    /// [`Payload::Negotiation`]
    Negotiation,
    /// [`Payload::CoalitionAcceptance`]
    CoalitionAcceptance,
    /// [`Payload::Commit`]
    Commit,
    /// [`Payload::Reveal`]
    Reveal,
    /// [`Payload::Leave`]
    Leave,
    /// [`Payload::CheckpointVote`]
    CheckpointVote,
    /// [`Payload::Proposal`]
    Proposal,
    /// [`Payload::Promise`]
    Promise,
    /// [`Payload::Evidence`]
    Evidence,
}

impl PayloadKind {
    /// Whether messages of this kind belong to the agreement on a round's outcome (votes,
    /// proposals, promises) rather than to the round's inputs.
    pub fn is_agreement(self) -> bool {
        matches!(
            self,
            PayloadKind::CheckpointVote | PayloadKind::Proposal | PayloadKind::Promise
        )
    }
}

/// Initialization broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// Display name (not unique; the key is the identity).
    pub name: String,
    /// The founding round of a swarm founded by known keys only: every founder, in id order,
    /// the sender among them (empty otherwise, and always past the founding round). A
    /// majority of them founds the swarm (docs/PROTOCOL.md §6, *The founding round*).
    pub founders: Vec<AgentId>,
    /// The founding round only: rounds a suspended member may stay away before it is
    /// removed for good (0: the default, `DEFAULT_ABSENCE_LIMIT`). The swarm takes the
    /// largest its admitted founders name.
    pub absence_limit: u64,
    /// A suspended member's rejoin: its process restarted and its job started over (a
    /// `--exec` daemon), so its next claim is checked afresh. Recorded as a restart.
    pub restarted: bool,
}

/// A public claim of remaining burst, in slots. Must be at least 1: a member with nothing
/// left sends [`Leave`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Claimed remaining burst.
    pub remaining: u32,
}

/// Negotiation turn: short lines of text and an optional coalition proposal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Negotiation {
    /// At most [`Limits::max_lines`] lines.
    pub lines: Vec<NegotiationLine>,
    /// At most one proposal per member and round.
    pub proposal: Option<CoalitionProposal>,
}

/// One line of negotiation text. Changes no state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiationLine {
    /// Addressee, or everyone.
    pub to: Option<AgentId>,
    /// At most 50 words and 512 bytes.
    pub text: String,
}

/// A structured coalition proposal. The proposer is the message's sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoalitionProposal {
    /// The other members, sorted, distinct, not including the proposer.
    pub partners: Vec<AgentId>,
    /// Free-text terms (no effect on the rule).
    pub terms: String,
    /// How many rounds the coalition lasts once formed (including the round it forms in).
    pub duration_rounds: u16,
    /// Credits of support each member promises its coalition's beneficiary per round.
    pub pledge: u64,
}

/// Identifies a proposal: the round it was made in and its proposer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CoalitionId {
    /// Round of the proposal.
    pub round: u64,
    /// Who proposed it.
    pub proposer: AgentId,
}

/// Coalition turn: the proposals of this round that this member accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CoalitionAcceptance {
    /// Accepted proposals, sorted and distinct.
    pub accepted: Vec<CoalitionId>,
}

/// A sealed bid: the hash of the opening, and a public deposit that bounds the bid and is
/// forfeited if the commit is never (or wrongly) revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// [`crate::commitment`] of the reveal.
    pub commitment: Digest,
    /// Bid plus support may not exceed this; lost if not revealed.
    pub deposit: u64,
}

/// Credits given to a coalition partner's bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Support {
    /// The partner whose bid this adds to.
    pub beneficiary: AgentId,
    /// Credits added.
    pub amount: u64,
}

/// The opening of a [`Commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reveal {
    /// Credits bid for this member itself.
    pub bid: u64,
    /// Credits added to a partner's bid.
    pub support: Option<Support>,
    /// 32 random bytes chosen at commit time.
    pub nonce: [u8; 32],
}

/// Why a member leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LeaveReason {
    /// Its job is complete: the slots it used are its true burst.
    Completed,
    /// It gives up.
    Departed,
}

/// Leave message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    /// Why.
    pub reason: LeaveReason,
}

/// The two agreements of a round (rounds after the founding one): first on its sealed
/// inputs, every message but the reveals ([`crate::seal_digest`]), then, once reveals of the
/// sealed commits are in, on the state after the round.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Stage {
    /// The round's inputs before any reveal: which commits count is fixed here.
    Seal,
    /// The state after the round ([`crate::LedgerState::digest`]).
    #[default]
    Outcome,
}

/// A member's vote in one of a round's agreements ([`Stage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointVote {
    /// The agreement: the sealed inputs or the outcome.
    pub stage: Stage,
    /// The value voted for: [`crate::seal_digest`] of the sealed inputs, or
    /// [`crate::LedgerState::digest`] after the round.
    pub digest: Digest,
    /// The attempt (ballot) whose proposal this vote accepts.
    pub attempt: u32,
}

/// An attempt's proposal ([`Payload::Proposal`]), signed by that attempt's proposer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The agreement.
    pub stage: Stage,
    /// The attempt.
    pub attempt: u32,
    /// The value the inputs the proposer chose give (as in [`CheckpointVote::digest`]).
    pub digest: Digest,
    /// The attempt of the latest vote the promises it read report (it proposes that vote's
    /// digest); `None` when it was free to propose its own value (attempt 0, or no promise
    /// reported a vote). A certificate's justification follows these links back.
    pub bound: Option<u32>,
}

/// A voter's last vote in a round: the attempt and the digest it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Accepted {
    /// The attempt of the vote.
    pub attempt: u32,
    /// The digest voted for.
    pub digest: Digest,
}

/// A voter's promise for an attempt ([`Payload::Promise`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// The agreement.
    pub stage: Stage,
    /// The attempt the voter moves to; it never votes in an earlier one afterwards.
    pub attempt: u32,
    /// Its last vote of the round, if any (an earlier attempt).
    pub accepted: Option<Accepted>,
}

/// Two signed agreement messages of one signer, as received ([`Payload::Evidence`]): the
/// rule checks both signatures and that they contradict
/// ([`crate::accountability::contradicts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// One message.
    pub first: Envelope,
    /// The other.
    pub second: Envelope,
}

impl Payload {
    /// The agreement a vote, proposal or promise belongs to; `None` for a turn.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Payload::CheckpointVote(vote) => Some(vote.stage),
            Payload::Proposal(proposal) => Some(proposal.stage),
            Payload::Promise(promise) => Some(promise.stage),
            _ => None,
        }
    }

    /// This payload's kind.
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Join(_) => PayloadKind::Join,
            Payload::Claim(_) => PayloadKind::Claim,
            Payload::Negotiation(_) => PayloadKind::Negotiation,
            Payload::CoalitionAcceptance(_) => PayloadKind::CoalitionAcceptance,
            Payload::Commit(_) => PayloadKind::Commit,
            Payload::Reveal(_) => PayloadKind::Reveal,
            Payload::Leave(_) => PayloadKind::Leave,
            Payload::CheckpointVote(_) => PayloadKind::CheckpointVote,
            Payload::Proposal(_) => PayloadKind::Proposal,
            Payload::Promise(_) => PayloadKind::Promise,
            Payload::Evidence(_) => PayloadKind::Evidence,
        }
    }
}

fn out_of_bounds(field: &'static str, reason: String) -> DecodeError {
    DecodeError::OutOfBounds { field, reason }
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(out_of_bounds(field, format!("{len} > {max}")));
    }
    Ok(())
}

fn check_sorted_distinct<T: Ord>(field: &'static str, items: &[T]) -> Result<(), DecodeError> {
    if items.windows(2).any(|w| w[0] >= w[1]) {
        return Err(out_of_bounds(field, "not sorted and distinct".into()));
    }
    Ok(())
}

/// Checks a negotiation text against the word and byte limits.
pub fn check_text(text: &str, limits: &Limits) -> Result<(), DecodeError> {
    check_len("text", text.len(), limits.max_text_bytes)?;
    check_len(
        "text words",
        text.split_whitespace().count(),
        limits.max_words,
    )
}

impl Message {
    /// Checks every field against `limits`. Decoding calls this; builders should too.
    pub fn validate(&self, limits: &Limits) -> Result<(), DecodeError> {
        match &self.payload {
            Payload::Join(join) => {
                check_len("name", join.name.len(), limits.max_name_bytes)?;
                if join.name.trim().is_empty() || join.name.chars().any(char::is_control) {
                    return Err(out_of_bounds("name", "empty or control characters".into()));
                }
                if !join.founders.is_empty() {
                    check_sorted_distinct("founders", &join.founders)?;
                    if self.round != 0 || !join.founders.contains(&self.sender) {
                        return Err(out_of_bounds(
                            "founders",
                            "past the founding round, or without the sender".into(),
                        ));
                    }
                }
                if (self.round == 0 && join.restarted)
                    || (self.round != 0 && join.absence_limit != 0)
                {
                    return Err(out_of_bounds(
                        "join",
                        "a restart in the founding round, or an absence limit past it".into(),
                    ));
                }
            }
            Payload::Claim(claim) => {
                if claim.remaining == 0 || claim.remaining > limits.max_claim {
                    return Err(out_of_bounds(
                        "remaining",
                        format!("{} not in 1..={}", claim.remaining, limits.max_claim),
                    ));
                }
            }
            Payload::Negotiation(turn) => {
                check_len("lines", turn.lines.len(), limits.max_lines)?;
                for line in &turn.lines {
                    check_text(&line.text, limits)?;
                }
                if let Some(proposal) = &turn.proposal {
                    check_len("partners", proposal.partners.len(), limits.max_partners)?;
                    if proposal.partners.is_empty() {
                        return Err(out_of_bounds("partners", "empty".into()));
                    }
                    check_sorted_distinct("partners", &proposal.partners)?;
                    if proposal.partners.contains(&self.sender) {
                        return Err(out_of_bounds("partners", "names the proposer".into()));
                    }
                    check_len("terms", proposal.terms.len(), limits.max_terms_bytes)?;
                    if proposal.duration_rounds == 0
                        || proposal.duration_rounds > limits.max_coalition_rounds
                    {
                        return Err(out_of_bounds(
                            "duration_rounds",
                            format!(
                                "{} not in 1..={}",
                                proposal.duration_rounds, limits.max_coalition_rounds
                            ),
                        ));
                    }
                }
            }
            Payload::CoalitionAcceptance(turn) => {
                check_len("accepted", turn.accepted.len(), limits.max_acceptances)?;
                check_sorted_distinct("accepted", &turn.accepted)?;
                if turn.accepted.iter().any(|id| id.round != self.round) {
                    return Err(out_of_bounds(
                        "accepted",
                        "proposal of another round".into(),
                    ));
                }
            }
            Payload::Reveal(reveal) => {
                if let Some(support) = reveal.support {
                    if support.beneficiary == self.sender {
                        return Err(out_of_bounds("support", "supports itself".into()));
                    }
                    if reveal.bid.checked_add(support.amount).is_none() {
                        return Err(out_of_bounds("support", "bid + support overflows".into()));
                    }
                }
            }
            Payload::Promise(promise) => {
                if promise
                    .accepted
                    .is_some_and(|a| a.attempt >= promise.attempt)
                {
                    return Err(out_of_bounds(
                        "accepted",
                        "a vote in the promised attempt or later".into(),
                    ));
                }
            }
            Payload::Proposal(proposal) => {
                if proposal.bound.is_some_and(|b| b >= proposal.attempt) {
                    return Err(out_of_bounds(
                        "bound",
                        "a vote in the proposed attempt or later".into(),
                    ));
                }
            }
            Payload::Evidence(evidence) => {
                if evidence.first == evidence.second {
                    return Err(out_of_bounds("evidence", "one message twice".into()));
                }
            }
            Payload::Commit(_) | Payload::Leave(_) | Payload::CheckpointVote(_) => {}
        }
        Ok(())
    }
}
