//! The two systems under comparison, each a fresh 3-member cluster of real processes on
//! loopback: brisk (`brisk serve`) and etcd 3.4 (`etcd` from Debian's etcd-server).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum System {
    Brisk,
    Etcd,
}

pub struct Member {
    pub client: String,
    pub peer: String,
    pub http: String,
    /// The Redis endpoint (brisk only; see [`Cluster::serve_redis`]).
    pub redis: Option<String>,
    pub dir: PathBuf,
    pub child: Option<Child>,
}

pub struct Cluster {
    pub system: System,
    pub members: Vec<Member>,
    /// Extra flags for every member's command line.
    pub extra_args: Vec<String>,
    exe: PathBuf,
    log_dir: PathBuf,
}

/// The etcd binary: `etcd` on PATH (Debian's etcd-server installs /usr/bin/etcd).
pub fn etcd_binary() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("etcd"))
            .find(|p| p.is_file())
    })
}

/// Installs Debian's etcd-server when etcd is missing (needs root and the package index).
pub fn ensure_etcd() -> Result<PathBuf> {
    if let Some(p) = etcd_binary() {
        return Ok(p);
    }
    eprintln!("bench compare: installing etcd-server (Debian)");
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "etcd-server"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install etcd-server")?;
    if !status.success() {
        bail!("apt-get install etcd-server failed; install etcd 3.4 or pass --brisk-only");
    }
    etcd_binary().context("etcd not on PATH after installing etcd-server")
}

impl Cluster {
    pub fn new(system: System, exe: &Path, work: &Path) -> Result<Self> {
        let base = work.join(system.to_string());
        if base.exists() {
            std::fs::remove_dir_all(&base)?;
        }
        std::fs::create_dir_all(&base)?;
        let mut members = Vec::new();
        for i in 1..=3 {
            members.push(Member {
                client: format!("127.0.0.1:{}", crate::dev::free_port()?),
                peer: format!("127.0.0.1:{}", crate::dev::free_port()?),
                http: format!("127.0.0.1:{}", crate::dev::free_port()?),
                redis: None,
                dir: base.join(format!("m{i}")),
                child: None,
            });
        }
        Ok(Cluster {
            system,
            members,
            extra_args: Vec::new(),
            exe: exe.to_path_buf(),
            log_dir: base,
        })
    }

    fn command(&self, i: usize) -> Command {
        let m = &self.members[i];
        let mut cmd = Command::new(&self.exe);
        match self.system {
            System::Brisk => {
                let bootstrap = brisk_testkit::members::bootstrap_list(
                    self.members
                        .iter()
                        .enumerate()
                        .map(|(j, m)| (j as u64 + 1, m.client.as_str(), m.peer.as_str())),
                );
                cmd.arg("serve")
                    .args(["--id", &(i + 1).to_string()])
                    .arg("--data-dir")
                    .arg(&m.dir)
                    .args(["--listen", &m.client, "--peer-listen", &m.peer])
                    .args(["--http", &m.http, "--bootstrap", &bootstrap])
                    // etcd's peers talk plaintext here too.
                    .arg("--peer-insecure")
                    .args(["--log", "warn"]);
                if let Some(r) = &m.redis {
                    cmd.args(["--redis", r]);
                }
            }
            System::Etcd => {
                let initial = self
                    .members
                    .iter()
                    .enumerate()
                    .map(|(j, m)| format!("e{}=http://{}", j + 1, m.peer))
                    .collect::<Vec<_>>()
                    .join(",");
                cmd.args(["--name", &format!("e{}", i + 1)])
                    .arg("--data-dir")
                    .arg(&m.dir)
                    .args(["--listen-client-urls", &format!("http://{}", m.client)])
                    .args(["--advertise-client-urls", &format!("http://{}", m.client)])
                    .args(["--listen-peer-urls", &format!("http://{}", m.peer)])
                    .args([
                        "--initial-advertise-peer-urls",
                        &format!("http://{}", m.peer),
                    ])
                    .args(["--initial-cluster", &initial])
                    .args(["--initial-cluster-state", "new"])
                    .args(["--snapshot-count", "10000"])
                    // The bulk workload overwrites gigabytes; etcd's default 2 GiB backend
                    // quota would stop it with NOSPACE (brisk has no quota).
                    .args(["--quota-backend-bytes", "17179869184"])
                    .args(["--log-level", "warn"]);
            }
        }
        cmd.args(&self.extra_args);
        cmd
    }

    /// Gives every brisk member a Redis endpoint (before [`start`](Self::start)).
    pub fn serve_redis(&mut self) -> Result<()> {
        for m in &mut self.members {
            m.redis = Some(format!("127.0.0.1:{}", crate::dev::free_port()?));
        }
        Ok(())
    }

    pub fn start(&mut self) -> Result<Instant> {
        let started = Instant::now();
        for i in 0..3 {
            if self.members[i].child.is_some() {
                continue;
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_dir.join(format!("m{}.log", i + 1)))?;
            let mut cmd = self.command(i);
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            self.members[i].child = Some(
                cmd.spawn()
                    .with_context(|| format!("starting {}", self.system))?,
            );
        }
        Ok(started)
    }

    pub fn kill9(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref().map(|c| c.id()))
            .collect()
    }

    pub fn data_dirs(&self) -> Vec<PathBuf> {
        self.members.iter().map(|m| m.dir.clone()).collect()
    }

    pub async fn channel(&self, i: usize) -> Result<Channel> {
        let ep = Endpoint::from_shared(format!("http://{}", self.members[i].client))?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true);
        Ok(ep.connect().await?)
    }

    /// Index of the leader's member, once every member names it and it serves a linearizable
    /// read and a write.
    pub async fn leader(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            // Settled: every member names the same leader (a member still campaigning names
            // none), so the first election of a new cluster is not followed by a second one
            // under the measurement (its clients would get TRYAGAIN / no leader).
            let mut named = Vec::with_capacity(self.members.len());
            for i in 0..self.members.len() {
                named.push(self.leader_via(i).await.ok().flatten());
            }
            if let Some(l) = named.first().copied().flatten() {
                if named.iter().all(|n| *n == Some(l))
                    && super::driver::linearizable_read_ok(self, l).await
                    && super::driver::write_ok(self, l).await
                {
                    return Ok(l);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} elected no serving leader within {timeout:?}",
                    self.system
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn leader_via(&self, i: usize) -> Result<Option<usize>> {
        let ch = self.channel(i).await?;
        match self.system {
            System::Brisk => {
                let s = brisk_proto::raft_admin_client::RaftAdminClient::new(ch)
                    .status(brisk_proto::StatusRequest {})
                    .await?
                    .into_inner();
                Ok(s.has_leader
                    .then(|| (s.leader_id as usize).saturating_sub(1)))
            }
            System::Etcd => {
                use brisk_proto::etcd::maintenance_client::MaintenanceClient;
                let s = MaintenanceClient::new(ch)
                    .status(brisk_proto::etcd::StatusRequest {})
                    .await?
                    .into_inner();
                if s.leader == 0 {
                    return Ok(None);
                }
                // The leader's member id: ask each member for its own.
                for j in 0..3 {
                    let ch = self.channel(j).await?;
                    let sj = MaintenanceClient::new(ch)
                        .status(brisk_proto::etcd::StatusRequest {})
                        .await?
                        .into_inner();
                    if sj.header.map(|h| h.member_id) == Some(s.leader) {
                        return Ok(Some(j));
                    }
                }
                Ok(None)
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// CPU seconds (user + system) `pids` have used so far, from /proc.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as f64;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|s| {
            // Fields after the command name (which may contain spaces) start after ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .sum()
}

/// Bytes under `dirs`.
pub fn disk_bytes(dirs: &[PathBuf]) -> u64 {
    fn walk(p: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if meta.is_dir() {
            std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0)
        } else {
            meta.len()
        }
    }
    dirs.iter().map(|d| walk(d)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(cpu_seconds(&[std::process::id()]) > 0.0);
        assert_eq!(
            cpu_seconds(&[u32::MAX]),
            0.0,
            "a missing process counts nothing"
        );
    }

    #[test]
    fn disk_bytes_counts_files_below() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/x"), [0u8; 1000]).unwrap();
        std::fs::write(d.path().join("y"), [0u8; 24]).unwrap();
        assert_eq!(disk_bytes(&[d.path().to_path_buf()]), 1024);
    }
}
