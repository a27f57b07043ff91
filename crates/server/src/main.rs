//! `brisk`: the server binary and its command-line tools.

mod bench;
mod cli;
mod config;
mod dev;
mod http;
mod metrics;
mod rolling;
mod serve;
mod tls;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::Exit;

#[derive(Parser)]
#[command(
    name = "brisk",
    version,
    about = "brisk: a Raft-replicated transactional key-value store",
    after_help = cli::exit::EXIT_CODES
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
    Put(cli::put::PutArgs),
    /// Read a key (exit code 1 and no text output when absent).
    Get(cli::get::GetArgs),
    /// Delete a key.
    Delete(cli::delete::DeleteArgs),
    /// Delete every key with a prefix.
    DeletePrefix(cli::delete::DeletePrefixArgs),
    /// List keys and values, one escaped KEY<TAB>VALUE line each.
    Scan(cli::scan::ScanArgs),
    /// Run an optimistic transaction (exit code 3 when it conflicts).
    Txn(cli::txn::TxnArgs),
    /// Show a node's Raft status.
    Status(cli::status::StatusArgs),
    /// List cluster members.
    Members(cli::members::MembersArgs),
    /// Add a node as a non-voting learner.
    AddLearner(cli::membership::AddLearnerArgs),
    /// Make a node a voter (adding it as a learner first if --addr is given).
    AddVoter(cli::membership::AddVoterArgs),
    /// Promote a learner to voter (same as add-voter without --addr).
    Promote(cli::membership::MemberArgs),
    /// Remove a node from the cluster.
    Remove(cli::membership::MemberArgs),
    /// Move leadership to another voter.
    TransferLeader(cli::membership::TransferArgs),
    /// Take a snapshot on the node reached (or on every member with --all).
    Snapshot(cli::snapshot::SnapshotArgs),
    /// Print a fresh timestamp from the leader's hybrid logical clock.
    Timestamp(cli::timestamp::TimestampArgs),
    /// Inspect a data directory offline (no server needed).
    Inspect(cli::inspect::InspectArgs),
    /// Drive load against a running cluster and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Restart the cluster's nodes one at a time, each gated on health and readiness.
    RollingRestart(rolling::RollingArgs),
    /// Print a shell completion script.
    Completions(cli::completions::CompletionsArgs),
    /// Print the manual page (roff), or write one per command with --out-dir.
    Man(cli::man::ManArgs),
}

fn main() -> ExitCode {
    let process_started = std::time::Instant::now();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("brisk: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let result: anyhow::Result<ExitCode> = rt.block_on(async move {
        let exit = match cli.command {
            Cmd::Serve(args) => return serve::run(*args, process_started).await,
            Cmd::Dev(args) => return dev::run(args).await,
            Cmd::Certs(a) => return tls::run(a),
            Cmd::Bench(a) => return bench::run(a).await,
            Cmd::RollingRestart(a) => return rolling::run(a).await,
            Cmd::Put(a) => cli::put::run(a).await,
            Cmd::Get(a) => cli::get::run(a).await,
            Cmd::Delete(a) => cli::delete::run(a).await,
            Cmd::DeletePrefix(a) => cli::delete::run_prefix(a).await,
            Cmd::Scan(a) => cli::scan::run(a).await,
            Cmd::Txn(a) => cli::txn::run(a).await,
            Cmd::Status(a) => cli::status::run(a).await,
            Cmd::Members(a) => cli::members::run(a).await,
            Cmd::AddLearner(a) => cli::membership::add_learner(a).await,
            Cmd::AddVoter(a) => cli::membership::add_voter(a).await,
            Cmd::Promote(a) => cli::membership::promote(a).await,
            Cmd::Remove(a) => cli::membership::remove(a).await,
            Cmd::TransferLeader(a) => cli::membership::transfer_leader(a).await,
            Cmd::Snapshot(a) => cli::snapshot::run(a).await,
            Cmd::Timestamp(a) => cli::timestamp::run(a).await,
            Cmd::Inspect(a) => cli::inspect::run(a),
            Cmd::Completions(a) => cli::completions::run(a),
            Cmd::Man(a) => cli::man::run(a),
        };
        exit.map(ExitCode::from)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("brisk: {e:#}");
            Exit::of(&e).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every subcommand and every argument shows help text in `brisk help`, the completions
    /// and the man page.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: argument {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path}: the command itself"));
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "brisk", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn the_help_lists_the_exit_codes() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("Exit codes"), "{help}");
        assert!(help.contains("3  transaction conflict"), "{help}");
    }
}
