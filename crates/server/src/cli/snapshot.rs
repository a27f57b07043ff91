//! `brisk snapshot`: builds a snapshot on the node reached, or on every member with `--all`.

use std::io::{self, Write};

use anyhow::{Context, Result};
use brisk_client::Idempotence;
use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::{ConfigurationRequest, SnapshotRequest};
use serde::Serialize;

use super::output::{Format, Report};
use super::{call, connect_tls, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// Snapshot every member, not just the node reached; a member that fails is named on
    /// stderr and the others are still asked.
    #[arg(long)]
    pub all: bool,
}

/// A snapshot built on the node reached: `{"index": 7, "term": 1}`.
#[derive(Serialize, Debug)]
pub struct Built {
    /// The last log index the snapshot covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
}

impl Report for Built {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "snapshot index={} term={}", self.index, self.term)
    }
}

/// The snapshots of `--all`: `{"snapshots": [{"addr": ..., "index": 7, "term": 1}],
/// "failed": ["127.0.0.1:7003"]}` (why each failed is on stderr).
#[derive(Serialize, Debug)]
pub struct BuiltOnMembers {
    pub snapshots: Vec<BuiltOn>,
    /// The members that did not build one.
    pub failed: Vec<String>,
}

#[derive(Serialize, Debug)]
pub struct BuiltOn {
    /// The member's client address.
    pub addr: String,
    pub index: u64,
    pub term: u64,
}

impl Report for BuiltOnMembers {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for s in &self.snapshots {
            writeln!(
                out,
                "{}: snapshot index={} term={}",
                s.addr, s.index, s.term
            )?;
        }
        Ok(())
    }
}

pub async fn run(a: SnapshotArgs) -> Result<Exit> {
    let members: Vec<String> = if a.all {
        let c = call(&a.conn, Idempotence::Read, |ch| async move {
            RaftAdminClient::new(ch)
                .configuration(ConfigurationRequest {})
                .await
        })
        .await?;
        c.members.into_iter().map(|m| m.addr).collect()
    } else {
        vec![]
    };
    if members.is_empty() {
        let r = call(&a.conn, Idempotence::Write, |ch| async move {
            RaftAdminClient::new(ch).snapshot(SnapshotRequest {}).await
        })
        .await?;
        a.format.print(&Built {
            index: r.index,
            term: r.term,
        })?;
        return Ok(Exit::Success);
    }
    let tls = a.conn.tls()?;
    let mut report = BuiltOnMembers {
        snapshots: Vec::new(),
        failed: Vec::new(),
    };
    let mut worst_failure = None;
    for addr in members {
        let result = async {
            let ch = connect_tls(&addr, tls.as_ref())
                .await
                .context("connecting")?;
            let r = RaftAdminClient::new(ch)
                .snapshot(SnapshotRequest {})
                .await?
                .into_inner();
            Ok::<_, anyhow::Error>(r)
        }
        .await;
        match result {
            Ok(r) => report.snapshots.push(BuiltOn {
                addr,
                index: r.index,
                term: r.term,
            }),
            Err(e) => {
                let why = match e.downcast_ref::<tonic::Status>() {
                    Some(s) => format!("{} ({:?})", s.message(), s.code()),
                    None => format!("{e:#}"),
                };
                eprintln!("brisk: {addr}: snapshot failed: {why}");
                let code = Exit::of(&e);
                // The code of the worst failure: a call whose outcome is unknown (a snapshot
                // may have been built) over a refusal over an unreachable member.
                let rank = |c: Exit| match c {
                    Exit::Indeterminate => 3,
                    Exit::Failed => 2,
                    _ => 1,
                };
                if worst_failure.is_none_or(|f| rank(code) > rank(f)) {
                    worst_failure = Some(code);
                }
                report.failed.push(addr);
            }
        }
    }
    // The members that built one are printed even when others failed (they did build it).
    Ok(a.format
        .print_done(&report, worst_failure.unwrap_or(Exit::Success)))
}
