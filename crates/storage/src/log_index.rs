//! Positions in the Raft log, as the store records them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The index of an entry in a group's Raft log: 1 for the first entry, 0 for "before the
/// first". The applied index A (what the store holds), the snapshot index X and the commit
/// index are all of this type, so one cannot be confused with a term, a node id or a count.
///
/// Encoded as the integer it wraps everywhere it is stored or sent (the meta key, snapshot
/// manifests, status replies), so the type changes no format. openraft's `LogId` keeps its
/// own `u64`; convert at that boundary with [`LogIndex::from`].
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogIndex(pub u64);

impl LogIndex {
    /// Before the first entry: nothing applied.
    pub const ZERO: LogIndex = LogIndex(0);

    /// The integer, as stored and sent.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The entry after this one.
    pub const fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// How many entries lie after `earlier` up to and including `self` (0 if `earlier` is
    /// not before `self`).
    pub const fn entries_since(self, earlier: LogIndex) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self - base` as a signed distance (negative when `self` is before `base`), e.g. how
    /// far the applied index is ahead of the snapshot index.
    /// Saturates at the ends of `i64` (indexes past `i64::MAX` come only from damaged data).
    pub fn offset_from(self, base: LogIndex) -> i64 {
        let d = self.0 as i128 - base.0 as i128;
        i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
    }
}

impl From<u64> for LogIndex {
    fn from(index: u64) -> Self {
        LogIndex(index)
    }
}

impl From<LogIndex> for u64 {
    fn from(index: LogIndex) -> Self {
        index.0
    }
}

// Both print the bare integer, as logs and messages did before the type existed (an
// operator's `applied_index=Some(42)`), and honour width and padding flags.
impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_integer_it_wraps() {
        let index = LogIndex(1_234_567);
        assert_eq!(
            bincode::serde::encode_to_vec(index, bincode::config::standard()).unwrap(),
            bincode::serde::encode_to_vec(index.0, bincode::config::standard()).unwrap()
        );
        assert_eq!(serde_json::to_string(&index).unwrap(), "1234567");
        assert_eq!(format!("{:?}", Some(index)), "Some(1234567)");
        assert_eq!(format!("{:09}", index), "001234567");
    }

    #[test]
    fn orders_and_counts_as_positions() {
        assert!(LogIndex::ZERO < LogIndex(1));
        assert_eq!(LogIndex(7).next(), LogIndex(8));
        assert_eq!(LogIndex(10).entries_since(LogIndex(4)), 6);
        assert_eq!(LogIndex(4).entries_since(LogIndex(10)), 0);
        assert_eq!(LogIndex(4).offset_from(LogIndex(10)), -6);
        assert_eq!(LogIndex(10).offset_from(LogIndex(4)), 6);
        assert_eq!(LogIndex(u64::MAX).offset_from(LogIndex::ZERO), i64::MAX);
    }
}
