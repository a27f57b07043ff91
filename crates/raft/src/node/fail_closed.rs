//! The start-up branch of the fail-closed recovery and of the replaced-disk rejoin
//! (docs/design/cold-start.md I5, "Fail-closed recovery and the replaced-disk rejoin"), and
//! the watch that ends a recovery once the node holds what it may have helped commit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use brisk_storage::{LogIndex, Store};

use super::{NodeConfig, NodeError, RaftNode};
use crate::fault;
use crate::gate::{self, GateError, GateReport};
use crate::layout::DataLayout;
use crate::log_store::LogStore;
use crate::metrics::GroupMetrics;
use crate::recovery;
use crate::snapshot::{SnapshotError, SnapshotStore};
use crate::types::index_of;

/// What the gate found: the snapshot to restore from failed verification.
pub(super) struct FailedVerification {
    pub check: &'static str,
    pub source: SnapshotError,
    /// The commit index this node's log recorded.
    pub start_commit_index: LogIndex,
    /// The target of a recovery a crash interrupted, if any.
    pub unfinished_recovery: Option<LogIndex>,
}

/// I5: never serve from what failed verification. Rejoins empty if a leader can send a
/// fresh snapshot (the returned store is empty, the target the index to apply before voting
/// again), else refuses to start with the verification error.
pub(super) async fn recover(
    config: &NodeConfig,
    layout: &DataLayout,
    snapshots: &SnapshotStore,
    log: &LogStore,
    failed: FailedVerification,
) -> Result<(Store, GateReport, LogIndex), NodeError> {
    let FailedVerification {
        check,
        source,
        start_commit_index,
        unfinished_recovery,
    } = failed;
    GroupMetrics::new(config.group).verify_failed(check);
    let peers = recovery::peers(layout, snapshots, config.id, &config.peers);
    let leader_last = if peers.is_empty() {
        None
    } else {
        recovery::prepare_rejoin(
            &config.connector,
            &peers,
            &config.peers,
            config.id,
            Duration::from_secs(10),
        )
        .await
    };
    let Some(leader_last) = leader_last else {
        return Err(GateError::Verification { check, source }.into());
    };
    tracing::error!(
        check,
        error = %source,
        "snapshot failed verification; quarantining the state machine and re-fetching state from the leader"
    );
    let x = snapshots
        .read_pointer()
        .ok()
        .flatten()
        .map_or(LogIndex::ZERO, |(_, t)| t.index);
    // Every entry this node helped commit is in the current leader's log (leader
    // completeness), so the leader's last index covers whatever its vote could
    // otherwise betray; its own uncommitted tail is not waited for (it may never
    // commit).
    let target = [
        x,
        start_commit_index,
        leader_last,
        unfinished_recovery.unwrap_or(LogIndex::ZERO),
    ]
    .into_iter()
    .max()
    .unwrap_or(LogIndex::ZERO);
    log.reset_for_recovery(target)
        .map_err(NodeError::log_store(&layout.raft_log()))?;
    let (store, quarantine) = recovery::quarantine_and_reset(layout)?;
    tracing::warn!(path = %quarantine.display(), "unverifiable state machine moved aside");
    fault::crash_point(fault::RECOVERY_BEFORE_CATCH_UP);
    let report = GateReport {
        outcome: gate::Outcome::Restore,
        reason: gate::Reason::VerifyFailed,
        applied_index: None,
        served_applied_index: None,
        snapshot_index: Some(x),
        open: Duration::ZERO,
        gate: Duration::ZERO,
        verify: Duration::ZERO,
        restore: Duration::ZERO,
    };
    Ok((store, report, target))
}

/// A new data directory for a member of a running cluster: its disk was replaced. It may
/// have acknowledged entries before; with an empty log it must neither vote nor serve until
/// it holds them again, exactly like the fail-closed recovery (I5). A cluster being
/// bootstrapped reports no log yet: then this is a new member (None).
pub(super) async fn rejoin_replaced_member(
    config: &NodeConfig,
    layout: &DataLayout,
    log: &LogStore,
) -> Result<Option<LogIndex>, NodeError> {
    let Some(target) =
        recovery::replaced_member_target(&config.connector, &config.peers, config.id).await?
    else {
        return Ok(None);
    };
    tracing::warn!(
        target = target.get(),
        "new data directory for a member of a running cluster (replaced disk): rejoining; not voting or serving until index {target} is applied"
    );
    log.reset_for_recovery(target)
        .map_err(NodeError::log_store(&layout.raft_log()))?;
    Ok(Some(target))
}

/// Resumes a recovery a crash interrupted: the leader (perhaps another one by now) must
/// accept once more that this node's log went backwards; without a leader the node waits in
/// recovery all the same.
pub(super) async fn resume(
    config: &NodeConfig,
    layout: &DataLayout,
    snapshots: &SnapshotStore,
    target: LogIndex,
) {
    tracing::warn!(
        target = target.get(),
        "resuming an unfinished recovery: not voting, campaigning or serving reads until index {target} is applied"
    );
    let peers = recovery::peers(layout, snapshots, config.id, &config.peers);
    if recovery::prepare_rejoin(
        &config.connector,
        &peers,
        &config.peers,
        config.id,
        Duration::from_secs(5),
    )
    .await
    .is_none()
    {
        tracing::warn!("no leader accepted the resumed recovery yet");
    }
}

impl RaftNode {
    /// Ends recovery once the node has applied past the snapshot it could not verify and
    /// the commit index it knew: from then on it votes and campaigns again.
    pub(super) fn spawn_recovery_watch(self: &Arc<Self>, target: LogIndex) {
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                let m = node.metrics();
                if m.running_state.is_err() {
                    return;
                }
                let applied = index_of(m.last_applied.as_ref());
                // Besides the recorded target, the cluster's commit index as a leader reported
                // it after this start: the target may have been learned from peers that lag
                // behind entries this node helped commit.
                let caught_up = m.current_leader.is_some()
                    && node
                        .ready_target(&m)
                        .is_some_and(|cluster| applied >= target.max(cluster));
                if caught_up {
                    // The marker goes first (fsynced), then the node votes again; if removing
                    // it fails, the node keeps refusing and tries again.
                    if let Err(e) = node.log.finish_recovery() {
                        tracing::warn!(error = %e, "could not clear the recovery marker; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    node.recovering.store(false, Ordering::SeqCst);
                    node.raft.runtime_config().elect(true);
                    tracing::info!(
                        applied = applied.get(),
                        target = target.get(),
                        "recovered from the leader; voting again"
                    );
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
}
