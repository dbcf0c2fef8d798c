//! The ledger file on disk: an append-only log of certified final rounds, one record each,
//! in the format of [`slotmesh_proto::ledger_file`]. A record is written with one
//! `write_all` and flushed to disk (`sync_data`) before the round counts as stored.
//!
//! On open, a last record that is incomplete or fails its checksum is a torn write from a
//! crash: it is cut off (the file is truncated to the last good record) and reported, never
//! accepted. A bad record followed by more data is corruption, not a torn tail: opening
//! fails with the offset, and nothing is truncated.

use slotmesh_proto::ledger_file::{self, LedgerFileError};
use slotmesh_proto::{FinalRound, Limits, SwarmId};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the ledger could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The file system refused.
    #[error("ledger {path}: {cause}")]
    Io {
        /// The ledger file.
        path: PathBuf,
        /// The cause (in the message, so not also a source: printed once).
        cause: std::io::Error,
    },
    /// The bytes are not a usable ledger.
    #[error("ledger {path}: {cause}; refusing to guess")]
    Format {
        /// The ledger file.
        path: PathBuf,
        /// What is wrong (in the message, so not also a source: printed once).
        cause: LedgerFileError,
    },
    /// The ledger belongs to another swarm.
    #[error(
        "ledger {0}: belongs to another swarm (use another data dir, or the same --swarm name)"
    )]
    OtherSwarm(PathBuf),
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
    /// Opens (or creates) the ledger of `swarm` at `path`, reading every record and cutting
    /// off a torn last record.
    pub fn open(
        path: &Path,
        swarm: SwarmId,
        limits: &Limits,
    ) -> Result<(Ledger, Loaded), LedgerError> {
        let io = |cause| LedgerError::Io {
            path: path.to_path_buf(),
            cause,
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
            bytes = ledger_file::file_header(swarm);
            file.write_all(&bytes)
                .and_then(|()| file.sync_data())
                .map_err(io)?;
        }
        let loaded = parse(path, &bytes, limits)?;
        if loaded.swarm != swarm {
            return Err(LedgerError::OtherSwarm(path.to_path_buf()));
        }
        if loaded.dropped_tail_bytes > 0 {
            let good = bytes.len() as u64 - loaded.dropped_tail_bytes;
            file.set_len(good)
                .and_then(|()| file.sync_data())
                .map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok((
            Ledger {
                path: path.to_path_buf(),
                file,
            },
            loaded,
        ))
    }

    /// Reads the records of a ledger without changing the file (for `verify` and reports).
    /// A torn last record is left out and counted, as on open.
    pub fn read(path: &Path, limits: &Limits) -> Result<Loaded, LedgerError> {
        let bytes = std::fs::read(path).map_err(|cause| LedgerError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        parse(path, &bytes, limits)
    }

    /// Appends a record and flushes it to disk.
    pub fn append(&mut self, record: &FinalRound) -> Result<(), LedgerError> {
        let io = |cause| LedgerError::Io {
            path: self.path.clone(),
            cause,
        };
        let framed = ledger_file::frame(record)
            .ok_or_else(|| io(std::io::Error::other("record larger than 4 GiB")))?;
        self.file
            .write_all(&framed)
            .and_then(|()| self.file.sync_data())
            .map_err(io)
    }
}

fn parse(path: &Path, bytes: &[u8], limits: &Limits) -> Result<Loaded, LedgerError> {
    let parsed = ledger_file::parse(bytes, limits).map_err(|cause| LedgerError::Format {
        path: path.to_path_buf(),
        cause,
    })?;
    if let Some(reason) = &parsed.torn_tail {
        tracing::warn!(
            ledger = %path.display(),
            offset = parsed.good_len,
            bytes = bytes.len() - parsed.good_len,
            %reason,
            "a torn last ledger record (a crash while writing) is dropped"
        );
    }
    Ok(Loaded {
        swarm: parsed.swarm,
        records: parsed.records,
        dropped_tail_bytes: (bytes.len() - parsed.good_len) as u64,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use slotmesh_proto::{CheckpointCertificate, Digest, Stage};

    fn record(round: u64) -> FinalRound {
        FinalRound {
            round,
            messages: Vec::new(),
            seal: None,
            certificate: CheckpointCertificate {
                round,
                stage: Stage::Outcome,
                digest: Digest([round as u8; 32]),
                attempt: 0,
                votes: Vec::new(),
                justification: Vec::new(),
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
        middle[ledger_file::FILE_HEADER_LEN + 9] ^= 1;
        std::fs::write(&path, &middle).unwrap();
        assert!(matches!(
            Ledger::open(&path, swarm, &limits),
            Err(LedgerError::Format {
                cause: LedgerFileError::Corrupt { .. },
                ..
            })
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
