//! Snapshots as RocksDB checkpoints plus a CRC-checked manifest (docs/design/cold-start.md I3,
//! "Snapshot files").
//!
//! A snapshot lives in `snapshots/<index>-<term>/` (zero-padded): the checkpoint's files and
//! `BRISK_MANIFEST`. `snapshots/CURRENT` points at the latest complete one and carries its
//! [`SnapshotToken`]. Building, verifying, the pointer and the restore swap live in
//! [`store`]; the file format in [`manifest`].

pub mod manifest;
pub mod repair;
pub mod store;

pub use manifest::{FileEntry, HeaderState, ManifestError, SnapshotManifest, SnapshotToken};
pub use store::{SnapshotDir, SnapshotError, SnapshotStore};
