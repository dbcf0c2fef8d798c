//! The `slotmesh` crate: what the command line serves beside the node and the simulator:
//! the verified history of ledgers (`verify`), the HTML report (`report`) and the daemon's
//! local HTTP endpoint (`--http`). The `slotmesh` binary (`main.rs`) is the command line.

pub mod history;
pub mod http;
pub mod report;
