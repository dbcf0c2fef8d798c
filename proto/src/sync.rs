//! Direct messages between two peers (the request–response protocol beside gossip):
//! delivering signed messages to one peer, fetching the messages a peer resolved to a
//! digest ([`crate::Output::FetchInputs`]), and fetching certified final rounds
//! ([`crate::Output::FetchRound`], late joiners, restarts).
//!
//! Requests and answers carry envelopes and records exactly as gossip and the ledger do, so
//! the receiver verifies each one itself: a peer's answer is never trusted as such.

use crate::codec::{self, DecodeError};
use crate::envelope::Envelope;
use crate::finality::FinalRound;
use crate::ids::Digest;
use crate::wire::Limits;
use serde::{Deserialize, Serialize};

/// Largest encoded answer, in bytes: answers are filled up to this budget.
pub const MAX_SYNC_BYTES: usize = 8 << 20;
/// Largest encoded request, in bytes: a request is a peer's few messages of a round, or a
/// question of a few bytes, so a peer cannot make another read and verify megabytes.
pub const MAX_REQUEST_BYTES: usize = 256 << 10;
/// Most envelopes in one [`SyncRequest::Deliver`] (a sender splits larger batches).
pub const MAX_DELIVER_ENVELOPES: usize = 64;
/// Most final rounds asked for, or given, in one answer.
pub const MAX_SYNC_ROUNDS: u32 = 64;

/// What one peer asks of another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Take these signed messages (sent directly when gossip cannot carry them).
    Deliver(Vec<Envelope>),
    /// The messages you resolved to `digest` in `round` ([`crate::Engine::inputs`]).
    Inputs {
        /// The round.
        round: u64,
        /// The digest.
        digest: Digest,
    },
    /// Your final rounds from `from` on, at most `max` of them.
    FinalRounds {
        /// The first round wanted.
        from: u64,
        /// How many at most.
        max: u32,
    },
}

/// The answer to a [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The delivered messages were taken (each is verified on its own).
    Delivered,
    /// The messages resolved to the digest asked for (empty if unknown).
    Inputs {
        /// The round.
        round: u64,
        /// The digest.
        digest: Digest,
        /// The messages.
        envelopes: Vec<Envelope>,
    },
    /// Consecutive final rounds from the first one asked for (empty if none).
    FinalRounds(Vec<FinalRound>),
}

impl SyncRequest {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a request of at most [`MAX_REQUEST_BYTES`], checking its counts.
    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, DecodeError> {
        let request: SyncRequest = codec::decode(bytes, MAX_REQUEST_BYTES)?;
        match &request {
            SyncRequest::Deliver(envelopes) => {
                check_count("envelopes", envelopes.len(), MAX_DELIVER_ENVELOPES)?
            }
            SyncRequest::FinalRounds { max, .. } => {
                check_count("max", *max as usize, MAX_SYNC_ROUNDS as usize)?
            }
            SyncRequest::Inputs { .. } => {}
        }
        Ok(request)
    }
}

impl SyncResponse {
    /// Encodes the answer.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes an answer of at most [`MAX_SYNC_BYTES`], checking its counts against `limits`.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<SyncResponse, DecodeError> {
        let response: SyncResponse = codec::decode(bytes, MAX_SYNC_BYTES)?;
        match &response {
            SyncResponse::Inputs { envelopes, .. } => {
                check_count("envelopes", envelopes.len(), limits.max_round_messages)?
            }
            SyncResponse::FinalRounds(rounds) => {
                check_count("rounds", rounds.len(), MAX_SYNC_ROUNDS as usize)?
            }
            SyncResponse::Delivered => {}
        }
        Ok(response)
    }
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), DecodeError> {
    if count > max {
        return Err(DecodeError::OutOfBounds {
            field,
            reason: format!("{count} > {max}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_counts_are_bounded() {
        let limits = Limits::default();
        for request in [
            SyncRequest::Inputs {
                round: 7,
                digest: Digest([1; 32]),
            },
            SyncRequest::FinalRounds { from: 3, max: 10 },
            SyncRequest::Deliver(Vec::new()),
        ] {
            assert_eq!(SyncRequest::decode(&request.encode()), Ok(request));
        }
        let greedy = SyncRequest::FinalRounds {
            from: 0,
            max: MAX_SYNC_ROUNDS + 1,
        };
        assert!(matches!(
            SyncRequest::decode(&greedy.encode()),
            Err(DecodeError::OutOfBounds { field: "max", .. })
        ));
        let envelope = Envelope {
            body: vec![0; 8],
            signature: ed25519_dalek::Signature::from_bytes(&[0; 64]),
        };
        let flood = SyncRequest::Deliver(vec![envelope; MAX_DELIVER_ENVELOPES + 1]);
        assert!(matches!(
            SyncRequest::decode(&flood.encode()),
            Err(DecodeError::OutOfBounds {
                field: "envelopes",
                ..
            })
        ));
        let answer = SyncResponse::FinalRounds(Vec::new());
        assert_eq!(SyncResponse::decode(&answer.encode(), &limits), Ok(answer));
        assert!(SyncResponse::decode(&[0xff, 0xff], &limits).is_err());
    }
}
