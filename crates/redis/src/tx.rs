//! The optimistic transaction every command runs in.
//!
//! A command reads through [`Tx`] (a snapshot at the transaction's start, taken on the first
//! read) and buffers its writes; [`Tx::commit`] hands them to brisk as one OCC transaction
//! whose read set is every key read. A conflict means another client changed one of those keys
//! after the start: the caller runs the command again on a fresh transaction, so
//! read-modify-write commands (INCR, APPEND, SET NX, ...) are atomic, and MULTI/EXEC is one
//! brisk transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use brisk_service::{CommitOutcome, Mutation, Origin, Service, ServiceError};

use crate::error::CommandError;
use crate::keyspace::{record_key, Record};

pub struct Tx<'a> {
    service: &'a Service,
    start_ts: Option<u64>,
    read_set: BTreeSet<Vec<u8>>,
    /// Buffered writes by brisk key: Some(value) puts, None deletes.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The clock expiry is judged by, fixed for the whole transaction.
    now_ms: u64,
}

/// What a commit found.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    Yes,
    /// A key in the read or write set changed after the start: nothing was written.
    Conflict {
        key: Vec<u8>,
    },
}

pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl<'a> Tx<'a> {
    pub fn new(service: &'a Service) -> Self {
        Tx {
            service,
            start_ts: None,
            read_set: BTreeSet::new(),
            writes: BTreeMap::new(),
            now_ms: wall_clock_ms(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn service(&self) -> &'a Service {
        self.service
    }

    /// The transaction's start timestamp, taken now if no read took it yet.
    pub async fn start_ts(&mut self) -> Result<u64, ServiceError> {
        if let Some(ts) = self.start_ts {
            return Ok(ts);
        }
        let ts = self.service.begin(Origin::Client).await?;
        self.start_ts = Some(ts);
        Ok(ts)
    }

    /// Adds `bkey` to the read set without reading it (WATCH).
    pub fn watch(&mut self, bkey: Vec<u8>) {
        self.read_set.insert(bkey);
    }

    async fn get(&mut self, bkey: &[u8]) -> Result<Option<Vec<u8>>, ServiceError> {
        if let Some(w) = self.writes.get(bkey) {
            return Ok(w.clone());
        }
        let ts = self.start_ts().await?;
        let v = self.service.txn_get(Origin::Client, ts, bkey).await?;
        self.read_set.insert(bkey.to_vec());
        Ok(v.map(|v| v.value))
    }

    /// Redis key `key`'s record, None if absent or expired.
    pub async fn load(&mut self, key: &[u8]) -> Result<Option<Record>, CommandError> {
        let Some(bytes) = self.get(&record_key(key)).await? else {
            return Ok(None);
        };
        let r = Record::decode(bytes)?;
        Ok((!r.expired(self.now_ms)).then_some(r))
    }

    pub fn store(&mut self, key: &[u8], record: &Record) {
        self.writes.insert(record_key(key), Some(record.encode()));
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.writes.insert(record_key(key), None);
    }

    /// Writes the buffered changes atomically, if no key read or written changed since the
    /// start. A transaction that only reads commits nothing.
    pub async fn commit(mut self) -> Result<Committed, ServiceError> {
        if self.writes.is_empty() {
            return Ok(Committed::Yes);
        }
        // A single blind write cannot conflict with anything: it goes straight to the log.
        if self.read_set.is_empty() && self.writes.len() == 1 {
            if let Some((key, value)) = self.writes.pop_first() {
                match value {
                    Some(v) => self.service.put(Origin::Client, key, v).await?,
                    None => self.service.delete(Origin::Client, key).await?,
                };
            }
            return Ok(Committed::Yes);
        }
        let ts = self.start_ts().await?;
        let mutations = std::mem::take(&mut self.writes)
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => Mutation::Put { key, value },
                None => Mutation::Delete { key },
            })
            .collect();
        let read_set = std::mem::take(&mut self.read_set).into_iter().collect();
        match self
            .service
            .commit(Origin::Client, ts, mutations, read_set)
            .await?
        {
            CommitOutcome::Committed(_) => Ok(Committed::Yes),
            CommitOutcome::Conflict { key, .. } => Ok(Committed::Conflict { key }),
        }
    }
}
