//! The ledger file: an append-only log of certified final rounds, one record each.
//!
//! Layout: an 8-byte magic `SLMLEDG1` and the 32-byte swarm id, then records of `len: u32 LE`, `crc32(payload): u32 LE`
//! and `payload` (a [`FinalRound`] in the wire encoding). A record is written with one
//! `write_all` and flushed to disk (`sync_data`) before the round counts as stored.
//!
//! On open, a last record that is incomplete or fails its checksum is a torn write from a
//! crash: it is cut off (the file is truncated to the last good record) and reported, never
//! accepted. A bad record followed by more data is corruption, not a torn tail: opening
//! fails with the offset, and nothing is truncated.

use slotmesh_proto::{FinalRound, Limits, SwarmId};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SLMLEDG1";
const FILE_HEADER: usize = MAGIC.len() + 32;
const HEADER: usize = 8;

/// Why the ledger could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The file system refused.
    #[error("ledger {path}: {source}")]
    Io {
        /// The ledger file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a slotmesh ledger.
    #[error("ledger {0}: not a slotmesh ledger (bad magic)")]
    NotALedger(PathBuf),
    /// The ledger belongs to another swarm.
    #[error(
        "ledger {0}: belongs to another swarm (use another data dir, or the same --swarm name)"
    )]
    OtherSwarm(PathBuf),
    /// A record in the middle of the file is damaged.
    #[error("ledger {path}: record at byte {offset} is damaged ({reason}) and is not the last one; refusing to guess")]
    Corrupt {
        /// The ledger file.
        path: PathBuf,
        /// Offset of the damaged record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// What opening the ledger found.
#[derive(Debug)]
pub struct Loaded {
    /// The swarm the ledger belongs to.
    pub swarm: SwarmId,
    /// The records, in file order.
    pub records: Vec<FinalRound>,
    /// Bytes of a torn last record that were cut off (0: the file was clean).
    pub dropped_tail_bytes: u64,
}

/// An open ledger, positioned for appending.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path`, reading every record and cutting off a torn
    /// last record.
    pub fn open(
        path: &Path,
        swarm: SwarmId,
        limits: &Limits,
    ) -> Result<(Ledger, Loaded), LedgerError> {
        let io = |source| LedgerError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        if bytes.is_empty() {
            bytes.extend_from_slice(MAGIC);
            bytes.extend_from_slice(&swarm.0);
            file.write_all(&bytes)
                .and_then(|()| file.sync_data())
                .map_err(io)?;
        }
        if read_swarm(&bytes, path)? != swarm {
            return Err(LedgerError::OtherSwarm(path.to_path_buf()));
        }
        let mut records = Vec::new();
        let mut offset = FILE_HEADER;
        let mut dropped_tail_bytes = 0;
        while offset < bytes.len() {
            match read_record(&bytes[offset..], limits) {
                Ok((record, used)) => {
                    records.push(record);
                    offset += used;
                }
                Err(RecordError::Torn(reason))
                | Err(RecordError::Damaged { reason, last: true }) => {
                    tracing::warn!(
                        ledger = %path.display(),
                        offset,
                        bytes = bytes.len() - offset,
                        %reason,
                        "dropping a torn last ledger record"
                    );
                    dropped_tail_bytes = (bytes.len() - offset) as u64;
                    file.set_len(offset as u64)
                        .and_then(|()| file.sync_data())
                        .map_err(io)?;
                    break;
                }
                Err(RecordError::Damaged {
                    reason,
                    last: false,
                }) => {
                    return Err(LedgerError::Corrupt {
                        path: path.to_path_buf(),
                        offset: offset as u64,
                        reason,
                    })
                }
            }
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok((
            Ledger {
                path: path.to_path_buf(),
                file,
            },
            Loaded {
                swarm,
                records,
                dropped_tail_bytes,
            },
        ))
    }

    /// Reads the records of a ledger without changing the file (for `verify` and reports).
    /// A torn last record is left out and counted, as on open.
    pub fn read(path: &Path, limits: &Limits) -> Result<Loaded, LedgerError> {
        let bytes = std::fs::read(path).map_err(|source| LedgerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let swarm = read_swarm(&bytes, path)?;
        let mut records = Vec::new();
        let mut offset = FILE_HEADER;
        while offset < bytes.len() {
            match read_record(&bytes[offset..], limits) {
                Ok((record, used)) => {
                    records.push(record);
                    offset += used;
                }
                Err(RecordError::Torn(_)) | Err(RecordError::Damaged { last: true, .. }) => break,
                Err(RecordError::Damaged {
                    reason,
                    last: false,
                }) => {
                    return Err(LedgerError::Corrupt {
                        path: path.to_path_buf(),
                        offset: offset as u64,
                        reason,
                    })
                }
            }
        }
        let dropped_tail_bytes = (bytes.len() - offset) as u64;
        Ok(Loaded {
            swarm,
            records,
            dropped_tail_bytes,
        })
    }

    /// Appends a record and flushes it to disk.
    pub fn append(&mut self, record: &FinalRound) -> Result<(), LedgerError> {
        let payload = record.encode();
        let mut framed = Vec::with_capacity(HEADER + payload.len());
        let len = u32::try_from(payload.len()).map_err(|_| LedgerError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("record larger than 4 GiB"),
        })?;
        framed.extend_from_slice(&len.to_le_bytes());
        framed.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        framed.extend_from_slice(&payload);
        self.file
            .write_all(&framed)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| LedgerError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

fn read_swarm(bytes: &[u8], path: &Path) -> Result<SwarmId, LedgerError> {
    match (
        bytes.get(..MAGIC.len()),
        bytes.get(MAGIC.len()..FILE_HEADER),
    ) {
        (Some(magic), Some(id)) if magic == MAGIC => {
            let mut swarm = [0u8; 32];
            swarm.copy_from_slice(id);
            Ok(SwarmId(swarm))
        }
        _ => Err(LedgerError::NotALedger(path.to_path_buf())),
    }
}

enum RecordError {
    /// The file ends inside the record.
    Torn(String),
    /// The record is complete but wrong; `last` if nothing follows it.
    Damaged { reason: String, last: bool },
}

fn read_record(bytes: &[u8], limits: &Limits) -> Result<(FinalRound, usize), RecordError> {
    let Some(header) = bytes.get(..HEADER) else {
        return Err(RecordError::Torn(format!(
            "{} bytes of an 8-byte header",
            bytes.len()
        )));
    };
    let mut len_bytes = [0u8; 4];
    let mut crc_bytes = [0u8; 4];
    len_bytes.copy_from_slice(&header[..4]);
    crc_bytes.copy_from_slice(&header[4..]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    let end = HEADER.saturating_add(len);
    let Some(payload) = bytes.get(HEADER..end) else {
        return Err(RecordError::Torn(format!(
            "record of {len} bytes, {} present",
            bytes.len() - HEADER
        )));
    };
    let last = end == bytes.len();
    if crc32fast::hash(payload) != u32::from_le_bytes(crc_bytes) {
        return Err(RecordError::Damaged {
            reason: "checksum mismatch".into(),
            last,
        });
    }
    let record = FinalRound::decode(payload, limits).map_err(|e| RecordError::Damaged {
        reason: format!("checksum good but record does not decode: {e}"),
        last,
    })?;
    Ok((record, end))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use slotmesh_proto::{CheckpointCertificate, Digest};

    fn record(round: u64) -> FinalRound {
        FinalRound {
            round,
            messages: Vec::new(),
            certificate: CheckpointCertificate {
                round,
                digest: Digest([round as u8; 32]),
                attempt: 0,
                votes: Vec::new(),
            },
        }
    }

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.log");
        let swarm = SwarmId::from_name("t");
        let limits = Limits::default();
        {
            let (mut ledger, loaded) = Ledger::open(&path, swarm, &limits).unwrap();
            assert!(loaded.records.is_empty());
            for round in 0..3 {
                ledger.append(&record(round)).unwrap();
            }
        }
        let full = std::fs::read(&path).unwrap();
        // Every possible torn tail: the file cut anywhere inside the last record.
        let last_len = 8 + record(2).encode().len();
        for cut in 1..last_len {
            std::fs::write(&path, &full[..full.len() - cut]).unwrap();
            let (_, loaded) = Ledger::open(&path, swarm, &limits).unwrap();
            assert_eq!(loaded.records, vec![record(0), record(1)], "cut {cut}");
            assert_eq!(loaded.dropped_tail_bytes, (last_len - cut) as u64);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len() as usize,
                full.len() - last_len,
                "the torn bytes are gone from the file"
            );
        }
        // A flipped byte in the last record: checksum mismatch, dropped.
        let mut flipped = full.clone();
        let n = flipped.len();
        flipped[n - 1] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let (mut ledger, loaded) = Ledger::open(&path, swarm, &limits).unwrap();
        assert_eq!(loaded.records.len(), 2);
        ledger.append(&record(2)).unwrap();
        drop(ledger);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            full,
            "appending after a cut is clean"
        );
        // A damaged record in the middle is corruption, and the file is left alone.
        let mut middle = full.clone();
        middle[FILE_HEADER + 9] ^= 1;
        std::fs::write(&path, &middle).unwrap();
        assert!(matches!(
            Ledger::open(&path, swarm, &limits),
            Err(LedgerError::Corrupt { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), middle);
        // Another swarm's ledger is refused.
        std::fs::write(&path, &full).unwrap();
        assert!(matches!(
            Ledger::open(&path, SwarmId::from_name("other"), &limits),
            Err(LedgerError::OtherSwarm(_))
        ));
        assert_eq!(Ledger::read(&path, &limits).unwrap().records.len(), 3);
    }
}
