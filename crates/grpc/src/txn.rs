//! `TransactionalKV`: optimistic transactions.

use std::sync::Arc;

use brisk_proto::transactional_kv_server::TransactionalKv;
use brisk_proto::*;
use brisk_service::{CommitOutcome, KeyRange, Service, ServiceError};
use tonic::{Request, Response, Status};

use crate::raw::{found, key_values};
use crate::{origin, status_of};
use brisk_service::Timestamp;

pub struct TxnService {
    pub service: Arc<Service>,
}

fn mutation_from_wire(m: Mutation) -> Result<brisk_service::Mutation, ServiceError> {
    match mutation::Op::try_from(m.op) {
        Ok(mutation::Op::Put) => Ok(brisk_service::Mutation::Put {
            key: m.key,
            value: m.value,
        }),
        Ok(mutation::Op::Delete) => Ok(brisk_service::Mutation::Delete { key: m.key }),
        Err(_) => Err(ServiceError::InvalidArgument(format!(
            "unknown mutation op {}",
            m.op
        ))),
    }
}

#[tonic::async_trait]
impl TransactionalKv for TxnService {
    async fn begin(&self, req: Request<BeginRequest>) -> Result<Response<BeginResponse>, Status> {
        let start_ts = self.service.begin(origin(&req)).await.map_err(status_of)?;
        Ok(Response::new(BeginResponse {
            start_ts: start_ts.get(),
        }))
    }

    async fn get(&self, req: Request<TxnGetRequest>) -> Result<Response<TxnGetResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let v = self
            .service
            .txn_get(from, Timestamp(r.start_ts), &r.key)
            .await
            .map_err(status_of)?;
        let (found, value, commit_ts) = found(v);
        Ok(Response::new(TxnGetResponse {
            found,
            value,
            commit_ts,
        }))
    }

    async fn scan(
        &self,
        req: Request<TxnScanRequest>,
    ) -> Result<Response<TxnScanResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let range = KeyRange::from_parts(r.start, r.end, r.prefix).map_err(status_of)?;
        let page = self
            .service
            .txn_scan(from, Timestamp(r.start_ts), range, r.limit)
            .await
            .map_err(status_of)?;
        let (pairs, truncated) = key_values(page);
        Ok(Response::new(TxnScanResponse { pairs, truncated }))
    }

    async fn commit(
        &self,
        req: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let mutations = r
            .mutations
            .into_iter()
            .map(mutation_from_wire)
            .collect::<Result<Vec<_>, _>>()
            .map_err(status_of)?;
        let outcome = self
            .service
            .commit(from, Timestamp(r.start_ts), mutations, r.read_set)
            .await
            .map_err(status_of)?;
        Ok(Response::new(match outcome {
            CommitOutcome::Committed(w) => CommitResponse {
                committed: true,
                commit_ts: w.commit_ts.get(),
                conflict: None,
                log_index: w.log_index.get(),
            },
            CommitOutcome::Conflict {
                key,
                conflicting_commit_ts,
                log_index,
            } => CommitResponse {
                committed: false,
                commit_ts: 0,
                conflict: Some(Conflict {
                    key,
                    conflicting_commit_ts: conflicting_commit_ts.get(),
                }),
                log_index: log_index.get(),
            },
        }))
    }
}
