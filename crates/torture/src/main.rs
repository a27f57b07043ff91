//! `brisk-torture`: starts a real 3-node brisk cluster, runs concurrent clients against it
//! while a nemesis injects faults (kills, pauses, partitions, power loss, clock steps,
//! rolling restarts), and checks the recorded history for linearizability violations and
//! lost writes. The last line is `RESULT runs=R ops=O faults=F violations=V lost_writes=L`;
//! the exit code is non-zero on any violation or lost write.

mod check;
mod cluster;
mod history;
mod nemesis;
mod net;
mod report;
mod run;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::nemesis::Fault;

#[derive(Parser, Debug)]
#[command(name = "brisk-torture", version, about)]
struct Args {
    /// The short suite: 6 runs of 20 s that together cover every fault kind.
    #[arg(long, conflicts_with = "soak")]
    quick: bool,
    /// N runs, unattended, with a progress line per run and a final table.
    #[arg(long, value_name = "N")]
    soak: Option<usize>,
    /// Runs (without --quick or --soak).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Seconds of client load (and faults) per run.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 12)]
    clients: u32,
    /// Fault kinds, comma-separated (default: all; a run takes them in turn).
    #[arg(long, value_enum, value_delimiter = ',')]
    nemesis: Vec<Fault>,
    /// The brisk binary (default: `brisk` next to this one).
    #[arg(long)]
    brisk: Option<PathBuf>,
    /// Where the nodes' data and logs go (logs kept for failed runs). Default:
    /// /tmp/brisk-torture-PID.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where histories and reports go.
    #[arg(long, default_value = "target/torture")]
    out_dir: PathBuf,
    /// Seed of the first run (runs use seed, seed+1, ...). Default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Run the nodes in a deliberately broken mode (test builds of brisk only): stale-reads
    /// or unsynced-log. The checks must then find violations or lost writes.
    #[arg(long)]
    broken: Option<String>,
    /// An extra flag for every `brisk serve` (repeatable), e.g. --brisk-arg=--fsm-sync
    /// --brisk-arg=nosync, to put a configuration under the faults.
    #[arg(long = "brisk-arg", allow_hyphen_values = true)]
    brisk_args: Vec<String>,
    /// Keep the data on the real disk (no brisk-lazyfs; power-cut faults are skipped).
    #[arg(long)]
    no_lazyfs: bool,
    /// Log each fault as it is injected.
    #[arg(long, short)]
    verbose: bool,
}

fn brisk_binary(a: &Args) -> Result<PathBuf> {
    if let Some(b) = &a.brisk {
        return Ok(b.clone());
    }
    let me = std::env::current_exe().context("locating brisk-torture")?;
    let sibling = me.with_file_name("brisk");
    if !sibling.exists() {
        bail!(
            "no brisk binary at {}; build it (cargo build --features brisk/crash-points) or pass --brisk",
            sibling.display()
        );
    }
    Ok(sibling)
}

/// The fault kinds of run `i` of `runs`: every kind appears in some run.
fn faults_for(i: usize, runs: usize, kinds: &[Fault]) -> Vec<Fault> {
    if runs <= 1 {
        return kinds.to_vec();
    }
    let per = kinds.len().div_ceil(runs).max(1);
    let mut out: Vec<Fault> = kinds.iter().skip(i * per).take(per).copied().collect();
    if out.is_empty() {
        out = vec![kinds[i % kinds.len()]];
    }
    out
}

async fn main_async(a: Args) -> Result<ExitCode> {
    let brisk = brisk_binary(&a)?;
    let (runs, duration) = if a.quick {
        (6, Duration::from_secs(20))
    } else if let Some(n) = a.soak {
        (n, Duration::from_secs(a.duration))
    } else {
        (a.runs, Duration::from_secs(a.duration))
    };
    let mut kinds: Vec<Fault> = if a.nemesis.is_empty() {
        nemesis::ALL.to_vec()
    } else {
        a.nemesis.clone()
    };
    if a.no_lazyfs {
        kinds.retain(|k| !k.needs_lazyfs());
    }
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    run::ensure_dir(&a.out_dir)?;
    let mut total = run::RunReport::default();
    let mut totals_by_fault = std::collections::BTreeMap::<String, usize>::new();
    let mut reports = Vec::new();
    for i in 0..runs {
        let faults = if a.soak.is_some() {
            // A soak cycles every kind through every run, in a seed-dependent order.
            use rand::seq::SliceRandom;
            use rand::SeedableRng;
            let mut k = kinds.clone();
            k.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed + i as u64));
            k
        } else {
            faults_for(i, runs, &kinds)
        };
        let cfg = run::RunConfig {
            index: i,
            seed: seed + i as u64,
            duration,
            clients: a.clients,
            faults: faults.clone(),
            brisk: brisk.clone(),
            work: a.work_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("brisk-torture-{}", std::process::id()))
            }),
            out: a.out_dir.clone(),
            broken: a.broken.clone(),
            serve_args: a.brisk_args.clone(),
            lazyfs: !a.no_lazyfs,
            verbose: a.verbose,
        };
        let r = run::run(&cfg)
            .await
            .with_context(|| format!("run {i} (seed {})", cfg.seed))?;
        let names: Vec<String> = faults.iter().map(Fault::to_string).collect();
        eprintln!(
            "run {}/{runs} seed={} faults=[{}] ops={} ok={} fail={} unknown={} client_errors={} injected={} violations={} lost_writes={} write_gap_ms={:.0}",
            i + 1,
            r.seed,
            names.join(","),
            r.ops,
            r.ok,
            r.fail,
            r.unknown,
            r.client_errors,
            r.faults.values().sum::<usize>(),
            r.violations,
            r.lost_writes,
            r.longest_write_gap_ms
        );
        for an in &r.anomalies {
            eprintln!("  {} {}: {}", an.kind, an.key, an.detail);
        }
        total.ops += r.ops;
        total.violations += r.violations;
        total.lost_writes += r.lost_writes;
        total.unchecked += r.unchecked;
        total.unavailable += r.unavailable;
        for (k, v) in &r.faults {
            *totals_by_fault.entry(k.clone()).or_default() += v;
        }
        reports.push(r);
    }
    let faults: usize = totals_by_fault.values().sum();
    if a.soak.is_some() || runs > 1 {
        eprintln!("\n| fault | injected |\n|---|---|");
        for (k, v) in &totals_by_fault {
            eprintln!("| {k} | {v} |");
        }
    }
    let summary = serde_json::json!({
        "runs": runs,
        "ops": total.ops,
        "faults": totals_by_fault,
        "violations": total.violations,
        "lost_writes": total.lost_writes,
        "unchecked": total.unchecked,
        "unavailable": total.unavailable,
        "seed": seed,
        "broken": a.broken,
        "brisk_args": a.brisk_args,
    });
    std::fs::write(
        a.out_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!(
        "RESULT runs={runs} ops={} faults={faults} violations={} lost_writes={} unchecked={} unavailable={}",
        total.ops, total.violations, total.lost_writes, total.unchecked, total.unavailable
    );
    // 1: consistency violated; 3: nothing violated, but a key went unchecked or the cluster
    // did not come back.
    Ok(if total.violations > 0 || total.lost_writes > 0 {
        ExitCode::from(1)
    } else if !run::anomalies_are_clean(&total) {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("brisk-torture: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(main_async(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("brisk-torture: {e:#}");
            println!("RESULT runs=0 ops=0 faults=0 violations=0 lost_writes=0 unchecked=0 unavailable=0 error=1");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_suite_covers_every_fault_kind() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..6 {
            seen.extend(faults_for(i, 6, &nemesis::ALL));
        }
        assert_eq!(seen.len(), nemesis::ALL.len());
    }
}
