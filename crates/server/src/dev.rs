//! `brisk dev`: a local cluster of `brisk serve` processes on loopback.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::config::FsmSync;

#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Parent directory of the nodes' data directories; cluster.json is written here.
    #[arg(long, default_value = "./brisk-data")]
    pub data_dir: PathBuf,
    /// First gRPC port (nodes use consecutive ports; HTTP ports start 1000 higher, peer
    /// ports 2000 higher). 0 picks free ports.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    #[arg(long, value_enum)]
    pub fsm_sync: Option<FsmSync>,
    /// Run the peer transport in plaintext instead of mutual TLS with throw-away
    /// certificates.
    #[arg(long)]
    pub peer_insecure: bool,
    /// Extra flags for every `brisk serve`, after `--`.
    #[arg(last = true)]
    pub extra: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DevNode {
    pub id: u64,
    pub pid: u32,
    pub grpc: String,
    pub http: String,
    /// Peer (Raft transport) address; empty in a cluster.json written by an older version.
    #[serde(default)]
    pub peer: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ClusterFile {
    pub nodes: Vec<DevNode>,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One node's addresses.
struct Planned {
    id: u64,
    grpc: String,
    http: String,
    peer: String,
}

/// The peer port of a node whose cluster.json predates peer ports.
fn peer_port_of(grpc: &str) -> Result<String> {
    let (host, port) = grpc
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("bad address {grpc} in cluster.json"))?;
    let port: u16 = port.parse()?;
    let peer = port
        .checked_add(2000)
        .ok_or_else(|| anyhow::anyhow!("no peer port for {grpc}"))?;
    Ok(format!("{host}:{peer}"))
}

/// Reuses the previous run's addresses (Raft membership stores them), or picks new ones.
fn plan(args: &DevArgs) -> Result<Vec<Planned>> {
    let file = args.data_dir.join("cluster.json");
    if let Ok(text) = std::fs::read_to_string(&file) {
        if let Ok(prev) = serde_json::from_str::<ClusterFile>(&text) {
            if prev.nodes.len() as u64 == args.nodes {
                return prev
                    .nodes
                    .into_iter()
                    .map(|n| {
                        let peer = if n.peer.is_empty() {
                            peer_port_of(&n.grpc)?
                        } else {
                            n.peer
                        };
                        Ok(Planned {
                            id: n.id,
                            grpc: n.grpc,
                            http: n.http,
                            peer,
                        })
                    })
                    .collect();
            }
            bail!(
                "{} describes a {}-node cluster; use --nodes {} or another --data-dir",
                file.display(),
                prev.nodes.len(),
                prev.nodes.len()
            );
        }
    }
    let mut out = Vec::new();
    for i in 1..=args.nodes {
        let (g, h, p) = if args.base_port == 0 {
            (free_port()?, free_port()?, free_port()?)
        } else {
            let g = args.base_port as u64 + i - 1;
            let p = g + 2000;
            if p > u16::MAX as u64 {
                bail!("--base-port too high");
            }
            (g as u16, (g + 1000) as u16, p as u16)
        };
        out.push(Planned {
            id: i,
            grpc: format!("127.0.0.1:{g}"),
            http: format!("127.0.0.1:{h}"),
            peer: format!("127.0.0.1:{p}"),
        });
    }
    Ok(out)
}

/// Minimal HTTP GET returning the status code (for /readyz; avoids an HTTP client crate).
pub async fn http_status(addr: &str, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .ok()?
    .ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid of a child we spawned; no memory is shared.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

pub async fn run(args: DevArgs) -> Result<ExitCode> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    let plan = plan(&args)?;
    let bootstrap = plan
        .iter()
        .map(|n| format!("{}={}/{}", n.id, n.grpc, n.peer))
        .collect::<Vec<_>>()
        .join(",");
    // Mutual TLS between the nodes, with a throw-away CA kept next to the data.
    let certs = data_dir.join("certs");
    if !args.peer_insecure && !certs.join(crate::tls::CA_CERT).exists() {
        let names: Vec<String> = plan.iter().map(|n| format!("node-{}", n.id)).collect();
        crate::tls::generate(&certs, &names, &crate::tls::default_hosts())
            .context("generating the dev cluster's certificates")?;
    }
    let exe = std::env::current_exe().context("locating the brisk binary")?;
    let mut children: Vec<Child> = Vec::new();
    let mut nodes = Vec::new();
    for Planned {
        id,
        grpc,
        http,
        peer,
    } in &plan
    {
        let dir = data_dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir)?;
        let log = data_dir.join(format!("node-{id}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(&exe);
        cmd.arg("serve")
            .args(["--id", &id.to_string()])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", grpc, "--http", http, "--bootstrap", &bootstrap])
            .args(["--peer-listen", peer]);
        if args.peer_insecure {
            cmd.arg("--peer-insecure");
        } else {
            let name = format!("node-{id}");
            cmd.arg("--peer-tls-cert")
                .arg(crate::tls::cert_path(&certs, &name))
                .arg("--peer-tls-key")
                .arg(crate::tls::key_path(&certs, &name))
                .arg("--peer-tls-ca")
                .arg(certs.join(crate::tls::CA_CERT));
        }
        if let Some(s) = args.fsm_sync {
            cmd.args([
                "--fsm-sync",
                if s == FsmSync::Sync { "sync" } else { "nosync" },
            ]);
        }
        cmd.args(&args.extra)
            .stdin(std::process::Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting node {id}"))?;
        let pid = child.id().unwrap_or(0);
        nodes.push(DevNode {
            id: *id,
            pid,
            grpc: grpc.clone(),
            http: http.clone(),
            peer: peer.clone(),
            data_dir: dir,
            log,
        });
        children.push(child);
    }
    let cluster = ClusterFile { nodes };
    let text = serde_json::to_string_pretty(&cluster)?;
    write_file(&data_dir.join("cluster.json"), &text)?;
    println!("{text}");

    // Wait for every node to turn ready (or one to die).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<&DevNode> = cluster.nodes.iter().collect();
    while !pending.is_empty() {
        for c in children.iter_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                bail!(
                    "a node exited during start-up ({status}); see the node logs in {}",
                    data_dir.display()
                );
            }
        }
        let mut still = Vec::new();
        for n in pending {
            if http_status(&n.http, "/readyz").await != Some(200) {
                still.push(n);
            }
        }
        pending = still;
        if tokio::time::Instant::now() > deadline {
            bail!(
                "cluster not ready after 60 s; see the node logs in {}",
                data_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let endpoints: Vec<_> = cluster.nodes.iter().map(|n| n.grpc.clone()).collect();
    eprintln!(
        "brisk dev: {} nodes ready. Try: brisk put hello world --endpoints {}   (Ctrl-C stops the cluster)",
        cluster.nodes.len(),
        endpoints.join(",")
    );

    // Run until Ctrl-C / SIGTERM or until a node dies.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let exited = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break None,
            _ = term.recv() => break None,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(i) = children.iter_mut().position(|c| matches!(c.try_wait(), Ok(Some(_)))) {
                    break Some(cluster.nodes[i].id);
                }
            }
        }
    };
    for n in &cluster.nodes {
        signal(n.pid, libc::SIGTERM);
    }
    for c in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), c.wait())
            .await
            .is_err()
        {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
    match exited {
        Some(id) => {
            eprintln!("brisk dev: node {id} exited; stopped the cluster");
            Ok(ExitCode::FAILURE)
        }
        None => {
            eprintln!("brisk dev: stopped");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
