//! The addresses a node knows of other members, so that no single node is a point of
//! contact: learned from identify (each peer's own listen addresses), Kademlia (the peers of
//! peers) and mDNS; every peer learned is dialled; the book is kept in the data dir
//! (`peers.json`), so a restarted daemon finds the swarm again even when its `--peer` node
//! is gone; and a node left with no connection re-dials what it knows, with backoff.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Peers kept in the book (the most recently learned stay).
pub const MAX_PEERS: usize = 256;
/// Addresses kept per peer.
pub const MAX_ADDRESSES: usize = 8;
/// First wait before re-dialling when no peer is connected, ms; it doubles up to
/// [`REDIAL_MAX_MS`].
pub const REDIAL_FIRST_MS: u64 = 500;
/// Longest wait between re-dials, ms.
pub const REDIAL_MAX_MS: u64 = 30_000;

/// Known addresses of other members, and the re-dial schedule.
#[derive(Debug, Default)]
pub struct PeerBook {
    /// Full addresses (with `/p2p/`) by peer, as text (the file's form).
    known: BTreeMap<String, BTreeSet<String>>,
    /// Addresses given on the command line (perhaps without a peer id).
    given: Vec<Multiaddr>,
    /// The book changed since it was last saved.
    dirty: bool,
    next_redial: u64,
    backoff: u64,
}

/// The file's form.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PeerFile {
    peers: BTreeMap<String, BTreeSet<String>>,
}

impl PeerBook {
    /// A book from the saved file's bytes (ignored if they do not parse) and the command
    /// line's `--peer` addresses.
    pub fn new(saved: Option<&[u8]>, given: Vec<Multiaddr>) -> PeerBook {
        let known = saved
            .and_then(|bytes| serde_json::from_slice::<PeerFile>(bytes).ok())
            .map(|file| file.peers)
            .unwrap_or_default();
        PeerBook {
            known,
            given,
            dirty: false,
            next_redial: 0,
            backoff: REDIAL_FIRST_MS,
        }
    }

    /// Learns that `peer` listens on `address`; true if it is new.
    pub fn learn(&mut self, peer: PeerId, address: &Multiaddr) -> bool {
        if !routable(address) {
            return false;
        }
        let full = address.clone().with_p2p(peer).unwrap_or_else(|a| a);
        let key = peer.to_string();
        if !self.known.contains_key(&key) && self.known.len() >= MAX_PEERS {
            return false;
        }
        let addresses = self.known.entry(key).or_default();
        if addresses.len() >= MAX_ADDRESSES {
            return false;
        }
        let new = addresses.insert(full.to_string());
        self.dirty |= new;
        new
    }

    /// Every address to dial: the known ones and the given ones.
    pub fn addresses(&self) -> Vec<Multiaddr> {
        let known = self
            .known
            .values()
            .flatten()
            .filter_map(|text| text.parse::<Multiaddr>().ok());
        known.chain(self.given.iter().cloned()).collect()
    }

    /// Known addresses of `peer`.
    pub fn addresses_of(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.known
            .get(&peer.to_string())
            .into_iter()
            .flatten()
            .filter_map(|text| text.parse().ok())
            .collect()
    }

    /// Members known by address, and addresses given on the command line.
    pub fn len(&self) -> usize {
        self.known.len() + self.given.len()
    }

    /// Whether no address is known at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// With `connected` peers at `now` (ms): the addresses to re-dial now, if it is time.
    /// Connected, the backoff starts over.
    pub fn redial(&mut self, connected: usize, now: u64) -> Vec<Multiaddr> {
        if connected > 0 {
            self.backoff = REDIAL_FIRST_MS;
            self.next_redial = now + REDIAL_FIRST_MS;
            return Vec::new();
        }
        if now < self.next_redial {
            return Vec::new();
        }
        self.next_redial = now + self.backoff;
        self.backoff = (self.backoff * 2).min(REDIAL_MAX_MS);
        self.addresses()
    }

    /// The file's bytes if the book changed since the last call.
    pub fn take_changes(&mut self) -> Option<Vec<u8>> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let file = PeerFile {
            peers: self.known.clone(),
        };
        serde_json::to_vec_pretty(&file).ok()
    }
}

/// Whether `address` can be dialled by others: not an unspecified address (0.0.0.0).
fn routable(address: &Multiaddr) -> bool {
    !address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn learns_saves_and_redials_with_backoff() {
        let peer = PeerId::random();
        let mut book = PeerBook::new(None, Vec::new());
        let address: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert!(book.learn(peer, &address));
        assert!(!book.learn(peer, &address), "known already");
        assert!(!book.learn(peer, &"/ip4/0.0.0.0/tcp/1".parse().unwrap()));
        let saved = book.take_changes().unwrap();
        assert!(book.take_changes().is_none());
        let again = PeerBook::new(Some(&saved), Vec::new());
        assert_eq!(again.addresses_of(&peer).len(), 1);
        assert!(again.addresses()[0]
            .to_string()
            .ends_with(&peer.to_string()));
        // No connection: re-dial at once, then after 0.5 s, 1 s, 2 s ...
        let mut book = again;
        assert_eq!(book.redial(0, 0).len(), 1);
        assert!(book.redial(0, 100).is_empty());
        assert_eq!(book.redial(0, 500).len(), 1);
        assert!(book.redial(0, 1_400).is_empty());
        assert_eq!(book.redial(0, 1_500).len(), 1);
        assert!(book.redial(1, 1_600).is_empty(), "connected: nothing to do");
    }
}
