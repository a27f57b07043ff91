//! `brisk`: the server binary and its command-line tools.

mod bench;
mod bench_cold_start;
mod bench_compare;
mod bench_redis;
mod bench_rolling;
mod client;
mod config;
mod dev;
mod http;
mod inspect;
mod metrics;
mod rolling;
mod serve;
mod tls;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "brisk",
    version,
    about = "brisk: a Raft-replicated transactional key-value store"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node.
    Serve(Box<config::ServeArgs>),
    /// Run a local cluster on loopback with embedded defaults.
    Dev(dev::DevArgs),
    /// Write a throw-away CA and certificates signed by it (for trying out TLS).
    Certs(tls::CertsArgs),
    /// Write a key.
    Put(client::PutArgs),
    /// Read a key (exit code 1 and no output when absent).
    Get(client::GetArgs),
    /// Delete a key.
    Delete(client::KeyArgs),
    /// Delete every key with a prefix.
    DeletePrefix(client::PrefixArgs),
    /// List keys and values.
    Scan(client::ScanArgs),
    /// Run an optimistic transaction.
    Txn(client::TxnArgs),
    /// Show a node's Raft status.
    Status(client::StatusArgs),
    /// List cluster members.
    Members(client::ConnArgs),
    /// Add a node as a non-voting learner.
    AddLearner(client::AddNodeArgs),
    /// Make a node a voter (adding it as a learner first if --addr is given).
    AddVoter(client::AddVoterArgs),
    /// Promote a learner to voter (same as add-voter without --addr).
    Promote(client::IdArgs),
    /// Remove a node from the cluster.
    Remove(client::IdArgs),
    /// Move leadership to another voter.
    TransferLeader(client::TransferArgs),
    /// Take a snapshot on the node reached (or on every member with --all).
    Snapshot(client::SnapshotArgs),
    /// Print a fresh timestamp from the leader's hybrid logical clock.
    Timestamp(client::ConnArgs),
    /// Inspect a data directory offline (no server needed).
    Inspect(inspect::InspectArgs),
    /// Drive load against a running cluster and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Restart the cluster's nodes one at a time, each gated on health and readiness.
    RollingRestart(rolling::RollingArgs),
}

fn main() -> std::process::ExitCode {
    let process_started = std::time::Instant::now();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("brisk: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Cmd::Serve(args) => serve::run(*args, process_started).await,
            Cmd::Dev(args) => dev::run(args).await,
            Cmd::Certs(a) => tls::run(a),
            Cmd::Put(a) => client::put(a).await,
            Cmd::Get(a) => client::get(a).await,
            Cmd::Delete(a) => client::delete(a).await,
            Cmd::DeletePrefix(a) => client::delete_prefix(a).await,
            Cmd::Scan(a) => client::scan(a).await,
            Cmd::Txn(a) => client::txn(a).await,
            Cmd::Status(a) => client::status(a).await,
            Cmd::Members(a) => client::members(a).await,
            Cmd::AddLearner(a) => client::add_learner(a).await,
            Cmd::AddVoter(a) => client::add_voter(a).await,
            Cmd::Promote(a) => {
                client::add_voter(client::AddVoterArgs {
                    conn: a.conn,
                    id: a.id,
                    addr: None,
                    peer_addr: None,
                })
                .await
            }
            Cmd::Remove(a) => client::remove(a).await,
            Cmd::TransferLeader(a) => client::transfer(a).await,
            Cmd::Snapshot(a) => client::snapshot(a).await,
            Cmd::Timestamp(a) => client::timestamp(a).await,
            Cmd::Inspect(a) => inspect::run(a),
            Cmd::Bench(a) => bench::run(a).await,
            Cmd::RollingRestart(a) => rolling::run(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("brisk: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
