//! Proposals and linearizable reads: what clients ask of the leader, and why it may refuse.

use std::sync::atomic::Ordering;
use std::time::Duration;

use brisk_kv::hlc::wall_clock_ms;
use brisk_kv::{Command, Request, Response, Timestamp};
use brisk_storage::LogIndex;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::ServerState;

use super::{ProposeError, RaftNode};
use crate::types::TypeConfig;

impl RaftNode {
    fn not_leader(&self) -> ProposeError {
        let (leader_id, leader_addr) = self.leader();
        ProposeError::NotLeader {
            leader_id,
            leader_addr,
        }
    }

    /// Issues an HLC timestamp; only the leader does (design: HLC).
    pub fn issue_ts(&self) -> Result<Timestamp, ProposeError> {
        let m = self.metrics();
        if m.current_leader != Some(self.id()) || m.state != ServerState::Leader {
            return Err(self.not_leader());
        }
        self.sm
            .kv
            .hlc()
            .issue(m.current_term, wall_clock_ms())
            .map_err(|e| ProposeError::Unavailable(e.to_string()))
    }

    /// Refuses client work once a graceful stop began: the client retries another member.
    pub fn check_not_draining(&self) -> Result<(), ProposeError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ProposeError::Unavailable(
                "this node is shutting down; retry another member".into(),
            ));
        }
        Ok(())
    }

    /// Proposes a command with a fresh timestamp and waits until it is applied here.
    pub async fn propose(&self, command: Command) -> Result<(Response, LogIndex), ProposeError> {
        // Lease renewals stop too: an entry appended after the handover began would leave the
        // chosen successor behind, and openraft ignores a transfer to a lagging node.
        self.check_not_draining()?;
        let ts = match command {
            Command::LeaseRenewal { .. } => Timestamp::ZERO,
            _ => self.issue_ts()?,
        };
        self.sm.metrics.proposals.increment(1);
        match self.raft.client_write(Request { ts, command }).await {
            Ok(resp) => Ok((resp.data, LogIndex(resp.log_id.index))),
            Err(e) => Err(self.map_write_error(e)),
        }
    }

    pub fn map_write_error(
        &self,
        e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> ProposeError {
        self.sm.metrics.proposals_failed.increment(1);
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                let leader_addr = f.leader_node.map(|n| n.addr);
                ProposeError::NotLeader {
                    leader_id: f.leader_id,
                    leader_addr,
                }
            }
            RaftError::APIError(ClientWriteError::LogEntryDiscarded(f)) => {
                ProposeError::Indeterminate(format!(
                    "leader changed to {:?} before the entry committed",
                    f.leader_id
                ))
            }
            RaftError::APIError(e) => ProposeError::Membership(e.to_string()),
            RaftError::Fatal(f) => ProposeError::Fatal(f.to_string()),
        }
    }

    /// Read barrier: returns once this node (the leader) confirmed with a quorum that it
    /// still leads (per the read policy) and has applied everything committed before the call
    /// (linearizable reads). Waits on the state machine's own applied index rather than
    /// openraft's metrics, which are published less eagerly.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        self.check_not_draining()?;
        let read_log_id = match self
            .raft
            .get_read_log_id(self.config.read_policy.clone())
            .await
        {
            Ok((read_log_id, _)) => read_log_id,
            Err(RaftError::APIError(openraft::errors::LinearizableReadError::ForwardToLeader(
                _,
            ))) => return Err(self.not_leader()),
            Err(RaftError::APIError(e)) => return Err(ProposeError::Unavailable(e.to_string())),
            Err(RaftError::Fatal(f)) => return Err(ProposeError::Fatal(f.to_string())),
        };
        if self
            .sm
            .wait_applied(LogIndex(read_log_id.index()), Duration::from_secs(10))
            .await
        {
            Ok(())
        } else {
            Err(ProposeError::Unavailable(format!(
                "the state machine did not apply index {} within 10 s",
                read_log_id.index()
            )))
        }
    }

    /// Whether this replica may serve a read from its own state (stale and at-timestamp
    /// reads): not while it rebuilds from the leader after a failed verification (I5).
    pub fn check_local_reads(&self) -> Result<(), ProposeError> {
        self.check_not_draining()?;
        if self.recovering.load(Ordering::SeqCst) {
            return Err(ProposeError::Unavailable(
                "this node is rebuilding its state from the leader and serves no reads".into(),
            ));
        }
        Ok(())
    }
}
