//! A brisk Raft node: the cold-start gate, the log, the state machine and openraft, wired.
//!
//! Starting it is `start` (the gate, then Raft) with the fail-closed recovery's branch in
//! `fail_closed`; the running node's work is `propose` (proposals and reads), `readiness`,
//! `follower_read` (linearizable reads on a follower), `lease` (the leader's HLC lease) and
//! `drain` (a graceful stop).

mod config;
mod drain;
mod error;
mod fail_closed;
mod follower_read;
mod lease;
mod propose;
mod readiness;
mod start;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brisk_kv::KvStateMachine;
use brisk_storage::LogIndex;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{RaftMetrics, ReadPolicy};

pub use config::{NodeConfig, DEFAULT_APPLY_SYNC_PERIOD};
pub use error::{NodeError, ProposeError};
pub use start::GatedNode;

use crate::gate::GateReport;
use crate::log_store::LogStore;
use crate::snapshot::SnapshotStore;
use crate::state_machine::SmShared;
use crate::types::{BriskRaft, NodeId, TypeConfig};

pub struct RaftNode {
    pub(crate) config: NodeConfig,
    pub(crate) raft: BriskRaft,
    pub(crate) sm: Arc<SmShared>,
    pub(crate) log: LogStore,
    pub(crate) gate: GateReport,
    /// The commit index this node knew when it started (its own, possibly unsynced
    /// `committed` record, or a recovery's target); a floor for the readiness target.
    pub(crate) start_commit_index: LogIndex,
    /// What readiness waits to apply (I8): the cluster's commit index as the leader first
    /// reported it after this start (at least `start_commit_index`). Learned from the leader,
    /// not from this node's own records, which an emptied or lagging node does not have.
    ready_target: std::sync::OnceLock<LogIndex>,
    pub(crate) started_at: Instant,
    /// When Raft started (after the gate): the replay phase runs from here to ready.
    pub(crate) raft_started: Instant,
    /// Set while the node rebuilds from the leader after a failed verification (I5): it
    /// neither votes nor campaigns.
    pub(crate) recovering: Arc<AtomicBool>,
    /// Set when a graceful stop begins: the node takes no new client work (see
    /// [`RaftNode::drain`]).
    draining: AtomicBool,
    /// Read indexes asked of the leader for linearizable reads served here as a follower.
    read_index: follower_read::ReadIndexRounds,
}

impl RaftNode {
    /// The node's configuration as it started.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The metric handles of the node's Raft group.
    pub fn group_metrics(&self) -> &crate::metrics::GroupMetrics {
        &self.sm.metrics
    }

    /// The openraft handle (membership changes, triggers, the metrics watch).
    pub fn raft(&self) -> &BriskRaft {
        &self.raft
    }

    /// The MVCC state machine this node applies to (reads go through it).
    pub fn kv(&self) -> &KvStateMachine {
        &self.sm.kv
    }

    /// This node's snapshot files (served to peers by the transport).
    pub fn snapshots(&self) -> &SnapshotStore {
        &self.sm.snapshots
    }

    /// Set while the node rebuilds from the leader (I5); the transport refuses votes then.
    pub fn recovering_flag(&self) -> Arc<AtomicBool> {
        self.recovering.clone()
    }

    /// What the cold-start gate decided at this start.
    pub fn gate(&self) -> &GateReport {
        &self.gate
    }

    /// When this node's process began.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// When Raft started, after the gate (the replay phase runs from here to ready).
    pub fn raft_started(&self) -> Instant {
        self.raft_started
    }

    pub fn metrics(&self) -> RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The current leader and its address, if known.
    pub fn leader(&self) -> (Option<NodeId>, Option<String>) {
        let m = self.metrics();
        let addr = m.current_leader.and_then(|l| {
            m.membership_config
                .membership()
                .get_node(&l)
                .map(|n| n.addr.clone())
        });
        (m.current_leader, addr)
    }

    /// How long after start this node refuses to vote: one leader lease under the lease
    /// read policy (see [`RaftTransportService::new`](crate::transport::RaftTransportService::new)),
    /// nothing otherwise.
    pub fn vote_grace(&self) -> Duration {
        match self.config.read_policy {
            ReadPolicy::LeaseRead => Duration::from_millis(self.config.election_max_ms),
            _ => Duration::ZERO,
        }
    }

    /// Resumes the background compactions paused for start-up (called once ready, I8).
    pub fn resume_compactions(&self) {
        if let Err(e) = self.log.resume_compactions() {
            tracing::warn!(error = %e, "could not resume raft log compactions");
        }
        match self.sm.kv.store().map(|s| s.resume_compactions()) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not resume state machine compactions"),
            Err(e) => tracing::warn!(error = %e, "could not resume state machine compactions"),
        }
    }
}
