//! `brisk bench`: load against a running cluster, and the benchmarks that start their own
//! clusters (cold start, brisk against etcd and Redis, rolling restart under load).

mod cold_start;
mod compare;
mod load;
mod plot;
mod progress;
mod redis;
mod rolling;

use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub cmd: BenchCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// Put/get/txn load from N concurrent clients.
    Load(load::LoadArgs),
    /// Restart time versus data size (starts its own 3-node cluster).
    ColdStart(cold_start::ColdStartArgs),
    /// brisk against etcd 3.4, side by side in one run (starts both clusters).
    Compare(compare::CompareArgs),
    /// A rolling restart of a filled cluster under load (starts its own brisk dev).
    RollingRestart(rolling::RollingBenchArgs),
    /// redis-benchmark against brisk's Redis endpoint and a durable redis-server, side by
    /// side in one run (starts both).
    Redis(redis::RedisBenchArgs),
}

pub async fn run(a: BenchArgs) -> Result<ExitCode> {
    match a.cmd {
        BenchCmd::Load(l) => load::run(l).await,
        BenchCmd::ColdStart(c) => cold_start::run(c).await,
        BenchCmd::Compare(c) => compare::run(c).await,
        BenchCmd::RollingRestart(r) => rolling::run(r).await,
        BenchCmd::Redis(r) => redis::run(r).await,
    }
}
