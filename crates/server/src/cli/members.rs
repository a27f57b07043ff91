//! `brisk members`: the cluster's configuration, as the leader knows it. The membership
//! commands print the configuration they produced the same way.

use std::io::{self, Write};

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::{ConfigurationRequest, ConfigurationResponse};
use serde::Serialize;

use super::output::{Format, Report};
use super::{call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct MembersArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
}

/// One member of the cluster.
#[derive(Serialize, Debug)]
pub struct Member {
    pub id: u64,
    /// The client (gRPC API) address.
    pub addr: String,
    /// The peer (Raft transport) address; empty when the membership does not record it.
    pub peer_addr: String,
    /// A voter, or else a learner.
    pub voter: bool,
}

impl From<brisk_proto::Member> for Member {
    fn from(m: brisk_proto::Member) -> Member {
        Member {
            id: m.id,
            addr: m.addr,
            peer_addr: m.peer_addr,
            voter: m.voter,
        }
    }
}

/// The members: `{"members": [{"id": 1, "addr": ..., "peer_addr": ..., "voter": true}]}`.
#[derive(Serialize, Debug)]
pub struct Members {
    pub members: Vec<Member>,
}

impl From<ConfigurationResponse> for Members {
    fn from(c: ConfigurationResponse) -> Members {
        Members {
            members: c.members.into_iter().map(Member::from).collect(),
        }
    }
}

impl Report for Members {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{:<6} {:<24} {:<24} ROLE", "ID", "ADDR", "PEER_ADDR")?;
        for m in &self.members {
            writeln!(
                out,
                "{:<6} {:<24} {:<24} {}",
                m.id,
                m.addr,
                if m.peer_addr.is_empty() {
                    "(not recorded)"
                } else {
                    &m.peer_addr
                },
                if m.voter { "voter" } else { "learner" }
            )?;
        }
        Ok(())
    }
}

pub async fn run(a: MembersArgs) -> Result<Exit> {
    let c = call(&a.conn, Idempotence::Read, |ch| async move {
        RaftAdminClient::new(ch)
            .configuration(ConfigurationRequest {})
            .await
    })
    .await?;
    a.format.print(&Members::from(c))?;
    Ok(Exit::Success)
}
