//! The newest Raft log entries, kept in memory as they are appended.
//!
//! Every entry is read back from the log at least once on each node (the state machine
//! applies it from there) and, on the leader, once more per follower (replication). From
//! RocksDB each read is an iterator seek, a copy out of the memtable and a decode; from the
//! tail it is the entry as it was appended.
//!
//! The tail mirrors the log over the range it holds: the log store changes it in the same
//! calls that change the log (append, truncate, purge, the recovery wipe) — entries leave it
//! before RocksDB deletes them and join it after RocksDB wrote them. It only ever drops
//! entries from its front to stay within its budget, so whatever it holds runs to the log's
//! last entry, and a read that starts inside it never needs the disk. A read that starts before it (an entry appended before
//! this process started, or evicted) goes to RocksDB.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::types::Entry;

/// Encoded bytes of entries the tail holds at most.
pub const TAIL_BYTES: usize = 32 << 20;
/// Entries the tail holds at most (small entries cost more memory than their encoding).
pub const TAIL_ENTRIES: usize = 65_536;

pub struct LogTail {
    /// Contiguous entries, each with its encoded length.
    entries: VecDeque<(Arc<Entry>, usize)>,
    bytes: usize,
    max_bytes: usize,
    max_entries: usize,
}

impl LogTail {
    pub fn new(max_bytes: usize, max_entries: usize) -> Self {
        LogTail {
            entries: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_entries,
        }
    }

    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn last_index(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.log_id.index)
    }

    /// Takes one entry just written to the log, with its encoded length. An entry that does
    /// not follow the last one replaces what it overlaps (the log was overwritten there) or,
    /// past a gap, everything.
    pub fn push(&mut self, entry: Entry, encoded_len: usize) {
        let index = entry.log_id.index;
        match self.last_index() {
            Some(last) if index <= last => self.truncate_after(index.checked_sub(1)),
            Some(last) if index > last + 1 => self.clear(),
            _ => {}
        }
        self.entries.push_back((Arc::new(entry), encoded_len));
        self.bytes += encoded_len;
        while self.bytes > self.max_bytes || self.entries.len() > self.max_entries {
            match self.entries.pop_front() {
                Some((_, len)) => self.bytes -= len,
                None => break,
            }
        }
    }

    /// Keeps the entries at or below `last` (`None`: none).
    pub fn truncate_after(&mut self, last: Option<u64>) {
        let keep = match (last, self.first_index()) {
            (_, None) => return,
            (None, Some(_)) => 0,
            (Some(last), Some(first)) if last < first => 0,
            (Some(last), Some(first)) => usize::try_from(last - first + 1).unwrap_or(usize::MAX),
        };
        while self.entries.len() > keep {
            if let Some((_, len)) = self.entries.pop_back() {
                self.bytes -= len;
            }
        }
    }

    /// Drops the entries below `index`.
    pub fn purge_before(&mut self, index: u64) {
        while self.first_index().is_some_and(|first| first < index) {
            if let Some((_, len)) = self.entries.pop_front() {
                self.bytes -= len;
            }
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The entries from `start` below `end` (`None`: to the last), stopping before their
    /// encoded bytes would exceed `byte_budget` (at least one entry) — or `None` when
    /// `start` is not in the tail and the caller must read the disk.
    pub fn read(
        &self,
        start: u64,
        end: Option<u64>,
        byte_budget: usize,
    ) -> Option<Vec<Arc<Entry>>> {
        let first = self.first_index()?;
        let last = self.last_index()?;
        if start < first || start > last {
            return None;
        }
        let skip = usize::try_from(start - first).ok()?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (entry, len) in self.entries.iter().skip(skip) {
            if end.is_some_and(|e| entry.log_id.index >= e)
                || (!out.is_empty() && bytes.saturating_add(*len) > byte_budget)
            {
                break;
            }
            bytes = bytes.saturating_add(*len);
            out.push(entry.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;

    use super::*;
    use crate::types::log_id;

    fn tail_of(range: std::ops::RangeInclusive<u64>, max_bytes: usize) -> LogTail {
        let mut t = LogTail::new(max_bytes, usize::MAX);
        for i in range {
            t.push(Entry::new_blank(log_id(1, 1, i)), 10);
        }
        t
    }

    fn indexes(v: Option<Vec<Arc<Entry>>>) -> Option<Vec<u64>> {
        v.map(|v| v.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn reads_inside_the_tail_and_refuses_outside_it() {
        let t = tail_of(5..=9, 1000);
        assert_eq!(
            indexes(t.read(5, None, usize::MAX)),
            Some(vec![5, 6, 7, 8, 9])
        );
        assert_eq!(indexes(t.read(7, Some(9), usize::MAX)), Some(vec![7, 8]));
        assert_eq!(indexes(t.read(6, None, 25)), Some(vec![6, 7]));
        assert_eq!(
            indexes(t.read(6, None, 0)),
            Some(vec![6]),
            "at least one entry"
        );
        assert_eq!(indexes(t.read(4, None, usize::MAX)), None);
        assert_eq!(indexes(t.read(10, None, usize::MAX)), None);
    }

    #[test]
    fn evicts_the_oldest_entries_beyond_its_budget() {
        let t = tail_of(1..=10, 35);
        assert_eq!(indexes(t.read(8, None, usize::MAX)), Some(vec![8, 9, 10]));
        assert_eq!(indexes(t.read(7, None, usize::MAX)), None);
        assert_eq!(t.bytes, 30);
        let mut t = LogTail::new(usize::MAX, 2);
        for i in 1..=5 {
            t.push(Entry::new_blank(log_id(1, 1, i)), 1);
        }
        assert_eq!(indexes(t.read(4, None, usize::MAX)), Some(vec![4, 5]));
    }

    #[test]
    fn an_overlapping_push_replaces_the_rest_and_a_gap_clears_it() {
        let mut t = tail_of(1..=10, 1000);
        t.push(Entry::new_blank(log_id(2, 1, 6)), 10);
        assert_eq!(
            indexes(t.read(1, None, usize::MAX)),
            Some(vec![1, 2, 3, 4, 5, 6])
        );
        assert_eq!(
            t.read(6, None, usize::MAX).unwrap()[0].log_id,
            log_id(2, 1, 6)
        );
        assert_eq!(t.bytes, 60);
        t.push(Entry::new_blank(log_id(2, 1, 9)), 10);
        assert_eq!(indexes(t.read(9, None, usize::MAX)), Some(vec![9]));
        assert_eq!(indexes(t.read(6, None, usize::MAX)), None);
        assert_eq!(t.bytes, 10);
    }

    #[test]
    fn truncation_and_purge_follow_the_log() {
        let mut t = tail_of(5..=9, 1000);
        t.truncate_after(Some(7));
        assert_eq!(indexes(t.read(5, None, usize::MAX)), Some(vec![5, 6, 7]));
        t.truncate_after(Some(100));
        assert_eq!(indexes(t.read(5, None, usize::MAX)), Some(vec![5, 6, 7]));
        t.purge_before(6);
        assert_eq!(indexes(t.read(6, None, usize::MAX)), Some(vec![6, 7]));
        assert_eq!(indexes(t.read(5, None, usize::MAX)), None);
        t.truncate_after(Some(3));
        assert_eq!(indexes(t.read(6, None, usize::MAX)), None);
        assert_eq!(t.bytes, 0);
        let mut t = tail_of(5..=9, 1000);
        t.truncate_after(None);
        assert_eq!(t.bytes, 0);
        assert!(t.entries.is_empty());
    }
}
