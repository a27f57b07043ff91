//! The metrics this crate records: their names, HELP text and labels, in one place.
//!
//! Every series belongs to one Raft group and carries it as the `group` label (a node runs
//! one group today, "0"); [`GroupMetrics`] holds a group's handles, registered once.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};

use crate::gate::GateReport;
use crate::types::GroupId;

/// One Raft group's metric handles.
#[derive(Clone)]
pub struct GroupMetrics {
    group: String,
    pub applied_entries: Counter,
    pub apply_seconds: Histogram,
    pub proposals: Counter,
    pub proposals_failed: Counter,
    pub log_fsync_seconds: Histogram,
    pub log_group_commit_size: Histogram,
    /// Log entries read back (to apply, to replicate) from the in-memory tail or from disk.
    pub log_entries_read_memory: Counter,
    pub log_entries_read_disk: Counter,
    /// Background fsyncs of the state machine's WAL that failed (applying stops after one).
    pub fsm_wal_sync_failures: Counter,
    pub snapshots_built: Counter,
    pub snapshots_installed: Counter,
    pub snapshots_repaired: Counter,
    pub snapshot_corruption_in_live_store: Counter,
    pub snapshot_receptions_in_progress: Gauge,
    /// Read indexes this node asked of the leader, and the follower reads they served.
    pub follower_read_rounds: Counter,
    pub follower_reads: Counter,
}

impl GroupMetrics {
    pub fn new(group: GroupId) -> Self {
        let g = group.to_string();
        GroupMetrics {
            applied_entries: counter!("brisk_applied_entries_total", "group" => g.clone()),
            apply_seconds: histogram!("brisk_apply_seconds", "group" => g.clone()),
            proposals: counter!("brisk_proposals_total", "group" => g.clone()),
            proposals_failed: counter!("brisk_proposals_failed_total", "group" => g.clone()),
            log_fsync_seconds: histogram!("brisk_raft_log_fsync_seconds", "group" => g.clone()),
            log_group_commit_size: histogram!(
                "brisk_raft_log_group_commit_size",
                "group" => g.clone()
            ),
            log_entries_read_memory: counter!(
                "brisk_raft_log_entries_read_total",
                "group" => g.clone(),
                "from" => "memory"
            ),
            log_entries_read_disk: counter!(
                "brisk_raft_log_entries_read_total",
                "group" => g.clone(),
                "from" => "disk"
            ),
            fsm_wal_sync_failures: counter!(
                "brisk_fsm_wal_sync_failures_total",
                "group" => g.clone()
            ),
            snapshots_built: counter!("brisk_snapshots_built_total", "group" => g.clone()),
            snapshots_installed: counter!(
                "brisk_snapshots_installed_total",
                "group" => g.clone()
            ),
            snapshots_repaired: counter!("brisk_snapshots_repaired_total", "group" => g.clone()),
            snapshot_corruption_in_live_store: counter!(
                "brisk_snapshot_corruption_in_live_store_total",
                "group" => g.clone()
            ),
            snapshot_receptions_in_progress: gauge!(
                "brisk_snapshot_receptions_in_progress",
                "group" => g.clone()
            ),
            follower_read_rounds: counter!(
                "brisk_follower_read_index_requests_total",
                "group" => g.clone()
            ),
            follower_reads: counter!("brisk_follower_reads_total", "group" => g.clone()),
            group: g,
        }
    }

    /// Records the cold-start gate's decision for this start.
    pub fn record_gate(&self, g: &GateReport) {
        let group = self.group.clone();
        counter!(
            "brisk_cold_start_total",
            "group" => group.clone(),
            "outcome" => g.outcome.as_str(),
            "reason" => g.reason.as_str()
        )
        .increment(1);
        gauge!("brisk_cold_start_applied_index_gap", "group" => group.clone())
            .set(g.applied_index_gap() as f64);
        // The applied index of the store the node serves from (after a restore: X); absent
        // for a store that never applied an entry.
        if let Some(applied) = g.served_applied_index {
            gauge!("brisk_cold_start_applied_index", "group" => group.clone())
                .set(applied.get() as f64);
        }
        for (phase, d) in [
            ("open", g.open),
            ("gate", g.gate),
            ("verify", g.verify),
            ("restore", g.restore),
        ] {
            self.cold_start_phase(phase, d);
        }
    }

    /// Records how long one phase of this start took.
    pub fn cold_start_phase(&self, phase: &'static str, took: Duration) {
        gauge!("brisk_cold_start_phase_seconds", "group" => self.group.clone(), "phase" => phase)
            .set(took.as_secs_f64());
    }

    /// Records a cold-start verification check that failed.
    pub fn verify_failed(&self, check: &'static str) {
        counter!(
            "brisk_cold_start_verify_failed_total",
            "group" => self.group.clone(),
            "check" => check
        )
        .increment(1);
    }
}

/// Registers the HELP text and unit of every metric recorded in this crate.
pub fn describe() {
    describe_counter!(
        "brisk_applied_entries_total",
        "Raft log entries applied to the state machine."
    );
    describe_histogram!(
        "brisk_apply_seconds",
        Unit::Seconds,
        "Time to apply one run of committed entries in one write batch."
    );
    describe_counter!(
        "brisk_proposals_total",
        "Commands this node proposed to Raft as leader."
    );
    describe_counter!(
        "brisk_proposals_failed_total",
        "Proposals that failed (not leader, quorum lost, shutting down)."
    );
    describe_histogram!(
        "brisk_raft_log_fsync_seconds",
        Unit::Seconds,
        "Time to make one group commit of log entries durable."
    );
    describe_histogram!(
        "brisk_raft_log_group_commit_size",
        "Log appends made durable by one fsync."
    );
    describe_counter!(
        "brisk_raft_log_entries_read_total",
        "Raft log entries read back to apply or replicate, from the in-memory tail or from disk."
    );
    describe_counter!(
        "brisk_fsm_wal_sync_failures_total",
        "Background fsyncs of the state machine's WAL that failed; applying stops after one."
    );
    describe_counter!(
        "brisk_snapshots_built_total",
        "Snapshots this node built from its state machine."
    );
    describe_counter!(
        "brisk_snapshots_installed_total",
        "Snapshots received from the leader and installed."
    );
    describe_counter!(
        "brisk_snapshots_repaired_total",
        "Corrupt snapshot files replaced with verified copies."
    );
    describe_counter!(
        "brisk_snapshot_corruption_in_live_store_total",
        "Checksum failures found in the live store while building or serving a snapshot."
    );
    describe_gauge!(
        "brisk_snapshot_receptions_in_progress",
        "Snapshots being received from a leader right now."
    );
    describe_counter!(
        "brisk_follower_reads_total",
        "Linearizable reads this node served as a follower, after applying the leader's read index."
    );
    describe_counter!(
        "brisk_follower_read_index_requests_total",
        "Read indexes this node asked of the leader (concurrent follower reads share one)."
    );
    describe_counter!(
        "brisk_cold_start_total",
        "Starts of this process by the cold-start gate's outcome and reason (one per start)."
    );
    describe_counter!(
        "brisk_cold_start_verify_failed_total",
        "Cold-start verification checks that failed, by check."
    );
    describe_gauge!(
        "brisk_cold_start_applied_index",
        "The applied index of the store the node serves from after the gate."
    );
    describe_gauge!(
        "brisk_cold_start_applied_index_gap",
        "Log entries the start had to replay: committed index minus stored applied index."
    );
    describe_gauge!(
        "brisk_cold_start_phase_seconds",
        Unit::Seconds,
        "Duration of each phase of the last start: open, gate, verify, restore, replay, ready."
    );
}
