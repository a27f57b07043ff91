//! `brisk txn`: one optimistic transaction. Its reads happen at the start timestamp; the
//! commit applies every write at once unless a written or read key has a newer commit, in
//! which case nothing is written and the exit code is 3.

use std::ffi::OsString;
use std::io::{self, Write};

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::transactional_kv_client::TransactionalKvClient;
use brisk_proto::{mutation, BeginRequest, CommitRequest, Mutation, TxnGetRequest};
use clap::builder::{OsStringValueParser, TypedValueParser};
use serde::Serialize;

use super::output::{escape, Bytes, Format, Report};
use super::{bytes, call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
#[command(group(
    clap::ArgGroup::new("writes")
        .args(["puts", "deletes"])
        .required(true)
        .multiple(true)
))]
pub struct TxnArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// Write VALUE under KEY (repeatable; the key ends at the first `=`).
    #[arg(
        long = "put",
        value_name = "KEY=VALUE",
        value_parser = OsStringValueParser::new().try_map(Assignment::parse)
    )]
    pub puts: Vec<Assignment>,
    /// Delete KEY (repeatable).
    #[arg(long = "delete", value_name = "KEY")]
    pub deletes: Vec<OsString>,
    /// Read KEY at the start timestamp and keep it in the read set: the commit aborts if it
    /// changed since (repeatable).
    #[arg(long = "read", value_name = "KEY")]
    pub reads: Vec<OsString>,
    /// Use this start timestamp instead of asking the cluster for one.
    #[arg(long, value_name = "TS")]
    pub start_ts: Option<u64>,
}

/// A `--put KEY=VALUE`.
#[derive(Clone, Debug)]
pub struct Assignment {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Assignment {
    fn parse(arg: OsString) -> Result<Assignment, String> {
        let raw = bytes(arg);
        let Some(eq) = raw.iter().position(|&b| b == b'=') else {
            return Err(format!("{} is not KEY=VALUE", escape(&raw)));
        };
        Ok(Assignment {
            key: raw[..eq].to_vec(),
            value: raw[eq + 1..].to_vec(),
        })
    }
}

/// What the transaction read and whether it committed.
#[derive(Serialize, Debug)]
pub struct Outcome {
    pub start_ts: u64,
    pub reads: Vec<ReadKey>,
    pub committed: bool,
    /// The commit's timestamp (when committed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_ts: Option<u64>,
    /// The key whose newer commit aborted the transaction (when not committed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Conflict>,
}

#[derive(Serialize, Debug)]
pub struct ReadKey {
    #[serde(flatten)]
    pub key: Bytes,
    pub found: bool,
    #[serde(flatten)]
    pub value: Option<Bytes>,
}

#[derive(Serialize, Debug)]
pub struct Conflict {
    #[serde(flatten)]
    pub key: Bytes,
    /// The commit newer than the start timestamp.
    pub commit_ts: u64,
}

impl Report for Outcome {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for r in &self.reads {
            match &r.value {
                Some(v) => writeln!(
                    out,
                    "read {}={}",
                    escape(r.key.as_slice()),
                    escape(v.as_slice())
                )?,
                None => writeln!(out, "read {} (absent)", escape(r.key.as_slice()))?,
            }
        }
        match (&self.conflict, self.commit_ts) {
            (Some(c), _) => writeln!(
                out,
                "CONFLICT key={} commit_ts={} start_ts={}",
                escape(c.key.as_slice()),
                c.commit_ts,
                self.start_ts
            ),
            (None, commit_ts) => writeln!(
                out,
                "COMMITTED start_ts={} commit_ts={}",
                self.start_ts,
                commit_ts.unwrap_or_default()
            ),
        }
    }
}

pub async fn run(a: TxnArgs) -> Result<Exit> {
    let mut mutations = Vec::new();
    for p in a.puts {
        mutations.push(Mutation {
            op: mutation::Op::Put as i32,
            key: p.key,
            value: p.value,
        });
    }
    for k in a.deletes {
        mutations.push(Mutation {
            op: mutation::Op::Delete as i32,
            key: bytes(k),
            value: Vec::new(),
        });
    }
    let read_set: Vec<Vec<u8>> = a.reads.into_iter().map(bytes).collect();
    let start_ts = match a.start_ts {
        Some(ts) => ts,
        None => {
            call(&a.conn, Idempotence::Read, |ch| async move {
                TransactionalKvClient::new(ch).begin(BeginRequest {}).await
            })
            .await?
            .start_ts
        }
    };
    let mut reads = Vec::new();
    for key in &read_set {
        let req = TxnGetRequest {
            start_ts,
            key: key.clone(),
        };
        let r = call(&a.conn, Idempotence::Read, |ch| {
            let req = req.clone();
            async move { TransactionalKvClient::new(ch).get(req).await }
        })
        .await?;
        reads.push(ReadKey {
            key: Bytes::new("key", key.clone()),
            found: r.found,
            value: r.found.then(|| Bytes::new("value", r.value)),
        });
    }
    let req = CommitRequest {
        start_ts,
        mutations,
        read_set,
    };
    let r = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { TransactionalKvClient::new(ch).commit(req).await }
    })
    .await?;
    let outcome = Outcome {
        start_ts,
        reads,
        committed: r.committed,
        commit_ts: r.committed.then_some(r.commit_ts),
        conflict: (!r.committed).then(|| {
            let c = r.conflict.unwrap_or_default();
            Conflict {
                key: Bytes::new("key", c.key),
                commit_ts: c.conflicting_commit_ts,
            }
        }),
    };
    let done = if outcome.committed {
        Exit::Success
    } else {
        Exit::Conflict
    };
    Ok(a.format.print_done(&outcome, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_splits_at_the_first_equals_sign() {
        let a = Assignment::parse("k=v=w".into()).expect("KEY=VALUE");
        assert_eq!(
            (a.key.as_slice(), a.value.as_slice()),
            (&b"k"[..], &b"v=w"[..])
        );
        let a = Assignment::parse("k=".into()).expect("an empty value");
        assert!(a.value.is_empty());
        assert!(Assignment::parse("novalue".into()).is_err());
    }
}
