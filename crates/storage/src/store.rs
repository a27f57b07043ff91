use std::path::{Path, PathBuf};

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, DB,
};

use crate::batch::ApplyBatch;
use crate::meta::{self, AppliedLogId, AppliedState, MetaSnapshot};
use crate::{mvcc_key, Durability, StorageError, Timestamp};

pub(crate) const CF_DATA: &str = "data";
pub(crate) const CF_META: &str = "meta";

/// Value tags in the `data` column family.
pub(crate) const TAG_PUT: u8 = 0;
pub(crate) const TAG_TOMBSTONE: u8 = 1;

/// One version of a key as seen by a read: `value == None` is a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub commit_ts: Timestamp,
    pub value: Option<Vec<u8>>,
}

/// A live key-value pair returned by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedPair {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub commit_ts: Timestamp,
}

/// The state machine's RocksDB instance.
pub struct Store {
    db: DB,
    path: PathBuf,
    /// WAL fsyncs issued through this handle (durability tests check that acknowledged
    /// work waited for one).
    wal_syncs: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Options for the store and, through [`column_families`], for each of its column families:
/// most options (compression, the paused compactions) are per family, and a family opened by
/// name alone would get RocksDB's defaults instead.
fn db_options(create: bool) -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(create);
    opts.create_missing_column_families(create);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts.set_max_background_jobs(2);
    opts.set_max_write_buffer_number(MEMTABLES);
    opts.set_bytes_per_sync(BYTES_PER_SYNC);
    // Cold start is O(1) only if opening the store is: RocksDB replays its WAL on open, so
    // the WAL is kept small. The meta column family takes tiny writes and would otherwise pin
    // old WAL files forever; this cap makes RocksDB flush whichever family holds them.
    opts.set_max_total_wal_size(MAX_WAL_BYTES);
    opts_for_fast_open(&mut opts);
    opts
}

fn column_families(opts: &Options) -> [ColumnFamilyDescriptor; 2] {
    let mut data = opts.clone();
    separate_large_values(&mut data);
    [
        ColumnFamilyDescriptor::new(CF_DATA, data),
        ColumnFamilyDescriptor::new(CF_META, opts.clone()),
    ]
}

/// Values of at least this many bytes live in blob files, outside the LSM tree.
pub const MIN_BLOB_BYTES: u64 = 4 << 10;

/// Key-value separation (RocksDB's integrated BlobDB) for the data family: a value of
/// [`MIN_BLOB_BYTES`] or more is written once, at flush, to a blob file, and compactions move
/// only its key and a reference instead of rewriting the value at every level. Blob files are
/// immutable like SST files (checkpoints hard-link them; so does a snapshot restore). Garbage
/// collection relocates the live values of the oldest quarter of blob files during
/// compaction, so overwritten and deleted values are reclaimed.
fn separate_large_values(opts: &mut Options) {
    opts.set_enable_blob_files(true);
    opts.set_min_blob_size(MIN_BLOB_BYTES);
    opts.set_blob_file_size(256 << 20);
    opts.set_enable_blob_gc(true);
    opts.set_blob_gc_age_cutoff(0.25);
}

/// Memtables per column family, the active one included. With RocksDB's default of two, a
/// second memtable filling while the first is still being flushed stops every write (and so
/// the apply of committed entries) until the flush ends: hundreds of milliseconds under a
/// stream of large values. Four let the apply go on through a slow flush.
pub const MEMTABLES: i32 = 4;

/// Flushes and compactions hand their output to the disk every this many bytes
/// (`sync_file_range`) instead of leaving it all dirty until the file is closed. On ext4's
/// ordered journal an fsync (of a WAL, on the commit path) can otherwise wait for the
/// writeback of every dirty page a concurrent flush or compaction left behind.
pub const BYTES_PER_SYNC: u64 = 1 << 20;

/// Upper bound on the WAL the state machine replays when it opens.
pub const MAX_WAL_BYTES: u64 = 64 << 20;

/// Options that keep `DB::open` cheap whatever the data size: no statistics pass over table
/// properties, and SST files opened lazily on first use (with the default of -1 RocksDB
/// opens every table file, reading its index, during `DB::open`: O(data)).
///
/// Compactions start disabled: compaction debt left by a write burst before the restart would
/// otherwise compete with the start itself. The node resumes them once ready
/// ([`Store::resume_compactions`]).
pub fn opts_for_fast_open(opts: &mut Options) {
    opts.set_skip_stats_update_on_db_open(true);
    opts.set_max_open_files(1024);
    opts.set_disable_auto_compactions(true);
}

/// Re-enables automatic compactions on every column family of `db` (see
/// [`opts_for_fast_open`]).
pub fn resume_compactions(db: &DB, column_families: &[&str]) -> Result<(), StorageError> {
    for name in column_families {
        if let Some(cf) = db.cf_handle(name) {
            db.set_options_cf(cf, &[("disable_auto_compactions", "false")])?;
        }
    }
    db.set_options(&[("disable_auto_compactions", "false")])?;
    Ok(())
}

impl Store {
    /// Opens the store at `path`, creating it when absent.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_with(path, true)
    }

    /// Opens an existing store; [`StorageError::Missing`] when `path` holds none. The
    /// cold-start gate uses this so a missing store is reported, not silently recreated.
    pub fn open_existing(path: &Path) -> Result<Self, StorageError> {
        if !path.join("CURRENT").exists() {
            return Err(StorageError::Missing(path.to_path_buf()));
        }
        Self::open_with(path, false)
    }

    /// Opens a store read-only, even while a running node holds it (the inspector).
    pub fn open_read_only(path: &Path) -> Result<Self, StorageError> {
        if !path.join("CURRENT").exists() {
            return Err(StorageError::Missing(path.to_path_buf()));
        }
        let opts = db_options(false);
        let db = DB::open_cf_descriptors_read_only(&opts, path, column_families(&opts), false)?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
            wal_syncs: Default::default(),
        })
    }

    fn open_with(path: &Path, create: bool) -> Result<Self, StorageError> {
        let opts = db_options(create);
        let db = DB::open_cf_descriptors(&opts, path, column_families(&opts))?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
            wal_syncs: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn cf_data(&self) -> &ColumnFamily {
        self.db
            .cf_handle(CF_DATA)
            .expect("the data column family is created by open()")
    }

    pub(crate) fn cf_meta(&self) -> &ColumnFamily {
        self.db
            .cf_handle(CF_META)
            .expect("the meta column family is created by open()")
    }

    pub(crate) fn write(
        &self,
        batch: rocksdb::WriteBatch,
        durability: Durability,
    ) -> Result<(), StorageError> {
        self.db.write_opt(batch, &durability.write_options())?;
        if durability.is_sync() {
            self.count_wal_sync();
        }
        Ok(())
    }

    fn count_wal_sync(&self) {
        self.wal_syncs
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many WAL fsyncs this handle has completed (synced writes and [`sync_wal`]).
    ///
    /// [`sync_wal`]: Self::sync_wal
    pub fn wal_syncs(&self) -> u64 {
        self.wal_syncs.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Starts the one batch through which an entry's effects reach the store (I1).
    pub fn begin_apply(&self, state: AppliedState) -> ApplyBatch<'_> {
        ApplyBatch::new(self, state)
    }

    /// Reads every meta key. O(1) in data size.
    pub fn meta(&self) -> Result<MetaSnapshot, StorageError> {
        let cf = self.cf_meta();
        let applied = match self.db.get_cf(cf, meta::KEY_APPLIED)? {
            Some(raw) => Some(AppliedLogId::decode(&raw).ok_or_else(|| {
                StorageError::corrupt("applied log id", format!("{} bytes", raw.len()))
            })?),
            None => None,
        };
        let membership = self.db.get_cf(cf, meta::KEY_MEMBERSHIP)?;
        let last_commit_ts = match self.db.get_cf(cf, meta::KEY_LAST_COMMIT_TS)? {
            Some(raw) => Timestamp(meta::decode_u64("last commit ts", &raw)?),
            None => Timestamp::ZERO,
        };
        let hlc_ceiling_ms = match self.db.get_cf(cf, meta::KEY_HLC_CEILING)? {
            Some(raw) => meta::decode_u64("hlc ceiling", &raw)?,
            None => 0,
        };
        Ok(MetaSnapshot {
            applied,
            membership,
            last_commit_ts,
            hlc_ceiling_ms,
        })
    }

    /// Removes the applied-log-id meta key. Only for tests that simulate a store written by a
    /// version without it (the gate's `missing_meta` case); compiled only with the
    /// `test-hooks` feature, so no production path can write outside an [`ApplyBatch`] (I1).
    #[cfg(feature = "test-hooks")]
    pub fn remove_applied_for_test(&self) -> Result<(), StorageError> {
        self.db.delete_cf(self.cf_meta(), meta::KEY_APPLIED)?;
        self.db.flush_wal(true)?;
        Ok(())
    }

    /// The newest version of `key` with `commit_ts <= ts`, tombstones included.
    pub fn get_at(&self, key: &[u8], ts: Timestamp) -> Result<Option<Version>, StorageError> {
        let seek = mvcc_key::encode(key, ts);
        let prefix = mvcc_key::encode_user_key(key);
        let mut iter = self.db.iterator_cf(
            self.cf_data(),
            IteratorMode::From(&seek, Direction::Forward),
        );
        match iter.next() {
            Some(item) => {
                let (raw_key, raw_val) = item?;
                if !raw_key.starts_with(&prefix) {
                    return Ok(None);
                }
                let (_, commit_ts) = mvcc_key::decode(&raw_key)
                    .ok_or_else(|| StorageError::corrupt("data key", hex(&raw_key)))?;
                Ok(Some(Version {
                    commit_ts,
                    value: decode_value(&raw_val)?,
                }))
            }
            None => Ok(None),
        }
    }

    /// The commit timestamp of the newest version of `key` (a tombstone counts).
    pub fn latest_commit_ts(&self, key: &[u8]) -> Result<Option<Timestamp>, StorageError> {
        Ok(self.get_at(key, Timestamp::MAX)?.map(|v| v.commit_ts))
    }

    /// The first of `keys` whose newest version (a tombstone counts) was committed after
    /// `ts`, with that version's commit timestamp: a transaction's conflict check. One
    /// iterator serves every key (a seek each), where [`latest_commit_ts`] builds one per key.
    ///
    /// [`latest_commit_ts`]: Self::latest_commit_ts
    pub fn first_committed_after<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        ts: Timestamp,
    ) -> Result<Option<(Vec<u8>, Timestamp)>, StorageError> {
        let mut iter = self.db.raw_iterator_cf(self.cf_data());
        for key in keys {
            let versions = mvcc_key::encode_user_key(key);
            iter.seek(mvcc_key::encode(key, Timestamp::MAX));
            iter.status()?;
            let Some(raw_key) = iter.key().filter(|k| k.starts_with(&versions)) else {
                continue;
            };
            let (_, commit_ts) = mvcc_key::decode(raw_key)
                .ok_or_else(|| StorageError::corrupt("data key", hex(raw_key)))?;
            if commit_ts > ts {
                return Ok(Some((key.to_vec(), commit_ts)));
            }
        }
        Ok(None)
    }

    /// Live pairs visible at `ts` with `start <= key < end` (`end == None`: unbounded) and,
    /// when given, starting with `prefix`; at most `limit` pairs, in key order, and stopping
    /// after the pair that brings the keys and values returned to `byte_budget` or more.
    pub fn scan_at(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        prefix: Option<&[u8]>,
        limit: usize,
        byte_budget: usize,
        ts: Timestamp,
    ) -> Result<Vec<VersionedPair>, StorageError> {
        let mut bytes = 0usize;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let start = match prefix {
            Some(p) if p > start => p,
            _ => start,
        };
        let seek = mvcc_key::encode_prefix(start);
        let mut ropts = ReadOptions::default();
        ropts.set_total_order_seek(true);
        let iter = self.db.iterator_cf_opt(
            self.cf_data(),
            ropts,
            IteratorMode::From(&seek, Direction::Forward),
        );
        let mut done_key: Option<Vec<u8>> = None;
        for item in iter {
            let (raw_key, raw_val) = item?;
            let (key, commit_ts) = mvcc_key::decode(&raw_key)
                .ok_or_else(|| StorageError::corrupt("data key", hex(&raw_key)))?;
            if let Some(end) = end {
                if key.as_slice() >= end {
                    break;
                }
            }
            if let Some(p) = prefix {
                if !key.starts_with(p) {
                    break;
                }
            }
            if key.as_slice() < start
                || done_key.as_deref() == Some(key.as_slice())
                || commit_ts > ts
            {
                continue;
            }
            if let Some(value) = decode_value(&raw_val)? {
                bytes = bytes.saturating_add(key.len() + value.len());
                out.push(VersionedPair {
                    key: key.clone(),
                    value,
                    commit_ts,
                });
                if out.len() >= limit || bytes >= byte_budget {
                    break;
                }
            }
            done_key = Some(key);
        }
        Ok(out)
    }

    /// Keys (no values) live at `ts` that start with `prefix` and sort at or after `from`;
    /// at most `limit` of them, in key order. Memory is bounded by `limit` keys whatever the
    /// size of the values or of the keyspace.
    pub fn live_keys_at(
        &self,
        from: &[u8],
        prefix: &[u8],
        limit: usize,
        ts: Timestamp,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut out = Vec::new();
        let start = if from > prefix { from } else { prefix };
        let seek = mvcc_key::encode_prefix(start);
        let mut ropts = ReadOptions::default();
        ropts.set_total_order_seek(true);
        let mut iter = self.db.raw_iterator_cf_opt(self.cf_data(), ropts);
        iter.seek(&seek);
        let mut done_key: Option<Vec<u8>> = None;
        while iter.valid() && out.len() < limit {
            let Some(raw_key) = iter.key() else { break };
            let (key, commit_ts) = mvcc_key::decode(raw_key)
                .ok_or_else(|| StorageError::corrupt("data key", hex(raw_key)))?;
            if !key.starts_with(prefix) {
                break;
            }
            let seen = done_key.as_deref() == Some(key.as_slice());
            if !seen && key.as_slice() >= start && commit_ts <= ts {
                // The newest version at or below ts decides: a value is live, a tombstone not.
                let raw_val = iter.value().unwrap_or_default();
                if decode_value_tag(raw_val)? == TAG_PUT {
                    out.push(key.clone());
                }
                done_key = Some(key);
            }
            iter.next();
        }
        iter.status()?;
        Ok(out)
    }

    /// Every version of every key plus the meta keys, in storage order; tests and the
    /// inspector hash this to compare replicas.
    pub fn for_each_raw(&self, mut f: impl FnMut(&str, &[u8], &[u8])) -> Result<(), StorageError> {
        for (name, cf) in [(CF_META, self.cf_meta()), (CF_DATA, self.cf_data())] {
            for item in self.db.iterator_cf(cf, IteratorMode::Start) {
                let (k, v) = item?;
                f(name, &k, &v);
            }
        }
        Ok(())
    }

    /// Creates a RocksDB checkpoint (hard-linked SST and blob files, O(files)) of the current
    /// state in `dir`, which must not exist. Writes may go on meanwhile: the memtables are
    /// flushed, and the WAL written since the flush point is copied up to one point in the
    /// write sequence, so opening the checkpoint yields the state at that point (whole write
    /// batches only).
    pub fn checkpoint(&self, dir: &Path) -> Result<(), StorageError> {
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.db)?;
        cp.create_checkpoint(dir)?;
        Ok(())
    }

    /// Fsyncs the WAL: every batch committed so far is durable when this returns (I2).
    pub fn sync_wal(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true)?;
        self.count_wal_sync();
        Ok(())
    }

    /// Re-enables background compactions, paused during start-up (see [`opts_for_fast_open`]).
    pub fn resume_compactions(&self) -> Result<(), StorageError> {
        resume_compactions(&self.db, &[CF_DATA, CF_META])
    }

    /// Approximate live data size, for metrics: table files plus the blob files that hold
    /// the large values.
    pub fn approximate_size_bytes(&self) -> u64 {
        [
            "rocksdb.total-sst-files-size",
            "rocksdb.total-blob-file-size",
        ]
        .into_iter()
        .filter_map(|p| {
            self.db
                .property_int_value_cf(self.cf_data(), p)
                .ok()
                .flatten()
        })
        .sum()
    }
}

pub(crate) fn decode_value(raw: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
    match raw.first() {
        Some(&TAG_PUT) => Ok(Some(raw[1..].to_vec())),
        Some(&TAG_TOMBSTONE) => Ok(None),
        _ => Err(StorageError::corrupt(
            "data value",
            format!("tag {:?}", raw.first()),
        )),
    }
}

/// The tag of a stored value (put or tombstone) without copying the value.
fn decode_value_tag(raw: &[u8]) -> Result<u8, StorageError> {
    match raw.first() {
        Some(&t) if t == TAG_PUT || t == TAG_TOMBSTONE => Ok(t),
        _ => Err(StorageError::corrupt(
            "data value",
            format!("tag {:?}", raw.first()),
        )),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value RocksDB recorded for `option` of column family `cf` in the newest OPTIONS
    /// file under `dir` (RocksDB rewrites it on open and on every option change).
    fn recorded_option(dir: &Path, cf: &str, option: &str) -> String {
        let newest = std::fs::read_dir(dir)
            .expect("store directory")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_prefix("OPTIONS-")?.parse::<u64>().ok())
            .max()
            .expect("an OPTIONS file");
        let text = std::fs::read_to_string(dir.join(format!("OPTIONS-{newest:06}")))
            .expect("readable OPTIONS file");
        let section = format!("[CFOptions \"{cf}\"]");
        let body = text.split(&section).nth(1).expect("the family's section");
        let body = body.split("\n[").next().unwrap_or(body);
        body.lines()
            .filter_map(|l| l.trim().strip_prefix(option)?.strip_prefix('='))
            .next()
            .unwrap_or_else(|| panic!("{option} recorded for {cf}"))
            .to_string()
    }

    /// The batch of the store's first applied entry.
    fn first_apply(store: &Store) -> ApplyBatch<'_> {
        store.begin_apply(AppliedState {
            log_id: AppliedLogId {
                index: crate::LogIndex(1),
                term: 1,
                leader_node: 1,
            },
            membership: Vec::new(),
        })
    }

    #[test]
    fn the_conflict_check_finds_the_first_key_committed_after_a_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut batch = first_apply(&store);
        batch.put(b"a", Timestamp(5), b"old");
        batch.put(b"a", Timestamp(9), b"new");
        batch.put(b"a\x00", Timestamp(20), b"");
        batch.put(b"ab", Timestamp(3), b"v");
        batch.delete(b"gone", Timestamp(12));
        batch.commit(Durability::Sync).unwrap();
        let check = |keys: &[&[u8]], ts: u64| {
            let found = store
                .first_committed_after(keys.iter().copied(), Timestamp(ts))
                .unwrap();
            // The per-key reading gives the same answer.
            let slow = keys.iter().find_map(|k| {
                let t = store.latest_commit_ts(k).unwrap()?;
                (t > Timestamp(ts)).then(|| (k.to_vec(), t))
            });
            assert_eq!(found, slow, "{keys:?} after {ts}");
            found
        };
        // The newest version decides, not an older one nor a longer key sharing the bytes.
        assert_eq!(check(&[b"a"], 8), Some((b"a".to_vec(), Timestamp(9))));
        assert_eq!(check(&[b"a", b"ab"], 9), None);
        assert_eq!(
            check(&[b"ab", b"a\x00"], 9),
            Some((b"a\x00".to_vec(), Timestamp(20)))
        );
        // A tombstone is a commit; a key never written is none; order is the caller's.
        assert_eq!(
            check(&[b"missing", b"gone"], 10),
            Some((b"gone".to_vec(), Timestamp(12)))
        );
        assert_eq!(
            check(&[b"zzz", b"a"], 4),
            Some((b"a".to_vec(), Timestamp(9)))
        );
        assert_eq!(check(&[], 0), None);
    }

    #[test]
    fn large_values_live_in_blob_files_that_checkpoints_and_read_only_opens_serve() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sm")).unwrap();
        let large = vec![7u8; MIN_BLOB_BYTES as usize];
        let mut batch = first_apply(&store);
        batch.put(b"large", Timestamp(5), &large);
        batch.put(b"small", Timestamp(5), b"v");
        batch.commit(Durability::Sync).unwrap();
        let checkpoint = dir.path().join("checkpoint");
        store.checkpoint(&checkpoint).unwrap();
        let blobs = std::fs::read_dir(&checkpoint)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".blob"))
            .count();
        assert!(
            blobs > 0,
            "the large value was not separated into a blob file"
        );
        assert!(
            store.approximate_size_bytes() >= MIN_BLOB_BYTES,
            "the size counts blob files"
        );
        drop(store);
        for path in [dir.path().join("sm"), checkpoint] {
            let ro = Store::open_read_only(&path).unwrap();
            let got = ro.get_at(b"large", Timestamp(9)).unwrap().unwrap();
            assert_eq!(got.value.as_deref(), Some(&large[..]), "{path:?}");
            let scanned = ro
                .scan_at(b"", None, None, 10, usize::MAX, Timestamp(9))
                .unwrap();
            assert_eq!(scanned.len(), 2, "{path:?}");
            assert_eq!(scanned[0].value, large, "{path:?}");
        }
    }

    #[test]
    fn every_column_family_opens_with_the_store_options_and_compactions_paused_until_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for cf in [CF_DATA, CF_META] {
            assert_eq!(
                recorded_option(dir.path(), cf, "max_write_buffer_number"),
                MEMTABLES.to_string(),
                "{cf} keeps taking writes through a slow flush"
            );
            assert_eq!(
                recorded_option(dir.path(), cf, "disable_auto_compactions"),
                "true",
                "{cf} must not compact while the node starts"
            );
        }
        store.resume_compactions().unwrap();
        for cf in [CF_DATA, CF_META] {
            assert_eq!(
                recorded_option(dir.path(), cf, "disable_auto_compactions"),
                "false",
                "{cf} compacts once resumed"
            );
        }
    }
}
