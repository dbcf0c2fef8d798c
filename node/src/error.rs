//! What can stop a node, each error naming what it was doing and on which file, address or
//! process. The binary prints the chain (`error: cause`), so no message repeats its cause.

use slotmesh_proto::FinalRoundError;
use std::path::PathBuf;

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A file or directory of the node could not be created, read or written.
    #[error("{action} {}", path.display())]
    File {
        /// What was being done ("cannot write", "cannot read key file", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another running daemon holds the data dir.
    #[error("data dir {} is in use by another running daemon", .0.display())]
    DataDirInUse(PathBuf),
    /// A file holds something other than what it must.
    #[error("{} {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it ("is not hex", ...).
        problem: String,
    },
    /// The ledger file cannot be used.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A record of the ledger does not verify against the state before it.
    #[error("ledger {} round {round} does not verify", path.display())]
    Unverified {
        /// The ledger file.
        path: PathBuf,
        /// The record's round.
        round: u64,
        /// Why it does not verify.
        #[source]
        source: FinalRoundError,
    },
    /// The strategy's record or replay could not be set up.
    #[error("cannot set up the strategy")]
    Strategy(#[source] slotmesh_llm::record::RecordError),
    /// The memory could not be encoded.
    #[error("cannot encode the memory")]
    Memory(#[source] serde_json::Error),
    /// The agent's key is not usable by libp2p.
    #[error("agent key is not a valid ed25519 secret")]
    Key(#[source] libp2p::identity::DecodingError),
    /// The network stack could not be built or started.
    #[error("{context}")]
    Network {
        /// What was being built.
        context: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A listen address could not be used.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: libp2p::Multiaddr,
        /// The root cause, in one sentence (libp2p's transport errors repeat their causes).
        reason: String,
    },
    /// A process of the `--exec` job (its shell, its guard) could not be started.
    #[error("{action}")]
    Process {
        /// What was being started.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The `--exec` job did not start as it must.
    #[error("{0}")]
    Job(String),
    /// `--founder` names founders, but not this agent.
    #[error("this agent ({0}) is not among the --founder ids; add its id or drop --founder")]
    NotAFounder(String),
    /// Another I/O failure (the event loop's own).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl NodeError {
    /// A listen address whose port is held by another daemon or program.
    pub fn port_in_use(address: libp2p::Multiaddr) -> NodeError {
        NodeError::Listen {
            address,
            reason: "the port is in use by another daemon or program".into(),
        }
    }

    /// A listen error on `address`: the root cause of `error`, said once.
    pub fn listen(
        address: libp2p::Multiaddr,
        error: &(dyn std::error::Error + 'static),
    ) -> NodeError {
        let mut root = error;
        while let Some(next) = root.source() {
            root = next;
        }
        let reason = root.to_string();
        NodeError::Listen { address, reason }
    }

    /// A file error: `action` on `path` failed with `source`.
    pub fn file(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> NodeError {
        NodeError::File {
            action,
            path: path.into(),
            source,
        }
    }

    /// A network error while `context`.
    pub fn network(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> NodeError {
        NodeError::Network {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// The node's result.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;
