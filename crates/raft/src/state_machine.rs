//! openraft's `RaftStateMachine` over [`KvStateMachine`], with checkpoint snapshots.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use brisk_kv::{KvStateMachine, Request, Response};
use brisk_storage::{AppliedState, Durability, LogIndex, Store};
use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};

use crate::codec;
use crate::fault;
use crate::metrics::GroupMetrics;
use crate::snapshot::{SnapshotDir, SnapshotStore};
use crate::types::{
    from_applied, stored_membership, to_applied, LogId, SnapshotMeta, StoredMembership, TypeConfig,
};

pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotDir>;

/// When the state machine's WAL is fsynced (`--fsm-sync`; docs/design/cold-start.md I7).
/// Whatever the mode, an acknowledged write is durable in the Raft log first; the mode bounds
/// how much of the log a restart after a power loss replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplySync {
    /// Before an applied run is acknowledged: a restart replays only unapplied entries.
    EveryRun,
    /// In the background, at most this long after a run is applied: a restart after a power
    /// loss replays at most about this much of the log's tail.
    Every(Duration),
    /// Only where durable-before-forget (I2) needs it, at snapshots.
    Never,
}

/// State shared by the state machine, its snapshot builders and the API layer.
pub struct SmShared {
    pub kv: KvStateMachine,
    pub snapshots: SnapshotStore,
    /// Serializes apply batches against store swaps, so no apply writes into a store being
    /// replaced. Snapshot builds do not take it (I3 holds without it; see
    /// [`SnapshotStore::checkpoint`]).
    apply_lock: Mutex<()>,
    /// Serializes snapshot builds against each other and against installs, so a build never
    /// checkpoints a store being swapped out nor moves the pointer while an install does.
    build_lock: Mutex<()>,
    /// Names the build directories of this process apart.
    builds: std::sync::atomic::AtomicU64,
    /// Membership in force after the last applied entry (also stored in every batch, I1).
    /// With its encoding, written into every apply batch (encoded once per change).
    membership: Mutex<(StoredMembership, Vec<u8>)>,
    /// When applied runs are fsynced (I7).
    sync: ApplySync,
    /// Set when a background WAL fsync failed: the durability of what was applied is
    /// unknown, so applying stops (the node fails closed, as a failed fsync in a run does).
    wal_sync_failed: AtomicBool,
    /// The background fsync thread of [`ApplySync::Every`], and its stop request.
    syncer: Mutex<Option<std::thread::JoinHandle<()>>>,
    syncer_stop: Arc<AtomicBool>,
    /// The group's metric handles.
    pub metrics: GroupMetrics,
    /// The last applied index, published after each applied run (read barriers wait on it).
    applied_index: tokio::sync::watch::Sender<LogIndex>,
    /// Set once a file of the live store was found corrupt: no snapshot is built from it.
    live_store_damaged: std::sync::atomic::AtomicBool,
}

impl SmShared {
    pub fn new(
        kv: KvStateMachine,
        snapshots: SnapshotStore,
        sync: ApplySync,
    ) -> Result<Arc<Self>, io::Error> {
        let metrics = GroupMetrics::new(snapshots.layout().group);
        let shared = Arc::new(SmShared {
            kv,
            snapshots,
            apply_lock: Mutex::new(()),
            build_lock: Mutex::new(()),
            builds: Default::default(),
            membership: Mutex::new((StoredMembership::default(), Vec::new())),
            sync,
            wal_sync_failed: AtomicBool::new(false),
            syncer: Mutex::new(None),
            syncer_stop: Arc::new(AtomicBool::new(false)),
            metrics,
            applied_index: tokio::sync::watch::channel(LogIndex::ZERO).0,
            live_store_damaged: Default::default(),
        });
        shared.reload_membership()?;
        shared.publish_applied()?;
        if let ApplySync::Every(period) = sync {
            let weak = Arc::downgrade(&shared);
            let from = shared.applied_index();
            let stop = shared.syncer_stop.clone();
            let handle = std::thread::Builder::new()
                .name("sm-wal-sync".into())
                .spawn(move || run_wal_syncer(weak, stop, period, from))?;
            *shared.syncer.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        }
        Ok(shared)
    }

    fn reload_membership(&self) -> io::Result<()> {
        let meta = self.kv.store()?.meta()?;
        let m = stored_membership(meta.membership.as_deref())?;
        let encoded = codec::encode(&m)?;
        *self.membership.lock().unwrap_or_else(|e| e.into_inner()) = (m, encoded);
        Ok(())
    }

    pub fn applied(&self) -> io::Result<Option<LogId>> {
        let meta = self.kv.store()?.meta()?;
        Ok(meta.applied.as_ref().map(from_applied))
    }

    fn publish_applied(&self) -> io::Result<()> {
        let index = self
            .applied()?
            .map_or(LogIndex::ZERO, |l| LogIndex(l.index));
        self.applied_index.send_replace(index);
        Ok(())
    }

    /// The index the state machine has applied, as last published.
    pub fn applied_index(&self) -> LogIndex {
        *self.applied_index.borrow()
    }

    /// Waits until the state machine has applied `index` (or `timeout` passes: false).
    pub async fn wait_applied(&self, index: LogIndex, timeout: std::time::Duration) -> bool {
        let mut rx = self.applied_index.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|&a| a >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub fn membership(&self) -> StoredMembership {
        self.membership
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Applies a run of committed entries. Each entry gets its own atomic batch carrying its
    /// log id (I1); with [`ApplySync::EveryRun`] one WAL fsync covers the run before any client
    /// is acknowledged (I7).
    fn apply_run(
        &self,
        run: &[(LogId, Option<Request>, Option<StoredMembership>)],
    ) -> io::Result<Vec<Response>> {
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.wal_sync_failed.load(Ordering::SeqCst) {
            return Err(io::Error::other(
                "a state machine WAL fsync failed; not applying past it",
            ));
        }
        let mut out = Vec::with_capacity(run.len());
        for (log_id, request, new_membership) in run {
            let mut membership = self.membership.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = new_membership {
                *membership = (m.clone(), codec::encode(m)?);
            }
            let state = AppliedState {
                log_id: to_applied(log_id),
                membership: membership.1.clone(),
            };
            drop(membership);
            let started = std::time::Instant::now();
            let resp = self
                .kv
                .apply(state, request.as_ref(), Durability::Buffered)?;
            self.metrics
                .apply_seconds
                .record(started.elapsed().as_secs_f64());
            out.push(resp);
        }
        if self.sync == ApplySync::EveryRun && !run.is_empty() {
            self.kv.store()?.sync_wal()?;
        }
        self.metrics.applied_entries.increment(run.len() as u64);
        if let Some((last, _, _)) = run.last() {
            self.applied_index.send_replace(LogIndex(last.index));
        }
        Ok(out)
    }

    fn fail_wal_sync(&self, e: brisk_storage::StorageError) {
        self.wal_sync_failed.store(true, Ordering::SeqCst);
        self.metrics.fsm_wal_sync_failures.increment(1);
        tracing::error!(error = %e, "state machine WAL fsync failed; applying stops");
    }

    /// Stops the background fsync thread of [`ApplySync::Every`] and fsyncs what it had not
    /// yet covered, so a clean stop leaves nothing to replay. Blocks for one fsync.
    pub fn stop_background_sync(&self) {
        self.syncer_stop.store(true, Ordering::SeqCst);
        let handle = self.syncer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(handle) = handle else { return };
        handle.thread().unpark();
        if handle.join().is_err() {
            tracing::warn!("the state machine's fsync thread panicked");
        }
        if self.wal_sync_failed.load(Ordering::SeqCst) {
            return;
        }
        match self.kv.store() {
            Ok(store) => {
                if let Err(e) = store.sync_wal() {
                    self.fail_wal_sync(e);
                }
            }
            Err(brisk_storage::StorageError::Closed) => {}
            Err(e) => self.fail_wal_sync(e),
        }
    }

    /// Records that a file of the live store is corrupt: every later snapshot build fails
    /// (openraft then stops this node's Raft) rather than checksum the rotten bytes anew.
    pub fn mark_live_store_damaged(&self) {
        self.live_store_damaged
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Builds a snapshot of the current state (see [`SnapshotStore::finish_build`]).
    pub fn build_snapshot(&self) -> io::Result<SnapshotDir> {
        if self
            .live_store_damaged
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(io::Error::other(
                "the live store holds a corrupt file: no snapshot is built from it",
            ));
        }
        let _build = self.build_lock.lock().unwrap_or_else(|e| e.into_inner());
        let store = self.kv.store()?;
        if store.meta()?.applied.is_none() {
            return Err(io::Error::other(
                "nothing applied yet; no snapshot to build",
            ));
        }
        let n = self
            .builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let checkpoint = self
            .snapshots
            .checkpoint(&store, &n.to_string())
            .map_err(io::Error::other)?;
        drop(store);
        let started = std::time::Instant::now();
        let snap = match self
            .snapshots
            .finish_build(&checkpoint.dir, checkpoint.info)
        {
            Ok(snap) => snap,
            Err(e) => {
                // Each build has its own directory: a failed one would otherwise keep its
                // hard-linked files on disk until the next restart.
                if checkpoint.dir.exists() {
                    if let Err(rm) = std::fs::remove_dir_all(&checkpoint.dir) {
                        tracing::warn!(path = %checkpoint.dir.display(), error = %rm, "could not remove a failed snapshot build");
                    }
                }
                return Err(io::Error::other(e));
            }
        };
        tracing::info!(
            index = snap.manifest.index.get(),
            term = snap.manifest.term,
            files = snap.manifest.files.len(),
            bytes = snap.manifest.total_bytes(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        self.metrics.snapshots_built.increment(1);
        Ok(snap)
    }

    /// Installs a verified snapshot: swap the live store for a restore of it, then adopt it as
    /// the restart point.
    pub fn install(&self, incoming: &SnapshotDir) -> io::Result<()> {
        let _build = self.build_lock.lock().unwrap_or_else(|e| e.into_inner());
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.snapshots.layout().state_machine();
        // Restore first, adopt second: the restore checks the copy's applied id against the
        // manifest before anything changes (I5), so a snapshot that fails there never
        // becomes the restart point. A crash before the adoption leaves the store at or past
        // the old pointer (the gate skips) and the snapshot is received again.
        self.kv.swap_store(|| -> io::Result<Store> {
            self.snapshots
                .restore(incoming, true)
                .map_err(io::Error::other)?;
            Ok(Store::open_existing(&live)?)
        })?;
        let snap = self.snapshots.adopt(incoming).map_err(io::Error::other)?;
        self.reload_membership()?;
        self.publish_applied()?;
        // A store opened for a swap starts with compactions paused (fast open); this one is
        // not on the start-up path, so resume them at once.
        self.kv.store()?.resume_compactions()?;
        tracing::info!(
            index = snap.manifest.index.get(),
            term = snap.manifest.term,
            "snapshot installed"
        );
        self.metrics.snapshots_installed.increment(1);
        Ok(())
    }
}

fn to_snapshot(snap: SnapshotDir) -> Snapshot {
    let m = &snap.manifest;
    let meta = SnapshotMeta {
        last_log_id: Some(crate::types::log_id(m.term, m.leader_node, m.index.get())),
        last_membership: m.membership.clone(),
    };
    Snapshot {
        meta,
        snapshot: snap,
    }
}

/// The `RaftStateMachine` handed to openraft.
#[derive(Clone)]
pub struct StateMachineStore {
    pub shared: Arc<SmShared>,
}

pub struct SnapshotBuilder {
    shared: Arc<SmShared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotDir;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let shared = self.shared.clone();
        let snap = tokio::task::spawn_blocking(move || shared.build_snapshot())
            .await
            .map_err(io::Error::other)??;
        // Crash point pointer_before_purge: the pointer moved; openraft purges the log after we return.
        fault::crash_point(fault::POINTER_BEFORE_PURGE);
        Ok(to_snapshot(snap))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotDir;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.shared.applied()?, self.shared.membership()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut run = Vec::new();
        let mut responders = Vec::new();
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let (request, membership) = match entry.payload {
                EntryPayload::Blank => (None, None),
                EntryPayload::Normal(req) => (Some(req), None),
                EntryPayload::Membership(m) => {
                    (None, Some(StoredMembership::new(Some(entry.log_id), m)))
                }
            };
            run.push((entry.log_id, request, membership));
            responders.push(responder);
        }
        let shared = self.shared.clone();
        let responses = tokio::task::spawn_blocking(move || shared.apply_run(&run))
            .await
            .map_err(io::Error::other)??;
        // Crash point apply_before_ack: the batch is durable (sync mode), the client not yet
        // acknowledged.
        fault::crash_point(fault::APPLY_BEFORE_ACK);
        for (resp, responder) in responses.into_iter().zip(responders) {
            if let Some(r) = responder {
                r.send(resp);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta,
        snapshot: SnapshotDir,
    ) -> Result<(), io::Error> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.install(&snapshot))
            .await
            .map_err(io::Error::other)?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        // Called at every start: reads the pointer and the small manifest, no data file.
        Ok(self
            .shared
            .snapshots
            .current()
            .map_err(io::Error::other)?
            .map(to_snapshot))
    }
}

/// Fsyncs the state machine's WAL every `period` while runs are being applied (see
/// [`ApplySync::Every`]), until `stop` is set, the state machine is dropped or an fsync
/// fails. During the fsync it holds only the store, never the state machine: the last handle
/// of the state machine (and of RocksDB) is never dropped on this thread.
fn run_wal_syncer(
    shared: Weak<SmShared>,
    stop: Arc<AtomicBool>,
    period: Duration,
    mut synced: LogIndex,
) {
    loop {
        std::thread::park_timeout(period);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (applied, store) = {
            let Some(sm) = shared.upgrade() else { return };
            // Read before the fsync: everything applied up to it was written before it was
            // published, so the fsync covers it.
            let applied = sm.applied_index();
            if applied == synced {
                continue;
            }
            match sm.kv.store() {
                Ok(store) => (applied, store),
                // A snapshot install is swapping the store; the new one is fsynced by it.
                Err(brisk_storage::StorageError::Closed) => continue,
                Err(e) => {
                    sm.fail_wal_sync(e);
                    return;
                }
            }
        };
        match store.sync_wal() {
            Ok(()) => synced = applied,
            Err(e) => {
                if let Some(sm) = shared.upgrade() {
                    sm.fail_wal_sync(e);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use brisk_kv::{Command, Hlc, Mutation};
    use brisk_storage::Store;

    use super::*;
    use crate::layout::DataLayout;
    use crate::types::{log_id, Membership};
    use brisk_kv::Timestamp;

    fn shared(dir: &std::path::Path, sync: ApplySync) -> Arc<SmShared> {
        let layout = DataLayout::new(dir);
        let kv = KvStateMachine::new(
            Store::open(&layout.state_machine()).unwrap(),
            Arc::new(Hlc::new()),
        )
        .unwrap();
        SmShared::new(kv, SnapshotStore::new(layout, 2), sync).unwrap()
    }

    fn puts(from: u64, n: u64) -> Vec<(LogId, Option<Request>, Option<StoredMembership>)> {
        (from..from + n)
            .map(|i| {
                let req = Request {
                    ts: Timestamp(10 * i),
                    command: Command::Put {
                        key: format!("k{i}").into_bytes(),
                        value: b"v".to_vec(),
                    },
                };
                (log_id(1, 1, i), Some(req), None)
            })
            .collect()
    }

    /// I7: in sync mode a run of applies is acknowledged (its responses returned) only after
    /// one WAL fsync covering the whole run; removing that fsync fails this test. In nosync
    /// mode there is none (the Raft log is the durable copy).
    #[test]
    fn an_apply_run_is_acknowledged_only_after_one_wal_fsync_in_sync_mode() {
        let dir = tempfile::tempdir().unwrap();
        let sm = shared(dir.path(), ApplySync::EveryRun);
        let store = sm.kv.store().unwrap();
        let before = store.wal_syncs();
        let responses = sm.apply_run(&puts(1, 5)).unwrap();
        assert_eq!(responses.len(), 5);
        assert_eq!(store.wal_syncs(), before + 1, "one fsync for the run");

        let dir = tempfile::tempdir().unwrap();
        let sm = shared(dir.path(), ApplySync::Never);
        let store = sm.kv.store().unwrap();
        let before = store.wal_syncs();
        sm.apply_run(&puts(1, 5)).unwrap();
        assert_eq!(store.wal_syncs(), before, "nosync mode fsyncs nothing");
    }

    /// I7: in periodic mode a run is acknowledged without an fsync of its own, and one
    /// follows in the background; with nothing applied since, none does. Removing the
    /// background fsync fails this test.
    #[test]
    fn periodic_mode_fsyncs_applied_runs_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        // A period far longer than the run itself: the fsync cannot belong to the run.
        let sm = shared(dir.path(), ApplySync::Every(Duration::from_millis(300)));
        let store = sm.kv.store().unwrap();
        let before = store.wal_syncs();
        sm.apply_run(&puts(1, 5)).unwrap();
        assert_eq!(store.wal_syncs(), before, "the run itself fsynced");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.wal_syncs() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no background fsync after the run"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let after = store.wal_syncs();
        std::thread::sleep(Duration::from_millis(1_000));
        assert_eq!(store.wal_syncs(), after, "fsynced with nothing applied");
        // A stop fsyncs what was applied since, and the thread is gone.
        sm.apply_run(&puts(6, 5)).unwrap();
        sm.stop_background_sync();
        assert!(store.wal_syncs() > after, "stopped without the last fsync");
        assert!(sm.syncer.lock().unwrap().is_none());
        let stopped = store.wal_syncs();
        sm.apply_run(&puts(11, 5)).unwrap();
        std::thread::sleep(Duration::from_millis(1_000));
        assert_eq!(store.wal_syncs(), stopped, "fsynced after the stop");
    }

    /// I2: a snapshot is taken only after the WAL is fsynced, and its files, manifest and
    /// pointer are fsynced before the pointer names it.
    #[test]
    fn a_snapshot_is_built_on_a_synced_wal_with_synced_files() {
        let dir = tempfile::tempdir().unwrap();
        let sm = shared(dir.path(), ApplySync::Never);
        sm.apply_run(&puts(1, 20)).unwrap();
        let store = sm.kv.store().unwrap();
        let wal_before = store.wal_syncs();
        let files_before = crate::snapshot::store::file_syncs();
        let snap = sm.build_snapshot().unwrap();
        assert!(
            store.wal_syncs() > wal_before,
            "checkpoint without a WAL fsync"
        );
        // Every file, the manifest (file + its directory), the snapshots directory after the
        // rename, and the pointer (file + directory).
        let expected = snap.manifest.files.len() as u64 + 5;
        assert!(
            crate::snapshot::store::file_syncs() - files_before >= expected,
            "{} fsyncs for a snapshot of {} files",
            crate::snapshot::store::file_syncs() - files_before,
            snap.manifest.files.len()
        );
    }

    /// I1 at the Raft layer: every entry type, membership changes included, leaves the
    /// store's applied log id equal to its own and the membership in force in the same batch.
    #[test]
    fn every_entry_type_moves_applied_and_membership_together() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DataLayout::new(dir.path());
        let kv = KvStateMachine::new(
            Store::open(&layout.state_machine()).unwrap(),
            Arc::new(Hlc::new()),
        )
        .unwrap();
        let shared = SmShared::new(kv, SnapshotStore::new(layout, 2), ApplySync::EveryRun).unwrap();
        let m12 = Membership::new_with_defaults(vec![BTreeSet::from([1, 2])], []);
        let m123 = Membership::new_with_defaults(vec![BTreeSet::from([1, 2, 3])], []);
        let req = |command| {
            Some(Request {
                ts: Timestamp(10),
                command,
            })
        };
        let entries = vec![
            (
                log_id(1, 1, 1),
                None,
                Some(StoredMembership::new(Some(log_id(1, 1, 1)), m12)),
            ),
            (log_id(1, 1, 2), None, None),
            (
                log_id(1, 1, 3),
                req(Command::Put {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                }),
                None,
            ),
            (
                log_id(1, 1, 4),
                req(Command::LeaseRenewal { ceiling_ms: 5_000 }),
                None,
            ),
            (
                log_id(2, 2, 5),
                req(Command::Txn {
                    start_ts: Timestamp::ZERO,
                    mutations: vec![Mutation::Delete { key: b"k".to_vec() }],
                    read_set: vec![],
                }),
                None,
            ),
            (
                log_id(2, 2, 6),
                None,
                Some(StoredMembership::new(Some(log_id(2, 2, 6)), m123)),
            ),
            (
                log_id(2, 2, 7),
                req(Command::DeletePrefix {
                    prefix: b"k".to_vec(),
                }),
                None,
            ),
        ];
        for entry in entries {
            let (id, _, new_membership) = entry.clone();
            let expected_membership = new_membership.unwrap_or_else(|| shared.membership());
            shared.apply_run(&[entry]).unwrap();
            let meta = shared.kv.store().unwrap().meta().unwrap();
            assert_eq!(
                meta.applied,
                Some(to_applied(&id)),
                "applied log id after {id}"
            );
            let stored: StoredMembership = codec::decode(&meta.membership.unwrap()).unwrap();
            assert_eq!(stored, expected_membership, "membership after {id}");
        }
        assert_eq!(shared.applied().unwrap(), Some(log_id(2, 2, 7)));
        let voters: Vec<u64> = shared.membership().membership().voter_ids().collect();
        assert_eq!(voters, vec![1, 2, 3]);
    }
}
