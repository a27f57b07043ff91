//! Order-preserving encoding of `(user_key, commit_ts)` into one RocksDB key.
//!
//! The user key is escaped (`0x00` becomes `0x00 0xFF`) and terminated by `0x00 0x01`, so the
//! encoded keys sort exactly like the user keys and no key is a prefix of another key's
//! terminator. The timestamp follows as `!ts` big-endian, so the newest version of a key
//! sorts first and a seek to `(key, ts)` lands on the newest version at or below `ts`.

use crate::Timestamp;

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

/// Escaped user key without terminator: a prefix of every encoded key starting with `key`.
pub fn encode_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 10);
    for &b in key {
        out.push(b);
        if b == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out
}

/// Escaped and terminated user key: a prefix shared by every version of exactly `key`.
pub fn encode_user_key(key: &[u8]) -> Vec<u8> {
    let mut out = encode_prefix(key);
    out.push(ESCAPE);
    out.push(TERMINATOR);
    out
}

/// The full encoded key of version `ts` of `key`.
pub fn encode(key: &[u8], ts: Timestamp) -> Vec<u8> {
    let mut out = encode_user_key(key);
    out.extend_from_slice(&(!ts.get()).to_be_bytes());
    out
}

/// Splits an encoded key into the user key and the commit timestamp; `None` when the bytes
/// are not a valid encoding (a corrupt store).
pub fn decode(raw: &[u8]) -> Option<(Vec<u8>, Timestamp)> {
    let mut key = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != ESCAPE {
            key.push(b);
            i += 1;
            continue;
        }
        match raw.get(i + 1) {
            Some(&ESCAPED_ZERO) => {
                key.push(ESCAPE);
                i += 2;
            }
            Some(&TERMINATOR) => {
                let ts_bytes: [u8; 8] = raw.get(i + 2..)?.try_into().ok()?;
                return Some((key, Timestamp(!u64::from_be_bytes(ts_bytes))));
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_order() {
        let keys: Vec<&[u8]> = vec![
            b"", b"a", b"a\x00", b"a\x00b", b"a\x01", b"ab", b"b", b"\xff",
        ];
        let mut encoded: Vec<Vec<u8>> = Vec::new();
        for k in &keys {
            for ts in [1u64, 7, u64::MAX - 1] {
                let e = encode(k, Timestamp(ts));
                assert_eq!(decode(&e), Some((k.to_vec(), Timestamp(ts))));
                encoded.push(e);
            }
        }
        // Keys ascending, and within a key, timestamps descending.
        let mut sorted = encoded.clone();
        sorted.sort();
        let decoded: Vec<_> = sorted.iter().map(|e| decode(e).unwrap()).collect();
        for w in decoded.windows(2) {
            assert!(
                w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 > w[1].1),
                "{w:?}"
            );
        }
    }

    #[test]
    fn prefix_covers_only_matching_keys() {
        let p = encode_prefix(b"ab");
        assert!(encode(b"ab", Timestamp(3)).starts_with(&p));
        assert!(encode(b"abc", Timestamp(3)).starts_with(&p));
        assert!(!encode(b"a", Timestamp(3)).starts_with(&p));
        assert!(!encode(b"b", Timestamp(3)).starts_with(&p));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode(b"abc"), None);
        assert_eq!(decode(b"a\x00\x07"), None);
        assert_eq!(decode(b"a\x00\x01short"), None);
    }
}
