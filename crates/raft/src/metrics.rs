//! Descriptions of the metrics this crate records, for the `/metrics` page's HELP lines.
//!
//! Series that belong to one Raft group carry a `group` label (one group today, "0").

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

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
}
