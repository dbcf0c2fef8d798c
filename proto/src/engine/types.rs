//! The engine's vocabulary: its phases, configuration, outputs and errors.

use crate::envelope::SignedMessage;
use crate::finality::CertifiedRound;
use crate::ids::{AgentId, Digest, SwarmId};
use crate::rules::RoundOutcome;
use crate::state::LedgerState;
use crate::wire::{Limits, Stage};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Phases of a round, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Round 0 only: founding members announce themselves.
    Join,
    /// Members claim their remaining burst (or leave).
    Announce,
    /// Members send negotiation lines and coalition proposals.
    Negotiate,
    /// Members accept proposals.
    Coalition,
    /// Members commit sealed bids.
    Commit,
    /// Voters agree on the round's sealed inputs (every message but the reveals), so that
    /// the commits that count are fixed before any bid is revealed.
    Seal,
    /// Members reveal their bids.
    Reveal,
    /// The round is resolved; members vote on the digest and wait for a certificate.
    Finalize,
    /// This replica is not a member this round: it follows, waiting for the certificate.
    Observe,
}

/// Static configuration of a replica.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The swarm.
    pub swarm: SwarmId,
    /// Display name sent in the join message.
    pub name: String,
    /// Wire limits.
    pub limits: Limits,
    /// How long a phase waits for members that have not spoken (slow path).
    pub phase_timeout_ms: u64,
    /// Whether this replica founds the swarm (joins round 0). A replica that arrives later
    /// observes, fetches the certified rounds it missed, and joins the round it reaches.
    pub founder: bool,
    /// Round 0 closes only once at least this many joins are held.
    pub min_members: usize,
    /// Round 0 closes as soon as this many joins are held (fast path).
    pub expected_members: usize,
    /// The founders' keys, when the swarm is founded by known keys: round 0 then runs the
    /// agreement of every later round among them (a majority founds the swarm; a founder
    /// that crashes or never starts does not stall it) and admits only their joins. Empty:
    /// founded by whoever joins, unanimously.
    pub known_founders: BTreeSet<AgentId>,
    /// Founders only: rounds a suspended member may stay away before the swarm removes it
    /// for good, proposed in the founding join (0: `DEFAULT_ABSENCE_LIMIT`).
    pub absence_limit: u64,
}

/// What the engine asks its caller to do.
#[derive(Debug, Clone)]
#[must_use]
pub enum Output {
    /// Broadcast this message to the swarm. A promise, proposal or vote
    /// (`payload().stage()` is set) of a hosted agent is first stored durably with the
    /// others of its round: a restarted replica resumes from them
    /// ([`crate::Engine::resume_agreement`]).
    Send(SignedMessage),
    /// Call [`Engine::handle_timeout`] with this round and phase at `at`.
    ScheduleTimeout {
        /// Round of the timer.
        round: u64,
        /// Phase of the timer.
        phase: Phase,
        /// When, in the caller's milliseconds.
        at: u64,
    },
    /// `agent`'s strategy should decide this phase and call the matching command.
    Decide {
        /// The hosted agent that decides.
        agent: AgentId,
        /// Round of the decision.
        round: u64,
        /// [`Phase::Announce`]: [`Engine::claim`] or [`Engine::leave`];
        /// [`Phase::Negotiate`]: [`Engine::negotiate`]; [`Phase::Coalition`]: [`Engine::accept`];
        /// [`Phase::Commit`]: [`Engine::bid`].
        phase: Phase,
    },
    /// The round was resolved locally (not yet final).
    Resolved {
        /// The round.
        round: u64,
        /// This replica's digest of the resulting state.
        digest: Digest,
    },
    /// A round became final: persist the record, execute the slot if this agent won.
    Final(Box<Finalized>),
    /// Ask `peer` for the messages it resolved to `digest` in `round`
    /// ([`Engine::inputs`]) and pass its answer to [`Engine::handle_inputs`]: a proposal or a
    /// certificate names a digest this replica's own messages do not give.
    FetchInputs {
        /// The round.
        round: u64,
        /// The digest whose inputs are wanted.
        digest: Digest,
        /// A voter that holds them (the proposer, or a voter that voted for them).
        peer: AgentId,
    },
    /// This replica needs the final record of `round` from a peer
    /// (pass it to [`Engine::handle_final_round`]): it is behind, in a minority, or missed votes.
    FetchRound {
        /// The round whose record is needed.
        round: u64,
    },
}

/// A round that became final, with what happened in it.
#[derive(Debug, Clone)]
pub struct Finalized {
    /// The certified round ([`CertifiedRound::record`] gives the ledger's record).
    pub certified: CertifiedRound,
    /// What happened.
    pub outcome: RoundOutcome,
    /// The state after the round (shared with the replica).
    pub state: Arc<LedgerState>,
}

/// Where the finalization of the current round stands ([`Engine::finality`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalityStatus {
    /// The agreement in progress: the seal, then the outcome.
    pub stage: Stage,
    /// The round's voters.
    pub voters: Vec<AgentId>,
    /// Counted votes: (voter, attempt, digest).
    pub votes: Vec<(AgentId, u32, Digest)>,
    /// This replica's attempt and the digest of its last vote (or of its own resolution
    /// before it voted), once it resolved the round.
    pub own: Option<(u32, Digest)>,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The command is for another phase or round than the current one.
    #[error("not the time: engine is in round {round} phase {phase:?}")]
    WrongPhase {
        /// Current round.
        round: u64,
        /// Current phase.
        phase: Phase,
    },
    /// This replica does not speak for the agent named.
    #[error("agent {0} is not hosted by this replica")]
    NotHosted(AgentId),
    /// This phase's turn was already sent.
    #[error("already sent this turn")]
    AlreadySent,
    /// The payload breaks a wire limit.
    #[error("invalid: {0}")]
    Invalid(#[from] crate::codec::DecodeError),
    /// The bid breaks the rules (bid + support above deposit, or deposit above balance).
    #[error("bid out of bounds: {0}")]
    BidOutOfBounds(String),
}
