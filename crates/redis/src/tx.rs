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

use std::sync::atomic::{AtomicU64, Ordering};

use brisk_service::{CommitOutcome, KeyRange, Mutation, Origin, Service, ServiceError};

use crate::error::CommandError;
use crate::keyspace::{record_key, Record};
use brisk_service::Timestamp;

pub struct Tx<'a> {
    service: &'a Service,
    start_ts: Option<Timestamp>,
    read_set: BTreeSet<Vec<u8>>,
    /// Buffered writes by brisk key: Some(value) puts, None deletes.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The clock expiry is judged by, fixed for the whole transaction.
    now_ms: u64,
    /// Element prefixes of collections this transaction dropped, deleted once it commits.
    discarded: Vec<Vec<u8>>,
    /// Bytes of values read so far (bounded by [`READ_BUDGET`]).
    read_bytes: usize,
    /// Every buffered write's predecessor, newest last (see [`SavePoint`]).
    undo: Vec<Undo>,
    /// Keys added to the read set, in order (see [`SavePoint`]).
    read_log: Vec<Vec<u8>>,
    /// A write refused for its size (reported by [`Tx::take_refusal`]).
    refused: Option<CommandError>,
    /// Bytes of `writes` (keys and values) and `read_set` (keys), kept as they change: a
    /// batch asks after every command, and summing each time is quadratic in its length.
    entry_bytes: usize,
}

/// Bytes a buffered write adds to the commit's log entry.
fn write_bytes(key: &[u8], value: Option<&Vec<u8>>) -> usize {
    key.len() + value.map_or(0, Vec::len)
}

/// The most value bytes one command (or one EXEC) may read: a reply is built from what it
/// reads, so this bounds what one request can make a node hold (MGET of one large key a
/// million times would otherwise build a reply of terabytes).
pub const READ_BUDGET: usize = 64 << 20;

/// A moment of a transaction, to undo a command that failed half-way: how long the undo
/// log and the discard list were then.
pub struct SavePoint {
    undo: usize,
    discarded: usize,
    reads: usize,
}

/// What a buffered write replaced: the key and its previous buffered write, if any.
type Undo = (Vec<u8>, Option<Option<Vec<u8>>>);

/// One page of [`Tx::scan_page`].
pub struct ScannedPage {
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The stored key to resume after; None when the prefix is done.
    pub resume: Option<Vec<u8>>,
}

/// The first key after `key` among keys of at most `max_key_bytes`: `key` with a zero byte
/// appended, or, for a key at the limit, the next key of its length (None past the last).
pub fn key_after(key: &[u8], max_key_bytes: usize) -> Option<Vec<u8>> {
    if key.len() < max_key_bytes {
        let mut next = key.to_vec();
        next.push(0);
        Some(next)
    } else {
        prefix_end(key)
    }
}

/// Pairs read per page when a transaction scans a prefix.
const SCAN_PAGE: u32 = 10_000;

/// A generation number no collection used before: a counter from a random 64-bit start
/// per process (the standard library's OS-seeded hasher keys), so two nodes, or one node
/// before and after a restart, do not hand out the same numbers.
pub fn fresh_generation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if NEXT.load(Ordering::SeqCst) == 0 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(wall_clock_ms());
        let _ = NEXT.compare_exchange(0, h.finish() | 1, Ordering::SeqCst, Ordering::SeqCst);
    }
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// The first key after every key that begins with `prefix` (None: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
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
            discarded: Vec::new(),
            read_bytes: 0,
            undo: Vec::new(),
            read_log: Vec::new(),
            refused: None,
            entry_bytes: 0,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn service(&self) -> &'a Service {
        self.service
    }

    /// The transaction's start timestamp, taken now if no read took it yet.
    pub async fn start_ts(&mut self) -> Result<Timestamp, ServiceError> {
        if let Some(ts) = self.start_ts {
            return Ok(ts);
        }
        let ts = self.service.begin(Origin::Client).await?;
        self.start_ts = Some(ts);
        Ok(ts)
    }

    /// Adds `bkey` to the read set without reading it (WATCH).
    pub fn watch(&mut self, bkey: Vec<u8>) {
        self.record_read(bkey);
    }

    fn record_read(&mut self, bkey: Vec<u8>) {
        if self.read_set.insert(bkey.clone()) {
            self.entry_bytes += bkey.len();
            self.read_log.push(bkey);
        }
    }

    /// Every pair whose brisk key begins with `prefix`, in key order, as of the snapshot
    /// with this transaction's own writes applied. Not added to the read set: callers read
    /// the collection's record first, which every change of the collection rewrites.
    pub async fn scan_prefix(
        &mut self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, CommandError> {
        let ts = self.start_ts().await?;
        let mut found = BTreeMap::new();
        let mut range = KeyRange::Prefix(prefix.to_vec());
        loop {
            let page = self
                .service
                .txn_scan(Origin::Client, ts, range, SCAN_PAGE)
                .await?;
            let more = page.truncated || page.pairs.len() == SCAN_PAGE as usize;
            let last = page.pairs.last().map(|p| p.key.clone());
            let bytes: usize = page.pairs.iter().map(|p| p.key.len() + p.value.len()).sum();
            self.charge(bytes)?;
            found.extend(page.pairs.into_iter().map(|p| (p.key, p.value)));
            match last.and_then(|k| self.key_after(&k)) {
                Some(start) if more => {
                    range = KeyRange::Span {
                        start,
                        end: prefix_end(prefix),
                    };
                }
                _ => break,
            }
        }
        for (k, v) in self.writes.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            match v {
                Some(v) => found.insert(k.clone(), v.clone()),
                None => found.remove(k),
            };
        }
        Ok(found.into_iter().collect())
    }

    /// Up to `limit` pairs from `start` to the end of `prefix`, in key order, as of the
    /// snapshot with this transaction's own writes applied, and the stored key to resume
    /// after when more may follow (None: the prefix is done). The resume key is the last
    /// stored key read, not the last pair returned: the transaction's own deletes may have
    /// emptied the page. A page is cut short to stay within the read budget (one pair at
    /// least). Not added to the read set (see [`scan_prefix`](Self::scan_prefix)).
    pub async fn scan_page(
        &mut self,
        prefix: &[u8],
        start: Vec<u8>,
        limit: u32,
    ) -> Result<ScannedPage, CommandError> {
        let ts = self.start_ts().await?;
        let range = KeyRange::Span {
            start: start.clone(),
            end: prefix_end(prefix),
        };
        let page = self
            .service
            .txn_scan(Origin::Client, ts, range, limit)
            .await?;
        let mut more = page.truncated || page.pairs.len() == limit as usize;
        let room = READ_BUDGET.saturating_sub(self.read_bytes);
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let (mut bytes, mut resume) = (0usize, None);
        for p in page.pairs {
            let size = p.key.len() + p.value.len();
            if !found.is_empty() && bytes + size > room {
                more = true;
                break;
            }
            bytes += size;
            resume = Some(p.key.clone());
            found.insert(p.key, p.value);
        }
        self.charge(bytes)?;
        let resume = if more { resume } else { None };
        // The transaction's own writes, up to where the stored page ends (all of the rest
        // of the prefix when this is the last page).
        for (k, v) in self.writes.range(start..) {
            if !k.starts_with(prefix) || resume.as_ref().is_some_and(|r| k > r) {
                break;
            }
            match v {
                Some(v) => found.insert(k.clone(), v.clone()),
                None => found.remove(k),
            };
        }
        Ok(ScannedPage {
            pairs: found.into_iter().collect(),
            resume,
        })
    }

    /// The first key after `key` that the service's key limit accepts: `key` with a zero
    /// byte appended, or, for a key already at the limit (nothing longer exists), its
    /// successor of the same length.
    pub fn key_after(&self, key: &[u8]) -> Option<Vec<u8>> {
        key_after(key, self.service.limits().max_key_bytes)
    }

    /// Reads a collection element. Not added to the read set: the collection's record,
    /// read first, stands for every element (each change of the collection rewrites it).
    pub async fn get_element(&mut self, bkey: &[u8]) -> Result<Option<Vec<u8>>, CommandError> {
        self.read(bkey, false).await
    }

    /// Charges `bytes` of reply built from values already read (SRANDMEMBER's repeats).
    pub fn charge(&mut self, bytes: usize) -> Result<(), CommandError> {
        self.read_bytes = self.read_bytes.saturating_add(bytes);
        if self.read_bytes > READ_BUDGET {
            return Err(CommandError::ReadBudget(READ_BUDGET >> 20));
        }
        Ok(())
    }

    /// Buffers a write. A key or value over the server's limits is not buffered: the
    /// command is refused (see [`take_refusal`](Self::take_refusal)) instead of failing the
    /// commit for every command batched with it.
    fn buffer(&mut self, bkey: Vec<u8>, value: Option<Vec<u8>>) {
        let limits = self.service.limits();
        let value_len = value.as_ref().map_or(0, Vec::len);
        if bkey.len() > limits.max_key_bytes || value_len > limits.max_value_bytes {
            if self.refused.is_none() {
                self.refused = Some(CommandError::other(format!(
                    "ERR key or value too large: {} and {value_len} bytes stored, the limits are {} and {} bytes (the server's --max-key-bytes and --max-value-bytes)",
                    bkey.len(),
                    limits.max_key_bytes,
                    limits.max_value_bytes
                )));
            }
            return;
        }
        self.entry_bytes += write_bytes(&bkey, value.as_ref());
        let before = self.writes.insert(bkey.clone(), value);
        if let Some(replaced) = &before {
            self.entry_bytes -= write_bytes(&bkey, replaced.as_ref());
        }
        self.undo.push((bkey, before));
    }

    /// The refusal of a write since the last save point, if any (the command must then be
    /// rolled back and answer it).
    pub fn take_refusal(&mut self) -> Option<CommandError> {
        self.refused.take()
    }

    /// Bytes the commit's log entry would carry: keys and values written, keys read.
    pub fn entry_bytes(&self) -> usize {
        debug_assert_eq!(
            self.entry_bytes,
            self.writes
                .iter()
                .map(|(k, v)| write_bytes(k, v.as_ref()))
                .chain(self.read_set.iter().map(Vec::len))
                .sum::<usize>(),
            "the running entry size drifted from the buffered writes and reads"
        );
        self.entry_bytes
    }

    /// Whether anything was written since `point`.
    pub fn wrote_since(&self, point: &SavePoint) -> bool {
        self.undo.len() > point.undo || self.discarded.len() > point.discarded
    }

    /// Drops from the read set what was read since `point`: a command that wrote nothing
    /// was answered from the snapshot, so its reads need not hold the commit back.
    pub fn forget_reads_since(&mut self, point: &SavePoint) {
        for k in self.read_log.drain(point.reads..) {
            if self.read_set.remove(&k) {
                self.entry_bytes -= k.len();
            }
        }
    }

    pub fn save_point(&self) -> SavePoint {
        SavePoint {
            undo: self.undo.len(),
            discarded: self.discarded.len(),
            reads: self.read_log.len(),
        }
    }

    /// Undoes every write and read since `point` (a command that failed half-way).
    pub fn roll_back(&mut self, point: SavePoint) {
        self.forget_reads_since(&point);
        self.refused = None;
        while self.undo.len() > point.undo {
            let Some((key, before)) = self.undo.pop() else {
                break;
            };
            let replaced = match before {
                Some(v) => {
                    self.entry_bytes += write_bytes(&key, v.as_ref());
                    self.writes.insert(key.clone(), v)
                }
                None => self.writes.remove(&key),
            };
            if let Some(replaced) = replaced {
                self.entry_bytes -= write_bytes(&key, replaced.as_ref());
            }
        }
        self.discarded.truncate(point.discarded);
    }

    pub fn put_raw(&mut self, bkey: Vec<u8>, value: Vec<u8>) {
        self.buffer(bkey, Some(value));
    }

    pub fn delete_raw(&mut self, bkey: Vec<u8>) {
        self.buffer(bkey, None);
    }

    /// After the commit, deletes every key under `prefix` (a dropped collection's elements).
    pub fn discard_after_commit(&mut self, prefix: Vec<u8>) {
        self.discarded.push(prefix);
    }

    async fn read(&mut self, bkey: &[u8], record: bool) -> Result<Option<Vec<u8>>, CommandError> {
        if let Some(w) = self.writes.get(bkey).cloned() {
            self.charge(w.as_ref().map_or(0, Vec::len))?;
            return Ok(w);
        }
        let ts = self.start_ts().await?;
        let v = self.service.txn_get(Origin::Client, ts, bkey).await?;
        if record {
            self.record_read(bkey.to_vec());
        }
        self.charge(v.as_ref().map_or(0, |v| v.value.len()))?;
        Ok(v.map(|v| v.value))
    }

    /// Redis key `key`'s record as stored, expired or not.
    pub async fn load_stored(&mut self, key: &[u8]) -> Result<Option<Record>, CommandError> {
        match self.read(&record_key(key), true).await? {
            Some(bytes) => Ok(Some(Record::decode(bytes)?)),
            None => Ok(None),
        }
    }

    /// Redis key `key`'s record, None if absent or expired.
    pub async fn load(&mut self, key: &[u8]) -> Result<Option<Record>, CommandError> {
        let now = self.now_ms;
        Ok(self.load_stored(key).await?.filter(|r| !r.expired(now)))
    }

    /// Buffers `record` as key's value; a record larger than the server's value limit is
    /// refused here, before anything reaches the log.
    pub fn store(&mut self, key: &[u8], record: &Record) -> Result<(), CommandError> {
        let bytes = record.encode();
        if bytes.len() > self.service.limits().max_value_bytes {
            return Err(CommandError::other(format!(
                "ERR string exceeds maximum allowed size ({} bytes, the server's --max-value-bytes with {} bytes of record header)",
                self.service.limits().max_value_bytes,
                crate::keyspace::RECORD_HEADER
            )));
        }
        self.buffer(record_key(key), Some(bytes));
        Ok(())
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.buffer(record_key(key), None);
    }

    /// Writes the buffered changes atomically, if no key read or written changed since the
    /// start. A transaction that only reads commits nothing.
    pub async fn commit(mut self) -> Result<Committed, ServiceError> {
        let discarded = std::mem::take(&mut self.discarded);
        let committed = self.commit_writes().await?;
        if committed == Committed::Yes {
            // The elements of a dropped collection are unreachable once the commit removed
            // or replaced its record (a new collection takes a new generation); deleting them
            // is cleanup, and one that fails leaves only unreachable keys behind.
            for prefix in discarded {
                if let Err(e) = self.service.delete_prefix(Origin::Client, prefix).await {
                    tracing::warn!(error = %e, "deleting a dropped collection's elements failed");
                }
            }
        }
        Ok(committed)
    }

    async fn commit_writes(&mut self) -> Result<Committed, ServiceError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_after_a_key_stays_within_the_key_limit() {
        assert_eq!(key_after(b"ab", 4), Some(b"ab\x00".to_vec()));
        // At the limit nothing longer exists: the next key of the same length.
        assert_eq!(key_after(b"abcd", 4), Some(b"abce".to_vec()));
        assert_eq!(key_after(b"ab\xff\xff", 4), Some(b"ac".to_vec()));
        assert_eq!(key_after(b"\xff\xff", 2), None);
        for key in [b"ab".as_slice(), b"abcd", b"ab\xff\xff"] {
            let next = key_after(key, 4).unwrap();
            assert!(next.as_slice() > key && next.len() <= 4);
        }
    }
}
