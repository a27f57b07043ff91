//! The load: the same loop drives either system through its own gRPC API, one connection
//! per client to the leader, with the same keys, value sizes and operation mix.

use std::time::{Duration, Instant};

use anyhow::Result;
use brisk_proto::etcd::kv_client::KvClient;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::transactional_kv_client::TransactionalKvClient;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

use super::systems::{Cluster, System};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Workload {
    /// Puts of 256-byte values.
    Put,
    /// Linearizable gets.
    Get,
    /// Half puts, half linearizable gets.
    Mix,
    /// Read-modify-write of one key: brisk's OCC transaction, etcd's Txn comparing the
    /// key's mod revision.
    Txn,
    /// Puts of 4–64 KiB values.
    Bulk,
}

/// Distinct keys the load spreads over.
pub const KEYS: u64 = 10_000;

fn key(n: u64) -> Vec<u8> {
    format!("bench/{n:08}").into_bytes()
}

/// One client's connection to one system.
#[derive(Clone)]
pub enum Conn {
    Brisk(Channel),
    Etcd(Channel),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// A transaction that lost its comparison (counted as an operation).
    Conflict,
}

impl Conn {
    pub async fn put(&self, k: Vec<u8>, v: Vec<u8>) -> Result<Outcome, tonic::Status> {
        match self {
            Conn::Brisk(ch) => {
                RawKvClient::new(ch.clone())
                    .raw_put(brisk_proto::RawPutRequest { key: k, value: v })
                    .await?;
            }
            Conn::Etcd(ch) => {
                KvClient::new(ch.clone())
                    .put(brisk_proto::etcd::PutRequest {
                        key: k,
                        value: v,
                        lease: 0,
                    })
                    .await?;
            }
        }
        Ok(Outcome::Done)
    }

    pub async fn get(&self, k: Vec<u8>) -> Result<Outcome, tonic::Status> {
        match self {
            Conn::Brisk(ch) => {
                RawKvClient::new(ch.clone())
                    .raw_get(brisk_proto::RawGetRequest {
                        key: k,
                        at_ts: 0,
                        stale: false,
                    })
                    .await?;
            }
            Conn::Etcd(ch) => {
                KvClient::new(ch.clone()).range(etcd_get(k)).await?;
            }
        }
        Ok(Outcome::Done)
    }

    /// Reads `k` and writes it back with a new value if nothing changed it meanwhile.
    pub async fn read_modify_write(
        &self,
        k: Vec<u8>,
        v: Vec<u8>,
    ) -> Result<Outcome, tonic::Status> {
        match self {
            Conn::Brisk(ch) => {
                let mut t = TransactionalKvClient::new(ch.clone());
                let start_ts = t
                    .begin(brisk_proto::BeginRequest {})
                    .await?
                    .into_inner()
                    .start_ts;
                t.get(brisk_proto::TxnGetRequest {
                    start_ts,
                    key: k.clone(),
                })
                .await?;
                let r = t
                    .commit(brisk_proto::CommitRequest {
                        start_ts,
                        mutations: vec![brisk_proto::Mutation {
                            op: brisk_proto::mutation::Op::Put as i32,
                            key: k.clone(),
                            value: v,
                        }],
                        read_set: vec![k],
                    })
                    .await?
                    .into_inner();
                Ok(if r.committed {
                    Outcome::Done
                } else {
                    Outcome::Conflict
                })
            }
            Conn::Etcd(ch) => {
                use brisk_proto::etcd::{compare, request_op, Compare, RequestOp, TxnRequest};
                let mut kv = KvClient::new(ch.clone());
                let got = kv.range(etcd_get(k.clone())).await?.into_inner();
                let rev = got.kvs.first().map(|kv| kv.mod_revision).unwrap_or(0);
                let r = kv
                    .txn(TxnRequest {
                        compare: vec![Compare {
                            result: compare::CompareResult::Equal as i32,
                            target: compare::CompareTarget::Mod as i32,
                            key: k.clone(),
                            target_union: Some(compare::TargetUnion::ModRevision(rev)),
                        }],
                        success: vec![RequestOp {
                            request: Some(request_op::Request::RequestPut(
                                brisk_proto::etcd::PutRequest {
                                    key: k,
                                    value: v,
                                    lease: 0,
                                },
                            )),
                        }],
                        failure: vec![],
                    })
                    .await?
                    .into_inner();
                Ok(if r.succeeded {
                    Outcome::Done
                } else {
                    Outcome::Conflict
                })
            }
        }
    }
}

fn etcd_get(k: Vec<u8>) -> brisk_proto::etcd::RangeRequest {
    brisk_proto::etcd::RangeRequest {
        key: k,
        range_end: vec![],
        limit: 0,
        revision: 0,
        serializable: false,
    }
}

pub async fn connect(c: &Cluster, member: usize) -> Result<Conn> {
    let ch = c.channel(member).await?;
    Ok(match c.system {
        System::Brisk => Conn::Brisk(ch),
        System::Etcd => Conn::Etcd(ch),
    })
}

/// Whether member `i` serves a linearizable read now.
pub async fn linearizable_read_ok(c: &Cluster, i: usize) -> bool {
    let Ok(conn) = connect(c, i).await else {
        return false;
    };
    tokio::time::timeout(Duration::from_secs(2), conn.get(key(0)))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Whether member `i` acknowledges a write. A leader serves linearizable reads as soon as it
/// is elected, but brisk refuses writes (UNAVAILABLE, retryable) until the new leader has
/// fenced its clock; measuring before that would count start-up refusals as errors.
pub async fn write_ok(c: &Cluster, i: usize) -> bool {
    let Ok(conn) = connect(c, i).await else {
        return false;
    };
    tokio::time::timeout(Duration::from_secs(2), conn.put(key(0), vec![0; 8]))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// What one client measured.
pub struct ClientResult {
    pub latencies_us: Histogram<u64>,
    pub ops: u64,
    pub conflicts: u64,
    pub errors: u64,
    pub bytes: u64,
}

pub fn value(rng: &mut impl Rng, workload: Workload) -> Vec<u8> {
    let len = match workload {
        Workload::Bulk => rng.random_range(4 << 10..=64 << 10),
        _ => 256,
    };
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// Runs one client until `until`.
pub async fn client(conn: Conn, workload: Workload, until: Instant, seed: u64) -> ClientResult {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut r = ClientResult {
        latencies_us: Histogram::new_with_bounds(1, 120_000_000, 3)
            .expect("constant histogram bounds are valid"),
        ops: 0,
        conflicts: 0,
        errors: 0,
        bytes: 0,
    };
    while Instant::now() < until {
        let k = key(rng.random_range(0..KEYS));
        let put = match workload {
            Workload::Put | Workload::Bulk => true,
            Workload::Get => false,
            Workload::Mix => rng.random_bool(0.5),
            Workload::Txn => true,
        };
        let v = if put {
            value(&mut rng, workload)
        } else {
            vec![]
        };
        let len = v.len() as u64;
        let started = Instant::now();
        let result = match workload {
            Workload::Txn => conn.read_modify_write(k, v).await,
            _ if put => conn.put(k, v).await,
            _ => conn.get(k).await,
        };
        match result {
            Ok(outcome) => {
                let us = started.elapsed().as_micros() as u64;
                let _ = r.latencies_us.record(us.max(1));
                r.ops += 1;
                r.bytes += len;
                if outcome == Outcome::Conflict {
                    r.conflicts += 1;
                }
            }
            Err(_) => {
                r.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    r
}
