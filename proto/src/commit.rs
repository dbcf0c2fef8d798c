//! Commit–reveal: the hash that seals a bid, and the check of a reveal against it.

use crate::codec;
use crate::ids::{AgentId, Digest};
use crate::wire::{Commit, Reveal, Support};

/// `SHA-256("slotmesh/commit/v1", encode(round, sender, bid, support, nonce))`: binds the
/// round, the sender, the bid, the coalition support and a 32-byte random nonce.
pub fn commitment(
    round: u64,
    sender: AgentId,
    bid: u64,
    support: Option<Support>,
    nonce: [u8; 32],
) -> Digest {
    let opening = codec::encode(&(round, sender, bid, support, nonce));
    Digest::of(b"slotmesh/commit/v1", &[&opening])
}

/// How a reveal relates to its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevealCheck {
    /// It opens the commit and stays within the deposit.
    Valid,
    /// It does not hash to the commitment.
    Mismatch,
    /// It opens the commitment but bid + support exceeds the deposit.
    OverDeposit,
}

/// Checks `reveal` by `sender` in `round` against `commit`.
pub fn check_reveal(round: u64, sender: AgentId, commit: &Commit, reveal: &Reveal) -> RevealCheck {
    if commitment(round, sender, reveal.bid, reveal.support, reveal.nonce) != commit.commitment {
        return RevealCheck::Mismatch;
    }
    let support = reveal.support.map_or(0, |s| s.amount);
    match reveal.bid.checked_add(support) {
        Some(total) if total <= commit.deposit => RevealCheck::Valid,
        _ => RevealCheck::OverDeposit,
    }
}
