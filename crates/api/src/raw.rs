//! `RawKV`: single-key operations.

use brisk_kv::hlc::{physical_ms, wall_clock_ms};
use brisk_kv::{Command, Response as KvResponse};
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::raw_kv_server::RawKv;
use brisk_proto::*;
use brisk_raft::node::ProposeError;
use tonic::{Request, Response, Status};

use crate::routing::{is_forwarded, Router};
use crate::Limits;
use crate::{on_leader, write_on_leader};

pub struct RawKvService {
    pub router: Router,
    pub limits: Limits,
}

/// Refuses read timestamps in the future (0 = latest is fine): a read there could miss
/// commits that land below it later.
pub(crate) fn check_at_ts(at_ts: u64) -> Result<(), Status> {
    if at_ts != 0 && physical_ms(at_ts) > wall_clock_ms() + 60_000 {
        return Err(Status::invalid_argument(format!(
            "at_ts {at_ts} is in the future (physical part {} ms)",
            physical_ms(at_ts)
        )));
    }
    Ok(())
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

    /// The newest commit of `key` at or below `last` (the last applied commit timestamp);
    /// with an empty key, `last` itself.
    fn local_latest(
        &self,
        key: &[u8],
        last: u64,
    ) -> Result<RawLatestCommitTsResponse, ProposeError> {
        if key.is_empty() {
            return Ok(RawLatestCommitTsResponse {
                found: last > 0,
                commit_ts: last,
            });
        }
        let ts = self
            .router
            .node
            .sm
            .kv
            .get(key, last)
            .map_err(unavailable)?
            .map(|v| v.commit_ts);
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
        write_on_leader!(self, fwd, r, RawKvClient, raw_put, local)
    }

    async fn raw_get(
        &self,
        req: Request<RawGetRequest>,
    ) -> Result<Response<RawGetResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.key("key", &r.key)?;
        check_at_ts(r.at_ts)?;
        let local = self
            .router
            .raw_read_ts(r.at_ts, r.stale)
            .await
            .and_then(|ts| self.local_get(&r.key, ts));
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
        write_on_leader!(self, fwd, r, RawKvClient, raw_delete, local)
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
        write_on_leader!(self, fwd, r, RawKvClient, raw_delete_prefix, local)
    }

    async fn raw_scan(
        &self,
        req: Request<RawScanRequest>,
    ) -> Result<Response<RawScanResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        self.limits.range(&r.start, &r.end, &r.prefix)?;
        let limit = self.limits.scan_limit(r.limit)?;
        check_at_ts(r.at_ts)?;
        let local = self
            .router
            .raw_read_ts(r.at_ts, r.stale)
            .await
            .and_then(|ts| self.local_scan(&r, limit, ts));
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
            .raw_read_ts(0, r.stale)
            .await
            .and_then(|ts| self.local_latest(&r.key, ts));
        on_leader!(self, fwd, r, RawKvClient, raw_latest_commit_ts, local)
    }

    async fn get_timestamp(
        &self,
        req: Request<GetTimestampRequest>,
    ) -> Result<Response<GetTimestampResponse>, Status> {
        let fwd = is_forwarded(&req);
        let r = req.into_inner();
        // A leader that was deposed without knowing it yet must not hand out a timestamp
        // below one its successor already issued: confirm leadership first.
        let local = match self.router.node.read_barrier().await {
            Ok(()) => self
                .router
                .node
                .issue_ts()
                .map(|ts| GetTimestampResponse { ts }),
            Err(e) => Err(e),
        };
        on_leader!(self, fwd, r, RawKvClient, get_timestamp, local)
    }
}
