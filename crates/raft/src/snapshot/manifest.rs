//! The snapshot manifest format.
//!
//! ```text
//! magic     8 bytes  "BRSKSNAP"
//! version   u32 LE   1 or 2; anything else fails closed (I5)
//! header    v1: hlc_ceiling_ms u64 LE
//!           v2: hlc_ceiling_ms u64 LE, cutover_index u64 LE, ext_len u32 LE, ext bytes
//! body_len  u32 LE
//! body      JSON: index, term, leader_node, membership, files [{name, size, crc32c}]
//! crc32c    u32 LE   CRC32C (Castagnoli) of every byte above
//! ```

use brisk_storage::LogIndex;
use serde::{Deserialize, Serialize};

use crate::types::StoredMembership;

pub const MAGIC: &[u8; 8] = b"BRSKSNAP";
pub const TOKEN_MAGIC: &[u8; 4] = b"BRSK";
pub const CURRENT_VERSION: u32 = 2;
pub const MANIFEST_FILE: &str = "BRISK_MANIFEST";
/// Manifests are small; anything larger is corrupt, and the cap keeps a bad length field
/// from allocating gigabytes.
pub const MAX_MANIFEST_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest too small ({0} bytes)")]
    TooSmall(usize),
    #[error("manifest too large ({0} bytes)")]
    TooLarge(usize),
    #[error("bad manifest magic")]
    BadMagic,
    #[error("unknown manifest version {0}")]
    UnknownVersion(u32),
    #[error("manifest checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("manifest truncated in {0}")]
    Truncated(&'static str),
    #[error("manifest body is not valid: {0}")]
    BadBody(#[from] serde_json::Error),
    #[error("manifest body is not valid: {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("bad snapshot token: {0}")]
    BadToken(String),
}

/// Header state carried by a snapshot: in-memory state that must survive restarts but is not
/// user data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderState {
    pub hlc_ceiling_ms: u64,
    /// v2: the log index from which a future encryption key applies (0: none).
    pub cutover_index: LogIndex,
    /// v2: length-prefixed extension area for future header fields.
    pub extension: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub crc32c: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    index: LogIndex,
    term: u64,
    leader_node: u64,
    membership: StoredMembership,
    files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotManifest {
    pub version: u32,
    pub index: LogIndex,
    pub term: u64,
    pub leader_node: u64,
    pub membership: StoredMembership,
    pub header: HeaderState,
    pub files: Vec<FileEntry>,
}

/// Identifies a snapshot in the pointer file and in transfers: magic, version, index and the
/// manifest's CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotToken {
    pub version: u32,
    pub index: LogIndex,
    pub manifest_crc: u32,
}

impl SnapshotToken {
    pub fn to_hex(&self) -> String {
        let mut raw = Vec::with_capacity(20);
        raw.extend_from_slice(TOKEN_MAGIC);
        raw.extend_from_slice(&self.version.to_le_bytes());
        raw.extend_from_slice(&self.index.get().to_le_bytes());
        raw.extend_from_slice(&self.manifest_crc.to_le_bytes());
        raw.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Result<Self, ManifestError> {
        let s = s.trim();
        if s.len() != 40 || !s.is_ascii() {
            return Err(ManifestError::BadToken(format!(
                "want 40 hex digits, got {:?}",
                s
            )));
        }
        let mut raw = [0u8; 20];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| ManifestError::BadToken(format!("not hex: {s:?}")))?;
        }
        if &raw[0..4] != TOKEN_MAGIC {
            return Err(ManifestError::BadToken("bad magic".into()));
        }
        let token = SnapshotToken {
            version: u32::from_le_bytes(raw[4..8].try_into().expect("4 bytes")),
            index: LogIndex(u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes"))),
            manifest_crc: u32::from_le_bytes(raw[16..20].try_into().expect("4 bytes")),
        };
        if !(1..=CURRENT_VERSION).contains(&token.version) {
            return Err(ManifestError::UnknownVersion(token.version));
        }
        Ok(token)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ManifestError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(ManifestError::Truncated(what))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(ManifestError::Truncated(what))?;
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ManifestError> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ManifestError> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
}

impl SnapshotManifest {
    /// Serializes at `self.version` and returns the bytes and their CRC.
    pub fn encode(&self) -> Result<(Vec<u8>, u32), ManifestError> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.header.hlc_ceiling_ms.to_le_bytes());
        match self.version {
            1 => {}
            2 => {
                out.extend_from_slice(&self.header.cutover_index.get().to_le_bytes());
                out.extend_from_slice(&(self.header.extension.len() as u32).to_le_bytes());
                out.extend_from_slice(&self.header.extension);
            }
            v => return Err(ManifestError::UnknownVersion(v)),
        }
        let body = serde_json::to_vec(&Body {
            index: self.index,
            term: self.term,
            leader_node: self.leader_node,
            membership: self.membership.clone(),
            files: self.files.clone(),
        })?;
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok((out, crc))
    }

    /// Parses and checks a manifest: size, magic, CRC, then the known version (I5).
    pub fn decode(raw: &[u8]) -> Result<(Self, u32), ManifestError> {
        if raw.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(raw.len()));
        }
        if raw.len() < MAGIC.len() + 4 + 8 + 4 + 4 {
            return Err(ManifestError::TooSmall(raw.len()));
        }
        if &raw[..8] != MAGIC {
            return Err(ManifestError::BadMagic);
        }
        let (payload, tail) = raw.split_at(raw.len() - 4);
        let stored = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(payload);
        if stored != computed {
            return Err(ManifestError::ChecksumMismatch { stored, computed });
        }
        let mut r = Reader {
            buf: payload,
            pos: 8,
        };
        let version = r.u32("version")?;
        let mut header = HeaderState {
            hlc_ceiling_ms: r.u64("hlc ceiling")?,
            ..Default::default()
        };
        match version {
            1 => {}
            2 => {
                header.cutover_index = LogIndex(r.u64("cutover index")?);
                let len = r.u32("extension length")? as usize;
                header.extension = r.take(len, "extension")?.to_vec();
            }
            v => return Err(ManifestError::UnknownVersion(v)),
        }
        let body_len = r.u32("body length")? as usize;
        let body = r.take(body_len, "body")?;
        if r.pos != payload.len() {
            return Err(ManifestError::TrailingBytes(payload.len() - r.pos));
        }
        let body: Body = serde_json::from_slice(body)?;
        Ok((
            SnapshotManifest {
                version,
                index: body.index,
                term: body.term,
                leader_node: body.leader_node,
                membership: body.membership,
                header,
                files: body.files,
            },
            computed,
        ))
    }

    pub fn token(&self, manifest_crc: u32) -> SnapshotToken {
        SnapshotToken {
            version: self.version,
            index: self.index,
            manifest_crc,
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |acc, f| acc.saturating_add(f.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: u32) -> SnapshotManifest {
        SnapshotManifest {
            version,
            index: LogIndex(42),
            term: 3,
            leader_node: 1,
            membership: StoredMembership::default(),
            header: HeaderState {
                hlc_ceiling_ms: 1234,
                cutover_index: LogIndex(if version == 2 { 7 } else { 0 }),
                extension: if version == 2 {
                    b"ext".to_vec()
                } else {
                    vec![]
                },
            },
            files: vec![FileEntry {
                name: "000001.sst".into(),
                size: 10,
                crc32c: 99,
            }],
        }
    }

    #[test]
    fn roundtrip_v1_and_v2() {
        for v in [1, 2] {
            let m = sample(v);
            let (raw, crc) = m.encode().unwrap();
            let (back, crc2) = SnapshotManifest::decode(&raw).unwrap();
            assert_eq!(back, m);
            assert_eq!(crc, crc2);
            let t = m.token(crc);
            assert_eq!(SnapshotToken::from_hex(&t.to_hex()).unwrap(), t);
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let (raw, _) = sample(2).encode().unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            assert!(
                SnapshotManifest::decode(&bad).is_err(),
                "flip at {i} accepted"
            );
        }
    }

    #[test]
    fn truncation_and_unknown_version_fail_closed() {
        let (raw, _) = sample(2).encode().unwrap();
        for n in [0, 5, 20, raw.len() - 1] {
            assert!(
                SnapshotManifest::decode(&raw[..n]).is_err(),
                "truncated to {n} accepted"
            );
        }
        let mut m = sample(2);
        m.version = 3;
        assert!(matches!(
            m.encode().unwrap_err(),
            ManifestError::UnknownVersion(3)
        ));
        // Forge a v3 manifest with a valid CRC: still refused.
        let (mut raw, _) = sample(1).encode().unwrap();
        raw.truncate(raw.len() - 4);
        raw[8..12].copy_from_slice(&3u32.to_le_bytes());
        let crc = crc32c::crc32c(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            SnapshotManifest::decode(&raw).unwrap_err(),
            ManifestError::UnknownVersion(3)
        ));
    }
}
