//! brisk-api: gRPC adapters. They validate requests, turn them into state-machine commands or
//! reads on a [`RaftNode`](brisk_raft::RaftNode), and route to the leader when needed. No
//! storage knowledge lives here.

mod admin;
pub mod errors;
mod limits;
mod raw;
mod routing;
mod txn;

pub use admin::AdminService;
pub use errors::{status_of, LEADER_ADDR_HEADER, NOT_APPLIED_HEADER};
pub use limits::Limits;
pub use raw::RawKvService;
pub use routing::Router;
pub use txn::TxnService;

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

/// Scans return at most this many pairs when the request sets no limit.
pub const DEFAULT_SCAN_LIMIT: usize = 1_000;
/// ... and never more than this.
pub const MAX_SCAN_LIMIT: usize = 100_000;
/// A scan response carries at most about this many bytes of keys and values.
pub const SCAN_BYTE_BUDGET: usize = 64 << 20;
