//! `TransactionalKV`: optimistic transactions.
//!
//! `Begin` returns the leader's last applied commit timestamp after a read-index barrier:
//! every commit at or below it is applied, and every later commit gets a larger timestamp
//! (commit timestamps increase in log order), so a read at `start_ts` is a stable snapshot.

use brisk_kv::{Command, Mutation, Response as KvResponse};
use brisk_proto::transactional_kv_client::TransactionalKvClient;
use brisk_proto::transactional_kv_server::TransactionalKv;
use brisk_proto::*;
use brisk_raft::node::ProposeError;
use tonic::{Request, Response, Status};

use crate::raw::pairs;
use crate::routing::{is_forwarded, Router};
use crate::Limits;
use crate::{on_leader, write_on_leader};

pub struct TxnService {
    pub router: Router,
    pub limits: Limits,
}

fn unavailable(e: impl std::fmt::Display) -> ProposeError {
    ProposeError::Unavailable(format!("state machine read failed: {e}"))
}

#[tonic::async_trait]
impl TransactionalKv for TxnService {
    async fn begin(&self, req: Request<BeginRequest>) -> Result<Response<BeginResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        let local = self
            .router
            .node
            .read_barrier()
            .await
            .map(|()| BeginResponse {
                start_ts: self.router.node.sm.kv.last_commit_ts(),
            });
        on_leader!(self, fwd, r, TransactionalKvClient, begin, local)
    }

    async fn get(&self, req: Request<TxnGetRequest>) -> Result<Response<TxnGetResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.key("key", &r.key)?;
        let local = match self.router.covered(r.start_ts).await {
            Ok(read_ts) => self
                .router
                .node
                .sm
                .kv
                .get(&r.key, read_ts)
                .map_err(unavailable)
                .map(|v| match v {
                    Some(brisk_storage::Version {
                        commit_ts,
                        value: Some(value),
                    }) => TxnGetResponse {
                        found: true,
                        value,
                        commit_ts,
                    },
                    _ => TxnGetResponse::default(),
                }),
            Err(e) => Err(e),
        };
        on_leader!(self, fwd, r, TransactionalKvClient, get, local)
    }

    async fn scan(
        &self,
        req: Request<TxnScanRequest>,
    ) -> Result<Response<TxnScanResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.range(&r.start, &r.end, &r.prefix)?;
        let limit = self.limits.scan_limit(r.limit)?;
        let local = match self.router.covered(r.start_ts).await {
            Ok(read_ts) => {
                let end = (!r.end.is_empty()).then_some(r.end.as_slice());
                let prefix = (!r.prefix.is_empty()).then_some(r.prefix.as_slice());
                self.router
                    .node
                    .sm
                    .kv
                    .scan(
                        &r.start,
                        end,
                        prefix,
                        limit,
                        crate::SCAN_BYTE_BUDGET,
                        read_ts,
                    )
                    .map_err(unavailable)
                    .map(|found| TxnScanResponse {
                        truncated: crate::raw::truncated_by_budget(&found, limit),
                        pairs: pairs(found),
                    })
            }
            Err(e) => Err(e),
        };
        on_leader!(self, fwd, r, TransactionalKvClient, scan, local)
    }

    async fn commit(
        &self,
        req: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        if r.mutations.is_empty() {
            return Err(Status::invalid_argument(
                "a commit needs at least one mutation",
            ));
        }
        let mut mutations = Vec::with_capacity(r.mutations.len());
        let mut total = 0usize;
        for m in &r.mutations {
            self.limits.key("mutation key", &m.key)?;
            total = total.saturating_add(m.key.len());
            match mutation::Op::try_from(m.op) {
                Ok(mutation::Op::Put) => {
                    self.limits.value(&m.value)?;
                    total = total.saturating_add(m.value.len());
                    mutations.push(Mutation::Put {
                        key: m.key.clone(),
                        value: m.value.clone(),
                    })
                }
                Ok(mutation::Op::Delete) => mutations.push(Mutation::Delete { key: m.key.clone() }),
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "unknown mutation op {}",
                        m.op
                    )))
                }
            }
        }
        for k in &r.read_set {
            self.limits.key("read_set key", k)?;
            total = total.saturating_add(k.len());
        }
        self.limits.entry(total)?;
        let command = Command::Txn {
            start_ts: r.start_ts,
            mutations,
            read_set: r.read_set.clone(),
        };
        // A start_ts above every commit was not handed out by Begin: refuse it before it
        // reaches the log (apply refuses it too, deterministically). A leader that may not
        // have applied everything yet checks again after a barrier.
        let checked = if r.start_ts > self.router.node.sm.kv.last_commit_ts() {
            self.router.node.read_barrier().await
        } else {
            Ok(())
        };
        if checked.is_ok() && r.start_ts > self.router.node.sm.kv.last_commit_ts() {
            return Err(Status::invalid_argument(format!(
                "start_ts {} is above the last commit timestamp {}; use the start_ts Begin returns",
                r.start_ts,
                self.router.node.sm.kv.last_commit_ts()
            )));
        }
        let proposed = match checked {
            Ok(()) => self.router.node.propose(command).await,
            Err(e) => Err(e),
        };
        let local = match proposed {
            Ok((KvResponse::Written { commit_ts, .. }, log_index)) => Ok(CommitResponse {
                committed: true,
                commit_ts,
                conflict: None,
                log_index,
            }),
            Ok((
                KvResponse::Conflict {
                    key,
                    conflicting_commit_ts,
                },
                log_index,
            )) => Ok(CommitResponse {
                committed: false,
                commit_ts: 0,
                conflict: Some(Conflict {
                    key,
                    conflicting_commit_ts,
                }),
                log_index,
            }),
            Ok((
                KvResponse::InvalidStartTs {
                    start_ts,
                    last_commit_ts,
                },
                _,
            )) => {
                return Err(Status::invalid_argument(format!(
                    "start_ts {start_ts} is above the last commit timestamp {last_commit_ts}; use the start_ts Begin returns"
                )))
            }
            Ok((other, _)) => Err(ProposeError::Fatal(format!(
                "unexpected apply result {other:?}"
            ))),
            Err(e) => Err(e),
        };
        write_on_leader!(self, fwd, r, TransactionalKvClient, commit, local)
    }
}
