//! The Raft log in its own RocksDB instance (`DATA_DIR/raft-log`).
//!
//! Column family `logs` maps a big-endian index to an encoded entry; `meta` holds the vote,
//! the committed log id and the last purged log id, so a node restarts after compaction.
//!
//! Group commit: `append` writes entries without fsync (they become readable at once) and
//! hands the flush callback to a flusher thread, which fsyncs the WAL once for every callback
//! queued meanwhile. Under load many appends share one fsync.
//!
//! The newest entries are also kept in memory ([`LogTail`]), so the state machine and
//! replication read them without going back to RocksDB.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use brisk_storage::{Durability, LogIndex};
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use rocksdb::{ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, DB};

use crate::codec;
use crate::fault;
use crate::log_tail::{LogTail, TAIL_BYTES, TAIL_ENTRIES};
use crate::metrics::GroupMetrics;
use crate::types::{Entry, GroupId, LogId, TypeConfig, Vote};

const CF_LOGS: &str = "logs";
const CF_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_PURGED: &[u8] = b"last_purged";
/// Set while the node rebuilds from the leader after a failed verification (I5): the index
/// it must apply before it votes, campaigns or serves again. Written in the same fsynced
/// batch that wipes the log, so a crash during recovery cannot leave a short log that votes.
const KEY_RECOVER_UNTIL: &[u8] = b"recover_until";

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    flusher: mpsc::Sender<IOFlushed<TypeConfig>>,
    /// WAL fsyncs completed (group-commit flushes and synced meta writes); durability tests
    /// check that acknowledged appends waited for one.
    wal_syncs: Arc<AtomicU64>,
    /// The newest entries (see [`LogTail`]). It never holds more than the disk: entries
    /// leave it before they are deleted and join it after they are written, and the lock is
    /// not held across RocksDB writes (a stalled write must not hold up readers).
    tail: Arc<Mutex<LogTail>>,
    /// Entries read back from RocksDB rather than from the tail.
    disk_reads: Arc<AtomicU64>,
    metrics: GroupMetrics,
}

fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

impl LogStore {
    /// Opens (or creates) group `group`'s log at `path`.
    pub fn open(path: &Path, group: GroupId) -> Result<Self, io::Error> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Opening replays the WAL: keep it bounded so a restart does not read back every
        // entry ever appended (the cold start must not be O(log size)). Purged entries are
        // dropped from SST files by compaction.
        opts.set_max_total_wal_size(32 << 20);
        opts.set_write_buffer_size(16 << 20);
        opts.set_max_write_buffer_number(brisk_storage::MEMTABLES);
        opts.set_bytes_per_sync(brisk_storage::BYTES_PER_SYNC);
        brisk_storage::opts_for_fast_open(&mut opts);
        let cfs = [CF_LOGS, CF_META].map(|n| ColumnFamilyDescriptor::new(n, opts.clone()));
        let db = Arc::new(DB::open_cf_descriptors(&opts, path, cfs).map_err(io_err)?);
        let (tx, rx) = mpsc::channel::<IOFlushed<TypeConfig>>();
        let flush_db = Arc::downgrade(&db);
        let wal_syncs = Arc::new(AtomicU64::new(0));
        let flush_syncs = wal_syncs.clone();
        let metrics = GroupMetrics::new(group);
        let flush_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || run_flusher(flush_db, rx, flush_syncs, flush_metrics))?;
        Ok(LogStore {
            db,
            flusher: tx,
            wal_syncs,
            tail: Arc::new(Mutex::new(LogTail::new(TAIL_BYTES, TAIL_ENTRIES))),
            disk_reads: Arc::new(AtomicU64::new(0)),
            metrics,
        })
    }

    fn tail(&self) -> MutexGuard<'_, LogTail> {
        // The tail's changes are collection updates that do not panic midway: a poisoned
        // lock still holds a consistent tail.
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries read back from RocksDB so far rather than from the in-memory tail.
    pub fn entries_read_from_disk(&self) -> u64 {
        self.disk_reads.load(Ordering::Relaxed)
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created by open()")
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        match self.db.get_cf(self.cf(CF_META), key).map_err(io_err)? {
            Some(raw) => Ok(Some(codec::decode(&raw)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        durability: Durability,
    ) -> io::Result<()> {
        let raw = codec::encode(value)?;
        self.db
            .put_cf_opt(self.cf(CF_META), key, raw, &durability.write_options())
            .map_err(io_err)?;
        if durability.is_sync() {
            self.wal_syncs.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// WAL fsyncs completed so far (see the field).
    pub fn wal_syncs(&self) -> u64 {
        self.wal_syncs.load(Ordering::SeqCst)
    }

    fn last_entry_log_id(&self) -> io::Result<Option<LogId>> {
        let mut it = self.db.iterator_cf(self.cf(CF_LOGS), IteratorMode::End);
        match it.next() {
            Some(item) => {
                let (_, v) = item.map_err(io_err)?;
                let entry: Entry = codec::decode(&v)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    /// Re-enables background compactions, paused during start-up.
    pub fn resume_compactions(&self) -> io::Result<()> {
        brisk_storage::resume_compactions(&self.db, &[CF_LOGS, CF_META]).map_err(io::Error::from)
    }

    /// The committed log id saved by openraft (for the inspector and readiness).
    pub fn committed(&self) -> io::Result<Option<LogId>> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    pub fn last_purged(&self) -> io::Result<Option<LogId>> {
        self.get_meta(KEY_PURGED)
    }

    /// Drops every entry and the purged and committed markers, keeping the vote, and records
    /// `recover_until` in the same fsynced batch (fail-closed recovery, I5: the node
    /// re-fetches its state from the leader, must not double-vote, and must not vote at all
    /// with the short log until it has applied `recover_until`, across restarts too).
    pub fn reset_for_recovery(&self, recover_until: LogIndex) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_LOGS), index_key(0), index_key(u64::MAX));
        batch.delete_cf(self.cf(CF_META), KEY_PURGED);
        batch.delete_cf(self.cf(CF_META), KEY_COMMITTED);
        batch.put_cf(
            self.cf(CF_META),
            KEY_RECOVER_UNTIL,
            codec::encode(&recover_until)?,
        );
        self.tail().clear();
        self.db
            .write_opt(batch, &Durability::Sync.write_options())
            .map_err(io_err)?;
        self.wal_syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The index an unfinished recovery must reach before the node votes again (see
    /// [`reset_for_recovery`](Self::reset_for_recovery)).
    pub fn recover_until(&self) -> io::Result<Option<LogIndex>> {
        self.get_meta(KEY_RECOVER_UNTIL)
    }

    /// Ends a recovery durably, once the state machine has applied its target.
    pub fn finish_recovery(&self) -> io::Result<()> {
        self.db
            .delete_cf_opt(
                self.cf(CF_META),
                KEY_RECOVER_UNTIL,
                &Durability::Sync.write_options(),
            )
            .map_err(io_err)?;
        self.wal_syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Whether this log holds nothing at all: no vote, no entry (nor purged ones), no
    /// recovery marker. A node with such a log never took part in a cluster.
    pub fn is_pristine(&self) -> io::Result<bool> {
        Ok(self.get_meta::<Vote>(KEY_VOTE)?.is_none()
            && self.last_log_id()?.is_none()
            && self.recover_until()?.is_none())
    }

    pub fn last_log_id(&self) -> io::Result<Option<LogId>> {
        Ok(newest(self.last_entry_log_id()?, self.last_purged()?))
    }
}

/// What the inspector shows of a Raft log, read without taking the node's lock.
#[derive(Debug, Clone, Default)]
pub struct LogSummary {
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
    pub last_purged: Option<LogId>,
    pub last_log_id: Option<LogId>,
    pub recover_until: Option<LogIndex>,
}

impl LogSummary {
    pub fn read_only(path: &Path) -> io::Result<Self> {
        let opts = Options::default();
        let db =
            DB::open_cf_for_read_only(&opts, path, [CF_LOGS, CF_META], false).map_err(io_err)?;
        let cf_meta = db
            .cf_handle(CF_META)
            .ok_or_else(|| io::Error::other("raft log has no meta column family"))?;
        let get =
            |key: &[u8]| -> io::Result<Option<Vec<u8>>> { db.get_cf(cf_meta, key).map_err(io_err) };
        let vote = get(KEY_VOTE)?.map(|r| codec::decode(&r)).transpose()?;
        let committed: Option<Option<LogId>> =
            get(KEY_COMMITTED)?.map(|r| codec::decode(&r)).transpose()?;
        let last_purged: Option<LogId> = get(KEY_PURGED)?.map(|r| codec::decode(&r)).transpose()?;
        let recover_until: Option<LogIndex> = get(KEY_RECOVER_UNTIL)?
            .map(|r| codec::decode(&r))
            .transpose()?;
        let cf_logs = db
            .cf_handle(CF_LOGS)
            .ok_or_else(|| io::Error::other("raft log has no logs column family"))?;
        let last_entry = match db.iterator_cf(cf_logs, IteratorMode::End).next() {
            Some(item) => {
                let (_, v) = item.map_err(io_err)?;
                let e: Entry = codec::decode(&v)?;
                Some(e.log_id)
            }
            None => None,
        };
        Ok(LogSummary {
            vote,
            committed: committed.flatten(),
            last_log_id: newest(last_entry, last_purged),
            last_purged,
            recover_until,
        })
    }
}

/// Fsyncs the WAL once for every batch of queued callbacks (group commit).
///
/// It holds the database weakly: the last `LogStore` handle dropped closes it at once, in the
/// dropping thread, not later in this detached one (RocksDB must not close while the process
/// exits).
fn run_flusher(
    db: std::sync::Weak<DB>,
    rx: mpsc::Receiver<IOFlushed<TypeConfig>>,
    syncs: Arc<AtomicU64>,
    metrics: GroupMetrics,
) {
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        while let Ok(more) = rx.try_recv() {
            pending.push(more);
        }
        let started = std::time::Instant::now();
        // A test build can be told to skip the fsync (the fault harness must catch it).
        let sync = !crate::fault::broken(crate::fault::BROKEN_UNSYNCED_LOG);
        let result = match db.upgrade() {
            Some(db) => db.flush_wal(sync),
            None => {
                for cb in pending {
                    cb.io_completed(Err(io::Error::other("the raft log store is closed")));
                }
                return;
            }
        };
        if result.is_ok() {
            // Counted before any callback runs: an append is acknowledged only after this.
            syncs.fetch_add(1, Ordering::SeqCst);
        }
        metrics
            .log_fsync_seconds
            .record(started.elapsed().as_secs_f64());
        metrics.log_group_commit_size.record(pending.len() as f64);
        for cb in pending {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::other(e.clone())),
            };
            cb.io_completed(r);
        }
    }
}

/// The later of the last entry and the purge marker. A purge past the last entry (a
/// follower installing a snapshot ahead of its log) that crashed between its fsynced marker
/// and the deletion leaves older entries behind: the log still ends at the marker.
fn newest(last_entry: Option<LogId>, last_purged: Option<LogId>) -> Option<LogId> {
    match (last_entry, last_purged) {
        (Some(e), Some(p)) if p.index > e.index => Some(p),
        (e, p) => e.or(p),
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => Some(e + 1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl LogStore {
    /// Entries with `start <= index < end` (`end == None`: to the last), stopping before the
    /// encoded bytes would exceed `byte_budget` (at least one entry is always returned).
    ///
    /// The entries returned are contiguous (a hole in the log is an error). Entries purged
    /// meanwhile may be missing at the beginning (`purge` keeps the last ones readable for a
    /// while, so this is rare); with `from_start`, the result then is empty rather than
    /// starting later than `start`: a replication read must begin exactly where it asked, or
    /// the leader would send entries that do not follow their `prev_log_id`. openraft treats
    /// an empty read as a heartbeat and retries.
    fn read_entries(
        &self,
        start: u64,
        end: Option<u64>,
        byte_budget: usize,
        from_start: bool,
    ) -> io::Result<Vec<Entry>> {
        // Cloned out of the lock: appends wait only for the handles to be copied.
        let held = self.tail().read(start, end, byte_budget);
        match held {
            Some(entries) => {
                self.metrics
                    .log_entries_read_memory
                    .increment(entries.len() as u64);
                Ok(entries.iter().map(|e| Entry::clone(e)).collect())
            }
            None => {
                let entries = self.read_entries_from_disk(start, end, byte_budget, from_start)?;
                self.disk_reads
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                self.metrics
                    .log_entries_read_disk
                    .increment(entries.len() as u64);
                Ok(entries)
            }
        }
    }

    fn read_entries_from_disk(
        &self,
        start: u64,
        end: Option<u64>,
        byte_budget: usize,
        from_start: bool,
    ) -> io::Result<Vec<Entry>> {
        let mut out: Vec<Entry> = Vec::new();
        let mut bytes = 0usize;
        let it = self.db.iterator_cf(
            self.cf(CF_LOGS),
            IteratorMode::From(&index_key(start), Direction::Forward),
        );
        for item in it {
            let (k, v) = item.map_err(io_err)?;
            let idx = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "log key is not 8 bytes")
            })?);
            if end.is_some_and(|e| idx >= e)
                || (!out.is_empty() && bytes.saturating_add(v.len()) > byte_budget)
            {
                break;
            }
            match out.last() {
                None if from_start && idx != start => {
                    tracing::debug!(
                        start,
                        first = idx,
                        "log entries purged under a replication read"
                    );
                    return Ok(Vec::new());
                }
                Some(prev) if prev.log_id.index + 1 != idx => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("hole in the raft log after index {}", prev.log_id.index),
                    ));
                }
                _ => {}
            }
            bytes = bytes.saturating_add(v.len());
            let entry: Entry = codec::decode(&v)?;
            if entry.log_id.index != idx {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("raft log key {idx} holds entry {}", entry.log_id.index),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds(&range);
        self.read_entries(start, end, usize::MAX, false)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta(KEY_VOTE)
    }

    /// Replication reads: at most [`REPLICATION_BATCH_BYTES`] of encoded entries (at least one
    /// entry), so one AppendEntries stays far below the transport's message limit whatever
    /// the value sizes.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, io::Error> {
        self.read_entries(start, Some(end), REPLICATION_BATCH_BYTES, true)
    }
}

/// Entries just below a purge point kept readable (see `purge`).
const PURGE_RETAIN: u64 = 1024;

/// Byte budget of one replication read (see `limited_get_log_entries`).
pub const REPLICATION_BATCH_BYTES: usize = 64 << 20;

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id = self.last_purged()?;
        let last_log_id = newest(self.last_entry_log_id()?, last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        // Raft safety: a vote must be durable before it is acted on.
        self.put_meta(KEY_VOTE, vote, Durability::Sync)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not fsynced: committed only tells a restarting node how far it may apply at once;
        // losing the newest value merely delays that until the leader's next heartbeat.
        self.put_meta(KEY_COMMITTED, &committed, Durability::Buffered)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        self.committed()
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_LOGS);
        let mut appended = Vec::new();
        for entry in entries {
            let encoded = codec::encode(&entry)?;
            batch.put_cf(cf, index_key(entry.log_id.index), &encoded);
            appended.push((entry, encoded.len()));
        }
        // Group commit: the flusher's WAL fsync makes the entries durable before the callback.
        self.db
            .write_opt(batch, &Durability::Buffered.write_options())
            .map_err(io_err)?;
        // Into the tail before the flush callback is queued: an entry can be committed, and
        // so applied, only once flushed, and then the tail holds it.
        let mut tail = self.tail();
        for (entry, len) in appended {
            tail.push(entry, len);
        }
        drop(tail);
        self.flusher
            .send(callback)
            .map_err(|_| io::Error::other("raft log flusher thread is gone"))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_LOGS), index_key(from), index_key(u64::MAX));
        self.tail().truncate_after(last_log_id.map(|l| l.index));
        self.db
            .write_opt(batch, &Durability::Sync.write_options())
            .map_err(io_err)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // I2: openraft purges only up to a snapshot it holds, and a snapshot becomes the
        // restart point only after the state machine's applied index >= its index was fsynced
        // (see snapshot::build). The purged marker is durable before entries go, so a crash in
        // between (the `mid_purge` crash point) leaves entries that are merely ignored.
        self.put_meta(KEY_PURGED, &log_id, Durability::Sync)?;
        fault::crash_point(fault::MID_PURGE);
        // When the log runs past the purge point, the last PURGE_RETAIN entries up to it stay
        // readable a little longer: openraft can plan a replication read just before it
        // purges, and a read that finds its first entries gone cannot be served (the entries
        // sent must follow their prev_log_id). They stay contiguous with the rest of the log;
        // a later purge deletes them. A purge past the last entry deletes everything.
        let keep_from = match self.last_entry_log_id()? {
            Some(last) if last.index > log_id.index => {
                (log_id.index + 1).saturating_sub(PURGE_RETAIN)
            }
            _ => log_id.index + 1,
        };
        self.tail().purge_before(keep_from);
        self.db
            .delete_range_cf(self.cf(CF_LOGS), index_key(0), index_key(keep_from))
            .map_err(io_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;
    use openraft::type_config::TypeConfigExt;

    use super::*;
    use crate::types::log_id;

    /// Appends are acknowledged (their IOFlushed callback fires) only after a WAL fsync:
    /// removing the flusher's fsync fails this test.
    #[tokio::test]
    async fn an_append_is_acknowledged_only_after_a_wal_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(&dir.path().join("raft-log"), GroupId::default()).unwrap();
        for round in 1..=3u64 {
            let before = log.wal_syncs();
            let (tx, rx) = TypeConfig::oneshot();
            log.append(
                [Entry::new_blank(log_id(1, 1, round))],
                IOFlushed::signal(tx),
            )
            .await
            .unwrap();
            rx.await.unwrap().unwrap();
            assert!(
                log.wal_syncs() > before,
                "append {round} acknowledged without a WAL fsync"
            );
        }
    }

    /// A replication read never starts past where it asked (entries purged under it): it
    /// comes back empty, and a full read returns what is left.
    #[tokio::test]
    async fn a_replication_read_over_purged_entries_comes_back_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(&dir.path().join("raft-log"), GroupId::default()).unwrap();
        let (tx, rx) = TypeConfig::oneshot();
        log.append(
            (1..=10).map(|i| Entry::new_blank(log_id(1, 1, i))),
            IOFlushed::signal(tx),
        )
        .await
        .unwrap();
        rx.await.unwrap().unwrap();
        // Purged entries just below the purge point stay readable a while.
        log.purge(log_id(1, 1, 6)).await.unwrap();
        let retained = log.limited_get_log_entries(3, 10).await.unwrap();
        assert_eq!(retained.first().map(|e| e.log_id.index), Some(3));
        assert_eq!(
            log.get_log_state().await.unwrap().last_purged_log_id,
            Some(log_id(1, 1, 6))
        );
        // Entries really gone: a read that would start late comes back empty.
        log.db
            .delete_range_cf(log.cf(CF_LOGS), index_key(0), index_key(7))
            .unwrap();
        log.tail().purge_before(7);
        assert!(log.limited_get_log_entries(3, 10).await.unwrap().is_empty());
        let rest = log.limited_get_log_entries(7, 11).await.unwrap();
        assert_eq!(rest.first().map(|e| e.log_id.index), Some(7));
        assert_eq!(rest.len(), 4);
        let all = log.try_get_log_entries(0..11).await.unwrap();
        assert_eq!(all.first().map(|e| e.log_id.index), Some(7));
        // A purge past the last entry (a snapshot ahead of the log) deletes everything, and
        // the log then ends at the purge point.
        log.purge(log_id(2, 1, 50)).await.unwrap();
        assert!(log.try_get_log_entries(0..100).await.unwrap().is_empty());
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(2, 1, 50))
        );
    }

    fn entry(term: u64, index: u64) -> Entry {
        Entry::new_blank(log_id(term, 1, index))
    }

    async fn append_flushed(log: &mut LogStore, entries: Vec<Entry>) {
        let (tx, rx) = TypeConfig::oneshot();
        log.append(entries, IOFlushed::signal(tx)).await.unwrap();
        rx.await.unwrap().unwrap();
    }

    /// Entries appended by this process are read back (to apply, to replicate) from memory;
    /// after a restart the same entries come from disk.
    #[tokio::test]
    async fn appended_entries_are_read_back_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft-log");
        let mut log = LogStore::open(&path, GroupId::default()).unwrap();
        append_flushed(&mut log, (1..=20).map(|i| entry(1, i)).collect()).await;
        let all = log.try_get_log_entries(1..=20).await.unwrap();
        let some = log.limited_get_log_entries(5, 9).await.unwrap();
        assert_eq!(log.entries_read_from_disk(), 0, "read back from disk");
        assert_eq!(all.len(), 20);
        assert_eq!(
            some.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            [5, 6, 7, 8]
        );
        drop(log);
        let mut log = LogStore::open(&path, GroupId::default()).unwrap();
        assert_eq!(log.try_get_log_entries(1..=20).await.unwrap(), all);
        assert_eq!(log.entries_read_from_disk(), 20);
    }

    /// Under any sequence of appends, overwrites, truncations, purges and recovery wipes, a
    /// read answers exactly what the log on disk holds, whether the tail serves it or not
    /// (a tail small enough to be evicted from all the time).
    #[tokio::test]
    async fn reads_through_the_tail_match_the_disk() {
        use rand::{Rng, SeedableRng};
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(&dir.path().join("raft-log"), GroupId::default()).unwrap();
        *log.tail() = LogTail::new(400, 12);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut term = 1;
        // Reads also start past the log's end, over what earlier tails held.
        let mut highest = 0;
        let (mut served_from_tail, mut served_from_disk) = (0, 0);
        for _ in 0..400 {
            let last = log.last_log_id().unwrap().map_or(0, |l| l.index);
            // openraft never truncates what is purged (purged entries are committed).
            let floor = log.last_purged().unwrap().map_or(0, |l| l.index);
            match rng.random_range(0..10) {
                0..=5 => {
                    let n = rng.random_range(1..6);
                    append_flushed(
                        &mut log,
                        (last + 1..=last + n).map(|i| entry(term, i)).collect(),
                    )
                    .await;
                }
                6 => {
                    // A new leader overwrites the end of the log.
                    term += 1;
                    let from = rng
                        .random_range(last.saturating_sub(8)..=last)
                        .max(floor + 1);
                    log.truncate_after((from > 1).then(|| log_id(term - 1, 1, from - 1)))
                        .await
                        .unwrap();
                    append_flushed(&mut log, (from..from + 3).map(|i| entry(term, i)).collect())
                        .await;
                }
                7 => {
                    let after = last.saturating_sub(rng.random_range(0..4)).max(floor);
                    log.truncate_after(Some(log_id(term, 1, after)))
                        .await
                        .unwrap()
                }
                8 => log
                    .purge(log_id(term, 1, rng.random_range(0..=last + 2)))
                    .await
                    .unwrap(),
                _ if rng.random_range(0..8) == 0 => log.reset_for_recovery(LogIndex(last)).unwrap(),
                _ => {}
            }
            let last = log.last_log_id().unwrap().map_or(0, |l| l.index);
            highest = highest.max(last);
            for _ in 0..4 {
                let start = rng.random_range(0..=highest + 2);
                let end = rng
                    .random_bool(0.5)
                    .then(|| start + rng.random_range(0..20));
                let budget = rng.random_range(0..300);
                let from_start = rng.random_bool(0.5);
                let disk_before = log.entries_read_from_disk();
                let got = log.read_entries(start, end, budget, from_start).unwrap();
                if log.entries_read_from_disk() == disk_before && !got.is_empty() {
                    served_from_tail += 1;
                } else {
                    served_from_disk += 1;
                }
                let want = log
                    .read_entries_from_disk(start, end, budget, from_start)
                    .unwrap();
                assert_eq!(got, want, "read({start}, {end:?}, {budget}, {from_start})");
            }
        }
        assert!(
            served_from_tail > 100 && served_from_disk > 100,
            "{served_from_tail} {served_from_disk}"
        );
    }

    /// A vote is durable before it is acted on; the recovery marker too.
    #[tokio::test]
    async fn votes_and_the_recovery_marker_are_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(&dir.path().join("raft-log"), GroupId::default()).unwrap();
        let before = log.wal_syncs();
        log.save_vote(&Vote::new(3, 1)).await.unwrap();
        assert_eq!(log.wal_syncs(), before + 1, "save_vote without an fsync");
        log.reset_for_recovery(LogIndex(42)).unwrap();
        assert_eq!(
            log.wal_syncs(),
            before + 2,
            "recovery marker without an fsync"
        );
        assert_eq!(log.recover_until().unwrap(), Some(LogIndex(42)));
        log.finish_recovery().unwrap();
        assert_eq!(log.wal_syncs(), before + 3);
        assert_eq!(log.recover_until().unwrap(), None);
    }
}
