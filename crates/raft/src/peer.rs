//! How a node reaches its peers' Raft transport: the peer address of each member, over
//! mutual TLS when the node has a peer certificate.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use brisk_proto::StatusResponse;
use openraft::{RaftMetrics, ServerState};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::types::{BriskNode, BriskRaft, NodeId, TypeConfig};

/// The members' current addresses, as the effective membership has them, with the peer
/// address of a member recorded by an older version (none in its entry) taken from this
/// node's configured member list. openraft keeps a connection per replication target for as
/// long as this node leads and does not rebuild it when only a member's address changes, so
/// connections look their target up here before each use.
#[derive(Clone, Debug, Default)]
pub struct PeerDirectory {
    members: Arc<RwLock<BTreeMap<NodeId, BriskNode>>>,
    configured: Arc<BTreeMap<NodeId, BriskNode>>,
}

impl PeerDirectory {
    pub fn new(configured: BTreeMap<NodeId, BriskNode>) -> Self {
        PeerDirectory {
            members: Arc::default(),
            configured: Arc::new(configured),
        }
    }

    /// `node` (member `id`) with its peer address completed from the configured list when
    /// its membership entry has none.
    pub fn resolve(&self, id: NodeId, node: &BriskNode) -> BriskNode {
        complete(id, node, &self.configured)
    }

    pub fn get(&self, id: NodeId) -> Option<BriskNode> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
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
                    .map(|(id, n)| (*id, directory.resolve(*id, n)))
                    .collect();
                *directory.members.write().unwrap_or_else(|e| e.into_inner()) = members;
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Member `id` with its peer address taken from `configured` when `node` has none.
pub fn complete(
    id: NodeId,
    node: &BriskNode,
    configured: &BTreeMap<NodeId, BriskNode>,
) -> BriskNode {
    match (&node.peer_addr, configured.get(&id)) {
        (None, Some(c)) => BriskNode {
            addr: node.addr.clone(),
            peer_addr: c.peer_addr.clone(),
        },
        _ => node.clone(),
    }
}

/// Why no endpoint could be built for a member's Raft transport.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("member at {addr} has no peer address: it was recorded by an older version; list it in --bootstrap as ID=CLIENT/PEER")]
    NoPeerAddress { addr: String },
    /// A malformed peer address or an unusable TLS configuration.
    #[error("{0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Builds channels to peers. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct PeerConnector {
    /// This node's client identity and the CA its peers' certificates must chain to; None
    /// runs the transport in plaintext.
    tls: Option<ClientTlsConfig>,
    /// The address connections originate from (this node's peer address), so that a
    /// firewall can tell members apart by address.
    local_ip: Option<std::net::IpAddr>,
}

impl PeerConnector {
    pub fn new(tls: Option<ClientTlsConfig>, local_ip: Option<std::net::IpAddr>) -> Self {
        PeerConnector { tls, local_ip }
    }

    pub fn plaintext() -> Self {
        PeerConnector::default()
    }

    /// An endpoint for `node`'s Raft transport (see [`PeerDirectory::resolve`] for members
    /// recorded without a peer address).
    pub fn endpoint(&self, node: &BriskNode) -> Result<Endpoint, EndpointError> {
        let Some(peer_addr) = &node.peer_addr else {
            return Err(EndpointError::NoPeerAddress {
                addr: node.addr.clone(),
            });
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut ep = Endpoint::from_shared(format!("{scheme}://{peer_addr}"))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .local_address(self.local_ip);
        if let Some(tls) = &self.tls {
            ep = ep.tls_config(tls.clone())?;
        }
        Ok(ep)
    }

    /// A connected channel to `node`'s Raft transport, or None if it cannot be reached
    /// within a second (`connect_timeout` covers TCP only: a peer that accepts TCP but is
    /// paused would hold the TLS handshake forever).
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
        // What only the serving process knows (readiness, incarnation, cold start, HTTP
        // address) is filled in by the admin service.
        ..Default::default()
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
