//! Snapshot directories on disk: build, verify, point to, restore from, collect.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use brisk_storage::{StorageError, Store};

use super::manifest::{
    FileEntry, HeaderState, ManifestError, SnapshotManifest, SnapshotToken, CURRENT_VERSION,
    MANIFEST_FILE,
};
use crate::fault;
use crate::layout::DataLayout;
use crate::types::StoredMembership;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot manifest {path}: {source}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: ManifestError,
    },
    #[error("snapshot pointer {path} is invalid: {detail}")]
    BadPointer { path: PathBuf, detail: String },
    #[error("snapshot pointer {path} holds token {pointer}, but the manifest in {dir} has token {manifest}")]
    TokenMismatch {
        path: PathBuf,
        dir: PathBuf,
        pointer: String,
        manifest: String,
    },
    #[error("snapshot file {file} is missing")]
    FileMissing { file: PathBuf },
    #[error("snapshot file {file}: size {actual}, manifest says {expected}")]
    FileSize {
        file: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("snapshot file {file}: crc32c {actual:08x}, manifest says {expected:08x}")]
    FileCrc {
        file: PathBuf,
        expected: u32,
        actual: u32,
    },
    #[error("snapshot directory holds {file}, which the manifest does not list")]
    ExtraFile { file: PathBuf },
    #[error("the store restored from {dir} has applied log id {found}, but its manifest says index {index} term {term}")]
    AppliedMismatch {
        dir: PathBuf,
        index: u64,
        term: u64,
        found: String,
    },
    #[error("snapshot file name {0:?} is not a plain file name")]
    BadFileName(String),
    #[error("state machine store: {0}")]
    Storage(#[from] StorageError),
}

impl SnapshotError {
    /// The snapshot file a failed check names, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            SnapshotError::FileMissing { file }
            | SnapshotError::FileSize { file, .. }
            | SnapshotError::FileCrc { file, .. }
            | SnapshotError::ExtraFile { file } => Some(file),
            _ => None,
        }
    }

    /// Whether this is a failed integrity check (CRC, size, magic, version, token, a missing
    /// or extra file), which proves the snapshot unusable (I5). An I/O error (EACCES, EIO,
    /// EMFILE, ...) proves nothing about the bytes: the node must refuse to start and leave
    /// everything in place rather than take the destructive recovery path.
    pub fn is_integrity_failure(&self) -> bool {
        !matches!(self, SnapshotError::Io { .. } | SnapshotError::Storage(_))
    }

    /// Short name of the failed check, for metrics and the inspector.
    pub fn check(&self) -> &'static str {
        match self {
            SnapshotError::Io { .. } => "io",
            SnapshotError::Manifest { source, .. } => match source {
                ManifestError::TooSmall(_) | ManifestError::Truncated(_) => "manifest_truncated",
                ManifestError::TooLarge(_) => "manifest_too_large",
                ManifestError::BadMagic => "manifest_magic",
                ManifestError::UnknownVersion(_) => "unknown_version",
                ManifestError::ChecksumMismatch { .. } => "manifest_crc",
                ManifestError::BadBody(_) => "manifest_body",
                ManifestError::BadToken(_) => "token",
            },
            SnapshotError::BadPointer { .. } => "pointer",
            SnapshotError::TokenMismatch { .. } => "token",
            SnapshotError::FileMissing { .. } => "file_missing",
            SnapshotError::FileSize { .. } => "file_size",
            SnapshotError::FileCrc { .. } => "file_crc",
            SnapshotError::ExtraFile { .. } => "extra_file",
            SnapshotError::BadFileName(_) => "file_name",
            SnapshotError::AppliedMismatch { .. } => "applied_id",
            SnapshotError::Storage(_) => "store",
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A snapshot directory whose manifest has been read (not necessarily its files verified).
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    pub path: PathBuf,
    pub manifest: SnapshotManifest,
    pub manifest_crc: u32,
}

impl SnapshotDir {
    pub fn token(&self) -> SnapshotToken {
        self.manifest.token(self.manifest_crc)
    }

    /// Reads and checks the manifest of the snapshot in `path` (not the data files).
    pub fn open(path: &Path) -> Result<Self, SnapshotError> {
        let mpath = path.join(MANIFEST_FILE);
        let raw = match fs::read(&mpath) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::FileMissing { file: mpath })
            }
            Err(e) => return Err(io_at(&mpath)(e)),
        };
        let (manifest, manifest_crc) =
            SnapshotManifest::decode(&raw).map_err(|source| SnapshotError::Manifest {
                path: mpath,
                source,
            })?;
        for f in &manifest.files {
            check_file_name(&f.name)?;
        }
        Ok(SnapshotDir {
            path: path.to_path_buf(),
            manifest,
            manifest_crc,
        })
    }

    /// Verifies every data file: present, listed size, listed CRC32C, and nothing extra (I5).
    /// Reads every byte: O(snapshot size). Mutates nothing.
    pub fn verify(&self) -> Result<(), SnapshotError> {
        for f in &self.manifest.files {
            let p = self.path.join(&f.name);
            let md = match fs::metadata(&p) {
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(SnapshotError::FileMissing { file: p })
                }
                Err(e) => return Err(io_at(&p)(e)),
            };
            if md.len() != f.size {
                return Err(SnapshotError::FileSize {
                    file: p,
                    expected: f.size,
                    actual: md.len(),
                });
            }
            let crc = file_crc32c(&p)?;
            if crc != f.crc32c {
                return Err(SnapshotError::FileCrc {
                    file: p,
                    expected: f.crc32c,
                    actual: crc,
                });
            }
        }
        for entry in fs::read_dir(&self.path).map_err(io_at(&self.path))? {
            let entry = entry.map_err(io_at(&self.path))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name != MANIFEST_FILE && !self.manifest.files.iter().any(|f| f.name == name) {
                return Err(SnapshotError::ExtraFile { file: entry.path() });
            }
        }
        Ok(())
    }
}

impl SnapshotDir {
    /// A store restored from this snapshot must be exactly the state the manifest describes:
    /// its applied log id is the manifest's index and term (I3), or the snapshot lied.
    pub fn check_restored(&self, store: &Store) -> Result<(), SnapshotError> {
        let applied = store.meta()?.applied;
        match applied {
            Some(a) if a.index == self.manifest.index && a.term == self.manifest.term => Ok(()),
            other => Err(SnapshotError::AppliedMismatch {
                dir: self.path.clone(),
                index: self.manifest.index,
                term: self.manifest.term,
                found: match other {
                    Some(a) => format!("index {} term {}", a.index, a.term),
                    None => "none".into(),
                },
            }),
        }
    }
}

pub fn check_file_name(name: &str) -> Result<(), SnapshotError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name != MANIFEST_FILE
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::BadFileName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_file_names_are_accepted() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "x\0y",
            super::MANIFEST_FILE,
        ] {
            assert!(super::check_file_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(super::check_file_name("000012.sst").is_ok());
        assert!(super::check_file_name("MANIFEST-000005").is_ok());
    }
}

pub fn file_crc32c(path: &Path) -> Result<u32, SnapshotError> {
    let mut f = fs::File::open(path).map_err(io_at(path))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    loop {
        let n = f.read(&mut buf).map_err(io_at(path))?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

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

/// Fsyncs a file (or a directory: see [`fsync_dir`]).
pub fn fsync_file(path: &Path) -> Result<(), SnapshotError> {
    fs::File::open(path)
        .and_then(|f| synced(&f))
        .map_err(io_at(path))
}

/// Fsyncs a directory, making the renames and creates in it durable.
pub fn fsync_dir(path: &Path) -> Result<(), SnapshotError> {
    fsync_file(path)
}

/// Name prefix of a snapshot directory set aside while another takes its name.
const REPLACED_PREFIX: &str = "replaced-";

fn replaced_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    dir.with_file_name(format!("{REPLACED_PREFIX}{name}"))
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
    fsync_dir(dir)
}

/// The snapshots of one data directory.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    layout: DataLayout,
    /// How many complete snapshots to keep (the pointed-to one always survives).
    keep: usize,
    /// Serializes pointer updates: a build (finishing off the apply path) and an install
    /// can race, and the pointer must never move to a lower index.
    pointer_lock: std::sync::Arc<std::sync::Mutex<()>>,
}

/// What a freshly taken checkpoint describes; filled in under the apply lock.
pub struct CheckpointInfo {
    pub index: u64,
    pub term: u64,
    pub leader_node: u64,
    pub membership: StoredMembership,
    pub hlc_ceiling_ms: u64,
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
        let token = SnapshotToken::from_hex(token).map_err(|e| SnapshotError::BadPointer {
            path: p.clone(),
            detail: e.to_string(),
        })?;
        Ok(Some((dir.to_string(), token)))
    }

    /// Moves the pointer to `snap` unless it already points at a snapshot with a higher
    /// index (a newer install won the race): the restart point only moves forward.
    fn write_pointer(&self, snap: &SnapshotDir) -> Result<(), SnapshotError> {
        let _guard = self.pointer_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(Some((_, current))) = self.read_pointer() {
            if current.index > snap.manifest.index {
                tracing::info!(
                    current = current.index,
                    built = snap.manifest.index,
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

    /// Takes the checkpoint itself. The caller holds the apply lock, so the store's meta keys
    /// describe exactly the checkpointed state (I3). I2: the WAL is fsynced first, so the
    /// applied index >= X is durable in the live store before X can become a restart point.
    pub fn checkpoint(&self, store: &Store, tag: &str) -> Result<PathBuf, SnapshotError> {
        self.ensure_dir()?;
        store.sync_wal()?;
        let tmp = self.layout.snapshots().join(format!("build-{tag}"));
        // RocksDB can roll its MANIFEST while a checkpoint copies it ("No such file"); that
        // is transient, and a failed build would stop Raft, so retry a few times.
        let mut attempt = 0;
        loop {
            if tmp.exists() {
                fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
            }
            match store.checkpoint(&tmp) {
                Ok(()) => return Ok(tmp),
                Err(e) if attempt < 4 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "checkpoint failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Completes a checkpoint taken by [`checkpoint`](Self::checkpoint): CRCs every file,
    /// writes the manifest, moves the directory into place and moves the pointer to it.
    /// O(data) reads, off the apply path.
    pub fn finish_build(
        &self,
        tmp: &Path,
        info: CheckpointInfo,
    ) -> Result<SnapshotDir, SnapshotError> {
        // Nothing was applied since the last snapshot: the existing one at this (index, term)
        // is the same state (I3). Reuse it rather than replace the directory the pointer names.
        let existing = self.layout.snapshot_dir(info.index, info.term);
        if let Ok(snap) = SnapshotDir::open(&existing) {
            fs::remove_dir_all(tmp).map_err(io_at(tmp))?;
            self.write_pointer(&snap)?;
            return Ok(snap);
        }

        let mut files = Vec::new();
        let mut names: Vec<_> = fs::read_dir(tmp)
            .map_err(io_at(tmp))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().to_string()))
            .collect::<Result<_, _>>()
            .map_err(io_at(tmp))?;
        names.sort();
        for name in names {
            let p = tmp.join(&name);
            // Copied (non-hard-linked) checkpoint files must be durable too.
            fsync_file(&p)?;
            let size = fs::metadata(&p).map_err(io_at(&p))?.len();
            files.push(FileEntry {
                crc32c: file_crc32c(&p)?,
                name,
                size,
            });
        }
        let manifest = SnapshotManifest {
            version: CURRENT_VERSION,
            index: info.index,
            term: info.term,
            leader_node: info.leader_node,
            membership: info.membership,
            header: HeaderState {
                hlc_ceiling_ms: info.hlc_ceiling_ms,
                cutover_index: 0,
                extension: Vec::new(),
            },
            files,
        };
        fault::crash_point(fault::SNAPSHOT_BEFORE_MANIFEST);
        let (raw, crc) = manifest
            .encode()
            .map_err(|source| SnapshotError::Manifest {
                path: tmp.join(MANIFEST_FILE),
                source,
            })?;
        write_atomic(&tmp.join(MANIFEST_FILE), &raw)?;
        let final_dir = self.layout.snapshot_dir(info.index, info.term);
        self.move_into_place(tmp, &final_dir)?;
        let snap = SnapshotDir {
            path: final_dir,
            manifest,
            manifest_crc: crc,
        };
        fault::crash_point(fault::SNAPSHOT_BEFORE_POINTER);
        self.write_pointer(&snap)?;
        self.remove_replaced(&snap.path);
        self.collect_garbage();
        Ok(snap)
    }

    /// Adopts a received, verified snapshot whose restore already replaced the live store:
    /// moves it into place and points to it (A = X from here).
    pub fn adopt(&self, incoming: &SnapshotDir) -> Result<SnapshotDir, SnapshotError> {
        let m = &incoming.manifest;
        let final_dir = self.layout.snapshot_dir(m.index, m.term);
        if final_dir != incoming.path {
            self.move_into_place(&incoming.path, &final_dir)?;
        }
        let snap = SnapshotDir {
            path: final_dir,
            ..incoming.clone()
        };
        self.write_pointer(&snap)?;
        self.remove_replaced(&snap.path);
        Ok(snap)
    }

    /// Renames a complete snapshot directory `from` to its final name `to`. A directory
    /// already there (possibly the one the pointer names) is never deleted first: it is
    /// renamed aside to `replaced-<name>` and only removed once the pointer names the new one
    /// ([`remove_replaced`](Self::remove_replaced)). A crash in between leaves either the old
    /// directory aside or the new one in place with a pointer still holding the old token;
    /// [`remove_leftovers`](Self::remove_leftovers) rolls both back at the next start, so the
    /// pointer always names a complete snapshot with its own token (I2, I5).
    fn move_into_place(&self, from: &Path, to: &Path) -> Result<(), SnapshotError> {
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
            fsync_dir(&self.layout.snapshots())?;
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
        fsync_dir(&self.layout.snapshots())
    }

    /// Deletes the directory [`move_into_place`](Self::move_into_place) set aside for `dir`,
    /// once the pointer no longer depends on it.
    fn remove_replaced(&self, dir: &Path) {
        let aside = replaced_path(dir);
        if aside.exists() {
            if let Err(e) = fs::remove_dir_all(&aside) {
                tracing::warn!(path = %aside.display(), error = %e, "could not remove a replaced snapshot");
            }
        }
    }

    /// Whether the pointer names directory `name_of` with the token of the snapshot in
    /// `copy`; None when that cannot be told (pointer or copy unreadable).
    fn pointer_names(&self, name_of: &Path, copy: &Path) -> Option<bool> {
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

    /// Settles a replacement interrupted by a crash. When the pointer names the directory
    /// with the token of the copy set aside, the replacement never completed: the copy goes
    /// back to its name (the new one, never pointed to, is dropped). When the pointer names
    /// the directory in place with its own token, the replacement completed and the copy is
    /// garbage. Anything that cannot be told for sure (an unreadable pointer or manifest) is
    /// left as it is: garbage costs disk, deleting the restart point costs data.
    fn roll_back_replacements(&self) {
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
        fsync_dir(&self.layout.snapshots())
    }

    /// Builds `sm.restore-tmp` from a verified snapshot and swaps it in as `sm`. The live
    /// store must be closed. SST files are hard-linked (immutable in RocksDB, so sharing them
    /// with the snapshot is safe); the small mutable files (MANIFEST, CURRENT, OPTIONS, WAL)
    /// are copied so the opened store never changes the snapshot's bytes.
    ///
    /// Crash safety (crash points restore_before_swap, restore_before_cleanup): before the swap the old `sm` is intact; between the two
    /// renames `sm` is missing and the gate restores again (`store_missing`); after the swap
    /// the leftover `sm.old` is removed at the next start.
    /// `link == false` copies every file instead (the `always-restore` baseline: O(data)).
    pub fn restore(&self, snap: &SnapshotDir, link: bool) -> Result<(), SnapshotError> {
        let tmp = self.layout.restore_tmp();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
        for f in &snap.manifest.files {
            let src = snap.path.join(&f.name);
            let dst = tmp.join(&f.name);
            if link && f.name.ends_with(".sst") {
                fs::hard_link(&src, &dst).map_err(io_at(&dst))?;
            } else {
                fs::copy(&src, &dst).map_err(io_at(&dst))?;
                fsync_file(&dst)?;
            }
        }
        fsync_dir(&tmp)?;
        // Fail closed before the swap: a copy that is not the manifest's state never replaces
        // the live store (I5).
        let checked = Store::open_read_only(&tmp)
            .map_err(SnapshotError::from)
            .and_then(|store| snap.check_restored(&store));
        if let Err(e) = checked {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        fault::crash_point(fault::RESTORE_BEFORE_SWAP);
        let live = self.layout.state_machine();
        let old = self.layout.state_machine_old();
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_at(&old))?;
        }
        if live.exists() {
            fs::rename(&live, &old).map_err(io_at(&old))?;
        }
        fs::rename(&tmp, &live).map_err(io_at(&live))?;
        fsync_dir(self.layout.path())?;
        fault::crash_point(fault::RESTORE_BEFORE_CLEANUP);
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_at(&old))?;
        }
        Ok(())
    }

    /// Removes leftovers of interrupted work (`sm.restore-tmp`, `sm.old`, `build-*`,
    /// `incoming-*`) and all but the newest `keep` snapshots. The pointed-to snapshot is never
    /// removed. Errors are logged, never fatal: garbage costs disk, not correctness.
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
            let p = self.layout.snapshots().join(name);
            if let Err(e) = fs::remove_dir_all(&p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove old snapshot");
            }
        }
    }

    /// Removes interrupted builds, transfers and restores. Only at start, when none can be
    /// in progress.
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
