//! brisk-kv: the replicated state machine's semantics: commands, MVCC reads and writes,
//! optimistic transactions and the hybrid logical clock with its leader lease.
//!
//! Nothing here knows about Raft: the Raft layer hands each committed entry to
//! [`KvStateMachine::apply`] together with the entry's [`AppliedState`](brisk_storage::AppliedState).

mod command;
pub mod hlc;
mod state_machine;

pub use command::{Command, Mutation, Request, Response};
pub use hlc::{Hlc, HlcError, Timestamp};
pub use state_machine::KvStateMachine;
