//! `brisk timestamp`: a fresh timestamp from the leader's hybrid logical clock.

use std::io::{self, Write};

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::GetTimestampRequest;
use serde::Serialize;

use super::output::{Format, Report};
use super::{call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct TimestampArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
}

/// `{"ts": 117682475059511296}`.
#[derive(Serialize, Debug)]
pub struct Timestamp {
    pub ts: u64,
}

impl Report for Timestamp {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.ts)
    }
}

pub async fn run(a: TimestampArgs) -> Result<Exit> {
    let r = call(&a.conn, Idempotence::Read, |ch| async move {
        RawKvClient::new(ch)
            .get_timestamp(GetTimestampRequest {})
            .await
    })
    .await?;
    a.format.print(&Timestamp { ts: r.ts })?;
    Ok(Exit::Success)
}
