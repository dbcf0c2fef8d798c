//! The slotmesh daemon crate: the agent's mind and strategies, the networked node (libp2p),
//! the ledger file and its history, and the simulator. The `slotmesh` binary (`main.rs`) is a thin command line over it.

pub mod agent;
pub mod history;
pub mod http;
pub mod job;
pub mod keys;
pub mod ledger;
pub mod node;
pub mod report;
pub mod sim;
pub mod strategy;
