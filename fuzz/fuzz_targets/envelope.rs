//! A received gossip or direct message: decode, verify, validate (every payload kind).
#![no_main]
use libfuzzer_sys::fuzz_target;
use slotmesh_proto::{open, Limits, SwarmId};

fuzz_target!(|data: &[u8]| {
    let _ = open(data, SwarmId::from_name("fuzz"), &Limits::default());
});
