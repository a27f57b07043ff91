//! `brisk put KEY VALUE`: writes one key.

use std::ffi::OsString;
use std::io::{self, Write};

use anyhow::{anyhow, Result};
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
    pub fn from_answer(r: Option<WriteResult>) -> Result<Written> {
        let r = r.ok_or_else(|| anyhow!("the server returned no write result"))?;
        Ok(Written {
            commit_ts: r.commit_ts,
            log_index: r.log_index,
        })
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
    a.format.print(&Written::from_answer(r.result)?)?;
    Ok(Exit::Success)
}
