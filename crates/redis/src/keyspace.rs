//! How Redis keys are stored in brisk's ordered keyspace.
//!
//! Every Redis key K is one brisk key, `NAMESPACE ++ "k" ++ K`, whose value is a record:
//! a format byte, the type, the expiry (milliseconds since the epoch, 0 for none) and the
//! type's body (a string's bytes). Collection types will keep their elements under their own
//! keys beside the record, so that single-element operations stay O(log n); the record then
//! holds the count. The namespace keeps Redis data apart from keys written through the gRPC
//! API; it begins with a zero byte, which the gRPC API's users are told to avoid.

/// The brisk-key prefix of everything the Redis adapter stores.
pub const NAMESPACE: &[u8] = b"\x00redis\x00";
/// Bytes added to a Redis key to make its record key.
pub const RECORD_OVERHEAD: usize = NAMESPACE.len() + 1;

const FORMAT_V1: u8 = 1;
/// Bytes a record adds in front of its body.
pub const RECORD_HEADER: usize = 1 + 1 + 8;
const HEADER: usize = RECORD_HEADER;

/// The brisk key of Redis key `key`'s record.
pub fn record_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(RECORD_OVERHEAD + key.len());
    k.extend_from_slice(NAMESPACE);
    k.push(b'k');
    k.extend_from_slice(key);
    k
}

/// The prefix every record key starts with.
pub fn record_prefix() -> Vec<u8> {
    record_key(b"")
}

/// The first brisk key after every record key.
pub fn records_end() -> Vec<u8> {
    let mut end = NAMESPACE.to_vec();
    end.push(b'k' + 1);
    end
}

/// A key's type. The discriminant is the type byte of the stored record, so it never changes;
/// the name is what TYPE answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::FromRepr, strum::IntoStaticStr)]
#[repr(u8)]
#[strum(serialize_all = "lowercase")]
pub enum Kind {
    String = 1,
    Hash = 2,
    Set = 3,
    List = 4,
    #[strum(serialize = "zset")]
    SortedSet = 5,
}

impl Kind {
    /// The name TYPE answers.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The prefix of every element of collection `key` in `generation` (the key's length comes
/// first, so one key's elements never share a prefix with another key's).
pub fn element_prefix(key: &[u8], generation: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(NAMESPACE.len() + 13 + key.len());
    p.extend_from_slice(NAMESPACE);
    p.push(b'e');
    p.extend_from_slice(&(key.len() as u32).to_be_bytes());
    p.extend_from_slice(key);
    p.extend_from_slice(&generation.to_be_bytes());
    p
}

/// The prefix every element key starts with.
pub fn elements_prefix() -> Vec<u8> {
    let mut p = NAMESPACE.to_vec();
    p.push(b'e');
    p
}

/// The Redis key and generation that element key `bkey` belongs to (None: not an element
/// key, or one cut short).
pub fn element_owner(bkey: &[u8]) -> Option<(&[u8], u64)> {
    let rest = bkey.strip_prefix(NAMESPACE)?.strip_prefix(b"e")?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let key = rest.get(..len)?;
    let (generation, _member) = rest.get(len..)?.split_first_chunk::<8>()?;
    Some((key, u64::from_be_bytes(*generation)))
}

/// The brisk key of `member` in collection `key`'s `generation`.
pub fn element_key(key: &[u8], generation: u64, member: &[u8]) -> Vec<u8> {
    let mut k = element_prefix(key, generation);
    k.extend_from_slice(member);
    k
}

/// The body of a collection's record: how many elements it holds, the generation its
/// elements are stored under, and (lists) the position of the first element. A new
/// collection takes a new generation, so elements an older one left behind (after DEL,
/// expiry or an overwrite) are never seen as its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collection {
    pub count: u64,
    pub generation: u64,
    pub head: i64,
}

impl Collection {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        v.extend_from_slice(&self.count.to_be_bytes());
        v.extend_from_slice(&self.generation.to_be_bytes());
        v.extend_from_slice(&self.head.to_be_bytes());
        v
    }

    pub fn decode(body: &[u8]) -> Result<Collection, CorruptRecord> {
        let field = |i: usize| -> [u8; 8] {
            let mut a = [0u8; 8];
            a.copy_from_slice(&body[i * 8..i * 8 + 8]);
            a
        };
        if body.len() != 24 {
            return Err(CorruptRecord::Short(body.len()));
        }
        Ok(Collection {
            count: u64::from_be_bytes(field(0)),
            generation: u64::from_be_bytes(field(1)),
            head: i64::from_be_bytes(field(2)),
        })
    }
}

/// A score as element-key bytes that sort like the numbers (negative scores below positive
/// ones, -0 with 0).
pub fn score_bytes(score: f64) -> [u8; 8] {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    ordered.to_be_bytes()
}

/// A list position as element-key bytes that sort like the numbers.
pub fn position_bytes(pos: i64) -> [u8; 8] {
    ((pos as u64) ^ (1 << 63)).to_be_bytes()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    /// When the key expires, in milliseconds since the epoch.
    pub expire_at_ms: Option<u64>,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorruptRecord {
    #[error("record is {0} bytes, shorter than its header")]
    Short(usize),
    #[error("unknown record format {0}")]
    Format(u8),
    #[error("unknown type {0}")]
    Kind(u8),
}

impl Record {
    pub fn string(body: Vec<u8>, expire_at_ms: Option<u64>) -> Record {
        Record {
            kind: Kind::String,
            expire_at_ms,
            body,
        }
    }

    /// Whether the key is gone at `now_ms` (expired keys are invisible at once).
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| at <= now_ms)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER + self.body.len());
        v.push(FORMAT_V1);
        v.push(self.kind as u8);
        v.extend_from_slice(&self.expire_at_ms.unwrap_or(0).to_be_bytes());
        v.extend_from_slice(&self.body);
        v
    }

    pub fn decode(mut bytes: Vec<u8>) -> Result<Record, CorruptRecord> {
        if bytes.len() < HEADER {
            return Err(CorruptRecord::Short(bytes.len()));
        }
        if bytes[0] != FORMAT_V1 {
            return Err(CorruptRecord::Format(bytes[0]));
        }
        let kind = Kind::from_repr(bytes[1]).ok_or(CorruptRecord::Kind(bytes[1]))?;
        let mut at = [0u8; 8];
        at.copy_from_slice(&bytes[2..HEADER]);
        let at = u64::from_be_bytes(at);
        let body = bytes.split_off(HEADER);
        Ok(Record {
            kind,
            expire_at_ms: (at != 0).then_some(at),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_type_byte_and_name() {
        let kinds = [
            (Kind::String, 1, "string"),
            (Kind::Hash, 2, "hash"),
            (Kind::Set, 3, "set"),
            (Kind::List, 4, "list"),
            (Kind::SortedSet, 5, "zset"),
        ];
        for (kind, byte, name) in kinds {
            assert_eq!(kind as u8, byte);
            assert_eq!(Kind::from_repr(byte), Some(kind));
            assert_eq!(kind.name(), name);
        }
        assert_eq!(Kind::from_repr(0), None);
    }

    #[test]
    fn every_record_key_sorts_before_the_end_of_records_and_no_element_key_does() {
        for key in [b"".as_slice(), b"a", &[0xFF; 64]] {
            assert!(record_key(key) < records_end());
        }
        assert!(record_prefix() < records_end());
        assert!(element_key(b"a", 1, b"m") < record_prefix());
    }

    #[test]
    fn an_element_key_names_its_collection_and_generation() {
        for (key, generation, member) in [
            (b"h".as_slice(), 7u64, b"field".as_slice()),
            (b"", u64::MAX, b""),
            (b"a\x00b", 1, b"\xff"),
        ] {
            let bkey = element_key(key, generation, member);
            assert!(bkey.starts_with(&elements_prefix()));
            assert_eq!(element_owner(&bkey), Some((key, generation)));
        }
        let whole = element_key(b"key", 9, b"m");
        // Cut anywhere inside the length, key or generation: not an element key.
        for cut in 0..whole.len() - 1 {
            assert_eq!(element_owner(&whole[..cut]), None, "cut at {cut}");
        }
        assert_eq!(element_owner(&record_key(b"key")), None);
    }

    #[test]
    fn records_round_trip_and_bad_bytes_are_errors() {
        for r in [
            Record::string(b"v".to_vec(), None),
            Record::string(Vec::new(), Some(1_700_000_000_000)),
        ] {
            assert_eq!(Record::decode(r.encode()).unwrap(), r);
        }
        assert_eq!(Record::decode(vec![1, 1]), Err(CorruptRecord::Short(2)));
        assert_eq!(Record::decode(vec![9; 12]), Err(CorruptRecord::Format(9)));
        assert_eq!(
            Record::decode(vec![1, 77, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(CorruptRecord::Kind(77))
        );
        assert!(record_key(b"a").starts_with(&record_prefix()));
        let c = Collection {
            count: 3,
            generation: 9,
            head: -4,
        };
        assert!(position_bytes(-1) < position_bytes(0));
        let scores = [
            f64::NEG_INFINITY,
            -2.5,
            -1e-300,
            0.0,
            1e-300,
            1.0,
            2.5,
            f64::INFINITY,
        ];
        for w in scores.windows(2) {
            assert!(score_bytes(w[0]) < score_bytes(w[1]), "{w:?}");
        }
        assert_eq!(score_bytes(-0.0), score_bytes(0.0));
        assert!(position_bytes(i64::MIN) < position_bytes(i64::MAX));
        assert_eq!(Collection::decode(&c.encode()).unwrap(), c);
        assert!(Collection::decode(b"short").is_err());
        // Element prefixes of different keys never nest: "a" and "ab" differ in length.
        assert!(!element_key(b"ab", 1, b"x").starts_with(&element_prefix(b"a", 1)));
    }
}
