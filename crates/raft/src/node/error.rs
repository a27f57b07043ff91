//! Why a node did not start, and why a proposal or a read did not happen here.

use std::io;
use std::path::{Path, PathBuf};

use brisk_storage::StorageError;
use openraft::errors::{Fatal, InitializeError, RaftError};

use crate::gate::GateError;
use crate::recovery::LogResetRefused;
use crate::types::{NodeId, TypeConfig};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("raft log store at {path}: {source}")]
    LogStore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The cold-start gate's blocking task panicked or was cancelled.
    #[error("the cold-start gate did not finish: {0}")]
    GateTask(#[source] tokio::task::JoinError),
    #[error("state machine store: {0}")]
    Store(#[from] StorageError),
    /// The state machine could not load its membership or applied index from the store.
    #[error("state machine: {0}")]
    StateMachine(#[source] io::Error),
    #[error("raft configuration: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("raft: {0}")]
    Raft(#[from] Fatal<TypeConfig>),
    #[error("raft: bootstrap: {0}")]
    Bootstrap(#[source] RaftError<TypeConfig, InitializeError<TypeConfig>>),
    #[error("cannot rejoin the cluster with a new data directory: {0}")]
    Rejoin(#[from] LogResetRefused),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Why a proposal or a linearizable read did not happen here.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    /// Nothing was applied; retrying is safe.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The entry may or may not commit; retrying may apply it twice.
    #[error("outcome unknown: {0}")]
    Indeterminate(String),
    #[error("membership change rejected: {0}")]
    Membership(String),
    #[error("raft stopped: {0}")]
    Fatal(String),
}

impl NodeError {
    /// Maps an error of the Raft log store at `path` to [`NodeError::LogStore`].
    pub(super) fn log_store(path: &Path) -> impl Fn(io::Error) -> NodeError + '_ {
        move |source| NodeError::LogStore {
            path: path.to_path_buf(),
            source,
        }
    }
}
