//! `brisk rolling-restart`: restarts a cluster's nodes one at a time, each gated on the
//! cluster's health before and on the node's readiness after, and stops at the first node
//! that misses its budget, leaving the rest untouched.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use brisk_client::{Client, Idempotence};
use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::{
    ConfigurationRequest, Member, StatusRequest, StatusResponse, TransferLeadershipRequest,
};
use brisk_raft::{LogIndex, NodeId};
use serde::Serialize;
use tokio::time::Instant;

use crate::cli::{connect_tls, ConnArgs};
use crate::dev::{self, RestartRequest};

#[derive(clap::Args, Debug)]
pub struct RollingArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Restart the nodes of a running `brisk dev` (the cluster in --data-dir).
    #[arg(long, conflicts_with = "restart_cmd")]
    pub dev: bool,
    /// With --dev: the directory holding `brisk dev`'s cluster.json.
    #[arg(long, default_value = "./brisk-data")]
    pub data_dir: PathBuf,
    /// With --dev: start this brisk binary instead of the one running.
    #[arg(long, requires = "dev")]
    pub binary: Option<PathBuf>,
    /// With --dev: add this flag to every restarted node's `brisk serve` (repeatable).
    #[arg(long = "serve-arg", requires = "dev", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// Shell command that restarts one node and returns once it was stopped and started
    /// again, e.g. 'systemctl restart brisk@{id}' or 'ssh {host} sudo systemctl restart
    /// brisk'. {id}, {host}, {addr}, {peer} and {http} are replaced.
    #[arg(long)]
    pub restart_cmd: Option<String>,
    /// Node ids in the order to restart them (default: followers by id, the leader last).
    #[arg(long, value_delimiter = ',')]
    pub order: Vec<u64>,
    /// Before each restart, every follower must have applied to within this many entries
    /// of the leader's commit index.
    #[arg(long, default_value_t = 1000)]
    pub max_log_lag: u64,
    /// How long the cluster may take to turn healthy before a restart, and a restarted node
    /// to turn ready after it (`10s`, `2m`; a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = crate::cli::parse_duration)]
    pub health_timeout: Duration,
    /// How long the restart hook (stop and start) may take.
    #[arg(long, default_value = "60s", value_parser = crate::cli::parse_duration)]
    pub hook_timeout: Duration,
    /// How long to wait after a node turned ready before the next one.
    #[arg(long, default_value = "0s", value_parser = crate::cli::parse_duration)]
    pub delay: Duration,
    /// Print the plan and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the per-node results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One node's restart, as reported in the final table.
#[derive(Serialize, Debug, Default, Clone)]
pub struct NodeReport {
    pub id: u64,
    pub was_leader: bool,
    /// Seconds from the start of the hook until the old process was gone (--dev) or the
    /// hook returned.
    pub stop_s: f64,
    /// Seconds from then until the new process reported ready.
    pub ready_s: f64,
    /// Leadership changes seen during this node's step.
    pub leader_moves: u32,
    pub cold_start_outcome: String,
    pub cold_start_reason: String,
}

#[derive(Serialize, Debug)]
struct Report {
    ok: bool,
    error: Option<String>,
    nodes: Vec<NodeReport>,
    untouched: Vec<u64>,
    total_s: f64,
}

/// How a node is restarted.
enum Hook {
    Dev {
        data_dir: PathBuf,
        request: RestartRequest,
    },
    Command(String),
}

pub async fn run(a: RollingArgs) -> Result<ExitCode> {
    let hook = match (&a.restart_cmd, a.dev) {
        (Some(cmd), false) => Hook::Command(cmd.clone()),
        (None, true) => Hook::Dev {
            data_dir: std::fs::canonicalize(&a.data_dir)
                .with_context(|| format!("no dev cluster in {}", a.data_dir.display()))?,
            request: RestartRequest {
                // brisk dev runs elsewhere: a relative path must not be resolved there.
                binary: match &a.binary {
                    Some(b) => Some(
                        std::fs::canonicalize(b)
                            .with_context(|| format!("--binary {}", b.display()))?,
                    ),
                    None => None,
                },
                extra_args: a.serve_args.clone(),
            },
        },
        _ => bail!("say how to restart a node: --restart-cmd 'COMMAND' or --dev"),
    };
    let endpoints = match &hook {
        Hook::Dev { data_dir, .. } if a.conn.endpoints.is_empty() => {
            dev::read_cluster_file(data_dir)?
                .nodes
                .into_iter()
                .map(|n| n.grpc)
                .collect()
        }
        _ => a.conn.resolved_endpoints(),
    };
    let tls = a.conn.tls()?;
    let client = Client::builder(endpoints)
        .tls(tls.clone())
        .deadline(a.conn.timeout)
        .build()?;
    let roll = Roll {
        client,
        tls,
        health_timeout: a.health_timeout,
        hook_timeout: a.hook_timeout,
        max_log_lag: a.max_log_lag,
    };

    let members = roll.members().await?;
    let leader = roll.leader_id().await?;
    let order = plan_order(&members, leader, &a.order)?;
    println!("rolling restart plan ({} nodes):", order.len());
    for (k, id) in order.iter().enumerate() {
        let m = member(&members, *id)?;
        let role = if Some(*id) == leader {
            "leader; leadership moves away first"
        } else if m.voter {
            "follower"
        } else {
            "learner"
        };
        println!(
            "  {}. node {id} at {} ({role}): {}",
            k + 1,
            m.addr,
            hook.describe(m)
        );
    }
    if a.dry_run {
        return Ok(ExitCode::SUCCESS);
    }

    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(order.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:20}] {pos}/{len} {msg}")
            .map_err(|e| anyhow!("progress bar template: {e}"))?
            .progress_chars("=> "),
    );
    let mut reports = Vec::new();
    let mut error = None;
    for (k, id) in order.iter().enumerate() {
        let m = member(&members, *id)?.clone();
        match roll.restart_one(&m, &hook, &bar).await {
            Ok(r) => {
                let line = format!(
                    "node {id}: stopped in {:.2} s, ready in {:.2} s, cold start {} ({})",
                    r.stop_s, r.ready_s, r.cold_start_outcome, r.cold_start_reason
                );
                say(&bar, line);
                reports.push(r);
                bar.inc(1);
            }
            Err(e) => {
                error = Some((k, format!("node {id}: {e:#}")));
                break;
            }
        }
        if !a.delay.is_zero() && k + 1 < order.len() {
            bar.set_message(format!("waiting {:?}", a.delay));
            tokio::time::sleep(a.delay).await;
        }
    }
    bar.finish_and_clear();

    let untouched: Vec<u64> = match &error {
        Some((k, _)) => order[k + 1..].to_vec(),
        None => Vec::new(),
    };
    print_table(&reports);
    let report = Report {
        ok: error.is_none(),
        error: error.as_ref().map(|(_, e)| e.clone()),
        nodes: reports,
        untouched: untouched.clone(),
        total_s: started.elapsed().as_secs_f64(),
    };
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    match error {
        None => {
            println!(
                "rolled {} nodes in {:.1} s",
                report.nodes.len(),
                report.total_s
            );
            Ok(ExitCode::SUCCESS)
        }
        Some((_, e)) => {
            eprintln!("brisk: rolling restart stopped at {e}");
            if !untouched.is_empty() {
                eprintln!(
                    "brisk: left untouched: {}",
                    untouched
                        .iter()
                        .map(|i| format!("node {i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints a progress line above the bar; without a terminal the bar is hidden, and so is
/// its println, so the line goes to stderr.
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Followers (by id) first, the leader last, unless `order` names the ids.
fn plan_order(members: &[Member], leader: Option<u64>, order: &[u64]) -> Result<Vec<u64>> {
    if !order.is_empty() {
        let mut seen = std::collections::HashSet::new();
        for id in order {
            member(members, *id)?;
            if !seen.insert(*id) {
                bail!("--order names node {id} twice");
            }
        }
        return Ok(order.to_vec());
    }
    let mut ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    ids.sort_by_key(|id| (Some(*id) == leader, *id));
    Ok(ids)
}

fn member(members: &[Member], id: u64) -> Result<&Member> {
    members
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| anyhow!("node {id} is not a member of the cluster"))
}

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

impl Hook {
    fn describe(&self, m: &Member) -> String {
        match self {
            Hook::Dev { request, .. } => {
                let binary = request
                    .binary
                    .as_ref()
                    .map_or("the same binary".to_string(), |b| b.display().to_string());
                format!("brisk dev restarts it with {binary}")
            }
            Hook::Command(cmd) => format!("runs `{}`", expand(cmd, m, "")),
        }
    }
}

/// The restart command with a member's placeholders filled in.
fn expand(cmd: &str, m: &Member, http: &str) -> String {
    cmd.replace("{id}", &m.id.to_string())
        .replace("{host}", host_of(&m.addr))
        .replace("{addr}", &m.addr)
        .replace("{peer}", &m.peer_addr)
        .replace("{http}", http)
}

struct Roll {
    client: Client,
    tls: Option<tonic::transport::ClientTlsConfig>,
    health_timeout: Duration,
    hook_timeout: Duration,
    max_log_lag: u64,
}

impl Roll {
    async fn members(&self) -> Result<Vec<Member>> {
        let c = self
            .client
            .call(Idempotence::Read, |ch| async move {
                RaftAdminClient::new(ch)
                    .configuration(ConfigurationRequest {})
                    .await
            })
            .await
            .context("reading the membership")?;
        Ok(c.members)
    }

    async fn leader_id(&self) -> Result<Option<u64>> {
        let s = self
            .client
            .call(Idempotence::Read, |ch| async move {
                RaftAdminClient::new(ch).status(StatusRequest {}).await
            })
            .await
            .context("reading the cluster's status")?;
        Ok(s.has_leader.then_some(s.leader_id))
    }

    /// One node's own status, asked of that node only (no retry elsewhere).
    async fn status_of(&self, addr: &str) -> Result<StatusResponse> {
        let ask = async {
            let ch = connect_tls(addr, self.tls.as_ref()).await?;
            let s = RaftAdminClient::new(ch).status(StatusRequest {}).await?;
            Ok::<_, anyhow::Error>(s.into_inner())
        };
        tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .map_err(|_| anyhow!("{addr} did not answer within 2 s"))?
    }

    /// Why the cluster is not healthy now (None when it is): every voter answers and is
    /// ready, a leader is known, and every follower has applied to within --max-log-lag
    /// entries of the leader's commit index.
    async fn unhealthy(&self, members: &[Member]) -> Option<String> {
        let mut views = Vec::new();
        for m in members.iter().filter(|m| m.voter) {
            match self.status_of(&m.addr).await {
                Ok(s) if !serves(&s) => return Some(format!("node {} is not ready", m.id)),
                Ok(s) => views.push(s),
                Err(e) => return Some(format!("node {} does not answer: {e:#}", m.id)),
            }
        }
        let Some(leader) = views.iter().find(|s| s.role == "leader") else {
            return Some("no leader".into());
        };
        for s in &views {
            let lag = leader.commit_index.saturating_sub(s.applied_index);
            if lag > self.max_log_lag {
                return Some(format!(
                    "node {} lags the leader by {lag} entries (--max-log-lag {})",
                    s.id, self.max_log_lag
                ));
            }
        }
        None
    }

    async fn restart_one(
        &self,
        m: &Member,
        hook: &Hook,
        bar: &indicatif::ProgressBar,
    ) -> Result<NodeReport> {
        let id = m.id;
        let mut report = NodeReport {
            id,
            ..Default::default()
        };
        // Health gate (the membership is re-read: an earlier step may have changed roles).
        bar.set_message(format!("node {id}: waiting for a healthy cluster"));
        let members = self.members().await?;
        let deadline = Instant::now() + self.health_timeout;
        while let Some(why) = self.unhealthy(&members).await {
            if Instant::now() >= deadline {
                bail!(
                    "the cluster was not healthy within {:.0} s before the restart: {why}",
                    self.health_timeout.as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let before = self.status_of(&m.addr).await?;
        let leader_before = self.leader_id().await?;

        // Leadership moves away first, to the most caught-up other voter.
        if leader_before == Some(id) {
            report.was_leader = true;
            bar.set_message(format!("node {id}: moving leadership away"));
            let mut best: Option<(NodeId, LogIndex)> = None;
            for o in members.iter().filter(|o| o.voter && o.id != id) {
                if let Ok(s) = self.status_of(&o.addr).await {
                    if best.is_none_or(|(_, a)| LogIndex(s.applied_index) > a) {
                        best = Some((o.id, LogIndex(s.applied_index)));
                    }
                }
            }
            if let Some((to, _)) = best {
                let moved = self
                    .client
                    .call(Idempotence::Write, |ch| async move {
                        RaftAdminClient::new(ch)
                            .transfer_leadership(TransferLeadershipRequest { to })
                            .await
                    })
                    .await;
                // Not fatal: the node's graceful stop hands leadership over itself.
                if let Err(e) = moved {
                    let line = format!(
                        "node {id}: moving leadership to node {to} failed ({e}); its graceful stop will hand it over"
                    );
                    say(bar, line);
                }
            }
        }

        bar.set_message(format!("node {id}: restarting"));
        let hook_started = Instant::now();
        self.run_hook(m, &before, hook).await?;
        report.stop_s = hook_started.elapsed().as_secs_f64();

        bar.set_message(format!("node {id}: waiting for it to turn ready"));
        let restarted = Instant::now();
        let deadline = restarted + self.health_timeout;
        let after = loop {
            if let Hook::Dev { data_dir, .. } = hook {
                if let Some(status) = dev_node_exited(data_dir, id) {
                    bail!("its new process exited ({status}); see its log");
                }
            }
            if let Ok(s) = self.status_of(&m.addr).await {
                // The readiness /readyz reports, read through Status (the HTTP address a
                // node binds may not be reachable from here); --dev also asks /readyz.
                let http_ready = match hook {
                    Hook::Dev { data_dir, .. } => match dev_node_http(data_dir, id) {
                        Some(http) => dev::http_status(&http, "/readyz").await == Some(200),
                        None => true,
                    },
                    Hook::Command(_) => true,
                };
                if s.incarnation != before.incarnation && serves(&s) && http_ready {
                    break s;
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "it did not turn ready within --health-timeout {:.0} s after the restart",
                    self.health_timeout.as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        report.ready_s = restarted.elapsed().as_secs_f64();
        report.cold_start_outcome = after.cold_start_outcome;
        report.cold_start_reason = after.cold_start_reason;
        let leader_after = self.leader_id().await?;
        report.leader_moves = u32::from(leader_after != leader_before);
        Ok(report)
    }

    /// Stops and starts the node; returns once the old process is gone (--dev) or the
    /// command returned successfully.
    async fn run_hook(&self, m: &Member, before: &StatusResponse, hook: &Hook) -> Result<()> {
        match hook {
            Hook::Command(cmd) => {
                let cmd = expand(cmd, m, &before.http_addr);
                let out = tokio::time::timeout(
                    self.hook_timeout,
                    tokio::process::Command::new("sh")
                        .args(["-c", &cmd])
                        .stdin(std::process::Stdio::null())
                        .output(),
                )
                .await
                .map_err(|_| {
                    anyhow!(
                        "the restart hook took longer than --hook-timeout {:.0} s",
                        self.hook_timeout.as_secs_f64()
                    )
                })?
                .with_context(|| format!("running `{cmd}`"))?;
                if !out.status.success() {
                    bail!(
                        "the restart hook `{cmd}` failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                Ok(())
            }
            Hook::Dev { data_dir, request } => {
                let cluster = dev::read_cluster_file(data_dir)?;
                let supervisor_alive = cluster.supervisor_pid.is_some_and(process_alive);
                if !supervisor_alive {
                    bail!(
                        "brisk dev is not running for {}, or its nodes are not all ready yet",
                        data_dir.display()
                    );
                }
                let node = cluster
                    .nodes
                    .iter()
                    .find(|n| n.id == m.id)
                    .ok_or_else(|| anyhow!("node {} is not in cluster.json", m.id))?;
                let path = dev::restart_request_path(data_dir, m.id);
                std::fs::write(&path, serde_json::to_string(request)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                dev::signal(node.pid, nix::sys::signal::Signal::SIGTERM);
                // brisk dev consumes the request once the old process has exited.
                let deadline = Instant::now() + self.hook_timeout;
                while path.exists() {
                    if Instant::now() >= deadline {
                        // The request stays: when the node does stop, brisk dev starts it.
                        bail!(
                            "the node did not stop within --hook-timeout {:.0} s (brisk dev starts it again once it stops)",
                            self.hook_timeout.as_secs_f64()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(())
            }
        }
    }
}

/// Whether a node serves, as its /readyz would say. A node of a version whose Status
/// carries no readiness (incarnation 0) is taken as serving once it knows a leader and has
/// applied what it knows to be committed.
fn serves(s: &StatusResponse) -> bool {
    if s.incarnation != 0 {
        return s.ready;
    }
    s.has_leader && s.applied_index >= s.commit_index
}

/// The HTTP address brisk dev recorded for node `id`.
fn dev_node_http(data_dir: &std::path::Path, id: u64) -> Option<String> {
    let cluster = dev::read_cluster_file(data_dir).ok()?;
    cluster
        .nodes
        .into_iter()
        .find(|n| n.id == id)
        .map(|n| n.http)
}

fn process_alive(pid: u32) -> bool {
    brisk_testkit::process::alive(pid)
}

/// Some(reason) once `brisk dev` has reaped the process it last started for node `id`.
fn dev_node_exited(data_dir: &std::path::Path, id: u64) -> Option<String> {
    let cluster = dev::read_cluster_file(data_dir).ok()?;
    let node = cluster.nodes.iter().find(|n| n.id == id)?;
    if node.pid == 0 {
        return Some("brisk dev could not start it".into());
    }
    (!process_alive(node.pid)).then(|| format!("pid {} is gone", node.pid))
}

fn print_table(reports: &[NodeReport]) {
    if reports.is_empty() {
        return;
    }
    println!(
        "{:<6} {:<8} {:>8} {:>9} {:>13}  COLD START",
        "NODE", "ROLE", "STOP_S", "READY_S", "LEADER_MOVES"
    );
    for r in reports {
        println!(
            "{:<6} {:<8} {:>8.2} {:>9.2} {:>13}  {} ({})",
            r.id,
            if r.was_leader { "leader" } else { "follower" },
            r.stop_s,
            r.ready_s,
            r.leader_moves,
            r.cold_start_outcome,
            r.cold_start_reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64) -> Member {
        Member {
            id,
            addr: format!("10.0.0.{id}:7001"),
            peer_addr: format!("10.0.0.{id}:9001"),
            voter: true,
        }
    }

    #[test]
    fn followers_go_first_and_the_leader_last() {
        let members = [m(3), m(1), m(2)];
        assert_eq!(plan_order(&members, Some(1), &[]).unwrap(), vec![2, 3, 1]);
        assert_eq!(plan_order(&members, None, &[]).unwrap(), vec![1, 2, 3]);
        assert_eq!(plan_order(&members, Some(1), &[1, 3]).unwrap(), vec![1, 3]);
        assert!(plan_order(&members, Some(1), &[4]).is_err());
        assert!(plan_order(&members, Some(1), &[2, 2]).is_err());
    }

    #[test]
    fn the_restart_command_names_the_node() {
        let cmd = "ssh {host} systemctl restart brisk@{id} # {addr} {peer} {http}";
        assert_eq!(
            expand(cmd, &m(2), "10.0.0.2:8001"),
            "ssh 10.0.0.2 systemctl restart brisk@2 # 10.0.0.2:7001 10.0.0.2:9001 10.0.0.2:8001"
        );
    }
}
