//! Why a node did not start, and why a proposal or a read did not happen here.

use std::path::{Path, PathBuf};

use crate::gate::GateError;
use crate::types::NodeId;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("raft log store at {path}: {detail}")]
    LogStore { path: PathBuf, detail: String },
    #[error("state machine: {0}")]
    StateMachine(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("cannot rejoin the cluster with a new data directory: {0}")]
    Rejoin(String),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a proposal or a linearizable read did not happen here.
#[derive(Debug, thiserror::Error)]
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
    pub(super) fn log_store(path: &Path) -> impl Fn(std::io::Error) -> NodeError + '_ {
        move |e| NodeError::LogStore {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    }
}
