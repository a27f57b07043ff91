//! Collecting old snapshots and the leftovers of interrupted work (docs/design/cold-start.md,
//! "Snapshots": "Garbage collection and leftovers"). Errors are logged, never fatal: garbage
//! costs disk, not correctness.

use std::fs;

use super::store::SnapshotStore;

impl SnapshotStore {
    /// Removes all but the newest `keep` snapshots. The pointed-to snapshot is never
    /// removed.
    pub fn collect_garbage(&self) {
        let pointed = self.read_pointer().ok().flatten().map(|(d, _)| d);
        let mut snaps = Vec::new();
        let Ok(entries) = fs::read_dir(self.layout.snapshots()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if crate::layout::is_snapshot_dir_name(&name) {
                snaps.push(name);
            }
        }
        snaps.sort();
        snaps.reverse();
        for name in snaps.iter().skip(self.keep) {
            if Some(name) == pointed.as_ref() {
                continue;
            }
            // Renamed aside first, so the snapshot's name never denotes a half-removed
            // directory (to a reader such as `brisk inspect --verify`, or after a crash, when
            // the start removes the `.tmp` leftover).
            let p = self.layout.snapshots().join(name);
            let aside = self.layout.snapshots().join(format!("{name}.tmp"));
            if let Err(e) = fs::rename(&p, &aside).and_then(|()| fs::remove_dir_all(&aside)) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove old snapshot");
            }
        }
    }

    /// Settles interrupted replacements and removes interrupted builds, transfers and
    /// restores (`sm.restore-tmp`, `sm.old`, `build-*`, `incoming-*`, `*.tmp`). Only at
    /// start, when none can be in progress.
    pub fn remove_leftovers(&self) {
        self.roll_back_replacements();
        let mut doomed = vec![self.layout.restore_tmp(), self.layout.state_machine_old()];
        if let Ok(entries) = fs::read_dir(self.layout.snapshots()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("build-")
                    || name.starts_with("incoming-")
                    || name.ends_with(".tmp")
                {
                    doomed.push(e.path());
                }
            }
        }
        for p in doomed.into_iter().filter(|p| p.exists()) {
            tracing::info!(path = %p.display(), "removing leftover of interrupted work");
            let r = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            if let Err(e) = r {
                tracing::warn!(path = %p.display(), error = %e, "could not remove leftover");
            }
        }
    }
}
