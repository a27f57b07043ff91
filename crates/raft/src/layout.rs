//! Where things live inside a node's data directory.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct DataLayout {
    pub root: PathBuf,
}

impl DataLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataLayout { root: root.into() }
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("LOCK")
    }
    /// The Raft log's RocksDB instance (vote, committed, entries).
    pub fn raft_log(&self) -> PathBuf {
        self.root.join("raft-log")
    }
    /// The state machine's RocksDB instance, a separate directory so a restore can swap it.
    pub fn state_machine(&self) -> PathBuf {
        self.root.join("sm")
    }
    /// A restore is built here and renamed over `sm` (design: I4 restore path).
    pub fn restore_tmp(&self) -> PathBuf {
        self.root.join("sm.restore-tmp")
    }
    /// The previous `sm` during a swap; deleted once the swap is durable.
    pub fn state_machine_old(&self) -> PathBuf {
        self.root.join("sm.old")
    }
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    pub fn snapshot_pointer(&self) -> PathBuf {
        self.snapshots().join("CURRENT")
    }
    pub fn snapshot_dir(&self, index: u64, term: u64) -> PathBuf {
        self.snapshots().join(snapshot_dir_name(index, term))
    }
    pub fn path(&self) -> &Path {
        &self.root
    }
}

pub fn snapshot_dir_name(index: u64, term: u64) -> String {
    format!("snap-{index:020}-{term:020}")
}
