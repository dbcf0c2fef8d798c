//! The command line: every subcommand and flag, each flag also settable by an environment
//! variable `SLOTMESH_*`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// slotmesh: processor agents that compete for a shared CPU slot with no coordinator.
#[derive(Debug, Parser)]
#[command(name = "slotmesh", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format (the level comes from RUST_LOG, default `info`).
    #[arg(long, global = true, env = "SLOTMESH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an agent identity key (ed25519) into a file.
    Keygen(KeygenArgs),
    /// Run one agent as a peer-to-peer daemon.
    Daemon,
    /// Run a local swarm of daemons on 127.0.0.1.
    Swarm,
    /// Run a seeded in-process simulation.
    Sim(SimArgs),
    /// Show a running daemon's status.
    Status,
    /// Build charts and a summary from data directories.
    Report,
    /// Check that several nodes' ledgers agree and their certificates verify.
    Verify,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (hex). Refuses to overwrite an existing file.
    #[arg(long, env = "SLOTMESH_KEY_OUT")]
    pub out: PathBuf,
}

/// A partition: from the first final round `ROUND`, for `DURATION` rounds.
#[derive(Debug, Clone, Copy)]
pub struct PartitionSpec {
    pub round: u64,
    pub duration: u64,
}

impl std::str::FromStr for PartitionSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (round, duration) = s
            .split_once(':')
            .ok_or("expected ROUND:DURATION, e.g. 10:5")?;
        Ok(PartitionSpec {
            round: round.parse().map_err(|e| format!("ROUND: {e}"))?,
            duration: duration.parse().map_err(|e| format!("DURATION: {e}"))?,
        })
    }
}

/// The seeds' preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// A burst 5 aggressive 0.7, B burst 5 cooperative 0.1, C burst 3 strategic 0.4.
    Seed,
}

/// Which strategy the agents use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyKind {
    /// Personality and bias templates; no network needed.
    Heuristic,
    /// An OpenAI-compatible model (not in this version yet).
    Llm,
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Number of generated agents (ignored with --preset).
    #[arg(long, env = "SLOTMESH_AGENTS", default_value_t = 20)]
    pub agents: usize,
    /// Fraction of liars among generated agents, in [0, 1].
    #[arg(long, env = "SLOTMESH_LIARS", default_value_t = 0.3)]
    pub liars: f64,
    /// Seed of every random choice.
    #[arg(long, env = "SLOTMESH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Probability that a delivery is lost, in [0, 1).
    #[arg(long, env = "SLOTMESH_LOSS", default_value_t = 0.0)]
    pub loss: f64,
    /// Agents that crash at seeded rounds (at most half).
    #[arg(long, env = "SLOTMESH_CRASH", default_value_t = 0)]
    pub crash: usize,
    /// Cut a third of the agents off from the first final round ROUND for DURATION rounds.
    #[arg(long, env = "SLOTMESH_PARTITION", value_name = "ROUND:DURATION")]
    pub partition: Option<PartitionSpec>,
    /// Agents that send two different commits per round.
    #[arg(long, env = "SLOTMESH_EQUIVOCATORS", default_value_t = 0)]
    pub equivocators: usize,
    /// Agents that commit and never reveal.
    #[arg(long, env = "SLOTMESH_WITHHOLDERS", default_value_t = 0)]
    pub withholders: usize,
    /// A third of the agents arrive over time instead of at the start.
    #[arg(long, env = "SLOTMESH_ARRIVALS")]
    pub arrivals: bool,
    /// Use a preset population instead of generated agents.
    #[arg(long, env = "SLOTMESH_PRESET", value_enum)]
    pub preset: Option<Preset>,
    /// Strategy of every agent.
    #[arg(long, env = "SLOTMESH_STRATEGY", value_enum, default_value_t = StrategyKind::Heuristic)]
    pub strategy: StrategyKind,
    /// Largest one-way network delay, simulated ms.
    #[arg(long, env = "SLOTMESH_MAX_DELAY_MS", default_value_t = 10)]
    pub max_delay_ms: u64,
    /// Phase timeout, simulated ms.
    #[arg(long, env = "SLOTMESH_PHASE_TIMEOUT_MS", default_value_t = 200)]
    pub phase_timeout_ms: u64,
    /// Agents sampled for the counterfactual lying_gain (each costs two more runs; 0 skips it).
    #[arg(long, env = "SLOTMESH_LYING_SAMPLES", default_value_t = 4)]
    pub lying_samples: usize,
    /// Print one JSON object (the last line) instead of the summary.
    #[arg(long, env = "SLOTMESH_JSON")]
    pub json: bool,
}
