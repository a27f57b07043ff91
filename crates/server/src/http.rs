//! HTTP endpoints: `/healthz` (alive), `/readyz` (I8), `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use brisk_raft::RaftNode;
use metrics_exporter_prometheus::PrometheusHandle;
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
    let applied = brisk_raft::types::index_of(m.last_applied.as_ref());
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
    crate::metrics::render(&s.node, &s.prometheus)
}
