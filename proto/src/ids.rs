//! Identifiers and hashes: agent ids (ed25519 public keys), swarm ids, digests.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A SHA-256 digest. Every hash in the protocol is domain-separated (see [`Digest::of`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Hashes `parts` under a domain tag: `SHA-256(len(tag) || tag || part0 || part1 ...)`.
    pub fn of(tag: &[u8], parts: &[&[u8]]) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update((tag.len() as u64).to_le_bytes());
        hasher.update(tag);
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    /// Lower-case hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..16])
    }
}

/// An agent's identity: the 32 bytes of its ed25519 public key (the same key is its libp2p
/// identity). Ordered bytewise, which is the order every deterministic iteration uses.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AgentId(pub [u8; 32]);

impl AgentId {
    /// Lower-case hex of the key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, for logs and tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl std::str::FromStr for AgentId {
    type Err = String;

    /// 64 hex digits, as [`AgentId::to_hex`] writes them (and `slotmesh keygen` prints).
    fn from_str(text: &str) -> Result<AgentId, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|e| format!("an agent id is 64 hex digits ({e})"))?;
        Ok(AgentId(bytes))
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({})", self.short())
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

/// Names one swarm, so that a message signed for one swarm is never valid in another.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SwarmId(pub [u8; 32]);

impl SwarmId {
    /// The swarm id for a human-chosen swarm name (default `"slotmesh"`).
    pub fn from_name(name: &str) -> SwarmId {
        SwarmId(Digest::of(b"slotmesh/swarm-id/v1", &[name.as_bytes()]).0)
    }
}

impl fmt::Debug for SwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SwarmId({})", hex::encode(&self.0[..4]))
    }
}
