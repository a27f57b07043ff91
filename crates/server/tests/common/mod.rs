//! A harness for multi-process tests: real `brisk serve` processes on 127.0.0.1 ports chosen
//! at run time, real data directories, `kill -9`. Waits poll readiness signals with a
//! deadline; nothing sleeps to synchronise.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::*;
use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_brisk");

/// A port that is free now, chosen below Linux's ephemeral range (32768+): a port the kernel
/// hands out for `:0` can be reused for an outgoing connection before the node binds it.
/// Each test process walks its own stretch of 20000..32000 (seeded by its pid).
/// A port below the ephemeral range that this test process has not used before.
pub fn free_port() -> u16 {
    brisk_testkit::ports::free_port().expect("a free port below 32000")
}

pub struct Node {
    pub id: u64,
    pub grpc: String,
    pub http: String,
    /// Peer (Raft transport) address, served over mutual TLS with the cluster's certificates.
    pub peer: String,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
}

impl Node {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

pub struct Cluster {
    pub tmp: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub bootstrap: String,
    /// The cluster's CA (`ca.pem`) and one member certificate (`node.pem`, `node.key`),
    /// written by `brisk certs`.
    pub certs: PathBuf,
}

/// Writes a new CA and a member certificate `node` into `dir` with `brisk certs`.
pub fn make_certs(dir: &Path) {
    let o = Command::new(BIN)
        .args(["certs", "--name", "node", "--dir"])
        .arg(dir)
        .output()
        .expect("run brisk certs");
    assert!(
        o.status.success(),
        "brisk certs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// mTLS settings of a peer holding the certificate `name` from `dir`, trusting `dir`'s CA.
pub fn peer_tls(dir: &Path, name: &str) -> tonic::transport::ClientTlsConfig {
    let read = |f: String| std::fs::read(dir.join(f)).expect("read certificate file");
    tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(
            "ca.pem".into(),
        )))
        .identity(tonic::transport::Identity::from_pem(
            read(format!("{name}.pem")),
            read(format!("{name}.key")),
        ))
}

/// A Raft transport client for `addr`, over TLS when `tls` is set.
pub async fn transport_client(
    addr: &str,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> Result<brisk_proto::raft_transport_client::RaftTransportClient<Channel>, tonic::Status> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
        .connect_timeout(Duration::from_secs(2));
    if let Some(tls) = tls {
        ep = ep
            .tls_config(tls)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    }
    let ch = ep
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("{e:?}")))?;
    Ok(brisk_proto::raft_transport_client::RaftTransportClient::new(ch))
}

/// The value of the series `name` whose labels include `labels` in a Prometheus text page.
pub fn metric_value(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_string()))).ok()?;
    scrape.samples.iter().find_map(|s| {
        let matches = s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
        match (&s.value, matches) {
            (prometheus_parse::Value::Counter(v), true)
            | (prometheus_parse::Value::Gauge(v), true)
            | (prometheus_parse::Value::Untyped(v), true) => Some(*v),
            _ => None,
        }
    })
}

/// GET `path` on `addr`: the HTTP status code and body, or None if unreachable.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    brisk_testkit::http::get(addr, path)
}

/// Polls `f` every 20 ms until it returns Some or `timeout` passes.
pub async fn wait_for<T>(what: &str, timeout: Duration, f: impl AsyncFnMut() -> Option<T>) -> T {
    match brisk_testkit::wait::until(timeout, f).await {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

impl Cluster {
    /// Starts `n` nodes bootstrapped together; `extra` flags go to every node.
    pub fn start(n: u64, extra: &[&str]) -> Cluster {
        let mut c = Cluster::new(n, extra);
        for id in 1..=n {
            c.spawn(id);
        }
        c
    }

    /// Plans `n` nodes bootstrapped together (addresses, certificates) without starting
    /// them.
    pub fn new(n: u64, extra: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().expect("temp dir");
        let certs = tmp.path().join("certs");
        make_certs(&certs);
        let mut nodes = Vec::new();
        for id in 1..=n {
            nodes.push(Node {
                id,
                grpc: format!("127.0.0.1:{}", free_port()),
                http: format!("127.0.0.1:{}", free_port()),
                peer: format!("127.0.0.1:{}", free_port()),
                dir: tmp.path().join(format!("node-{id}")),
                log: tmp.path().join(format!("node-{id}.log")),
                args: extra.iter().map(|s| s.to_string()).collect(),
                env: Vec::new(),
                child: None,
            });
        }
        let bootstrap = brisk_testkit::members::bootstrap_list(
            nodes
                .iter()
                .map(|n| (n.id, n.grpc.as_str(), n.peer.as_str())),
        );
        Cluster {
            tmp,
            nodes,
            bootstrap,
            certs,
        }
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .expect("node id exists")
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("node id exists")
    }

    /// Starts (or restarts) node `id` with its original flags.
    pub fn spawn(&mut self, id: u64) {
        let bootstrap = self.bootstrap.clone();
        let certs = self.certs.clone();
        let n = self.node_mut(id);
        assert!(n.child.is_none(), "node {id} is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .expect("open node log");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .args(["--id", &n.id.to_string()])
            .arg("--data-dir")
            .arg(&n.dir)
            .args(["--listen", &n.grpc, "--http", &n.http])
            .args(["--peer-listen", &n.peer]);
        if !n.args.iter().any(|a| a == "--join") && !bootstrap.is_empty() {
            cmd.args(["--bootstrap", &bootstrap]);
        }
        // Mutual TLS with the cluster's certificate unless the test brings its own.
        if !n
            .args
            .iter()
            .any(|a| a == "--peer-insecure" || a == "--peer-tls-cert")
        {
            cmd.arg("--peer-tls-cert")
                .arg(certs.join("node.pem"))
                .arg("--peer-tls-key")
                .arg(certs.join("node.key"))
                .arg("--peer-tls-ca")
                .arg(certs.join("ca.pem"));
        }
        cmd.args(&n.args)
            .env("RUST_LOG", "info")
            .envs(n.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log);
        n.child = Some(cmd.spawn().expect("spawn brisk serve"));
    }

    /// Restarts node `id` with extra flags for this start only.
    pub fn spawn_with_args(&mut self, id: u64, extra: &[&str]) {
        let saved = self.node(id).args.clone();
        self.node_mut(id)
            .args
            .extend(extra.iter().map(|s| s.to_string()));
        self.spawn(id);
        self.node_mut(id).args = saved;
    }

    /// Restarts node `id` with extra environment variables (e.g. an armed crash point).
    pub fn spawn_with_env(&mut self, id: u64, env: &[(&str, &str)]) {
        self.node_mut(id).env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.spawn(id);
        self.node_mut(id).env.clear();
    }

    /// The cold-start decision node `id` recorded: (outcome, reason, applied index at the gate).
    pub fn cold_start(&self, id: u64) -> Option<(String, String, Option<u64>)> {
        let page = self.metrics(id);
        let scrape =
            prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_string()))).ok()?;
        let gate = scrape
            .samples
            .iter()
            .find(|s| s.metric == "brisk_cold_start_total")?;
        let label = |name: &str| gate.labels.get(name).map(str::to_string);
        // Absent when the store the node serves from never applied an entry.
        let applied = metric_value(&page, "brisk_cold_start_applied_index", &[]).map(|v| v as u64);
        Some((label("outcome")?, label("reason")?, applied))
    }

    /// Adds a node that is not part of the bootstrap list (it joins later).
    pub fn add_node(&mut self, args: &[&str]) -> u64 {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        self.nodes.push(Node {
            id,
            grpc: format!("127.0.0.1:{}", free_port()),
            http: format!("127.0.0.1:{}", free_port()),
            peer: format!("127.0.0.1:{}", free_port()),
            dir: self.tmp.path().join(format!("node-{id}")),
            log: self.tmp.path().join(format!("node-{id}.log")),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            child: None,
        });
        let saved = std::mem::take(&mut self.bootstrap);
        self.spawn(id);
        self.bootstrap = saved;
        id
    }

    /// A Raft transport client for node `id`'s peer listener, holding the cluster's member
    /// certificate.
    pub async fn peer_client(
        &self,
        id: u64,
    ) -> Result<brisk_proto::raft_transport_client::RaftTransportClient<Channel>, tonic::Status>
    {
        transport_client(&self.node(id).peer, Some(peer_tls(&self.certs, "node"))).await
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill9(&mut self, id: u64) {
        let n = self.node_mut(id);
        if let Some(mut c) = n.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to node `id` with kill(1).
    pub fn signal(&self, id: u64, signal: &str) {
        let pid = self
            .node(id)
            .child
            .as_ref()
            .expect("node is running")
            .id()
            .to_string();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Waits for node `id` to exit by itself (a crash point) and returns its exit status.
    pub async fn wait_exit(&mut self, id: u64, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.node_mut(id);
            let c = n.child.as_mut().expect("node is running");
            if let Some(status) = c.try_wait().expect("try_wait") {
                n.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| n.id)
            .collect()
    }

    pub fn endpoints(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| n.grpc.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn ready(&self, id: u64) -> bool {
        matches!(http_get(&self.node(id).http, "/readyz"), Some((200, _)))
    }

    pub async fn wait_ready(&self, ids: &[u64]) {
        for &id in ids {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let answer = http_get(&self.node(id).http, "/readyz");
                if matches!(answer, Some((200, _))) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {id} not ready after 30 s; last /readyz answer: {answer:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Waits until node `id` answers a status request (it serves, ready or not).
    pub async fn wait_answering(&self, id: u64) {
        wait_for(
            &format!("node {id} to answer"),
            Duration::from_secs(30),
            async || self.status(id).await,
        )
        .await;
    }

    pub async fn wait_all_ready(&self) {
        self.wait_ready(&self.running_ids()).await;
    }

    pub async fn admin(&self, id: u64) -> Option<RaftAdminClient<Channel>> {
        let ch = Channel::from_shared(format!("http://{}", self.node(id).grpc))
            .ok()?
            .connect_timeout(Duration::from_millis(300))
            .connect()
            .await
            .ok()?;
        Some(RaftAdminClient::new(ch))
    }

    pub async fn raw(&self, id: u64) -> RawKvClient<Channel> {
        let ch = Channel::from_shared(format!("http://{}", self.node(id).grpc))
            .expect("uri")
            .connect_lazy();
        RawKvClient::new(ch)
    }

    pub async fn status(&self, id: u64) -> Option<StatusResponse> {
        let mut c = self.admin(id).await?;
        c.status(StatusRequest {})
            .await
            .ok()
            .map(|r| r.into_inner())
    }

    /// Waits until a running node reports itself leader (and the others agree) and returns it.
    pub async fn leader(&self) -> u64 {
        wait_for("a leader", Duration::from_secs(20), async || {
            for id in self.running_ids() {
                if let Some(s) = self.status(id).await {
                    if s.role == "leader" {
                        return Some(id);
                    }
                }
            }
            None
        })
        .await
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) {
        wait_for(
            &format!("node {id} applied >= {index}"),
            Duration::from_secs(30),
            async || {
                let s = self.status(id).await?;
                (s.applied_index >= index).then_some(())
            },
        )
        .await;
    }

    /// Runs the CLI against the running nodes.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("BRISK_ENDPOINTS", self.endpoints())
            .output()
            .expect("run brisk cli")
    }

    pub fn log_text(&self, id: u64) -> String {
        std::fs::read_to_string(&self.node(id).log).unwrap_or_default()
    }

    pub fn metrics(&self, id: u64) -> String {
        http_get(&self.node(id).http, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// The value of the series `name` whose labels include `labels` on node `id`'s
    /// `/metrics` page, parsed as Prometheus text (a counter, gauge or untyped sample).
    pub fn metric(&self, id: u64, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric_value(&self.metrics(id), name, labels)
    }

    pub fn data_dir(&self, id: u64) -> &Path {
        &self.node(id).dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if !std::thread::panicking() {
            // A node that panicked (e.g. openraft's core on an unexpected log reversion) fails
            // the test even if the scenario's own checks passed.
            for n in &self.nodes {
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                if let Some(line) = log.lines().find(|l| l.contains("panicked at")) {
                    panic!("node {} panicked: {line}", n.id);
                }
            }
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                for (i, l) in log.lines().enumerate() {
                    if l.contains("panicked at") {
                        let next: Vec<&str> = log.lines().skip(i + 1).take(2).collect();
                        eprintln!("---- node {} panicked: {l} {next:?}", n.id);
                    }
                }
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- node {} log (last 40 lines) ----", n.id);
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// Puts `key=value` through node `via`, retrying while no leader is known. Returns the commit
/// timestamp once acknowledged, or None if the cluster never acknowledged it.
pub async fn put(client: &mut RawKvClient<Channel>, key: &str, value: &str) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client
            .raw_put(RawPutRequest {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
            })
            .await;
        match r {
            Ok(r) => return r.into_inner().result.map(|w| w.commit_ts),
            Err(s) if s.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => return None,
        }
    }
}

pub async fn get(
    client: &mut RawKvClient<Channel>,
    key: &str,
    stale: bool,
) -> Result<Option<String>, tonic::Status> {
    let r = client
        .raw_get(RawGetRequest {
            key: key.as_bytes().to_vec(),
            at_ts: 0,
            stale,
        })
        .await?
        .into_inner();
    Ok(r.found
        .then(|| String::from_utf8_lossy(&r.value).to_string()))
}

/// A hash of every key-value pair visible at the latest timestamp on node `id` (stale read,
/// so it reflects exactly that replica's state).
pub async fn digest(cluster: &Cluster, id: u64) -> Option<(u64, Vec<(String, String)>)> {
    let mut c = cluster.raw(id).await;
    let r = c
        .raw_scan(RawScanRequest {
            limit: 100_000,
            stale: true,
            ..Default::default()
        })
        .await
        .ok()?
        .into_inner();
    let pairs: Vec<(String, String)> = r
        .pairs
        .into_iter()
        .map(|p| {
            (
                String::from_utf8_lossy(&p.key).to_string(),
                String::from_utf8_lossy(&p.value).to_string(),
            )
        })
        .collect();
    let mut h: u64 = 1469598103934665603;
    for (k, v) in &pairs {
        for b in k.bytes().chain([0u8]).chain(v.bytes()).chain([1u8]) {
            h ^= b as u64;
            h = h.wrapping_mul(1099511628211);
        }
    }
    Some((h, pairs))
}

/// Node `id`'s state machine as stored: its applied index and a hash of every version,
/// tombstone and meta key, read from disk with a read-only open (also while it runs).
pub fn raw_state(c: &Cluster, id: u64) -> Option<(u64, u64)> {
    let store = brisk_storage::Store::open_read_only(&c.data_dir(id).join("sm")).ok()?;
    let applied = store.meta().ok()?.applied?.index.get();
    let mut h: u64 = 1469598103934665603;
    store
        .for_each_raw(|cf, k, v| {
            for part in [cf.as_bytes(), k, v] {
                for &b in part.iter().chain(&[0xff]) {
                    h ^= b as u64;
                    h = h.wrapping_mul(1099511628211);
                }
            }
        })
        .ok()?;
    Some((applied, h))
}

/// Waits until nodes `ids` stand at one applied index (lease renewals move it every second)
/// and checks that their stores then hold exactly the same versions, tombstones and meta
/// keys. Returns that index.
pub async fn assert_identical_replicas(c: &Cluster, ids: &[u64]) -> u64 {
    wait_for(
        "replicas at one applied index",
        Duration::from_secs(30),
        async || {
            let states: Vec<(u64, u64)> = ids
                .iter()
                .map(|&id| raw_state(c, id))
                .collect::<Option<_>>()?;
            let index = states[0].0;
            if states.iter().any(|s| s.0 != index) {
                return None;
            }
            assert!(
                states.iter().all(|s| s.1 == states[0].1),
                "replicas {ids:?} differ at applied index {index}: {states:?}"
            );
            Some(index)
        },
    )
    .await
}

/// Asks node `id` for its vote on behalf of a candidate with a higher term and a longer log
/// than anyone's: a node that may vote grants it (and adopts that term), so only call it on
/// a node expected to refuse.
pub async fn ask_vote(c: &Cluster, id: u64) -> Result<(), tonic::Status> {
    use brisk_raft::types::{log_id, TypeConfig, Vote};
    let req = openraft::raft::VoteRequest::<TypeConfig>::new(
        Vote::new(1_000, 99),
        Some(log_id(999, 99, 1_000_000)),
    );
    let mut client = c.peer_client(id).await?;
    client
        .vote(brisk_proto::RaftMessage {
            payload: brisk_raft::codec::encode(&req).expect("encode a vote request"),
            group: 0,
        })
        .await
        .map(|_| ())
}
