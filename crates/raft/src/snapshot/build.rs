//! Building a snapshot: a RocksDB checkpoint taken while applies go on, its applied log id
//! read back from the checkpoint itself, then CRCs, the manifest, the move into place and the
//! pointer, all off the apply path (docs/design/cold-start.md I2, I3, "Snapshots": "Build").

use std::fs;
use std::path::{Path, PathBuf};

use brisk_storage::{LogIndex, Store};

use super::dir::{same_file, SnapshotDir};
use super::durable::{sync_path, write_atomic};
use super::error::{io_at, SnapshotError};
use super::manifest::{FileEntry, HeaderState, SnapshotManifest, CURRENT_VERSION, MANIFEST_FILE};
use super::store::SnapshotStore;
use super::verify::file_crc32c;
use crate::fault;
use crate::types::{stored_membership, StoredMembership};

/// What a checkpoint holds: the applied log id, membership and HLC ceiling of its meta keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub index: LogIndex,
    pub term: u64,
    pub leader_node: u64,
    pub membership: StoredMembership,
    pub hlc_ceiling_ms: u64,
}

/// A checkpoint directory under `snapshots/` and the state it holds.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub info: CheckpointInfo,
}

impl SnapshotStore {
    /// Takes a checkpoint of `store` into `snapshots/build-<tag>/` while applies go on, and
    /// reads what it holds from the checkpoint itself.
    ///
    /// I3 without the apply lock: RocksDB's checkpoint is one point in the store's write
    /// sequence (tables flushed, plus the WAL tail up to that point, which opening replays),
    /// and every apply is one atomic batch carrying its log id (I1), so the meta keys read
    /// from the checkpoint describe exactly its data. I2: everything in the checkpoint was
    /// committed to the live store before it was taken, so the WAL fsync after it makes an
    /// applied index >= X durable in the live store before X can become a restart point.
    pub fn checkpoint(&self, store: &Store, tag: &str) -> Result<Checkpoint, SnapshotError> {
        self.ensure_dir()?;
        let tmp = self.layout.snapshots().join(format!("build-{tag}"));
        // RocksDB can roll its MANIFEST while a checkpoint copies it ("No such file"); that
        // is transient, and a failed build would stop Raft, so retry a few times.
        let mut attempt = 0;
        loop {
            if tmp.exists() {
                fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
            }
            match store.checkpoint(&tmp) {
                Ok(()) => break,
                Err(e) if attempt < 4 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "checkpoint failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let synced = store.sync_wal().map_err(SnapshotError::from);
        let info = match synced.and_then(|()| read_checkpoint_info(&tmp)) {
            Ok(info) => info,
            Err(e) => {
                if let Err(rm) = fs::remove_dir_all(&tmp) {
                    tracing::warn!(path = %tmp.display(), error = %rm, "could not remove a failed checkpoint");
                }
                return Err(e);
            }
        };
        Ok(Checkpoint { dir: tmp, info })
    }

    /// Completes a checkpoint taken by [`checkpoint`](Self::checkpoint): CRCs every file,
    /// writes the manifest, moves the directory into place and moves the pointer to it.
    /// O(data) reads, off the apply path.
    pub fn finish_build(
        &self,
        tmp: &Path,
        info: CheckpointInfo,
    ) -> Result<SnapshotDir, SnapshotError> {
        // Nothing was applied since the last snapshot: the existing one at this (index, term)
        // is the same state (I3). Reuse it rather than replace the directory the pointer names.
        let existing = self.layout.snapshot_dir(info.index, info.term);
        if let Ok(snap) = SnapshotDir::open(&existing) {
            fs::remove_dir_all(tmp).map_err(io_at(tmp))?;
            self.write_pointer(&snap)?;
            return Ok(snap);
        }

        let previous = self.current().ok().flatten();
        let mut files = Vec::new();
        let mut names: Vec<_> = fs::read_dir(tmp)
            .map_err(io_at(tmp))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().to_string()))
            .collect::<Result<_, _>>()
            .map_err(io_at(tmp))?;
        names.sort();
        for name in names {
            let p = tmp.join(&name);
            // Copied (non-hard-linked) checkpoint files must be durable too.
            sync_path(&p)?;
            let size = fs::metadata(&p).map_err(io_at(&p))?.len();
            let crc32c = match previous
                .as_ref()
                .and_then(|prev| recorded_crc(prev, &name, &p, size))
            {
                Some(crc) => crc,
                None => file_crc32c(&p)?,
            };
            files.push(FileEntry { crc32c, name, size });
        }
        let manifest = SnapshotManifest {
            version: CURRENT_VERSION,
            index: info.index,
            term: info.term,
            leader_node: info.leader_node,
            membership: info.membership,
            header: HeaderState {
                hlc_ceiling_ms: info.hlc_ceiling_ms,
                cutover_index: LogIndex::ZERO,
                extension: Vec::new(),
            },
            files,
        };
        fault::crash_point(fault::SNAPSHOT_BEFORE_MANIFEST);
        let (raw, crc) = manifest
            .encode()
            .map_err(|source| SnapshotError::Manifest {
                path: tmp.join(MANIFEST_FILE),
                source,
            })?;
        write_atomic(&tmp.join(MANIFEST_FILE), &raw)?;
        let final_dir = self.layout.snapshot_dir(info.index, info.term);
        self.move_into_place(tmp, &final_dir)?;
        let snap = SnapshotDir {
            path: final_dir,
            manifest,
            manifest_crc: crc,
        };
        fault::crash_point(fault::SNAPSHOT_BEFORE_POINTER);
        self.write_pointer(&snap)?;
        self.remove_replaced(&snap.path);
        self.collect_garbage();
        Ok(snap)
    }
}

/// The applied log id, membership and HLC ceiling stored in the checkpoint at `dir`, read
/// through a read-only open (which replays the checkpoint's WAL tail in memory and writes
/// nothing into the directory).
fn read_checkpoint_info(dir: &Path) -> Result<CheckpointInfo, SnapshotError> {
    let meta = Store::open_read_only(dir)?.meta()?;
    let applied = meta.applied.ok_or_else(|| SnapshotError::NothingApplied {
        dir: dir.to_path_buf(),
    })?;
    let membership = stored_membership(meta.membership.as_deref()).map_err(|source| {
        SnapshotError::Membership {
            dir: dir.to_path_buf(),
            source,
        }
    })?;
    Ok(CheckpointInfo {
        index: applied.index,
        term: applied.term,
        leader_node: applied.leader_node,
        membership,
        hlc_ceiling_ms: meta.hlc_ceiling_ms,
    })
}

/// The CRC that snapshot `prev` recorded for `name`, when `file` is that very file
/// (checkpoints hard-link the immutable SST and blob files, so consecutive snapshots share
/// most of them). Its bytes then need no second read, which keeps a build's reads
/// proportional to what changed, not to the data size; and the CRC stays the one taken when
/// the file was new, so rot in a shared file since then fails verification instead of being
/// recorded as correct (docs/design/cold-start.md, "Snapshots", "Build").
fn recorded_crc(prev: &SnapshotDir, name: &str, file: &Path, size: u64) -> Option<u32> {
    let entry = prev
        .manifest
        .files
        .iter()
        .find(|f| f.name == name && f.size == size)?;
    // `file`, in the build directory only this build touches, is examined first.
    same_file(file, &prev.path.join(name)).then_some(entry.crc32c)
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use brisk_storage::{AppliedLogId, AppliedState, Durability, Timestamp};

    use super::*;
    use crate::layout::DataLayout;

    fn apply(store: &Store, index: u64, key: &[u8]) {
        apply_with(store, index, key, Durability::Sync);
    }

    fn apply_with(store: &Store, index: u64, key: &[u8], durability: Durability) {
        let mut batch = store.begin_apply(AppliedState {
            log_id: AppliedLogId {
                term: 1,
                leader_node: 1,
                index: LogIndex(index),
            },
            membership: Vec::new(),
        });
        batch.put(key, Timestamp(index), &[index as u8; 64]);
        batch.commit(durability).unwrap();
    }

    fn build(snapshots: &SnapshotStore, store: &Store, index: u64) -> SnapshotDir {
        let cp = snapshots.checkpoint(store, &index.to_string()).unwrap();
        assert_eq!(cp.info.index, LogIndex(index));
        snapshots.finish_build(&cp.dir, cp.info).unwrap()
    }

    fn key(index: u64) -> Vec<u8> {
        format!("k{index:08}").into_bytes()
    }

    /// I3 without the apply lock: checkpoints taken while applies run hold exactly the
    /// entries up to the applied index their own meta keys name, never a batch more or less.
    #[test]
    fn a_checkpoint_taken_during_applies_holds_exactly_its_applied_index() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DataLayout::new(dir.path());
        let store = std::sync::Arc::new(Store::open(&layout.state_machine()).unwrap());
        let snapshots = SnapshotStore::new(layout.clone(), 4);
        apply(&store, 1, &key(1));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let applier = {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                // Paced and capped so the store stays small enough to check key by key.
                let mut index = 1;
                while !done.load(std::sync::atomic::Ordering::Relaxed) && index < 200_000 {
                    index += 1;
                    std::thread::sleep(std::time::Duration::from_micros(50));
                    apply_with(&store, index, &key(index), Durability::Buffered);
                }
                index
            })
        };
        let mut seen = Vec::new();
        for n in 0..12 {
            let cp = snapshots.checkpoint(&store, &format!("c{n}")).unwrap();
            let x = cp.info.index.get();
            let copy = Store::open_read_only(&cp.dir).unwrap();
            assert_eq!(
                copy.meta().unwrap().applied.map(|a| a.index),
                Some(cp.info.index)
            );
            for i in 1..=x {
                assert!(
                    copy.get_at(&key(i), Timestamp(u64::MAX)).unwrap().is_some(),
                    "checkpoint at {x} lacks entry {i}"
                );
            }
            assert!(
                copy.get_at(&key(x + 1), Timestamp(u64::MAX))
                    .unwrap()
                    .is_none(),
                "checkpoint at {x} holds entry {} past its applied index",
                x + 1
            );
            drop(copy);
            fs::remove_dir_all(&cp.dir).unwrap();
            seen.push(x);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let last = applier.join().unwrap();
        seen.dedup();
        assert!(
            seen.len() > 2 && last > *seen.last().unwrap(),
            "applies ran while the checkpoints were taken: {seen:?}, last {last}"
        );
    }

    #[test]
    fn a_file_shared_with_the_previous_snapshot_keeps_the_crc_taken_when_it_was_new() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DataLayout::new(dir.path());
        let store = Store::open(&layout.state_machine()).unwrap();
        let snapshots = SnapshotStore::new(layout.clone(), 4);
        apply(&store, 1, b"a");
        let first = build(&snapshots, &store, 1);
        first.verify().unwrap();
        let shared = first
            .manifest
            .files
            .iter()
            .find(|f| f.name.ends_with(".sst"))
            .expect("the first snapshot has a table file")
            .name
            .clone();

        // The shared table rots in place: the live store and the first snapshot both see it.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(layout.state_machine().join(&shared))
            .unwrap();
        f.seek(SeekFrom::Start(10)).unwrap();
        f.write_all(b"rot").unwrap();
        f.sync_all().unwrap();
        drop(f);

        apply(&store, 2, b"b");
        let second = build(&snapshots, &store, 2);
        assert!(
            second.manifest.files.iter().any(|f| f.name == shared),
            "the second snapshot shares the table"
        );
        assert!(
            second.verify().is_err(),
            "the rotten shared table must fail verification, not be recorded with a fresh CRC"
        );
    }
}
