//! The `slotmesh` binary: parses the command line, sets up logging, dispatches.

mod cli;
mod keys;
mod sim_command;

use anyhow::{bail, Result};
use clap::Parser;
use cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Keygen(args) => {
            let identity = keys::generate(&args.out)?;
            println!("{}", identity.id().to_hex());
            Ok(())
        }
        Command::Daemon | Command::Swarm | Command::Status | Command::Verify => {
            bail!("this command needs the networked daemon, which is not in this version yet")
        }
        Command::Sim(args) => sim_command::run(&args),
        Command::Report => {
            bail!("this command is not in this version yet")
        }
    }
}
