//! Generated gRPC types and services of package `brisk.v1` (see `proto/brisk.proto`).
#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("brisk.v1");
}
pub use v1::*;

/// The encoded descriptors of `proto/brisk.proto`, served by gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("brisk_descriptor");

/// Response metadata naming the leader's client address, set on redirects.
pub const LEADER_ADDR_HEADER: &str = "x-brisk-leader-addr";

/// Response metadata on every UNAVAILABLE a node answers itself: nothing was applied, and
/// the request may be retried. An UNAVAILABLE without it came from a transport (a connection
/// that failed after the request may have been sent), which says nothing about the outcome.
pub const NOT_APPLIED_HEADER: &str = "x-brisk-not-applied";

/// The part of etcd's v3 API that `brisk bench compare` drives (client only).
pub mod etcd {
    tonic::include_proto!("etcdserverpb");
}

/// The largest gRPC message a node sends or accepts on its client port (values up to
/// `--max-value-bytes`, scan pages up to their byte budget); clients that talk to a node,
/// forwarding members included, accept as much.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;
