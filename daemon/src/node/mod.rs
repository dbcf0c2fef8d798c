//! `slotmesh daemon`: one agent on a real network. The event loop owns the libp2p swarm, the
//! `proto` engine and the agent's [`Mind`]; it only selects and dispatches between them:
//! [`Node::handle_swarm_event`], [`Node::handle_command`], timers, and
//! [`Node::handle_engine_output`]. The rules live in the engine; this file moves messages,
//! persists final rounds and keeps time.
//!
//! Time: the engine's `now` is milliseconds since the node started (monotonic).

mod behaviour;
mod data_dir;
mod events;
mod metrics;
mod status;
mod sync_codec;

pub use behaviour::{
    build_swarm, keypair, peer_id_of, read_swarm_key, write_swarm_key, Behaviour, BehaviourEvent,
    Topics,
};
pub use data_dir::DataDir;
pub use events::NodeEvent;
pub use metrics::NodeMetrics;
pub use status::{NodeStatus, SlotRecord};
pub use sync_codec::{SyncCodec, SYNC_PROTOCOL};

use crate::agent::Mind;
use crate::ledger::Ledger;
use crate::strategy::heuristic::{Heuristic, Personality};
use crate::strategy::memory::Memory;
use crate::strategy::Job;
use anyhow::{bail, Context, Result};
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{mdns, Multiaddr, PeerId, Swarm};
use slotmesh_proto::sync::{SyncRequest, SyncResponse, MAX_SYNC_BYTES, MAX_SYNC_ROUNDS};
use slotmesh_proto::wire::LeaveReason;
use slotmesh_proto::{
    open, open_envelope, AgentId, Engine, EngineConfig, Envelope, FinalRound, Identity,
    LedgerState, Limits, MemberStatus, Output, PayloadKind, Phase, SignedMessage, SwarmId,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A peer whose messages fail validation this many times is disconnected and ignored.
const MAX_REJECTIONS: u32 = 3;
/// The status file is rewritten at most this often (ms), and on every final round.
const STATUS_INTERVAL_MS: u64 = 100;
/// How many phase timeouts a finished node stays at most to help the others finalize.
const LINGER_TIMEOUTS: u64 = 4;
/// Messages kept for peers that are not connected yet (sent on the next connection).
const MAX_UNSENT: usize = 256;

/// Everything a daemon is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Display name.
    pub name: String,
    /// True burst of the job, in slots.
    pub burst: u32,
    /// Heuristic personality.
    pub personality: Personality,
    /// Bias in [0, 1].
    pub bias: f64,
    /// Seed of the strategy's random choices (default: from the key).
    pub seed: Option<u64>,
    /// Name of the swarm (its id is derived from it).
    pub swarm_name: String,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial.
    pub peers: Vec<Multiaddr>,
    /// LAN discovery.
    pub mdns: bool,
    /// The data directory.
    pub data_dir: PathBuf,
    /// How long a won slot executes, ms.
    pub slot_ms: u64,
    /// Phase timeout, ms.
    pub phase_timeout_ms: u64,
    /// Founding members the first round waits for.
    pub founders: usize,
    /// Join an existing swarm rather than found one.
    pub join: bool,
    /// Pre-shared key file of a private swarm (libp2p pnet).
    pub swarm_key: Option<PathBuf>,
    /// Address of the local HTTP endpoint (status, metrics, events, dashboard).
    pub http: Option<std::net::SocketAddr>,
    /// A real job (`--exec`): runs only in won slots; complete when it exits.
    pub exec: Option<String>,
}

/// Commands a [`NodeHandle`] sends into the event loop.
#[derive(Debug)]
pub enum Command {
    /// Reply with the current status.
    Status(tokio::sync::oneshot::Sender<NodeStatus>),
    /// Leave the swarm and stop (SIGINT/SIGTERM).
    Shutdown,
}

/// A cloneable handle on a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
}

impl NodeHandle {
    /// Asks the node to leave and stop. A second call stops it at once.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// The node's current status (`None` if it has stopped).
    pub async fn status(&self) -> Option<NodeStatus> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands.send(Command::Status(reply)).await.ok()?;
        answer.await.ok()
    }
}

/// How a node ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeExit {
    /// Its job is done, its leave is final and its slots have executed.
    Completed,
    /// It left on request and the leave is final.
    Left,
    /// It was asked to stop and stopped before its leave became final.
    Interrupted,
    /// The swarm marked it failed (it missed too many rounds); its job cannot finish.
    Failed {
        /// The round it was marked failed in.
        round: u64,
    },
}

/// A started node, ready to run.
pub struct Node {
    config: NodeConfig,
    limits: Limits,
    swarm_id: SwarmId,
    identity: Identity,
    swarm: Swarm<Behaviour>,
    topics: Topics,
    engine: Engine,
    mind: Mind,
    data: DataDir,
    ledger: Ledger,
    /// Every final round, by round (served to peers that sync).
    records: Vec<FinalRound>,
    started: Instant,
    timers: BTreeMap<u64, BTreeSet<(u64, Phase)>>,
    commands: mpsc::Receiver<Command>,
    /// Rounds up to this one are silent: this agent may have spoken in them before a restart.
    silent_through: Option<u64>,
    spoken_round: Option<u64>,
    /// An announce decision held back until the previous slot starts executing.
    deferred_announce: Option<(u64, u64)>,
    /// End of the last slot on the schedule's local timeline (node ms).
    timeline_end: u64,
    /// Slots this agent won and executes: (round, start, end) in node ms.
    my_slots: VecDeque<(u64, u64, u64)>,
    status: NodeStatus,
    unsent: VecDeque<Envelope>,
    rejections: BTreeMap<PeerId, u32>,
    fetch_in_flight: Option<OutboundRequestId>,
    fetch_rotation: usize,
    shutdown_requested: Option<u64>,
    status_dirty: bool,
    status_written_at: Option<u64>,
    handle: NodeHandle,
    events: tokio::sync::broadcast::Sender<NodeEvent>,
    metrics: NodeMetrics,
    registry: std::sync::Arc<prometheus_client::registry::Registry>,
    http_listener: Option<std::net::TcpListener>,
    last_final_at: Option<Instant>,
    job: Option<crate::job::Job>,
    /// CPU time of the job when its current slot started, ms.
    job_cpu_at_slot_start: Option<u64>,
    /// This node's own messages of its latest round.
    sent_this_round: (u64, Vec<Envelope>),
    /// When this node's leave became final.
    finished_at: Option<u64>,
}

impl Node {
    /// Opens the data dir, replays and verifies the ledger, builds the swarm, starts
    /// listening and dialing. Errors are the user's to read: a bad flag, an unreadable or
    /// locked data dir, a damaged ledger, a port in use.
    pub fn start(config: NodeConfig) -> Result<(Node, NodeHandle)> {
        if config.burst == 0 {
            bail!("--burst must be at least 1");
        }
        if !(0.0..=1.0).contains(&config.bias) {
            bail!("--bias must be in [0, 1], got {}", config.bias);
        }
        if config.founders == 0 {
            bail!("--founders must be at least 1");
        }
        let limits = Limits::default();
        let swarm_id = SwarmId::from_name(&config.swarm_name);
        let data = DataDir::open(&config.data_dir)?;
        let (identity, generated) = crate::keys::load_or_generate(&data.key_path())?;
        if generated {
            tracing::info!(key = %data.key_path().display(), "generated a new identity key");
        }
        let (ledger, loaded) = Ledger::open(&data.ledger_path(), swarm_id, &limits)?;
        if loaded.dropped_tail_bytes > 0 {
            tracing::warn!(
                bytes = loaded.dropped_tail_bytes,
                "the ledger ended in a torn record (a crash while writing); it was dropped and will be fetched again from peers"
            );
        }
        let mut state = LedgerState::genesis(swarm_id);
        for record in &loaded.records {
            let (next, _, _) = record.apply(&state, &limits).with_context(|| {
                format!(
                    "ledger {} round {} does not verify",
                    data.ledger_path().display(),
                    record.round
                )
            })?;
            state = next;
        }
        let won = state
            .members
            .get(&identity.id())
            .map_or(0, |m| m.used_slots);
        let spoken_round = data.spoken_round()?;
        let mut strategy = Heuristic::new(
            config.personality,
            config.bias,
            config
                .seed
                .unwrap_or_else(|| u64::from_le_bytes(seed_bytes(&identity))),
        );
        match std::fs::read(data.memory_path()) {
            Ok(bytes) => match serde_json::from_slice::<Memory>(&bytes) {
                Ok(memory) => crate::strategy::Strategy::restore_memory(&mut strategy, memory),
                Err(e) => {
                    tracing::warn!(error = %e, "memory.json does not parse; starting with an empty memory")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("cannot read memory.json"),
        }
        let mind = Mind::new(
            Job {
                burst: config.burst,
                remaining: config.burst.saturating_sub(won),
            },
            Box::new(strategy),
            Box::new(rand::rngs::OsRng),
        );
        let topics = Topics::new(swarm_id);
        let key = keypair(&identity)?;
        let swarm_key = match &config.swarm_key {
            Some(path) => {
                let psk = read_swarm_key(path)?;
                tracing::info!(fingerprint = %psk.fingerprint(), "private swarm");
                Some(psk)
            }
            None => None,
        };
        let mut swarm = build_swarm(
            key,
            &topics,
            config.mdns,
            Duration::from_millis(config.phase_timeout_ms.max(500) * 4),
            swarm_key,
        )?;
        for address in &config.listen {
            swarm
                .listen_on(address.clone())
                .with_context(|| format!("cannot listen on {address} (is the port in use?)"))?;
        }
        for peer in &config.peers {
            if let Err(e) = swarm.dial(peer.clone()) {
                tracing::warn!(%peer, error = %e, "cannot dial peer");
            }
        }
        let founder = loaded.records.is_empty() && !config.join;
        let engine_config = EngineConfig {
            swarm: swarm_id,
            name: config.name.clone(),
            limits,
            phase_timeout_ms: config.phase_timeout_ms,
            founder,
            min_members: config.founders,
            expected_members: config.founders,
        };
        let resumed_at = state.next_round;
        let engine = Engine::new(identity.clone(), engine_config, state, 0);
        let (sender, commands) = mpsc::channel(16);
        let handle = NodeHandle { commands: sender };
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = NodeMetrics::new(&mut registry);
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let mut status = NodeStatus::new(&config, &identity, swarm.local_peer_id());
        let http_listener = match config.http {
            Some(address) => {
                let listener = std::net::TcpListener::bind(address).with_context(|| {
                    format!("cannot listen for HTTP on {address} (is the port in use?)")
                })?;
                listener.set_nonblocking(true)?;
                let bound = listener.local_addr()?;
                tracing::info!(address = %bound, "HTTP status, metrics, events and dashboard");
                status.http = Some(bound.to_string());
                Some(listener)
            }
            None => None,
        };
        tracing::info!(
            name = %config.name,
            id = %identity.id(),
            peer = %swarm.local_peer_id(),
            rounds = loaded.records.len(),
            remaining = mind.job.remaining,
            founder,
            "daemon started"
        );
        let node = Node {
            limits,
            swarm_id,
            identity,
            swarm,
            topics,
            engine,
            mind,
            data,
            ledger,
            records: loaded.records,
            started: Instant::now(),
            timers: BTreeMap::new(),
            commands,
            silent_through: spoken_round.filter(|r| *r >= resumed_at),
            spoken_round,
            deferred_announce: None,
            timeline_end: 0,
            my_slots: VecDeque::new(),
            status,
            unsent: VecDeque::new(),
            rejections: BTreeMap::new(),
            fetch_in_flight: None,
            fetch_rotation: 0,
            shutdown_requested: None,
            status_dirty: true,
            status_written_at: None,
            finished_at: None,
            sent_this_round: (0, Vec::new()),
            handle: handle.clone(),
            events,
            metrics,
            registry: std::sync::Arc::new(registry),
            http_listener,
            last_final_at: None,
            job: None,
            job_cpu_at_slot_start: None,
            config,
        };
        if let Some(round) = node.silent_through {
            tracing::info!(
                round,
                "restarted in a round this agent may have spoken in: staying silent through it"
            );
        }
        Ok((node, handle))
    }

    /// The node's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until the node is done.
    pub async fn run(mut self) -> Result<NodeExit> {
        if let Some(listener) = self.http_listener.take() {
            let state = crate::http::HttpState {
                node: self.handle.clone(),
                events: self.events.clone(),
                registry: self.registry.clone(),
            };
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tokio::spawn(crate::http::serve(listener, state));
        }
        if let Some(command) = self.config.exec.clone() {
            let me = self.identity.id();
            let finished = self
                .engine
                .state()
                .members
                .get(&me)
                .is_some_and(|m| !m.is_active());
            if finished {
                tracing::info!("this agent already left the swarm (ledger); not starting the job");
            } else {
                let job = crate::job::Job::start(&command).await?;
                tracing::info!(pid = job.pid(), %command, "job started, stopped until its first slot");
                self.status.job_pid = Some(job.pid());
                // Its length is unknown until it exits: claim at least one more slot.
                self.mind.job.remaining = self.mind.job.remaining.max(1);
                self.job = Some(job);
            }
        }
        self.drain_engine()?;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_timer = self.next_wakeup();
            let sleep = tokio::time::sleep_until(
                tokio::time::Instant::from_std(self.started) + Duration::from_millis(next_timer),
            );
            tokio::select! {
                event = self.swarm.select_next_some() => self.handle_swarm_event(event),
                Some(command) = self.commands.recv() => self.handle_command(command),
                () = sleep => self.fire_timers(),
                end = job_end(&mut self.job) => self.job_ended(end),
                _ = tick.tick() => self.on_tick(),
            }
            self.drain_engine()?;
            if let Some(exit) = self.exit_reason() {
                self.write_status(true);
                return Ok(exit);
            }
            self.write_status(false);
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn next_wakeup(&self) -> u64 {
        let timer = self.timers.keys().next().copied().unwrap_or(u64::MAX);
        let deferred = self.deferred_announce.map_or(u64::MAX, |(_, at)| at);
        let slot = self.slot_boundary().unwrap_or(u64::MAX);
        timer.min(deferred).min(slot).min(self.now() + 1_000)
    }

    // ----- inputs -----

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.record(&event);
        match &event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.metrics.record(e),
            _ => {}
        }
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.handle_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                topic,
                ..
            })) => {
                // A peer that subscribes now missed what was published before: give it this
                // round's messages directly (founding would otherwise wait a phase timeout).
                let (round, sent) = &self.sent_this_round;
                if topic == self.topics.for_kind(PayloadKind::Join).hash()
                    && *round == self.engine.round()
                    && !sent.is_empty()
                {
                    let sent = sent.clone();
                    self.deliver_direct(Some(peer_id), sent);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.handle_sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    if !self.swarm.is_connected(&peer) {
                        tracing::debug!(%peer, %address, "discovered by mDNS");
                        let _ = self.swarm.dial(address);
                    }
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with_p2p(self.peer_id()).unwrap_or_else(|a| a);
                tracing::info!(address = %full, "listening");
                self.status.listen.push(full.to_string());
                self.status_dirty = true;
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "connected");
                if !self.unsent.is_empty() {
                    let envelopes: Vec<Envelope> = self.unsent.drain(..).collect();
                    self.deliver_direct(Some(peer_id), envelopes);
                }
                self.status.peers = self.swarm.connected_peers().count();
                self.status_dirty = true;
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                tracing::debug!(peer = %peer_id, "disconnected");
                self.status.peers = self.swarm.connected_peers().count();
                self.status_dirty = true;
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    /// Validation before anything reaches the engine: size, decoding, signature, swarm,
    /// version and field limits, and the topic matching the payload. Rejected messages
    /// cost the peer that forwarded them (gossipsub scoring) and, repeated, the connection.
    fn handle_gossip(
        &mut self,
        source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let verdict = match open(&message.data, self.swarm_id, &self.limits) {
            Ok(signed) if self.topics.for_kind(signed.payload().kind()).hash() == message.topic => {
                Ok(signed)
            }
            Ok(_) => Err(("topic", "payload on the wrong topic".to_string())),
            Err(e) => Err((rejection_reason(&e), e.to_string())),
        };
        let topic = self.topics.name_of(&message.topic);
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        match verdict {
            Ok(signed) => {
                gossip.report_message_validation_result(
                    &message_id,
                    &source,
                    MessageAcceptance::Accept,
                );
                self.metrics
                    .messages_in
                    .get_or_create(&metrics::TopicLabel {
                        topic: topic.into(),
                    })
                    .inc();
                let now = self.now();
                self.engine.handle_message(signed, now);
            }
            Err((kind, reason)) => {
                gossip.report_message_validation_result(
                    &message_id,
                    &source,
                    MessageAcceptance::Reject,
                );
                self.reject(source, kind, &reason);
            }
        }
    }

    fn reject(&mut self, peer: PeerId, kind: &str, reason: &str) {
        self.metrics
            .rejected
            .get_or_create(&metrics::ReasonLabel {
                reason: kind.into(),
            })
            .inc();
        let count = self.rejections.entry(peer).or_default();
        *count += 1;
        self.status.rejected_messages += 1;
        tracing::warn!(%peer, %reason, rejections = *count, "rejected a message");
        if *count >= MAX_REJECTIONS {
            tracing::warn!(%peer, "too many rejected messages: disconnecting and ignoring the peer");
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn handle_sync_event(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.answer(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if self.fetch_in_flight == Some(request_id) {
                        self.fetch_in_flight = None;
                    }
                    self.take_response(peer, response);
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.fetch_in_flight == Some(request_id) {
                    self.fetch_in_flight = None;
                }
                tracing::debug!(%peer, %error, "sync request failed");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "sync answer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn answer(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let response = match request {
            SyncRequest::Deliver(envelopes) => {
                self.take_envelopes(peer, envelopes);
                SyncResponse::Delivered
            }
            SyncRequest::RoundMessages { round } => {
                let held: Vec<Envelope> = match self.engine.messages(round) {
                    Some(messages) => messages.iter().map(|m| m.envelope().clone()).collect(),
                    None => self
                        .records
                        .get(round as usize)
                        .map(|r| r.messages.clone())
                        .unwrap_or_default(),
                };
                SyncResponse::RoundMessages(held)
            }
            SyncRequest::FinalRounds { from, max } => {
                let mut budget = MAX_SYNC_BYTES / 2;
                let mut rounds = Vec::new();
                for record in self
                    .records
                    .iter()
                    .skip(from as usize)
                    .take(max.min(MAX_SYNC_ROUNDS) as usize)
                {
                    let size = record.encode().len();
                    if size > budget {
                        break;
                    }
                    budget -= size;
                    rounds.push(record.clone());
                }
                SyncResponse::FinalRounds(rounds)
            }
        };
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(%peer, "peer went away before the answer");
        }
    }

    fn take_response(&mut self, peer: PeerId, response: SyncResponse) {
        match response {
            SyncResponse::Delivered => {}
            SyncResponse::RoundMessages(envelopes) => self.take_envelopes(peer, envelopes),
            SyncResponse::FinalRounds(rounds) => {
                let got = rounds.len();
                for record in rounds {
                    if record.round != self.engine.round() {
                        continue;
                    }
                    let now = self.now();
                    if let Err(error) = self.engine.handle_final_round(&record, now) {
                        self.reject(
                            peer,
                            "record",
                            &format!("final round {}: {error}", record.round),
                        );
                        return;
                    }
                    // Persist each record before applying the next.
                    if let Err(error) = self.drain_engine() {
                        tracing::error!(%error, "cannot store a synced round");
                        return;
                    }
                }
                if got as u32 == MAX_SYNC_ROUNDS {
                    self.fetch_rounds(self.engine.round());
                }
            }
        }
    }

    fn take_envelopes(&mut self, peer: PeerId, envelopes: Vec<Envelope>) {
        for envelope in envelopes {
            match open_envelope(envelope, self.swarm_id, &self.limits) {
                Ok(message) => {
                    let now = self.now();
                    self.engine.handle_message(message, now);
                }
                Err(error) => self.reject(peer, rejection_reason(&error), &error.to_string()),
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status.clone());
            }
            Command::Shutdown => {
                if self.shutdown_requested.is_some() {
                    tracing::warn!("second stop request: stopping now");
                    self.shutdown_requested = Some(0);
                    return;
                }
                tracing::info!("stop requested: leaving the swarm");
                let now = self.now();
                self.shutdown_requested = Some(now + 12 * self.config.phase_timeout_ms);
                if let Err(error) = self.engine.leave(LeaveReason::Departed, now) {
                    tracing::debug!(%error, "leave refused");
                }
            }
        }
    }

    fn job_ended(&mut self, end: crate::job::JobEnd) {
        let text = match end {
            crate::job::JobEnd::Exited(code) => format!("exit {code}"),
            crate::job::JobEnd::Signalled(signal) => format!("signal {signal}"),
            crate::job::JobEnd::Lost => "lost (the guard went away)".to_string(),
        };
        if matches!(end, crate::job::JobEnd::Exited(0)) {
            tracing::info!(status = %text, "the job is complete");
        } else {
            tracing::warn!(status = %text, "the job ended abnormally; the agent's work is done");
        }
        self.status.job_exit = Some(text);
        self.mind.job.remaining = 0;
        self.status.remaining = 0;
        self.status_dirty = true;
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > now {
                break;
            }
            for (round, phase) in entry.remove() {
                self.engine.handle_timeout(round, phase, now);
            }
        }
        if let Some((round, at)) = self.deferred_announce {
            if at <= now || self.slot_started_for_pacing(now) {
                self.deferred_announce = None;
                self.decide(round, Phase::Announce);
            }
        }
        self.update_slots(now);
    }

    fn on_tick(&mut self) {
        self.fire_timers();
    }

    // ----- outputs -----

    fn drain_engine(&mut self) -> Result<()> {
        while let Some(output) = self.engine.poll_output() {
            self.handle_engine_output(output)?;
        }
        Ok(())
    }

    fn handle_engine_output(&mut self, output: Output) -> Result<()> {
        match output {
            Output::Send(message) => self.send(message)?,
            Output::ScheduleTimeout { round, phase, at } => {
                self.timers.entry(at).or_default().insert((round, phase));
            }
            Output::Decide { round, phase } => {
                let now = self.now();
                if phase == Phase::Announce && !self.slot_started_for_pacing(now) {
                    let cap = now + self.config.phase_timeout_ms / 2;
                    self.deferred_announce = Some((round, cap));
                } else {
                    self.decide(round, phase);
                }
            }
            Output::Resolved { round, digest } => {
                tracing::debug!(round, %digest, "round resolved");
            }
            Output::Final(finalized) => self.finalized(*finalized)?,
            Output::FetchMessages { round, peer } => {
                if let Some(peer_id) = peer_id_of(peer).filter(|p| self.swarm.is_connected(p)) {
                    self.swarm
                        .behaviour_mut()
                        .sync
                        .send_request(&peer_id, SyncRequest::RoundMessages { round });
                }
            }
            Output::FetchRound { round } => self.fetch_rounds(round),
        }
        let phase = format!("{:?}", self.engine.phase());
        if self.status.round != self.engine.round() || self.status.phase != phase {
            tracing::debug!(round = self.engine.round(), %phase, "phase");
            let _ = self.events.send(NodeEvent::Phase {
                round: self.engine.round(),
                phase: phase.clone(),
            });
            self.status.round = self.engine.round();
            self.status.phase = phase;
            self.status_dirty = true;
        }
        Ok(())
    }

    fn decide(&mut self, round: u64, phase: Phase) {
        if round != self.engine.round() || self.is_silent(round) {
            return;
        }
        let now = self.now();
        if let Err(error) = self.mind.decide(&mut self.engine, phase, now) {
            tracing::debug!(round, ?phase, %error, "decision refused by the engine");
        }
    }

    fn is_silent(&self, round: u64) -> bool {
        self.silent_through.is_some_and(|r| round <= r)
    }

    fn send(&mut self, message: SignedMessage) -> Result<()> {
        let round = message.round();
        if self.is_silent(round) {
            return Ok(());
        }
        if self.spoken_round.is_none_or(|r| r < round) {
            self.data.set_spoken_round(round)?;
            self.spoken_round = Some(round);
        }
        if self.sent_this_round.0 != round {
            self.sent_this_round = (round, Vec::new());
        }
        self.sent_this_round.1.push(message.envelope().clone());
        self.status.messages_out += 1;
        self.status.bytes_out += message.bytes().len() as u64;
        let topic = self.topics.for_kind(message.payload().kind()).clone();
        self.metrics
            .messages_out
            .get_or_create(&metrics::TopicLabel {
                topic: self.topics.name_of(&topic.hash()).into(),
            })
            .inc();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, message.bytes().to_vec())
        {
            Ok(_) => {}
            Err(gossipsub::PublishError::Duplicate) => {
                // A re-send (the engine repeats its messages when a phase stalls): gossip
                // already carried it once, so send it to each peer directly.
                self.deliver_direct(None, vec![message.envelope().clone()]);
            }
            Err(error) => {
                // Typically no peer has subscribed yet (the mesh is forming): send directly
                // to whoever is connected, and keep it for peers that connect later.
                tracing::debug!(%error, "gossip publish failed; sending directly");
                self.deliver_direct(None, vec![message.envelope().clone()]);
                if self.unsent.len() >= MAX_UNSENT {
                    self.unsent.pop_front();
                }
                self.unsent.push_back(message.envelope().clone());
            }
        }
        Ok(())
    }

    /// Sends envelopes by request–response to `peer`, or to every connected peer.
    fn deliver_direct(&mut self, peer: Option<PeerId>, envelopes: Vec<Envelope>) {
        let peers: Vec<PeerId> = match peer {
            Some(p) => vec![p],
            None => self.swarm.connected_peers().copied().collect(),
        };
        for p in peers {
            self.swarm
                .behaviour_mut()
                .sync
                .send_request(&p, SyncRequest::Deliver(envelopes.clone()));
        }
    }

    fn fetch_rounds(&mut self, from: u64) {
        if self.fetch_in_flight.is_some() {
            return;
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        self.fetch_rotation = self.fetch_rotation.wrapping_add(1);
        let peer = peers[self.fetch_rotation % peers.len()];
        tracing::debug!(from, %peer, "fetching final rounds");
        self.fetch_in_flight = Some(self.swarm.behaviour_mut().sync.send_request(
            &peer,
            SyncRequest::FinalRounds {
                from,
                max: MAX_SYNC_ROUNDS,
            },
        ));
    }

    fn finalized(&mut self, finalized: slotmesh_proto::Finalized) -> Result<()> {
        let record = &finalized.record;
        self.ledger.append(record).context(
            "cannot append to the ledger; stopping rather than forgetting a final round",
        )?;
        self.records.push(record.clone());
        let me = self.identity.id();
        self.mind.observe(me, &finalized);
        if self.job.as_ref().is_some_and(|job| !job.ended()) && self.mind.is_complete() {
            // The estimate ran out but the job still runs: it needs at least one more slot.
            self.mind.job.remaining = 1;
        }
        let now = self.now();
        let round = record.round;
        let winner = finalized.outcome.winner;
        if let Some(w) = winner {
            let start = now.max(self.timeline_end);
            let end = start + self.config.slot_ms;
            self.timeline_end = end;
            if w == me {
                self.my_slots.push_back((round, start, end));
            }
        }
        let name_of = |id: &AgentId| finalized.state.name_of(id);
        tracing::info!(
            round,
            winner = %winner.as_ref().map_or_else(|| "none".to_string(), name_of),
            remaining = self.mind.job.remaining,
            "round final"
        );
        self.metrics.rounds.inc();
        let now_instant = Instant::now();
        if let Some(previous) = self.last_final_at.replace(now_instant) {
            self.metrics
                .round_latency
                .observe((now_instant - previous).as_secs_f64());
        }
        for member in finalized.state.members.values() {
            let label = metrics::MemberLabel {
                member: member.name.clone(),
            };
            self.metrics
                .trust
                .get_or_create(&label)
                .set(i64::from(member.trust));
            self.metrics
                .credits
                .get_or_create(&label)
                .set(i64::try_from(member.credits).unwrap_or(i64::MAX));
        }
        for event in NodeEvent::of_final(&finalized) {
            let _ = self.events.send(event);
        }
        let memory = serde_json::to_vec_pretty(self.mind.strategy().memory())
            .context("cannot encode the memory")?;
        self.data.replace("memory.json", &memory)?;
        self.status
            .record_final(&finalized, winner.as_ref().map(name_of), unix_ms());
        self.status.remaining = self.mind.job.remaining;
        self.status_dirty = true;
        self.write_status(true);
        Ok(())
    }

    // ----- slots -----

    /// Pacing: the next round's claims wait until the last decided slot has started, so the
    /// schedule is decided at most one slot ahead of execution.
    fn slot_started_for_pacing(&self, now: u64) -> bool {
        self.timeline_end <= now + self.config.slot_ms
    }

    fn slot_boundary(&self) -> Option<u64> {
        let (_, start, end) = self.my_slots.front()?;
        Some(if self.status.executing.is_some() {
            *end
        } else {
            *start
        })
    }

    fn update_slots(&mut self, now: u64) {
        while let Some(&(round, start, end)) = self.my_slots.front() {
            if now < start {
                break;
            }
            if now < end {
                if self.status.executing != Some(round) {
                    tracing::info!(round, ms = end - start, "executing my slot");
                    if let Some(job) = self.job.as_mut() {
                        self.job_cpu_at_slot_start = crate::job::group_cpu_ms(job.pid());
                        job.resume();
                    }
                    let _ = self.events.send(NodeEvent::Slot {
                        round,
                        running: true,
                    });
                    self.status.executing = Some(round);
                    self.status_dirty = true;
                }
                break;
            }
            self.my_slots.pop_front();
            // Measured only while the job lives: one that ended within the slot is gone.
            let job_cpu_ms = self.job.as_mut().and_then(|job| {
                job.pause();
                let now = crate::job::group_cpu_ms(job.pid())?;
                Some(now.saturating_sub(self.job_cpu_at_slot_start?))
            });
            self.status.executing = None;
            self.metrics.slots_executed.inc();
            let _ = self.events.send(NodeEvent::Slot {
                round,
                running: false,
            });
            self.status.slots.push(SlotRecord {
                round,
                start_unix_ms: unix_ms().saturating_sub(now - start),
                end_unix_ms: unix_ms().saturating_sub(now - end),
                job_cpu_ms,
            });
            self.status_dirty = true;
        }
    }

    // ----- ending -----

    fn exit_reason(&mut self) -> Option<NodeExit> {
        let now = self.now();
        let me = self.identity.id();
        let record = self.engine.state().members.get(&me);
        let status = record.map(|m| m.status);
        let left_round = record.and_then(|m| m.left_round).unwrap_or(0);
        let slots_done = self.my_slots.is_empty();
        match status {
            Some(MemberStatus::Completed) if slots_done && self.lingered(now) => {
                Some(NodeExit::Completed)
            }
            Some(MemberStatus::Departed) if self.lingered(now) => Some(NodeExit::Left),
            Some(MemberStatus::Failed) => Some(NodeExit::Failed { round: left_round }),
            _ => match self.shutdown_requested {
                Some(deadline) if now >= deadline => Some(NodeExit::Interrupted),
                _ => None,
            },
        }
    }

    /// After its leave is final, a node stays a little while: the others may still need its
    /// vote on that round (re-sent on request) or its record of it. It goes once every
    /// remaining member has spoken in the next round (so each has finalized this one), or
    /// after [`LINGER_TIMEOUTS`] phase timeouts.
    fn lingered(&mut self, now: u64) -> bool {
        let since = *self.finished_at.get_or_insert(now);
        if now >= since + LINGER_TIMEOUTS * self.config.phase_timeout_ms {
            return true;
        }
        let round = self.engine.round();
        let spoken: BTreeSet<AgentId> = self
            .engine
            .messages(round)
            .map(|m| m.iter().map(SignedMessage::sender).collect())
            .unwrap_or_default();
        let swarm = &self.swarm;
        let waiting_for: Vec<AgentId> = self
            .engine
            .state()
            .active_members()
            .map(|(id, _)| *id)
            .filter(|id| {
                // A member that has spoken in the next round has finalized this one; one
                // that is gone needs nothing more.
                !spoken.contains(id) && peer_id_of(*id).is_some_and(|p| swarm.is_connected(&p))
            })
            .collect();
        if !waiting_for.is_empty() {
            tracing::debug!(round, waiting_for = ?waiting_for, "lingering");
        }
        waiting_for.is_empty()
    }

    fn write_status(&mut self, force: bool) {
        let now = self.now();
        let recent = self
            .status_written_at
            .is_some_and(|at| now < at + STATUS_INTERVAL_MS);
        if !force && (!self.status_dirty || recent) {
            return;
        }
        self.status_written_at = Some(now);
        self.status.round = self.engine.round();
        self.status.phase = format!("{:?}", self.engine.phase());
        self.status.update_members(self.engine.state());
        self.status.done = self.exit_reason().is_some();
        self.status.peak_rss_kib = crate::sim::measures::peak_rss_kib();
        match serde_json::to_vec_pretty(&self.status) {
            Ok(bytes) => {
                if let Err(error) = self.data.replace_quietly("status.json", &bytes) {
                    tracing::warn!(%error, "cannot write status.json");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot encode the status"),
        }
        self.status_dirty = false;
    }
}

/// The end of the job, or never (no job, or it ended already).
async fn job_end(job: &mut Option<crate::job::Job>) -> crate::job::JobEnd {
    match job {
        Some(job) if !job.ended() => job.next_end().await,
        _ => std::future::pending().await,
    }
}

/// The metric label of a rejected message.
fn rejection_reason(error: &slotmesh_proto::OpenError) -> &'static str {
    use slotmesh_proto::{OpenError, VerifyError};
    match error {
        OpenError::Verify(VerifyError::Version(_)) => "version",
        OpenError::Verify(VerifyError::WrongSwarm) => "swarm",
        OpenError::Verify(_) => "signature",
        _ => "decode",
    }
}

fn seed_bytes(identity: &Identity) -> [u8; 8] {
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&identity.id().0[..8]);
    seed
}

/// Wall-clock milliseconds since the Unix epoch (for status and benchmarks only; consensus
/// never sees it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
