//! The crash-point matrix (docs/design/cold-start.md, "Crash points").
//!
//! Each test runs a real 3-node cluster under write load, arms one named crash point in a
//! follower (`BRISK_CRASH_AT`, which aborts the process like `kill -9`), waits for the node to
//! die there, restarts it, and checks: no acknowledged write is lost, the applied index did
//! not go backwards, the node's keyspace equals its peers' at the same index, and the
//! cold-start gate made the expected decision.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// Small snapshot interval and log tail so snapshots, compaction and transfers happen under
/// a short load.
const FLAGS: &[&str] = &["--snapshot-every", "25", "--logs-to-keep", "5"];

struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, String>>,
    pub acked: Arc<AtomicU64>,
}

impl Load {
    /// Writes distinct keys through node `via` until stopped; returns what was acknowledged.
    async fn start(c: &Cluster, via: u64, tag: &str) -> Load {
        let mut client = c.raw(via).await;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let (s, a, tag) = (stop.clone(), acked.clone(), tag.to_string());
        let task = tokio::spawn(async move {
            let mut done = BTreeMap::new();
            let mut i = 0u64;
            while !s.load(Ordering::SeqCst) {
                let (k, v) = (format!("{tag}/{i:06}"), load_value(i));
                if put(&mut client, &k, &v).await.is_some() {
                    done.insert(k, v);
                    a.fetch_add(1, Ordering::SeqCst);
                }
                i += 1;
            }
            done
        });
        Load { stop, task, acked }
    }

    async fn wait_acked(&self, n: u64) {
        wait_for(
            &format!("{n} acknowledged writes"),
            Duration::from_secs(60),
            async || (self.acked.load(Ordering::SeqCst) >= n).then_some(()),
        )
        .await;
    }

    async fn finish(self) -> BTreeMap<String, String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("load task")
    }
}

/// The value of the load's `i`-th write. Every tenth is large enough to live in the state
/// machine's blob files, so snapshots, transfers and restores carry blob files too.
fn load_value(i: u64) -> String {
    if i.is_multiple_of(10) {
        format!(
            "v{i}-{}",
            "b".repeat(brisk_storage::MIN_BLOB_BYTES as usize)
        )
    } else {
        format!("v{i}")
    }
}

/// Polls node `id` until it exits, remembering the highest applied index it reported.
async fn wait_crash(c: &mut Cluster, id: u64, load: &Load) -> u64 {
    let mut max_applied = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = c.status(id).await {
            max_applied = max_applied.max(s.applied_index);
        }
        let n = c.nodes.iter_mut().find(|n| n.id == id).unwrap();
        if let Some(status) = n.child.as_mut().unwrap().try_wait().unwrap() {
            n.child = None;
            assert!(
                !status.success(),
                "node {id} exited cleanly instead of crashing"
            );
            return max_applied;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {id} never reached its crash point ({} writes acknowledged)",
            load.acked.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Restarts `id` unarmed and checks every invariant after the crash.
async fn check_recovery(
    c: &mut Cluster,
    id: u64,
    leader: u64,
    load: Load,
    max_applied: u64,
    expect: &[(&str, &str)],
) {
    c.spawn(id);
    c.wait_ready(&[id]).await;
    let (outcome, reason, gate_applied) = c.cold_start(id).expect("cold start metrics");
    assert!(
        expect.iter().any(|(o, r)| *o == outcome && *r == reason),
        "gate decided {outcome}/{reason}, expected one of {expect:?}"
    );
    // A store kept by the gate never lost an applied entry; a restored one may start below
    // (from its snapshot), but the node serves nothing older than it had applied: it turns
    // ready only past the cluster's commit index.
    assert!(
        max_applied > 0,
        "the test observed no applied index before the crash"
    );
    if outcome == "skip" {
        assert!(
            gate_applied >= Some(max_applied),
            "applied index went backwards: {max_applied} before the crash, {gate_applied:?} after"
        );
    }
    let applied_when_ready = c.status(id).await.expect("status").applied_index;
    assert!(
        applied_when_ready >= max_applied,
        "ready at applied index {applied_when_ready}, below the {max_applied} applied before the crash"
    );
    let acked = load.finish().await;
    assert!(!acked.is_empty());
    let commit = c.status(leader).await.unwrap().commit_index;
    for n in c.running_ids() {
        c.wait_applied(n, commit).await;
    }
    let mut client = c.raw(id).await;
    for (k, v) in &acked {
        assert_eq!(
            get(&mut client, k, true).await.unwrap().as_ref(),
            Some(v),
            "acknowledged {k} missing on node {id}"
        );
    }
    // Every snapshot left on disk is complete and verifies; the pointer names one of them.
    let o = c.cli(&[
        "inspect",
        &c.data_dir(id).display().to_string(),
        "--verify",
        "--json",
    ]);
    assert!(
        o.status.success(),
        "inspect --verify after the crash: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    // No interrupted build or transfer is left: the start removed them. The running node may
    // be building a snapshot right now (lease renewals keep applying entries), so a directory
    // of work in progress must be gone a moment later.
    let work_dirs = || -> Vec<String> {
        std::fs::read_dir(c.data_dir(id).join("snapshots"))
            .map(|it| {
                it.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.starts_with("build-") || n.starts_with("incoming-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = work_dirs();
    if !first.is_empty() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let still: Vec<String> = work_dirs()
            .into_iter()
            .filter(|n| first.contains(n))
            .collect();
        assert!(still.is_empty(), "interrupted work left behind: {still:?}");
    }
    // Every version, tombstone and meta key, replica against replica, at one applied index.
    assert_identical_replicas(c, &c.running_ids()).await;
    let mine = digest(c, id).await.unwrap();
    assert!(mine.1.len() >= acked.len());
}

/// A follower armed with `point` from the start of the load (points on the apply and
/// snapshot-building paths).
async fn local_point(point: &str, skip: &str, expect: &[(&str, &str)]) {
    let mut c = Cluster::start(3, FLAGS);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    c.kill9(f);
    c.spawn_with_env(f, &[("BRISK_CRASH_AT", point), ("BRISK_CRASH_AFTER", skip)]);
    c.wait_ready(&[f]).await;
    let load = Load::start(&c, leader, point).await;
    let max_applied = wait_crash(&mut c, f, &load).await;
    load.wait_acked(load.acked.load(Ordering::SeqCst) + 20)
        .await;
    check_recovery(&mut c, f, leader, load, max_applied, expect).await;
}

/// A follower that fell behind the leader's compacted log and receives a snapshot, armed
/// with `point` on the receive/restore path.
async fn transfer_point(point: &str, expect: &[(&str, &str)]) {
    let mut c = Cluster::start(3, FLAGS);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let load = Load::start(&c, leader, point).await;
    load.wait_acked(10).await;
    c.kill9(f);
    // Wait until the leader compacted past the dead node's log: it can only catch up by
    // receiving a snapshot.
    let f_last = brisk_raft::log_store::LogSummary::read_only(&c.data_dir(f).join("raft-log"))
        .expect("read the dead node's log")
        .last_log_id
        .map(|l| l.index)
        .unwrap_or(0);
    wait_for(
        "leader compaction past the dead node",
        Duration::from_secs(60),
        async || {
            let s = c.status(leader).await?;
            (s.purged_index > f_last).then_some(())
        },
    )
    .await;
    // Whatever the node applied before it was killed is durable (sync mode).
    let durable = brisk_storage::Store::open_read_only(&c.data_dir(f).join("sm"))
        .ok()
        .and_then(|s| s.meta().ok())
        .and_then(|m| m.applied)
        .map_or(0, |a| a.index.get());
    c.spawn_with_env(f, &[("BRISK_CRASH_AT", point)]);
    let observed = wait_crash(&mut c, f, &load).await;
    check_recovery(&mut c, f, leader, load, durable.max(observed), expect).await;
}

const SKIP_ANY: &[(&str, &str)] = &[("skip", "none"), ("skip", "no_snapshot")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_crash_after_apply_before_ack() {
    // The node that acknowledges writes dies between its durable apply and the ack.
    let mut c = Cluster::start(3, FLAGS);
    c.wait_all_ready().await;
    let old = c.leader().await;
    c.kill9(old);
    c.leader().await;
    c.spawn_with_env(
        old,
        &[
            ("BRISK_CRASH_AT", "apply_before_ack"),
            ("BRISK_CRASH_AFTER", "20"),
        ],
    );
    c.wait_ready(&[old]).await;
    let o = c.cli(&["transfer-leader", "--to", &old.to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let load = Load::start(&c, old, "leader-ack").await;
    let max_applied = wait_crash(&mut c, old, &load).await;
    let leader = c.leader().await;
    assert_ne!(leader, old);
    check_recovery(&mut c, old, leader, load, max_applied, SKIP_ANY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_startup_restore_before_swap() {
    // The gate's own restore (at start, not a transfer) dies before the swap: the next start
    // restores again from the untouched store.
    let (mut c, leader, f, load, applied) = follower_without_applied_meta("start-swap", &[]).await;
    c.spawn_with_env(f, &[("BRISK_CRASH_AT", "restore_before_swap")]);
    let status = c.wait_exit(f, Duration::from_secs(30)).await;
    assert!(!status.success());
    check_recovery(
        &mut c,
        f,
        leader,
        load,
        applied,
        &[("restore", "missing_meta")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_startup_restore_after_swap() {
    // The gate's restore swapped the store in and died before removing the old one: the
    // next start finds A = X and skips.
    let (mut c, leader, f, load, applied) =
        follower_without_applied_meta("start-cleanup", &[]).await;
    c.spawn_with_env(f, &[("BRISK_CRASH_AT", "restore_before_cleanup")]);
    let status = c.wait_exit(f, Duration::from_secs(30)).await;
    assert!(!status.success());
    assert!(
        c.data_dir(f).join("sm.old").exists(),
        "the crash left the old store behind"
    );
    // The crashed start had swapped in its snapshot: that is the store's applied index now.
    let swapped_in = brisk_storage::Store::open_read_only(&c.data_dir(f).join("sm"))
        .unwrap()
        .meta()
        .unwrap()
        .applied
        .unwrap()
        .index
        .get();
    check_recovery(&mut c, f, leader, load, swapped_in, &[("skip", "none")]).await;
    let now = c.status(f).await.unwrap().applied_index;
    assert!(
        now >= applied,
        "applied {now}, below the {applied} before the kill"
    );
    assert!(
        !c.data_dir(f).join("sm.old").exists(),
        "leftover removed at start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_apply_before_ack() {
    local_point("apply_before_ack", "30", SKIP_ANY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_snapshot_files_before_manifest() {
    // The first build dies before its manifest: the pointer did not move to it (there may be
    // one from a snapshot received earlier); check_recovery verifies what it names.
    local_point("snapshot_before_manifest", "0", SKIP_ANY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_manifest_before_pointer() {
    local_point("snapshot_before_pointer", "0", SKIP_ANY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_pointer_before_purge() {
    // The pointer moved; the store is at or past it.
    local_point("pointer_before_purge", "0", &[("skip", "none")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_in_the_middle_of_log_purge() {
    local_point("mid_purge", "0", &[("skip", "none")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_snapshot_transfer() {
    transfer_point("receive_mid_transfer", SKIP_ANY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_transfer_before_install() {
    transfer_point("receive_before_install", SKIP_ANY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_restore_before_swap() {
    // The received snapshot is restored before it is adopted: the old store and pointer are
    // intact, the gate skips, and the node receives the snapshot again.
    transfer_point("restore_before_swap", SKIP_ANY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_swap_before_cleanup() {
    // The store was swapped in, the snapshot not adopted yet: the gate skips (with or without
    // an older pointer) and the leftover is removed.
    transfer_point("restore_before_cleanup", SKIP_ANY).await;
}

/// A cluster under load whose follower took a snapshot, was killed, and lost the applied-index
/// meta key of its store (so its next start must restore).
async fn follower_without_applied_meta(
    tag: &str,
    flags: &[&str],
) -> (Cluster, u64, u64, Load, u64) {
    let mut c = Cluster::start(3, flags);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let load = Load::start(&c, leader, tag).await;
    load.wait_acked(40).await;
    let f_addr = c.node(f).grpc.clone();
    let o = c.cli(&["snapshot", "--endpoints", &f_addr]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let applied = c.status(f).await.expect("status").applied_index;
    c.kill9(f);
    let blob_files = walkdir_names(&c.data_dir(f).join("snapshots"))
        .into_iter()
        .filter(|n| n.ends_with(".blob"))
        .count();
    assert!(blob_files > 0, "the snapshot holds no blob file");
    let store = brisk_storage::Store::open(&c.data_dir(f).join("sm")).unwrap();
    store.remove_applied_for_test().unwrap();
    assert!(store.meta().unwrap().applied.is_none());
    drop(store);
    (c, leader, f, load, applied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_without_applied_meta_is_restored_from_snapshot() {
    // The upgrade case: a store written by a version without the applied-index meta key.
    let (mut c, leader, f, load, applied) = follower_without_applied_meta("upgrade", &[]).await;
    load.wait_acked(load.acked.load(Ordering::SeqCst) + 20)
        .await;
    check_recovery(
        &mut c,
        f,
        leader,
        load,
        applied,
        &[("restore", "missing_meta")],
    )
    .await;
}

/// Flips a byte in an SST file of the snapshot node `f`'s pointer names (the node is
/// stopped). SST files are hard links shared with the live store and other snapshots: the
/// rotten copy gets its own inode, so only that snapshot is damaged.
fn corrupt_snapshot(c: &Cluster, f: u64) {
    let snaps = c.data_dir(f).join("snapshots");
    let pointer = std::fs::read_to_string(snaps.join("CURRENT")).expect("a snapshot pointer");
    let snap_dir = snaps.join(pointer.lines().next().expect("pointer names a directory"));
    let sst = std::fs::read_dir(&snap_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .expect("an sst file");
    let mut bytes = std::fs::read(&sst).unwrap();
    bytes[0] ^= 0xff;
    std::fs::remove_file(&sst).unwrap();
    std::fs::write(&sst, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverifiable_snapshot_is_never_served_and_the_node_refetches_from_the_leader() {
    // The store needs a restore (no applied meta) and the snapshot it would restore from is
    // corrupt.
    let (mut c, leader, f, load, applied) = follower_without_applied_meta("verify", FLAGS).await;
    corrupt_snapshot(&c, f);
    // The leader compacted its log: the node can only catch up from a snapshot.
    wait_for(
        "leader log compaction",
        Duration::from_secs(60),
        async || {
            let s = c.status(leader).await?;
            (s.purged_index > 0).then_some(())
        },
    )
    .await;
    // First start: the node quarantines its state and waits for the leader's snapshot, which
    // this start cannot accept (a 1-byte snapshot cap): it stays in recovery, where it must
    // neither vote nor serve reads.
    c.spawn_with_args(f, &["--max-snapshot-bytes", "1"]);
    wait_for("recovery under way", Duration::from_secs(30), async || {
        (c.metric(
            f,
            "brisk_cold_start_verify_failed_total",
            &[("check", "file_crc")],
        ) == Some(1.0))
        .then_some(())
    })
    .await;
    assert!(c.log_text(f).contains("snapshot failed verification"));
    let refused = ask_vote(&c, f).await.expect_err("a recovering node voted");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("not voting"), "{refused:?}");
    let mut client = c.raw(f).await;
    let read = get(&mut client, "verify/000000", true).await;
    assert!(
        matches!(&read, Err(s) if s.code() == tonic::Code::Unavailable),
        "a recovering node served a stale read: {read:?}"
    );
    assert!(!c.ready(f), "a recovering node reported ready");
    // Restarted with its usual flags, it resumes the recovery and catches up.
    c.kill9(f);
    load.wait_acked(load.acked.load(Ordering::SeqCst) + 20)
        .await;
    check_recovery(
        &mut c,
        f,
        leader,
        load,
        applied,
        &[("restore", "missing_meta")],
    )
    .await;
    assert!(c.log_text(f).contains("resuming an unfinished recovery"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_crashed_during_recovery_still_refuses_votes_and_reads_until_caught_up() {
    // Recovery wiped the log (its target recorded in the same fsynced batch) and quarantined
    // the store, then the node crashed. Restarted while no leader can reach it, it must
    // neither vote (its log is empty: its vote could elect a leader lacking entries it helped
    // commit) nor serve reads, until it has caught up.
    let (mut c, leader, f, load, _) = follower_without_applied_meta("recover", &[]).await;
    corrupt_snapshot(&c, f);
    c.spawn_with_env(f, &[("BRISK_CRASH_AT", "recovery_before_catch_up")]);
    let status = c.wait_exit(f, Duration::from_secs(60)).await;
    assert!(!status.success(), "node {f} exited cleanly: {status}");
    assert!(c
        .log_text(f)
        .contains("crash point recovery_before_catch_up"));
    let marker = brisk_raft::log_store::LogSummary::read_only(&c.data_dir(f).join("raft-log"))
        .unwrap()
        .recover_until
        .expect("the wiped log records the recovery target");
    assert!(marker > brisk_storage::LogIndex::ZERO);
    let o = c.cli(&["inspect", &c.data_dir(f).display().to_string()]);
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        shown.contains(&format!("until index {marker} is applied")),
        "inspect does not show the recovery: {shown}"
    );

    // Freeze the other two: the restarted node cannot catch up.
    let others: Vec<u64> = c.running_ids();
    load.wait_acked(load.acked.load(Ordering::SeqCst) + 10)
        .await;
    for &o in &others {
        c.signal(o, "STOP");
    }
    c.spawn(f);
    c.wait_answering(f).await;
    assert!(c.log_text(f).contains("resuming an unfinished recovery"));
    let refused = ask_vote(&c, f).await.expect_err("a recovering node voted");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("not voting"), "{refused:?}");
    assert!(refused.message().contains("not voting"), "{refused:?}");
    let mut client = c.raw(f).await;
    let read = get(&mut client, "recover/000000", true).await;
    assert!(
        matches!(&read, Err(s) if s.code() == tonic::Code::Unavailable),
        "a recovering node served a stale read: {read:?}"
    );
    assert!(!c.ready(f), "a recovering node reported ready");

    // Let the cluster go on: the node catches up, ends its recovery and serves again.
    for &o in &others {
        c.signal(o, "CONT");
    }
    c.wait_ready(&[f]).await;
    assert!(
        brisk_raft::log_store::LogSummary::read_only(&c.data_dir(f).join("raft-log"))
            .unwrap()
            .recover_until
            .is_none(),
        "the recovery marker outlived the recovery"
    );
    let acked = load.finish().await;
    let commit = c.status(leader).await.unwrap().commit_index;
    c.wait_applied(f, commit).await;
    let mut client = c.raw(f).await;
    for (k, v) in &acked {
        assert_eq!(
            get(&mut client, k, true).await.unwrap().as_ref(),
            Some(v),
            "acknowledged {k} missing on node {f}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_in_the_middle_of_a_spilling_delete_prefix() {
    // A DeletePrefix over more keys than one chunk spills its tombstones before the batch that
    // carries the applied index; a follower dies after a spill. Replaying the entry at restart
    // must reach exactly the state of the replicas that applied it whole.
    let mut c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    // 2,500 keys (more than two chunks), written 500 to a transaction, through the client
    // library (a leader just elected answers "not applied" until it has fenced its clock).
    let client = brisk_client::Client::builder([c.node(leader).grpc.clone()])
        .build()
        .unwrap();
    use brisk_proto::transactional_kv_client::TransactionalKvClient;
    for batch in 0..5 {
        let start_ts = client
            .call(brisk_client::Idempotence::Read, |ch| async move {
                TransactionalKvClient::new(ch)
                    .begin(brisk_proto::BeginRequest {})
                    .await
            })
            .await
            .unwrap()
            .start_ts;
        let mutations: Vec<_> = (0..500)
            .map(|i| brisk_proto::Mutation {
                op: brisk_proto::mutation::Op::Put as i32,
                key: format!("dp/{:05}", batch * 500 + i).into_bytes(),
                value: b"v".to_vec(),
            })
            .collect();
        let req = brisk_proto::CommitRequest {
            start_ts,
            mutations,
            read_set: vec![],
        };
        let r = client
            .call(brisk_client::Idempotence::Write, |ch| {
                let req = req.clone();
                async move { TransactionalKvClient::new(ch).commit(req).await }
            })
            .await
            .unwrap();
        assert!(r.committed);
    }
    let mut client = c.raw(leader).await;
    c.kill9(f);
    c.spawn_with_env(f, &[("BRISK_CRASH_AT", "delete_prefix_spilled")]);
    c.wait_ready(&[f]).await;
    let load = Load::start(&c, leader, "around-dp").await;
    load.wait_acked(10).await;
    let applied_before = c.status(f).await.expect("status").applied_index;
    let deleted = client
        .raw_delete_prefix(brisk_proto::RawDeletePrefixRequest {
            prefix: b"dp/".to_vec(),
        })
        .await
        .expect("the DeletePrefix is acknowledged by the other two");
    assert!(deleted.into_inner().result.is_some());
    let max_applied = wait_crash(&mut c, f, &load).await.max(applied_before);
    load.wait_acked(load.acked.load(Ordering::SeqCst) + 20)
        .await;
    check_recovery(&mut c, f, leader, load, max_applied, SKIP_ANY).await;
    let mut raw = c.raw(f).await;
    let left = raw
        .raw_scan(brisk_proto::RawScanRequest {
            prefix: b"dp/".to_vec(),
            stale: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        left.pairs.is_empty(),
        "{} keys survived the DeletePrefix on node {f}",
        left.pairs.len()
    );
}

/// Names of every file under `dir`, recursively.
fn walkdir_names(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            names.extend(walkdir_names(&path));
        } else {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names
}
