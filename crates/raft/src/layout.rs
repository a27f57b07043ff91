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

/// `<index>-<term>`, zero-padded so that names sort by index.
pub fn snapshot_dir_name(index: u64, term: u64) -> String {
    format!("{index:020}-{term:020}")
}

/// Whether a directory name under `snapshots/` is a complete snapshot's (`<index>-<term>`).
pub fn is_snapshot_dir_name(name: &str) -> bool {
    match name.split_once('-') {
        Some((i, t)) => {
            !i.is_empty()
                && !t.is_empty()
                && i.bytes().all(|b| b.is_ascii_digit())
                && t.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
#[test]
fn snapshot_dir_names() {
    assert_eq!(
        snapshot_dir_name(8, 1),
        "00000000000000000008-00000000000000000001"
    );
    assert!(is_snapshot_dir_name(&snapshot_dir_name(8, 1)));
    for other in [
        "incoming-123",
        "build-8-1",
        "CURRENT",
        "CURRENT.tmp",
        "8-",
        "-1",
        "8-1x",
    ] {
        assert!(!is_snapshot_dir_name(other), "{other}");
    }
}
