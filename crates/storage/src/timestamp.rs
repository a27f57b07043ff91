//! Timestamps of the MVCC store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A commit or read timestamp: a hybrid-logical-clock value (physical milliseconds above a
/// logical counter, see brisk-kv's `hlc`), ordered as the integer it wraps.
///
/// Encoded as that integer everywhere it is stored or sent (MVCC keys, the Raft log, the
/// snapshot header, the wire), so the type changes no format.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Before every commit: reads at it see nothing.
    pub const ZERO: Timestamp = Timestamp(0);
    /// After every commit: reads at it see the latest versions.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// The integer, as stored and sent.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for Timestamp {
    fn from(ts: u64) -> Self {
        Timestamp(ts)
    }
}

impl From<Timestamp> for u64 {
    fn from(ts: Timestamp) -> Self {
        ts.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_integer_it_wraps() {
        let ts = Timestamp(117_682_475_059_511_296);
        assert_eq!(
            bincode::serde::encode_to_vec(ts, bincode::config::standard()).unwrap(),
            bincode::serde::encode_to_vec(ts.0, bincode::config::standard()).unwrap()
        );
        assert!(Timestamp(1) < Timestamp(2) && Timestamp::ZERO < Timestamp::MAX);
    }
}
