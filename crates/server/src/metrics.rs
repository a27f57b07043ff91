//! The `/metrics` page: the recorder every crate's counters and histograms go to, plus the
//! node's Raft status read at scrape time.
//!
//! Names follow Prometheus conventions (base units in the name, `_total` on counters, no
//! sentinel values): a status that is unknown, such as the leader during an election, is left
//! out of the page rather than written as -1.

use std::fmt::Write;

use anyhow::{Context, Result};
use brisk_raft::RaftNode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use openraft::ServerState;

/// Installs the process-wide recorder and describes every metric the crates emit.
pub fn install() -> Result<PrometheusHandle> {
    // Latency metrics as Prometheus histograms (the exporter renders summaries otherwise).
    let latency_buckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency_buckets)
        .context("configuring histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    brisk_raft::metrics::describe();
    brisk_redis::describe_metrics();
    Ok(handle)
}

/// The whole page: the recorder's series, then the status gauges read from the node now.
pub fn render(node: &RaftNode, prometheus: &PrometheusHandle) -> String {
    let mut page = prometheus.render();
    if !page.is_empty() && !page.ends_with('\n') {
        page.push('\n');
    }
    render_status(node, &mut page);
    page
}

fn render_status(node: &RaftNode, out: &mut String) {
    let m = node.metrics();
    let g = format!("group=\"{}\"", node.config().group);
    gauge_header(
        out,
        "brisk_build_info",
        "The running binary: version and commit.",
    );
    line(
        out,
        "brisk_build_info",
        &format!(
            "version=\"{}\",commit=\"{}\"",
            env!("CARGO_PKG_VERSION"),
            env!("BRISK_COMMIT")
        ),
        1,
    );
    gauge_header(out, "brisk_raft_term", "The Raft term this node is in.");
    line(out, "brisk_raft_term", &g, m.current_term);
    gauge_header(
        out,
        "brisk_raft_state",
        "The node's Raft role, as a state set: exactly one state is 1.",
    );
    for (state, name) in [
        (ServerState::Learner, "learner"),
        (ServerState::Follower, "follower"),
        (ServerState::Candidate, "candidate"),
        (ServerState::Leader, "leader"),
        (ServerState::Shutdown, "shutdown"),
    ] {
        let labels = format!("{g},state=\"{name}\"");
        line(
            out,
            "brisk_raft_state",
            &labels,
            u64::from(m.state == state),
        );
    }
    gauge_header(
        out,
        "brisk_raft_has_leader",
        "1 when this node knows a leader for the term, else 0.",
    );
    line(
        out,
        "brisk_raft_has_leader",
        &g,
        u64::from(m.current_leader.is_some()),
    );
    if let Some(leader) = m.current_leader {
        gauge_header(
            out,
            "brisk_raft_leader_id",
            "The id of the leader this node knows (absent while there is none).",
        );
        line(out, "brisk_raft_leader_id", &g, leader);
    }
    let indexes = [
        (
            "brisk_raft_commit_index",
            "The highest log index this node knows to be committed.",
            m.local_committed.map(|l| l.index),
        ),
        (
            "brisk_raft_applied_index",
            "The highest log index applied to the state machine.",
            m.last_applied.map(|l| l.index),
        ),
        (
            "brisk_raft_last_log_index",
            "The highest log index in this node's log.",
            m.last_log_index,
        ),
        (
            "brisk_raft_snapshot_index",
            "The log index the latest snapshot covers.",
            m.snapshot.map(|l| l.index),
        ),
        (
            "brisk_raft_purged_index",
            "The highest log index purged from the log.",
            m.purged.map(|l| l.index),
        ),
    ];
    // An index the node does not have yet (no entry, no snapshot) is left out.
    for (name, help, index) in indexes {
        if let Some(index) = index {
            gauge_header(out, name, help);
            line(out, name, &g, index);
        }
    }
    gauge_header(
        out,
        "brisk_ready",
        "1 when the node serves linearizable reads (what /readyz reports), else 0.",
    );
    line(out, "brisk_ready", &g, u64::from(node.is_ready_at(&m)));
    gauge_header(
        out,
        "brisk_hlc_ceiling_timestamp_seconds",
        "The applied upper bound of the leader lease's clock, as a Unix time.",
    );
    let ceiling_ms = node.kv().hlc().ceiling_ms();
    let _ = writeln!(
        out,
        "brisk_hlc_ceiling_timestamp_seconds{{{g}}} {}",
        ceiling_ms as f64 / 1000.0
    );
    if let Ok(store) = node.kv().store() {
        gauge_header(
            out,
            "brisk_rocksdb_sst_bytes",
            "Approximate bytes of the state machine's SST files on disk.",
        );
        line(
            out,
            "brisk_rocksdb_sst_bytes",
            &g,
            store.approximate_size_bytes(),
        );
    }
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn line(out: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}
