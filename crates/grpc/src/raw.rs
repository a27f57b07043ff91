//! `RawKV`: single-key operations, scans and timestamps.

use brisk_proto::raw_kv_server::RawKv;
use brisk_proto::*;
use brisk_service::{KeyRange, Read, ScanPage, Service, Versioned, Written};
use std::sync::Arc;
use tonic::{Request, Response, Status};

use crate::{origin, status_of};

pub struct RawKvService {
    pub service: Arc<Service>,
}

pub(crate) fn write_result(w: Written) -> Option<WriteResult> {
    Some(WriteResult {
        commit_ts: w.commit_ts.get(),
        log_index: w.log_index.get(),
    })
}

/// (found, value, commit_ts) of a point read.
pub(crate) fn found(v: Option<Versioned>) -> (bool, Vec<u8>, u64) {
    match v {
        Some(v) => (true, v.value, v.commit_ts.get()),
        None => (false, Vec::new(), 0),
    }
}

pub(crate) fn key_values(page: ScanPage) -> (Vec<KeyValue>, bool) {
    let pairs = page
        .pairs
        .into_iter()
        .map(|p| KeyValue {
            key: p.key,
            value: p.value,
            commit_ts: p.commit_ts.get(),
        })
        .collect();
    (pairs, page.truncated)
}

#[tonic::async_trait]
impl RawKv for RawKvService {
    async fn raw_put(
        &self,
        req: Request<RawPutRequest>,
    ) -> Result<Response<RawPutResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let w = self
            .service
            .put(from, r.key, r.value)
            .await
            .map_err(status_of)?;
        Ok(Response::new(RawPutResponse {
            result: write_result(w),
        }))
    }

    async fn raw_get(
        &self,
        req: Request<RawGetRequest>,
    ) -> Result<Response<RawGetResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let v = self
            .service
            .get(from, &r.key, Read::from_parts(r.at_ts, r.stale))
            .await
            .map_err(status_of)?;
        let (found, value, commit_ts) = found(v);
        Ok(Response::new(RawGetResponse {
            found,
            value,
            commit_ts,
        }))
    }

    async fn raw_delete(
        &self,
        req: Request<RawDeleteRequest>,
    ) -> Result<Response<RawDeleteResponse>, Status> {
        let from = origin(&req);
        let w = self
            .service
            .delete(from, req.into_inner().key)
            .await
            .map_err(status_of)?;
        Ok(Response::new(RawDeleteResponse {
            result: write_result(w),
        }))
    }

    async fn raw_delete_prefix(
        &self,
        req: Request<RawDeletePrefixRequest>,
    ) -> Result<Response<RawDeletePrefixResponse>, Status> {
        let from = origin(&req);
        let w = self
            .service
            .delete_prefix(from, req.into_inner().prefix)
            .await
            .map_err(status_of)?;
        Ok(Response::new(RawDeletePrefixResponse {
            result: write_result(w),
        }))
    }

    async fn raw_scan(
        &self,
        req: Request<RawScanRequest>,
    ) -> Result<Response<RawScanResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let range = KeyRange::from_parts(r.start, r.end, r.prefix).map_err(status_of)?;
        let page = self
            .service
            .scan(from, range, r.limit, Read::from_parts(r.at_ts, r.stale))
            .await
            .map_err(status_of)?;
        let (pairs, truncated) = key_values(page);
        Ok(Response::new(RawScanResponse { pairs, truncated }))
    }

    async fn raw_latest_commit_ts(
        &self,
        req: Request<RawLatestCommitTsRequest>,
    ) -> Result<Response<RawLatestCommitTsResponse>, Status> {
        let from = origin(&req);
        let r = req.into_inner();
        let read = if r.stale {
            Read::Stale
        } else {
            Read::Linearizable
        };
        let ts = self
            .service
            .latest_commit_ts(from, &r.key, read)
            .await
            .map_err(status_of)?;
        Ok(Response::new(RawLatestCommitTsResponse {
            found: ts.is_some(),
            commit_ts: ts.map_or(0, |t| t.get()),
        }))
    }

    async fn get_timestamp(
        &self,
        req: Request<GetTimestampRequest>,
    ) -> Result<Response<GetTimestampResponse>, Status> {
        let ts = self
            .service
            .timestamp(origin(&req))
            .await
            .map_err(status_of)?;
        Ok(Response::new(GetTimestampResponse { ts: ts.get() }))
    }
}
