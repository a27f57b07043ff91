//! Cluster scenarios against real `brisk serve` processes.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_bootstrap_and_serve_writes_through_a_follower() {
    let c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let follower = c.running_ids().into_iter().find(|&i| i != leader).unwrap();

    // Through the follower only: it forwards to the leader.
    let only_follower = c.node(follower).grpc.clone();
    let o = c.cli(&["put", "greeting", "hello", "--endpoints", &only_follower]);
    assert!(
        o.status.success(),
        "put via follower failed: {}",
        stderr(&o)
    );
    assert!(stdout(&o).starts_with("OK commit_ts="), "{}", stdout(&o));
    let o = c.cli(&["get", "greeting", "--endpoints", &only_follower]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n");

    // Every replica has it (stale reads are served locally).
    let applied = c.status(leader).await.unwrap().applied_index;
    for id in c.running_ids() {
        c.wait_applied(id, applied).await;
        let mut raw = c.raw(id).await;
        assert_eq!(
            get(&mut raw, "greeting", true).await.unwrap().as_deref(),
            Some("hello"),
            "node {id}"
        );
    }

    // Absent key: exit code 1 and nothing on stdout.
    let o = c.cli(&["get", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());

    // Status as JSON names the leader and all members.
    let o = c.cli(&["status", "--json", "--endpoints", &only_follower]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status --json is JSON");
    assert_eq!(v["id"], follower);
    assert_eq!(v["role"], "follower");
    assert_eq!(v["leader_id"], leader);
    assert_eq!(v["members"].as_array().unwrap().len(), 3);
    assert!(v["commit_index"].as_u64().unwrap() >= applied);

    // Scan, delete, delete-prefix, transactions.
    for k in ["p/1", "p/2", "q/1"] {
        assert!(c.cli(&["put", k, "x"]).status.success());
    }
    let o = c.cli(&["scan", "--prefix", "p/"]);
    assert_eq!(stdout(&o), "p/1\tx\np/2\tx\n");
    assert!(c.cli(&["delete-prefix", "p/"]).status.success());
    assert!(c.cli(&["delete", "q/1"]).status.success());
    let o = c.cli(&["scan"]);
    assert_eq!(stdout(&o), "greeting\thello\n");
    let o = c.cli(&["txn", "--put", "a=1", "--put", "b=2", "--read", "greeting"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("COMMITTED"), "{}", stdout(&o));
    // A transaction whose start_ts predates a commit to a key it writes conflicts.
    let o = c.cli(&["txn", "--put", "a=3", "--start-ts", "1"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("CONFLICT key=a"), "{}", stdout(&o));
    let o = c.cli(&["get", "a"]);
    assert_eq!(stdout(&o), "1\n", "the aborted transaction wrote nothing");
}

/// A ready 3-node cluster, its leader and one of its followers.
async fn three_ready_nodes() -> (Cluster, u64, u64) {
    let c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let follower = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    (c, leader, follower)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_serves_linearizable_reads_from_its_own_state_once_it_applied_the_leaders_read_index(
) {
    let (c, leader, follower) = three_ready_nodes().await;
    let mut via_leader = c.raw(leader).await;
    let mut via_follower = c.raw(follower).await;

    // Every write the leader acknowledged is visible to the next read on the follower.
    for i in 0..100 {
        let v = format!("v{i}");
        assert!(put(&mut via_leader, "k", &v).await.is_some());
        assert_eq!(
            get(&mut via_follower, "k", false).await.unwrap().as_deref(),
            Some(v.as_str()),
            "read {i} on follower {follower}"
        );
    }
    let served = |id| {
        c.metric(id, "brisk_follower_reads_total", &[])
            .unwrap_or(0.0)
    };
    assert!(
        served(follower) >= 100.0,
        "follower {follower} served {} reads itself",
        served(follower)
    );
    assert_eq!(
        served(leader),
        0.0,
        "the leader asks no one for a read index"
    );

    // A follower that missed writes waits until it has applied them before it reads.
    for round in 0..10 {
        c.signal(follower, "STOP");
        for i in 0..20 {
            let v = format!("missed{round}.{i}");
            assert!(put(&mut via_leader, "k", &v).await.is_some());
        }
        c.signal(follower, "CONT");
        assert_eq!(
            get(&mut via_follower, "k", false).await.unwrap().as_deref(),
            Some(format!("missed{round}.19").as_str()),
            "read after round {round} of missed writes"
        );
    }

    // Concurrent reads share read-index requests to the leader.
    let before = c
        .metric(follower, "brisk_follower_read_index_requests_total", &[])
        .unwrap_or(0.0);
    let reads = (0..64).map(|_| {
        let mut client = via_follower.clone();
        async move { get(&mut client, "k", false).await }
    });
    for r in futures::future::join_all(reads).await {
        assert_eq!(r.unwrap().as_deref(), Some("missed9.19"));
    }
    let requests = c
        .metric(follower, "brisk_follower_read_index_requests_total", &[])
        .unwrap_or(0.0)
        - before;
    eprintln!("{requests} read-index requests for 64 concurrent reads");
    assert!(
        (1.0..64.0).contains(&requests),
        "{requests} read-index requests for 64 concurrent reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_read_while_the_leader_is_paused_fails_fast_and_succeeds_after_a_new_election() {
    let (c, leader, follower) = three_ready_nodes().await;
    let mut via_leader = c.raw(leader).await;
    let mut via_follower = c.raw(follower).await;
    assert!(put(&mut via_leader, "k", "before").await.is_some());
    assert_eq!(
        get(&mut via_follower, "k", false).await.unwrap().as_deref(),
        Some("before")
    );

    // The follower's read-index requests go to a leader that never answers: each read ends
    // (UNAVAILABLE) within the request deadline, and reads succeed once the others elect.
    c.signal(leader, "STOP");
    let started = std::time::Instant::now();
    loop {
        let call = std::time::Instant::now();
        let r = get(&mut via_follower, "k", false).await;
        assert!(
            call.elapsed() < Duration::from_secs(16),
            "a read took {:?}",
            call.elapsed()
        );
        match r {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some("before"));
                break;
            }
            Err(s) => assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no read succeeded on follower {follower} with leader {leader} paused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.signal(leader, "CONT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_written() {
    let c = Cluster::start(
        3,
        &[
            "--max-key-bytes",
            "64",
            "--max-value-bytes",
            "1024",
            "--max-entry-bytes",
            "4096",
        ],
    );
    c.wait_all_ready().await;
    c.leader().await;
    let before = c.status(c.leader().await).await.unwrap();

    let long_key = "k".repeat(65);
    let big_value = "v".repeat(1025);
    // Five values within the value limit, together above the entry limit.
    let parts: Vec<String> = (0..5)
        .map(|i| format!("t{i}={}", "v".repeat(1000)))
        .collect();
    let oversized_txn: Vec<&str> = std::iter::once("txn")
        .chain(parts.iter().flat_map(|p| ["--put", p.as_str()]))
        .collect();
    for args in [
        oversized_txn,
        vec!["put", "", "x"],
        vec!["put", long_key.as_str(), "x"],
        vec!["put", "k", big_value.as_str()],
        vec!["get", ""],
        vec!["scan", "--start", "b", "--end", "a"],
        vec!["get", "k", "--at-ts", "18446744073709551615"],
        vec!["txn", "--put", "a=1", "--start-ts", "18446744073709551000"],
        vec!["remove", "--id", "42"],
        vec!["transfer-leader", "--to", "42"],
    ] {
        let o = c.cli(&args);
        assert!(!o.status.success(), "{args:?} should fail");
        let e = stderr(&o);
        assert!(
            e.contains("invalid argument") || e.contains("not found"),
            "{args:?}: unexpected error text {e:?}"
        );
    }
    let o = c.cli(&["remove", "--id", "42"]);
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    // A prefix and a range together is a usage error the CLI catches before sending.
    let o = c.cli(&["scan", "--prefix", "p", "--start", "a"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // Nothing reached the state machine: no user write was committed.
    let o = c.cli(&["scan"]);
    assert_eq!(stdout(&o), "");
    let mut raw = c.raw(c.leader().await).await;
    let r = raw
        .raw_latest_commit_ts(brisk_proto::RawLatestCommitTsRequest {
            key: vec![],
            stale: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.found, "a commit happened: {r:?}");
    assert!(before.term > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill9_fails_over_and_the_node_catches_up_after_restart() {
    let mut c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let old = c.leader().await;
    let survivor = c.running_ids().into_iter().find(|&i| i != old).unwrap();
    let mut client = c.raw(survivor).await;
    let mut acked = BTreeMap::new();
    for i in 0..40 {
        let (k, v) = (format!("k{i:03}"), format!("v{i}"));
        put(&mut client, &k, &v).await.expect("acknowledged");
        acked.insert(k, v);
    }

    c.kill9(old);
    let started = std::time::Instant::now();
    let new = c.leader().await;
    assert_ne!(new, old);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failover took {:?}",
        started.elapsed()
    );

    // Every acknowledged write is readable through the new cluster, and it takes writes.
    let mut client = c.raw(new).await;
    for (k, v) in &acked {
        assert_eq!(
            get(&mut client, k, false).await.unwrap().as_ref(),
            Some(v),
            "{k}"
        );
    }
    for i in 40..60 {
        let (k, v) = (format!("k{i:03}"), format!("v{i}"));
        put(&mut client, &k, &v)
            .await
            .expect("acknowledged after failover");
        acked.insert(k, v);
    }

    // The killed node restarts, skips the snapshot rebuild and catches up.
    c.spawn(old);
    c.wait_ready(&[old]).await;
    let target = c.status(new).await.unwrap().commit_index;
    c.wait_applied(old, target).await;
    let mut restarted = c.raw(old).await;
    for (k, v) in &acked {
        assert_eq!(
            get(&mut restarted, k, true).await.unwrap().as_ref(),
            Some(v),
            "{k} on restarted node"
        );
    }
    assert!(
        c.metric(old, "brisk_cold_start_total", &[("outcome", "skip")]) >= Some(1.0),
        "{}",
        c.metrics(old)
    );
    // One INFO line per start carries the decision, A, X and the phase durations.
    let log = c.log_text(old);
    let ready = log
        .lines()
        .rfind(|l| l.contains("brisk::serve: ready "))
        .expect("a ready line");
    for field in [
        "outcome=skip",
        "applied_index=Some(",
        "snapshot_index=",
        "open_ms=",
        "replay_ms=",
        "ready_ms=",
    ] {
        assert!(ready.contains(field), "{field} missing from {ready}");
    }
    // The applied index is logged as the number it is.
    let applied = ready
        .split_once("applied_index=Some(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(n, _)| n);
    assert!(
        applied.is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0)),
        "applied index not a positive number in {ready}"
    );
}

async fn full_cluster_crash(extra: &[&str]) {
    let mut c = Cluster::start(3, extra);
    c.wait_all_ready().await;
    let first_leader = c.leader().await;
    let endpoints: Vec<u64> = c.running_ids();

    // Writers run concurrently; the cluster is killed while they are still writing. A
    // write counts only once acknowledged.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut client = c.raw(endpoints[w % 3]).await;
        let tx = tx.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let (k, v) = (format!("w{w}/{i:05}"), format!("value-{w}-{i}"));
                let r = client
                    .raw_put(brisk_proto::RawPutRequest {
                        key: k.clone().into_bytes(),
                        value: v.clone().into_bytes(),
                    })
                    .await;
                match r {
                    Ok(_) => {
                        if tx.send((k, v)).is_err() {
                            return;
                        }
                    }
                    // Not acknowledged (e.g. the leader is still fencing its clock): go on.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }));
    }
    drop(tx);
    // Let some writes be acknowledged, then kill every node mid-stream.
    let mut acked = BTreeMap::new();
    while acked.len() < 150 {
        let (k, v) = rx.recv().await.expect("writers acknowledge writes");
        acked.insert(k, v);
    }
    let term_before = c
        .status(first_leader)
        .await
        .expect("the leader answers")
        .term;
    for id in c.running_ids() {
        c.kill9(id);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        let _ = w.await;
    }
    while let Ok((k, v)) = rx.try_recv() {
        acked.insert(k, v);
    }

    for id in 1..=3 {
        c.spawn(id);
    }
    c.wait_all_ready().await;
    let leader = c.leader().await;
    // The leader before the crash did not resume its term: a new election's term, whose
    // first entry bounds every read index from below, even if a state machine lost applied
    // writes (design: I7).
    let term_after = c.status(leader).await.expect("the new leader answers").term;
    assert!(
        term_after > term_before,
        "leader {leader} serves term {term_after}, not newer than {term_before}"
    );
    let mut client = c.raw(leader).await;
    for (k, v) in &acked {
        assert_eq!(
            get(&mut client, k, false).await.unwrap().as_ref(),
            Some(v),
            "acknowledged write {k} lost after kill -9 of all nodes"
        );
    }
    // Replicas converge to the same state.
    let commit = c.status(leader).await.unwrap().commit_index;
    for id in 1..=3 {
        c.wait_applied(id, commit).await;
    }
    let d1 = digest(&c, 1).await.unwrap();
    for id in 2..=3 {
        let d = digest(&c, id).await.unwrap();
        assert_eq!(d.0, d1.0, "node {id} differs from node 1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_nodes_kill9_and_restart_keep_every_acknowledged_write() {
    full_cluster_crash(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_survives_kill9_of_all_nodes() {
    full_cluster_crash(&["--fsm-sync", "sync"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nosync_mode_survives_kill9_of_all_nodes() {
    full_cluster_crash(&["--fsm-sync", "nosync"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_learner_promote_and_remove() {
    let mut c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    c.leader().await;
    for i in 0..10 {
        assert!(c.cli(&["put", &format!("m{i}"), "v"]).status.success());
    }
    // A fourth node, started empty, added as a learner through the CLI.
    let id = c.add_node(&[]);
    let addr = c.node(id).grpc.clone();
    let peer = c.node(id).peer.clone();
    let o = c.cli(&[
        "add-learner",
        "--id",
        &id.to_string(),
        "--addr",
        &addr,
        "--peer-addr",
        &peer,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("learner"), "{}", stdout(&o));
    let o = c.cli(&["promote", "--id", &id.to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = c.cli(&["members"]);
    assert_eq!(stdout(&o).matches("voter").count(), 4, "{}", stdout(&o));

    // The new voter has the data.
    let leader = c.leader().await;
    let commit = c.status(leader).await.unwrap().commit_index;
    c.wait_applied(id, commit).await;
    let mut raw = c.raw(id).await;
    assert_eq!(
        get(&mut raw, "m9", true).await.unwrap().as_deref(),
        Some("v")
    );

    // Remove a founding follower; the cluster keeps serving.
    let gone = c
        .running_ids()
        .into_iter()
        .find(|&i| i != leader && i != id)
        .unwrap();
    let o = c.cli(&["remove", "--id", &gone.to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = c.cli(&["members"]);
    assert_eq!(stdout(&o).matches("voter").count(), 3, "{}", stdout(&o));
    assert!(!stdout(&o).contains(&c.node(gone).grpc), "{}", stdout(&o));
    c.kill9(gone);
    assert!(c.cli(&["put", "after-remove", "ok"]).status.success());
    let o = c.cli(&["get", "after-remove"]);
    assert_eq!(stdout(&o), "ok\n");

    // Leadership moves on request.
    let to = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let o = c.cli(&["transfer-leader", "--to", &to.to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(c.leader().await, to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_with_join_flag() {
    let mut c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    c.leader().await;
    assert!(c.cli(&["put", "j", "1"]).status.success());
    let via = c.node(1).grpc.clone();
    let id = c.add_node(&["--join", &via]);
    wait_for(
        "the joiner to be a member",
        Duration::from_secs(20),
        async || {
            let o = c.cli(&["members"]);
            stdout(&o).contains(&c.node(id).grpc).then_some(())
        },
    )
    .await;
    let commit = c.status(c.leader().await).await.unwrap().commit_index;
    c.wait_applied(id, commit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_data_dir_is_refused() {
    let c = Cluster::start(1, &[]);
    c.wait_all_ready().await;
    let o = std::process::Command::new(BIN)
        .args(["serve", "--id", "1"])
        .arg("--data-dir")
        .arg(c.data_dir(1))
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--http",
            &format!("127.0.0.1:{}", free_port()),
            "--peer-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--peer-insecure",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("is locked by"), "{e}");
    // The running node is unaffected.
    assert!(c.ready(1));
}

/// A cluster whose follower was down while 80 keys were written and the leader compacted
/// its log past what the follower holds: it can only catch up from a snapshot. Returns the
/// cluster, the leader and the stopped follower.
async fn follower_behind_compaction() -> (Cluster, u64, u64) {
    let mut c = Cluster::start(3, &["--snapshot-every", "20", "--logs-to-keep", "5"]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let lagging = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    c.kill9(lagging);
    let mut client = c.raw(leader).await;
    for i in 0..80 {
        put(&mut client, &format!("s{i:03}"), &format!("v{i}"))
            .await
            .expect("ack");
    }
    wait_for(
        "leader log compaction",
        Duration::from_secs(20),
        async || {
            let s = c.status(leader).await?;
            (s.purged_index > 20).then_some(())
        },
    )
    .await;
    (c, leader, lagging)
}

/// Node `id` holds the 80 keys `follower_behind_compaction` wrote.
async fn holds_the_snapshotted_keys(c: &Cluster, id: u64) {
    let mut raw = c.raw(id).await;
    for i in 0..80 {
        assert_eq!(
            get(&mut raw, &format!("s{i:03}"), true).await.unwrap(),
            Some(format!("v{i}")),
            "s{i:03} on the node that got the snapshot"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_receives_a_snapshot() {
    let (mut c, leader, lagging) = follower_behind_compaction().await;
    c.spawn(lagging);
    c.wait_ready(&[lagging]).await;
    let commit = c.status(leader).await.unwrap().commit_index;
    c.wait_applied(lagging, commit).await;
    holds_the_snapshotted_keys(&c, lagging).await;
    assert!(
        c.metric(lagging, "brisk_snapshots_installed_total", &[]) >= Some(1.0),
        "no snapshot was installed:\n{}",
        c.metrics(lagging)
    );
    assert_eq!(
        digest(&c, lagging).await.unwrap().0,
        digest(&c, leader).await.unwrap().0
    );
}

/// GetTimestamp asked of node `id` itself (the forwarded header keeps it from routing).
async fn timestamp_from(c: &Cluster, id: u64) -> Result<u64, tonic::Status> {
    let mut req = tonic::Request::new(brisk_proto::GetTimestampRequest {});
    req.metadata_mut().insert(
        "x-brisk-forwarded",
        tonic::metadata::MetadataValue::from_static("1"),
    );
    req.set_timeout(Duration::from_secs(3));
    c.raw(id)
        .await
        .get_timestamp(req)
        .await
        .map(|r| r.into_inner().ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_cut_off_from_its_peers_hands_out_no_stale_timestamp() {
    let c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let old = c.leader().await;
    let others: Vec<u64> = c.running_ids().into_iter().filter(|&i| i != old).collect();
    // The leader freezes; the other two elect a successor, which issues a timestamp (above
    // the old leader's whole lease).
    c.signal(old, "STOP");
    let new = wait_for("a new leader", Duration::from_secs(30), async || {
        for &o in &others {
            if let Some(s) = c.status(o).await {
                if s.role == "leader" {
                    return Some(o);
                }
            }
        }
        None
    })
    .await;
    let issued = wait_for(
        "a timestamp from the new leader",
        Duration::from_secs(30),
        async || timestamp_from(&c, new).await.ok(),
    )
    .await;
    // The old leader wakes up cut off from its peers: it still believes it leads.
    for &o in &others {
        c.signal(o, "STOP");
    }
    c.signal(old, "CONT");
    let answer = timestamp_from(&c, old).await;
    for &o in &others {
        c.signal(o, "CONT");
    }
    if let Ok(ts) = answer {
        assert!(
            ts > issued,
            "the deposed leader handed out {ts} after its successor issued {issued}"
        );
    }
}

/// Starts a snapshot reception on node `id` that sends nothing until `tx` is dropped.
async fn open_reception(
    c: &Cluster,
    id: u64,
) -> (
    tokio::sync::mpsc::Sender<brisk_proto::SnapshotChunk>,
    tokio::task::JoinHandle<Result<(), tonic::Status>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut client = c.peer_client(id).await.expect("connect");
    let call = tokio::spawn(async move {
        client
            .install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map(|_| ())
    });
    (tx, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_receptions_beyond_the_limit_are_refused() {
    let c = Cluster::start(1, &["--max-snapshot-receptions", "2"]);
    c.wait_all_ready().await;
    let held = [open_reception(&c, 1).await, open_reception(&c, 1).await];
    wait_for(
        "two receptions in progress",
        Duration::from_secs(20),
        async || {
            (c.metric(1, "brisk_snapshot_receptions_in_progress", &[]) == Some(2.0)).then_some(())
        },
    )
    .await;
    // Both are in progress: a third is refused at once.
    let refused = wait_for("a refused reception", Duration::from_secs(20), async || {
        let (tx, call) = open_reception(&c, 1).await;
        let r = tokio::time::timeout(Duration::from_millis(500), call).await;
        drop(tx);
        match r {
            Ok(Ok(Err(s))) if s.code() == tonic::Code::ResourceExhausted => Some(s),
            _ => None,
        }
    })
    .await;
    assert!(
        refused.message().contains("snapshot receptions"),
        "{refused:?}"
    );
    // Ending the held streams frees their places: a new reception gets past the limit (and
    // fails on its empty stream instead).
    for (tx, call) in held {
        drop(tx);
        let r = call.await.unwrap();
        assert!(r.is_err(), "an empty snapshot stream was accepted");
    }
    let again = wait_for(
        "a reception past the limit",
        Duration::from_secs(20),
        async || {
            let (tx, call) = open_reception(&c, 1).await;
            drop(tx);
            match call.await.unwrap() {
                Err(s) if s.code() == tonic::Code::ResourceExhausted => None,
                other => Some(other),
            }
        },
    )
    .await;
    assert_eq!(
        again.unwrap_err().code(),
        tonic::Code::InvalidArgument,
        "an empty stream is refused as malformed once there is room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_snapshots_are_rate_limited() {
    let c = Cluster::start(1, &[]);
    c.wait_all_ready().await;
    let mut raw = c.raw(1).await;
    put(&mut raw, "k", "v").await.expect("acknowledged");
    let mut admin = c.admin(1).await.expect("admin client");
    admin
        .snapshot(brisk_proto::SnapshotRequest {})
        .await
        .expect("the first snapshot");
    let second = admin.snapshot(brisk_proto::SnapshotRequest {}).await;
    assert_eq!(
        second.expect_err("a second snapshot at once").code(),
        tonic::Code::ResourceExhausted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_is_not_ready_until_it_holds_what_the_cluster_had_committed() {
    // An operator replaced a node's disk and restarted it with its usual flags. A rolling
    // restart gated on /readyz must not go on while it is still empty.
    let mut c = Cluster::start(3, &["--snapshot-every", "200", "--logs-to-keep", "10"]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let mut raw = c.raw(leader).await;
    let value = "x".repeat(4096);
    for i in 0..600 {
        put(&mut raw, &format!("w/{i:04}"), &value)
            .await
            .expect("acknowledged");
    }
    c.kill9(f);
    std::fs::remove_dir_all(c.data_dir(f)).unwrap();
    let commit = c.status(leader).await.unwrap().commit_index;
    c.spawn(f);
    // Every /readyz answer computes readiness and reports the applied index from one view.
    let applied_when_ready = wait_for(
        "the wiped node ready",
        Duration::from_secs(60),
        async || {
            let (code, body) = http_get(&c.node(f).http, "/readyz")?;
            if code != 200 {
                return None;
            }
            let applied: u64 = body
                .split("applied ")
                .nth(1)?
                .split(|ch: char| !ch.is_ascii_digit())
                .next()?
                .parse()
                .ok()?;
            Some(applied)
        },
    )
    .await;
    assert!(
        applied_when_ready >= commit,
        "ready at applied index {applied_when_ready}; the cluster had committed {commit} before the restart"
    );
    // It knew itself for a replaced disk: no vote and no reads until caught up.
    assert!(c
        .log_text(f)
        .contains("new data directory for a member of a running cluster"));
    let mut client = c.raw(f).await;
    assert_eq!(
        get(&mut client, "w/0000", true).await.unwrap().as_deref(),
        Some(value.as_str()),
        "a ready node served a stale read that missed an old write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_snapshot_rotted_builds_a_fresh_one_for_a_lagging_follower() {
    let (mut c, leader, lagging) = follower_behind_compaction().await;
    // The snapshot to damage is the one the follower will be sent. Lease renewals go on
    // committing entries (one a second), so an automatic build every 20 entries would
    // replace whatever the pointer names sooner or later: take one on demand now, which
    // leaves about 20 s before the next, and damage exactly that one.
    let taken = c
        .admin(leader)
        .await
        .expect("admin client")
        .snapshot(brisk_proto::SnapshotRequest {})
        .await
        .expect("an on-demand snapshot")
        .into_inner();
    let snaps = c.data_dir(leader).join("snapshots");
    let pointed = wait_for(
        "the pointer naming the on-demand snapshot",
        Duration::from_secs(20),
        async || {
            let pointed = std::fs::read_to_string(snaps.join("CURRENT")).ok()?;
            let name = pointed.lines().next()?.to_string();
            let index: u64 = name.split('-').next()?.parse().ok()?;
            (index >= taken.index).then_some(name)
        },
    )
    .await;
    // A byte of the leader's current snapshot rots on disk. SST files are hard links shared
    // with the live store: the rotten copy gets its own inode so only the snapshot is hit.
    let dir = snaps.join(pointed);
    let sst = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("an sst file in the leader's snapshot");
    let mut bytes = std::fs::read(&sst).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::remove_file(&sst).unwrap();
    std::fs::write(&sst, bytes).unwrap();

    c.spawn(lagging);
    c.wait_ready(&[lagging]).await;
    let commit = c.status(leader).await.unwrap().commit_index;
    c.wait_applied(lagging, commit).await;
    holds_the_snapshotted_keys(&c, lagging).await;
    assert!(c
        .log_text(leader)
        .contains("failed verification while being sent"));
    assert!(
        c.metric(leader, "brisk_snapshots_repaired_total", &[]) >= Some(1.0),
        "the leader did not rebuild its snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_lease_read_policy_a_restarted_node_grants_no_vote_for_one_lease() {
    // A follower that acknowledged a leader promised not to vote for a rival while that
    // leader's lease runs; restarted, it has forgotten the promise, so it keeps it blindly.
    let mut c = Cluster::start(
        3,
        &[
            "--read-policy",
            "lease",
            "--election-timeout-ms",
            "2000",
            "--heartbeat-ms",
            "200",
        ],
    );
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    c.kill9(f);
    c.spawn(f);
    c.wait_answering(f).await;
    let refused = ask_vote(&c, f)
        .await
        .expect_err("a node within a lease of its start voted");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("not voting yet"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_with_sigterm_hands_over_without_client_errors() {
    let mut c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    // The client library's retry rule: writes are retried only when definitely not applied.
    let client = brisk_client::Client::builder((1..=3).map(|id| c.node(id).grpc.clone()))
        .deadline(Duration::from_secs(10))
        .build()
        .unwrap();
    let client = std::sync::Arc::new(client);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4usize {
        let (client, stop) = (client.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let (mut acked, mut failed) = (Vec::new(), Vec::new());
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let key = format!("term/{w}/{n}");
                n += 1;
                match client.put(key.clone(), "v").await {
                    Ok(_) => acked.push(key),
                    Err(e) => failed.push(format!("{key}: {e:?}")),
                }
            }
            (acked, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.signal(leader, "TERM");
    let status = c.wait_exit(leader, Duration::from_secs(15)).await;
    assert!(status.success(), "the stopped leader exited with {status}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut acked = Vec::new();
    for w in writers {
        let (a, failed) = w.await.unwrap();
        assert!(
            failed.is_empty(),
            "a client saw errors it could not retry: {failed:?}"
        );
        acked.extend(a);
    }
    assert!(acked.len() > 20, "too little load: {}", acked.len());
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    assert!(
        c.log_text(leader)
            .contains("stopping: transferring leadership"),
        "the leader did not hand over"
    );
    // Every acknowledged write is there.
    let mut raw = c.raw(new_leader).await;
    for k in &acked {
        assert_eq!(
            get(&mut raw, k, true).await.unwrap().as_deref(),
            Some("v"),
            "{k}"
        );
    }
}

/// Under systemd's Type=notify a node says READY=1 once it is ready (when /readyz turns 200),
/// not when it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_notifies_the_service_manager_when_it_is_ready() {
    let mut c = Cluster::new(3, &[]);
    let socket_path = c.tmp.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    c.spawn(2);
    c.spawn(3);
    c.spawn_with_env(1, &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())]);
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("no notification within 30 s");
    let message = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(message.contains("READY=1"), "{message}");
    assert!(c.ready(1), "READY=1 came before /readyz said 200");
}

/// grpc.health.v1 on the client port follows readiness: NOT_SERVING while the node has no
/// leader, SERVING once it is ready; an unknown service is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_checking_follows_readiness() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let mut c = Cluster::new(3, &[]);
    c.spawn(1);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", c.node(1).grpc))
        .unwrap()
        .connect_lazy();
    let mut health = HealthClient::new(channel);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_string(),
    };
    // Alone, node 1 has no leader: it answers, but not serving.
    let alone = common::wait_for(
        "node 1 to answer health checks",
        Duration::from_secs(30),
        async || health.check(check("")).await.ok(),
    )
    .await;
    assert_eq!(alone.into_inner().status, ServingStatus::NotServing as i32);
    c.spawn(2);
    c.spawn(3);
    c.wait_all_ready().await;
    common::wait_for("SERVING after ready", Duration::from_secs(10), async || {
        let s = health.check(check("")).await.ok()?.into_inner().status;
        (s == ServingStatus::Serving as i32).then_some(())
    })
    .await;
    let raw = health.check(check("brisk.v1.RawKV")).await.unwrap();
    assert_eq!(raw.into_inner().status, ServingStatus::Serving as i32);
    let unknown = health.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}
