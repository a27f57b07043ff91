use serde::{Deserialize, Serialize};

use crate::{LogIndex, Timestamp};

/// Meta keys in the `meta` column family.
pub(crate) const KEY_APPLIED: &[u8] = b"applied_log_id";
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"membership";
pub(crate) const KEY_LAST_COMMIT_TS: &[u8] = b"last_commit_ts";
pub(crate) const KEY_HLC_CEILING: &[u8] = b"hlc_ceiling_ms";

/// The Raft log id of the last entry whose effects are in the store (applied index A).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppliedLogId {
    pub term: u64,
    /// The node that led `term` (openraft's committed leader id is `(term, node)`).
    pub leader_node: u64,
    pub index: LogIndex,
}

impl AppliedLogId {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&self.term.to_be_bytes());
        out.extend_from_slice(&self.leader_node.to_be_bytes());
        out.extend_from_slice(&self.index.get().to_be_bytes());
        out
    }

    pub(crate) fn decode(raw: &[u8]) -> Option<Self> {
        if raw.len() != 24 {
            return None;
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
            u64::from_be_bytes(b)
        };
        Some(AppliedLogId {
            term: word(0),
            leader_node: word(1),
            index: LogIndex(word(2)),
        })
    }
}

/// What every apply batch must carry (I1): the applied log id and the membership in force
/// after the entry, the latter encoded by the Raft layer (opaque here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedState {
    pub log_id: AppliedLogId,
    pub membership: Vec<u8>,
}

/// All meta keys, read in one pass (the cold-start gate and the inspector use this).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetaSnapshot {
    pub applied: Option<AppliedLogId>,
    pub membership: Option<Vec<u8>>,
    pub last_commit_ts: Timestamp,
    pub hlc_ceiling_ms: u64,
}

pub(crate) fn decode_u64(what: &'static str, raw: &[u8]) -> Result<u64, crate::StorageError> {
    let arr: [u8; 8] = raw
        .try_into()
        .map_err(|_| crate::StorageError::corrupt(what, format!("{} bytes, want 8", raw.len())))?;
    Ok(u64::from_be_bytes(arr))
}
