//! brisk-storage: the MVCC store of the state machine, persisted in RocksDB.
//!
//! Two column families: `data` holds versioned user keys (see [`mvcc_key`]), `meta` holds the
//! applied log id, membership and header state (HLC ceiling, last commit timestamp).
//!
//! Durability contract: every mutation reaches RocksDB through an [`ApplyBatch`], which can
//! only be built from an [`AppliedState`] and writes it in the same atomic batch as the data
//! (docs/design/cold-start.md I1). When [`ApplyBatch::commit`] returns with [`Durability::Sync`]
//! the batch is fsynced; with [`Durability::Buffered`] it is visible but may be lost on a crash,
//! and the Raft log is the backstop (I7).

mod batch;
mod durability;
mod error;
pub mod fault;
mod log_index;
mod meta;
pub mod mvcc_key;
mod store;
mod timestamp;

pub use batch::ApplyBatch;
pub use durability::Durability;
pub use error::StorageError;
pub use log_index::LogIndex;
pub use meta::{AppliedLogId, AppliedState, MetaSnapshot};
pub use store::{
    opts_for_fast_open, resume_compactions, Store, Version, VersionedPair, BYTES_PER_SYNC,
    MAX_WAL_BYTES, MEMTABLES, MIN_BLOB_BYTES,
};
pub use timestamp::Timestamp;
