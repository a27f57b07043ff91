//! Scan cursors. Clients see an integer; the node keeps the key it stands for (the last key
//! a SCAN, HSCAN, SSCAN or ZSCAN page returned). The oldest are forgotten first, past a
//! number of cursors or of key bytes held: a client that comes back with a forgotten cursor
//! gets "invalid cursor" and starts again.

use std::collections::{HashMap, VecDeque};

use crate::tx::wall_clock_ms;

/// Cursors remembered at once.
const MAX_CURSORS: usize = 1 << 16;
/// Bytes of keys remembered at once (keys run up to the server's key limit, so the count
/// alone would let clients make a node hold gigabytes).
const MAX_CURSOR_BYTES: usize = 32 << 20;

pub struct Cursors {
    last_key: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
    next: u64,
    bytes: usize,
    max_count: usize,
    max_bytes: usize,
}

impl Default for Cursors {
    fn default() -> Self {
        Cursors::with_limits(MAX_CURSORS, MAX_CURSOR_BYTES)
    }
}

impl Cursors {
    fn with_limits(max_count: usize, max_bytes: usize) -> Cursors {
        Cursors {
            last_key: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            bytes: 0,
            max_count,
            max_bytes,
        }
    }

    /// A new cursor standing for `last_key`.
    pub fn remember(&mut self, last_key: Vec<u8>) -> u64 {
        if self.next == 0 {
            // A random start per process, so that nodes hand out different numbers: a client
            // that reconnects elsewhere with a cursor gets "invalid cursor", not another
            // node's walk.
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(wall_clock_ms());
            self.next = h.finish() >> 2;
        }
        self.next = self.next.wrapping_add(1).max(1) & (i64::MAX as u64);
        let id = self.next;
        while !self.order.is_empty()
            && (self.order.len() >= self.max_count || self.bytes + last_key.len() > self.max_bytes)
        {
            if let Some(old) = self.order.pop_front() {
                if let Some(key) = self.last_key.remove(&old) {
                    self.bytes -= key.len();
                }
            }
        }
        self.bytes += last_key.len();
        self.order.push_back(id);
        self.last_key.insert(id, last_key);
        id
    }

    /// The key cursor `id` stands for, if it is remembered.
    pub fn recall(&self, id: u64) -> Option<Vec<u8>> {
        self.last_key.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_cursors_go_first_past_a_count() {
        let mut c = Cursors::with_limits(2, 1 << 20);
        let a = c.remember(b"a".to_vec());
        let b = c.remember(b"b".to_vec());
        assert_ne!(a, b);
        assert!(a > 0 && b > 0 && a <= i64::MAX as u64 && b <= i64::MAX as u64);
        let d = c.remember(b"d".to_vec());
        assert_eq!(c.recall(a), None);
        assert_eq!(c.recall(b), Some(b"b".to_vec()));
        assert_eq!(c.recall(d), Some(b"d".to_vec()));
    }

    #[test]
    fn the_oldest_cursors_go_first_past_a_size() {
        let mut c = Cursors::with_limits(100, 25);
        let a = c.remember(vec![b'a'; 10]);
        let b = c.remember(vec![b'b'; 10]);
        let d = c.remember(vec![b'd'; 10]);
        assert_eq!(c.recall(a), None);
        assert_eq!((c.recall(b).is_some(), c.recall(d).is_some()), (true, true));
        assert_eq!(c.bytes, 20);
        // One key above the byte limit is still remembered, alone.
        let e = c.remember(vec![b'e'; 30]);
        assert_eq!((c.recall(b), c.recall(d)), (None, None));
        assert_eq!(c.recall(e).map(|k| k.len()), Some(30));
        assert_eq!(c.bytes, 30);
    }
}
