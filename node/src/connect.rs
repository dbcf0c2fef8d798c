//! How a node stays connected to every member without a single point of contact: what it
//! learns of other members' addresses (identify, Kademlia, mDNS) goes into its peer book and
//! the Kademlia table; members it has no link to are looked up and dialled; with no peer
//! left it re-dials what it knows. The book itself is [`crate::peers`].

use super::*;

/// How often a node looks up the members it is not connected to, ms.
const LOOKUP_INTERVAL_MS: u64 = 1_000;
/// Members looked up at most at once.
const MAX_LOOKUPS: usize = 16;
/// How long a node with no peer connected waits before it says so, and then between
/// reminders, ms.
const ALONE_WARNING_MS: u64 = 30_000;
impl Node {
    /// Fires the engine's timers that are due, then the host's own (deferred decisions,
    /// slot boundaries).
    /// Learns that `peer` listens on `address`: Kademlia hears of it (and tells others), and
    /// the peer book keeps it.
    pub(super) fn learn(&mut self, peer: PeerId, address: &Multiaddr) {
        if peer == self.peer_id() {
            return;
        }
        if self.peers.learn(peer, address) {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, address.clone());
        }
    }

    /// A member learned through another: connect to it directly.
    pub(super) fn dial_learned(&mut self, peer: PeerId, addresses: Vec<Multiaddr>) {
        if peer == self.peer_id() || self.swarm.is_connected(&peer) {
            return;
        }
        tracing::debug!(%peer, "learned a member's address; dialling it");
        for address in &addresses {
            self.learn(peer, address);
        }
        let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
            .addresses(addresses)
            .build();
        let _ = self.swarm.dial(opts);
    }

    /// Keeps a direct connection to every active member: asks the peers it has (Kademlia)
    /// for the addresses of members it is not connected to, once a second; with no peer
    /// connected, re-dials every known member's address (with backoff); saves the peer book
    /// when it changed.
    pub(super) fn keep_connected(&mut self, now: u64) {
        if now >= self.next_lookup {
            self.next_lookup = now + LOOKUP_INTERVAL_MS;
            let me = self.identity.id();
            let missing: Vec<PeerId> = self
                .driver
                .engine()
                .state()
                .active_members()
                .filter(|(id, _)| **id != me)
                .filter_map(|(id, _)| peer_id_of(*id))
                .filter(|peer| !self.swarm.is_connected(peer))
                .take(MAX_LOOKUPS)
                .collect();
            for peer in missing {
                let known = self.peers.addresses_of(&peer);
                if known.is_empty() {
                    self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                } else {
                    self.dial_learned(peer, known);
                }
            }
        }
        let connected = self.swarm.connected_peers().count();
        self.say_if_alone(connected, now);
        for address in self.peers.redial(connected, now) {
            tracing::debug!(%address, "no peer connected: re-dialling a known member");
            let _ = self.swarm.dial(address);
        }
        if let Some(bytes) = self.peers.take_changes() {
            if let Err(error) = self.data.replace_quietly(data_dir::files::PEERS, &bytes) {
                tracing::warn!(%error, "cannot save the peer book");
            }
        }
    }

    /// With no peer connected for [`ALONE_WARNING_MS`], says so (and again every as long):
    /// a daemon restarted after every other member left, or cut off, otherwise waits in
    /// silence.
    fn say_if_alone(&mut self, connected: usize, now: u64) {
        if connected > 0 {
            self.alone = None;
            return;
        }
        let (since, said) = *self.alone.get_or_insert((now, now));
        if now >= said + ALONE_WARNING_MS {
            self.alone = Some((since, now));
            tracing::warn!(
                seconds = (now - since) / 1000,
                known = self.peers.len(),
                round = self.driver.engine().round(),
                "no peer connected: still dialling the members this node knows (if every other member has left, the swarm has ended; check --peer and the network)"
            );
        }
    }
}
