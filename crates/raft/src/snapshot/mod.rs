//! Snapshots as RocksDB checkpoints plus a CRC-checked manifest (docs/design/cold-start.md I3,
//! "Snapshots").
//!
//! A snapshot lives in `snapshots/<index>-<term>/` (zero-padded): the checkpoint's files and
//! `BRISK_MANIFEST`. `snapshots/CURRENT` points at the latest complete one and carries its
//! [`SnapshotToken`]. One snapshot directory is `dir` (its manifest) and `verify` (its files);
//! the [`SnapshotStore`] of a data directory is declared in [`store`] and does its work in
//! `pointer`, `build`, `replace`, `restore` and `garbage`; fsyncs are in `durable`, failures
//! in `error`, the file format in [`manifest`].

mod build;
mod dir;
mod durable;
mod error;
mod garbage;
pub mod manifest;
mod pointer;
pub mod repair;
mod replace;
mod restore;
pub mod store;
mod verify;

pub use manifest::{FileEntry, HeaderState, ManifestError, SnapshotManifest, SnapshotToken};
pub use store::{Checkpoint, CheckpointInfo, SnapshotDir, SnapshotError, SnapshotStore};
