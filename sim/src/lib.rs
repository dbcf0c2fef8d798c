//! `slotmesh sim`: many agents in one process, each its own replica of the `proto` round
//! engine, over a seeded simulated network with delays, loss, crashes, a partition and
//! byzantine agents. Invariants are checked on every final round; the run ends with the
//! measures of docs/SIMULATION.md.
//!
//! The same seed gives the same run, byte for byte: every random choice comes from ChaCha
//! streams derived from the seed (one for the network, one per agent), and the engine and
//! strategies are deterministic.

mod archive;
mod byzantine;
mod hosts;
mod membership;
use archive::Archive;
mod ask;
mod config;
mod counterfactual;
pub mod measures;
pub mod network;
mod report;
pub mod summary;

pub use config::{Restart, SimConfig, ARCHIVE_WINDOW, DEFAULT_HOSTS};
pub use counterfactual::{lying_gain, lying_gain_by_kind, COUNTERFACTUAL_BIAS};
pub use report::{AgentResult, SimReport};
pub use slotmesh_agent::scenario::{AgentSpec, Byzantine};

use ask::{strategy_of, Asker, Pending, THINK_FRACTION};
use network::{Event, Network};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_agent::heuristic::Heuristic;
use slotmesh_agent::model::Question;
use slotmesh_agent::model::{LlmCounts, Reply};
use slotmesh_agent::{Effect, HostDriver, HostRules, Input, Job, Mind};
use slotmesh_proto::Finalized;
use slotmesh_proto::{
    open, AgentId, Digest, Engine, EngineConfig, Identity, LedgerState, MemberStatus,
    SharedResolutions, SignedMessage, SwarmId,
};
use slotmesh_proto::{Limits, Offence, Payload};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Where an agent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Not arrived yet.
    Waiting,
    /// Its host speaks for it.
    Live,
    /// Crashed: it says nothing more.
    Crashed,
    /// Completed, departed or failed in the agreed record.
    Done,
}

struct Agent {
    spec: AgentSpec,
    identity: Identity,
    id: AgentId,
    host: usize,
    /// Its mind while no host speaks for it (before it arrives, after it crashes or its
    /// host retires); meanwhile its host driver holds it.
    mind: Option<Mind>,
    life: Life,
}

/// A simulated machine: one replica of the engine, speaking for the agents placed on it,
/// driven by the same host driver as a daemon's.
#[derive(Default)]
struct Host {
    driver: Option<HostDriver>,
    /// Its agents, by index.
    agents: Vec<usize>,
    /// Crashes still to come: (round, agent), soonest last.
    crashes: Vec<(u64, usize)>,
    /// The last round it finalized, with the digest.
    last_final: Option<(u64, Digest)>,
    /// The last round it spoke in (what a daemon persists for its restart guard).
    spoken: Option<u64>,
    /// When its next [`Event::Wake`] is scheduled.
    wake_at: Option<u64>,
    /// After a restart, the last round it had spoken in before it.
    spoken_before_restart: Option<u64>,
    /// The promises, proposals and votes it sent in the last round it sent any in (what a
    /// daemon stores before sending them, to resume its agreement after a restart).
    agreement_sent: Vec<SignedMessage>,
}

/// Whether the partition cuts host `h` off (a third of the hosts).
fn cut_by_partition(h: usize) -> bool {
    h % 3 == 2
}

/// Progress must be made within this many phase timeouts while the swarm is connected.
const PROGRESS_TIMEOUTS: u64 = 60;
const MAX_VIOLATIONS_LISTED: usize = 20;

struct Sim {
    agents: Vec<Agent>,
    hosts: Vec<Host>,
    by_id: BTreeMap<AgentId, usize>,
    /// Agents done or crashed.
    finished: usize,
    net: Network,
    swarm: SwarmId,
    config: SimConfig,
    founders: usize,
    /// The founders' ids, when they found by known keys.
    founder_ids: BTreeSet<AgentId>,
    /// One resolution for all hosts that hold the same state and inputs.
    resolutions: SharedResolutions,
    /// The last final rounds, served to replicas that fetch (and written with `--out`).
    archive: Archive,
    /// Agreed digest and winner of each final round.
    agreed: BTreeMap<u64, (Digest, Option<AgentId>)>,
    gone: BTreeMap<AgentId, u64>,
    /// Membership figures and the voters of the latest round checked ([`membership`]).
    membership: membership::Membership,
    last_state: Option<Arc<LedgerState>>,
    violations: Vec<String>,
    violation_count: u64,
    transcript: sha2_like::Transcript,
    last_progress_ms: u64,
    coalitions_formed: u64,
    /// The first round in which the record proved a lie of each member.
    first_caught: BTreeMap<AgentId, u64>,
    stalled: bool,
    /// The run stopped at [`SimConfig::max_rounds`].
    truncated: bool,
    /// When the partition started (it happens once).
    partition_since: Option<u64>,
    /// Asks the model for `llm` agents.
    asker: Option<Asker>,
    /// Questions whose answers are due later, by ticket.
    pending: BTreeMap<u64, Pending>,
    next_ticket: u64,
    /// Won slots that started executing on their host (with [`SimConfig::slot_ms`]).
    slots_executed: u64,
    records_fetched: u64,
    inputs_fetched: u64,
    /// Host restarts still to come.
    restarts: Vec<Restart>,
    /// Messages restarted hosts published again for a round they had spoken in before.
    restart_repeats: u64,
    /// Forged bytes that hosts refused to open.
    forgeries_refused: u64,
}

mod sha2_like {
    //! A running hash of the transcript, via proto's domain-separated digest.
    use slotmesh_proto::Digest;

    #[derive(Default)]
    pub(super) struct Transcript(Digest);

    impl Transcript {
        pub(super) fn absorb(&mut self, bytes: &[u8]) {
            self.0 = Digest::of(b"slotmesh/sim-transcript/v1", &[&self.0 .0, bytes]);
        }
        pub(super) fn hex(&self) -> String {
            self.0.to_hex()
        }
    }
}

/// Runs one simulation. `progress` is called with (final rounds, agents done) now and then.
pub fn run(config: &SimConfig, mut progress: impl FnMut(u64, usize)) -> SimReport {
    let started = std::time::Instant::now();
    let mut seeder = ChaCha8Rng::seed_from_u64(config.seed);
    // A late committer's commits go out after the round's seal: twice the phase timeout.
    let net = Network::new(
        ChaCha8Rng::seed_from_u64(seeder.next_u64()),
        config.faults,
        2 * config.phase_timeout_ms,
    );
    let swarm = SwarmId::from_name(&format!("sim-{}", config.seed));
    let host_count = config.host_count();
    let mut hosts: Vec<Host> = (0..host_count).map(|_| Host::default()).collect();
    let agents: Vec<Agent> = config
        .agents
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut secret = [0u8; 32];
            seeder.fill_bytes(&mut secret);
            let agent_seed = seeder.next_u64();
            // Each agent's strategy seed depends only on the run seed and its index, so a
            // counterfactual that changes one agent's bias leaves the others' choices alone.
            let strategy_seed = config.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let heuristic = Heuristic::new(spec.personality, spec.bias, strategy_seed);
            let identity = Identity::from_secret(secret);
            let id = identity.id();
            let host = i % host_count;
            hosts[host].agents.push(i);
            if let Some(round) = spec.crash_at_round {
                hosts[host].crashes.push((round, i));
            }
            Agent {
                identity,
                id,
                host,
                mind: Some(Mind::new(
                    id,
                    Job {
                        burst: spec.burst,
                        remaining: spec.burst,
                    },
                    strategy_of(config, heuristic, spec),
                    Box::new(ChaCha8Rng::seed_from_u64(agent_seed)),
                )),
                life: Life::Waiting,
                spec: spec.clone(),
            }
        })
        .collect();
    for host in &mut hosts {
        host.crashes.sort_by(|a, b| b.cmp(a));
    }
    let by_id = agents.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
    let founders = config.agents.iter().filter(|a| a.arrival_ms == 0).count();
    let founder_ids = if config.known_founders {
        agents
            .iter()
            .filter(|a| a.spec.arrival_ms == 0)
            .map(|a| a.id)
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut sim = Sim {
        agents,
        hosts,
        by_id,
        finished: 0,
        net,
        swarm,
        config: config.clone(),
        founders,
        founder_ids,
        resolutions: SharedResolutions::new(),
        archive: Archive::new(config.archive_rounds, config.ledger.as_deref(), swarm),
        agreed: BTreeMap::new(),
        gone: BTreeMap::new(),
        membership: membership::Membership::default(),
        last_state: None,
        violations: Vec::new(),
        violation_count: 0,
        transcript: Default::default(),
        last_progress_ms: 0,
        coalitions_formed: 0,
        first_caught: BTreeMap::new(),
        stalled: false,
        truncated: false,
        partition_since: None,
        asker: Asker::of(config),
        pending: BTreeMap::new(),
        next_ticket: 0,
        slots_executed: 0,
        records_fetched: 0,
        inputs_fetched: 0,
        restarts: config.restarts.clone(),
        restart_repeats: 0,
        forgeries_refused: 0,
    };
    for (i, spec) in config.agents.iter().enumerate() {
        sim.net
            .schedule(spec.arrival_ms, Event::Arrive { agent: i });
    }
    sim.event_loop(&mut progress);
    sim.check_everyone_back_completed();
    sim.report(started.elapsed())
}

impl Sim {
    fn event_loop(&mut self, progress: &mut impl FnMut(u64, usize)) {
        let mut processed: u64 = 0;
        let max_events = match self.config.max_events {
            0 => self.config.event_budget(),
            max => max,
        };
        let stall_limit = PROGRESS_TIMEOUTS * self.config.phase_timeout_ms.max(1);
        while let Some(event) = self.net.next_event() {
            processed += 1;
            if processed > max_events {
                self.violation(format!("no end after {max_events} events"));
                break;
            }
            let host = match event {
                Event::Arrive { agent } => {
                    self.arrive(agent);
                    self.agents[agent].host
                }
                Event::Deliver { to, message } => {
                    if !self.input(to, Input::Message(message)) {
                        continue;
                    }
                    to
                }
                Event::DeliverInputs {
                    to,
                    round,
                    digest,
                    messages,
                } => {
                    let messages = messages.to_vec();
                    let input = Input::Inputs {
                        round,
                        digest,
                        messages,
                    };
                    if !self.input(to, input) {
                        continue;
                    }
                    to
                }
                Event::Timer { host, round, phase } => {
                    if !self.input(host, Input::Timer { round, phase }) {
                        continue;
                    }
                    host
                }
                Event::DeliverBytes { to, bytes } => {
                    if !self.receive_bytes(to, &bytes) {
                        continue;
                    }
                    to
                }
                Event::Wake { host } => {
                    self.hosts[host].wake_at = None;
                    if !self.input(host, Input::Wake) {
                        continue;
                    }
                    host
                }
                Event::Settle { agent, ticket } => {
                    self.settle(agent, ticket);
                    self.agents[agent].host
                }
            };
            self.drain(host);
            if self.config.slot_ms.is_some() {
                self.retire_if_idle(host);
            }
            self.schedule_wake(host);
            self.update_partition();
            if self.finished == self.agents.len() && self.hosts.iter().all(|h| h.driver.is_none()) {
                break;
            }
            if self
                .config
                .max_rounds
                .is_some_and(|max| self.agreed.len() as u64 >= max)
            {
                self.truncated = true;
                break;
            }
            if self.config.until_done.is_some_and(|i| self.gone(i)) {
                self.truncated = true;
                break;
            }
            let now = self.net.now();
            if !self.net.partitioned() && now.saturating_sub(self.last_progress_ms) > stall_limit {
                let round = self.agreed.keys().next_back().copied().unwrap_or(0);
                if self.finished == self.agents.len() {
                    // Every agent is done; hosts still lingering have nothing left to do.
                    break;
                }
                if !self.can_finalize() {
                    // Too few of the voters are alive (or none are left): the fault model
                    // does not promise progress, so this is the end of the run, not a bug.
                    self.stalled = true;
                    break;
                }
                let where_: Vec<String> = self
                    .hosts
                    .iter()
                    .enumerate()
                    .filter_map(|(h, host)| {
                        host.driver.as_ref().map(HostDriver::engine).map(|e| {
                            format!(
                                "host {h} r{} {:?} holds {} own {:?} votes {:?}",
                                e.round(),
                                e.phase(),
                                e.messages(e.round()).map_or(0, |m| m.len()),
                                e.finality().and_then(|f| f.own),
                                e.finality().map(|f| f.votes)
                            )
                        })
                    })
                    .take(MAX_VIOLATIONS_LISTED)
                    .collect();
                self.violation(format!(
                    "no final round for {stall_limit} ms after round {round} ({})",
                    where_.join(", ")
                ));
                break;
            }
            if processed.is_multiple_of(65_536) {
                progress(
                    self.agreed.len() as u64,
                    self.agents.iter().filter(|a| a.life == Life::Done).count(),
                );
            }
        }
    }

    /// Whether the agreed record shows agent `i` gone: completed, departed or removed.
    fn gone(&self, i: usize) -> bool {
        self.last_state.as_ref().is_some_and(|state| {
            state.members.get(&self.agents[i].id).is_some_and(|m| {
                matches!(
                    m.status,
                    MemberStatus::Completed | MemberStatus::Departed | MemberStatus::Removed
                )
            })
        })
    }

    /// Whether enough voters of the next round are alive to finalize it (a silent newcomer
    /// never votes).
    fn can_finalize(&self) -> bool {
        let Some(state) = &self.last_state else {
            return true;
        };
        let voters = state.voters_for(state);
        let alive = voters
            .iter()
            .filter(|id| {
                self.by_id.get(id).is_some_and(|i| {
                    let agent = &self.agents[*i];
                    agent.life == Life::Live && agent.spec.byzantine != Some(Byzantine::Silent)
                })
            })
            .count();
        !voters.is_empty() && alive >= slotmesh_proto::votes_needed(state.next_round, voters.len())
    }

    fn violation(&mut self, what: String) {
        self.violation_count += 1;
        if self.violations.len() < MAX_VIOLATIONS_LISTED {
            self.violations.push(what);
        }
    }

    fn broadcast(&mut self, from: usize, message: &SignedMessage) {
        let to: Vec<usize> = self.live_hosts().collect();
        self.net.broadcast(from, to.into_iter(), message);
    }

    fn live_hosts(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.hosts.len()).filter(|h| self.hosts[*h].driver.is_some())
    }

    /// Gives host `h` an input now; false if the host is gone.
    fn input(&mut self, h: usize, input: Input) -> bool {
        let now = self.net.now();
        let Some(driver) = self.hosts[h].driver.as_mut() else {
            return false;
        };
        if let Err(error) = driver.handle(input, now) {
            tracing::debug!(host = h, %error, "input refused");
        }
        true
    }

    /// Carries out host `h`'s effects on the simulated network until it has none.
    fn drain(&mut self, h: usize) {
        loop {
            let now = self.net.now();
            let Some(effect) = self.hosts[h]
                .driver
                .as_mut()
                .and_then(|d| d.poll_effect(now))
            else {
                return;
            };
            match effect {
                Effect::Publish(message) => {
                    let commit_round =
                        matches!(message.payload(), Payload::Commit(_)).then(|| message.round());
                    let sender = message.sender();
                    let agreement = message.payload().stage().is_some();
                    if agreement {
                        let sent = &mut self.hosts[h].agreement_sent;
                        if sent.first().is_some_and(|m| m.round() != message.round()) {
                            sent.clear();
                        }
                        if !sent.contains(&message) {
                            sent.push(message.clone());
                        }
                    }
                    // A turn sent again (its agreement resumes where it was).
                    if !agreement
                        && self.hosts[h]
                            .spoken_before_restart
                            .is_some_and(|r| message.round() <= r)
                    {
                        self.restart_repeats += 1;
                    }
                    self.send(h, message);
                    if let Some(round) = commit_round {
                        self.restart_due(h, sender, round);
                    }
                }
                Effect::Spoke(round) => {
                    self.hosts[h].spoken = Some(round);
                    if let Some(driver) = self.hosts[h].driver.as_mut() {
                        driver.spoken(round);
                    }
                }
                Effect::SlotStarted { .. } => self.slots_executed += 1,
                Effect::SetTimer { round, phase, at } => self.net.schedule(
                    at,
                    Event::Timer {
                        host: h,
                        round,
                        phase,
                    },
                ),
                Effect::Ask { agent, question } => {
                    if let Some(i) = self.by_id.get(&agent).copied() {
                        self.ask(i, question);
                    }
                }
                Effect::Final(finalized) => self.finalized(h, *finalized),
                // What a peer would send: the encoded record, verified on arrival.
                Effect::FetchRounds { from, .. } => {
                    match self.archive.record(from) {
                        Some(record) => {
                            self.records_fetched += 1;
                            self.input(h, Input::FinalRound(record));
                        }
                        None if self.archive.first_round().is_some_and(|first| from < first) => {
                            self.resync(h)
                        }
                        None => {}
                    }
                    if let Some(driver) = self.hosts[h].driver.as_mut() {
                        driver.fetch_ended(None);
                    }
                }
                Effect::FetchInputs {
                    round,
                    digest,
                    peer,
                } => self.fetch_inputs(h, round, digest, peer),
                Effect::Resolved { .. } | Effect::Decided { .. } | Effect::SlotEnded { .. } => {}
            }
            self.crash_due(h);
        }
    }

    /// Request–response: the host of `peer` answers host `h` with the messages it resolved
    /// to `digest` (if it is alive and holds them; across a partition the answer is lost
    /// like any message).
    fn fetch_inputs(&mut self, h: usize, round: u64, digest: Digest, peer: AgentId) {
        let Some(j) = self.by_id.get(&peer).map(|i| self.agents[*i].host) else {
            return;
        };
        let Some(inputs) = self.hosts[j]
            .driver
            .as_ref()
            .and_then(|driver| driver.engine().inputs(round, digest))
        else {
            return;
        };
        let messages: Arc<[SignedMessage]> = inputs.iter().cloned().collect();
        self.inputs_fetched += 1;
        self.net.answer_inputs(j, h, round, digest, messages);
    }

    fn send(&mut self, h: usize, message: SignedMessage) {
        self.transcript.absorb(&message.id().0);
        let byzantine = self
            .by_id
            .get(&message.sender())
            .and_then(|i| self.agents[*i].spec.byzantine.map(|b| (b, *i)));
        match byzantine {
            Some((byzantine, i)) => {
                let to: Vec<usize> = self.live_hosts().collect();
                byzantine::of(byzantine).transmit(
                    &mut self.net,
                    h,
                    to,
                    &message,
                    &self.agents[i].identity,
                    self.swarm,
                );
            }
            None => self.broadcast(h, &message),
        }
    }

    /// Bytes from the network reach host `h`: it opens them as a daemon does; anything that
    /// opens goes to the engine, and a forgery that opens is a violation.
    fn receive_bytes(&mut self, h: usize, bytes: &[u8]) -> bool {
        match open(bytes, self.swarm, &Limits::default()) {
            Ok(message) => {
                self.violation(format!(
                    "host {h} opened forged bytes as a message of round {}",
                    message.round()
                ));
                self.input(h, Input::Message(message))
            }
            Err(_) => {
                self.forgeries_refused += 1;
                false
            }
        }
    }

    /// Agent `i` asks a model: the answer is due a share of a phase timeout later.
    fn ask(&mut self, i: usize, mut question: Box<Question>) {
        let now = self.net.now();
        let pending = match (question.take_recorded(), &self.asker) {
            (Some(reply), _) => Pending::Ready(question, reply),
            (None, Some(asker)) => asker.ask(question),
            (None, None) => Pending::Ready(question, Reply::unanswered("no model client")),
        };
        self.next_ticket += 1;
        self.pending.insert(self.next_ticket, pending);
        let at = now + self.config.phase_timeout_ms / THINK_FRACTION;
        self.net.schedule(
            at,
            Event::Settle {
                agent: i,
                ticket: self.next_ticket,
            },
        );
    }

    /// A model's answer is due: waits for it and gives it to the agent's host.
    fn settle(&mut self, i: usize, ticket: u64) {
        let answer = self
            .pending
            .remove(&ticket)
            .and_then(|pending| pending.answer(self.asker.as_ref()));
        let Some((question, reply)) = answer else {
            return;
        };
        let agent = self.agents[i].id;
        self.input(
            self.agents[i].host,
            Input::Reply {
                agent,
                question,
                reply,
            },
        );
    }

    /// Agent `i`'s mind, wherever it is.
    fn mind(&self, i: usize) -> Option<&Mind> {
        let agent = &self.agents[i];
        agent.mind.as_ref().or_else(|| {
            self.hosts[agent.host]
                .driver
                .as_ref()
                .and_then(|d| d.mind(&agent.id))
        })
    }

    /// Every agent's LLM counts together.
    fn llm_counts(&self) -> LlmCounts {
        let mut total = LlmCounts::default();
        for i in 0..self.agents.len() {
            if let Some(mind) = self.mind(i) {
                total += mind.strategy().llm_counts();
            }
        }
        total
    }

    fn finalized(&mut self, h: usize, finalized: Finalized) {
        let round = finalized.certified.round();
        let digest = finalized.certified.digest();
        let winner = finalized.outcome.winner;
        self.transcript.absorb(&digest.0);
        self.hosts[h].last_final = Some((round, digest));
        match self.agreed.get(&round) {
            Some((agreed, _)) if *agreed != digest => {
                self.violation(format!(
                    "round {round}: host {h} finalized {digest}, others {agreed}"
                ));
            }
            Some(_) => {}
            None => {
                if let Some(w) = winner {
                    if let Some(left) = self.gone.get(&w) {
                        self.violation(format!(
                            "round {round}: ghost {w} won after leaving in round {left}"
                        ));
                    }
                }
                for (id, offence) in &finalized.outcome.offences {
                    if matches!(offence, Offence::Lie { .. }) {
                        self.first_caught.entry(*id).or_insert(round);
                    }
                    let double_voter = self.by_id.get(id).is_some_and(|i| {
                        self.agents[*i].spec.byzantine == Some(Byzantine::DoubleVoter)
                    });
                    if *offence == Offence::Contradiction && !double_voter {
                        self.violation(format!(
                            "round {round}: {} punished for a contradiction it never signed",
                            id.short()
                        ));
                    }
                }
                for (id, _) in &finalized.outcome.left {
                    self.gone.insert(*id, round);
                }
                // A suspended member may win again only after it rejoins.
                for id in finalized
                    .outcome
                    .suspended
                    .iter()
                    .chain(&finalized.outcome.removed)
                {
                    self.gone.insert(*id, round);
                }
                for id in &finalized.outcome.rejoined {
                    self.gone.remove(id);
                }
                self.coalitions_formed += finalized.outcome.coalitions_formed.len() as u64;
                self.check_membership(round, &finalized);
                self.agreed.insert(round, (digest, winner));
                self.archive.insert(finalized.certified.clone());
                self.last_progress_ms = self.net.now();
            }
        }
        if self.agreed.keys().next_back() == Some(&round) {
            self.last_state = Some(finalized.state.clone());
        }
        for slot in 0..self.hosts[h].agents.len() {
            let i = self.hosts[h].agents[slot];
            let agent = &mut self.agents[i];
            if agent.life != Life::Live {
                continue;
            }
            let status = finalized.state.members.get(&agent.id).map(|m| m.status);
            if matches!(
                status,
                Some(MemberStatus::Completed | MemberStatus::Departed | MemberStatus::Removed)
            ) {
                agent.life = Life::Done;
                self.finished += 1;
            }
        }
        self.retire_if_idle(h);
    }

    /// Starts the partition when the swarm reaches its first round, and heals it after its
    /// number of rounds — or after as many rounds' worth of time (10 phase timeouts a round),
    /// so that a side that cannot finalize does not keep it in force forever.
    fn update_partition(&mut self) {
        let Some((start, rounds)) = self.config.partition else {
            return;
        };
        let latest = self.agreed.keys().next_back().copied().unwrap_or(0);
        let now = self.net.now();
        match self.partition_since {
            None if latest >= start && latest < start + rounds => {
                let cut = (0..self.hosts.len()).map(cut_by_partition).collect();
                self.net.set_partition(Some(cut));
                self.partition_since = Some(now);
            }
            Some(since) if self.net.partitioned() => {
                let longest = rounds.saturating_mul(10 * self.config.phase_timeout_ms);
                if latest >= start + rounds || now.saturating_sub(since) > longest {
                    self.net.set_partition(None);
                    self.last_progress_ms = now;
                }
            }
            _ => {}
        }
    }
}
