//! The values the service takes and returns.

use crate::error::ServiceError;
use brisk_kv::Timestamp;
use brisk_raft::LogIndex;

/// A write that was applied: its commit timestamp and the log index that carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub commit_ts: Timestamp,
    pub log_index: LogIndex,
}

/// A key's value as of a read, with the timestamp of the commit that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub commit_ts: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub commit_ts: Timestamp,
}

/// One page of a scan. `truncated` is set when the byte budget (not the pair limit) ended
/// it: the caller continues after the last key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanPage {
    pub pairs: Vec<Pair>,
    pub truncated: bool,
}

/// The keys a scan visits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// From `start` (inclusive; empty = the first key) to `end` (exclusive; None = the last).
    Span {
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    },
    /// Every key that begins with the prefix.
    Prefix(Vec<u8>),
}

impl KeyRange {
    /// The range the wire form names: `prefix` excludes `start`/`end`; empty means unset.
    pub fn from_parts(start: Vec<u8>, end: Vec<u8>, prefix: Vec<u8>) -> Result<Self, ServiceError> {
        if prefix.is_empty() {
            return Ok(KeyRange::Span {
                start,
                end: (!end.is_empty()).then_some(end),
            });
        }
        if !start.is_empty() || !end.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "set either prefix or start/end, not both".into(),
            ));
        }
        Ok(KeyRange::Prefix(prefix))
    }

    /// The wire form: (start, end, prefix), empty meaning unset.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        match self {
            KeyRange::Span { start, end } => (start, end.unwrap_or_default(), Vec::new()),
            KeyRange::Prefix(p) => (Vec::new(), Vec::new(), p),
        }
    }
}

/// What an optimistic transaction's commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed(Written),
    /// A key the transaction read or writes was committed after its start: nothing was
    /// written. The log entry that decided it is `log_index`.
    Conflict {
        key: Vec<u8>,
        conflicting_commit_ts: Timestamp,
        log_index: LogIndex,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_with_a_range_is_refused() {
        for (start, end) in [(b"a".to_vec(), Vec::new()), (Vec::new(), b"z".to_vec())] {
            let r = KeyRange::from_parts(start, end, b"p".to_vec());
            assert!(matches!(r, Err(ServiceError::InvalidArgument(_))), "{r:?}");
        }
    }

    #[test]
    fn ranges_round_trip_through_their_wire_form() {
        for r in [
            KeyRange::Span {
                start: b"a".to_vec(),
                end: Some(b"b".to_vec()),
            },
            KeyRange::Span {
                start: Vec::new(),
                end: None,
            },
            KeyRange::Prefix(b"p".to_vec()),
        ] {
            let (s, e, p) = r.clone().into_parts();
            assert_eq!(KeyRange::from_parts(s, e, p).unwrap(), r);
        }
        assert!(KeyRange::from_parts(b"a".to_vec(), Vec::new(), b"p".to_vec()).is_err());
    }
}
