//! slotmesh-proto: everything the peers of a slotmesh swarm must agree on, and nothing that
//! touches a socket, a clock or a random number generator. Every type has one path: the
//! crate root ([`codec`] and [`ledger_file`] keep their functions under their own names).
//!
//! - [`codec`]: the one wire encoding (bincode 2.0.1), bounded and exact.
//! - `wire`: message and payload types with their limits ([`Message`], [`Payload`]).
//! - `envelope`: ed25519-signed envelopes, [`Identity`], [`open`] to verify anything received.
//! - `commit`: commit–reveal of sealed bids ([`commitment`], [`check_reveal`]).
//! - `state`, `trust`, `rules`: the replicated ledger state ([`LedgerState`]), the trust
//!   formula and the pure slot-resolution rule ([`resolve_round`]).
//! - `agreement`: single-decree Paxos per round: proposers, acceptors, promises
//!   ([`Acceptor`], [`choose`]).
//! - `finality`: checkpoint votes, certificates and verified final rounds ([`FinalRound`]).
//! - [`ledger_file`]: the on-disk format of the ledger (framing, checksums, torn tails).
//! - `sync`: direct request–response messages between two peers ([`SyncRequest`]).
//! - `engine`: the round state machine the daemon and the simulator drive ([`Engine`]).
//! - `shared_resolution`: one resolution for replicas in one process that hold the same
//!   inputs ([`SharedResolutions`]).

mod accountability;
mod agreement;
pub mod codec;
mod commit;
mod engine;
mod envelope;
mod finality;
mod ids;
pub mod ledger_file;
mod round_messages;
mod rules;
mod shared_resolution;
mod state;
mod sync;
mod trust;
mod wire;

pub use accountability::{
    check_justification, contradicts, culprits, Contradiction, ContradictionWatch,
    JustificationError,
};
pub use agreement::{choose, proposer, Acceptor, AgreementLog, Choice};
pub use commit::{check_reveal, commitment, RevealCheck};
pub use engine::{CommandError, Engine, EngineConfig, FinalityStatus, Finalized, Output, Phase};
pub use envelope::{
    decode_unverified, message_id, open, open_carried, open_envelope, Envelope, Identity,
    OpenError, SignedMessage, Unverified, VerifyError, DOMAIN_TAG,
};
pub use finality::{
    CertificateError, CertifiedRound, CertifiedVotes, CheckpointCertificate, FinalRound,
    FinalRoundError, VoteTally,
};
pub use ids::{AgentId, Digest, SwarmId};
pub use round_messages::{Inserted, RoundMessages, Turn};
pub use rules::{
    is_equivocation, resolve_round, Candidate, DissolveReason, EquivocationEvidence, RoundOutcome,
};
pub use shared_resolution::{Resolved, SharedResolutions};
pub use state::{
    admission_limit, majority, voter_additions, votes_needed, ClaimRecord, Coalition, LedgerState,
    MemberRecord, MemberStatus, OffenceCounts, Quorum, DEADLOCK_ROUNDS, DEFAULT_ABSENCE_LIMIT,
    INCOME_PER_ROUND, INITIAL_CREDITS, MIN_ADMISSIONS_PER_ROUND, SUSPEND_AFTER_MISSES,
    VOTING_STREAK,
};
pub use sync::{
    SyncRequest, SyncResponse, MAX_DELIVER_ENVELOPES, MAX_REQUEST_BYTES, MAX_SYNC_BYTES,
    MAX_SYNC_ROUNDS,
};
pub use trust::{
    after_honest_round, after_offences, trust_multiplier, Offence, CONTRADICTION_SEVERITY,
    INITIAL_TRUST, LIE_REPAIR_HALVINGS, POWER_FLOOR, PPM, REPAIR_SHIFT, RESTART_SEVERITY,
    TRUST_FLOOR,
};
pub use wire::{
    check_text, Accepted, CheckpointVote, Claim, CoalitionAcceptance, CoalitionId,
    CoalitionProposal, Commit, Evidence, Join, Leave, LeaveReason, Limits, Message, Negotiation,
    NegotiationLine, Payload, PayloadKind, Promise, Proposal, Reveal, Stage, Support,
    PROTOCOL_VERSION,
};
