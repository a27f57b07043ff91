//! `brisk get KEY`: reads one key. Absent: no text output and exit code 1.

use std::ffi::OsString;
use std::io::{self, Write};

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::RawGetRequest;
use serde::Serialize;

use super::output::{Bytes, Format, Report};
use super::{bytes, call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// The key: the bytes of the argument as given.
    pub key: OsString,
    /// Serve from the node reached without a read-index round (may be stale).
    #[arg(long)]
    pub stale: bool,
    /// Read at this timestamp instead of the latest.
    #[arg(long, value_name = "TS")]
    pub at_ts: Option<u64>,
}

/// A read key: `{"key": ..., "found": true, "value": ...}` or `{"key": ..., "found": false}`.
#[derive(Serialize, Debug)]
pub struct Read {
    #[serde(flatten)]
    pub key: Bytes,
    pub found: bool,
    #[serde(flatten)]
    pub value: Option<Bytes>,
}

impl Report for Read {
    /// The value's bytes as stored, then a newline; nothing when absent.
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(v) = &self.value {
            out.write_all(v.as_slice())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

pub async fn run(a: GetArgs) -> Result<Exit> {
    let req = RawGetRequest {
        key: bytes(a.key),
        at_ts: a.at_ts.unwrap_or(0),
        stale: a.stale,
    };
    let r = call(&a.conn, Idempotence::Read, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_get(req).await }
    })
    .await?;
    let read = Read {
        key: Bytes::new("key", req.key),
        found: r.found,
        value: r.found.then(|| Bytes::new("value", r.value)),
    };
    a.format.print(&read)?;
    Ok(if read.found {
        Exit::Success
    } else {
        Exit::Negative
    })
}
