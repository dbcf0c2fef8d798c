//! A final round fetched from a peer or read from a ledger: decode, then verify and apply it
//! to the genesis state.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slotmesh_proto::{FinalRound, LedgerState, Limits, SwarmId};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(record) = FinalRound::decode(data, &limits) {
        let _ = record.apply(&LedgerState::genesis(SwarmId::from_name("fuzz")), &limits);
    }
});
