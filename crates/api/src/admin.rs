//! `RaftAdmin`: status and membership changes.

use std::collections::BTreeSet;
use std::time::Duration;

use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::raft_admin_server::RaftAdmin;
use brisk_proto::*;
use brisk_raft::node::ProposeError;
use brisk_raft::peer;
use brisk_raft::types::BriskNode;
use openraft::ChangeMembers;
use tonic::{Request, Response, Status};

use crate::on_leader;
use crate::routing::{is_forwarded, Router};

pub struct AdminService {
    pub router: Router,
    /// When the last on-demand snapshot finished; held while one runs (one at a time, see
    /// [`SNAPSHOT_INTERVAL`]).
    last_snapshot: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// This process's start, reported by `Status` .
    incarnation: u64,
    http_addr: String,
}

/// On-demand snapshots (the admin `Snapshot` RPC) cost a checkpoint and a pass over the data:
/// at most one runs at a time, and a new one starts at least this long after the previous
/// one finished.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);

impl AdminService {
    pub fn new(router: Router) -> Self {
        AdminService {
            router,
            last_snapshot: tokio::sync::Mutex::new(None),
            incarnation: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            http_addr: String::new(),
        }
    }

    /// The HTTP address `Status` reports.
    pub fn with_http_addr(mut self, addr: impl Into<String>) -> Self {
        self.http_addr = addr.into();
        self
    }
}

impl AdminService {
    fn members(&self) -> (Vec<Member>, u64) {
        let m = self.router.node.metrics();
        let index = m
            .membership_config
            .log_id()
            .as_ref()
            .map(|l| l.index)
            .unwrap_or(0);
        (peer::members(&m), index)
    }

    fn configuration(&self) -> ConfigurationResponse {
        let (members, log_index) = self.members();
        ConfigurationResponse { members, log_index }
    }

    fn is_member(&self, id: u64) -> bool {
        self.router
            .node
            .metrics()
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
    }

    fn is_voter(&self, id: u64) -> bool {
        self.router
            .node
            .metrics()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id)
    }

    fn leader_check(&self) -> Result<(), ProposeError> {
        if self.router.node.raft.is_leader() {
            Ok(())
        } else {
            let (leader_id, leader_addr) = self.router.node.leader();
            Err(ProposeError::NotLeader {
                leader_id,
                leader_addr,
            })
        }
    }

    /// Adds `id` (client address `addr`, peer address `peer_addr`) as a learner and waits
    /// until it has caught up.
    async fn add_learner_node(
        &self,
        id: u64,
        addr: &str,
        peer_addr: &str,
    ) -> Result<(), ProposeError> {
        let node = BriskNode::new(addr, peer_addr);
        self.router
            .node
            .raft
            .add_learner(id, node, true)
            .await
            .map(|_| ())
            .map_err(|e| partly_applied(self.router.node.map_write_error(e)))
    }

    async fn change(
        &self,
        change: ChangeMembers<u64, BriskNode>,
    ) -> Result<ConfigurationResponse, ProposeError> {
        self.router
            .node
            .raft
            .change_membership(change, false)
            .await
            .map_err(|e| partly_applied(self.router.node.map_write_error(e)))?;
        Ok(self.configuration())
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

fn check_peer_addr(addr: &str) -> Result<(), Status> {
    if addr.is_empty() {
        return Err(Status::invalid_argument(
            "peer_addr (the node's Raft transport address) is required",
        ));
    }
    check_addr(addr)
}

fn check_addr(addr: &str) -> Result<(), Status> {
    if crate::is_host_port(addr) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "addr {addr:?} is not HOST:PORT"
        )))
    }
}

#[tonic::async_trait]
impl RaftAdmin for AdminService {
    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let node = &self.router.node;
        let m = node.metrics();
        let mut s = peer::status(node.id(), &m);
        s.ready = node.is_ready_at(&m);
        s.incarnation = self.incarnation;
        s.cold_start_outcome = node.gate.outcome.as_str().to_string();
        s.cold_start_reason = node.gate.reason.as_str().to_string();
        s.http_addr = self.http_addr.clone();
        Ok(Response::new(s))
    }

    /// The leader's view when a leader is known (a removed or partitioned node's own view
    /// may be stale), else this node's.
    async fn configuration(
        &self,
        req: Request<ConfigurationRequest>,
    ) -> Result<Response<ConfigurationResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        let local = match self.leader_check() {
            Ok(()) => Ok(self.configuration()),
            Err(ProposeError::NotLeader {
                leader_id: None, ..
            }) => return Ok(Response::new(self.configuration())),
            Err(e) => Err(e),
        };
        match on_leader!(self, fwd, r, RaftAdminClient, configuration, local) {
            Ok(resp) => Ok(resp),
            // The leader is unreachable from here: answer with what this node knows.
            Err(s) if s.code() == tonic::Code::Unavailable => {
                Ok(Response::new(self.configuration()))
            }
            Err(s) => Err(s),
        }
    }

    async fn add_learner(
        &self,
        req: Request<AddLearnerRequest>,
    ) -> Result<Response<ConfigurationResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        if r.id == 0 {
            return Err(Status::invalid_argument("node id must be positive"));
        }
        check_addr(&r.addr)?;
        check_peer_addr(&r.peer_addr)?;
        let local = match self.leader_check() {
            Ok(()) => self
                .add_learner_node(r.id, &r.addr, &r.peer_addr)
                .await
                .map(|_| self.configuration()),
            Err(e) => Err(e),
        };
        on_leader!(self, fwd, r, RaftAdminClient, add_learner, local)
    }

    async fn add_voter(
        &self,
        req: Request<AddVoterRequest>,
    ) -> Result<Response<ConfigurationResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        if r.id == 0 {
            return Err(Status::invalid_argument("node id must be positive"));
        }
        if !r.addr.is_empty() {
            check_addr(&r.addr)?;
            check_peer_addr(&r.peer_addr)?;
        }
        let local = match self.leader_check() {
            Ok(()) => {
                if !self.is_member(r.id) {
                    if r.addr.is_empty() {
                        return Err(Status::not_found(format!(
                            "node {} is not a member; give its address to add it",
                            r.id
                        )));
                    }
                    if let Err(e) = self.add_learner_node(r.id, &r.addr, &r.peer_addr).await {
                        return Err(crate::status_of(e));
                    }
                }
                self.change(ChangeMembers::AddVoterIds(BTreeSet::from([r.id])))
                    .await
            }
            Err(e) => Err(e),
        };
        on_leader!(self, fwd, r, RaftAdminClient, add_voter, local)
    }

    async fn remove_server(
        &self,
        req: Request<RemoveServerRequest>,
    ) -> Result<Response<ConfigurationResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        let local = match self.leader_check() {
            Ok(()) => {
                if !self.is_member(r.id) {
                    return Err(Status::not_found(format!("node {} is not a member", r.id)));
                }
                if self.is_voter(r.id) {
                    match self
                        .change(ChangeMembers::RemoveVoters(BTreeSet::from([r.id])))
                        .await
                    {
                        Ok(_) => {
                            self.change(ChangeMembers::RemoveNodes(BTreeSet::from([r.id])))
                                .await
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    self.change(ChangeMembers::RemoveNodes(BTreeSet::from([r.id])))
                        .await
                }
            }
            Err(e) => Err(e),
        };
        on_leader!(self, fwd, r, RaftAdminClient, remove_server, local)
    }

    async fn transfer_leadership(
        &self,
        req: Request<TransferLeadershipRequest>,
    ) -> Result<Response<TransferLeadershipResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        if !self.is_voter(r.to) {
            return Err(Status::not_found(format!("node {} is not a voter", r.to)));
        }
        let local = match self.leader_check() {
            Ok(()) => {
                let node = &self.router.node;
                if node.id() != r.to {
                    node.raft
                        .trigger()
                        .transfer_leader(r.to)
                        .await
                        .map_err(|e| Status::internal(e.to_string()))?;
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                loop {
                    let (leader, _) = node.leader();
                    if leader == Some(r.to) {
                        break Ok(TransferLeadershipResponse { leader_id: r.to });
                    }
                    if tokio::time::Instant::now() > deadline {
                        // The transfer was asked for and may still happen: not a
                        // "nothing was applied" answer.
                        break Err(ProposeError::Indeterminate(format!(
                            "leadership did not move to node {} within 10 s (leader: {leader:?})",
                            r.to
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Err(e) => Err(e),
        };
        on_leader!(self, fwd, r, RaftAdminClient, transfer_leadership, local)
    }

    async fn snapshot(
        &self,
        _req: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotResponse>, Status> {
        // Snapshots are per node: this one builds its own, wherever it is in the cluster.
        let Ok(mut last) = self.last_snapshot.try_lock() else {
            return Err(Status::resource_exhausted(
                "a snapshot is already being taken on this node; retry when it finishes",
            ));
        };
        let now = tokio::time::Instant::now();
        if let Some(at) = *last {
            if now < at + SNAPSHOT_INTERVAL {
                return Err(Status::resource_exhausted(format!(
                    "snapshots are rate-limited to one per {} ms on this node; retry later",
                    SNAPSHOT_INTERVAL.as_millis()
                )));
            }
        }
        let result = self.take_snapshot().await;
        *last = Some(tokio::time::Instant::now());
        result
    }
}

impl AdminService {
    async fn take_snapshot(&self) -> Result<Response<SnapshotResponse>, Status> {
        let node = &self.router.node;
        let applied = node.metrics().last_applied.map(|l| l.index).unwrap_or(0);
        if applied == 0 {
            return Err(Status::failed_precondition(
                "nothing applied yet; no snapshot to take",
            ));
        }
        node.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut rx = node.raft.metrics();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let m = node.metrics();
            if let Some(s) = m.snapshot {
                if s.index >= applied {
                    return Ok(Response::new(SnapshotResponse {
                        index: s.index,
                        term: s.leader_id.term,
                    }));
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Status::deadline_exceeded(
                    "snapshot did not complete within 120 s",
                ));
            }
            use openraft::async_runtime::watch::WatchReceiver;
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        }
    }
}
