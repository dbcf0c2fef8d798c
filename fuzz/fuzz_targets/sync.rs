//! Requests and answers of the request–response protocol.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slotmesh_proto::{Limits, SyncRequest, SyncResponse};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = SyncRequest::decode(data);
    let _ = SyncResponse::decode(data, &limits);
});
