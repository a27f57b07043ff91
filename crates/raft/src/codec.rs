//! Binary encoding of Raft messages, log entries and meta values (bincode over serde).
//!
//! Every decode is bounded. The bytes come from peers (Raft RPCs, snapshot headers) and from
//! disk, and bincode allocates a string or byte buffer of the length its prefix announces
//! before reading it: without a limit, a 20-byte frame announcing 2^62 bytes aborts the
//! process. Decoding therefore runs under a bincode limit that scales with the input. What
//! bincode counts against the limit (string and byte-buffer lengths, and fixed-size
//! primitives at their in-memory size) is at most 16 bytes per input byte for a legitimate
//! value (a one-byte varint can decode to a u128), so the limit never refuses one, while a
//! hostile length prefix can make the decoder allocate at most that much. Other containers
//! are preallocated cautiously by serde (at most 1 MiB) and grow as elements actually
//! decode. Inputs above [`MAX_DECODE_BYTES`] are refused before decoding.

use serde::{de::DeserializeOwned, Serialize};

/// The largest encoded value accepted (a Raft message, a log entry, a snapshot header).
pub const MAX_DECODE_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("decode: {0} trailing bytes")]
    Trailing(usize),
    #[error("decode: {len} bytes exceed the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, config())?)
}

/// The limit for the largest inputs: 16 × [`MAX_DECODE_BYTES`], or what the address space
/// allows.
const LARGEST_LIMIT: usize = if usize::BITS > 32 {
    (4u64 << 30) as usize
} else {
    usize::MAX
};

/// Decodes one value that must span all of `bytes`, with allocations bounded by a limit
/// proportional to `bytes.len()` (see the module docs).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let len = bytes.len();
    let (value, read) = match len {
        0..=0xFFFF => decode_within::<T, { 1 << 20 }>(bytes)?,
        0x1_0000..=0xF_FFFF => decode_within::<T, { 16 << 20 }>(bytes)?,
        0x10_0000..=0xFF_FFFF => decode_within::<T, { 256 << 20 }>(bytes)?,
        _ if len <= MAX_DECODE_BYTES => decode_within::<T, { LARGEST_LIMIT }>(bytes)?,
        _ => {
            return Err(CodecError::TooLarge {
                len,
                limit: MAX_DECODE_BYTES,
            })
        }
    };
    if read != len {
        return Err(CodecError::Trailing(len - read));
    }
    Ok(value)
}

fn decode_within<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(T, usize), CodecError> {
    Ok(bincode::serde::decode_from_slice(
        bytes,
        config().with_limit::<LIMIT>(),
    )?)
}

impl From<CodecError> for std::io::Error {
    fn from(e: CodecError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

#[cfg(test)]
mod tests {
    //! Hostile and random inputs for every type decoded from a peer or from disk: each must
    //! come back as an error, never an abort or an unbounded allocation.

    use rand::{Rng, RngCore, SeedableRng};
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::network::SnapshotHeader;
    use crate::types::{log_id, BriskNode, Entry, LogId, Membership, StoredMembership, Vote};
    use openraft::entry::RaftEntry;
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
        VoteRequest, VoteResponse,
    };

    type Tc = crate::types::TypeConfig;

    /// Tries `bytes` as every decoded type; only the absence of a crash is checked here.
    fn decode_all(bytes: &[u8]) -> usize {
        fn one<T: DeserializeOwned>(bytes: &[u8]) -> usize {
            decode::<T>(bytes).is_err() as usize
        }
        one::<AppendEntriesRequest<Tc>>(bytes)
            + one::<AppendEntriesResponse<Tc>>(bytes)
            + one::<VoteRequest<Tc>>(bytes)
            + one::<VoteResponse<Tc>>(bytes)
            + one::<TransferLeaderRequest<Tc>>(bytes)
            + one::<SnapshotResponse<Tc>>(bytes)
            + one::<SnapshotHeader>(bytes)
            + one::<Entry>(bytes)
            + one::<Vote>(bytes)
            + one::<LogId>(bytes)
            + one::<StoredMembership>(bytes)
            + one::<BriskNode>(bytes)
            + one::<String>(bytes)
            + one::<Vec<u8>>(bytes)
            + one::<Vec<String>>(bytes)
    }

    /// A varint (bincode standard) announcing `n`: 0xFD + u64 little-endian.
    fn huge_len(n: u64) -> Vec<u8> {
        let mut v = vec![0xFD];
        v.extend_from_slice(&n.to_le_bytes());
        v
    }

    #[test]
    fn huge_length_prefixes_are_errors_not_aborts() {
        for n in [u64::MAX, 1 << 62, 1 << 40, 1 << 33, (1 << 32) - 1, 1 << 28] {
            let prefix = huge_len(n);
            // The prefix alone, after a few plausible leading fields, and repeated.
            let mut inputs = vec![prefix.clone()];
            for lead in 0..8u8 {
                let mut v = vec![lead; lead as usize];
                v.extend_from_slice(&prefix);
                v.extend_from_slice(b"abc");
                inputs.push(v);
            }
            inputs.push(prefix.repeat(4));
            for input in inputs {
                assert_eq!(decode_all(&input), 15, "decoded {input:?}");
                assert!(matches!(
                    decode::<String>(&input),
                    Err(CodecError::Decode(_)) | Err(CodecError::Trailing(_))
                ));
            }
        }
    }

    #[test]
    fn a_string_claiming_more_than_its_input_hits_the_limit() {
        // 2 MiB announced in a 9-byte frame: above the limit for a frame this small.
        let input = huge_len(2 << 20);
        match decode::<String>(&input) {
            Err(CodecError::Decode(bincode::error::DecodeError::LimitExceeded)) => {}
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
    }

    openraft::declare_raft_types!(
        /// The type configuration of versions whose members had one address.
        OneAddressTc:
            D = brisk_kv::Request,
            R = brisk_kv::Response,
            NodeId = u64,
            Node = openraft::impls::BasicNode,
    );

    /// Membership as older versions persisted it (one address per member, openraft's
    /// `BasicNode`) decodes with no peer address; a member with both round-trips in the same
    /// shape, so log entries, meta keys and manifests written before and after read alike.
    #[test]
    fn membership_written_with_one_address_per_member_still_decodes() {
        let old_node = openraft::impls::BasicNode {
            addr: "127.0.0.1:7001".into(),
        };
        let old = openraft::Membership::<u64, openraft::impls::BasicNode>::new(
            vec![std::collections::BTreeSet::from([1, 2])],
            std::collections::BTreeMap::from([(1, old_node.clone()), (2, old_node)]),
        )
        .unwrap();
        let old_entry = openraft::type_config::alias::EntryOf::<OneAddressTc>::new_membership(
            log_id(2, 1, 5),
            old.clone(),
        );
        let entry: Entry = decode(&encode(&old_entry).unwrap()).unwrap();
        let openraft::EntryPayload::Membership(m) = entry.payload else {
            panic!("not a membership entry");
        };
        let n = m.get_node(&2).unwrap();
        assert_eq!(n.addr, "127.0.0.1:7001");
        assert_eq!(n.peer_addr, None);
        let stored = openraft::type_config::alias::StoredMembershipOf::<OneAddressTc>::new(
            Some(log_id(2, 1, 5)),
            old,
        );
        let back: StoredMembership = decode(&encode(&stored).unwrap()).unwrap();
        assert_eq!(back.membership().get_node(&1).unwrap().peer_addr, None);

        let new = BriskNode::new("127.0.0.1:7001", "127.0.0.1:7101");
        let as_old: openraft::impls::BasicNode = decode(&encode(&new).unwrap()).unwrap();
        assert_eq!(as_old.addr, "127.0.0.1:7001 127.0.0.1:7101");
        assert_eq!(decode::<BriskNode>(&encode(&new).unwrap()).unwrap(), new);
        assert_eq!(
            decode::<BriskNode>(&encode(&BriskNode::default()).unwrap()).unwrap(),
            BriskNode::default(),
            "openraft's default node (no address) round-trips"
        );
        for bad in ["a b c", "a "] {
            let bytes = encode(&openraft::impls::BasicNode { addr: bad.into() }).unwrap();
            assert!(decode::<BriskNode>(&bytes).is_err(), "{bad:?} decoded");
        }
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let input = vec![0u8; MAX_DECODE_BYTES + 1];
        assert!(matches!(
            decode::<Vec<u8>>(&input),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_frames_are_errors() {
        let node = BriskNode::new("127.0.0.1:7001", "127.0.0.1:7101");
        let membership = Membership::new(
            vec![std::collections::BTreeSet::from([1, 2, 3])],
            std::collections::BTreeMap::from([(1, node.clone()), (2, node.clone()), (3, node)]),
        )
        .unwrap();
        let entries = vec![
            Entry::new_blank(log_id(3, 1, 7)),
            Entry::new_membership(log_id(3, 1, 8), membership.clone()),
        ];
        let req = AppendEntriesRequest::<Tc> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(3, 1, 6)),
            entries,
            leader_commit: Some(log_id(3, 1, 6)),
        };
        let full = encode(&req).unwrap();
        let back: AppendEntriesRequest<Tc> = decode(&full).unwrap();
        assert_eq!(back.entries.len(), 2);
        for cut in 0..full.len() {
            assert!(
                decode::<AppendEntriesRequest<Tc>>(&full[..cut]).is_err(),
                "a frame cut at {cut} of {} decoded",
                full.len()
            );
        }
        let stored = StoredMembership::new(Some(log_id(3, 1, 8)), membership);
        let full = encode(&stored).unwrap();
        for cut in 0..full.len() {
            assert!(decode::<StoredMembership>(&full[..cut]).is_err());
        }
    }

    #[test]
    fn legitimate_large_values_still_decode() {
        // A value near the entry size cap, and many small entries (in-memory size well
        // above wire size).
        let big = vec![7u8; 16 << 20];
        assert_eq!(decode::<Vec<u8>>(&encode(&big).unwrap()).unwrap(), big);
        let many: Vec<Entry> = (1..=50_000)
            .map(|i| Entry::new_blank(log_id(1, 1, i)))
            .collect();
        let back: Vec<Entry> = decode(&encode(&many).unwrap()).unwrap();
        assert_eq!(back.len(), many.len());
    }

    #[test]
    fn random_and_mutated_frames_never_crash() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x0062_7269_736b);
        let vote = VoteRequest::<Tc>::new(Vote::new(4, 2), Some(log_id(3, 1, 9)));
        let seeds = [encode(&vote).unwrap(), huge_len(1 << 50)];
        for round in 0..20_000 {
            let mut input = if round % 2 == 0 {
                let mut v = vec![0u8; rng.random_range(0..64)];
                rng.fill_bytes(&mut v);
                v
            } else {
                seeds[round % seeds.len()].clone()
            };
            // Flip, insert or truncate a few bytes.
            for _ in 0..rng.random_range(1..4) {
                if input.is_empty() {
                    input.push(rng.random());
                    continue;
                }
                let at = rng.random_range(0..input.len());
                match rng.random_range(0..3) {
                    0 => input[at] = rng.random(),
                    1 => input.insert(at, 0xFD),
                    _ => input.truncate(at),
                }
            }
            decode_all(&input);
        }
    }
}
