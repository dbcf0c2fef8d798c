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
    Sim,
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
