//! `brisk dev`: a local cluster of `brisk serve` processes on loopback.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
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
    /// ports 2000 higher, Redis ports 3000 higher). 0 picks free ports.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// The nodes' apply durability: periodic (default), sync or nosync.
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
    /// Redis protocol address; empty in a cluster.json written by an older version.
    #[serde(default)]
    pub redis: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ClusterFile {
    pub nodes: Vec<DevNode>,
    /// The `brisk dev` process that supervises the nodes, restarting one on request. Absent
    /// until every node is ready (a node that stops during start-up ends `brisk dev`, so no
    /// restart may be asked for before), and in older files.
    #[serde(default)]
    pub supervisor_pid: Option<u32>,
}

/// Asks `brisk dev` to start a node again once it stops: written next to cluster.json by
/// `brisk rolling-restart --dev` before it stops the node. A node that stops without one is
/// left stopped.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct RestartRequest {
    /// Start this binary instead of the one `brisk dev` runs.
    pub binary: Option<PathBuf>,
    /// Flags added to the node's `brisk serve` command line for this start.
    pub extra_args: Vec<String>,
}

/// Where the restart request of node `id` is written.
pub fn restart_request_path(data_dir: &Path, id: u64) -> PathBuf {
    data_dir.join(format!("restart-node-{id}.json"))
}

/// Reads cluster.json under `data_dir`.
pub fn read_cluster_file(data_dir: &Path) -> Result<ClusterFile> {
    let path = data_dir.join("cluster.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A free port below the ephemeral range (a port from `:0` can be taken by an outgoing
/// connection before the node binds it).
pub fn free_port() -> Result<u16> {
    brisk_testkit::ports::free_port().context("no free port below 32000")
}

/// One node's addresses.
struct Planned {
    id: u64,
    grpc: String,
    http: String,
    peer: String,
    redis: String,
}

/// The address `offset` ports above `grpc`: the peer (2000) or Redis (3000) port of a node
/// whose cluster.json predates them.
fn peer_port_of(grpc: &str, offset: u16) -> Result<String> {
    let (host, port) = grpc
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("bad address {grpc} in cluster.json"))?;
    let port: u16 = port.parse()?;
    let peer = port
        .checked_add(offset)
        .ok_or_else(|| anyhow::anyhow!("no port {offset} above {grpc}"))?;
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
                            peer_port_of(&n.grpc, 2000)?
                        } else {
                            n.peer
                        };
                        let redis = if n.redis.is_empty() {
                            peer_port_of(&n.grpc, 3000)?
                        } else {
                            n.redis
                        };
                        Ok(Planned {
                            id: n.id,
                            grpc: n.grpc,
                            http: n.http,
                            peer,
                            redis,
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
        let (g, h, p, r) = if args.base_port == 0 {
            (free_port()?, free_port()?, free_port()?, free_port()?)
        } else {
            let g = args.base_port as u64 + i - 1;
            let r = g + 3000;
            if r > u16::MAX as u64 {
                bail!("--base-port too high");
            }
            (g as u16, (g + 1000) as u16, (g + 2000) as u16, r as u16)
        };
        out.push(Planned {
            id: i,
            grpc: format!("127.0.0.1:{g}"),
            http: format!("127.0.0.1:{h}"),
            peer: format!("127.0.0.1:{p}"),
            redis: format!("127.0.0.1:{r}"),
        });
    }
    Ok(out)
}

/// GET `path` on a node's HTTP address: the status code, or None when unreachable or slow.
pub async fn http_status(addr: &str, path: &str) -> Option<u16> {
    brisk_testkit::http::status_async(addr, path).await
}

/// Sends `sig` to process `pid`; a process that is already gone is not an error here.
pub fn signal(pid: u32, sig: Signal) {
    brisk_testkit::process::signal(pid, sig);
}

pub async fn run(args: DevArgs) -> Result<ExitCode> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    let plan = plan(&args)?;
    let bootstrap = brisk_testkit::members::bootstrap_list(
        plan.iter()
            .map(|n| (n.id, n.grpc.as_str(), n.peer.as_str())),
    );
    // Mutual TLS between the nodes, with a throw-away CA kept next to the data.
    let certs = data_dir.join("certs");
    if !args.peer_insecure && !certs.join(crate::tls::CA_CERT).exists() {
        let names: Vec<String> = plan.iter().map(|n| format!("node-{}", n.id)).collect();
        crate::tls::generate(&certs, &names, &crate::tls::default_hosts())
            .context("generating the dev cluster's certificates")?;
    }
    let exe = std::env::current_exe().context("locating the brisk binary")?;
    let mut children: Vec<Option<Child>> = Vec::new();
    let mut commands: Vec<Vec<std::ffi::OsString>> = Vec::new();
    let mut nodes = Vec::new();
    for Planned {
        id,
        grpc,
        http,
        peer,
        redis,
    } in &plan
    {
        let dir = data_dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir)?;
        let log = data_dir.join(format!("node-{id}.log"));
        let mut argv: Vec<std::ffi::OsString> =
            vec!["serve".into(), "--id".into(), id.to_string().into()];
        argv.extend(["--data-dir".into(), dir.clone().into_os_string()]);
        for a in [
            "--listen",
            grpc,
            "--http",
            http,
            "--bootstrap",
            &bootstrap,
            "--peer-listen",
            peer,
            "--redis",
            redis,
        ] {
            argv.push(a.into());
        }
        if args.peer_insecure {
            argv.push("--peer-insecure".into());
        } else {
            let name = format!("node-{id}");
            argv.push("--peer-tls-cert".into());
            argv.push(crate::tls::cert_path(&certs, &name).into_os_string());
            argv.push("--peer-tls-key".into());
            argv.push(crate::tls::key_path(&certs, &name).into_os_string());
            argv.push("--peer-tls-ca".into());
            argv.push(certs.join(crate::tls::CA_CERT).into_os_string());
        }
        if let Some(s) = args.fsm_sync {
            argv.push("--fsm-sync".into());
            argv.push(s.as_str().into());
        }
        argv.extend(args.extra.iter().map(Into::into));
        let child =
            spawn_node(&exe, &argv, &[], &log).with_context(|| format!("starting node {id}"))?;
        nodes.push(DevNode {
            id: *id,
            pid: child.id().unwrap_or(0),
            grpc: grpc.clone(),
            http: http.clone(),
            peer: peer.clone(),
            redis: redis.clone(),
            data_dir: dir,
            log,
        });
        children.push(Some(child));
        commands.push(argv);
    }
    let mut cluster = ClusterFile {
        nodes,
        supervisor_pid: None,
    };
    let text = serde_json::to_string_pretty(&cluster)?;
    write_file(&data_dir.join("cluster.json"), &text)?;
    println!("{text}");

    // Wait for every node to turn ready (or one to die).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<&DevNode> = cluster.nodes.iter().collect();
    while !pending.is_empty() {
        for c in children.iter_mut().flatten() {
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
    cluster.supervisor_pid = Some(std::process::id());
    write_file(
        &data_dir.join("cluster.json"),
        &serde_json::to_string_pretty(&cluster)?,
    )?;
    let endpoints: Vec<_> = cluster.nodes.iter().map(|n| n.grpc.clone()).collect();
    eprintln!(
        "brisk dev: {} nodes ready. Try: brisk put hello world --endpoints {}   (Ctrl-C stops the cluster)",
        cluster.nodes.len(),
        endpoints.join(",")
    );

    // Supervise until Ctrl-C / SIGTERM: a node that stops with a restart request waiting is
    // started again; any other stop is reported and the node left down, as a real cluster
    // would keep running without it.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        for i in 0..children.len() {
            let Some(status) = children[i]
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            else {
                continue;
            };
            children[i] = None;
            let node = &mut cluster.nodes[i];
            let request_path = restart_request_path(&data_dir, node.id);
            // The request file goes last, after cluster.json names the new process:
            // `brisk rolling-restart` reads the new pid once the file is gone.
            let request = std::fs::read_to_string(&request_path).ok();
            let Some(request) = request else {
                eprintln!(
                    "brisk dev: node {} exited ({status}); the other nodes keep running",
                    node.id
                );
                continue;
            };
            let request: RestartRequest = match serde_json::from_str(&request) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("brisk dev: node {} stopped; its restart request is unreadable ({e}); left stopped", node.id);
                    let _ = std::fs::remove_file(&request_path);
                    continue;
                }
            };
            let binary = request.binary.as_deref().unwrap_or(&exe);
            match spawn_node(binary, &commands[i], &request.extra_args, &node.log) {
                Ok(child) => {
                    node.pid = child.id().unwrap_or(0);
                    children[i] = Some(child);
                    eprintln!("brisk dev: node {} restarted (pid {})", node.id, node.pid);
                }
                Err(e) => {
                    node.pid = 0;
                    eprintln!(
                        "brisk dev: node {} could not be started again: {e:#}",
                        node.id
                    )
                }
            }
            write_file(
                &data_dir.join("cluster.json"),
                &serde_json::to_string_pretty(&cluster)?,
            )?;
            let _ = std::fs::remove_file(&request_path);
        }
        if children.iter().all(Option::is_none) {
            eprintln!("brisk dev: every node has stopped");
            return Ok(ExitCode::FAILURE);
        }
    }
    // Only the children still running: a stopped node's pid may belong to another process.
    for c in children.iter().flatten() {
        if let Some(pid) = c.id() {
            signal(pid, Signal::SIGTERM);
        }
    }
    for c in children.iter_mut().flatten() {
        if tokio::time::timeout(Duration::from_secs(10), c.wait())
            .await
            .is_err()
        {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
    eprintln!("brisk dev: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts `brisk serve` as `binary argv extra`, its output appended to `log`.
fn spawn_node(
    binary: &Path,
    argv: &[std::ffi::OsString],
    extra: &[String],
    log: &Path,
) -> Result<Child> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut cmd = Command::new(binary);
    cmd.args(argv)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true);
    // A node must not outlive brisk dev, however it ends (SIGKILL runs no drop): the kernel
    // sends it SIGTERM, its graceful stop, when the thread that started it (this one, which
    // lives as long as brisk dev) is gone.
    brisk_testkit::process::die_with_parent(cmd.as_std_mut(), Signal::SIGTERM);
    let child = cmd
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    Ok(child)
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
