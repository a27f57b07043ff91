//! brisk-raft: the Raft engine around openraft: the log store, the state-machine adapter,
//! the node-to-node transport, snapshot files and the cold-start gate.
//!
//! The rest of brisk talks to [`RaftNode`]; nothing outside this crate names RocksDB's log
//! instance or openraft's storage traits.

mod append_stream;
pub mod codec;
/// Named crash points: the mechanism lives in the lowest layer, `brisk-storage`.
pub use brisk_storage::fault;
pub mod gate;
pub mod layout;
pub mod log_store;
mod log_tail;
pub mod metrics;
pub mod network;
pub mod node;
pub mod peer;
pub mod recovery;
pub mod snapshot;
pub mod state_machine;
pub mod transport;
pub mod types;

pub use brisk_storage::LogIndex;
pub use node::{NodeConfig, RaftNode};
pub use types::{BriskRaft, GroupId, LogId, Membership, NodeId, StoredMembership, TypeConfig};
