//! The final rounds the simulator keeps: the last few, served to replicas that fall behind,
//! and, with `sim --out`, every round written to a ledger file as the run goes.
//!
//! The kept rounds are held as the replicas hold them ([`CertifiedRound`]: shared, verified
//! messages, not yet encoded), so a run that never sends a record never signs one. A round
//! is encoded as a ledger record ([`FinalRound`], which signs its messages) when a replica
//! fetches it or when it is written: as it leaves the window, or at the end of the run.

use slotmesh_proto::ledger_file::{file_header, frame};
use slotmesh_proto::{CertifiedRound, FinalRound, SwarmId};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The kept final rounds, and the ledger file they are written to.
#[derive(Debug, Default)]
pub(super) struct Archive {
    held: BTreeMap<u64, CertifiedRound>,
    /// Rounds held; older ones are dropped (after being written).
    window: u64,
    ledger: Option<Ledger>,
    /// The first failure to write the ledger (writing stops there).
    error: Option<ArchiveError>,
}

/// Why `sim --out` could not write its ledger.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArchiveError {
    /// The file system refused.
    #[error("cannot write {}: {cause}", path.display())]
    Write {
        /// The ledger file.
        path: PathBuf,
        /// The cause (in the message: the report carries the message alone).
        cause: std::io::Error,
    },
    /// A record too large for the ledger's framing.
    #[error("round {round} is over 4 GiB")]
    TooLarge {
        /// The round.
        round: u64,
    },
}

#[derive(Debug)]
struct Ledger {
    path: PathBuf,
    file: BufWriter<File>,
}

impl Archive {
    /// Keeps the last `window` rounds; writes every round to a new ledger file of `swarm` at
    /// `ledger`, if given.
    pub(super) fn new(window: u64, ledger: Option<&Path>, swarm: SwarmId) -> Archive {
        let mut archive = Archive {
            window: window.max(1),
            ..Archive::default()
        };
        if let Some(path) = ledger {
            let opened = File::create(path).and_then(|file| {
                let mut file = BufWriter::new(file);
                file.write_all(&file_header(swarm))?;
                Ok(file)
            });
            match opened {
                Ok(file) => {
                    archive.ledger = Some(Ledger {
                        path: path.to_path_buf(),
                        file,
                    })
                }
                Err(cause) => archive.fail(ArchiveError::Write {
                    path: path.to_path_buf(),
                    cause,
                }),
            }
        }
        archive
    }

    /// Keeps `certified`, the newest final round.
    pub(super) fn insert(&mut self, certified: CertifiedRound) {
        self.held.insert(certified.round(), certified);
        while self.held.len() as u64 > self.window {
            if let Some((_, oldest)) = self.held.pop_first() {
                self.write(&oldest);
            }
        }
    }

    /// The record of `round`, as a peer would send it, if kept.
    pub(super) fn record(&self, round: u64) -> Option<FinalRound> {
        self.held.get(&round).map(CertifiedRound::record)
    }

    /// The oldest round kept.
    pub(super) fn first_round(&self) -> Option<u64> {
        self.held.keys().next().copied()
    }

    /// Writes the rounds still held and closes the ledger file: `Err` says what was not
    /// written.
    pub(super) fn finish(mut self) -> Result<(), ArchiveError> {
        for certified in std::mem::take(&mut self.held).into_values() {
            self.write(&certified);
        }
        if let Some(mut ledger) = self.ledger.take() {
            if let Err(cause) = ledger.file.flush() {
                self.fail(ArchiveError::Write {
                    path: ledger.path,
                    cause,
                });
            }
        }
        self.error.map_or(Ok(()), Err)
    }

    fn write(&mut self, certified: &CertifiedRound) {
        let Some(ledger) = self.ledger.as_mut() else {
            return;
        };
        let written = match frame(&certified.record()) {
            Some(bytes) => ledger
                .file
                .write_all(&bytes)
                .map_err(|cause| ArchiveError::Write {
                    path: ledger.path.clone(),
                    cause,
                }),
            None => Err(ArchiveError::TooLarge {
                round: certified.round(),
            }),
        };
        if let Err(error) = written {
            self.ledger = None;
            self.fail(error);
        }
    }

    fn fail(&mut self, error: ArchiveError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }
}
