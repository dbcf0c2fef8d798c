//! slotmesh-agent: an agent's private side, the same in the simulator and the daemon.
//!
//! - [`strategy`]: the [`Strategy`] interface and what it may see; [`decision`]: what it decides.
//! - [`heuristic`]: the personality-and-bias strategy; [`memory`]: what an agent remembers.
//! - [`model`]: the questions a strategy asks a model and the replies it judges.
//! - [`mind`]: one agent's job, strategy and nonces, answering the engine.
//! - [`host`]: one host's engine and minds and the rules between them, driven the same way
//!   by the daemon and the simulator.
//! - [`scenario`]: who takes part in a run (presets, seeded populations, `--mix`);
//!   [`scenario_file`]: the same written down in TOML; [`adversary`]: the attacks an
//!   adversary's decisions play.
//! - [`sys`]: wall-clock time and peak memory, for reports only.
//!
//! No network, no async runtime, no clock inside the decisions.

pub mod adversary;
pub mod decision;
pub mod heuristic;
pub mod host;
pub mod memory;
pub mod mind;
pub mod model;
pub mod scenario;
pub mod scenario_file;
pub mod strategy;
pub mod sys;

pub use decision::{Decision, DecisionKind};
pub use host::{Effect, HostDriver, HostError, HostRules, Input};
pub use mind::{Mind, Step};
pub use strategy::{Answer, Job, Strategy, View};
