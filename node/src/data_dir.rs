//! A daemon's data directory: what is in it and how each file is written. The file names
//! are named here only ([`files`]).
//!
//! - `identity.key`: the agent's ed25519 secret (generated on first start, mode 0600);
//! - `ledger.log`: certified final rounds ([`crate::ledger`]);
//! - `memory.json`: the strategy's memory, rewritten after each final round;
//! - `spoken-round`: the last round this agent sent a message in, written and flushed before
//!   the first send of each round, so that a restarted daemon never sends a second, different
//!   message for a round it already spoke in (that would be equivocation);
//! - `agreement-sent`: the promises, proposals and votes this daemon sent (its agent's, and
//!   those it passed on as justifications) in the last round it sent any in, rewritten and
//!   flushed before each is sent, so that a daemon restarted in that round resumes its part
//!   in the round's agreement where it left it (an acceptor that forgot a promise or a vote
//!   could contradict it);
//! - `status.json`: what the daemon is doing, rewritten as it changes (read by `slotmesh
//!   swarm` and `slotmesh status`);
//! - `llm-record.jsonl` (with `--strategy llm` or `replay:`): every question to the model and
//!   its answer, bounded in size (`slotmesh_llm::record`);
//! - `peers.json`: the addresses of the other members it has known ([`crate::peers`]), so a
//!   restarted daemon finds the swarm again when its `--peer` node is gone;
//! - `lock`: held while a daemon runs, so two daemons never share one directory.
//!
//! Small files are replaced atomically (write a temporary file, flush, rename).

use crate::error::{NodeError, Result};
use slotmesh_proto::{codec, open_envelope, Envelope, Limits, SignedMessage, SwarmId};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The names of the files in a data dir (and in a simulation's `--out`, which holds a
/// ledger too).
pub mod files {
    /// The agent's identity key.
    pub const IDENTITY_KEY: &str = "identity.key";
    /// The certified final rounds.
    pub const LEDGER: &str = "ledger.log";
    /// The strategy's memory.
    pub const MEMORY: &str = "memory.json";
    /// The last round the agent spoke in.
    pub const SPOKEN_ROUND: &str = "spoken-round";
    /// The promises, proposals and votes sent in the last round that had any.
    pub const AGREEMENT_SENT: &str = "agreement-sent";
    /// What the daemon is doing.
    pub const STATUS: &str = "status.json";
    /// The model exchanges of an `llm` or `replay` agent.
    pub const LLM_RECORD: &str = slotmesh_llm::record::RECORD_FILE;
    /// Held while a daemon runs.
    pub const LOCK: &str = "lock";
    /// Addresses of the other members this daemon has known.
    pub const PEERS: &str = "peers.json";
}

/// Bound on the `agreement-sent` file: a round's promises, proposals and votes of both
/// stages with the justifications passed on, far beyond what a round reaches.
const MAX_AGREEMENT_SENT_BYTES: usize = 64 << 20;

/// An open, locked data directory.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates `root` if needed and locks it.
    pub fn open(root: &Path) -> Result<DataDir> {
        std::fs::create_dir_all(root)
            .map_err(|e| NodeError::file("cannot create data dir", root, e))?;
        let lock_path = root.join(files::LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| NodeError::file("cannot write in data dir", root, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(NodeError::DataDirInUse(root.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(NodeError::file("cannot lock", lock_path, e))
            }
        }
        Ok(DataDir {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The identity key file.
    pub fn key_path(&self) -> PathBuf {
        self.root.join(files::IDENTITY_KEY)
    }

    /// The ledger file.
    pub fn ledger_path(&self) -> PathBuf {
        self.root.join(files::LEDGER)
    }

    /// The peer book file.
    pub fn peers_path(&self) -> PathBuf {
        self.root.join(files::PEERS)
    }

    /// The memory file.
    pub fn memory_path(&self) -> PathBuf {
        self.root.join(files::MEMORY)
    }

    /// The status file of a data dir (also readable without opening it).
    pub fn status_path_of(root: &Path) -> PathBuf {
        root.join(files::STATUS)
    }

    /// The last round this agent spoke in before, if it ever did.
    pub fn spoken_round(&self) -> Result<Option<u64>> {
        let path = self.root.join(files::SPOKEN_ROUND);
        match std::fs::read_to_string(&path) {
            Ok(text) => match text.trim().parse() {
                Ok(round) => Ok(Some(round)),
                Err(_) => Err(NodeError::Malformed {
                    path,
                    problem: "does not hold a round number".into(),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NodeError::file("cannot read", path, e)),
        }
    }

    /// Records, durably, that this agent speaks in `round`.
    pub fn set_spoken_round(&self, round: u64) -> Result<()> {
        self.replace(files::SPOKEN_ROUND, round.to_string().as_bytes())
    }

    /// The promises, proposals and votes the daemon sent in the last round it sent any in,
    /// oldest first, each verified; `None` if the data dir holds no such record (it
    /// predates it: the restart guard then keeps the agent out of that round's agreement).
    pub fn agreement_sent(
        &self,
        swarm: SwarmId,
        limits: &Limits,
    ) -> Result<Option<Vec<SignedMessage>>> {
        let path = self.root.join(files::AGREEMENT_SENT);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NodeError::file("cannot read", path, e)),
        };
        let malformed = |problem: String| NodeError::Malformed {
            path: path.clone(),
            problem,
        };
        let envelopes: Vec<Envelope> = codec::decode(&bytes, MAX_AGREEMENT_SENT_BYTES)
            .map_err(|e| malformed(format!("does not decode: {e}")))?;
        let messages = envelopes
            .into_iter()
            .map(|envelope| {
                open_envelope(envelope, swarm, limits)
                    .map_err(|e| malformed(format!("holds a message that does not open: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(messages))
    }

    /// Stores, durably, the promises, proposals and votes sent in one round (oldest first)
    /// before the last of them is sent.
    pub fn set_agreement_sent(&self, sent: &[Envelope]) -> Result<()> {
        self.replace(files::AGREEMENT_SENT, &codec::encode(&sent))
    }

    /// Replaces the file `name` with `bytes`, atomically and durably.
    pub fn replace(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write_atomically(name, bytes, true)
    }

    /// Replaces the file `name` with `bytes` atomically, without waiting for the disk
    /// (for files that are rewritten often and rebuilt after a crash, like the status).
    pub fn replace_quietly(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write_atomically(name, bytes, false)
    }

    fn write_atomically(&self, name: &str, bytes: &[u8], durable: bool) -> Result<()> {
        let path = self.root.join(name);
        let temp = self.root.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            if durable {
                file.sync_data()?;
            }
            std::fs::rename(&temp, &path)
        };
        write().map_err(|e| NodeError::file("cannot write", path, e))
    }
}

/// The promises, proposals and votes a daemon sent in its latest round that had any, as
/// stored in `agreement-sent`.
#[derive(Debug, Default)]
pub(crate) struct AgreementSent {
    round: u64,
    sent: Vec<Envelope>,
}

impl AgreementSent {
    /// What was stored before a restart: `sent`, of `round`.
    pub(crate) fn new(round: u64, sent: Vec<Envelope>) -> AgreementSent {
        AgreementSent { round, sent }
    }

    /// Stores a promise, proposal or vote (the agent's own, or one it passes on as part of
    /// a justification) with the others sent in its round, durably, before it is sent; a
    /// re-send is stored already, and turns are not stored.
    pub(crate) fn store(&mut self, data: &DataDir, message: &SignedMessage) -> Result<()> {
        if message.payload().stage().is_none() {
            return Ok(());
        }
        let envelope = message.envelope();
        if self.round != message.round() {
            self.round = message.round();
            self.sent.clear();
        }
        if self.sent.contains(&envelope) {
            return Ok(());
        }
        self.sent.push(envelope);
        data.set_agreement_sent(&self.sent)
    }
}
