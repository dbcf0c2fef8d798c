//! The ledger file format, sans-IO: how final rounds are framed on disk and read back.
//!
//! Layout: the 8-byte magic `SLMLEDG9` (the digit is the protocol version) and the 32-byte swarm id, then one record per final
//! round: `len: u32 LE`, `crc32(payload): u32 LE`, `payload` (a [`FinalRound`] in the wire
//! encoding). [`parse`] tells a torn tail (the last record incomplete or failing its
//! checksum: a crash while appending) from corruption (a bad record with data after it).

use crate::codec::DecodeError;
use crate::finality::FinalRound;
use crate::ids::SwarmId;
use crate::wire::Limits;

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"SLMLEDG9";
/// The magic of ledgers written by earlier protocol versions (refused with
/// [`LedgerFileError::OldVersion`]).
const OLD_MAGICS: [&[u8; 8]; 8] = [
    b"SLMLEDG1",
    b"SLMLEDG2",
    b"SLMLEDG3",
    b"SLMLEDG4",
    b"SLMLEDG5",
    b"SLMLEDG6",
    b"SLMLEDG7",
    b"SLMLEDG8",
];
/// Length of the file header (magic and swarm id).
pub const FILE_HEADER_LEN: usize = MAGIC.len() + 32;
const RECORD_HEADER_LEN: usize = 8;

/// Why bytes are not a usable ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerFileError {
    /// The magic or the swarm id is missing.
    #[error("not a slotmesh ledger (bad magic)")]
    NotALedger,
    /// A ledger written by an earlier protocol version.
    #[error(
        "ledger of protocol version {0}; this build speaks version {current}: move the data \
         dir aside and start again (the swarm's certificates changed)",
        current = crate::wire::PROTOCOL_VERSION
    )]
    OldVersion(u8),
    /// A record with data after it is damaged.
    #[error("record at byte {offset} is damaged ({reason}) and is not the last one")]
    Corrupt {
        /// Offset of the damaged record.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// A parsed ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLedger {
    /// The swarm it belongs to.
    pub swarm: SwarmId,
    /// The records, in file order.
    pub records: Vec<FinalRound>,
    /// Length of the good prefix (header and whole, valid records).
    pub good_len: usize,
    /// Why the bytes after `good_len` (a torn last record) were left out, if there are any.
    pub torn_tail: Option<String>,
}

/// The file header of a ledger of `swarm`.
pub fn file_header(swarm: SwarmId) -> Vec<u8> {
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&swarm.0);
    header
}

/// One record, framed for appending. `None` if it exceeds 4 GiB.
pub fn frame(record: &FinalRound) -> Option<Vec<u8>> {
    let payload = record.encode();
    let len = u32::try_from(payload.len()).ok()?;
    let mut framed = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    framed.extend_from_slice(&payload);
    Some(framed)
}

/// Reads a whole ledger file.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<ParsedLedger, LedgerFileError> {
    let (Some(magic), Some(id)) = (
        bytes.get(..MAGIC.len()),
        bytes.get(MAGIC.len()..FILE_HEADER_LEN),
    ) else {
        return Err(LedgerFileError::NotALedger);
    };
    if let Some(old) = OLD_MAGICS.iter().find(|m| magic == m.as_slice()) {
        return Err(LedgerFileError::OldVersion(old[7] - b'0'));
    }
    if magic != MAGIC {
        return Err(LedgerFileError::NotALedger);
    }
    let mut swarm = [0u8; 32];
    swarm.copy_from_slice(id);
    let mut records = Vec::new();
    let mut offset = FILE_HEADER_LEN;
    let mut torn_tail = None;
    while offset < bytes.len() {
        match read_record(&bytes[offset..], limits) {
            Ok((record, used)) => {
                records.push(record);
                offset += used;
            }
            Err(RecordError::Torn(reason)) | Err(RecordError::Damaged { reason, last: true }) => {
                torn_tail = Some(reason);
                break;
            }
            Err(RecordError::Damaged {
                reason,
                last: false,
            }) => return Err(LedgerFileError::Corrupt { offset, reason }),
        }
    }
    Ok(ParsedLedger {
        swarm: SwarmId(swarm),
        records,
        good_len: offset,
        torn_tail,
    })
}

enum RecordError {
    /// The bytes end inside the record.
    Torn(String),
    /// The record is complete but wrong; `last` if nothing follows it.
    Damaged { reason: String, last: bool },
}

fn read_record(bytes: &[u8], limits: &Limits) -> Result<(FinalRound, usize), RecordError> {
    let Some(header) = bytes.get(..RECORD_HEADER_LEN) else {
        return Err(RecordError::Torn(format!(
            "{} bytes of an 8-byte record header",
            bytes.len()
        )));
    };
    let mut len_bytes = [0u8; 4];
    let mut crc_bytes = [0u8; 4];
    len_bytes.copy_from_slice(&header[..4]);
    crc_bytes.copy_from_slice(&header[4..]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    let end = RECORD_HEADER_LEN.saturating_add(len);
    let Some(payload) = bytes.get(RECORD_HEADER_LEN..end) else {
        return Err(RecordError::Torn(format!(
            "record of {len} bytes, {} present",
            bytes.len() - RECORD_HEADER_LEN
        )));
    };
    let last = end == bytes.len();
    if crc32fast::hash(payload) != u32::from_le_bytes(crc_bytes) {
        return Err(RecordError::Damaged {
            reason: "checksum mismatch".into(),
            last,
        });
    }
    let record =
        FinalRound::decode(payload, limits).map_err(|e: DecodeError| RecordError::Damaged {
            reason: format!("checksum good but record does not decode: {e}"),
            last,
        })?;
    Ok((record, end))
}
