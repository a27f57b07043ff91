//! `brisk delete KEY` and `brisk delete-prefix PREFIX`.

use std::ffi::OsString;

use anyhow::Result;
use brisk_client::Idempotence;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::{RawDeletePrefixRequest, RawDeleteRequest};

use super::output::Format;
use super::put::Written;
use super::{bytes, call, ConnArgs, Exit};

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// The key: the bytes of the argument as given. Deleting an absent key succeeds.
    pub key: OsString,
}

#[derive(clap::Args, Debug)]
pub struct DeletePrefixArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub format: Format,
    /// Every key starting with these bytes is deleted, in one write.
    pub prefix: OsString,
}

pub async fn run(a: DeleteArgs) -> Result<Exit> {
    let req = RawDeleteRequest { key: bytes(a.key) };
    let r = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_delete(req).await }
    })
    .await?;
    Ok(Written::print_answer(&a.format, r.result))
}

pub async fn run_prefix(a: DeletePrefixArgs) -> Result<Exit> {
    let req = RawDeletePrefixRequest {
        prefix: bytes(a.prefix),
    };
    let r = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_delete_prefix(req).await }
    })
    .await?;
    Ok(Written::print_answer(&a.format, r.result))
}
