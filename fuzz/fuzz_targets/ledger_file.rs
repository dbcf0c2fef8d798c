//! A ledger file as found on disk after any crash or corruption.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slotmesh_proto::{ledger_file, Limits};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = ledger_file::parse(data, &Limits::default()) {
        assert!(parsed.good_len <= data.len());
        assert_eq!(parsed.torn_tail.is_some(), parsed.good_len < data.len());
    }
});
