//! Restoring the live store from a verified snapshot, and adopting an installed snapshot as
//! the restart point (docs/design/cold-start.md I4, I5, "Snapshots": "Install").

use std::fs;

use brisk_storage::Store;

use super::dir::SnapshotDir;
use super::durable::sync_path;
use super::error::{io_at, SnapshotError};
use super::store::SnapshotStore;
use crate::fault;

impl SnapshotStore {
    /// Adopts a received, verified snapshot whose restore already replaced the live store:
    /// moves it into place and points to it (A = X from here).
    pub fn adopt(&self, incoming: &SnapshotDir) -> Result<SnapshotDir, SnapshotError> {
        let m = &incoming.manifest;
        let final_dir = self.layout.snapshot_dir(m.index, m.term);
        if final_dir != incoming.path {
            self.move_into_place(&incoming.path, &final_dir)?;
        }
        let snap = SnapshotDir {
            path: final_dir,
            ..incoming.clone()
        };
        self.write_pointer(&snap)?;
        self.remove_replaced(&snap.path);
        Ok(snap)
    }

    /// Builds `sm.restore-tmp` from a verified snapshot and swaps it in as `sm`. The live
    /// store must be closed. SST and blob files are hard-linked (immutable in RocksDB, so
    /// sharing them with the snapshot is safe); the small mutable files (MANIFEST, CURRENT,
    /// OPTIONS, WAL) are copied so the opened store never changes the snapshot's bytes.
    ///
    /// Crash safety (crash points restore_before_swap, restore_before_cleanup): before the
    /// swap the old `sm` is intact; between the two renames `sm` is missing and the gate
    /// restores again (`store_missing`); after the swap the leftover `sm.old` is removed at
    /// the next start.
    /// `link == false` copies every file instead (the `always-restore` baseline: O(data)).
    pub fn restore(&self, snap: &SnapshotDir, link: bool) -> Result<(), SnapshotError> {
        let tmp = self.layout.restore_tmp();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
        for f in &snap.manifest.files {
            let src = snap.path.join(&f.name);
            let dst = tmp.join(&f.name);
            if link && (f.name.ends_with(".sst") || f.name.ends_with(".blob")) {
                fs::hard_link(&src, &dst).map_err(io_at(&dst))?;
            } else {
                fs::copy(&src, &dst).map_err(io_at(&dst))?;
                sync_path(&dst)?;
            }
        }
        sync_path(&tmp)?;
        // Fail closed before the swap: a copy that is not the manifest's state never replaces
        // the live store (I5).
        let checked = Store::open_read_only(&tmp)
            .map_err(SnapshotError::from)
            .and_then(|store| snap.check_restored(&store));
        if let Err(e) = checked {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        fault::crash_point(fault::RESTORE_BEFORE_SWAP);
        let live = self.layout.state_machine();
        let old = self.layout.state_machine_old();
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_at(&old))?;
        }
        if live.exists() {
            fs::rename(&live, &old).map_err(io_at(&old))?;
        }
        fs::rename(&tmp, &live).map_err(io_at(&live))?;
        sync_path(self.layout.path())?;
        fault::crash_point(fault::RESTORE_BEFORE_CLEANUP);
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_at(&old))?;
        }
        Ok(())
    }
}
