//! Giving a snapshot directory a name that another one already holds, without ever leaving
//! the pointer on an incomplete snapshot (docs/design/cold-start.md I2, I5, "Snapshots":
//! "Replacing a directory of the same name").

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::durable::sync_path;
use super::error::{io_at, SnapshotError};
use super::store::SnapshotStore;
use crate::fault;

/// Name prefix of a snapshot directory set aside while another takes its name.
const REPLACED_PREFIX: &str = "replaced-";

fn replaced_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    dir.with_file_name(format!("{REPLACED_PREFIX}{name}"))
}

impl SnapshotStore {
    /// Renames a complete snapshot directory `from` to its final name `to`. A directory
    /// already there (possibly the one the pointer names) is never deleted first: it is
    /// renamed aside to `replaced-<name>` and only removed once the pointer names the new one
    /// ([`remove_replaced`](Self::remove_replaced)). A crash in between leaves either the old
    /// directory aside or the new one in place with a pointer still holding the old token;
    /// [`remove_leftovers`](Self::remove_leftovers) rolls both back at the next start, so the
    /// pointer always names a complete snapshot with its own token (I2, I5).
    pub(super) fn move_into_place(&self, from: &Path, to: &Path) -> Result<(), SnapshotError> {
        if to.exists() {
            let aside = replaced_path(to);
            if aside.exists() {
                // Left by a replacement that failed before the pointer moved: if the pointer
                // still names that copy, it is the restart point and must stay.
                if self.pointer_names(to, &aside) != Some(false) {
                    return Err(SnapshotError::Io {
                        path: aside,
                        source: io::Error::other(
                            "an interrupted snapshot replacement is pending (settled at the next start)",
                        ),
                    });
                }
                fs::remove_dir_all(&aside).map_err(io_at(&aside))?;
            }
            fs::rename(to, &aside).map_err(io_at(&aside))?;
            sync_path(&self.layout.snapshots())?;
            fault::crash_point(fault::SNAPSHOT_REPLACE_ASIDE);
        }
        if let Err(e) = fs::rename(from, to) {
            // Put the old one back: the pointer may name it.
            let aside = replaced_path(to);
            if aside.exists() && !to.exists() {
                let _ = self.put_back(&aside, to);
            }
            return Err(io_at(to)(e));
        }
        sync_path(&self.layout.snapshots())
    }

    /// Deletes the directory [`move_into_place`](Self::move_into_place) set aside for `dir`,
    /// once the pointer no longer depends on it.
    pub(super) fn remove_replaced(&self, dir: &Path) {
        let aside = replaced_path(dir);
        if aside.exists() {
            if let Err(e) = fs::remove_dir_all(&aside) {
                tracing::warn!(path = %aside.display(), error = %e, "could not remove a replaced snapshot");
            }
        }
    }

    /// Settles a replacement interrupted by a crash. When the pointer names the directory
    /// with the token of the copy set aside, the replacement never completed: the copy goes
    /// back to its name (the new one, never pointed to, is dropped). When the pointer names
    /// the directory in place with its own token, the replacement completed and the copy is
    /// garbage. Anything that cannot be told for sure (an unreadable pointer or manifest) is
    /// left as it is: garbage costs disk, deleting the restart point costs data.
    pub(super) fn roll_back_replacements(&self) {
        let Ok(entries) = fs::read_dir(self.layout.snapshots()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(original) = name.strip_prefix(REPLACED_PREFIX) else {
                continue;
            };
            let aside = e.path();
            let target = self.layout.snapshots().join(original);
            let result = match (
                self.pointer_names(&target, &aside),
                self.pointer_names(&target, &target),
            ) {
                (Some(true), _) => {
                    tracing::warn!(
                        dir = original,
                        "rolling back an interrupted snapshot replacement"
                    );
                    self.put_back(&aside, &target)
                }
                (Some(false), Some(_)) => fs::remove_dir_all(&aside).map_err(io_at(&aside)),
                _ => {
                    tracing::warn!(path = %aside.display(), "leaving a replaced snapshot in place: cannot tell whether the pointer needs it");
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::warn!(path = %aside.display(), error = %e, "could not settle a replaced snapshot");
            }
        }
    }

    /// Moves a snapshot set aside back to its name `target`, durably, dropping whatever took
    /// the name meanwhile.
    fn put_back(&self, aside: &Path, target: &Path) -> Result<(), SnapshotError> {
        if target.exists() {
            fs::remove_dir_all(target).map_err(io_at(target))?;
        }
        fs::rename(aside, target).map_err(io_at(target))?;
        sync_path(&self.layout.snapshots())
    }
}
