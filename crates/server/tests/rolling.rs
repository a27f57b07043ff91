//! `brisk rolling-restart --dev` against a real `brisk dev` cluster under client load.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{free_port, http_get, wait_for, BIN};

/// A `brisk dev` cluster in a temporary directory; stopped (with its nodes) on drop.
struct DevCluster {
    dir: tempfile::TempDir,
    dev: std::process::Child,
}

/// A base port whose three ranges (client, HTTP at +1000, peer at +2000) are free for `n`
/// nodes, below 32768.
fn free_base_port(n: u16) -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    // Start where the shared picker would, so concurrent test processes spread out.
    let start = free_port();
    for k in 0..9000u32 {
        let base = (20_000 + (u32::from(start) - 20_000 + k * 7) % 9_000) as u16;
        if (0..n).all(|i| free(base + i) && free(base + 1000 + i) && free(base + 2000 + i)) {
            return base;
        }
    }
    panic!("no free base port in 20000..31000");
}

#[derive(serde::Deserialize)]
struct DevNode {
    id: u64,
    pid: u32,
    grpc: String,
    http: String,
}

#[derive(serde::Deserialize)]
struct ClusterFile {
    nodes: Vec<DevNode>,
    supervisor_pid: Option<u32>,
}

impl DevCluster {
    async fn start() -> DevCluster {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
        let dev = std::process::Command::new(BIN)
            .args(["dev", "--nodes", "3", "--base-port"])
            .arg(free_base_port(3).to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = DevCluster { dir, dev };
        wait_for(
            "the dev cluster to turn ready",
            Duration::from_secs(60),
            async || {
                // brisk dev names itself once it supervises (restarts nodes on request).
                let f = c.cluster_file()?;
                f.supervisor_pid?;
                f.nodes
                    .iter()
                    .all(|n| http_get(&n.http, "/readyz").is_some_and(|(code, _)| code == 200))
                    .then_some(())
            },
        )
        .await;
        c
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cluster_file(&self) -> Option<ClusterFile> {
        let text = std::fs::read_to_string(self.path().join("cluster.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The nodes' process ids, in id order.
    fn pids(&self) -> Vec<u32> {
        self.cluster_file()
            .unwrap()
            .nodes
            .iter()
            .map(|n| n.pid)
            .collect()
    }

    fn endpoints(&self) -> Vec<String> {
        self.cluster_file()
            .unwrap()
            .nodes
            .into_iter()
            .map(|n| n.grpc)
            .collect()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(25).collect();
            out.push_str(&format!("---- {} ----\n", p.display()));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Runs `brisk rolling-restart --dev` with `extra` flags; returns (success, stdout, stderr).
    async fn roll(&self, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["--dev".to_string(), "--data-dir".to_string()];
        args.push(self.path().display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        self.rolling_restart(&args).await
    }

    async fn rolling_restart(&self, args: &[String]) -> (bool, String, String) {
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new(BIN)
                .arg("rolling-restart")
                .args(["--json"])
                .arg(self.path().join("roll.json"))
                .args(args)
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("rolling-restart finished within 120 s")
        .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        let nodes = self.cluster_file().map(|f| f.nodes).unwrap_or_default();
        // The processes this test started: the dev supervisor and its nodes.
        {
            use nix::sys::signal::{kill, Signal};
            use nix::unistd::Pid;
            let _ = kill(Pid::from_raw(self.dev.id() as i32), Signal::SIGKILL);
            for n in &nodes {
                let _ = kill(Pid::from_raw(n.pid as i32), Signal::SIGKILL);
            }
        }
        let _ = self.dev.wait();
    }
}

/// Writers and readers through the client library until told to stop.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(Vec<String>, Vec<String>)>>,
}

impl Load {
    fn start(client: Arc<brisk_client::Client>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..4 {
            let (client, stop) = (client.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let (mut acked, mut failed) = (Vec::new(), Vec::new());
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("roll/{w}/{n}");
                    n += 1;
                    match client.put(key.clone(), key.clone()).await {
                        Ok(_) => acked.push(key),
                        Err(e) => failed.push(format!("put {key}: {e:?}")),
                    }
                }
                (acked, failed)
            }));
        }
        for _ in 0..2 {
            let (client, stop) = (client.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut failed = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if let Err(e) = client
                        .get("roll/0/0", brisk_client::Read::Linearizable)
                        .await
                    {
                        failed.push(format!("get: {e:?}"));
                    }
                }
                (Vec::new(), failed)
            }));
        }
        Load { stop, tasks }
    }

    async fn finish(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let (mut acked, mut failed) = (Vec::new(), Vec::new());
        for t in self.tasks {
            let (a, f) = t.await.unwrap();
            acked.extend(a);
            failed.extend(f);
        }
        (acked, failed)
    }
}

fn client_of(c: &DevCluster) -> Arc<brisk_client::Client> {
    Arc::new(
        brisk_client::Client::builder(c.endpoints())
            .deadline(Duration::from_secs(10))
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_no_client_operation() {
    let c = DevCluster::start().await;
    let client = client_of(&c);
    let pids_before = c.pids();
    let load = Load::start(client.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health_timeout = 10.0;
    let started = std::time::Instant::now();
    let (ok, stdout, stderr) = c.roll(&["--health-timeout", "10"]).await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (acked, failed) = load.finish().await;
    assert!(
        ok,
        "rolling-restart failed\nstdout:\n{stdout}\nstderr:\n{stderr}\n{}",
        c.logs()
    );
    assert!(
        failed.is_empty(),
        "client operations failed during the roll: {failed:?}\n{stdout}"
    );
    assert!(acked.len() > 50, "too little load: {}", acked.len());
    assert!(
        took < Duration::from_secs_f64(3.0 * health_timeout),
        "the roll took {took:?}"
    );

    // Every node is a new process, restarted without a state-machine rebuild.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.path().join("roll.json")).unwrap()).unwrap();
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{report}");
    // The plan puts the leader (at the time of planning) last.
    let last_planned = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("3. node"))
        .unwrap_or_default();
    assert!(
        last_planned.contains("(leader; leadership moves away first)"),
        "{stdout}"
    );
    for n in nodes {
        assert_eq!(n["cold_start_outcome"], "skip", "{report}");
        assert!(n["ready_s"].as_f64().unwrap() < health_timeout, "{report}");
    }
    let pids_after = c.pids();
    for (b, a) in pids_before.iter().zip(&pids_after) {
        assert_ne!(b, a, "a node was not restarted");
    }

    // Every acknowledged write is readable.
    for k in &acked {
        let v = client
            .get(k.clone(), brisk_client::Read::Linearizable)
            .await
            .unwrap();
        assert_eq!(v.as_deref(), Some(k.as_bytes()), "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_start_stops_the_roll_and_leaves_the_rest_running() {
    let c = DevCluster::start().await;
    let before = c.cluster_file().unwrap();
    let (ok, stdout, stderr) = c
        .roll(&["--health-timeout", "5", "--serve-arg=--no-such-flag"])
        .await;
    assert!(
        !ok,
        "the roll succeeded with a node that cannot start\n{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.path().join("roll.json")).unwrap()).unwrap();
    let error = report["error"].as_str().unwrap();
    let first = report["untouched"].as_array().unwrap();
    assert_eq!(first.len(), 2, "{report}");
    assert!(error.contains("exited"), "{error}\n{}", c.logs());
    assert!(
        stderr.contains("rolling restart stopped at node"),
        "{stderr}"
    );
    // The failed node is the first in the plan; the other two were left as they were, and
    // they still serve.
    let after = c.cluster_file().unwrap();
    let failed_id: u64 = error
        .trim_start_matches("node ")
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut healthy = 0;
    for (b, a) in before.nodes.iter().zip(&after.nodes) {
        if a.id == failed_id {
            continue;
        }
        assert_eq!(b.pid, a.pid, "node {} was touched", a.id);
        if http_get(&a.http, "/readyz").is_some_and(|(code, _)| code == 200) {
            healthy += 1;
        }
    }
    assert_eq!(healthy, 2, "{}", c.logs());
    let client = client_of(&c);
    client.put("after", "the failed roll").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_and_a_failing_hook_leave_the_cluster_untouched() {
    let c = DevCluster::start().await;
    let before = c.pids();
    let (ok, stdout, stderr) = c.roll(&["--dry-run"]).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("brisk dev restarts it").count(),
        3,
        "{stdout}"
    );
    assert!(
        stdout.contains("(leader; leadership moves away first)"),
        "{stdout}"
    );

    let endpoints = c.endpoints().join(",");
    let args: Vec<String> = [
        "--endpoints",
        &endpoints,
        "--restart-cmd",
        "echo restarting {id} at {addr} >&2; exit 3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (ok, stdout, stderr) = c.rolling_restart(&args).await;
    assert!(!ok, "a failing hook passed\n{stdout}");
    assert!(
        stderr.contains("failed (exit status: 3): restarting"),
        "{stderr}"
    );
    assert!(stderr.contains("left untouched: node"), "{stderr}");
    assert_eq!(c.pids(), before, "a node was restarted");
    for n in c.cluster_file().unwrap().nodes {
        assert!(
            http_get(&n.http, "/readyz").is_some_and(|(code, _)| code == 200),
            "node {} is not ready",
            n.id
        );
    }
}

/// Whether `pid` runs (a zombie, exited but not yet reaped, does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_do_not_outlive_a_killed_brisk_dev() {
    let mut c = DevCluster::start().await;
    let pids = c.pids();
    assert!(pids.iter().all(|p| running(*p)));
    c.dev.kill().unwrap();
    c.dev.wait().unwrap();
    wait_for("the nodes to stop", Duration::from_secs(20), async || {
        pids.iter().all(|p| !running(*p)).then_some(())
    })
    .await;
}
