//! Membership: status, the configuration, adding and removing members, moving leadership,
//! on-demand snapshots. Member lists travel in their wire shape ([`Member`]).

use std::collections::BTreeSet;
use std::time::Duration;

use brisk_proto::{
    AddLearnerRequest, AddVoterRequest, ConfigurationRequest, RemoveServerRequest,
    TransferLeadershipRequest,
};
use brisk_raft::node::ProposeError;
use brisk_raft::peer;
use brisk_raft::types::{index_of, BriskNode};
use brisk_raft::LogIndex;
use openraft::ChangeMembers;

pub use brisk_proto::{
    ConfigurationResponse as Configuration, Member, StatusResponse as NodeStatus,
};

use crate::error::{Effect, ServiceError};
use crate::forward::{self, Origin};
use crate::Service;

/// On-demand snapshots cost a checkpoint and a pass over the data: at most one runs at a
/// time, and a new one starts at least this long after the previous one finished.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a leadership transfer may take before its outcome is reported as unknown.
const TRANSFER_PATIENCE: Duration = Duration::from_secs(10);

/// A snapshot this node took: the last log entry it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotTaken {
    pub index: LogIndex,
    pub term: u64,
}

impl Service {
    /// This node's own view of itself and the cluster (never forwarded).
    pub fn status(&self) -> NodeStatus {
        let node = &self.node;
        let m = node.metrics();
        let mut s = peer::status(node.id(), &m);
        s.ready = node.is_ready_at(&m);
        s.incarnation = self.incarnation;
        s.cold_start_outcome = node.gate().outcome.as_str().to_string();
        s.cold_start_reason = node.gate().reason.as_str().to_string();
        s.http_addr = self.http_addr.clone();
        s
    }

    /// The leader's view of the membership when a leader is known and reachable (a removed
    /// or partitioned node's own view may be stale), else this node's.
    pub async fn configuration(&self, origin: Origin) -> Result<Configuration, ServiceError> {
        let local = match self.leader_check() {
            Ok(()) => Ok(self.local_configuration()),
            Err(ServiceError::NotLeader {
                leader_id: None, ..
            }) => return Ok(self.local_configuration()),
            Err(e) => Err(e),
        };
        let asked = self
            .on_leader(origin, Effect::Read, local, |ch| async move {
                let r = forward::admin(ch)
                    .configuration(forward::request(ConfigurationRequest {}))
                    .await?;
                Ok(r.into_inner())
            })
            .await;
        match asked {
            // The leader is unreachable from here: answer with what this node knows.
            Err(ServiceError::Unavailable(_) | ServiceError::NotLeader { .. }) => {
                Ok(self.local_configuration())
            }
            other => other,
        }
    }

    /// Adds node `id` (client address `addr`, peer address `peer_addr`) as a learner and
    /// waits until it has caught up.
    pub async fn add_learner(
        &self,
        origin: Origin,
        id: u64,
        addr: String,
        peer_addr: String,
    ) -> Result<Configuration, ServiceError> {
        check_new_member(id, &addr, &peer_addr)?;
        let local = match self.leader_check() {
            Ok(()) => self
                .add_learner_node(id, &addr, &peer_addr)
                .await
                .map(|()| self.local_configuration()),
            Err(e) => Err(e),
        };
        let remote = AddLearnerRequest {
            id,
            addr,
            peer_addr,
        };
        self.on_leader(origin, Effect::Write, local, |ch| async move {
            let r = forward::admin(ch)
                .add_learner(forward::request(remote))
                .await?;
            Ok(r.into_inner())
        })
        .await
    }

    /// Makes node `id` a voter, adding it first (at `addr`/`peer_addr`) if it is not a
    /// member; an empty `addr` promotes an existing learner.
    pub async fn add_voter(
        &self,
        origin: Origin,
        id: u64,
        addr: String,
        peer_addr: String,
    ) -> Result<Configuration, ServiceError> {
        if addr.is_empty() {
            if id == 0 {
                return Err(ServiceError::InvalidArgument(
                    "node id must be positive".into(),
                ));
            }
        } else {
            check_new_member(id, &addr, &peer_addr)?;
        }
        let local = match self.leader_check() {
            Ok(()) => self.promote(id, &addr, &peer_addr).await,
            Err(e) => Err(e),
        };
        let remote = AddVoterRequest {
            id,
            addr,
            peer_addr,
        };
        self.on_leader(origin, Effect::Write, local, |ch| async move {
            let r = forward::admin(ch)
                .add_voter(forward::request(remote))
                .await?;
            Ok(r.into_inner())
        })
        .await
    }

    /// Removes node `id`: a voter is demoted first, then removed.
    pub async fn remove_member(
        &self,
        origin: Origin,
        id: u64,
    ) -> Result<Configuration, ServiceError> {
        let local = match self.leader_check() {
            Ok(()) => self.remove(id).await,
            Err(e) => Err(e),
        };
        self.on_leader(origin, Effect::Write, local, |ch| async move {
            let r = forward::admin(ch)
                .remove_server(forward::request(RemoveServerRequest { id }))
                .await?;
            Ok(r.into_inner())
        })
        .await
    }

    /// Moves leadership to voter `to` and waits until it leads; returns the leader's id.
    pub async fn transfer_leadership(&self, origin: Origin, to: u64) -> Result<u64, ServiceError> {
        if !self.is_voter(to) {
            return Err(ServiceError::NotFound(format!("node {to} is not a voter")));
        }
        let local = match self.leader_check() {
            Ok(()) => self.transfer(to).await,
            Err(e) => Err(e),
        };
        self.on_leader(origin, Effect::Write, local, |ch| async move {
            let r = forward::admin(ch)
                .transfer_leadership(forward::request(TransferLeadershipRequest { to }))
                .await?;
            Ok(r.into_inner().leader_id)
        })
        .await
    }

    /// Builds a snapshot of this node's state (snapshots are per node: never forwarded).
    /// At most one at a time, [`SNAPSHOT_INTERVAL`] apart.
    pub async fn snapshot(&self) -> Result<SnapshotTaken, ServiceError> {
        let Ok(mut last) = self.last_snapshot.try_lock() else {
            return Err(ServiceError::ResourceExhausted(
                "a snapshot is already being taken on this node; retry when it finishes".into(),
            ));
        };
        let now = tokio::time::Instant::now();
        if let Some(at) = *last {
            if now < at + SNAPSHOT_INTERVAL {
                return Err(ServiceError::ResourceExhausted(format!(
                    "snapshots are rate-limited to one per {} ms on this node; retry later",
                    SNAPSHOT_INTERVAL.as_millis()
                )));
            }
        }
        let result = self.take_snapshot().await;
        *last = Some(tokio::time::Instant::now());
        result
    }

    fn local_configuration(&self) -> Configuration {
        let m = self.node.metrics();
        let log_index = m
            .membership_config
            .log_id()
            .as_ref()
            .map(|l| l.index)
            .unwrap_or(0);
        Configuration {
            members: peer::members(&m),
            log_index,
        }
    }

    fn is_member(&self, id: u64) -> bool {
        self.node
            .metrics()
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
    }

    fn is_voter(&self, id: u64) -> bool {
        self.node
            .metrics()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id)
    }

    fn leader_check(&self) -> Result<(), ServiceError> {
        // A stopping node takes no membership work either (the client retries another).
        self.node.check_not_draining()?;
        if self.node.raft().is_leader() {
            Ok(())
        } else {
            let (leader_id, leader_addr) = self.node.leader();
            Err(ServiceError::NotLeader {
                leader_id,
                leader_addr,
            })
        }
    }

    async fn add_learner_node(
        &self,
        id: u64,
        addr: &str,
        peer_addr: &str,
    ) -> Result<(), ServiceError> {
        let node = BriskNode::new(addr, peer_addr);
        self.node
            .raft()
            .add_learner(id, node, true)
            .await
            .map(|_| ())
            .map_err(|e| partly_applied(self.node.map_write_error(e)).into())
    }

    async fn change(
        &self,
        change: ChangeMembers<u64, BriskNode>,
    ) -> Result<Configuration, ServiceError> {
        self.node
            .raft()
            .change_membership(change, false)
            .await
            .map_err(|e| ServiceError::from(partly_applied(self.node.map_write_error(e))))?;
        Ok(self.local_configuration())
    }

    async fn promote(
        &self,
        id: u64,
        addr: &str,
        peer_addr: &str,
    ) -> Result<Configuration, ServiceError> {
        if !self.is_member(id) {
            if addr.is_empty() {
                return Err(ServiceError::NotFound(format!(
                    "node {id} is not a member; give its address to add it"
                )));
            }
            self.add_learner_node(id, addr, peer_addr).await?;
        }
        self.change(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    async fn remove(&self, id: u64) -> Result<Configuration, ServiceError> {
        if !self.is_member(id) {
            return Err(ServiceError::NotFound(format!("node {id} is not a member")));
        }
        if self.is_voter(id) {
            self.change(ChangeMembers::RemoveVoters(BTreeSet::from([id])))
                .await?;
        }
        self.change(ChangeMembers::RemoveNodes(BTreeSet::from([id])))
            .await
    }

    async fn transfer(&self, to: u64) -> Result<u64, ServiceError> {
        let node = &self.node;
        if node.id() != to {
            node.raft()
                .trigger()
                .transfer_leader(to)
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        let deadline = tokio::time::Instant::now() + TRANSFER_PATIENCE;
        loop {
            let (leader, _) = node.leader();
            if leader == Some(to) {
                return Ok(to);
            }
            if tokio::time::Instant::now() > deadline {
                // The transfer was asked for and may still happen: not a "nothing was
                // applied" answer.
                return Err(ServiceError::Indeterminate(format!(
                    "leadership did not move to node {to} within {} s (leader: {leader:?})",
                    TRANSFER_PATIENCE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn take_snapshot(&self) -> Result<SnapshotTaken, ServiceError> {
        use openraft::async_runtime::watch::WatchReceiver;
        let node = &self.node;
        let applied = index_of(node.metrics().last_applied.as_ref());
        if applied == LogIndex::ZERO {
            return Err(ServiceError::FailedPrecondition(
                "nothing applied yet; no snapshot to take".into(),
            ));
        }
        let mut rx = node.raft().metrics();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut triggered: Option<tokio::time::Instant> = None;
        loop {
            if let Some(s) = node.metrics().snapshot {
                if LogIndex(s.index) >= applied {
                    return Ok(SnapshotTaken {
                        index: LogIndex(s.index),
                        term: s.leader_id.term,
                    });
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ServiceError::DeadlineExceeded(
                    "snapshot did not complete within 120 s".into(),
                ));
            }
            // Raft drops a trigger while a build is already running (an automatic one may
            // cover less than `applied`), so the request is repeated until a build covers
            // it: once a second, not on every metrics change (each applied entry is one).
            if triggered.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                node.raft()
                    .trigger()
                    .snapshot()
                    .await
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                triggered = Some(tokio::time::Instant::now());
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        }
    }
}

/// A membership change that failed may already have committed part of itself (the joint
/// configuration before the final one, or the new learner before its catch-up). A redirect
/// to a known leader still forwards (the leader repeats the change, which is idempotent);
/// any other "unavailable" can no longer promise that nothing was applied.
fn partly_applied(e: ProposeError) -> ProposeError {
    match e {
        ProposeError::NotLeader {
            leader_id: Some(_),
            leader_addr: Some(_),
        } => e,
        ProposeError::NotLeader { .. } => ProposeError::Indeterminate(
            "leadership was lost during the membership change, which may be partly applied; repeating it is safe".into(),
        ),
        ProposeError::Unavailable(m) => ProposeError::Indeterminate(format!(
            "the membership change may be partly applied ({m}); repeating it is safe"
        )),
        other => other,
    }
}

/// A new member's id and addresses: a positive id, `HOST:PORT` client and peer addresses.
fn check_new_member(id: u64, addr: &str, peer_addr: &str) -> Result<(), ServiceError> {
    if id == 0 {
        return Err(ServiceError::InvalidArgument(
            "node id must be positive".into(),
        ));
    }
    if peer_addr.is_empty() {
        return Err(ServiceError::InvalidArgument(
            "peer_addr (the node's Raft transport address) is required".into(),
        ));
    }
    for a in [addr, peer_addr] {
        if !crate::is_host_port(a) {
            return Err(ServiceError::InvalidArgument(format!(
                "addr {a:?} is not HOST:PORT"
            )));
        }
    }
    Ok(())
}
