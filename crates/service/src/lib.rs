//! brisk-service: what a client can ask of a brisk node, independent of the protocol it
//! asks in. The gRPC and Redis adapters decode requests into these calls and encode the
//! results; the read barriers, the timestamp coverage rule, request limits, leader
//! forwarding and membership sequencing live here, once.
//!
//! Every call names its [`Origin`]: a client's request that lands on a follower runs on the
//! leader (forwarded over brisk's gRPC once); a forwarded request that lands on a non-leader
//! answers [`ServiceError::NotLeader`] instead, so requests never loop.
//!
//! Today a process serves one Raft group, so every key belongs to it. Routing a key to the
//! group that owns it belongs here too, which is why adapters never reach a node directly.

mod error;
mod forward;
mod kv;
mod limits;
mod membership;
mod read;
mod service;
mod txn;
mod types;

pub use brisk_kv::Mutation;
pub use brisk_kv::Timestamp;
pub use brisk_raft::LogIndex;
pub use error::ServiceError;
pub use forward::{Origin, FORWARDED_HEADER};
pub use limits::Limits;
pub use membership::{Configuration, Member, NodeStatus, SnapshotTaken, SNAPSHOT_INTERVAL};
pub use read::Read;
pub use service::Service;
pub use types::{CommitOutcome, KeyRange, Pair, ScanPage, Versioned, Written};

/// Scans return at most this many pairs when the request sets no limit.
pub const DEFAULT_SCAN_LIMIT: usize = 1_000;
/// ... and never more than this.
pub const MAX_SCAN_LIMIT: usize = 100_000;
/// A scan response carries at most about this many bytes of keys and values.
pub const SCAN_BYTE_BUDGET: usize = 64 << 20;

/// `HOST:PORT` with a non-empty host (name, IPv4 or bracketed IPv6) and a numeric port.
pub fn is_host_port(addr: &str) -> bool {
    if addr.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && port.parse::<u16>().is_ok()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }
        None => false,
    }
}

#[cfg(test)]
#[test]
fn host_port_forms() {
    for ok in [
        "127.0.0.1:7001",
        "[::1]:7001",
        "localhost:7001",
        "node-2.brisk.internal:80",
    ] {
        assert!(is_host_port(ok), "{ok}");
    }
    for bad in [
        "",
        "7001",
        "localhost",
        ":7001",
        "host:port",
        "a b:1",
        "host:70000",
    ] {
        assert!(!is_host_port(bad), "{bad}");
    }
}
