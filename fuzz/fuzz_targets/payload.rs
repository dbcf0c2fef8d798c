//! The signed body of an envelope: a message with any payload, decoded and validated
//! against the limits without a signature in the way.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slotmesh_proto::{codec, Limits, Message, Payload};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(message) = codec::decode::<Message>(data, limits.max_message_bytes) {
        let _ = message.validate(&limits);
        // Whatever decodes encodes back to the same bytes (the encoding is canonical).
        assert_eq!(codec::encode(&message), data);
    }
    let _ = codec::decode::<Payload>(data, limits.max_message_bytes);
});
