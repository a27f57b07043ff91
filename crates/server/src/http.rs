//! HTTP endpoints: `/healthz` (alive), `/readyz` (I8), `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use brisk_raft::RaftNode;
use metrics_exporter_prometheus::PrometheusHandle;
use openraft::ServerState;
use tokio::net::TcpListener;

#[derive(Clone)]
struct HttpState {
    node: Arc<RaftNode>,
    prometheus: PrometheusHandle,
}

pub async fn serve(
    listener: TcpListener,
    node: Arc<RaftNode>,
    prometheus: PrometheusHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState { node, prometheus });
    let r = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "http server failed");
    }
}

async fn readyz(State(s): State<HttpState>) -> (StatusCode, String) {
    let m = s.node.metrics();
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
    if s.node.is_ready_at(&m) {
        (
            StatusCode::OK,
            format!("ready: leader {:?}, applied {applied}\n", m.current_leader),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: leader {:?}, applied {applied}, waiting for {}\n",
                m.current_leader,
                match s.node.learned_ready_target() {
                    Some(t) => t.to_string(),
                    None => "the leader's commit index".into(),
                }
            ),
        )
    }
}

async fn metrics_text(State(s): State<HttpState>) -> String {
    let node = &s.node;
    let m = node.metrics();
    let role = match m.state {
        ServerState::Learner => 0.0,
        ServerState::Follower => 1.0,
        ServerState::Candidate => 2.0,
        ServerState::Leader => 3.0,
        ServerState::Shutdown => 4.0,
    };
    metrics::gauge!("brisk_raft_term").set(m.current_term as f64);
    metrics::gauge!("brisk_raft_role").set(role);
    metrics::gauge!("brisk_raft_leader_id").set(m.current_leader.map(|l| l as f64).unwrap_or(-1.0));
    metrics::gauge!("brisk_raft_commit_index")
        .set(m.local_committed.map(|l| l.index).unwrap_or(0) as f64);
    metrics::gauge!("brisk_raft_applied_index")
        .set(m.last_applied.map(|l| l.index).unwrap_or(0) as f64);
    metrics::gauge!("brisk_raft_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!("brisk_raft_snapshot_index")
        .set(m.snapshot.map(|l| l.index).unwrap_or(0) as f64);
    metrics::gauge!("brisk_raft_purged_index").set(m.purged.map(|l| l.index).unwrap_or(0) as f64);
    metrics::gauge!("brisk_ready").set(if node.is_ready() { 1.0 } else { 0.0 });
    metrics::gauge!("brisk_hlc_ceiling_ms").set(node.kv().hlc().ceiling_ms() as f64);
    if let Ok(store) = node.kv().store() {
        metrics::gauge!("brisk_rocksdb_sst_bytes").set(store.approximate_size_bytes() as f64);
    }
    s.prometheus.render()
}
