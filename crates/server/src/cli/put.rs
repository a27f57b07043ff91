//! `brisk put KEY VALUE`: writes one key.

use std::ffi::OsString;
use std::io::{self, Write};

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::{RawPutRequest, WriteResult};
use serde::Serialize;

use super::output::{Format, Report};
use super::{bytes, call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// The key: the bytes of the argument as given, not empty.
    pub key: OsString,
    /// The value: the bytes of the argument as given.
    pub value: OsString,
}

/// A committed write (put, delete, delete-prefix).
#[derive(Serialize, Debug)]
pub struct Written {
    /// The MVCC timestamp the write is visible at.
    pub commit_ts: u64,
    /// The Raft log index that carried it.
    pub log_index: u64,
}

impl Written {
    /// Prints an acknowledged write's result. An acknowledgement without one is malformed:
    /// the write was most likely applied, but that cannot be shown, so it is reported as
    /// indeterminate (read the key back).
    pub fn print_answer(format: &Format, r: Option<WriteResult>) -> Exit {
        match r {
            Some(r) => format.print_done(
                &Written {
                    commit_ts: r.commit_ts,
                    log_index: r.log_index,
                },
                Exit::Success,
            ),
            None => {
                eprintln!("brisk: the write was acknowledged without its result; read the key back to see whether it applied");
                Exit::Indeterminate
            }
        }
    }
}

impl Report for Written {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "OK commit_ts={} log_index={}",
            self.commit_ts, self.log_index
        )
    }
}

pub async fn run(a: PutArgs) -> Result<Exit> {
    let req = RawPutRequest {
        key: bytes(a.key),
        value: bytes(a.value),
    };
    let r = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_put(req).await }
    })
    .await?;
    Ok(Written::print_answer(&a.format, r.result))
}
