//! One snapshot directory: its manifest, read and checked, and the names of its files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{io_at, SnapshotError};
use super::manifest::{SnapshotManifest, SnapshotToken, MANIFEST_FILE};

/// Whether the names `first` and `second` denote one file: same device and inode
/// (checkpoints and restores hard-link the immutable SST and blob files). `first` is examined
/// first: when it is a name nothing else renames, a match means both names denoted that inode
/// when `second` was examined, so an inode number freed and reused in between is no match.
pub(super) fn same_file(first: &Path, second: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(a) = fs::metadata(first) else {
        return false;
    };
    let Ok(b) = fs::metadata(second) else {
        return false;
    };
    a.dev() == b.dev() && a.ino() == b.ino()
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
