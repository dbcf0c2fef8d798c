//! The slotmesh daemon crate: strategies, the simulator, and (in later versions) the
//! networked daemon. The `slotmesh` binary (`main.rs`) is a thin command line over it.

pub mod sim;
pub mod strategy;
