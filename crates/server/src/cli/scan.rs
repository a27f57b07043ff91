//! `brisk scan`: lists keys and values in key order, one `KEY<TAB>VALUE` line each.

use std::ffi::OsString;
use std::io::{self, Write};

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::RawScanRequest;
use serde::Serialize;

use super::output::{escape, Bytes, Format, Report};
use super::{bytes, call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// Only keys starting with these bytes (not with --start or --end).
    #[arg(long)]
    pub prefix: Option<OsString>,
    /// The first key of the range, included (default: the first key).
    #[arg(long)]
    pub start: Option<OsString>,
    /// The end of the range, excluded (default: past the last key).
    #[arg(long)]
    pub end: Option<OsString>,
    /// At most this many pairs (0: the server's default, 1000).
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// Serve from the node reached without a read-index round (may be stale).
    #[arg(long)]
    pub stale: bool,
    /// Read at this timestamp instead of the latest.
    #[arg(long, value_name = "TS")]
    pub at_ts: Option<u64>,
}

/// The pairs found: `{"pairs": [{"key": ..., "value": ..., "commit_ts": ...}], "truncated": false}`.
#[derive(Serialize, Debug)]
pub struct Scanned {
    pub pairs: Vec<Pair>,
    /// The server's response-size budget ended the scan before --limit pairs: continue with
    /// --start just after the last key.
    pub truncated: bool,
}

#[derive(Serialize, Debug)]
pub struct Pair {
    #[serde(flatten)]
    pub key: Bytes,
    #[serde(flatten)]
    pub value: Bytes,
    /// The timestamp of the version read.
    pub commit_ts: u64,
}

impl Report for Scanned {
    /// `KEY<TAB>VALUE` per pair, both escaped so that each pair is exactly one line.
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for p in &self.pairs {
            writeln!(
                out,
                "{}\t{}",
                escape(p.key.as_slice()),
                escape(p.value.as_slice())
            )?;
        }
        Ok(())
    }
}

pub async fn run(a: ScanArgs) -> Result<Exit> {
    let req = RawScanRequest {
        start: a.start.map(bytes).unwrap_or_default(),
        end: a.end.map(bytes).unwrap_or_default(),
        limit: a.limit,
        at_ts: a.at_ts.unwrap_or(0),
        stale: a.stale,
        prefix: a.prefix.map(bytes).unwrap_or_default(),
    };
    let r = call(&a.conn, Idempotence::Read, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_scan(req).await }
    })
    .await?;
    let scanned = Scanned {
        pairs: r
            .pairs
            .into_iter()
            .map(|p| Pair {
                key: Bytes::new("key", p.key),
                value: Bytes::new("value", p.value),
                commit_ts: p.commit_ts,
            })
            .collect(),
        truncated: r.truncated,
    };
    a.format.print(&scanned)?;
    if scanned.truncated && !a.format.json {
        let last = scanned
            .pairs
            .last()
            .map(|p| escape(p.key.as_slice()))
            .unwrap_or_default();
        eprintln!(
            "brisk: scan stopped at the response size budget after key {last}; continue from there with --start"
        );
    }
    Ok(Exit::Success)
}
