//! The Redis endpoint checked by real clients: the redis-py suite in tests/redis runs against a
//! real redis-server (so every expectation is Redis's own) and against a 3-node brisk cluster
//! (leader and follower endpoints), and a redis-py write loop survives a kill -9 of the leader.
//! scripts/setup.sh installs redis-server and the Python environment.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, Cluster};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python of the test environment scripts/setup.sh creates.
fn python() -> PathBuf {
    let venv = std::env::var_os("BRISK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/brisk-venv")
        });
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh (it creates the Python environment with redis-py and pytest)",
        py.display()
    );
    py
}

fn pytest(urls: &[String]) -> Output {
    Command::new(python())
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/redis",
        ])
        .current_dir(repo_root())
        .env("BRISK_REDIS_URLS", urls.join(","))
        .output()
        .expect("run pytest")
}

fn assert_passed(what: &str, o: &Output) {
    assert!(
        o.status.success(),
        "the Redis suite failed against {what}:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A real redis-server on a spare port, stopped on drop.
struct RealRedis {
    child: Child,
    port: u16,
}

impl RealRedis {
    fn start() -> RealRedis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "redis-server is missing: run scripts/setup.sh (Debian's redis-server package)",
            );
        RealRedis { child, port }
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `port` answers PING (or asks for the password).
async fn wait_redis(port: u16) {
    common::wait_for(
        "a Redis endpoint answering PING",
        Duration::from_secs(30),
        async || {
            let o = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .ok()?;
            // A password-protected endpoint answers too, asking for the password.
            (o.stdout.starts_with(b"PONG") || o.stdout.starts_with(b"NOAUTH")).then_some(())
        },
    )
    .await;
}

/// A cluster whose every node serves Redis; returns it and each node's Redis port.
async fn redis_cluster() -> (Cluster, Vec<u16>) {
    redis_cluster_with(&[]).await
}

/// [`redis_cluster`] with `extra` flags on every node.
async fn redis_cluster_with(extra: &[&str]) -> (Cluster, Vec<u16>) {
    let mut c = Cluster::new(3, extra);
    let mut ports = Vec::new();
    for n in &mut c.nodes {
        let port = free_port();
        n.args
            .extend(["--redis".to_string(), format!("127.0.0.1:{port}")]);
        ports.push(port);
    }
    for id in 1..=3 {
        c.spawn(id);
    }
    c.wait_all_ready().await;
    for &p in &ports {
        wait_redis(p).await;
    }
    (c, ports)
}

/// What `redis-cli -p port args...` prints, trimmed.
fn redis_cli(port: &str, args: &[&str]) -> String {
    let o = Command::new("redis-cli")
        .args(["-p", port])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_suite_passes_against_real_redis_and_against_brisk() {
    let real = RealRedis::start();
    wait_redis(real.port).await;
    assert_passed("redis-server", &pytest(&[url(real.port)]));
    drop(real);

    let (c, ports) = redis_cluster().await;
    let leader = c.leader().await;
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    let endpoints = [
        url(ports[leader as usize - 1]),
        url(ports[follower as usize - 1]),
    ];
    assert_passed("brisk (leader and follower)", &pytest(&endpoints));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_a_redis_write_loop_loses_no_acknowledged_write() {
    let (mut c, ports) = redis_cluster().await;
    let urls: Vec<String> = ports.iter().map(|&p| url(p)).collect();
    let loop_ = Command::new(python())
        .arg("tests/redis/write_loop.py")
        .args(["--urls", &urls.join(","), "--seconds", "8"])
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the write loop");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader = c.leader().await;
    c.kill9(leader);
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.spawn(leader);
    let o = loop_.wait_with_output().expect("write loop");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "the write loop found a lost write or read nothing back: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("summary line");
    assert!(summary["acked"].as_u64().unwrap_or(0) > 50, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_are_reclaimed_from_the_store() {
    let (c, ports) = redis_cluster().await;
    let leader = c.leader().await;
    let port = ports[leader as usize - 1].to_string();
    let cli = |args: &[&str]| redis_cli(&port, args);
    assert_eq!(cli(&["set", "short", "v", "px", "200"]), "OK");
    assert_eq!(cli(&["hset", "h", "f", "v"]), "1");
    assert_eq!(cli(&["pexpire", "h", "200"]), "1");
    assert_eq!(cli(&["set", "kept", "v"]), "OK");
    // The stored records themselves, read through the gRPC API: gone once swept.
    let record = |k: &str| [b"\0redis\0k".as_slice(), k.as_bytes()].concat();
    let mut raw = c.raw(leader).await;
    common::wait_for(
        "the sweep to delete expired records",
        Duration::from_secs(20),
        async || {
            let mut present = 0;
            for k in ["short", "h"] {
                let r = raw
                    .raw_get(brisk_proto::RawGetRequest {
                        key: record(k),
                        at_ts: 0,
                        stale: false,
                    })
                    .await
                    .ok()?
                    .into_inner();
                present += r.found as usize;
            }
            (present == 0).then_some(())
        },
    )
    .await;
    let kept = raw
        .raw_get(brisk_proto::RawGetRequest {
            key: record("kept"),
            at_ts: 0,
            stale: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(kept.found, "a key without expiry was swept");
    assert_eq!(
        c.metric(leader, "brisk_redis_expired_keys_reclaimed_total", &[]),
        Some(2.0),
        "{}",
        c.metrics(leader)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elements_of_a_replaced_collection_are_reclaimed_from_the_store() {
    let (c, ports) = redis_cluster().await;
    let leader = c.leader().await;
    let port = ports[leader as usize - 1].to_string();
    let cli = |args: &[&str]| redis_cli(&port, args);
    // Collections that SET, MSET and RENAME replace, and one that stays.
    assert_eq!(cli(&["hset", "gone", "f1", "v1", "f2", "v2"]), "2");
    assert_eq!(cli(&["rpush", "replaced", "a", "b"]), "2");
    assert_eq!(cli(&["rpush", "live", "a", "b", "c"]), "3");
    assert_eq!(cli(&["hset", "kept", "f", "v"]), "1");
    assert_eq!(cli(&["sadd", "target", "m1", "m2"]), "2");
    assert_eq!(cli(&["set", "gone", "now a string"]), "OK");
    assert_eq!(cli(&["mset", "replaced", "x", "other", "y"]), "OK");
    assert_eq!(cli(&["rename", "kept", "target"]), "OK");
    // The elements of one Redis key (every generation), read through the gRPC API.
    let elements = |k: &str| {
        let mut p = b"\0redis\0e".to_vec();
        p.extend_from_slice(&(k.len() as u32).to_be_bytes());
        p.extend_from_slice(k.as_bytes());
        p
    };
    let mut raw = c.raw(leader).await;
    let mut count = async |k: &str| -> Option<usize> {
        let start = elements(k);
        let mut end = start.clone();
        *end.last_mut()? += 1;
        let page = raw
            .raw_scan(brisk_proto::RawScanRequest {
                start,
                end,
                limit: 100,
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        Some(page.pairs.len())
    };
    common::wait_for(
        "the sweep to delete the elements no record names",
        Duration::from_secs(20),
        async || (count("gone").await? + count("replaced").await? == 0).then_some(()),
    )
    .await;
    // RENAME copied `kept`'s element to `target`, and dropped `target`'s old set and `kept`'s
    // own copy.
    common::wait_for(
        "only the renamed hash's element left under target",
        Duration::from_secs(20),
        async || (count("target").await? + count("kept").await? == 1).then_some(()),
    )
    .await;
    assert_eq!(count("live").await, Some(3), "a live list lost elements");
    assert_eq!(cli(&["lrange", "live", "0", "-1"]), "a\nb\nc");
    assert_eq!(cli(&["get", "replaced"]), "x");
    assert_eq!(cli(&["hgetall", "target"]), "f\nv");
    assert_eq!(cli(&["get", "gone"]), "now a string");
    assert!(
        c.metric(
            leader,
            "brisk_redis_orphaned_generations_reclaimed_total",
            &[]
        ) >= Some(2.0),
        "{}",
        c.metrics(leader)
    );
}

/// With a password file, a connection must AUTH (or HELLO ... AUTH) first, as with Redis's
/// requirepass: everything else is NOAUTH, a wrong password WRONGPASS, and nothing is
/// written before authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_guards_the_redis_endpoint() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("redis-password");
    std::fs::write(&file, "s3cret\n").expect("write the password file");
    let file = file.display().to_string();
    let (c, ports) = redis_cluster_with(&["--redis-password-file", &file]).await;
    let leader = c.leader().await;
    let port = ports[leader as usize - 1].to_string();
    let cli = |args: &[&str]| {
        let o = Command::new("redis-cli")
            .args(["-p", &port, "--no-auth-warning"])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(cli(&["set", "k", "v"]), "NOAUTH Authentication required.");
    assert_eq!(cli(&["ping"]), "NOAUTH Authentication required.");
    assert!(cli(&["auth", "wrong"]).starts_with("WRONGPASS"));
    assert!(cli(&["auth", "someone", "s3cret"]).starts_with("WRONGPASS"));
    assert!(cli(&["hello", "3"]).starts_with("NOAUTH HELLO must be called"));
    assert!(cli(&["hello", "3", "auth", "default", "nope"]).starts_with("WRONGPASS"));
    // Nothing got through before authenticating.
    assert_eq!(cli(&["-a", "s3cret", "exists", "k"]), "0");
    assert_eq!(cli(&["-a", "s3cret", "set", "k", "v"]), "OK");
    assert_eq!(cli(&["-a", "s3cret", "get", "k"]), "v");
    let hello = cli(&["hello", "3", "auth", "default", "s3cret"]);
    assert!(hello.contains("proto") && hello.contains("3"), "{hello}");
    // An unauthenticated connection cannot make the node buffer a large request.
    let big = "x".repeat(100 << 10);
    let o = cli(&["set", "big", &big]);
    assert!(o.contains("ERR") || o.is_empty(), "{o}");
    assert_eq!(cli(&["-a", "s3cret", "exists", "big"]), "0");
    // A follower asks for the password too.
    let follower = (1..=3u64).find(|&i| i != leader).expect("a follower");
    let o = Command::new("redis-cli")
        .args(["-p", &ports[follower as usize - 1].to_string(), "get", "k"])
        .output()
        .expect("redis-cli");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "NOAUTH Authentication required."
    );
}
