//! GETs of a node's HTTP port (`/healthz`, `/readyz`, `/metrics`).

use std::time::Duration;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        // Always straight to the node: a proxy from the environment (HTTP_PROXY, ALL_PROXY)
        // must not stand between a harness and a loopback address.
        .proxy(None)
        .timeout_connect(Some(Duration::from_millis(500)))
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `path` on `addr` (HOST:PORT): the status code and body, or None when unreachable,
/// slow or unreadable.
pub fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut response = agent().get(format!("http://{addr}{path}")).call().ok()?;
    let code = response.status().as_u16();
    let body = response.body_mut().read_to_string().ok()?;
    Some((code, body))
}

/// GET `path` on `addr`: the status code only.
pub fn status(addr: &str, path: &str) -> Option<u16> {
    agent()
        .get(format!("http://{addr}{path}"))
        .call()
        .ok()
        .map(|r| r.status().as_u16())
}

/// Whether the node at `addr` answers `/readyz` with 200 (it serves linearizable reads).
pub fn ready(addr: &str) -> bool {
    status(addr, "/readyz") == Some(200)
}

/// [`status`] from async code, on the blocking pool.
pub async fn status_async(addr: &str, path: &str) -> Option<u16> {
    let (addr, path) = (addr.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || status(&addr, &path))
        .await
        .ok()
        .flatten()
}
