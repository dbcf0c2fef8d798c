//! slotmesh-proto: everything the peers of a slotmesh swarm must agree on, and nothing that
//! touches a socket, a clock or a random number generator.
//!
//! - [`codec`]: the one wire encoding (bincode 2.0.1), bounded and exact.
//! - [`wire`]: message and payload types with their limits.
//! - [`envelope`]: ed25519-signed envelopes, [`Identity`], [`open`] to verify anything received.
//! - [`commit`]: commit–reveal of sealed bids.
//! - [`state`], [`trust`], [`rules`]: the replicated ledger state, the trust formula and the
//!   pure slot-resolution rule.
//! - [`finality`]: checkpoint votes, certificates and verified final rounds.
//! - [`ledger_file`]: the on-disk format of the ledger (framing, checksums, torn tails).
//! - [`sync`]: direct request–response messages between two peers (delivery, fetches).
//! - [`engine`]: the round state machine the daemon and the simulator drive.
//! - [`shared_resolution`]: one resolution for replicas in one process that hold the same inputs.

pub mod codec;
pub mod commit;
pub mod engine;
pub mod envelope;
pub mod finality;
pub mod ids;
pub mod ledger_file;
pub mod round_messages;
pub mod rules;
pub mod shared_resolution;
pub mod state;
pub mod sync;
pub mod trust;
pub mod wire;

pub use commit::{check_reveal, commitment, RevealCheck};
pub use engine::{CommandError, Engine, EngineConfig, FinalityStatus, Finalized, Output, Phase};
pub use envelope::{
    open, open_envelope, Envelope, Identity, OpenError, SignedMessage, VerifyError,
};
pub use finality::{
    CertifiedRound, CertifiedVotes, CheckpointCertificate, FinalRound, FinalRoundError, VoteTally,
};
pub use ids::{AgentId, Digest, SwarmId};
pub use round_messages::{Inserted, RoundMessages, Turn};
pub use rules::{resolve_round, Candidate, DissolveReason, RoundOutcome};
pub use shared_resolution::SharedResolutions;
pub use state::{LedgerState, MemberRecord, MemberStatus};
pub use wire::{Limits, Message, Payload, PayloadKind};
