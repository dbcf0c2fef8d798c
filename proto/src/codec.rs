//! The one place that knows the wire encoding.
//!
//! Every wire and ledger type derives serde; this module turns them into bytes with
//! bincode 2.0.1 (standard configuration: little-endian, variable-length integers) and back.
//! Swapping the encoding means changing this file only. Decoding is bounded (an explicit
//! maximum input length, and a hard allocation limit inside bincode), exact (trailing
//! bytes are an error) and canonical: a value must come in the one encoding `encode` gives
//! it (bincode alone also accepts, for example, a small integer in a longer varint form), so
//! one message has one byte string, one id and one signature input.

use bincode::config::{self, Configuration, LittleEndian, Varint};
use serde::{de::DeserializeOwned, Serialize};

/// No single decode may claim more memory than this, whatever the input says.
const ALLOCATION_LIMIT: usize = 1 << 24;

type WireConfig = Configuration<LittleEndian, Varint, config::Limit<ALLOCATION_LIMIT>>;

const WIRE: WireConfig = config::standard().with_limit::<ALLOCATION_LIMIT>();

/// Why bytes could not be turned back into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the caller allows.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The caller's limit.
        max: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A valid value was followed by extra bytes.
    #[error("{extra} trailing bytes after a complete value")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// The bytes decode, but are not the value's canonical encoding.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// The value decoded but breaks a field limit.
    #[error("field {field} out of bounds: {reason}")]
    OutOfBounds {
        /// The offending field.
        field: &'static str,
        /// What limit it broke.
        reason: String,
    },
}

/// Encodes a value. Encoding our own in-memory types into a `Vec` cannot fail: every type
/// on the wire has a known length and no custom serializer returns errors.
#[allow(clippy::expect_used)]
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, WIRE)
        .expect("encoding slotmesh types into a Vec is infallible")
}

/// Decodes exactly one value from `bytes`, which must be at most `max_len` bytes long
/// and must contain nothing after the value.
pub fn decode<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, WIRE)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_trailing_bytes() {
        let bytes = encode(&(7u64, String::from("x")));
        assert_eq!(decode::<(u64, String)>(&bytes, 64), Ok((7, "x".into())));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode::<(u64, String)>(&longer, 64),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
        assert!(matches!(
            decode::<(u64, String)>(&bytes, 1),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn only_the_canonical_encoding_decodes() {
        // Found by the `payload` fuzz target: 68 as a u16 behind the 2-byte varint marker.
        assert_eq!(
            decode::<u16>(&[0xfb, 0x44, 0x00], 8),
            Err(DecodeError::NonCanonical)
        );
        assert_eq!(decode::<u16>(&[0x44], 8), Ok(68));
    }

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        // A Vec<u8> claiming u64::MAX elements.
        let mut bytes = vec![255u8];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Vec<u8>>(&bytes, 64),
            Err(DecodeError::Malformed(_))
        ));
    }
}
