//! Making snapshot files, directories and the pointer durable.
//!
//! When [`sync_path`] returns, the file's bytes (or, for a directory, the creates and renames
//! in it) survive a power loss; when [`write_atomic`] returns, the file holds exactly the new
//! bytes, durably, and a crash before that leaves the old ones (docs/design/cold-start.md I2,
//! "Snapshots": "Pointer").

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::error::{io_at, SnapshotError};

thread_local! {
    /// fsyncs of snapshot files and directories done by this thread (durability tests).
    static FILE_SYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many snapshot files and directories this thread has fsynced.
pub fn file_syncs() -> u64 {
    FILE_SYNCS.with(|c| c.get())
}

fn synced(f: &fs::File) -> io::Result<()> {
    f.sync_all()?;
    FILE_SYNCS.with(|c| c.set(c.get() + 1));
    Ok(())
}

/// Fsyncs a file or a directory (a directory's fsync makes the renames and creates in it
/// durable).
pub fn sync_path(path: &Path) -> Result<(), SnapshotError> {
    fs::File::open(path)
        .and_then(|f| synced(&f))
        .map_err(io_at(path))
}

/// Writes `bytes` to `path` atomically: write temp, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp).map_err(io_at(&tmp))?;
        f.write_all(bytes).map_err(io_at(&tmp))?;
        synced(&f).map_err(io_at(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_at(path))?;
    sync_path(dir)
}
