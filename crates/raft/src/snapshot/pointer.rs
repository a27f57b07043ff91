//! The snapshot pointer `snapshots/CURRENT`: which snapshot is the restart point, and its
//! token (docs/design/cold-start.md, "Snapshots": "Pointer").

use std::fs;
use std::io;
use std::path::Path;

use super::dir::{check_file_name, SnapshotDir};
use super::durable::write_atomic;
use super::error::{io_at, SnapshotError};
use super::manifest::SnapshotToken;
use super::store::SnapshotStore;

impl SnapshotStore {
    /// The pointer: which snapshot directory is the restart point, and its token. O(1).
    pub fn read_pointer(&self) -> Result<Option<(String, SnapshotToken)>, SnapshotError> {
        let p = self.layout.snapshot_pointer();
        let raw = match fs::read_to_string(&p) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&p)(e)),
        };
        let mut lines = raw.lines();
        let (Some(dir), Some(token)) = (lines.next(), lines.next()) else {
            return Err(SnapshotError::BadPointer {
                path: p,
                detail: "want two lines: directory and token".into(),
            });
        };
        check_file_name(dir).map_err(|_| SnapshotError::BadPointer {
            path: p.clone(),
            detail: format!("bad directory name {dir:?}"),
        })?;
        let token =
            SnapshotToken::from_hex(token).map_err(|source| SnapshotError::PointerToken {
                path: p.clone(),
                source,
            })?;
        Ok(Some((dir.to_string(), token)))
    }

    /// Moves the pointer to `snap` unless it already points at a snapshot with a higher
    /// index (a newer install won the race): the restart point only moves forward.
    pub(super) fn write_pointer(&self, snap: &SnapshotDir) -> Result<(), SnapshotError> {
        let _guard = self.pointer_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(Some((_, current))) = self.read_pointer() {
            if current.index > snap.manifest.index {
                tracing::info!(
                    current = current.index.get(),
                    built = snap.manifest.index.get(),
                    "not moving the snapshot pointer backwards"
                );
                return Ok(());
            }
        }
        let name = snap
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let body = format!("{name}\n{}\n", snap.token().to_hex());
        write_atomic(&self.layout.snapshot_pointer(), body.as_bytes())
    }

    /// The current snapshot: pointer plus its manifest, token-checked. Reads no data file.
    pub fn current(&self) -> Result<Option<SnapshotDir>, SnapshotError> {
        let Some((dir, token)) = self.read_pointer()? else {
            return Ok(None);
        };
        let snap = SnapshotDir::open(&self.layout.snapshots().join(dir))?;
        if snap.token() != token {
            return Err(SnapshotError::TokenMismatch {
                path: self.layout.snapshot_pointer(),
                dir: snap.path.clone(),
                pointer: token.to_hex(),
                manifest: snap.token().to_hex(),
            });
        }
        Ok(Some(snap))
    }

    /// Whether the pointer names directory `name_of` with the token of the snapshot in
    /// `copy`; None when that cannot be told (pointer or copy unreadable).
    pub(super) fn pointer_names(&self, name_of: &Path, copy: &Path) -> Option<bool> {
        let (dir, token) = match self.read_pointer().ok()? {
            Some(p) => p,
            None => return Some(false),
        };
        let name = name_of.file_name()?.to_string_lossy();
        if dir != name {
            return Some(false);
        }
        Some(SnapshotDir::open(copy).ok()?.token() == token)
    }
}
