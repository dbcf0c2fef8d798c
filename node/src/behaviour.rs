//! The libp2p side of a node: the protocols in use (one `NetworkBehaviour`), the gossipsub
//! topics a payload travels on, how a swarm is built from the agent's key, and the mapping
//! between agent ids and libp2p peer ids (the same ed25519 key).

use super::sync_codec::{SyncCodec, SYNC_PROTOCOL};
use crate::error::{NodeError, Result};
use crate::keys::Secret;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, TopicHash};
use libp2p::identity::Keypair;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    identify, kad, mdns, noise, ping, tcp, yamux, PeerId, StreamProtocol, Swarm, SwarmBuilder,
    Transport,
};

/// The Kademlia protocol of slotmesh swarms (kept apart from other DHTs).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/slotmesh/kad/1.0.0");
use slotmesh_proto::{AgentId, Identity, PayloadKind, SwarmId};
use std::collections::HashMap;
use std::time::Duration;

/// Largest gossip message: one envelope of the largest allowed size.
const MAX_GOSSIP_BYTES: usize = 8 * 1024;
/// Connections kept with one peer: two daemons that dial each other at once hold two, and a
/// third covers a redial while an old one closes (one alone stalled the frozen-voters test).
const MAX_CONNECTIONS_PER_PEER: u32 = 3;
/// Connections kept in all, and incoming ones being set up: far above a swarm's members,
/// far below what exhausts a process's file descriptors.
const MAX_CONNECTIONS: u32 = 512;
const MAX_PENDING_INCOMING: u32 = 64;
/// Request–response streams one connection may have open at once (libp2p's default is 100).
const MAX_SYNC_STREAMS: usize = 16;

pub use protocols::{Behaviour, BehaviourEvent};

/// The derived behaviour, in a module of its own: the derive also makes `BehaviourEvent`
/// (one variant per protocol), which cannot carry doc comments.
#[allow(missing_docs)]
mod protocols {
    use super::SyncCodec;
    use libp2p::kad::store::MemoryStore;
    use libp2p::swarm::behaviour::toggle::Toggle;
    use libp2p::swarm::NetworkBehaviour;
    use libp2p::{connection_limits, gossipsub, identify, kad, mdns, ping, request_response};

    /// The protocols a slotmesh node speaks.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Bounds on connections, per peer and in all.
        pub limits: connection_limits::Behaviour,
        /// Broadcast of signed protocol messages, validated before the engine sees them.
        pub gossipsub: gossipsub::Behaviour,
        /// Direct messages and state sync.
        pub sync: request_response::Behaviour<SyncCodec>,
        /// Exchange of listen addresses and protocol versions.
        pub identify: identify::Behaviour,
        /// The peers of peers (Kademlia), so no node is the only point of contact.
        pub kad: kad::Behaviour<MemoryStore>,
        /// Liveness of connections.
        pub ping: ping::Behaviour,
        /// LAN discovery, unless `--no-mdns`.
        pub mdns: Toggle<mdns::tokio::Behaviour>,
    }
}

/// The gossipsub topics of one swarm. Each payload kind has one topic; the swarm id is in
/// every topic name so that two swarms on one LAN never see each other's messages.
#[derive(Debug, Clone)]
pub struct Topics {
    announce: IdentTopic,
    negotiation: IdentTopic,
    coalition: IdentTopic,
    bids: IdentTopic,
    checkpoint: IdentTopic,
}

impl Topics {
    /// The topics of `swarm`.
    pub fn new(swarm: SwarmId) -> Topics {
        let prefix = format!("slotmesh/{}", hex::encode(&swarm.0[..8]));
        let topic = |name: &str| IdentTopic::new(format!("{prefix}/{name}"));
        Topics {
            announce: topic("announce"),
            negotiation: topic("negotiation"),
            coalition: topic("coalition"),
            bids: topic("bids"),
            checkpoint: topic("checkpoint"),
        }
    }

    /// Every topic.
    pub fn all(&self) -> [&IdentTopic; 5] {
        [
            &self.announce,
            &self.negotiation,
            &self.coalition,
            &self.bids,
            &self.checkpoint,
        ]
    }

    /// The topic a payload kind travels on.
    pub fn for_kind(&self, kind: PayloadKind) -> &IdentTopic {
        match kind {
            PayloadKind::Join | PayloadKind::Claim | PayloadKind::Leave => &self.announce,
            PayloadKind::Negotiation => &self.negotiation,
            PayloadKind::CoalitionAcceptance => &self.coalition,
            PayloadKind::Commit | PayloadKind::Reveal => &self.bids,
            PayloadKind::CheckpointVote
            | PayloadKind::Proposal
            | PayloadKind::Promise
            | PayloadKind::Evidence => &self.checkpoint,
        }
    }

    /// A short name of the topic with this hash, for logs and metrics.
    pub fn name_of(&self, hash: &TopicHash) -> &'static str {
        let names = ["announce", "negotiation", "coalition", "bids", "checkpoint"];
        self.all()
            .iter()
            .position(|t| t.hash() == *hash)
            .map_or("unknown", |i| names[i])
    }
}

/// The libp2p keypair of an agent: its ed25519 identity key.
pub fn keypair(identity: &Identity) -> Result<Keypair> {
    let mut secret = identity.secret();
    Keypair::ed25519_from_bytes(&mut secret).map_err(NodeError::Key)
}

/// The libp2p peer id of an agent.
pub fn peer_id_of(agent: AgentId) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(&agent.0).ok()?;
    Some(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// Builds the swarm: TCP (inside a libp2p private network if `swarm_key` is given) + Noise +
/// Yamux, gossipsub on `topics` with validation by the caller, request–response sync,
/// identify, ping, and mDNS if `mdns` is set.
pub fn build_swarm(
    key: Keypair,
    topics: &Topics,
    mdns: bool,
    request_timeout: Duration,
    swarm_key: Option<PreSharedKey>,
) -> Result<Swarm<Behaviour>> {
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| transport(key, swarm_key))
        .map_err(|e| NodeError::network("cannot build the TCP transport", e))?
        .with_behaviour(|key| make_behaviour(key, topics, mdns, request_timeout))
        .map_err(|e| NodeError::network("cannot build the network behaviour", e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    for topic in topics.all() {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(topic)
            .map_err(|e| NodeError::network("cannot subscribe to a topic", e))?;
    }
    Ok(swarm)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TCP, then the pre-shared-key handshake of a private swarm (a peer without the key fails
/// here, before anything else), then Noise and Yamux.
fn transport(
    key: &Keypair,
    swarm_key: Option<PreSharedKey>,
) -> std::result::Result<Boxed<(PeerId, StreamMuxerBox)>, BoxError> {
    let tcp = libp2p::tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let noise = noise::Config::new(key)?;
    let timeout = Duration::from_secs(20);
    Ok(match swarm_key {
        Some(psk) => tcp
            .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(timeout)
            .boxed(),
        None => tcp
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(timeout)
            .boxed(),
    })
}

fn make_behaviour(
    key: &Keypair,
    topics: &Topics,
    mdns: bool,
    request_timeout: Duration,
) -> std::result::Result<Behaviour, BoxError> {
    let peer_id = key.public().to_peer_id();
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(250))
        .validate_messages()
        // Every payload is an envelope the agent signed itself (verified once, after
        // gossipsub drops duplicates); a second libp2p signature per message would be
        // verified on every received copy and cost most of the CPU of a round.
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .max_transmit_size(MAX_GOSSIP_BYTES)
        // Content-addressed ids: a signed message relayed or re-sent by anyone is
        // recognised as the same message.
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::from(
                slotmesh_proto::Digest::of(b"slotmesh/gossip-id/v1", &[&message.data])
                    .0
                    .to_vec(),
            )
        })
        // Publishing floods every subscribed peer directly; the mesh only relays, so a
        // small one suffices (each relay is one more copy every node must handle).
        .mesh_n(3)
        .mesh_n_low(2)
        .mesh_n_high(4)
        .mesh_outbound_min(1)
        .gossip_lazy(3)
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))?;
    let mut gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)?;
    gossipsub.with_peer_score(score_params(topics), score_thresholds())?;
    let sync = request_response::Behaviour::new(
        [(SYNC_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(request_timeout)
            .with_max_concurrent_streams(MAX_SYNC_STREAMS),
    );
    let identify = identify::Behaviour::new(identify::Config::new(
        "/slotmesh/1.0.0".into(),
        key.public(),
    ));
    let mdns = if mdns {
        // Our own networks only: query often, so that a node back from a partition or a
        // restart is found again within seconds.
        let config = mdns::Config {
            query_interval: Duration::from_secs(5),
            ..Default::default()
        };
        Some(mdns::tokio::Behaviour::new(config, peer_id)?)
    } else {
        None
    };
    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config.set_periodic_bootstrap_interval(Some(Duration::from_secs(10)));
    let mut kad =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
    // Every daemon answers: the swarm is small and its members reach each other.
    kad.set_mode(Some(kad::Mode::Server));
    let limits = libp2p::connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
        .with_max_established(Some(MAX_CONNECTIONS))
        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING));
    Ok(Behaviour {
        limits: libp2p::connection_limits::Behaviour::new(limits),
        gossipsub,
        sync,
        identify,
        kad,
        ping: ping::Behaviour::default(),
        mdns: Toggle::from(mdns),
    })
}

/// Reads a swarm key file (the libp2p/IPFS format: `/key/swarm/psk/1.0.0/`, `/base16/`,
/// 64 hex digits).
pub fn read_swarm_key(path: &std::path::Path) -> Result<PreSharedKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| NodeError::file("cannot read swarm key", path, e))?;
    text.parse::<PreSharedKey>()
        .map_err(|e| NodeError::Malformed {
            path: path.to_path_buf(),
            problem: format!("is not a libp2p pre-shared key: {e}"),
        })
}

/// Writes a new random swarm key file; refuses to overwrite one.
pub fn write_swarm_key(path: &std::path::Path) -> Result<PreSharedKey> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = PreSharedKey::new(bytes);
    crate::keys::write_secret(path, key.to_string().as_bytes(), Secret::SwarmKey)?;
    Ok(key)
}

/// Peer scoring that punishes invalid messages only: a message rejected by validation
/// (undecodable, badly signed, over a limit) costs its sender enough to be graylisted.
/// Delivery-rate penalties are off: a small swarm's honest peers would trip them. So is the
/// IP colocation penalty: a one-host swarm (`slotmesh swarm`, docker compose behind one NAT)
/// puts every honest peer on one address, and with its default weight 16 peers on 127.0.0.1
/// fall below the publish threshold and gossip stops.
fn score_params(topics: &Topics) -> gossipsub::PeerScoreParams {
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    };
    let topics: HashMap<TopicHash, gossipsub::TopicScoreParams> = topics
        .all()
        .iter()
        .map(|t| (t.hash(), topic_params.clone()))
        .collect();
    gossipsub::PeerScoreParams {
        topics,
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    }
}

fn score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn agent_id_and_peer_id_are_one_key() {
        let identity = Identity::from_secret([7; 32]);
        let key = keypair(&identity).unwrap();
        assert_eq!(peer_id_of(identity.id()), Some(key.public().to_peer_id()));
    }
}
