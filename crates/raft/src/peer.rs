//! How a node reaches its peers' Raft transport: the peer address of each member, over
//! mutual TLS when the node has a peer certificate.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use brisk_proto::StatusResponse;
use openraft::{RaftMetrics, ServerState};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::types::{BriskNode, BriskRaft, NodeId, TypeConfig};

/// The members' current addresses, as the effective membership has them. openraft keeps a
/// connection per replication target for as long as this node leads and does not rebuild
/// it when only a member's address changes (a peer address being recorded), so connections
/// look their target up here before each use.
#[derive(Clone, Debug, Default)]
pub struct PeerDirectory(Arc<RwLock<BTreeMap<NodeId, BriskNode>>>);

impl PeerDirectory {
    pub fn get(&self, id: NodeId) -> Option<BriskNode> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn set(&self, members: BTreeMap<NodeId, BriskNode>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = members;
    }

    /// Follows the effective membership until the node shuts down.
    pub fn follow(&self, raft: &BriskRaft) {
        use openraft::async_runtime::watch::WatchReceiver;
        let mut rx = raft.metrics();
        let directory = self.clone();
        tokio::spawn(async move {
            loop {
                let members = rx
                    .borrow_watched()
                    .membership_config
                    .membership()
                    .nodes()
                    .map(|(id, n)| (*id, n.clone()))
                    .collect();
                directory.set(members);
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Builds channels to peers. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct PeerConnector {
    /// This node's client identity and the CA its peers' certificates must chain to; None
    /// runs the transport in plaintext.
    tls: Option<ClientTlsConfig>,
}

impl PeerConnector {
    pub fn new(tls: Option<ClientTlsConfig>) -> Self {
        PeerConnector { tls }
    }

    pub fn plaintext() -> Self {
        PeerConnector { tls: None }
    }

    /// An endpoint for `node`'s Raft transport. A member recorded without a peer address
    /// (by an older version) serves Raft on its plaintext client address.
    pub fn endpoint(&self, node: &BriskNode) -> Result<Endpoint, tonic::transport::Error> {
        let tls = match node.peer_addr {
            Some(_) => self.tls.clone(),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut ep = Endpoint::from_shared(format!("{scheme}://{}", node.peer_target()))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            ep = ep.tls_config(tls)?;
        }
        Ok(ep)
    }

    /// A connected channel to `node`'s Raft transport, or None if it cannot be reached
    /// within a second (a peer that accepts TCP but is paused would hold the TLS handshake
    /// forever).
    pub async fn connect(&self, node: &BriskNode) -> Option<Channel> {
        let endpoint = self.endpoint(node).ok()?;
        tokio::time::timeout(Duration::from_secs(1), endpoint.connect())
            .await
            .ok()?
            .ok()
    }
}

pub fn role(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

/// The members as the status and configuration replies list them.
pub fn members(m: &RaftMetrics<TypeConfig>) -> Vec<brisk_proto::Member> {
    let membership = m.membership_config.membership();
    let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, n)| brisk_proto::Member {
            id: *id,
            addr: n.addr.clone(),
            voter: voters.contains(id),
            peer_addr: n.peer_addr.clone().unwrap_or_default(),
        })
        .collect()
}

/// A node's Raft view (`RaftAdmin.Status` for clients, `RaftTransport.PeerStatus` for
/// peers).
pub fn status(id: NodeId, m: &RaftMetrics<TypeConfig>) -> StatusResponse {
    let leader = m
        .current_leader
        .and_then(|l| m.membership_config.membership().get_node(&l).cloned());
    StatusResponse {
        id,
        role: role(m.state).to_string(),
        leader_id: m.current_leader.unwrap_or(0),
        has_leader: m.current_leader.is_some(),
        term: m.current_term,
        commit_index: m.local_committed.map(|l| l.index).unwrap_or(0),
        applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
        members: members(m),
        leader_addr: leader.as_ref().map(|n| n.addr.clone()).unwrap_or_default(),
        snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
        purged_index: m.purged.map(|l| l.index).unwrap_or(0),
        last_log_index: m.last_log_index.unwrap_or(0),
        leader_peer_addr: leader.and_then(|n| n.peer_addr).unwrap_or_default(),
    }
}

/// The leader as `s` reports it: its id and addresses, if it has a leader.
pub fn reported_leader(s: &StatusResponse) -> Option<(NodeId, BriskNode)> {
    if !s.has_leader || s.leader_addr.is_empty() {
        return None;
    }
    let peer_addr = (!s.leader_peer_addr.is_empty()).then(|| s.leader_peer_addr.clone());
    Some((
        s.leader_id,
        BriskNode {
            addr: s.leader_addr.clone(),
            peer_addr,
        },
    ))
}
