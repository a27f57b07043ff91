//! Optimistic transactions.
//!
//! `begin` returns the replica's last applied commit timestamp after a linearizable barrier:
//! every commit at or below it is applied, and every later commit gets a larger timestamp
//! (commit timestamps increase in log order), so a read at `start_ts` is a stable snapshot.

use brisk_kv::{Command, Mutation, Response};
use brisk_proto::{mutation, BeginRequest, CommitRequest, TxnGetRequest, TxnScanRequest};

use crate::error::{Effect, ServiceError};
use crate::forward::{self, Origin};
use crate::kv::page_from_wire;
use crate::types::{CommitOutcome, KeyRange, ScanPage, Versioned, Written};
use crate::Service;
use brisk_kv::Timestamp;
use brisk_raft::LogIndex;

impl Service {
    /// A transaction's start timestamp: its reads see every commit at or below it.
    pub async fn begin(&self, origin: Origin) -> Result<Timestamp, ServiceError> {
        let local = match self.node.linearizable_barrier().await {
            Ok(()) => Ok(self.node.kv().last_commit_ts()),
            Err(e) => Err(e.into()),
        };
        self.on_leader(origin, Effect::Read, local, |ch| async move {
            let r = forward::txn_kv(ch)
                .begin(forward::request(BeginRequest {}))
                .await?;
            Ok(Timestamp(r.into_inner().start_ts))
        })
        .await
    }

    /// `key` as of the transaction's start.
    pub async fn txn_get(
        &self,
        origin: Origin,
        start_ts: Timestamp,
        key: &[u8],
    ) -> Result<Option<Versioned>, ServiceError> {
        self.limits.key("key", key)?;
        let local = match self.covered(start_ts).await {
            Ok(read_ts) => self.local_get(key, read_ts),
            Err(e) => Err(e),
        };
        let remote = TxnGetRequest {
            start_ts: start_ts.get(),
            key: key.to_vec(),
        };
        self.on_leader(origin, Effect::Read, local, |ch| async move {
            let r = forward::txn_kv(ch)
                .get(forward::request(remote))
                .await?
                .into_inner();
            Ok(r.found.then_some(Versioned {
                value: r.value,
                commit_ts: Timestamp(r.commit_ts),
            }))
        })
        .await
    }

    /// Up to `limit` pairs of `range` as of the transaction's start (0: the default limit).
    pub async fn txn_scan(
        &self,
        origin: Origin,
        start_ts: Timestamp,
        range: KeyRange,
        limit: u32,
    ) -> Result<ScanPage, ServiceError> {
        self.limits.range(&range)?;
        let max = self.limits.scan_limit(limit)?;
        let local = match self.covered(start_ts).await {
            Ok(read_ts) => self.local_scan(&range, max, read_ts),
            Err(e) => Err(e),
        };
        let (start, end, prefix) = range.into_parts();
        let remote = TxnScanRequest {
            start_ts: start_ts.get(),
            start,
            end,
            limit,
            prefix,
        };
        self.on_leader(origin, Effect::Read, local, |ch| async move {
            let r = forward::txn_kv(ch)
                .scan(forward::request(remote))
                .await?
                .into_inner();
            Ok(page_from_wire(r.pairs, r.truncated))
        })
        .await
    }

    /// Commits `mutations` if no key in them or in `read_set` was committed after
    /// `start_ts`; otherwise nothing is written and the outcome names a conflicting key.
    pub async fn commit(
        &self,
        origin: Origin,
        start_ts: Timestamp,
        mutations: Vec<Mutation>,
        read_set: Vec<Vec<u8>>,
    ) -> Result<CommitOutcome, ServiceError> {
        self.check_commit(&mutations, &read_set)?;
        let remote = CommitRequest {
            start_ts: start_ts.get(),
            mutations: mutations.iter().map(mutation_to_wire).collect(),
            read_set: read_set.clone(),
        };
        let local = self.local_commit(start_ts, mutations, read_set).await;
        self.on_leader(origin, Effect::Write, local, |ch| async move {
            let r = forward::txn_kv(ch)
                .commit(forward::request(remote))
                .await?
                .into_inner();
            Ok(match (r.committed, r.conflict) {
                (false, Some(c)) => CommitOutcome::Conflict {
                    key: c.key,
                    conflicting_commit_ts: Timestamp(c.conflicting_commit_ts),
                    log_index: LogIndex(r.log_index),
                },
                _ => CommitOutcome::Committed(Written {
                    commit_ts: Timestamp(r.commit_ts),
                    log_index: LogIndex(r.log_index),
                }),
            })
        })
        .await
    }

    /// Sizes: every key and value within its limit, and the whole entry within
    /// `max_entry_bytes` (every replica holds one entry's effects in memory while applying).
    fn check_commit(
        &self,
        mutations: &[Mutation],
        read_set: &[Vec<u8>],
    ) -> Result<(), ServiceError> {
        if mutations.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "a commit needs at least one mutation".into(),
            ));
        }
        let mut total = 0usize;
        for m in mutations {
            self.limits.key("mutation key", m.key())?;
            total = total.saturating_add(m.key().len());
            if let Mutation::Put { value, .. } = m {
                self.limits.value(value)?;
                total = total.saturating_add(value.len());
            }
        }
        for k in read_set {
            self.limits.key("read_set key", k)?;
            total = total.saturating_add(k.len());
        }
        self.limits.entry(total)
    }

    async fn local_commit(
        &self,
        start_ts: Timestamp,
        mutations: Vec<Mutation>,
        read_set: Vec<Vec<u8>>,
    ) -> Result<CommitOutcome, ServiceError> {
        let node = &self.node;
        // A start_ts above every commit was not handed out by `begin`: refuse it before it
        // reaches the log (apply refuses it too, deterministically). A leader that may not
        // have applied everything yet checks again after a barrier.
        if start_ts > node.kv().last_commit_ts() {
            node.read_barrier().await?;
            if start_ts > node.kv().last_commit_ts() {
                return Err(invalid_start_ts(start_ts, node.kv().last_commit_ts()));
            }
        }
        let command = Command::Txn {
            start_ts,
            mutations,
            read_set,
        };
        match node.propose(command).await? {
            (Response::Written { commit_ts, .. }, log_index) => {
                Ok(CommitOutcome::Committed(Written {
                    commit_ts,
                    log_index,
                }))
            }
            (
                Response::Conflict {
                    key,
                    conflicting_commit_ts,
                },
                log_index,
            ) => Ok(CommitOutcome::Conflict {
                key,
                conflicting_commit_ts,
                log_index,
            }),
            (
                Response::InvalidStartTs {
                    start_ts,
                    last_commit_ts,
                },
                _,
            ) => Err(invalid_start_ts(start_ts, last_commit_ts)),
            (other, _) => Err(ServiceError::Internal(format!(
                "unexpected apply result {other:?}"
            ))),
        }
    }
}

fn invalid_start_ts(start_ts: Timestamp, last_commit_ts: Timestamp) -> ServiceError {
    ServiceError::InvalidArgument(format!(
        "start_ts {start_ts} is above the last commit timestamp {last_commit_ts}; use the start_ts Begin returns"
    ))
}

fn mutation_to_wire(m: &Mutation) -> brisk_proto::Mutation {
    match m {
        Mutation::Put { key, value } => brisk_proto::Mutation {
            op: mutation::Op::Put as i32,
            key: key.clone(),
            value: value.clone(),
        },
        Mutation::Delete { key } => brisk_proto::Mutation {
            op: mutation::Op::Delete as i32,
            key: key.clone(),
            value: Vec::new(),
        },
    }
}
