//! Building a snapshot: a RocksDB checkpoint taken under the apply lock, then CRCs, the
//! manifest, the move into place and the pointer, off the apply path
//! (docs/design/cold-start.md I2, I3, "Snapshots": "Build").

use std::fs;
use std::path::{Path, PathBuf};

use brisk_storage::{LogIndex, Store};

use super::dir::SnapshotDir;
use super::durable::{sync_path, write_atomic};
use super::error::{io_at, SnapshotError};
use super::manifest::{FileEntry, HeaderState, SnapshotManifest, CURRENT_VERSION, MANIFEST_FILE};
use super::store::SnapshotStore;
use super::verify::file_crc32c;
use crate::fault;
use crate::types::StoredMembership;

/// What a freshly taken checkpoint describes; filled in under the apply lock.
pub struct CheckpointInfo {
    pub index: LogIndex,
    pub term: u64,
    pub leader_node: u64,
    pub membership: StoredMembership,
    pub hlc_ceiling_ms: u64,
}

impl SnapshotStore {
    /// Takes the checkpoint itself. The caller holds the apply lock, so the store's meta keys
    /// describe exactly the checkpointed state (I3). I2: the WAL is fsynced first, so the
    /// applied index >= X is durable in the live store before X can become a restart point.
    pub fn checkpoint(&self, store: &Store, tag: &str) -> Result<PathBuf, SnapshotError> {
        self.ensure_dir()?;
        store.sync_wal()?;
        let tmp = self.layout.snapshots().join(format!("build-{tag}"));
        // RocksDB can roll its MANIFEST while a checkpoint copies it ("No such file"); that
        // is transient, and a failed build would stop Raft, so retry a few times.
        let mut attempt = 0;
        loop {
            if tmp.exists() {
                fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
            }
            match store.checkpoint(&tmp) {
                Ok(()) => return Ok(tmp),
                Err(e) if attempt < 4 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "checkpoint failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
                }
                Err(e) => return Err(e.into()),
            }
        }
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
            files.push(FileEntry {
                crc32c: file_crc32c(&p)?,
                name,
                size,
            });
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
