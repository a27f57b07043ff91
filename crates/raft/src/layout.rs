//! Where things live inside a node's data directory.

use std::path::{Path, PathBuf};

use brisk_storage::LogIndex;

use crate::types::GroupId;

/// The files of one Raft group inside a node's data directory.
#[derive(Clone, Debug)]
pub struct DataLayout {
    /// The node's data directory (holds every group).
    pub data_dir: PathBuf,
    /// This group's directory inside it.
    pub root: PathBuf,
    /// The group these files belong to.
    pub group: GroupId,
}

impl DataLayout {
    /// The layout of group 0, at the data directory's top level.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        DataLayout {
            root: data_dir.clone(),
            data_dir,
            group: GroupId::default(),
        }
    }

    /// The layout of group `id` in the same data directory: group 0 keeps the top level (the
    /// layout of every data directory written so far); any other group lives under
    /// `groups/<id>/` with the same structure.
    pub fn group(&self, id: GroupId) -> DataLayout {
        let root = if id == GroupId::default() {
            self.data_dir.clone()
        } else {
            self.data_dir.join("groups").join(id.to_string())
        };
        DataLayout {
            data_dir: self.data_dir.clone(),
            root,
            group: id,
        }
    }
    /// The process's lock on the whole data directory.
    pub fn lock_file(&self) -> PathBuf {
        self.data_dir.join("LOCK")
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
    pub fn snapshot_dir(&self, index: LogIndex, term: u64) -> PathBuf {
        self.snapshots().join(snapshot_dir_name(index, term))
    }
    pub fn path(&self) -> &Path {
        &self.root
    }
}

/// `<index>-<term>`, zero-padded so that names sort by index.
pub fn snapshot_dir_name(index: LogIndex, term: u64) -> String {
    format!("{:020}-{term:020}", index.get())
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
fn groups_share_the_data_directory() {
    let top = DataLayout::new("/data");
    let zero = top.group(GroupId(0));
    assert_eq!(zero.root, PathBuf::from("/data"));
    assert_eq!(zero.raft_log(), top.raft_log());
    let seven = top.group(GroupId(7));
    assert_eq!(seven.group, GroupId(7));
    assert_eq!(seven.raft_log(), PathBuf::from("/data/groups/7/raft-log"));
    assert_eq!(seven.state_machine(), PathBuf::from("/data/groups/7/sm"));
    // Groups are placed relative to the data directory, and the lock is the process's.
    assert_eq!(seven.group(GroupId(0)).root, PathBuf::from("/data"));
    assert_eq!(seven.lock_file(), PathBuf::from("/data/LOCK"));
}

#[cfg(test)]
#[test]
fn snapshot_dir_names() {
    assert_eq!(
        snapshot_dir_name(LogIndex(8), 1),
        "00000000000000000008-00000000000000000001"
    );
    assert!(is_snapshot_dir_name(&snapshot_dir_name(LogIndex(8), 1)));
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
