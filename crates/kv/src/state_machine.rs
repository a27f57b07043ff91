use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use brisk_storage::{
    AppliedState, Durability, MetaSnapshot, StorageError, Store, Version, VersionedPair,
};

use crate::command::{Command, Mutation, Request, Response};
use crate::hlc::{Hlc, Timestamp};

/// The MVCC/OCC state machine over a [`Store`].
///
/// The store sits behind a lock only so that a snapshot install can swap it for a restored
/// one; every apply and read works on one `Arc<Store>` at a time.
pub struct KvStateMachine {
    /// `None` only while a snapshot install swaps the store.
    store: RwLock<Option<Arc<Store>>>,
    hlc: Arc<Hlc>,
    last_commit_ts: AtomicU64,
}

impl KvStateMachine {
    /// Wraps an opened store, loading header state (HLC ceiling, last commit ts) from its
    /// meta keys (I4: on the skip path header state comes from the store, not a snapshot).
    pub fn new(store: Store, hlc: Arc<Hlc>) -> Result<Self, StorageError> {
        let sm = KvStateMachine {
            store: RwLock::new(Some(Arc::new(store))),
            hlc,
            last_commit_ts: AtomicU64::new(0),
        };
        sm.load_header()?;
        Ok(sm)
    }

    fn load_header(&self) -> Result<MetaSnapshot, StorageError> {
        let meta = self.store()?.meta()?;
        self.hlc.observe_ceiling(meta.hlc_ceiling_ms);
        self.hlc.observe(meta.last_commit_ts);
        self.last_commit_ts
            .store(meta.last_commit_ts.get(), Ordering::SeqCst);
        Ok(meta)
    }

    pub fn hlc(&self) -> &Arc<Hlc> {
        &self.hlc
    }

    /// The current store; [`StorageError::Closed`] while a snapshot install swaps it.
    pub fn store(&self) -> Result<Arc<Store>, StorageError> {
        self.store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(StorageError::Closed)
    }

    /// Closes the current store (waiting for in-flight reads to drop their handles), runs
    /// `reopen` (which may replace the directory on disk) and installs the store it returns,
    /// reloading header state. If `reopen` fails the state machine stays closed.
    pub fn swap_store<E: From<StorageError>>(
        &self,
        reopen: impl FnOnce() -> Result<Store, E>,
    ) -> Result<(), E> {
        // Take the store out, then wait without holding the lock: new reads fail fast with
        // `Closed` (retryable) instead of blocking behind the swap.
        let old = self.store.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(old) = old {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if Arc::strong_count(&old) > 1 {
                *self.store.write().unwrap_or_else(|e| e.into_inner()) = Some(old);
                return Err(StorageError::Busy.into());
            }
            drop(old);
        }
        let new = reopen()?;
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(new));
        self.load_header()?;
        Ok(())
    }

    pub fn last_commit_ts(&self) -> Timestamp {
        Timestamp(self.last_commit_ts.load(Ordering::SeqCst))
    }

    /// Applies one committed entry: `request` is `None` for blank and membership entries.
    /// Effects and `state` land in one atomic batch (I1), as durably as `durability` says (I7).
    ///
    /// Deterministic: every replica computes the same commit timestamp and the same OCC
    /// outcome from the same log prefix, so re-applying after a lost tail converges (I6).
    pub fn apply(
        &self,
        state: AppliedState,
        request: Option<&Request>,
        durability: Durability,
    ) -> Result<Response, StorageError> {
        let store = self.store()?;
        let mut batch = store.begin_apply(state);
        let Some(request) = request else {
            batch.commit(durability)?;
            return Ok(Response::Applied);
        };
        // Commit timestamps increase in log order, whatever order the leader issued them in.
        let last = self.last_commit_ts();
        let next_ts = |floor: Timestamp| {
            request
                .ts
                .max(Timestamp(last.get().saturating_add(1)))
                .max(floor)
        };
        let response = match &request.command {
            Command::Put { key, value } => {
                let ts = next_ts(Timestamp::ZERO);
                batch.put(key, ts, value);
                batch.set_last_commit_ts(ts);
                Response::Written {
                    commit_ts: ts,
                    deleted: 0,
                }
            }
            Command::Delete { key } => {
                let ts = next_ts(Timestamp::ZERO);
                batch.delete(key, ts);
                batch.set_last_commit_ts(ts);
                Response::Written {
                    commit_ts: ts,
                    deleted: 0,
                }
            }
            Command::DeletePrefix { prefix } => {
                let ts = next_ts(Timestamp::ZERO);
                let deleted = delete_prefix(&store, &mut batch, prefix, ts)?;
                batch.set_last_commit_ts(ts);
                Response::Written {
                    commit_ts: ts,
                    deleted,
                }
            }
            Command::Txn {
                start_ts,
                mutations,
                read_set,
            } if *start_ts > last => {
                // A start_ts above every commit was not handed out by Begin (Begin returns the
                // last applied commit timestamp). Committing it would drag every later
                // timestamp into the future, so it aborts here, on every replica alike.
                Response::InvalidStartTs {
                    start_ts: *start_ts,
                    last_commit_ts: last,
                }
            }
            Command::Txn {
                start_ts,
                mutations,
                read_set,
            } => match find_conflict(&store, *start_ts, mutations, read_set)? {
                Some((key, conflicting_commit_ts)) => Response::Conflict {
                    key,
                    conflicting_commit_ts,
                },
                None => {
                    let ts = next_ts(Timestamp(start_ts.get().saturating_add(1)));
                    for m in mutations {
                        match m {
                            Mutation::Put { key, value } => batch.put(key, ts, value),
                            Mutation::Delete { key } => batch.delete(key, ts),
                        }
                    }
                    batch.set_last_commit_ts(ts);
                    Response::Written {
                        commit_ts: ts,
                        deleted: 0,
                    }
                }
            },
            Command::LeaseRenewal { ceiling_ms } => {
                let ceiling = (*ceiling_ms).max(self.hlc.ceiling_ms());
                batch.set_hlc_ceiling_ms(ceiling);
                Response::LeaseRenewed {
                    ceiling_ms: ceiling,
                }
            }
        };
        batch.commit(durability)?;
        match &response {
            Response::Written { commit_ts, .. } => {
                self.last_commit_ts.store(commit_ts.get(), Ordering::SeqCst);
                self.hlc.observe(*commit_ts);
            }
            Response::LeaseRenewed { ceiling_ms } => self.hlc.observe_ceiling(*ceiling_ms),
            _ => {}
        }
        Ok(response)
    }

    pub fn get(&self, key: &[u8], ts: Timestamp) -> Result<Option<Version>, StorageError> {
        self.store()?.get_at(key, ts)
    }

    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        prefix: Option<&[u8]>,
        limit: usize,
        byte_budget: usize,
        ts: Timestamp,
    ) -> Result<Vec<VersionedPair>, StorageError> {
        self.store()?
            .scan_at(start, end, prefix, limit, byte_budget, ts)
    }
}

/// Keys tombstoned per chunk of a DeletePrefix.
pub const DELETE_PREFIX_CHUNK_KEYS: usize = 1024;

/// Tombstones every key live at `ts` under `prefix`, in memory bounded by one chunk of keys
/// (values are never read into memory), whatever the size of the keyspace.
///
/// Every full chunk is spilled to the store before the next is read ([`ApplyBatch::spill`]);
/// the last one commits with the applied index. The effect is idempotent under replay: the
/// entry's commit timestamp is derived from the log prefix alone (the last commit is only
/// moved by the final batch), so a replay after a crash recomputes the same `ts`, finds the
/// keys spilled before the crash already deleted at `ts`, and tombstones the rest. Spilled
/// tombstones sit above the last commit timestamp, where no read looks.
fn delete_prefix(
    store: &Store,
    batch: &mut brisk_storage::ApplyBatch<'_>,
    prefix: &[u8],
    ts: Timestamp,
) -> Result<u64, StorageError> {
    let mut deleted = 0u64;
    let mut from = prefix.to_vec();
    loop {
        let keys = store.live_keys_at(&from, prefix, DELETE_PREFIX_CHUNK_KEYS, ts)?;
        for key in &keys {
            batch.delete(key, ts);
        }
        deleted += keys.len() as u64;
        match keys.last() {
            Some(last) if keys.len() == DELETE_PREFIX_CHUNK_KEYS => {
                batch.spill()?;
                from.clone_from(last);
            }
            _ => return Ok(deleted),
        }
    }
}

/// OCC validation: the first key written (or read, when a read set is given) with a commit
/// newer than `start_ts`.
fn find_conflict(
    store: &Store,
    start_ts: Timestamp,
    mutations: &[Mutation],
    read_set: &[Vec<u8>],
) -> Result<Option<(Vec<u8>, Timestamp)>, StorageError> {
    let keys = mutations
        .iter()
        .map(|m| m.key())
        .chain(read_set.iter().map(|k| k.as_slice()));
    store.first_committed_after(keys, start_ts)
}

#[cfg(test)]
mod tests {
    use brisk_storage::{AppliedLogId, LogIndex};

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        sm: KvStateMachine,
        index: LogIndex,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("sm")).unwrap();
            let sm = KvStateMachine::new(store, Arc::new(Hlc::new())).unwrap();
            Fixture {
                _dir: dir,
                sm,
                index: LogIndex::ZERO,
            }
        }

        fn apply(&mut self, ts: u64, command: Option<Command>) -> Response {
            self.index = self.index.next();
            let state = AppliedState {
                log_id: AppliedLogId {
                    term: 1,
                    leader_node: 1,
                    index: self.index,
                },
                membership: b"m".to_vec(),
            };
            let req = command.map(|command| Request {
                ts: Timestamp(ts),
                command,
            });
            self.sm
                .apply(state, req.as_ref(), Durability::Sync)
                .unwrap()
        }

        fn put(&mut self, ts: u64, k: &str, v: &str) -> u64 {
            match self.apply(
                ts,
                Some(Command::Put {
                    key: k.into(),
                    value: v.into(),
                }),
            ) {
                Response::Written { commit_ts, .. } => commit_ts.get(),
                r => panic!("{r:?}"),
            }
        }

        fn get(&self, k: &str, ts: u64) -> Option<String> {
            self.sm
                .get(k.as_bytes(), Timestamp(ts))
                .unwrap()
                .and_then(|v| v.value)
                .map(|v| String::from_utf8(v).unwrap())
        }

        fn applied_index(&self) -> LogIndex {
            self.sm
                .store()
                .unwrap()
                .meta()
                .unwrap()
                .applied
                .unwrap()
                .index
        }
    }

    fn raw_contents(f: &Fixture) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        f.sm.store()
            .unwrap()
            .for_each_raw(|cf, k, v| out.push((cf.to_string(), k.to_vec(), v.to_vec())))
            .unwrap();
        out
    }

    #[test]
    fn delete_prefix_interrupted_after_spilling_converges_on_replay() {
        let n = DELETE_PREFIX_CHUNK_KEYS * 2 + 10;
        let (mut whole, mut interrupted) = (Fixture::new(), Fixture::new());
        for f in [&mut whole, &mut interrupted] {
            for i in 0..n {
                f.put(100 + i as u64, &format!("p/{i:05}"), "v");
            }
            f.put(100_000, "q", "kept");
        }
        let entry_ts = 1_000_000;
        // The interrupted replica spills its chunks, then crashes before the final batch.
        {
            let f = &interrupted;
            let store = f.sm.store().unwrap();
            let mut batch = store.begin_apply(AppliedState {
                log_id: AppliedLogId {
                    term: 1,
                    leader_node: 1,
                    index: f.index.next(),
                },
                membership: b"m".to_vec(),
            });
            let deleted = delete_prefix(&store, &mut batch, b"p/", Timestamp(entry_ts)).unwrap();
            assert_eq!(deleted, n as u64);
            drop(batch);
        }
        assert_eq!(interrupted.applied_index(), whole.applied_index());
        // What was spilled sits above the last commit: reads there still see every key.
        let last = interrupted.sm.last_commit_ts().get();
        assert!(last < entry_ts);
        assert_eq!(interrupted.get("p/00000", last).as_deref(), Some("v"));
        assert_eq!(
            interrupted.get("p/00000", entry_ts),
            None,
            "nothing was spilled"
        );
        // Replaying the entry finishes the job; both replicas hold the same bytes.
        for f in [&mut whole, &mut interrupted] {
            match f.apply(
                entry_ts,
                Some(Command::DeletePrefix {
                    prefix: b"p/".to_vec(),
                }),
            ) {
                Response::Written { commit_ts, .. } => assert_eq!(commit_ts, Timestamp(entry_ts)),
                r => panic!("{r:?}"),
            }
            assert_eq!(f.get(&format!("p/{:05}", n - 1), u64::MAX), None);
            assert_eq!(f.get("q", u64::MAX).as_deref(), Some("kept"));
        }
        assert!(raw_contents(&whole) == raw_contents(&interrupted));
    }

    #[test]
    fn read_at_timestamp_sees_the_right_version() {
        let mut f = Fixture::new();
        let t1 = f.put(100, "k", "v1");
        let t2 = f.put(200, "k", "v2");
        assert_eq!((t1, t2), (100, 200));
        assert_eq!(f.get("k", 99), None);
        assert_eq!(f.get("k", 100).as_deref(), Some("v1"));
        assert_eq!(f.get("k", 199).as_deref(), Some("v1"));
        assert_eq!(f.get("k", u64::MAX).as_deref(), Some("v2"));
    }

    #[test]
    fn commit_ts_increases_in_log_order() {
        let mut f = Fixture::new();
        let t1 = f.put(500, "a", "1");
        // A proposal issued earlier but applied later still commits after the previous one.
        let t2 = f.put(300, "a", "2");
        assert!(t2 > t1);
        assert_eq!(f.get("a", u64::MAX).as_deref(), Some("2"));
    }

    #[test]
    fn tombstones_hide_older_versions_only_from_their_ts() {
        let mut f = Fixture::new();
        f.put(100, "k", "v");
        let r = f.apply(200, Some(Command::Delete { key: "k".into() }));
        assert_eq!(
            r,
            Response::Written {
                commit_ts: Timestamp(200),
                deleted: 0
            }
        );
        assert_eq!(f.get("k", 150).as_deref(), Some("v"));
        assert_eq!(f.get("k", 200), None);
        assert_eq!(
            f.sm.get(b"k", Timestamp(250)).unwrap().unwrap().value,
            None,
            "tombstone version visible"
        );
        let scan =
            f.sm.scan(b"", None, None, 100, usize::MAX, Timestamp::MAX)
                .unwrap();
        assert!(scan.is_empty(), "{scan:?}");
    }

    #[test]
    fn delete_prefix_removes_only_matching_keys() {
        let mut f = Fixture::new();
        for k in ["p/1", "p/2", "p/3", "q/1", "p"] {
            f.put(0, k, "x");
        }
        f.apply(0, Some(Command::Delete { key: "p/3".into() }));
        let r = f.apply(
            0,
            Some(Command::DeletePrefix {
                prefix: "p/".into(),
            }),
        );
        assert!(matches!(r, Response::Written { deleted: 2, .. }), "{r:?}");
        let keys: Vec<_> =
            f.sm.scan(b"", None, None, 100, usize::MAX, Timestamp::MAX)
                .unwrap()
                .into_iter()
                .map(|p| String::from_utf8(p.key).unwrap())
                .collect();
        assert_eq!(keys, vec!["p", "q/1"]);
    }

    #[test]
    fn scan_respects_range_limit_and_ts() {
        let mut f = Fixture::new();
        f.put(10, "a", "1");
        f.put(20, "b", "1");
        f.put(30, "c", "1");
        f.put(40, "b", "2");
        let got =
            f.sm.scan(b"a", Some(b"c"), None, 10, usize::MAX, Timestamp(35))
                .unwrap();
        let got: Vec<_> = got
            .iter()
            .map(|p| (p.key.clone(), p.value.clone(), p.commit_ts.get()))
            .collect();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), b"1".to_vec(), 10),
                (b"b".to_vec(), b"1".to_vec(), 20)
            ]
        );
        let got =
            f.sm.scan(b"", None, None, 2, usize::MAX, Timestamp::MAX)
                .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].value, b"2");
    }

    #[test]
    fn scan_stops_at_the_byte_budget() {
        let mut f = Fixture::new();
        for k in ["a", "b", "c", "d"] {
            f.put(0, k, "0123456789");
        }
        // Each pair is 11 bytes: the budget of 20 is reached by the second pair.
        let got = f.sm.scan(b"", None, None, 100, 20, Timestamp::MAX).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].key, b"b");
        // At least one pair, even when it alone exceeds the budget.
        assert_eq!(
            f.sm.scan(b"", None, None, 100, 1, Timestamp::MAX)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn occ_conflicts() {
        let mut f = Fixture::new();
        f.put(100, "x", "0");
        f.put(100, "y", "0");
        let txn = |start_ts: u64, write: &str, read: Vec<&str>| Command::Txn {
            start_ts: Timestamp(start_ts),
            mutations: vec![Mutation::Put {
                key: write.into(),
                value: b"t".to_vec(),
            }],
            read_set: read.into_iter().map(|k| k.as_bytes().to_vec()).collect(),
        };
        // Write-write conflict: x changed after start_ts 100.
        let t = f.put(0, "x", "1");
        let r = f.apply(0, Some(txn(100, "x", vec![])));
        assert_eq!(
            r,
            Response::Conflict {
                key: b"x".to_vec(),
                conflicting_commit_ts: Timestamp(t)
            }
        );
        assert_eq!(
            f.get("x", u64::MAX).as_deref(),
            Some("1"),
            "aborted txn wrote nothing"
        );
        // Read-write conflict only when the read set is given.
        let r = f.apply(0, Some(txn(t, "y", vec!["x"])));
        assert!(matches!(r, Response::Written { .. }), "{r:?}");
        let t2 = f.put(0, "x", "2");
        let r = f.apply(0, Some(txn(t2 - 1, "z", vec!["x"])));
        assert_eq!(
            r,
            Response::Conflict {
                key: b"x".to_vec(),
                conflicting_commit_ts: Timestamp(t2)
            }
        );
        // No conflict when start_ts covers every commit; commit_ts > start_ts.
        let r = f.apply(0, Some(txn(t2, "x", vec!["y"])));
        let t3 = match r {
            Response::Written { commit_ts, .. } => commit_ts.get(),
            r => panic!("{r:?}"),
        };
        assert!(t3 > t2);
        // A deleted key conflicts too (a tombstone is a commit).
        let td = match f.apply(0, Some(Command::Delete { key: "y".into() })) {
            Response::Written { commit_ts, .. } => commit_ts.get(),
            r => panic!("{r:?}"),
        };
        let r = f.apply(0, Some(txn(td - 1, "y", vec![])));
        assert!(matches!(r, Response::Conflict { .. }), "{r:?}");
    }

    #[test]
    fn a_start_ts_above_every_commit_aborts_without_writing() {
        let mut f = Fixture::new();
        let t = f.put(100, "k", "v");
        let r = f.apply(
            0,
            Some(Command::Txn {
                start_ts: Timestamp(u64::MAX - 1),
                mutations: vec![Mutation::Put {
                    key: "k".into(),
                    value: "x".into(),
                }],
                read_set: vec![],
            }),
        );
        assert_eq!(
            r,
            Response::InvalidStartTs {
                start_ts: Timestamp(u64::MAX - 1),
                last_commit_ts: Timestamp(t)
            }
        );
        assert_eq!(f.get("k", u64::MAX).as_deref(), Some("v"));
        assert_eq!(
            f.sm.last_commit_ts().get(),
            t,
            "commit timestamps were not dragged forward"
        );
        assert_eq!(
            f.applied_index(),
            f.index,
            "the aborted entry still moved the applied index"
        );
        // Later commits keep normal timestamps.
        assert_eq!(f.put(200, "k", "w"), 200);
    }

    #[test]
    fn every_entry_type_moves_the_applied_index_in_its_batch() {
        // I1: each entry type (including blank, lease renewal and an aborted txn) leaves
        // applied index == its own index.
        let mut f = Fixture::new();
        let cmds: Vec<Option<Command>> = vec![
            None,
            Some(Command::Put {
                key: "a".into(),
                value: "1".into(),
            }),
            Some(Command::Delete { key: "a".into() }),
            Some(Command::DeletePrefix { prefix: "a".into() }),
            Some(Command::Txn {
                start_ts: Timestamp::ZERO,
                mutations: vec![Mutation::Put {
                    key: "a".into(),
                    value: "x".into(),
                }],
                read_set: vec![],
            }),
            Some(Command::LeaseRenewal {
                ceiling_ms: 123_456,
            }),
        ];
        for c in cmds {
            f.apply(1, c);
            assert_eq!(f.applied_index(), f.index);
        }
        let meta = f.sm.store().unwrap().meta().unwrap();
        assert_eq!(
            meta.hlc_ceiling_ms, 123_456,
            "lease renewal is durable, not memory-only"
        );
        assert_eq!(meta.membership.as_deref(), Some(&b"m"[..]));
    }

    #[test]
    fn header_state_reloads_from_meta_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sm");
        {
            let sm =
                KvStateMachine::new(Store::open(&path).unwrap(), Arc::new(Hlc::new())).unwrap();
            let st = |index| AppliedState {
                log_id: AppliedLogId {
                    term: 1,
                    leader_node: 1,
                    index,
                },
                membership: vec![],
            };
            let req = Request {
                ts: Timestamp::ZERO,
                command: Command::LeaseRenewal { ceiling_ms: 9_000 },
            };
            sm.apply(st(LogIndex(1)), Some(&req), Durability::Sync)
                .unwrap();
            let req = Request {
                ts: Timestamp(77),
                command: Command::Put {
                    key: "k".into(),
                    value: "v".into(),
                },
            };
            sm.apply(st(LogIndex(2)), Some(&req), Durability::Sync)
                .unwrap();
        }
        let hlc = Arc::new(Hlc::new());
        let sm = KvStateMachine::new(Store::open(&path).unwrap(), hlc.clone()).unwrap();
        assert_eq!(hlc.ceiling_ms(), 9_000);
        assert_eq!(sm.last_commit_ts(), Timestamp(77));
        assert!(hlc.last() >= Timestamp(77));
    }
}
