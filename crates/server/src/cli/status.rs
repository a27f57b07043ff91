//! `brisk status`: the Raft state of the node reached.

use std::io::{self, Write};

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::StatusRequest;
use serde::Serialize;

use super::members::Member;
use super::output::{Format, Report};
use super::{call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
}

/// A node's view of the cluster.
#[derive(Serialize, Debug)]
pub struct Status {
    pub id: u64,
    /// leader, follower, candidate or learner.
    pub role: String,
    /// Whether the node serves (what its /readyz reports).
    pub ready: bool,
    /// The leader it knows of, if any.
    pub leader_id: Option<u64>,
    pub leader_addr: String,
    pub leader_peer_addr: String,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    pub members: Vec<Member>,
}

impl Report for Status {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "id:             {}", self.id)?;
        writeln!(out, "role:           {}", self.role)?;
        match self.leader_id {
            Some(id) => writeln!(out, "leader:         {id} ({})", self.leader_addr)?,
            None => writeln!(out, "leader:         none")?,
        }
        writeln!(out, "term:           {}", self.term)?;
        writeln!(out, "commit_index:   {}", self.commit_index)?;
        writeln!(out, "applied_index:  {}", self.applied_index)?;
        writeln!(out, "snapshot_index: {}", self.snapshot_index)?;
        let members: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                format!(
                    "{}={}{}",
                    m.id,
                    m.addr,
                    if m.voter { "" } else { " (learner)" }
                )
            })
            .collect();
        writeln!(out, "members:        {}", members.join(", "))
    }
}

pub async fn run(a: StatusArgs) -> Result<Exit> {
    let s = call(&a.conn, Idempotence::Read, |ch| async move {
        RaftAdminClient::new(ch).status(StatusRequest {}).await
    })
    .await?;
    let status = Status {
        id: s.id,
        role: s.role,
        ready: s.ready,
        leader_id: s.has_leader.then_some(s.leader_id),
        leader_addr: s.leader_addr,
        leader_peer_addr: s.leader_peer_addr,
        term: s.term,
        commit_index: s.commit_index,
        applied_index: s.applied_index,
        last_log_index: s.last_log_index,
        snapshot_index: s.snapshot_index,
        purged_index: s.purged_index,
        members: s.members.into_iter().map(Member::from).collect(),
    };
    a.format.print(&status)?;
    Ok(Exit::Success)
}
