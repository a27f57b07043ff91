//! Changing the cluster's membership: `add-learner`, `add-voter`, `promote`, `remove` and
//! `transfer-leader`. Each is a write through the leader; the membership commands print the
//! configuration they produced (as `brisk members` does).

use std::io::{self, Write};

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::{
    AddLearnerRequest, AddVoterRequest, RemoveServerRequest, TransferLeadershipRequest,
};
use serde::Serialize;

use super::members::Members;
use super::output::{Format, Report};
use super::{call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct AddLearnerArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// The new node's id (its `brisk serve --id`).
    #[arg(long)]
    pub id: u64,
    /// The new node's client (gRPC API) address.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The new node's peer (Raft transport) address.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_addr: String,
}

#[derive(clap::Args, Debug)]
pub struct AddVoterArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// The node's id.
    #[arg(long)]
    pub id: u64,
    /// The node's client address, to add it as a learner first.
    #[arg(long, value_name = "HOST:PORT", requires = "peer_addr")]
    pub addr: Option<String>,
    /// The node's peer address (with --addr).
    #[arg(long, value_name = "HOST:PORT", requires = "addr")]
    pub peer_addr: Option<String>,
}

/// `promote` and `remove`: a member named by its id.
#[derive(clap::Args, Debug)]
pub struct MemberArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// The member's id.
    #[arg(long)]
    pub id: u64,
}

#[derive(clap::Args, Debug)]
pub struct TransferArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// The id of the voter to lead.
    #[arg(long)]
    pub to: u64,
}

pub async fn add_learner(a: AddLearnerArgs) -> Result<Exit> {
    let req = AddLearnerRequest {
        id: a.id,
        addr: a.addr,
        peer_addr: a.peer_addr,
    };
    let c = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RaftAdminClient::new(ch).add_learner(req).await }
    })
    .await?;
    a.format.print(&Members::from(c))?;
    Ok(Exit::Success)
}

pub async fn add_voter(a: AddVoterArgs) -> Result<Exit> {
    voter(a.conn, a.format, a.id, a.addr, a.peer_addr).await
}

pub async fn promote(a: MemberArgs) -> Result<Exit> {
    voter(a.conn, a.format, a.id, None, None).await
}

async fn voter(
    conn: ConnArgs,
    format: Format,
    id: u64,
    addr: Option<String>,
    peer_addr: Option<String>,
) -> Result<Exit> {
    let req = AddVoterRequest {
        id,
        addr: addr.unwrap_or_default(),
        peer_addr: peer_addr.unwrap_or_default(),
    };
    let c = call(&conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RaftAdminClient::new(ch).add_voter(req).await }
    })
    .await?;
    format.print(&Members::from(c))?;
    Ok(Exit::Success)
}

pub async fn remove(a: MemberArgs) -> Result<Exit> {
    let req = RemoveServerRequest { id: a.id };
    let c = call(&a.conn, Idempotence::Write, |ch| async move {
        RaftAdminClient::new(ch).remove_server(req).await
    })
    .await?;
    a.format.print(&Members::from(c))?;
    Ok(Exit::Success)
}

/// The leader after a transfer: `{"leader_id": 2}`.
#[derive(Serialize, Debug)]
pub struct Transferred {
    pub leader_id: u64,
}

impl Report for Transferred {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "leader is now node {}", self.leader_id)
    }
}

pub async fn transfer_leader(a: TransferArgs) -> Result<Exit> {
    let req = TransferLeadershipRequest { to: a.to };
    let r = call(&a.conn, Idempotence::Write, |ch| async move {
        RaftAdminClient::new(ch).transfer_leadership(req).await
    })
    .await?;
    a.format.print(&Transferred {
        leader_id: r.leader_id,
    })?;
    Ok(Exit::Success)
}
