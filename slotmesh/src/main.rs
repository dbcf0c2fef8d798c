//! The `slotmesh` binary: parses the command line, sets up logging, dispatches.

mod cli;
mod daemon_command;
mod swarm_command;

mod sim_command;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::ExecGuard { command } => return slotmesh_node::job::run_guard(command),
        Command::Burn { cpu_ms, progress } => {
            return slotmesh_node::job::burn(*cpu_ms, progress.as_deref())
        }
        _ => {}
    }
    init_logging(cli.log_format);
    match run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("slotmesh: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    // gossipsub warns about every re-sent message, which the engine does by design;
    // async-openai warns about every server error it retries, which the llm strategy counts
    // and logs once per decision.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,libp2p_gossipsub::behaviour=error,async_openai=error")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Keygen(args) if args.swarm_key => {
            let key = slotmesh_node::write_swarm_key(&args.out)?;
            println!("swarm key fingerprint: {}", key.fingerprint());
            println!(
                "(written to {}; copy it to every node of the swarm)",
                args.out.display()
            );
            Ok(())
        }
        Command::Keygen(args) => {
            let identity = slotmesh_node::keys::generate(&args.out)?;
            println!("agent id: {}", identity.id().to_hex());
            println!(
                "(identity key written to {}; one per node, never copied)",
                args.out.display()
            );
            Ok(())
        }
        Command::Daemon(args) => daemon_command::run(args),
        Command::Swarm(args) => swarm_command::run(args),
        Command::Status(args) => status(&args),
        Command::Verify(args) => {
            let verdict = slotmesh::history::verify(&args.dirs);
            println!("{}", verdict.line);
            if !verdict.ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Sim(args) => sim_command::run(&args),
        // Internal commands are answered in `main`, before logging starts.
        Command::ExecGuard { .. } | Command::Burn { .. } => Ok(()),
        Command::Report(args) => {
            let history = slotmesh::report::write(&args.dirs, &args.out)?;
            println!(
                "report of {} rounds: {} and {}",
                history.rounds.len(),
                args.out.join("index.html").display(),
                args.out.join("summary.txt").display()
            );
            Ok(())
        }
    }
}

fn status(args: &cli::StatusArgs) -> Result<()> {
    let (bytes, source) = match &args.http {
        Some(text) => {
            let address = slotmesh::http::parse_http_addr(text).map_err(anyhow::Error::msg)?;
            (
                slotmesh::http::http_get(address, "/status")?,
                format!("http://{address}/status"),
            )
        }
        None => {
            let path = slotmesh_node::DataDir::status_path_of(&args.data_dir);
            let bytes = std::fs::read(&path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read {} ({e}): is a daemon running with --data-dir {}?",
                    path.display(),
                    args.data_dir.display()
                )
            })?;
            (bytes, path.display().to_string())
        }
    };
    let status: slotmesh_node::NodeStatus = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{source} does not parse: {e}"))?;
    if args.json {
        println!("{}", String::from_utf8_lossy(&bytes));
        return Ok(());
    }
    println!(
        "{} ({})  round {} {}  job {}/{}{}  peers {}{}",
        status.name,
        status.peer_id,
        status.round,
        status.phase,
        status.burst - status.remaining,
        status.burst,
        status
            .executing
            .map_or(String::new(), |r| format!("  executing slot of round {r}")),
        status.peers,
        match (status.done, status.remaining) {
            (true, 0) => "  (finished)",
            // Ended with work left: never joined, interrupted, or failed by the swarm.
            (true, _) => "  (stopped)",
            (false, _) => "",
        }
    );
    if status.strategy == "llm" || status.strategy == "replay" {
        println!(
            "strategy {}: LLM calls {}, fallbacks {}, corrected {}, breaker open {}",
            status.strategy,
            status.llm.calls,
            status.llm.fallbacks,
            status.llm.clamped,
            status.llm.breaker_open
        );
    }
    println!(
        "{:<10} {:<10} {:>8} {:>8} {:>6} {:>6}",
        "member", "status", "trust", "credits", "slots", "claim"
    );
    for m in &status.members {
        println!(
            "{:<10} {:<10} {:>8.3} {:>8} {:>6} {:>6}",
            m.name,
            m.status.to_lowercase(),
            f64::from(m.trust_ppm) / 1e6,
            m.credits,
            m.used_slots,
            m.last_claim.map_or("-".into(), |c| c.to_string())
        );
    }
    Ok(())
}
