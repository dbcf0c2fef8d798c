//! `slotmesh daemon`: one agent on a real network. The event loop owns the libp2p swarm, the
//! `proto` engine and the agent's [`Mind`]; it only selects and dispatches between them:
//! [`Node::handle_swarm_event`], [`Node::handle_command`], timers, and
//! [`Node::handle_engine_output`]. The rules live in the engine; this file moves messages,
//! persists final rounds and keeps time.
//!
//! Time: the engine's `now` is milliseconds since the node started (monotonic).

mod behaviour;
mod connect;
mod data_dir;
mod error;
mod events;
mod metrics;
mod parts;
pub mod peers;
mod screen;
mod slots;
mod start;
mod status;
mod sync;
mod sync_codec;

pub use behaviour::{
    build_swarm, keypair, peer_id_of, read_swarm_key, write_swarm_key, Behaviour, BehaviourEvent,
    Topics, KAD_PROTOCOL,
};
pub use data_dir::{files, DataDir};
pub use events::NodeEvent;
pub use metrics::NodeMetrics;
pub use status::{NodeStatus, SlotRecord};
pub use sync_codec::{SyncCodec, SYNC_PROTOCOL};

use parts::{ModelLink, Observer, SlotRunner};

pub mod job;
pub mod keys;
pub mod ledger;

pub use error::{NodeError, Result};
use futures::StreamExt;
use ledger::Ledger;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, kad, mdns, Multiaddr, PeerId, Swarm};
use slotmesh_agent::heuristic::{Heuristic, Personality};
use slotmesh_agent::memory::Memory;
use slotmesh_agent::model::{Question, Reply};
use slotmesh_agent::sys::{peak_rss_kib, unix_ms};
use slotmesh_agent::{Effect, HostDriver, HostRules, Input, Job, Mind};
use slotmesh_llm::StrategyChoice;
use slotmesh_proto::LeaveReason;
use slotmesh_proto::{
    open_envelope, AgentId, Engine, EngineConfig, Envelope, FinalRound, Identity, LedgerState,
    Limits, MemberStatus, PayloadKind, Phase, SignedMessage, SwarmId,
};
use slotmesh_proto::{
    SyncRequest, SyncResponse, MAX_DELIVER_ENVELOPES, MAX_REQUEST_BYTES, MAX_SYNC_BYTES,
    MAX_SYNC_ROUNDS,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The status file is rewritten at most this often (ms), and on every final round.
const STATUS_INTERVAL_MS: u64 = 100;
/// Messages kept for peers that are not connected yet (sent on the next connection).
const MAX_UNSENT: usize = 256;

/// Everything a daemon is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Display name.
    pub name: String,
    /// True burst of the job, in slots (at least 1: the command line checks).
    pub burst: u32,
    /// Heuristic personality.
    pub personality: Personality,
    /// Bias in [0, 1] (the command line checks).
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
    /// Founding members the first round waits for (at least 1: the command line checks).
    pub founders: usize,
    /// The founders by key, when the swarm is founded by known keys (then `founders` is
    /// ignored; this agent must be one of them): a majority founds it.
    pub known_founders: std::collections::BTreeSet<slotmesh_proto::AgentId>,
    /// Founders only: rounds a suspended member may stay away before the swarm removes it
    /// for good (the swarm takes the largest its founders propose).
    pub absence_limit: u64,
    /// Join an existing swarm rather than found one.
    pub join: bool,
    /// Pre-shared key file of a private swarm (libp2p pnet).
    pub swarm_key: Option<PathBuf>,
    /// Address the binary serves the local HTTP endpoint on (status, metrics, events,
    /// dashboard), shown in the status.
    pub http: Option<std::net::SocketAddr>,
    /// A real job (`--exec`): runs only in won slots; complete when it exits.
    pub exec: Option<String>,
    /// The strategy (the heuristic with `personality` and `bias` is also the LLM's fallback).
    pub strategy: StrategyChoice,
    /// An attack to play around the heuristic instead of `strategy` (experiments).
    pub adversary: Option<slotmesh_agent::adversary::Adversary>,
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
    events: tokio::sync::broadcast::Sender<NodeEvent>,
    registry: std::sync::Arc<prometheus_client::registry::Registry>,
}

impl NodeHandle {
    /// Asks the node to leave and stop. A second call stops it at once.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// The node's live events, from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The node's metrics (its own and libp2p's).
    pub fn registry(&self) -> &prometheus_client::registry::Registry {
        &self.registry
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
    /// The swarm removed it for good (suspended for longer than the absence limit); its job
    /// cannot finish. A suspended member is not removed: it rejoins.
    Removed {
        /// The round it was suspended in.
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
    /// The engine, the agent's mind and the host rules (restart guard, pacing, the slot
    /// timeline, fetch rotation, lingering): the same driver the simulator runs.
    driver: HostDriver,
    data: DataDir,
    ledger: Ledger,
    /// Every final round, by round (served to peers that sync).
    records: Vec<FinalRound>,
    started: Instant,
    timers: BTreeMap<u64, BTreeSet<(u64, Phase)>>,
    commands: mpsc::Receiver<Command>,
    unsent: VecDeque<Envelope>,
    rejections: BTreeMap<PeerId, u32>,
    /// Messages of no use from each peer in the round `.0` (dropped unverified).
    useless: (u64, BTreeMap<PeerId, u32>),
    /// The fetch of final rounds in flight.
    fetch_in_flight: Option<OutboundRequestId>,
    /// Other members' addresses, learned, saved and re-dialled.
    peers: peers::PeerBook,
    /// When the members this node is not connected to are next looked up.
    next_lookup: u64,
    /// Since when no peer is connected, and when that was last said ([`connect`]).
    alone: Option<(u64, u64)>,
    /// A failure to persist met while handling an event, which stops the node.
    fatal: Option<NodeError>,
    shutdown_requested: Option<u64>,
    /// This node's own messages of its latest round.
    sent_this_round: (u64, Vec<Envelope>),
    /// The promises, proposals and votes it sent in the last round it sent any in, as
    /// stored (`agreement-sent`).
    agreement_sent: data_dir::AgreementSent,
    /// What the node shows: status, events, metrics.
    observer: Observer,
    /// The `--exec` job, run in the slots the agent wins.
    runner: SlotRunner,
    /// The model of a live `llm` strategy, asked off the event loop.
    model: ModelLink,
}

impl Node {
    /// The node's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until the node is done.
    pub async fn run(mut self) -> Result<NodeExit> {
        if let Some(command) = self.config.exec.clone() {
            let me = self.identity.id();
            let record = self.driver.engine().state().members.get(&me);
            let finished = record.is_some_and(|m| {
                matches!(
                    m.status,
                    MemberStatus::Completed | MemberStatus::Departed | MemberStatus::Removed
                )
            });
            // A job that ran in earlier slots starts over: the record is told, so that the
            // next claim is checked afresh rather than against the lost progress.
            let started_over = record.is_some_and(|m| m.used_slots > 0);
            if finished {
                tracing::info!("this agent already left the swarm (ledger); not starting the job");
            } else {
                if started_over {
                    tracing::warn!(
                        "the daemon restarted: its job starts over from the beginning (it ran in earlier slots); the record counts a restart"
                    );
                    self.input(Input::JobRestarted { agent: me });
                    // The whole job is ahead again: the fresh claim is the whole estimate.
                    if let Some(mind) = self.driver.mind_mut(&me) {
                        mind.job.remaining = mind.job.burst;
                    }
                }
                let job = job::Job::start(&command).await?;
                tracing::info!(pid = job.pid(), %command, "job started, stopped until its first slot");
                self.observer.status.job_pid = Some(job.pid());
                // Its length is unknown until it exits: claim at least one more slot.
                if let Some(mind) = self.driver.mind_mut(&me) {
                    mind.job.remaining = mind.job.remaining.max(1);
                }
                self.runner.job = Some(job);
            }
        }
        self.drain()?;
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
                () = sleep => self.wake(),
                end = slots::job_end(&mut self.runner.job) => self.job_ended(end),
                Some((question, reply)) = self.model.answers_in.recv() => self.settle(question, reply),
                _ = tick.tick() => self.wake(),
            }
            if let Some(error) = self.fatal.take() {
                return Err(error);
            }
            self.drain()?;
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
        let host = self.driver.next_wakeup().unwrap_or(u64::MAX);
        timer.min(host).min(self.now() + 1_000)
    }

    // ----- inputs -----

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.observer.metrics.record(&event);
        match &event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.observer.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.observer.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.observer.metrics.record(e),
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
                    && *round == self.driver.engine().round()
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
                        let _ = self.swarm.dial(address.clone());
                    }
                    self.learn(peer, &address);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for address in &info.listen_addrs {
                    self.learn(peer_id, address);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                ..
            })) => self.dial_learned(peer, addresses.into_vec()),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(Ok(found)),
                ..
            })) => {
                for info in found.peers {
                    self.dial_learned(info.peer_id, info.addrs);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with_p2p(self.peer_id()).unwrap_or_else(|a| a);
                tracing::info!(address = %full, "listening");
                self.observer.status.listen.push(full.to_string());
                self.observer.dirty = true;
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "connected");
                if !self.unsent.is_empty() {
                    let envelopes: Vec<Envelope> = self.unsent.drain(..).collect();
                    self.deliver_direct(Some(peer_id), envelopes);
                }
                self.observer.status.peers = self.swarm.connected_peers().count();
                self.observer.dirty = true;
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                tracing::debug!(peer = %peer_id, "disconnected");
                self.observer.status.peers = self.swarm.connected_peers().count();
                self.observer.dirty = true;
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                self.refresh_status();
                let _ = reply.send(self.observer.status.clone());
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
                self.input(Input::Leave {
                    agent: self.identity.id(),
                    reason: LeaveReason::Departed,
                });
            }
        }
    }

    /// Gives the host an input now (a refused one is logged: the network's fault, not ours).
    fn input(&mut self, input: Input) {
        let now = self.now();
        if let Err(error) = self.driver.handle(input, now) {
            tracing::debug!(%error, "input refused");
        }
    }

    fn wake(&mut self) {
        let now = self.now();
        self.keep_connected(now);
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > now {
                break;
            }
            for (round, phase) in entry.remove() {
                self.input(Input::Timer { round, phase });
            }
        }
        self.input(Input::Wake);
    }

    // ----- effects -----

    fn drain(&mut self) -> Result<()> {
        loop {
            let now = self.now();
            let Some(effect) = self.driver.poll_effect(now) else {
                return Ok(());
            };
            self.carry_out(effect)?;
            self.note_phase();
        }
    }

    fn carry_out(&mut self, effect: Effect) -> Result<()> {
        match effect {
            Effect::Spoke(round) => {
                self.data.set_spoken_round(round)?;
                self.driver.spoken(round);
            }
            Effect::Publish(message) => self.send(message),
            Effect::SetTimer { round, phase, at } => {
                self.timers.entry(at).or_default().insert((round, phase));
            }
            Effect::Resolved { round, digest } => {
                tracing::debug!(round, %digest, "round resolved");
            }
            Effect::Final(finalized) => {
                self.finalized(*finalized)?;
                // The members may have changed: connect to any this node has no link to,
                // before the one that told it about them leaves.
                self.next_lookup = 0;
                self.keep_connected(self.now());
            }
            Effect::FetchInputs {
                round,
                digest,
                peer,
            } => {
                if let Some(peer_id) = peer_id_of(peer).filter(|p| self.swarm.is_connected(p)) {
                    self.swarm
                        .behaviour_mut()
                        .sync
                        .send_request(&peer_id, SyncRequest::Inputs { round, digest });
                }
            }
            Effect::FetchRounds { from, attempt } => self.fetch_rounds(from, attempt),
            Effect::Ask { question, .. } => self.ask(question),
            Effect::Decided { .. } => self.count_llm(),
            Effect::SlotStarted { round, ms, .. } => self.slot_started(round, ms),
            Effect::SlotEnded {
                round, start, end, ..
            } => self.slot_ended(round, start, end),
        }
        Ok(())
    }

    /// Reports a change of round or phase.
    fn note_phase(&mut self) {
        let engine = self.driver.engine();
        self.observer.phase(engine.round(), engine.phase());
    }

    /// Asks the model off the event loop; the reply comes back through `answers`.
    fn ask(&mut self, mut question: Box<Question>) {
        if let Some(reply) = question.take_recorded() {
            self.settle(question, reply);
            return;
        }
        let Some(client) = self.model.client.clone() else {
            self.settle(question, Reply::unanswered("no model client"));
            return;
        };
        let answers = self.model.answers.clone();
        tokio::spawn(async move {
            let reply = client.ask(&question).await;
            let _ = answers.send((question, reply));
        });
    }

    fn settle(&mut self, question: Box<Question>, reply: Reply) {
        self.input(Input::Reply {
            agent: self.identity.id(),
            question,
            reply,
        });
    }

    /// Brings the LLM metrics and status up to the strategy's counts.
    fn count_llm(&mut self) {
        let Some(mind) = self.driver.mind(&self.identity.id()) else {
            return;
        };
        self.observer.llm(mind.strategy().llm_counts());
    }

    fn send(&mut self, message: SignedMessage) {
        let round = message.round();
        if let Err(error) = self.agreement_sent.store(&self.data, &message) {
            // Not stored, not sent: after a restart the agent could contradict it.
            self.fatal = Some(error);
            return;
        }
        if self.sent_this_round.0 != round {
            self.sent_this_round = (round, Vec::new());
        }
        self.sent_this_round.1.push(message.envelope());
        self.observer.status.messages_out += 1;
        self.observer.status.bytes_out += message.bytes().len() as u64;
        let topic = self.topics.for_kind(message.payload().kind()).clone();
        self.observer
            .metrics
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
            Ok(_) if message.payload().kind().is_agreement() => {
                // The round's voters also get it directly: gossip between two peers can
                // lose one direction of their link for good after one was paused (a frozen
                // process), and a round whose voters hear each other one timeout late,
                // through re-sends only, never agrees (each message arrives after its
                // attempt ended; network.rs::voters_frozen_and_thawed_never_split_the_ledger).
                let me = self.identity.id();
                let voters: Vec<PeerId> = self
                    .driver
                    .engine()
                    .agreement_voters()
                    .into_iter()
                    .flatten()
                    .filter(|voter| **voter != me)
                    .filter_map(|voter| peer_id_of(*voter))
                    .filter(|peer| self.swarm.is_connected(peer))
                    .collect();
                for peer in voters {
                    self.deliver_direct(Some(peer), vec![message.envelope()]);
                }
            }
            Ok(_) => {}
            Err(gossipsub::PublishError::Duplicate) => {
                // A re-send (the engine repeats its messages when a phase stalls): gossip
                // already carried it once, so send it to each peer directly.
                self.deliver_direct(None, vec![message.envelope()]);
            }
            Err(error) => {
                // Typically no peer has subscribed yet (the mesh is forming): send directly
                // to whoever is connected, and keep it for peers that connect later.
                tracing::debug!(%error, "gossip publish failed; sending directly");
                self.deliver_direct(None, vec![message.envelope()]);
                if self.unsent.len() >= MAX_UNSENT {
                    self.unsent.pop_front();
                }
                self.unsent.push_back(message.envelope());
            }
        }
    }

    fn finalized(&mut self, finalized: slotmesh_proto::Finalized) -> Result<()> {
        let record = finalized.certified.record();
        // An append that fails stops the node rather than forget a final round.
        self.ledger.append(&record)?;
        let round = record.round;
        self.records.push(record);
        let job_runs = self.runner.job.as_ref().is_some_and(|job| !job.ended());
        if let Some(mind) = self.driver.mind_mut(&self.identity.id()) {
            if job_runs && mind.is_complete() {
                // The estimate ran out but the job still runs: it needs one more slot.
                mind.job.remaining = 1;
            }
        }
        let winner = finalized.outcome.winner;
        let name_of = |id: &AgentId| finalized.state.name_of(id);
        tracing::info!(
            round,
            winner = %winner.as_ref().map_or_else(|| "none".to_string(), name_of),
            remaining = self.remaining(),
            "round final"
        );
        self.observer.metrics.rounds.inc();
        let now_instant = Instant::now();
        if let Some(previous) = self.observer.last_final_at.replace(now_instant) {
            self.observer
                .metrics
                .round_latency
                .observe((now_instant - previous).as_secs_f64());
        }
        for member in finalized.state.members.values() {
            let label = metrics::MemberLabel {
                member: member.name.clone(),
            };
            self.observer
                .metrics
                .trust
                .get_or_create(&label)
                .set(i64::from(member.trust));
            self.observer
                .metrics
                .credits
                .get_or_create(&label)
                .set(i64::try_from(member.credits).unwrap_or(i64::MAX));
        }
        for event in NodeEvent::of_final(&finalized) {
            let _ = self.observer.events.send(event);
        }
        if let Some(mind) = self.driver.mind(&self.identity.id()) {
            let memory =
                serde_json::to_vec_pretty(mind.strategy().memory()).map_err(NodeError::Memory)?;
            self.data.replace(data_dir::files::MEMORY, &memory)?;
        }
        self.observer
            .status
            .record_final(&finalized, winner.as_ref().map(name_of), unix_ms());
        self.observer.dirty = true;
        self.write_status(true);
        Ok(())
    }

    // ----- ending -----

    fn exit_reason(&mut self) -> Option<NodeExit> {
        let now = self.now();
        let me = self.identity.id();
        let record = self.driver.engine().state().members.get(&me);
        let status = record.map(|m| m.status);
        let left_round = record.and_then(|m| m.left_round).unwrap_or(0);
        let slots_done = self.driver.slots_done();
        let swarm = &self.swarm;
        // A member that is gone needs nothing more from this one.
        let reachable = |id: &AgentId| peer_id_of(*id).is_some_and(|p| swarm.is_connected(&p));
        match status {
            Some(MemberStatus::Completed) if slots_done && self.driver.lingered(now, reachable) => {
                Some(NodeExit::Completed)
            }
            Some(MemberStatus::Departed) if self.driver.lingered(now, reachable) => {
                Some(NodeExit::Left)
            }
            Some(MemberStatus::Removed) => Some(NodeExit::Removed { round: left_round }),
            _ => match self.shutdown_requested {
                Some(deadline) if now >= deadline => Some(NodeExit::Interrupted),
                _ => None,
            },
        }
    }

    /// What remains of the agent's job.
    fn remaining(&self) -> u32 {
        self.driver
            .mind(&self.identity.id())
            .map_or(0, |m| m.job.remaining)
    }

    /// Brings the status's derived fields up to date with the engine and the mind.
    fn refresh_status(&mut self) {
        self.observer.status.round = self.driver.engine().round();
        self.observer.status.phase = format!("{:?}", self.driver.engine().phase());
        self.observer
            .status
            .update_members(self.driver.engine().state());
        self.observer.status.remaining = self.remaining();
        self.observer.status.executing = self.driver.executing().map(|(_, round)| round);
        self.observer.status.done = self.exit_reason().is_some();
        self.observer.status.peak_rss_kib = peak_rss_kib();
    }

    fn write_status(&mut self, force: bool) {
        let now = self.now();
        let recent = self
            .observer
            .written_at
            .is_some_and(|at| now < at + STATUS_INTERVAL_MS);
        if !force && (!self.observer.dirty || recent) {
            return;
        }
        self.observer.written_at = Some(now);
        self.refresh_status();
        match serde_json::to_vec_pretty(&self.observer.status) {
            Ok(bytes) => {
                if let Err(error) = self.data.replace_quietly(data_dir::files::STATUS, &bytes) {
                    tracing::warn!(%error, "cannot write status.json");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot encode the status"),
        }
        self.observer.dirty = false;
    }
}

/// The metric label of a rejected message.
fn seed_bytes(identity: &Identity) -> [u8; 8] {
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&identity.id().0[..8]);
    seed
}
