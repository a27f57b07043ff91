//! Verification of a snapshot's files against its manifest, and of a store restored from it
//! (docs/design/cold-start.md I3, I5).

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use brisk_storage::Store;

use super::dir::SnapshotDir;
use super::error::{io_at, SnapshotError};
use super::manifest::MANIFEST_FILE;

impl SnapshotDir {
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
