//! The snapshots of one data directory: where they live and who may move the pointer.
//!
//! The methods of [`SnapshotStore`] live next to what they do: `pointer`, `build`,
//! `replace`, `restore` and `garbage` (sibling modules). This module re-exports the items
//! of one snapshot directory and its fsyncs, so `snapshot::store::*` names them all.

use std::fs;
use std::path::PathBuf;

pub use super::build::{Checkpoint, CheckpointInfo};
pub use super::dir::{check_file_name, SnapshotDir};
pub use super::durable::{file_syncs, sync_path, write_atomic};
use super::error::io_at;
pub use super::error::SnapshotError;
pub use super::verify::file_crc32c;
use crate::layout::DataLayout;

/// The snapshots of one data directory.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    pub(super) layout: DataLayout,
    /// How many complete snapshots to keep (the pointed-to one always survives).
    pub(super) keep: usize,
    /// Serializes pointer updates: a build (finishing off the apply path) and an install
    /// can race, and the pointer must never move to a lower index.
    pub(super) pointer_lock: std::sync::Arc<std::sync::Mutex<()>>,
}

impl SnapshotStore {
    pub fn new(layout: DataLayout, keep: usize) -> Self {
        SnapshotStore {
            layout,
            keep: keep.max(1),
            pointer_lock: Default::default(),
        }
    }

    pub fn layout(&self) -> &DataLayout {
        &self.layout
    }

    pub fn ensure_dir(&self) -> Result<(), SnapshotError> {
        let d = self.layout.snapshots();
        fs::create_dir_all(&d).map_err(io_at(&d))
    }

    /// A fresh directory to spool an incoming snapshot into.
    pub fn incoming_dir(&self) -> Result<PathBuf, SnapshotError> {
        self.ensure_dir()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = self.layout.snapshots().join(format!("incoming-{nanos}"));
        fs::create_dir_all(&p).map_err(io_at(&p))?;
        Ok(p)
    }
}
