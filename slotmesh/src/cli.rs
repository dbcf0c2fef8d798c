//! The command line: every subcommand and flag, each flag also settable by an environment
//! variable `SLOTMESH_*`.

use clap::{Parser, Subcommand, ValueEnum};
use libp2p::Multiaddr;
use slotmesh_agent::adversary::Adversary;
use slotmesh_agent::heuristic::Personality;
use slotmesh_agent::scenario::Mix;
use slotmesh_llm::{LlmClient, LlmSettings, OutputFormat, StrategyChoice};
use std::path::PathBuf;

/// slotmesh: processor agents that compete for a shared CPU slot with no coordinator.
#[derive(Debug, Parser)]
#[command(name = "slotmesh", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Log format (the level comes from RUST_LOG, default `info`).
    #[arg(long, global = true, env = "SLOTMESH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate an agent identity key (ed25519) into a file.
    Keygen(KeygenArgs),
    /// Run one agent as a peer-to-peer daemon.
    Daemon(DaemonArgs),
    /// Run a local swarm of daemons on 127.0.0.1.
    Swarm(SwarmArgs),
    /// Run a seeded in-process simulation.
    Sim(SimArgs),
    /// Show a running daemon's status.
    Status(StatusArgs),
    /// Build charts and a summary from data directories.
    Report(ReportArgs),
    /// Check that several nodes' ledgers agree and their certificates verify.
    Verify(VerifyArgs),
    /// (internal) Runs an --exec job and kills it if the daemon goes away.
    #[command(name = "__exec-guard", hide = true)]
    ExecGuard {
        /// The job's command line.
        command: String,
    },
    /// (internal) A CPU-bound job for demos and tests.
    #[command(name = "__burn", hide = true)]
    Burn {
        /// CPU time to use, ms.
        #[arg(long)]
        cpu_ms: u64,
        /// Append the time to this file as it runs.
        #[arg(long)]
        progress: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct DaemonArgs {
    /// Display name of the agent (1-32 bytes).
    #[arg(long, env = "SLOTMESH_NAME")]
    pub name: String,
    /// True burst of the job, in slots.
    #[arg(long, env = "SLOTMESH_BURST")]
    pub burst: u32,
    /// Personality of the heuristic strategy.
    #[arg(long, env = "SLOTMESH_PERSONALITY", value_enum, default_value_t = Personality::Cooperative)]
    pub personality: Personality,
    /// Bias: 0 truthful, 1 maximally deceptive.
    #[arg(long, env = "SLOTMESH_BIAS", default_value_t = 0.0)]
    pub bias: f64,
    /// Play an attack around the heuristic: underclaim or pledge-break (docs/SIMULATION.md,
    /// "Adversaries"). For experiments: the swarm's record punishes it as it would anyone.
    #[arg(long, env = "SLOTMESH_ADVERSARY", conflicts_with = "strategy")]
    pub adversary: Option<Adversary>,
    /// Strategy: heuristic, llm (an OpenAI-compatible model, the heuristic as fallback) or
    /// replay:DIR (the model replies recorded in DIR).
    #[arg(long, env = "SLOTMESH_STRATEGY", default_value = "heuristic")]
    pub strategy: StrategyKind,
    #[command(flatten)]
    pub llm: LlmArgs,
    /// Address to listen on (repeatable).
    #[arg(
        long,
        env = "SLOTMESH_LISTEN",
        value_delimiter = ',',
        default_value = "/ip4/0.0.0.0/tcp/0"
    )]
    pub listen: Vec<Multiaddr>,
    /// Peer to dial (repeatable; with /p2p/PEER_ID or without).
    #[arg(long, env = "SLOTMESH_PEER", value_delimiter = ',')]
    pub peer: Vec<Multiaddr>,
    /// Do not use mDNS discovery (use it only on networks you own).
    #[arg(long, env = "SLOTMESH_NO_MDNS")]
    pub no_mdns: bool,
    /// Data directory: key, ledger, memory, status.
    #[arg(long, env = "SLOTMESH_DATA_DIR", default_value = "slotmesh-data")]
    pub data_dir: PathBuf,
    /// Local HTTP endpoint: status JSON, Prometheus metrics, live events and a dashboard
    /// (`PORT` or `:PORT` bind 127.0.0.1; `HOST:PORT` as given).
    #[arg(long, env = "SLOTMESH_HTTP")]
    pub http: Option<String>,
    /// With --http: keep serving the dashboard and the final status this many seconds after
    /// the daemon is done (Ctrl-C or SIGTERM ends it sooner).
    #[arg(
        long,
        env = "SLOTMESH_LINGER",
        default_value_t = 0,
        value_name = "SECONDS"
    )]
    pub linger: u64,
    /// How long the winner executes its slot, ms.
    #[arg(long, env = "SLOTMESH_SLOT_MS", default_value_t = 200)]
    pub slot_ms: u64,
    /// How long a phase waits for silent members, ms (default 1000; 8000 with
    /// `--strategy llm`).
    #[arg(long, env = "SLOTMESH_PHASE_TIMEOUT_MS")]
    pub phase_timeout_ms: Option<u64>,
    /// Founding members the first round waits for: it needs every founder that joins, so one
    /// that crashes before it votes stalls founding (use --founder to tolerate that).
    #[arg(long, env = "SLOTMESH_FOUNDERS", default_value_t = 2)]
    pub founders: usize,
    /// Founders only: rounds a suspended member (crashed, paused, cut off) may stay away and
    /// still rejoin with its record; after that the swarm removes it for good. The swarm
    /// takes the largest value its founders propose.
    #[arg(long, env = "SLOTMESH_ABSENCE_LIMIT", default_value_t = slotmesh_proto::DEFAULT_ABSENCE_LIMIT)]
    pub absence_limit: u64,
    /// Found the swarm with these agents, by id (repeat, or comma-separate; this daemon's
    /// own id among them: `slotmesh keygen --out DATA_DIR/identity.key` prints it). A
    /// majority of them founds the swarm, so a founder that crashes or never starts does
    /// not stall it; other keys cannot join the founding round. Replaces --founders.
    #[arg(
        long = "founder",
        env = "SLOTMESH_FOUNDER_IDS",
        value_delimiter = ',',
        value_name = "AGENT_ID"
    )]
    pub founder_ids: Vec<slotmesh_proto::AgentId>,
    /// Join a swarm that already runs instead of founding one (a late joiner).
    #[arg(long, env = "SLOTMESH_JOIN")]
    pub join: bool,
    /// Swarm name: only daemons with the same name form a swarm.
    #[arg(long, env = "SLOTMESH_SWARM", default_value = "slotmesh")]
    pub swarm: String,
    /// Seed of the strategy's random choices (default: derived from the key).
    #[arg(long, env = "SLOTMESH_SEED")]
    pub seed: Option<u64>,
    /// Run this command as the agent's job: it runs only in the slots the agent wins
    /// (SIGCONT/SIGSTOP of its process group); the job is complete when it exits, and
    /// --burst becomes the agent's estimate.
    #[arg(long, env = "SLOTMESH_EXEC", value_name = "CMD")]
    pub exec: Option<String>,
    /// Pre-shared key file: a private swarm that nodes without the key cannot join
    /// (`slotmesh keygen --swarm-key --out FILE` makes one).
    #[arg(long, env = "SLOTMESH_SWARM_KEY")]
    pub swarm_key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SwarmArgs {
    /// Number of generated daemons (ignored with --preset).
    #[arg(long, env = "SLOTMESH_NODES", default_value_t = 3)]
    pub nodes: usize,
    /// Use a preset population.
    #[arg(long, env = "SLOTMESH_PRESET", value_enum)]
    pub preset: Option<Preset>,
    /// Who takes part, from a scenario file (docs/SIMULATION.md, "Scenario files"; e.g.
    /// scenarios/seed.toml): one daemon per agent, adversaries with --adversary.
    #[arg(long, env = "SLOTMESH_SCENARIO", conflicts_with_all = ["preset", "nodes"])]
    pub scenario: Option<PathBuf>,
    /// Seed of the generated population and of the strategies.
    #[arg(long, env = "SLOTMESH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Strategy of every daemon: heuristic, llm or replay:DIR (DIR: an earlier swarm's --out).
    #[arg(long, env = "SLOTMESH_STRATEGY", default_value = "heuristic")]
    pub strategy: StrategyKind,
    #[command(flatten)]
    pub llm: LlmArgs,
    /// Directory for the daemons' data dirs (`DIR/<name>/`); a fresh temporary one if absent.
    #[arg(long, env = "SLOTMESH_OUT")]
    pub out: Option<PathBuf>,
    /// Slot length, ms.
    #[arg(long, env = "SLOTMESH_SLOT_MS", default_value_t = 200)]
    pub slot_ms: u64,
    /// Phase timeout, ms (default 1000; 8000 with `--strategy llm`).
    #[arg(long, env = "SLOTMESH_PHASE_TIMEOUT_MS")]
    pub phase_timeout_ms: Option<u64>,
    /// HTTP endpoints: the first daemon on ADDR, the next on the following ports (`0`: any
    /// free port each). Each daemon's address is printed and in its status.
    #[arg(long, env = "SLOTMESH_HTTP")]
    pub http: Option<String>,
    /// With --http: each daemon's dashboard stays up this many seconds after the run ends,
    /// after the summary (default 60 with --http; Ctrl-C ends it sooner).
    #[arg(long, env = "SLOTMESH_LINGER", value_name = "SECONDS")]
    pub linger: Option<u64>,
    /// The seed preset with small CPU-bound jobs (--exec), to watch real work scheduled.
    #[arg(long)]
    pub exec_demo: bool,
    /// Give up (and stop every daemon) when no round has become final for this many
    /// seconds (default: 30 phase timeouts, so 30 s, or 240 s with `--strategy llm`). A slow
    /// swarm that makes progress is never stopped.
    #[arg(long, env = "SLOTMESH_STALL_S")]
    pub stall_s: Option<u64>,
    /// Give up after this many seconds whatever the progress (off unless given).
    #[arg(long, env = "SLOTMESH_TIMEOUT_S")]
    pub timeout_s: Option<u64>,
}

/// Phase timeouts without a final round after which `swarm` gives up.
pub(crate) const STALL_PHASE_TIMEOUTS: u64 = 30;

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The daemon's data directory (read its status.json).
    #[arg(long, env = "SLOTMESH_DATA_DIR", default_value = "slotmesh-data")]
    pub data_dir: PathBuf,
    /// Ask the daemon's HTTP endpoint instead (PORT, :PORT or HOST:PORT).
    #[arg(long)]
    pub http: Option<String>,
    /// Print the raw JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// Data directories, a swarm's --out directory, or a sim's --out directory.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write index.html and summary.txt.
    #[arg(long, env = "SLOTMESH_REPORT_OUT")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// Data directories (or ledger files) to compare.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the secret key (hex). Refuses to overwrite an existing file.
    #[arg(long, env = "SLOTMESH_KEY_OUT")]
    pub out: PathBuf,
    /// Make a swarm key (a libp2p pre-shared key for `--swarm-key`) instead of an identity.
    #[arg(long)]
    pub swarm_key: bool,
}

/// A partition: from the first final round `ROUND`, for `DURATION` rounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartitionSpec {
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

/// A hostile schedule of the simulated network (`sim --nemesis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NemesisKind {
    /// Links fail one way (a host hears but is not heard) for a few phase timeouts.
    OneWay,
    /// Votes, proposals and promises delayed by a few phase timeouts; host 0's votes always.
    SlowVotes,
    /// Hosts pause and resume to stale messages and late timers.
    Pause,
    /// All of them.
    All,
}

/// The seeds' preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Preset {
    /// A burst 5 aggressive 0.7, B burst 5 cooperative 0.1, C burst 3 strategic 0.4.
    Seed,
}

/// Which strategy the agents use: `heuristic`, `llm`, or `replay:DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StrategyKind {
    /// Personality and bias templates; no network needed.
    Heuristic,
    /// An OpenAI-compatible model (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `--model`), with the
    /// heuristic as fallback.
    Llm,
    /// The model replies recorded in DIR (a data dir, or a swarm's or sim's `--out`).
    Replay(PathBuf),
}

impl std::str::FromStr for StrategyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "heuristic" => Ok(StrategyKind::Heuristic),
            "llm" => Ok(StrategyKind::Llm),
            _ => match s.strip_prefix("replay:") {
                Some(dir) if !dir.is_empty() => Ok(StrategyKind::Replay(PathBuf::from(dir))),
                _ => Err(format!(
                    "unknown strategy {s:?}: expected heuristic, llm or replay:DIR"
                )),
            },
        }
    }
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrategyKind::Heuristic => f.write_str("heuristic"),
            StrategyKind::Llm => f.write_str("llm"),
            StrategyKind::Replay(dir) => write!(f, "replay:{}", dir.display()),
        }
    }
}

/// Where and how the `llm` strategy asks its model.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LlmArgs {
    /// Model name for `--strategy llm`.
    #[arg(long, env = "SLOTMESH_MODEL", default_value = "gpt-4o-mini")]
    pub model: String,
    /// Base URL of the OpenAI-compatible API (the key comes from `OPENAI_API_KEY`).
    #[arg(
        long = "llm-base-url",
        env = "OPENAI_BASE_URL",
        default_value = DEFAULT_LLM_BASE_URL
    )]
    pub base_url: String,
    /// Structured output: detect per endpoint, or force one form.
    #[arg(long = "llm-format", env = "SLOTMESH_LLM_FORMAT", value_enum, default_value_t = OutputFormat::Auto)]
    pub format: OutputFormat,
    /// Time for one decision, retries included, ms (default: 3/4 of the phase timeout;
    /// must be shorter than it).
    #[arg(long = "llm-deadline-ms", env = "SLOTMESH_LLM_DEADLINE_MS")]
    pub deadline_ms: Option<u64>,
    /// Most tokens in one answer.
    #[arg(
        long = "llm-max-tokens",
        env = "SLOTMESH_LLM_MAX_TOKENS",
        default_value_t = 200
    )]
    pub max_tokens: u32,
    /// How long the endpoint's breaker stays open (decisions fall back at once) before one
    /// question probes it again, ms (default: two deadlines, at least 1000).
    #[arg(long = "llm-cool-down-ms", env = "SLOTMESH_LLM_COOL_DOWN_MS")]
    pub cool_down_ms: Option<u64>,
}

/// Where `--strategy llm` asks when no base URL is given.
pub(crate) const DEFAULT_LLM_BASE_URL: &str = "https://api.openai.com/v1";

/// Phase timeout when none is given: a model needs time to answer.
pub(crate) fn default_phase_timeout_ms(strategy: &StrategyKind) -> u64 {
    match strategy {
        StrategyKind::Llm => 8_000,
        StrategyKind::Heuristic | StrategyKind::Replay(_) => 1_000,
    }
}

impl LlmArgs {
    /// The decision deadline: as given, or ¾ of the phase timeout.
    fn deadline_ms(&self, phase_timeout_ms: u64) -> u64 {
        self.deadline_ms.unwrap_or(phase_timeout_ms * 3 / 4)
    }

    /// The client settings, with the deadline inside `phase_timeout_ms`.
    pub(crate) fn settings(&self, phase_timeout_ms: u64) -> Result<LlmSettings, String> {
        let deadline_ms = self.deadline_ms(phase_timeout_ms);
        if deadline_ms == 0 || deadline_ms >= phase_timeout_ms {
            return Err(format!(
                "--llm-deadline-ms {deadline_ms} must be above 0 and below the phase timeout ({phase_timeout_ms} ms)"
            ));
        }
        // docker-compose passes an unset OPENAI_BASE_URL through as an empty one.
        let base_url = match self.base_url.trim() {
            "" => DEFAULT_LLM_BASE_URL.to_string(),
            url => url.to_string(),
        };
        Ok(LlmSettings {
            base_url,
            api_key: std::env::var("OPENAI_API_KEY").unwrap_or_default(),
            model: self.model.clone(),
            format: self.format,
            deadline: std::time::Duration::from_millis(deadline_ms),
            max_tokens: self.max_tokens,
            breaker_cool_down: self.cool_down_ms.map_or_else(
                || LlmSettings::cool_down_for(std::time::Duration::from_millis(deadline_ms)),
                std::time::Duration::from_millis,
            ),
        })
    }

    /// The same settings as flags for a child daemon.
    pub(crate) fn to_flags(&self, phase_timeout_ms: u64) -> Vec<String> {
        let format = match self.format {
            OutputFormat::Auto => "auto",
            OutputFormat::JsonSchema => "json-schema",
            OutputFormat::JsonObject => "json-object",
            OutputFormat::Prompt => "prompt",
        };
        let mut flags = vec![
            "--model".into(),
            self.model.clone(),
            "--llm-base-url".into(),
            self.base_url.clone(),
            "--llm-format".into(),
            format.into(),
            "--llm-deadline-ms".into(),
            self.deadline_ms(phase_timeout_ms).to_string(),
            "--llm-max-tokens".into(),
            self.max_tokens.to_string(),
        ];
        if let Some(ms) = self.cool_down_ms {
            flags.extend(["--llm-cool-down-ms".into(), ms.to_string()]);
        }
        flags
    }
}

/// The strategy choice of `kind`: a model client for `llm`.
pub(crate) fn strategy_choice(
    kind: &StrategyKind,
    llm: &LlmArgs,
    phase_timeout_ms: u64,
) -> anyhow::Result<StrategyChoice> {
    Ok(match kind {
        StrategyKind::Heuristic => StrategyChoice::Heuristic,
        StrategyKind::Llm => StrategyChoice::Llm(LlmClient::new(
            llm.settings(phase_timeout_ms).map_err(anyhow::Error::msg)?,
        )),
        StrategyKind::Replay(dir) => StrategyChoice::Replay(dir.clone()),
    })
}

/// One cheap check of the model's endpoint before the first question: a warning on stderr
/// (and in the log) when it is unreachable, refuses the key or does not serve the model.
/// The run goes on: decisions fall back to the heuristic while the endpoint fails.
pub(crate) async fn warn_if_llm_unusable(choice: &StrategyChoice) {
    let Some(client) = choice.client() else {
        return;
    };
    if let Err(problem) = client.check_endpoint().await {
        tracing::warn!(%problem, "the LLM endpoint looks unusable");
        eprintln!(
            "warning: LLM endpoint: {problem}. The agents run on: every decision the model \
             cannot answer is the heuristic's (counted as fallbacks)."
        );
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
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
    /// Cut a third of the hosts (and their agents) off from the first final round ROUND for
    /// DURATION rounds.
    #[arg(long, env = "SLOTMESH_PARTITION", value_name = "ROUND:DURATION")]
    pub partition: Option<PartitionSpec>,
    /// Agents that send two different commits per round.
    #[arg(long, env = "SLOTMESH_EQUIVOCATORS", default_value_t = 0)]
    pub equivocators: usize,
    /// Agents that commit and never reveal.
    #[arg(long, env = "SLOTMESH_WITHHOLDERS", default_value_t = 0)]
    pub withholders: usize,
    /// Agents that send, beside each message, a forged copy every receiver must refuse.
    #[arg(long, env = "SLOTMESH_FORGERS", default_value_t = 0)]
    pub forgers: usize,
    /// Agents that sign, beside each checkpoint vote, another vote of the same attempt for a
    /// different digest (the record bars them from voting once a replica reports it).
    #[arg(long, env = "SLOTMESH_DOUBLE_VOTERS", default_value_t = 0)]
    pub double_voters: usize,
    /// A third of the agents arrive over time instead of at the start.
    #[arg(long, env = "SLOTMESH_ARRIVALS")]
    pub arrivals: bool,
    /// Strategies spread over the generated agents by weight, e.g.
    /// `heuristic:80,underclaim:10,withhold:10` (docs/SIMULATION.md lists the adversaries).
    /// Heuristic agents lie as --liars says; agents given a fault by another flag keep it.
    #[arg(long, env = "SLOTMESH_MIX")]
    pub mix: Option<Mix>,
    /// Simulated hosts the agents are spread over (agent i on host i mod H). Each host is
    /// one engine replica speaking for its agents; delays, loss and the partition are
    /// between hosts. 0: one host per agent, at most 8. Equal to --agents: every agent is
    /// its own replica (the most faithful model, cost per round ~ agents squared).
    #[arg(long, env = "SLOTMESH_SIM_HOSTS", default_value_t = 0)]
    pub hosts: usize,
    /// Stop after this many final rounds (measures the cost of a round at sizes whose whole
    /// run would take too long; the report says `truncated`).
    #[arg(long, env = "SLOTMESH_MAX_ROUNDS")]
    pub max_rounds: Option<u64>,
    /// Hosts execute won slots of this many ms, as daemons do: the next round's claims wait
    /// until the last decided slot has started, and a finished host lingers (default: no
    /// execution, each round decided as soon as the last is final).
    #[arg(long, env = "SLOTMESH_SIM_SLOT_MS")]
    pub slot_ms: Option<u64>,
    /// Use a preset population instead of generated agents.
    #[arg(long, env = "SLOTMESH_PRESET", value_enum)]
    pub preset: Option<Preset>,
    /// Who takes part, from a scenario file instead of generated agents (docs/SIMULATION.md,
    /// "Scenario files"; e.g. scenarios/seed.toml).
    #[arg(long, env = "SLOTMESH_SCENARIO", conflicts_with_all = ["preset", "mix", "agents"])]
    pub scenario: Option<PathBuf>,
    /// Strategy of every agent: heuristic, llm or replay:DIR (DIR: an earlier sim's --out).
    #[arg(long, env = "SLOTMESH_STRATEGY", default_value = "heuristic")]
    pub strategy: StrategyKind,
    #[command(flatten)]
    pub llm: LlmArgs,
    /// Most questions to the model in flight at once (`--strategy llm`).
    #[arg(long, env = "SLOTMESH_LLM_CONCURRENCY", default_value_t = 4)]
    pub llm_concurrency: usize,
    /// Real time for one model decision in `sim`, ms (the simulated clock waits).
    #[arg(
        long = "llm-sim-deadline-ms",
        env = "SLOTMESH_LLM_SIM_DEADLINE_MS",
        default_value_t = 10_000
    )]
    pub llm_sim_deadline_ms: u64,
    /// Largest one-way network delay, simulated ms.
    #[arg(long, env = "SLOTMESH_MAX_DELAY_MS", default_value_t = 10)]
    pub max_delay_ms: u64,
    /// Hostile network schedules, comma-separated (outages of up to 4 phase timeouts).
    #[arg(long, env = "SLOTMESH_NEMESIS", value_delimiter = ',')]
    pub nemesis: Vec<NemesisKind>,
    /// Phase timeout, simulated ms.
    #[arg(long, env = "SLOTMESH_PHASE_TIMEOUT_MS", default_value_t = 200)]
    pub phase_timeout_ms: u64,
    /// Agents sampled for the counterfactual lying_gain (each costs two more runs, each only
    /// until its agent completes; 0 skips it and lying_gain_by_kind, which costs one more
    /// run per adversary kind in the population).
    #[arg(long, env = "SLOTMESH_LYING_SAMPLES", default_value_t = 4)]
    pub lying_samples: usize,
    /// Print one JSON object (the last line) instead of the summary.
    #[arg(long, env = "SLOTMESH_JSON")]
    pub json: bool,
    /// Write the run's certified rounds as a ledger (DIR/ledger.log, the daemon's format),
    /// for `slotmesh verify` and `slotmesh report`.
    #[arg(long, env = "SLOTMESH_OUT")]
    pub out: Option<PathBuf>,
}

impl SimArgs {
    /// The nemeses asked for with `--nemesis`.
    pub(crate) fn nemeses(&self) -> slotmesh_sim::network::Nemeses {
        let has = |kind| self.nemesis.contains(&kind) || self.nemesis.contains(&NemesisKind::All);
        slotmesh_sim::network::Nemeses {
            one_way: has(NemesisKind::OneWay),
            slow_votes: has(NemesisKind::SlowVotes),
            pauses: has(NemesisKind::Pause),
            outage_ms: 4 * self.phase_timeout_ms.max(1),
        }
    }
}
