//! What can go wrong with a snapshot on disk, and which failures prove it unusable (I5).

use std::io;
use std::path::{Path, PathBuf};

use brisk_storage::{LogIndex, StorageError};

use super::manifest::ManifestError;

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
    #[error("snapshot pointer {path} is invalid: {source}")]
    PointerToken {
        path: PathBuf,
        #[source]
        source: ManifestError,
    },
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
        index: LogIndex,
        term: u64,
        found: String,
    },
    #[error("checkpoint {dir} holds no applied log id: nothing to build a snapshot of")]
    NothingApplied { dir: PathBuf },
    #[error("checkpoint {dir} holds an undecodable membership: {source}")]
    Membership {
        dir: PathBuf,
        #[source]
        source: crate::codec::CodecError,
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
        !matches!(
            self,
            SnapshotError::Io { .. }
                | SnapshotError::Storage(_)
                | SnapshotError::NothingApplied { .. }
                | SnapshotError::Membership { .. }
        )
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
                ManifestError::BadBody(_) | ManifestError::TrailingBytes(_) => "manifest_body",
                ManifestError::BadToken(_) => "token",
            },
            SnapshotError::BadPointer { .. } | SnapshotError::PointerToken { .. } => "pointer",
            SnapshotError::TokenMismatch { .. } => "token",
            SnapshotError::FileMissing { .. } => "file_missing",
            SnapshotError::FileSize { .. } => "file_size",
            SnapshotError::FileCrc { .. } => "file_crc",
            SnapshotError::ExtraFile { .. } => "extra_file",
            SnapshotError::BadFileName(_) => "file_name",
            SnapshotError::AppliedMismatch { .. } => "applied_id",
            SnapshotError::Storage(_) => "store",
            SnapshotError::NothingApplied { .. } => "nothing_applied",
            SnapshotError::Membership { .. } => "membership",
        }
    }
}

/// Maps an I/O error to [`SnapshotError::Io`] naming `path`.
pub(super) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}
