//! Readiness (docs/design/cold-start.md I8, "Readiness"): a leader is known and this node
//! has applied what the cluster had committed when it started.

use std::sync::atomic::Ordering;
use std::time::Duration;

use brisk_storage::LogIndex;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::RaftMetrics;

use super::RaftNode;
use crate::types::{index_of, TypeConfig};

impl RaftNode {
    /// I8: ready once a leader is known and this node has applied (within `ready_lag`
    /// entries) the cluster's commit index as the leader reported it after this start.
    pub fn is_ready(&self) -> bool {
        self.is_ready_at(&self.metrics())
    }

    /// Waits until [`is_ready`](Self::is_ready) says `ready`. Readiness follows the Raft
    /// metrics (the leader, the applied index), so this wakes on their changes; the node's own
    /// flags (recovering, draining) and the learned target are re-read at least every
    /// `recheck`.
    pub async fn wait_readiness(&self, ready: bool, recheck: Duration) {
        let mut metrics = self.raft.metrics();
        while self.is_ready() != ready {
            let _ = tokio::time::timeout(recheck, metrics.changed()).await;
        }
    }

    /// [`is_ready`](Self::is_ready) as of the metrics `m`.
    pub fn is_ready_at(&self, m: &RaftMetrics<TypeConfig>) -> bool {
        let applied = index_of(m.last_applied.as_ref());
        if m.current_leader.is_none()
            || self.recovering.load(Ordering::SeqCst)
            || self.draining.load(Ordering::SeqCst)
        {
            return false;
        }
        match self.ready_target(m) {
            Some(target) => target.entries_since(applied) <= self.config.ready_lag,
            None => false,
        }
    }

    /// The readiness target if already learned (learning it is [`is_ready`]'s business).
    ///
    /// [`is_ready`]: Self::is_ready
    pub fn learned_ready_target(&self) -> Option<LogIndex> {
        self.ready_target.get().copied()
    }

    /// The readiness target, learned now if a leader has reported the cluster's commit index
    /// (see the field's docs). Called only with a leader known.
    pub(super) fn ready_target(&self, m: &RaftMetrics<TypeConfig>) -> Option<LogIndex> {
        if let Some(t) = self.ready_target.get() {
            return Some(*t);
        }
        let cluster = LogIndex(m.cluster_committed.as_ref()?.index);
        Some(
            *self
                .ready_target
                .get_or_init(|| cluster.max(self.start_commit_index)),
        )
    }
}
