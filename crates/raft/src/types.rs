//! The openraft type configuration of brisk.

use brisk_kv::{Request, Response};
pub use openraft::impls::BasicNode;

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// brisk's Raft types: entries carry [`brisk_kv::Request`], applies return [`brisk_kv::Response`].
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = BasicNode,
);

pub type BriskRaft = openraft::Raft<TypeConfig, crate::state_machine::StateMachineStore>;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, BasicNode>;
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

/// Converts openraft's log id into the store's representation (and back).
pub fn to_applied(id: &LogId) -> brisk_storage::AppliedLogId {
    brisk_storage::AppliedLogId {
        term: id.leader_id.term,
        leader_node: id.leader_id.node_id,
        index: id.index,
    }
}

pub fn from_applied(id: &brisk_storage::AppliedLogId) -> LogId {
    log_id(id.term, id.leader_node, id.index)
}
