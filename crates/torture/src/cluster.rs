//! A 3-node brisk cluster of real `brisk serve` processes, each on its own loopback address
//! with its data directory on a filesystem that can lose power (brisk-lazyfs).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use brisk_lazyfs::{LazyFs, Mounted};
use brisk_proto::raft_admin_client::RaftAdminClient;
use nix::sys::signal::Signal;

pub struct Node {
    pub id: u64,
    pub ip: Ipv4Addr,
    pub grpc: String,
    pub peer: String,
    pub http: String,
    pub mount: Option<Mounted>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub paused: bool,
    /// Clock offset (ms) this node runs with.
    pub clock_offset_ms: i64,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    brisk: PathBuf,
    bootstrap: String,
    certs: PathBuf,
    /// `BRISK_TEST_BROKEN` for every node (test builds of brisk only).
    broken: Option<String>,
    /// Extra flags for every `brisk serve`.
    serve_args: Vec<String>,
}

/// A free TCP port on `ip` below the ephemeral range.
fn free_port(ip: Ipv4Addr) -> Result<u16> {
    brisk_testkit::ports::free_port_on(ip.into()).ok_or_else(|| anyhow!("no free port on {ip}"))
}

/// Sends `sig` to a child this harness spawned and has not reaped.
fn signal(child: &Child, sig: Signal) {
    brisk_testkit::process::signal(child.id(), sig);
}

impl Cluster {
    /// Plans three nodes under `work` (addresses 127.A.B.1-3, A.B from the process id, so
    /// harnesses running at once never share an address) and mounts their filesystems;
    /// `lazy` false keeps the data on the real disk.
    pub fn new(work: &Path, brisk: &Path, lazy: bool, broken: Option<String>) -> Result<Self> {
        std::fs::create_dir_all(work)?;
        let pid = std::process::id();
        let (a, b) = (((pid >> 8) & 0xff) as u8, (pid & 0xff) as u8);
        let mut nodes = Vec::new();
        for id in 1..=3u64 {
            let ip = Ipv4Addr::new(127, a.max(1), b, id as u8);
            let grpc = format!("{ip}:{}", free_port(ip)?);
            let peer = format!("{ip}:{}", free_port(ip)?);
            let http = format!("{ip}:{}", free_port(ip)?);
            let mnt = work.join(format!("node-{id}"));
            std::fs::create_dir_all(&mnt)?;
            let mount = if lazy {
                Some(
                    LazyFs::mount(&mnt)
                        .map_err(|e| anyhow!("mounting brisk-lazyfs at {}: {e}", mnt.display()))?,
                )
            } else {
                None
            };
            nodes.push(Node {
                id,
                ip,
                grpc,
                peer,
                http,
                mount,
                data_dir: mnt.join("data"),
                log: work.join(format!("node-{id}.log")),
                child: None,
                paused: false,
                clock_offset_ms: 0,
            });
        }
        let bootstrap = brisk_testkit::members::bootstrap_list(
            nodes
                .iter()
                .map(|n| (n.id, n.grpc.as_str(), n.peer.as_str())),
        );
        let certs = work.join("certs");
        let mut cmd = Command::new(brisk);
        cmd.args(["certs", "--name", "node", "--dir"]).arg(&certs);
        for n in &nodes {
            cmd.args(["--host", &n.ip.to_string()]);
        }
        let o = cmd.output().context("running brisk certs")?;
        if !o.status.success() {
            bail!("brisk certs: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(Cluster {
            nodes,
            brisk: brisk.to_path_buf(),
            bootstrap,
            certs,
            broken,
            serve_args: Vec::new(),
        })
    }

    /// Adds `args` to every node's `brisk serve` command line.
    pub fn with_serve_args(mut self, args: Vec<String>) -> Self {
        self.serve_args = args;
        self
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    pub fn ips(&self) -> Vec<Ipv4Addr> {
        self.nodes.iter().map(|n| n.ip).collect()
    }

    pub fn client_addrs(&self) -> Vec<(u64, String)> {
        self.nodes.iter().map(|n| (n.id, n.grpc.clone())).collect()
    }

    pub fn start(&mut self, id: u64) -> Result<()> {
        let brisk = self.brisk.clone();
        let bootstrap = self.bootstrap.clone();
        let certs = self.certs.clone();
        let broken = self.broken.clone();
        let serve_args = self.serve_args.clone();
        let n = self.node_mut(id);
        if n.child.is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(&n.data_dir)
            .with_context(|| format!("creating {}", n.data_dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)?;
        let mut cmd = Command::new(&brisk);
        cmd.arg("serve")
            .args(["--id", &n.id.to_string()])
            .arg("--data-dir")
            .arg(&n.data_dir)
            .args([
                "--listen",
                &n.grpc,
                "--peer-listen",
                &n.peer,
                "--http",
                &n.http,
            ])
            .args(["--bootstrap", &bootstrap])
            .arg("--peer-tls-cert")
            .arg(certs.join("node.pem"))
            .arg("--peer-tls-key")
            .arg(certs.join("node.key"))
            .arg("--peer-tls-ca")
            .arg(certs.join("ca.pem"))
            // Snapshots and log compaction happen within a run.
            .args(["--snapshot-every", "300", "--logs-to-keep", "100"])
            .args(&serve_args)
            .env("BRISK_TEST_CLOCK_OFFSET_MS", n.clock_offset_ms.to_string())
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(mode) = &broken {
            cmd.env("BRISK_TEST_BROKEN", mode);
            if mode == "unsynced-log" {
                cmd.args(["--fsm-sync", "nosync"]);
            }
        }
        n.child = Some(cmd.spawn().context("starting brisk serve")?);
        n.paused = false;
        Ok(())
    }

    pub fn start_all(&mut self) -> Result<()> {
        for id in 1..=3 {
            self.start(id)?;
        }
        Ok(())
    }

    pub fn running(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    /// `kill -9`.
    pub fn kill(&mut self, id: u64) {
        let n = self.node_mut(id);
        if let Some(mut c) = n.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        n.paused = false;
    }

    /// SIGTERM and wait for the exit (SIGKILL after `patience`). Whether it exited by itself.
    pub fn terminate(&mut self, id: u64, patience: Duration) -> bool {
        let n = self.node_mut(id);
        let Some(mut c) = n.child.take() else {
            return true;
        };
        if n.paused {
            signal(&c, Signal::SIGCONT);
            n.paused = false;
        }
        signal(&c, Signal::SIGTERM);
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pause(&mut self, id: u64) {
        let n = self.node_mut(id);
        if let Some(c) = &n.child {
            signal(c, Signal::SIGSTOP);
            n.paused = true;
        }
    }

    pub fn resume_all(&mut self) {
        for n in &mut self.nodes {
            if let (Some(c), true) = (&n.child, n.paused) {
                signal(c, Signal::SIGCONT);
                n.paused = false;
            }
        }
    }

    /// Kills node `id` and discards every change its filesystem had not made durable.
    pub fn power_cut(&mut self, id: u64) -> Result<u64> {
        self.kill(id);
        let n = self.node_mut(id);
        match &mut n.mount {
            Some(m) => {
                let report = m
                    .power_cut()
                    .map_err(|e| anyhow!("power cut of node {id}: {e}"))?;
                Ok(report.discarded_bytes)
            }
            None => Ok(0),
        }
    }

    /// A node that exited on its own (crashed, refused to start): its id and exit status.
    pub fn exited(&mut self) -> Option<(u64, String)> {
        for n in &mut self.nodes {
            if let Some(c) = &mut n.child {
                if let Ok(Some(status)) = c.try_wait() {
                    n.child = None;
                    return Some((n.id, status.to_string()));
                }
            }
        }
        None
    }

    pub fn ready(&self, id: u64) -> bool {
        brisk_testkit::http::ready(&self.node(id).http)
    }

    /// Waits until every running node is ready.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((id, status)) = self.exited() {
                bail!(
                    "node {id} exited ({status}); see {}",
                    self.node(id).log.display()
                );
            }
            let waiting: Vec<u64> = (1..=3)
                .filter(|&id| self.running(id) && !self.ready(id))
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nodes {waiting:?} not ready after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The leader as a running node reports it.
    pub async fn leader(&self) -> Option<u64> {
        for n in &self.nodes {
            if n.child.is_none() || n.paused {
                continue;
            }
            let ep = tonic::transport::Endpoint::from_shared(format!("http://{}", n.grpc)).ok()?;
            let Ok(Ok(ch)) = tokio::time::timeout(Duration::from_secs(1), ep.connect()).await
            else {
                continue;
            };
            let mut c = RaftAdminClient::new(ch);
            if let Ok(Ok(s)) = tokio::time::timeout(
                Duration::from_secs(1),
                c.status(brisk_proto::StatusRequest {}),
            )
            .await
            {
                let s = s.into_inner();
                if s.has_leader {
                    return Some(s.leader_id);
                }
            }
        }
        None
    }

    pub fn set_clock_offset(&mut self, id: u64, ms: i64) {
        self.node_mut(id).clock_offset_ms = ms;
    }

    /// Stops every node and unmounts the filesystems.
    pub fn shutdown(&mut self) {
        self.resume_all();
        for id in 1..=3 {
            self.kill(id);
        }
        for n in &mut self.nodes {
            if let Some(m) = n.mount.take() {
                let _ = m.unmount();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
