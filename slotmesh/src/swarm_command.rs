//! `slotmesh swarm`: a local swarm of real daemon processes on 127.0.0.1. Starts each child
//! with an ephemeral port, mDNS off and explicit peers (the ones started before it), shows
//! progress from the children's status files, and at the end verifies that every ledger
//! agrees and prints the schedule. Exits 0 only if every child completed and the ledgers
//! agree. Ctrl-C (or the timeout) kills every child it started.

use crate::cli::{Preset, StrategyKind, SwarmArgs};
use anyhow::{bail, Context, Result};
use slotmesh::history::{self, History};
use slotmesh_agent::model::LlmCounts;
use slotmesh_agent::scenario::{population, seed_preset, AgentSpec, Population};
use slotmesh_agent::scenario_file;
use slotmesh_node::{DataDir, NodeStatus};
use slotmesh_proto::MemberRecord;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a child may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

struct Daemon {
    spec: AgentSpec,
    dir: PathBuf,
    child: Child,
    exit: Option<std::process::ExitStatus>,
}

impl Daemon {
    /// Whether it runs on only to serve its dashboard (`--linger`): done, its whole job run.
    fn lingering(&self) -> bool {
        self.exit.is_none() && read_status(&self.dir).is_some_and(|s| s.done && s.remaining == 0)
    }
}

/// How long the dashboards of `swarm --http` outlive the run unless `--linger` says.
const DEFAULT_HTTP_LINGER_S: u64 = 60;
/// How much longer than its linger a daemon is given to exit before it is killed.
const LINGER_GRACE_S: u64 = 5;

pub(crate) fn run(args: SwarmArgs) -> Result<()> {
    if args.strategy == StrategyKind::Llm {
        // Refuse bad LLM settings here rather than in every child.
        args.llm
            .settings(phase_timeout_ms(&args))
            .map_err(anyhow::Error::msg)?;
    }
    if args.exec_demo && args.preset.is_none() && args.nodes != 3 {
        bail!("--exec-demo runs the seed preset; leave out --nodes");
    }
    let agents = match args.preset.or(args.exec_demo.then_some(Preset::Seed)) {
        _ if args.scenario.is_some() && args.exec_demo => {
            bail!("--exec-demo runs the seed preset; leave out --scenario")
        }
        _ if args.scenario.is_some() => {
            let path = args.scenario.as_deref().unwrap_or(Path::new(""));
            let agents = scenario_file::load(path, args.seed)?;
            if let Some(spec) = agents.iter().find(|a| a.byzantine.is_some()) {
                bail!(
                    "{}: agent {} plays `{}`, which only the simulator carries out (slotmesh sim --scenario)",
                    path.display(),
                    spec.name,
                    spec.strategy_label()
                );
            }
            if let Some(spec) = agents.iter().find(|a| a.arrival_ms > 0) {
                bail!(
                    "{}: agent {} arrives late (arrival_ms), which only the simulator plays; swarm starts every agent at once",
                    path.display(),
                    spec.name
                );
            }
            agents
        }
        Some(Preset::Seed) => seed_preset(),
        None => {
            if args.nodes == 0 {
                bail!("--nodes must be at least 1");
            }
            population(Population::honest(args.nodes).with_liars(0.3), args.seed)
        }
    };
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("slotmesh-swarm-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_swarm(&args, agents, &out))
}

async fn run_swarm(args: &SwarmArgs, agents: Vec<AgentSpec>, out: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the slotmesh binary")?;
    if args.strategy == StrategyKind::Llm {
        let choice =
            crate::cli::strategy_choice(&args.strategy, &args.llm, phase_timeout_ms(args))?;
        crate::cli::warn_if_llm_unusable(&choice).await;
    }
    let founders = agents.len();
    let http_base = match &args.http {
        Some(text) => Some(slotmesh::http::parse_http_addr(text).map_err(anyhow::Error::msg)?),
        None => None,
    };
    // With --http, the dashboards outlive the run (after the summary) unless told otherwise.
    let linger = match http_base {
        Some(_) => args.linger.unwrap_or(DEFAULT_HTTP_LINGER_S),
        None => 0,
    };
    let mut daemons: Vec<Daemon> = Vec::new();
    let mut peers: Vec<String> = Vec::new();
    let started = Instant::now();
    eprintln!(
        "starting {founders} daemons on 127.0.0.1 (data in {})",
        out.display()
    );
    for spec in &agents {
        eprintln!(
            "  {}: job of {} slots, {} {}",
            spec.name,
            spec.burst,
            spec.personality,
            match spec.adversary {
                Some(kind) => format!("playing the adversary `{kind}`"),
                None if spec.bias > 0.0 => format!(
                    "bias {} (understates its remaining work in about that share of its claims)",
                    spec.bias
                ),
                None => "bias 0 (always claims the truth)".to_string(),
            }
        );
    }
    // The founders are known before any starts: each daemon's key is made here, and a
    // majority of them founds the swarm (one that fails to start does not stall the rest).
    let mut founder_ids = Vec::with_capacity(founders);
    for spec in &agents {
        let dir = out.join(&spec.name);
        if dir.join(slotmesh_node::files::LEDGER).exists() {
            bail!(
                "{} already holds a ledger; use an empty --out directory",
                dir.display()
            );
        }
        std::fs::create_dir_all(&dir)?;
        let key = dir.join(slotmesh_node::files::IDENTITY_KEY);
        let identity = if key.exists() {
            slotmesh_node::keys::load(&key)?
        } else {
            slotmesh_node::keys::generate(&key)?
        };
        founder_ids.push(identity.id().to_hex());
    }
    let founder_ids = founder_ids.join(",");
    for (i, spec) in agents.into_iter().enumerate() {
        let dir = out.join(&spec.name);
        let log = std::fs::File::create(dir.join("daemon.log"))?;
        let mut command = Command::new(&exe);
        command
            .arg("daemon")
            .args(["--name", &spec.name])
            .args(["--burst", &spec.burst.to_string()])
            .args(["--personality", &spec.personality.to_string()])
            .args(["--bias", &spec.bias.to_string()])
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .arg("--no-mdns")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--slot-ms", &args.slot_ms.to_string()])
            .args(["--phase-timeout-ms", &phase_timeout_ms(args).to_string()])
            .args(match spec.adversary {
                Some(kind) => ["--adversary".to_string(), kind.to_string()],
                None => ["--strategy".to_string(), args.strategy.to_string()],
            })
            .args(["--founder", &founder_ids])
            .args(["--seed", &(args.seed ^ (i as u64 + 1)).to_string()])
            .args(["--swarm", &format!("local-{}", args.seed)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for peer in &peers {
            command.args(["--peer", peer]);
        }
        if args.strategy == StrategyKind::Llm {
            command.args(args.llm.to_flags(phase_timeout_ms(args)));
        }
        if args.exec_demo {
            // A CPU-bound job of about its burst in slots (the rest of a slot goes to the
            // switch and to the other daemons on this machine).
            let cpu_ms = u64::from(spec.burst) * args.slot_ms * 7 / 10;
            command.args([
                "--exec",
                &format!(
                    "{} __burn --cpu-ms {cpu_ms}",
                    shell_quote(&exe.to_string_lossy())
                ),
            ]);
        }
        if let Some(base) = http_base {
            let port = if base.port() == 0 {
                0
            } else {
                base.port() + i as u16
            };
            command.args([
                "--http",
                &std::net::SocketAddr::new(base.ip(), port).to_string(),
            ]);
            command.args(["--linger", &linger.to_string()]);
        }
        // Flags come from the command line only; the user's SLOTMESH_* settings are for
        // this command, not for each child.
        for (key, _) in std::env::vars() {
            if key.starts_with("SLOTMESH_") {
                command.env_remove(key);
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start daemon {}", spec.name))?;
        let mut daemon = Daemon {
            spec,
            dir,
            child,
            exit: None,
        };
        let (address, http) = wait_for_listen(&mut daemon).await?;
        if let Some(http) = http {
            eprintln!("{}: dashboard http://{http}/", daemon.spec.name);
        }
        peers.push(address);
        daemons.push(daemon);
    }
    let progress = Progress::new(args.strategy != StrategyKind::Heuristic);
    let deadline = args.timeout_s.map(|s| started + Duration::from_secs(s));
    let stall = Duration::from_secs(args.stall_s.unwrap_or_else(|| {
        (crate::cli::STALL_PHASE_TIMEOUTS * phase_timeout_ms(args)).div_ceil(1000)
    }));
    let mut last_progress = (None, Instant::now());
    // SIGTERM as well as Ctrl-C: the children must not outlive this command.
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let outcome = loop {
        #[cfg(unix)]
        let terminated = term.recv();
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Err(anyhow::anyhow!("interrupted: stopped every daemon")),
            _ = terminated => break Err(anyhow::anyhow!("terminated: stopped every daemon")),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        for daemon in &mut daemons {
            if daemon.exit.is_none() {
                daemon.exit = daemon.child.try_wait()?;
            }
        }
        let latest = progress.show(&daemons);
        let now = Instant::now();
        if latest != last_progress.0 {
            last_progress = (latest, now);
        }
        if daemons.iter().all(|d| d.exit.is_some() || d.lingering()) {
            break Ok(());
        }
        if let (Some(deadline), Some(limit)) = (deadline, args.timeout_s) {
            if now > deadline {
                break Err(anyhow::anyhow!(
                    "timed out after {limit} s (--timeout-s): stopped every daemon"
                ));
            }
        }
        if now.duration_since(last_progress.1) > stall {
            let since = match last_progress.0 {
                Some(round) => format!("since round {round} became final"),
                None => "since the daemons started".to_string(),
            };
            break Err(anyhow::anyhow!(
                "no progress: no round became final for {} s {since} (--stall-s); stopped every \
                 daemon (their logs: {}/NAME/daemon.log)",
                stall.as_secs(),
                out.display()
            ));
        }
    };
    if outcome.is_err() {
        for daemon in &mut daemons {
            if daemon.exit.is_none() {
                let _ = daemon.child.kill().await;
            }
        }
    }
    progress.finish();
    outcome?;
    let wall = started.elapsed();
    let dirs: Vec<PathBuf> = daemons.iter().map(|d| d.dir.clone()).collect();
    let verdict = history::verify(&dirs);
    if let Some(history) = dirs
        .iter()
        .filter_map(|d| History::load(d).ok())
        .max_by_key(|h| h.rounds.len())
    {
        print!("{}", history.summary());
        println!("({SUMMARY_LEGEND})");
        print!("{}", by_strategy(&history, &daemons));
    }
    let failed: Vec<String> = daemons
        .iter()
        .filter(|d| !d.exit.is_some_and(|e| e.success()) && !d.lingering())
        .map(|d| {
            format!(
                "{} ({}; see {})",
                d.spec.name,
                d.exit.map_or("running".into(), |e| e.to_string()),
                d.dir.join("daemon.log").display()
            )
        })
        .collect();
    println!(
        "{} daemons, {:.1} s, data in {}",
        daemons.len(),
        wall.as_secs_f64(),
        out.display()
    );
    println!("{}", verdict.line);
    if args.strategy != StrategyKind::Heuristic {
        let mut total = LlmCounts::default();
        for status in daemons.iter().filter_map(|d| read_status(&d.dir)) {
            total += status.llm;
        }
        println!(
            "LLM calls {}, fallbacks {}, corrected {}, breaker open {} (records: {}/NAME/{})",
            total.calls,
            total.fallbacks,
            total.clamped,
            total.breaker_open,
            out.display(),
            slotmesh_node::files::LLM_RECORD
        );
    }
    if args.exec_demo {
        for daemon in &daemons {
            if let Some(status) = read_status(&daemon.dir) {
                let ran: Vec<f64> = status
                    .slots
                    .iter()
                    .filter_map(|s| {
                        let length = s.end_unix_ms.saturating_sub(s.start_unix_ms).max(1);
                        s.job_cpu_ms.map(|cpu| cpu as f64 / length as f64)
                    })
                    .collect();
                let mean = ran.iter().sum::<f64>() / ran.len().max(1) as f64;
                println!(
                    "job of {}: {}, {} slots, ran {:.0}% of its slots on average",
                    status.name,
                    status.job_exit.as_deref().unwrap_or("did not end"),
                    ran.len(),
                    100.0 * mean
                );
            }
        }
    }
    if daemons.iter().any(|d| d.exit.is_none()) {
        eprintln!(
            "the dashboards stay up for {linger} s (Ctrl-C ends them now): {}",
            daemons
                .iter()
                .filter_map(|d| read_status(&d.dir)?.http.map(|h| format!("http://{h}/")))
                .collect::<Vec<_>>()
                .join("  ")
        );
        let until = Instant::now() + Duration::from_secs(linger + LINGER_GRACE_S);
        while daemons.iter().any(|d| d.exit.is_none()) && Instant::now() < until {
            #[cfg(unix)]
            let terminated = term.recv();
            #[cfg(not(unix))]
            let terminated = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = terminated => break,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            for daemon in &mut daemons {
                if daemon.exit.is_none() {
                    daemon.exit = daemon.child.try_wait()?;
                }
            }
        }
        for daemon in &mut daemons {
            if daemon.exit.is_none() {
                let _ = daemon.child.kill().await;
            }
        }
    }
    if !failed.is_empty() {
        bail!("daemons that did not complete: {}", failed.join(", "));
    }
    if !verdict.ok {
        bail!("the ledgers do not agree");
    }
    Ok(())
}

/// A member's (turnaround, waiting) if it completed, and its record.
type Course<'a> = (Option<(u64, u64)>, &'a MemberRecord);

/// What each strategy's agents got (when more than one strategy plays, as a scenario file
/// with adversaries makes): agents, completed, mean turnaround and waiting, lies caught,
/// mean final trust and credits.
fn by_strategy(history: &History, daemons: &[Daemon]) -> String {
    let strategy_of: BTreeMap<&str, &'static str> = daemons
        .iter()
        .map(|d| (d.spec.name.as_str(), d.spec.strategy_label()))
        .collect();
    let mut groups: BTreeMap<&'static str, Vec<Course<'_>>> = BTreeMap::new();
    for (id, course) in history.courses() {
        let Some(member) = history.state.members.get(&id) else {
            continue;
        };
        let label = strategy_of
            .get(member.name.as_str())
            .copied()
            .unwrap_or("heuristic");
        groups.entry(label).or_default().push((course, member));
    }
    if groups.len() < 2 {
        return String::new();
    }
    let mut out = format!(
        "{:<13} {:>6} {:>9} {:>10} {:>8} {:>5} {:>6} {:>8}\n",
        "strategy", "agents", "completed", "turnaround", "waiting", "lies", "trust", "credits"
    );
    for (label, group) in groups {
        let n = group.len() as f64;
        let courses: Vec<(u64, u64)> = group.iter().filter_map(|(c, _)| *c).collect();
        let mean = |pick: fn(&(u64, u64)) -> u64| {
            if courses.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{:.1}",
                    courses.iter().map(pick).sum::<u64>() as f64 / courses.len() as f64
                )
            }
        };
        out.push_str(&format!(
            "{:<13} {:>6} {:>9} {:>10} {:>8} {:>5} {:>6.3} {:>8.0}\n",
            label,
            group.len(),
            courses.len(),
            mean(|c| c.0),
            mean(|c| c.1),
            group.iter().map(|(_, m)| m.offences.lies).sum::<u32>(),
            group.iter().map(|(_, m)| f64::from(m.trust)).sum::<f64>() / n / 1e6,
            group.iter().map(|(_, m)| m.credits as f64).sum::<f64>() / n,
        ));
    }
    out
}

fn phase_timeout_ms(args: &SwarmArgs) -> u64 {
    args.phase_timeout_ms
        .unwrap_or_else(|| crate::cli::default_phase_timeout_ms(&args.strategy))
}

/// Waits until a child listens; returns its first address and its HTTP address.
async fn wait_for_listen(daemon: &mut Daemon) -> Result<(String, Option<String>)> {
    let started = Instant::now();
    loop {
        if let Some(status) = read_status(&daemon.dir) {
            if let Some(address) = status.listen.first() {
                return Ok((address.clone(), status.http));
            }
        }
        if let Some(exit) = daemon.child.try_wait()? {
            bail!(
                "daemon {} exited during start ({exit}); see {}",
                daemon.spec.name,
                daemon.dir.join("daemon.log").display()
            );
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("daemon {} did not start listening", daemon.spec.name);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_status(dir: &Path) -> Option<NodeStatus> {
    let bytes = std::fs::read(DataDir::status_path_of(dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Live progress: a redrawn line on a terminal, a line per change otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: std::cell::RefCell<String>,
    /// The latest final round any daemon reported, and its winner.
    latest: std::cell::RefCell<Option<(u64, Option<String>)>>,
    /// Whether the agents ask a model (the line then counts its fallbacks).
    asks_model: bool,
}

/// What the progress line says of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AgentProgress {
    name: String,
    state: AgentState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AgentState {
    Starting,
    /// Slots of its job done so far, and the round whose slot it executes now, if any.
    Running {
        slots_done: u32,
        burst: u32,
        executing: Option<u64>,
    },
    Done,
    Exited(String),
}

/// What the progress line means, printed once before it.
const PROGRESS_LEGEND: &str =
    "progress: the latest final round and its winner, then each agent's slots done of its job \
(\"running round R\": executing now the slot it won in round R; slots run one after the other, \
so the slot running now was decided a round or more earlier; \"done\": its job complete and its \
leave final)";

/// What the summary's columns mean, printed under it.
const SUMMARY_LEGEND: &str = "turnaround: rounds from joining to the end of its last slot; \
waiting: turnaround less its slots; trust: public trust from the record, 0.5 at the start, \
halved by each proven offence down to 0.005 (1% bid power); offences: proven lies, withheld or \
bad reveals, equivocations and broken pledges (docs/PROTOCOL.md sections 4-5)";

/// One progress line: the latest final round and its winner, the model's fallbacks so far
/// (`llm`, when the agents ask one), then each agent.
fn progress_line(
    latest: Option<&(u64, Option<String>)>,
    llm: Option<LlmCounts>,
    agents: &[AgentProgress],
) -> String {
    let mut head = match latest {
        None => "founding the swarm".to_string(),
        Some((round, Some(winner))) => format!("round {round} final, won by {winner}"),
        Some((round, None)) => format!("round {round} final, no winner"),
    };
    if let Some(llm) = llm {
        head.push_str(&format!(
            ", LLM fallbacks {} of {}",
            llm.fallbacks, llm.calls
        ));
        if llm.breaker_open > 0 {
            head.push_str(&format!(" ({} with the breaker open)", llm.breaker_open));
        }
    }
    let parts: Vec<String> = agents
        .iter()
        .map(|a| match &a.state {
            AgentState::Starting => format!("{} starting", a.name),
            AgentState::Running {
                slots_done,
                burst,
                executing,
            } => match executing {
                Some(round) => format!("{} {slots_done}/{burst} (running round {round})", a.name),
                None => format!("{} {slots_done}/{burst}", a.name),
            },
            AgentState::Done => format!("{} done", a.name),
            AgentState::Exited(exit) => format!("{} {exit}", a.name),
        })
        .collect();
    format!("{head} | {}", parts.join(", "))
}

impl Progress {
    fn new(asks_model: bool) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        eprintln!("{PROGRESS_LEGEND}");
        Progress {
            bar,
            last: std::cell::RefCell::new(String::new()),
            latest: std::cell::RefCell::new(None),
            asks_model,
        }
    }

    /// Shows the progress of `daemons`; returns the latest final round.
    fn show(&self, daemons: &[Daemon]) -> Option<u64> {
        let mut llm = LlmCounts::default();
        let agents: Vec<AgentProgress> = daemons
            .iter()
            .map(|d| {
                let status = read_status(&d.dir);
                if let Some(status) = &status {
                    llm += status.llm;
                }
                if let Some(entry) = status.as_ref().and_then(|s| s.schedule.last()) {
                    let mut latest = self.latest.borrow_mut();
                    if latest
                        .as_ref()
                        .is_none_or(|(round, _)| entry.round > *round)
                    {
                        *latest = Some((entry.round, entry.winner.clone()));
                    }
                }
                let state = match (status, d.exit) {
                    (_, Some(exit)) if exit.success() => AgentState::Done,
                    (_, Some(exit)) => AgentState::Exited(exit.to_string()),
                    (Some(s), None) => AgentState::Running {
                        slots_done: s.burst - s.remaining,
                        burst: s.burst,
                        executing: s.executing,
                    },
                    (None, None) => AgentState::Starting,
                };
                AgentProgress {
                    name: d.spec.name.clone(),
                    state,
                }
            })
            .collect();
        let line = progress_line(
            self.latest.borrow().as_ref(),
            self.asks_model.then_some(llm),
            &agents,
        );
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => {
                if *self.last.borrow() != line {
                    eprintln!("{line}");
                    *self.last.borrow_mut() = line;
                }
            }
        }
        self.latest.borrow().as_ref().map(|(round, _)| *round)
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Quotes `text` for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, state: AgentState) -> AgentProgress {
        AgentProgress {
            name: name.into(),
            state,
        }
    }

    #[test]
    fn the_progress_line_names_the_latest_final_round_and_its_winner() {
        let agents = [
            agent(
                "A",
                AgentState::Running {
                    slots_done: 2,
                    burst: 5,
                    executing: None,
                },
            ),
            agent(
                "B",
                AgentState::Running {
                    slots_done: 3,
                    burst: 5,
                    executing: Some(6),
                },
            ),
            agent("C", AgentState::Done),
        ];
        assert_eq!(
            progress_line(Some(&(7, Some("A".into()))), None, &agents),
            "round 7 final, won by A | A 2/5, B 3/5 (running round 6), C done"
        );
        assert_eq!(
            progress_line(None, None, &agents[2..]),
            "founding the swarm | C done"
        );
        let llm = LlmCounts {
            calls: 40,
            fallbacks: 12,
            clamped: 1,
            breaker_open: 9,
        };
        assert_eq!(
            progress_line(Some(&(3, None)), Some(llm), &agents[2..]),
            "round 3 final, no winner, LLM fallbacks 12 of 40 (9 with the breaker open) | C done"
        );
    }
}
