//! Single-key operations, scans and timestamps.

use brisk_kv::{Command, Response};
use brisk_proto::{
    GetTimestampRequest, RawDeletePrefixRequest, RawDeleteRequest, RawGetRequest,
    RawLatestCommitTsRequest, RawPutRequest, RawScanRequest,
};
use brisk_storage::{Version, VersionedPair};

use crate::error::{Effect, ServiceError};
use crate::forward::{self, Origin};
use crate::types::{KeyRange, Pair, ScanPage, Versioned, Written};
use crate::{Read, Service};
use brisk_kv::Timestamp;
use brisk_raft::LogIndex;

impl Service {
    pub async fn put(
        &self,
        origin: Origin,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<Written, ServiceError> {
        self.limits.key("key", &key)?;
        self.limits.value(&value)?;
        let remote = RawPutRequest {
            key: key.clone(),
            value: value.clone(),
        };
        let local = self.write(Command::Put { key, value }).await;
        self.on_leader(origin, Effect::Write, local, |ch| async move {
            let r = forward::raw_kv(ch)
                .raw_put(forward::request(remote))
                .await?;
            Ok(written_from_wire(r.into_inner().result))
        })
        .await
    }

    pub async fn delete(&self, origin: Origin, key: Vec<u8>) -> Result<Written, ServiceError> {
        self.limits.key("key", &key)?;
        let remote = RawDeleteRequest { key: key.clone() };
        let local = self.write(Command::Delete { key }).await;
        self.on_leader(origin, Effect::Write, local, |ch| async move {
            let r = forward::raw_kv(ch)
                .raw_delete(forward::request(remote))
                .await?;
            Ok(written_from_wire(r.into_inner().result))
        })
        .await
    }

    /// Deletes every key that begins with `prefix`, atomically as of its commit timestamp.
    pub async fn delete_prefix(
        &self,
        origin: Origin,
        prefix: Vec<u8>,
    ) -> Result<Written, ServiceError> {
        self.limits.key("prefix", &prefix)?;
        let remote = RawDeletePrefixRequest {
            prefix: prefix.clone(),
        };
        let local = self.write(Command::DeletePrefix { prefix }).await;
        self.on_leader(origin, Effect::Write, local, |ch| async move {
            let r = forward::raw_kv(ch)
                .raw_delete_prefix(forward::request(remote))
                .await?;
            Ok(written_from_wire(r.into_inner().result))
        })
        .await
    }

    pub async fn get(
        &self,
        origin: Origin,
        key: &[u8],
        read: Read,
    ) -> Result<Option<Versioned>, ServiceError> {
        self.limits.key("key", key)?;
        read.check()?;
        let local = match self.read_ts(read).await {
            Ok(ts) => self.local_get(key, ts),
            Err(e) => Err(e),
        };
        let (at_ts, stale) = read.into_parts();
        let remote = RawGetRequest {
            key: key.to_vec(),
            at_ts,
            stale,
        };
        self.on_leader(origin, Effect::Read, local, |ch| async move {
            let r = forward::raw_kv(ch)
                .raw_get(forward::request(remote))
                .await?
                .into_inner();
            Ok(r.found.then_some(Versioned {
                value: r.value,
                commit_ts: Timestamp(r.commit_ts),
            }))
        })
        .await
    }

    /// Up to `limit` pairs of `range` in key order (0: the default limit).
    pub async fn scan(
        &self,
        origin: Origin,
        range: KeyRange,
        limit: u32,
        read: Read,
    ) -> Result<ScanPage, ServiceError> {
        self.limits.range(&range)?;
        let max = self.limits.scan_limit(limit)?;
        read.check()?;
        let local = match self.read_ts(read).await {
            Ok(ts) => self.local_scan(&range, max, ts),
            Err(e) => Err(e),
        };
        let (at_ts, stale) = read.into_parts();
        let (start, end, prefix) = range.into_parts();
        let remote = RawScanRequest {
            start,
            end,
            limit,
            at_ts,
            stale,
            prefix,
        };
        self.on_leader(origin, Effect::Read, local, |ch| async move {
            let r = forward::raw_kv(ch)
                .raw_scan(forward::request(remote))
                .await?
                .into_inner();
            Ok(page_from_wire(r.pairs, r.truncated))
        })
        .await
    }

    /// The newest commit timestamp of `key` (of the whole store when `key` is empty), or
    /// None if there is none.
    pub async fn latest_commit_ts(
        &self,
        origin: Origin,
        key: &[u8],
        read: Read,
    ) -> Result<Option<Timestamp>, ServiceError> {
        if key.len() > self.limits.max_key_bytes {
            return Err(ServiceError::InvalidArgument(
                "key exceeds the size limit".into(),
            ));
        }
        // Only "latest" has a meaning here: a timestamp bound is refused by the wire form.
        let read = match read {
            Read::At(_) => {
                return Err(ServiceError::InvalidArgument(
                    "the latest commit is read linearizably or stale, not at a timestamp".into(),
                ))
            }
            r => r,
        };
        let local = match self.read_ts(read).await {
            Ok(last) => self.local_latest(key, last),
            Err(e) => Err(e),
        };
        let remote = RawLatestCommitTsRequest {
            key: key.to_vec(),
            stale: read == Read::Stale,
        };
        self.on_leader(origin, Effect::Read, local, |ch| async move {
            let r = forward::raw_kv(ch)
                .raw_latest_commit_ts(forward::request(remote))
                .await?
                .into_inner();
            Ok(r.found.then_some(Timestamp(r.commit_ts)))
        })
        .await
    }

    /// A fresh timestamp from the leader's clock.
    pub async fn timestamp(&self, origin: Origin) -> Result<Timestamp, ServiceError> {
        // A leader that was deposed without knowing it yet must not hand out a timestamp
        // below one its successor already issued: confirm leadership first.
        let local = match self.node.read_barrier().await {
            Ok(()) => self.node.issue_ts().map_err(ServiceError::from),
            Err(e) => Err(e.into()),
        };
        self.on_leader(origin, Effect::Read, local, |ch| async move {
            let r = forward::raw_kv(ch)
                .get_timestamp(forward::request(GetTimestampRequest {}))
                .await?;
            Ok(Timestamp(r.into_inner().ts))
        })
        .await
    }

    pub(crate) async fn write(&self, command: Command) -> Result<Written, ServiceError> {
        match self.node.propose(command).await? {
            (Response::Written { commit_ts, .. }, log_index) => Ok(Written {
                commit_ts,
                log_index,
            }),
            (other, _) => Err(ServiceError::Internal(format!(
                "unexpected apply result {other:?}"
            ))),
        }
    }

    pub(crate) fn local_get(
        &self,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<Option<Versioned>, ServiceError> {
        Ok(match self.node.kv().get(key, ts)? {
            Some(Version {
                commit_ts,
                value: Some(value),
            }) => Some(Versioned { value, commit_ts }),
            _ => None,
        })
    }

    pub(crate) fn local_scan(
        &self,
        range: &KeyRange,
        limit: usize,
        ts: Timestamp,
    ) -> Result<ScanPage, ServiceError> {
        let (start, end, prefix): (&[u8], Option<&[u8]>, Option<&[u8]>) = match range {
            KeyRange::Span { start, end } => (start, end.as_deref(), None),
            KeyRange::Prefix(p) => (&[], None, Some(p)),
        };
        let found = self
            .node
            .kv()
            .scan(start, end, prefix, limit, crate::SCAN_BYTE_BUDGET, ts)?;
        Ok(page(found, limit))
    }

    /// The newest commit of `key` at or below `last` (the last applied commit timestamp);
    /// with an empty key, `last` itself.
    fn local_latest(&self, key: &[u8], last: Timestamp) -> Result<Option<Timestamp>, ServiceError> {
        if key.is_empty() {
            return Ok((last > Timestamp::ZERO).then_some(last));
        }
        Ok(self.node.kv().get(key, last)?.map(|v| v.commit_ts))
    }
}

/// A scan's pairs, and whether the byte budget (not the pair limit) ended it.
fn page(found: Vec<VersionedPair>, limit: usize) -> ScanPage {
    let truncated = found.len() < limit
        && found
            .iter()
            .map(|p| p.key.len() + p.value.len())
            .sum::<usize>()
            >= crate::SCAN_BYTE_BUDGET;
    ScanPage {
        pairs: found
            .into_iter()
            .map(|p| Pair {
                key: p.key,
                value: p.value,
                commit_ts: p.commit_ts,
            })
            .collect(),
        truncated,
    }
}

pub(crate) fn page_from_wire(pairs: Vec<brisk_proto::KeyValue>, truncated: bool) -> ScanPage {
    ScanPage {
        pairs: pairs
            .into_iter()
            .map(|p| Pair {
                key: p.key,
                value: p.value,
                commit_ts: Timestamp(p.commit_ts),
            })
            .collect(),
        truncated,
    }
}

fn written_from_wire(w: Option<brisk_proto::WriteResult>) -> Written {
    let w = w.unwrap_or_default();
    Written {
        commit_ts: Timestamp(w.commit_ts),
        log_index: LogIndex(w.log_index),
    }
}
