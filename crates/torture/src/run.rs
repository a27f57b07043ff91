//! One run: start a cluster, run the clients with the nemesis on a schedule, heal, read every
//! key, check the history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};

use crate::check::{self, Anomaly};
use crate::cluster::Cluster;
use crate::history::{Op, Outcome};
use crate::nemesis::{self, Fault};
use crate::net::Firewall;
use crate::workload::{self, Nodes, Recorder};

pub struct RunConfig {
    pub index: usize,
    pub seed: u64,
    pub duration: Duration,
    pub clients: u32,
    pub faults: Vec<Fault>,
    pub brisk: PathBuf,
    pub work: PathBuf,
    pub out: PathBuf,
    pub broken: Option<String>,
    /// Extra flags for every `brisk serve` (e.g. `--fsm-sync nosync`).
    pub serve_args: Vec<String>,
    pub lazyfs: bool,
    /// Log each fault as it is injected.
    pub verbose: bool,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RunReport {
    pub run: usize,
    pub seed: u64,
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    pub faults: BTreeMap<String, usize>,
    pub violations: usize,
    pub lost_writes: usize,
    /// Keys whose linearizability search ran out of time (nothing proven about them).
    pub unchecked: usize,
    /// Times the cluster did not come back after a fault healed.
    pub unavailable: usize,
    pub anomalies: Vec<Anomaly>,
    /// Operations that failed with an error a client sees (unavailable, timed out, outcome
    /// unknown), as opposed to a conflict or a failed comparison.
    pub client_errors: usize,
    /// Longest time between two acknowledged writes, ms.
    pub longest_write_gap_ms: f64,
    pub history: String,
}

pub async fn run(cfg: &RunConfig) -> Result<RunReport> {
    let work = cfg.work.join(format!("run-{}", cfg.index));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("emptying {}", work.display()))?;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut cluster = Cluster::new(&work, &cfg.brisk, cfg.lazyfs, cfg.broken.clone())?
        .with_serve_args(cfg.serve_args.clone());
    let fw = Firewall::new()?;
    cluster.start_all()?;
    cluster.wait_ready(Duration::from_secs(60)).await?;

    let rec = Recorder::new();
    let nodes = Nodes::new(&cluster.client_addrs())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut clients = Vec::new();
    for id in 0..cfg.clients {
        clients.push(tokio::spawn(workload::run_client(
            id,
            nodes.clone(),
            rec.clone(),
            stop_rx.clone(),
            cfg.seed.wrapping_mul(31).wrapping_add(id as u64),
        )));
    }

    let mut report = RunReport {
        run: cfg.index,
        seed: cfg.seed,
        ..Default::default()
    };
    let mut failures: Vec<Anomaly> = Vec::new();
    let end = tokio::time::Instant::now() + cfg.duration;
    let mut next = 0usize;
    while tokio::time::Instant::now() < end && !cfg.faults.is_empty() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..2_500))).await;
        let fault = cfg.faults[next % cfg.faults.len()];
        next += 1;
        if cfg.verbose {
            eprintln!("  {:>6.1}s {fault}", rec.now() as f64 / 1e9);
        }
        if let Err(e) = nemesis::apply(fault, &mut cluster, &fw, &mut rng).await {
            // A power cut that did not complete leaves a node without its filesystem: the
            // run cannot go on meaningfully.
            if fault.needs_lazyfs() {
                return Err(e.context("power cut"));
            }
            failures.push(Anomaly {
                kind: "nemesis-failed".into(),
                key: String::new(),
                detail: format!("{fault}: {e:#}"),
            });
        }
        *report.faults.entry(fault.to_string()).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_500..3_500))).await;
        nemesis::heal(&mut cluster, &fw)?;
        // A node that cannot start again (after a power cut, say) is a failure in itself.
        if let Err(e) = cluster.wait_ready(Duration::from_secs(60)).await {
            failures.push(Anomaly {
                kind: "unavailable".into(),
                key: String::new(),
                detail: format!("after {fault}: {e:#}"),
            });
            break;
        }
    }
    if cfg.faults.is_empty() {
        tokio::time::sleep(cfg.duration).await;
    }
    let _ = stop_tx.send(true);
    for c in clients {
        let _ = c.await;
    }
    nemesis::heal(&mut cluster, &fw)?;
    if let Err(e) = cluster.wait_ready(Duration::from_secs(60)).await {
        failures.push(Anomaly {
            kind: "unavailable".into(),
            key: String::new(),
            detail: format!("after healing: {e:#}"),
        });
    }
    for e in workload::final_reads(&nodes, &rec, Duration::from_secs(60)).await {
        failures.push(Anomaly {
            kind: "unavailable".into(),
            key: String::new(),
            detail: e,
        });
    }
    cluster.shutdown();
    drop(fw);

    let mut history = rec.take();
    history.sort_by_key(|o| o.invoke);
    report.ops = history
        .iter()
        .filter(|o| o.client != workload::FINAL_CLIENT)
        .count();
    for o in &history {
        match o.outcome {
            Outcome::Ok => report.ok += 1,
            Outcome::Fail => report.fail += 1,
            Outcome::Unknown => report.unknown += 1,
        }
    }
    report.longest_write_gap_ms = longest_write_gap(&history);
    report.client_errors = history
        .iter()
        .filter(|o| o.error.as_deref().is_some_and(workload::is_client_error))
        .count();
    let checking = std::time::Instant::now();
    let mut anomalies = check::check(&history, Duration::from_secs(30));
    if cfg.verbose {
        eprintln!(
            "  checked {} operations in {:.1} s",
            history.len(),
            checking.elapsed().as_secs_f64()
        );
    }
    anomalies.extend(failures);
    report.lost_writes = anomalies.iter().filter(|a| check::is_lost(a)).count();
    report.violations = check::violations(&anomalies);
    report.unchecked = anomalies.iter().filter(|a| check::is_unchecked(a)).count();
    report.unavailable = anomalies
        .iter()
        .filter(|a| check::is_availability(a))
        .count();
    std::fs::create_dir_all(&cfg.out)?;
    let hist_path = cfg.out.join(format!("run-{}-history.jsonl", cfg.index));
    crate::history::write_jsonl(&hist_path, &history.iter().collect::<Vec<_>>())?;
    report.history = hist_path.display().to_string();
    if !anomalies.is_empty() {
        crate::report::write_failure(&cfg.out, cfg.index, &history, &anomalies)?;
    }
    report.anomalies = anomalies;
    let summary = cfg.out.join(format!("run-{}.json", cfg.index));
    std::fs::write(&summary, serde_json::to_string_pretty(&report)?)?;
    if anomalies_are_clean(&report) {
        // Keep the data and logs of failed runs only.
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(report)
}

pub fn anomalies_are_clean(r: &RunReport) -> bool {
    r.violations == 0 && r.lost_writes == 0 && r.unchecked == 0 && r.unavailable == 0
}

fn longest_write_gap(history: &[Op]) -> f64 {
    let mut acks: Vec<i64> = history
        .iter()
        .filter(|o| o.is_write() && o.outcome == Outcome::Ok && o.client != workload::FINAL_CLIENT)
        .map(|o| o.complete)
        .collect();
    acks.sort_unstable();
    acks.windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e6)
        .fold(0.0, f64::max)
}

pub fn ensure_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}
