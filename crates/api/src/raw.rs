//! `RawKV`: single-key operations.

use brisk_kv::hlc::{physical_ms, wall_clock_ms};
use brisk_kv::{Command, Response as KvResponse};
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::raw_kv_server::RawKv;
use brisk_proto::*;
use brisk_raft::node::ProposeError;
use tonic::{Request, Response, Status};

use crate::on_leader;
use crate::routing::{is_forwarded, Router};
use crate::Limits;

pub struct RawKvService {
    pub router: Router,
    pub limits: Limits,
}

/// Maps a requested read timestamp (0 = latest) to the store's, refusing timestamps in the
/// future: a read there could miss commits that land below it later.
pub(crate) fn read_ts(at_ts: u64) -> Result<u64, Status> {
    if at_ts == 0 {
        return Ok(u64::MAX);
    }
    if physical_ms(at_ts) > wall_clock_ms() + 60_000 {
        return Err(Status::invalid_argument(format!(
            "at_ts {at_ts} is in the future (physical part {} ms)",
            physical_ms(at_ts)
        )));
    }
    Ok(at_ts)
}

fn written(resp: KvResponse, log_index: u64) -> Result<WriteResult, ProposeError> {
    match resp {
        KvResponse::Written { commit_ts, .. } => Ok(WriteResult {
            commit_ts,
            log_index,
        }),
        other => Err(ProposeError::Fatal(format!(
            "unexpected apply result {other:?}"
        ))),
    }
}

/// Whether the byte budget, not the pair limit, ended a scan.
pub(crate) fn truncated_by_budget(found: &[brisk_storage::VersionedPair], limit: usize) -> bool {
    found.len() < limit
        && found
            .iter()
            .map(|p| p.key.len() + p.value.len())
            .sum::<usize>()
            >= crate::SCAN_BYTE_BUDGET
}

pub(crate) fn pairs(v: Vec<brisk_storage::VersionedPair>) -> Vec<KeyValue> {
    v.into_iter()
        .map(|p| KeyValue {
            key: p.key,
            value: p.value,
            commit_ts: p.commit_ts,
        })
        .collect()
}

fn unavailable(e: impl std::fmt::Display) -> ProposeError {
    ProposeError::Unavailable(format!("state machine read failed: {e}"))
}

impl RawKvService {
    async fn write(&self, command: Command) -> Result<WriteResult, ProposeError> {
        let (resp, index) = self.router.node.propose(command).await?;
        written(resp, index)
    }

    fn local_get(&self, key: &[u8], ts: u64) -> Result<RawGetResponse, ProposeError> {
        let v = self.router.node.sm.kv.get(key, ts).map_err(unavailable)?;
        Ok(match v {
            Some(brisk_storage::Version {
                commit_ts,
                value: Some(value),
            }) => RawGetResponse {
                found: true,
                value,
                commit_ts,
            },
            _ => RawGetResponse::default(),
        })
    }

    fn local_scan(
        &self,
        r: &RawScanRequest,
        limit: usize,
        ts: u64,
    ) -> Result<RawScanResponse, ProposeError> {
        let end = (!r.end.is_empty()).then_some(r.end.as_slice());
        let prefix = (!r.prefix.is_empty()).then_some(r.prefix.as_slice());
        let found = self
            .router
            .node
            .sm
            .kv
            .scan(&r.start, end, prefix, limit, crate::SCAN_BYTE_BUDGET, ts)
            .map_err(unavailable)?;
        let truncated = truncated_by_budget(&found, limit);
        Ok(RawScanResponse {
            pairs: pairs(found),
            truncated,
        })
    }

    fn local_latest(&self, key: &[u8]) -> Result<RawLatestCommitTsResponse, ProposeError> {
        if key.is_empty() {
            let ts = self.router.node.sm.kv.last_commit_ts();
            return Ok(RawLatestCommitTsResponse {
                found: ts > 0,
                commit_ts: ts,
            });
        }
        let store = self.router.node.sm.kv.store().map_err(unavailable)?;
        let ts = store.latest_commit_ts(key).map_err(unavailable)?;
        Ok(RawLatestCommitTsResponse {
            found: ts.is_some(),
            commit_ts: ts.unwrap_or(0),
        })
    }
}

#[tonic::async_trait]
impl RawKv for RawKvService {
    async fn raw_put(
        &self,
        req: Request<RawPutRequest>,
    ) -> Result<Response<RawPutResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.key("key", &r.key)?;
        self.limits.value(&r.value)?;
        let local = self
            .write(Command::Put {
                key: r.key.clone(),
                value: r.value.clone(),
            })
            .await
            .map(|w| RawPutResponse { result: Some(w) });
        on_leader!(self, fwd, r, RawKvClient, raw_put, local)
    }

    async fn raw_get(
        &self,
        req: Request<RawGetRequest>,
    ) -> Result<Response<RawGetResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.key("key", &r.key)?;
        let ts = read_ts(r.at_ts)?;
        let local = self
            .router
            .barrier_unless_stale(r.stale)
            .await
            .and_then(|()| self.local_get(&r.key, ts));
        on_leader!(self, fwd, r, RawKvClient, raw_get, local)
    }

    async fn raw_delete(
        &self,
        req: Request<RawDeleteRequest>,
    ) -> Result<Response<RawDeleteResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.key("key", &r.key)?;
        let local = self
            .write(Command::Delete { key: r.key.clone() })
            .await
            .map(|w| RawDeleteResponse { result: Some(w) });
        on_leader!(self, fwd, r, RawKvClient, raw_delete, local)
    }

    async fn raw_delete_prefix(
        &self,
        req: Request<RawDeletePrefixRequest>,
    ) -> Result<Response<RawDeletePrefixResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.key("prefix", &r.prefix)?;
        let local = self
            .write(Command::DeletePrefix {
                prefix: r.prefix.clone(),
            })
            .await
            .map(|w| RawDeletePrefixResponse { result: Some(w) });
        on_leader!(self, fwd, r, RawKvClient, raw_delete_prefix, local)
    }

    async fn raw_scan(
        &self,
        req: Request<RawScanRequest>,
    ) -> Result<Response<RawScanResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.range(&r.start, &r.end, &r.prefix)?;
        let limit = self.limits.scan_limit(r.limit)?;
        let ts = read_ts(r.at_ts)?;
        let local = self
            .router
            .barrier_unless_stale(r.stale)
            .await
            .and_then(|()| self.local_scan(&r, limit, ts));
        on_leader!(self, fwd, r, RawKvClient, raw_scan, local)
    }

    async fn raw_latest_commit_ts(
        &self,
        req: Request<RawLatestCommitTsRequest>,
    ) -> Result<Response<RawLatestCommitTsResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        if r.key.len() > self.limits.max_key_bytes {
            return Err(Status::invalid_argument("key exceeds the size limit"));
        }
        let local = self
            .router
            .barrier_unless_stale(r.stale)
            .await
            .and_then(|()| self.local_latest(&r.key));
        on_leader!(self, fwd, r, RawKvClient, raw_latest_commit_ts, local)
    }

    async fn get_timestamp(
        &self,
        req: Request<GetTimestampRequest>,
    ) -> Result<Response<GetTimestampResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        let local = self
            .router
            .node
            .issue_ts()
            .map(|ts| GetTimestampResponse { ts });
        on_leader!(self, fwd, r, RawKvClient, get_timestamp, local)
    }
}
