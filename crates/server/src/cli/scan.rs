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
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub prefix: Option<OsString>,
    /// The first key of the range, included (default: the first key).
    #[arg(long, conflicts_with = "after")]
    pub start: Option<OsString>,
    /// Only keys after this one (excluded): how a scan that stopped at the server's size
    /// budget continues from its last key. Works with --prefix and --end.
    #[arg(long)]
    pub after: Option<OsString>,
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
    /// --after the last key.
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

/// The range to ask for: `(start, end, prefix)` of the request. `--after K` starts at the
/// smallest key above K (K followed by a zero byte); with `--prefix` the prefix becomes the
/// range it covers, since the server takes a prefix or a range, not both.
fn range(a: &ScanArgs) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let prefix = a.prefix.clone().map(bytes).unwrap_or_default();
    let mut start = a.start.clone().map(bytes).unwrap_or_default();
    let mut end = a.end.clone().map(bytes).unwrap_or_default();
    let Some(after) = a.after.clone().map(bytes) else {
        return (start, end, prefix);
    };
    if !prefix.is_empty() {
        end = prefix_end(&prefix);
        start = prefix;
    }
    let mut next = after;
    next.push(0);
    if next > start {
        start = next;
    }
    (start, end, Vec::new())
}

/// The first key past every key that starts with `prefix` (empty: no end).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    Vec::new()
}

pub async fn run(a: ScanArgs) -> Result<Exit> {
    let (start, end, prefix) = range(&a);
    let req = RawScanRequest {
        start,
        end,
        limit: a.limit,
        at_ts: a.at_ts.unwrap_or(0),
        stale: a.stale,
        prefix,
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
        if let Some(last) = scanned.pairs.last() {
            // Quoted for the shell: bash's $'...' reads the escapes `escape` writes.
            let escaped = escape(last.key.as_slice());
            eprintln!(
                "brisk: the scan stopped at the server's response size budget; continue with --after $'{}'",
                escaped.replace('\'', "\\'")
            );
        }
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        scan: ScanArgs,
    }

    fn args(argv: &[&str]) -> ScanArgs {
        Probe::try_parse_from(std::iter::once("scan").chain(argv.iter().copied()))
            .expect("valid arguments")
            .scan
    }

    #[test]
    fn after_continues_past_the_last_key_within_the_prefix() {
        assert_eq!(
            range(&args(&["--prefix", "user/"])),
            (vec![], vec![], b"user/".to_vec())
        );
        assert_eq!(
            range(&args(&["--prefix", "user/", "--after", "user/7"])),
            (b"user/7\0".to_vec(), b"user0".to_vec(), vec![])
        );
        // An --after before the prefix starts at the prefix.
        assert_eq!(
            range(&args(&["--prefix", "user/", "--after", "a"])),
            (b"user/".to_vec(), b"user0".to_vec(), vec![])
        );
        assert_eq!(
            range(&args(&["--after", "k", "--end", "z"])),
            (b"k\0".to_vec(), b"z".to_vec(), vec![])
        );
        assert_eq!(prefix_end(&[b'a', 0xff]), vec![b'b']);
        assert_eq!(prefix_end(&[0xff, 0xff]), Vec::<u8>::new());
    }

    #[test]
    fn a_prefix_and_a_range_are_refused_as_usage_errors() {
        for argv in [
            &["--prefix", "p", "--start", "a"][..],
            &["--prefix", "p", "--end", "z"],
            &["--start", "a", "--after", "b"],
        ] {
            let e = Probe::try_parse_from(std::iter::once("scan").chain(argv.iter().copied()))
                .err()
                .expect("refused");
            assert_eq!(e.exit_code(), 2, "{argv:?}");
        }
    }
}
