use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

// Byte fields are (de)serialized as byte strings, not as sequences of u8: bincode writes the
// same length-prefixed bytes either way (persisted entries decode unchanged), but a sequence
// goes through serde one byte at a time, which cost a third of a node's CPU on large values.

/// One write inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mutation {
    Put {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    Delete {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
}

impl Mutation {
    pub fn key(&self) -> &[u8] {
        match self {
            Mutation::Put { key, .. } | Mutation::Delete { key } => key,
        }
    }
}

/// A state-machine command, the payload of a normal Raft entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Put {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    Delete {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Tombstones every key live at the commit timestamp that starts with `prefix`.
    DeletePrefix {
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
    },
    /// An OCC transaction: applied only if no key of the write set (and of `read_set`) has a
    /// commit newer than `start_ts`.
    Txn {
        start_ts: Timestamp,
        mutations: Vec<Mutation>,
        read_set: Vec<Vec<u8>>,
    },
    /// Raises the durable HLC physical ceiling (milliseconds); see [`crate::hlc`].
    LeaseRenewal { ceiling_ms: u64 },
}

/// A proposal: the command plus the timestamp the leader's HLC issued for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Proposed commit timestamp (0 for lease renewals). Apply may raise it to keep commit
    /// timestamps increasing in log order.
    pub ts: Timestamp,
    pub command: Command,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.command {
            Command::Put { key, value } => {
                write!(f, "put(key_len={}, value_len={})", key.len(), value.len())
            }
            Command::Delete { key } => write!(f, "delete(key_len={})", key.len()),
            Command::DeletePrefix { prefix } => {
                write!(f, "delete_prefix(prefix_len={})", prefix.len())
            }
            Command::Txn {
                start_ts,
                mutations,
                read_set,
            } => write!(
                f,
                "txn(start_ts={start_ts}, writes={}, reads={})",
                mutations.len(),
                read_set.len()
            ),
            Command::LeaseRenewal { ceiling_ms } => {
                write!(f, "lease_renewal(ceiling_ms={ceiling_ms})")
            }
        }
    }
}

/// The result of applying one entry. A conflict is a normal result, never an apply error (I6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The write was applied at `commit_ts`; `deleted` counts keys tombstoned by a prefix delete.
    Written {
        commit_ts: Timestamp,
        deleted: u64,
    },
    /// The transaction aborted: `key` has a commit at `conflicting_commit_ts > start_ts`.
    Conflict {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        conflicting_commit_ts: Timestamp,
    },
    LeaseRenewed {
        ceiling_ms: u64,
    },
    /// The transaction aborted: its `start_ts` is above every commit (not from `Begin`).
    InvalidStartTs {
        start_ts: Timestamp,
        last_commit_ts: Timestamp,
    },
    /// Blank and membership entries.
    Applied,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding before byte fields were marked as byte strings.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum SequenceMutation {
        Put { key: Vec<u8>, value: Vec<u8> },
        Delete { key: Vec<u8> },
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum SequenceCommand {
        Put {
            key: Vec<u8>,
            value: Vec<u8>,
        },
        Delete {
            key: Vec<u8>,
        },
        DeletePrefix {
            prefix: Vec<u8>,
        },
        Txn {
            start_ts: u64,
            mutations: Vec<SequenceMutation>,
            read_set: Vec<Vec<u8>>,
        },
        LeaseRenewal {
            ceiling_ms: u64,
        },
    }

    fn bytes<T: Serialize>(v: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap()
    }

    #[test]
    fn byte_fields_encode_exactly_as_before() {
        let value: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let pairs = [
            (
                Command::Put {
                    key: b"k".to_vec(),
                    value: value.clone(),
                },
                SequenceCommand::Put {
                    key: b"k".to_vec(),
                    value: value.clone(),
                },
            ),
            (
                Command::Delete { key: vec![0, 255] },
                SequenceCommand::Delete { key: vec![0, 255] },
            ),
            (
                Command::DeletePrefix {
                    prefix: b"p/".to_vec(),
                },
                SequenceCommand::DeletePrefix {
                    prefix: b"p/".to_vec(),
                },
            ),
            (
                Command::Txn {
                    start_ts: Timestamp(7),
                    mutations: vec![
                        Mutation::Put {
                            key: b"a".to_vec(),
                            value: value.clone(),
                        },
                        Mutation::Delete { key: b"b".to_vec() },
                    ],
                    read_set: vec![b"c".to_vec()],
                },
                SequenceCommand::Txn {
                    start_ts: 7,
                    mutations: vec![
                        SequenceMutation::Put {
                            key: b"a".to_vec(),
                            value,
                        },
                        SequenceMutation::Delete { key: b"b".to_vec() },
                    ],
                    read_set: vec![b"c".to_vec()],
                },
            ),
        ];
        for (now, before) in pairs {
            let encoded = bytes(&before);
            assert_eq!(bytes(&now), encoded, "{now:?}");
            let (decoded, _): (Command, usize) =
                bincode::serde::decode_from_slice(&encoded, bincode::config::standard()).unwrap();
            assert_eq!(decoded, now);
        }
    }
}
