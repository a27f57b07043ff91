//! A graceful stop: refuse new work, let proposals finish, hand leadership on.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openraft::async_runtime::watch::WatchReceiver;

use super::RaftNode;
use brisk_storage::LogIndex;

use crate::types::{index_of, NodeId};

impl RaftNode {
    /// The first half of a graceful stop: take no new client work (clients retry another
    /// member), let what was proposed apply, and if this node leads, hand leadership to the
    /// most caught-up voter and wait (within `patience`) until another node leads, so the
    /// cluster keeps serving without waiting for an election timeout. Returns the new
    /// leader, if leadership moved.
    pub async fn drain(&self, patience: Duration) -> Option<NodeId> {
        self.draining.store(true, Ordering::SeqCst);
        // A stopping node must not win an election (it would lead and refuse all work).
        self.raft.runtime_config().elect(false);
        let deadline = Instant::now() + patience;
        let mut rx = self.raft.metrics();
        // A leader's in-flight proposals finish (they commit or fail) before leadership
        // moves, so none of them is left with an unknown outcome by the transfer. What was
        // in its log when draining began is the bound: new proposals are refused from now
        // on, while a follower's log keeps growing with the leader's entries and it has no
        // proposals of its own to wait for.
        let started = self.metrics();
        if started.current_leader == Some(self.id()) {
            let last = LogIndex(started.last_log_index.unwrap_or(0));
            loop {
                let m = self.metrics();
                let applied = index_of(m.last_applied.as_ref());
                if applied >= last
                    || m.current_leader != Some(self.id())
                    || Instant::now() >= deadline
                {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
            }
        }
        let m = self.metrics();
        if m.current_leader != Some(self.id()) {
            return m.current_leader;
        }
        let target = m.replication.as_ref().and_then(|r| {
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            r.iter()
                .filter(|(id, _)| **id != self.id() && voters.contains(id))
                .max_by_key(|(_, matched)| matched.as_ref().map(|l| l.index))
                .map(|(id, _)| *id)
        });
        let to = target?;
        tracing::info!(to, "stopping: transferring leadership");
        // openraft sends the transfer once and the successor ignores it while its log is
        // behind: wait until it holds everything, and ask again until leadership moves.
        let mut asked_at: Option<Instant> = None;
        loop {
            let m = self.metrics();
            if let Some(l) = m.current_leader.filter(|l| *l != self.id()) {
                return Some(l);
            }
            if Instant::now() >= deadline {
                tracing::warn!("leadership did not move before the stop deadline");
                return None;
            }
            let last = m.last_log_index.unwrap_or(0);
            let caught_up = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&to).cloned().flatten())
                .is_some_and(|l| l.index >= last);
            let due = asked_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(200));
            if caught_up && due {
                if let Err(e) = self.raft.trigger().transfer_leader(to).await {
                    tracing::warn!(error = %e, "leadership transfer failed");
                    return None;
                }
                asked_at = Some(Instant::now());
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        // Nothing is applied any more: the last fsync of the state machine, then its
        // background thread is gone before the stores close.
        let sm = self.sm.clone();
        if tokio::task::spawn_blocking(move || sm.stop_background_sync())
            .await
            .is_err()
        {
            tracing::warn!("stopping the state machine's fsync thread failed");
        }
    }
}
