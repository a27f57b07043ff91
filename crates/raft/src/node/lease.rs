//! The leader's HLC lease: fence the clock on becoming leader, then keep the durable
//! ceiling ahead of the wall clock by proposing renewals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brisk_kv::hlc::wall_clock_ms;
use brisk_kv::Command;
use openraft::ServerState;

use super::RaftNode;

impl RaftNode {
    /// The leader's lease loop (design: HLC). On becoming leader it waits until everything
    /// committed before its term is applied, fences its clock above the previous durable
    /// ceiling, then keeps the ceiling `window` ahead of its wall clock.
    pub fn spawn_lease_task(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            let tick = Duration::from_millis(50);
            let renew_every = Duration::from_millis(node.config.lease_interval_ms);
            let mut last_renewal: Option<(u64, Instant)> = None;
            loop {
                tokio::time::sleep(tick).await;
                let m = node.metrics();
                if m.running_state.is_err() || m.state == ServerState::Shutdown {
                    return;
                }
                if m.state != ServerState::Leader {
                    continue;
                }
                let term = m.current_term;
                let hlc = node.sm.kv.hlc();
                if hlc.fenced_term() != Some(term) {
                    if node.read_barrier().await.is_err() {
                        continue;
                    }
                    hlc.fence_for_term(term, hlc.ceiling_ms());
                    tracing::info!(
                        term,
                        ceiling_ms = hlc.ceiling_ms(),
                        "leader clock fenced above previous ceiling"
                    );
                }
                let due = match last_renewal {
                    Some((t, at)) => t != term || at.elapsed() >= renew_every,
                    None => true,
                };
                if !due {
                    continue;
                }
                let ceiling_ms = wall_clock_ms().max(hlc.ceiling_ms()) + node.config.hlc_window_ms;
                match node.propose(Command::LeaseRenewal { ceiling_ms }).await {
                    Ok(_) => last_renewal = Some((term, Instant::now())),
                    Err(e) => tracing::debug!(error = %e, "lease renewal failed"),
                }
            }
        })
    }
}
