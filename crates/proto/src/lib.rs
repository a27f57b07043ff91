//! Generated gRPC types and services of package `brisk.v1` (see `proto/brisk.proto`).
#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("brisk.v1");
}
pub use v1::*;

/// The part of etcd's v3 API that `brisk bench compare` drives (client only).
pub mod etcd {
    tonic::include_proto!("etcdserverpb");
}
