//! What a simulation is made of: its agents, faults, hosts and bounds, and the seed preset.

use super::network::{Faults, Nemeses};
use slotmesh_agent::scenario::{seed_preset, AgentSpec};
use slotmesh_llm::StrategyChoice;
use std::path::PathBuf;

/// Final rounds kept in memory by default for replicas that fall behind
/// ([`SimConfig::archive_rounds`]).
pub const ARCHIVE_WINDOW: u64 = 64;
/// Hosts a generated population is spread over by default: each host is one replica.
pub const DEFAULT_HOSTS: usize = 8;

/// A whole simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The agents.
    pub agents: Vec<AgentSpec>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Network faults.
    pub faults: Faults,
    /// `(first final round, rounds)`: a third of the agents is cut off meanwhile.
    pub partition: Option<(u64, u64)>,
    /// Phase timeout of every engine, simulated ms.
    pub phase_timeout_ms: u64,
    /// Upper bound on processed events (a safety net, reported as a progress violation);
    /// 0: [`SimConfig::event_budget`].
    pub max_events: u64,
    /// Every agent's strategy (its personality and bias are the heuristic's, and the
    /// fallback of an `llm` strategy).
    pub strategy: StrategyChoice,
    /// Most questions to a model in flight at once.
    pub llm_concurrency: usize,
    /// Where `llm` and `replay` agents record their exchanges (`DIR/<name>/`).
    pub record_dir: Option<PathBuf>,
    /// Simulated hosts (0: one per agent up to [`DEFAULT_HOSTS`]). Agent `i` runs on host
    /// `i % hosts`; each host is one replica of the engine speaking for its agents, so
    /// agents on a host see the same messages at the same instants. With as many hosts as
    /// agents, every agent is its own replica.
    pub hosts: usize,
    /// Final rounds kept in memory for replicas that fall behind (the last R). A replica
    /// further behind starts again from the agreed state (a snapshot sync).
    pub archive_rounds: u64,
    /// Write every final round to this ledger file as the run goes (`sim --out DIR`:
    /// `DIR/ledger.log`, which `slotmesh verify` and `report` read).
    pub ledger: Option<PathBuf>,
    /// Stop after this many final rounds (to measure the cost of a round at sizes whose
    /// whole run would take too long).
    pub max_rounds: Option<u64>,
    /// Hosts execute won slots of this length, as daemons do: the next round's claims wait
    /// until the last decided slot has started (pacing). `None`: nothing executes and each
    /// round is decided as soon as the last one is final.
    pub slot_ms: Option<u64>,
    /// Hosts that restart mid-run (a daemon killed and started again on its data dir).
    pub restarts: Vec<Restart>,
    /// The founders (agents arriving at 0) found the swarm by known keys, as `slotmesh
    /// swarm` does: a majority of them suffices. Otherwise unanimously, as `--founders N`.
    pub known_founders: bool,
    /// End the run (as truncated) once the agreed record shows this agent gone (completed,
    /// departed or removed): a counterfactual only needs its sampled agent's turnaround.
    pub until_done: Option<usize>,
}

/// A host restart: right after agent `agent`'s host publishes its commit of `round`, the
/// host's replica is lost and starts again from the agreed state, as a restarted daemon
/// replays its ledger; its agents' minds (their saved memory and job) survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// The agent whose host restarts.
    pub agent: usize,
    /// The round in which it restarts.
    pub round: u64,
    /// Whether the host remembers the last round it spoke in (the daemon's `spoken-round`
    /// file); without it, the restart guard cannot keep it silent.
    pub remembers_spoken: bool,
}

impl SimConfig {
    /// The safety net on processed events when [`SimConfig::max_events`] is 0: ten times
    /// what a run costs when every message is delivered once per host (about 8 events per
    /// agent, host and round; a round per slot of burst, plus a hundred).
    /// (A fixed 50 million stopped a whole 1,000-agent run at round 1,966.)
    pub fn event_budget(&self) -> u64 {
        let slots: u64 = self.agents.iter().map(|a| u64::from(a.burst)).sum();
        let agents = self.agents.len() as u64;
        let hosts = self.host_count() as u64;
        80u64
            .saturating_mul(agents.max(1))
            .saturating_mul(hosts)
            .saturating_mul(slots + 100)
    }

    /// The number of hosts the agents are spread over.
    pub fn host_count(&self) -> usize {
        let n = self.agents.len().max(1);
        match self.hosts {
            0 => n.min(DEFAULT_HOSTS),
            h => h.min(n),
        }
    }
}

impl SimConfig {
    /// The seeds' three agents: A burst 5 aggressive 0.7, B burst 5 cooperative 0.1,
    /// C burst 3 strategic 0.4.
    pub fn seed_preset(seed: u64) -> SimConfig {
        SimConfig {
            agents: seed_preset(),
            seed,
            faults: Faults {
                loss_permille: 0,
                max_delay_ms: 10,
                nemeses: Nemeses::default(),
            },
            partition: None,
            phase_timeout_ms: 200,
            max_events: 0,
            strategy: StrategyChoice::Heuristic,
            llm_concurrency: 4,
            record_dir: None,
            hosts: 0,
            archive_rounds: ARCHIVE_WINDOW,
            ledger: None,
            max_rounds: None,
            slot_ms: None,
            restarts: Vec::new(),
            known_founders: false,
            until_done: None,
        }
    }
}
