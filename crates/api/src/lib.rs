//! brisk-api: gRPC adapters. They validate requests, turn them into state-machine commands or
//! reads on a [`RaftNode`](brisk_raft::RaftNode), and route to the leader when needed. No
//! storage knowledge lives here.

mod admin;
mod errors;
mod limits;
mod raw;
mod routing;
mod txn;

pub use admin::AdminService;
pub use errors::{status_of, LEADER_ADDR_HEADER};
pub use limits::Limits;
pub use raw::RawKvService;
pub use routing::Router;
pub use txn::TxnService;

/// Scans return at most this many pairs when the request sets no limit.
pub const DEFAULT_SCAN_LIMIT: usize = 1_000;
/// ... and never more than this.
pub const MAX_SCAN_LIMIT: usize = 100_000;
/// A scan response carries at most about this many bytes of keys and values.
pub const SCAN_BYTE_BUDGET: usize = 64 << 20;
