//! The openraft type configuration of brisk.

use brisk_kv::{Request, Response};
use brisk_storage::LogIndex;
use serde::{Deserialize, Serialize};

pub type NodeId = u64;

/// A Raft group: one replicated log and state machine. A node runs one group today (0);
/// the id travels in every peer message and snapshot so several groups can share a
/// process and its transport later.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct GroupId(pub u64);

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

openraft::declare_raft_types!(
    /// brisk's Raft types: entries carry [`brisk_kv::Request`], applies return [`brisk_kv::Response`].
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = BriskNode,
);

/// A member's addresses: where clients reach it and where its peers send Raft messages.
///
/// Membership is persisted (log entries, the state machine's meta key, snapshot manifests)
/// and sent to peers in one string, the shape older versions wrote for a member with a single
/// address: `"CLIENT PEER"`, or just `"CLIENT"`. A member recorded by an older version has no
/// peer address (`peer_addr` is None); its peers take it from their configured member list
/// (`PeerDirectory`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "StoredNode", into = "StoredNode")]
pub struct BriskNode {
    /// The client (gRPC API) address.
    pub addr: String,
    /// The peer (Raft transport) address; None for a member recorded by an older version.
    pub peer_addr: Option<String>,
}

impl BriskNode {
    pub fn new(addr: impl Into<String>, peer_addr: impl Into<String>) -> Self {
        BriskNode {
            addr: addr.into(),
            peer_addr: Some(peer_addr.into()),
        }
    }
}

impl std::fmt::Display for BriskNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.peer_addr {
            Some(p) => write!(f, "{} (peer {p})", self.addr),
            None => write!(f, "{} (peer address not recorded)", self.addr),
        }
    }
}

/// The persisted form of [`BriskNode`] (field name and layout as older versions wrote it).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename = "BasicNode")]
struct StoredNode {
    addr: String,
}

impl From<BriskNode> for StoredNode {
    fn from(n: BriskNode) -> Self {
        StoredNode {
            addr: match n.peer_addr {
                Some(p) => format!("{} {p}", n.addr),
                None => n.addr,
            },
        }
    }
}

impl TryFrom<StoredNode> for BriskNode {
    type Error = String;

    fn try_from(s: StoredNode) -> Result<Self, String> {
        let mut parts = s.addr.split(' ');
        let addr = parts.next().unwrap_or_default().to_string();
        let peer_addr = parts.next().map(str::to_string);
        if parts.next().is_some() || peer_addr.as_deref() == Some("") {
            return Err(format!("member address {:?} is malformed", s.addr));
        }
        Ok(BriskNode { addr, peer_addr })
    }
}

pub type BriskRaft = openraft::Raft<TypeConfig, crate::state_machine::StateMachineStore>;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, BriskNode>;
pub type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, NodeId>;

pub fn log_id(term: u64, leader_node: NodeId, index: u64) -> LogId {
    openraft::LogId::new(
        LeaderId {
            term,
            node_id: leader_node,
        },
        index,
    )
}

/// The index of openraft's log id; [`LogIndex::ZERO`] for none (nothing logged or applied).
pub fn index_of(log_id: Option<&LogId>) -> LogIndex {
    log_id.map_or(LogIndex::ZERO, |l| LogIndex(l.index))
}

/// Converts openraft's log id into the store's representation (and back).
pub fn to_applied(id: &LogId) -> brisk_storage::AppliedLogId {
    brisk_storage::AppliedLogId {
        term: id.leader_id.term,
        leader_node: id.leader_id.node_id,
        index: LogIndex(id.index),
    }
}

pub fn from_applied(id: &brisk_storage::AppliedLogId) -> LogId {
    log_id(id.term, id.leader_node, id.index.get())
}

/// The membership stored in the state machine's meta key; a store that never applied a
/// membership entry (absent or empty value) holds the default one.
pub fn stored_membership(raw: Option<&[u8]>) -> Result<StoredMembership, crate::codec::CodecError> {
    match raw {
        Some(raw) if !raw.is_empty() => crate::codec::decode(raw),
        _ => Ok(StoredMembership::default()),
    }
}
