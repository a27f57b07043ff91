//! `brisk bench compare`: brisk against etcd 3.4 on the same machine, in one run. Starts a
//! fresh 3-member cluster of each on loopback, drives both with the same client loop
//! (`driver`), alternating the systems per workload and client count, and reports ops/s,
//! latency percentiles, server CPU per 1k operations, bytes on disk per logical byte, restart
//! time and the disk's fsync latency, with the brisk/etcd ratio per row. Prints a table,
//! writes JSON and an SVG plot.

pub mod driver;
mod plot;
pub mod systems;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use backon::{ConstantBuilder, Retryable};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::progress;
use driver::Workload;
use systems::{Cluster, System};

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// A short run (1 round, 3 s per cell, clients 1,16,64, a 32 MiB restart).
    #[arg(long)]
    pub quick: bool,
    /// Only brisk (no etcd needed; ratios are left empty).
    #[arg(long)]
    pub brisk_only: bool,
    /// Workloads (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub workloads: Vec<Workload>,
    /// Client counts (default 1,16,64,256; --quick 1,16,64).
    #[arg(long, value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Seconds per measurement (default 10; --quick 3).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Rounds of every cell, alternating which system goes first (default 2; --quick 1).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Data sizes for the restart measurement, e.g. 512MiB,2GiB (default; --quick 32MiB;
    /// "none" skips it).
    #[arg(long)]
    pub restart_sizes: Option<String>,
    /// The brisk binary for the servers (default: this one).
    #[arg(long)]
    pub brisk: Option<PathBuf>,
    /// An extra flag for every `brisk serve` (repeatable), e.g. --brisk-arg=--fsm-sync
    /// --brisk-arg=nosync, to compare configurations.
    #[arg(long = "brisk-arg", allow_hyphen_values = true)]
    pub brisk_args: Vec<String>,
    /// Spread the clients over all three members (client i on member leader+i mod 3) instead
    /// of putting them all on the leader: followers serve linearizable reads after asking
    /// the leader for a read index, and forward writes.
    #[arg(long)]
    pub spread: bool,
    /// Where the clusters' data goes (emptied first).
    #[arg(long, default_value = "bench-work/compare")]
    pub work_dir: PathBuf,
    /// Where the JSON and the SVG plot go.
    #[arg(long, default_value = "bench-out")]
    pub out_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub system: System,
    pub workload: Workload,
    pub clients: usize,
    pub round: usize,
    pub ops: u64,
    pub ops_per_s: f64,
    pub mb_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    pub conflicts: u64,
    /// Server CPU seconds (all three members) per 1,000 operations.
    pub cpu_s_per_kop: f64,
    /// The disk's fsync latency sampled before this pair of measurements, ms.
    pub fsync_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub workload: Workload,
    pub clients: usize,
    pub brisk_ops_per_s: f64,
    pub etcd_ops_per_s: Option<f64>,
    /// brisk / etcd throughput (median over rounds).
    pub throughput_ratio: Option<f64>,
    pub brisk_p99_ms: f64,
    pub etcd_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub system: System,
    pub size_bytes: u64,
    /// Seconds from starting the killed members to the first successful linearizable read.
    pub first_read_s: f64,
    pub disk_bytes_per_logical_byte: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: String,
    /// Whether the clients were spread over all members (otherwise all on the leader).
    pub spread: bool,
    pub rows: Vec<Row>,
    pub ratios: Vec<Ratio>,
    pub restarts: Vec<Restart>,
}

/// Which member each client of a cell connects to.
#[derive(Clone, Copy, Debug)]
struct Placement {
    leader: usize,
    /// Client i on member leader+i mod 3; otherwise every client on the leader.
    spread: bool,
}

impl Placement {
    fn member(self, client: usize) -> usize {
        if self.spread {
            (self.leader + client) % 3
        } else {
            self.leader
        }
    }
}

/// Measures one cell: `clients` clients for `duration`, placed on the members by `placement`.
async fn measure(
    c: &Cluster,
    placement: Placement,
    workload: Workload,
    clients: usize,
    duration: Duration,
    round: usize,
    fsync_ms: f64,
) -> Result<Row> {
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        conns.push(driver::connect(c, placement.member(i)).await?);
    }
    let cpu_before = systems::cpu_seconds(&c.pids());
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            tokio::spawn(driver::client(
                conn,
                workload,
                until,
                (round * 1000 + i) as u64,
            ))
        })
        .collect();
    let mut hist: Histogram<u64> = Histogram::new_with_bounds(1, 120_000_000, 3)?;
    let (mut ops, mut errors, mut conflicts, mut bytes) = (0, 0, 0, 0);
    for t in tasks {
        let r = t.await?;
        hist.add(&r.latencies_us)?;
        ops += r.ops;
        errors += r.errors;
        conflicts += r.conflicts;
        bytes += r.bytes;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = systems::cpu_seconds(&c.pids()) - cpu_before;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(Row {
        system: c.system,
        workload,
        clients,
        round,
        ops,
        ops_per_s: ops as f64 / elapsed,
        mb_per_s: bytes as f64 / elapsed / 1e6,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        errors,
        conflicts,
        cpu_s_per_kop: if ops > 0 {
            cpu / ops as f64 * 1000.0
        } else {
            0.0
        },
        fsync_ms,
    })
}

/// Fills `c` with `size` logical bytes of 4–64 KiB values, kills every member, restarts
/// them and times the first linearizable read.
async fn restart(c: &mut Cluster, size: u64) -> Result<Restart> {
    let leader = c.leader(Duration::from_secs(60)).await?;
    let mut written = 0u64;
    let mut n = 0u64;
    let conns: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..16 {
            v.push(driver::connect(c, leader).await?);
        }
        v
    };
    let bar = progress::bytes(format!("filling {} to {} MiB", c.system, size >> 20), size);
    let mut rng = rand::rng();
    while written < size {
        let mut batch = Vec::new();
        for conn in &conns {
            let v = driver::value(&mut rng, Workload::Bulk);
            written += v.len() as u64;
            let k = format!("fill/{n:010}").into_bytes();
            n += 1;
            let conn = conn.clone();
            batch.push(tokio::spawn(async move {
                // A new leader refuses writes for a moment (UNAVAILABLE): retry as a client
                // would.
                (|| conn.put(k.clone(), v.clone()))
                    .retry(
                        ConstantBuilder::new()
                            .with_delay(Duration::from_millis(20))
                            .with_max_times(100),
                    )
                    .when(|s| s.code() == tonic::Code::Unavailable)
                    .await
            }));
        }
        for b in batch {
            b.await?
                .map_err(|s| anyhow::anyhow!("filling: {}", s.message()))?;
        }
        bar.set_position(written.min(size));
    }
    bar.finish_and_clear();
    let _restarting = progress::phase(format!(
        "{} at {} MiB: settling, restarting, waiting for the first linearizable read",
        c.system,
        size >> 20
    ));
    // Let the members settle (snapshots, compactions) as a running cluster would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let disk = systems::disk_bytes(&c.data_dirs());
    c.kill9();
    let started = c.start()?;
    let deadline = started + Duration::from_secs(600);
    loop {
        for i in 0..3 {
            if driver::linearizable_read_ok(c, i).await {
                return Ok(Restart {
                    system: c.system,
                    size_bytes: size,
                    first_read_s: started.elapsed().as_secs_f64(),
                    disk_bytes_per_logical_byte: disk as f64 / written as f64,
                });
            }
        }
        if Instant::now() > deadline {
            bail!("{} served no read within 600 s of a restart", c.system);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 0 => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        n => v[n / 2],
    }
}

pub fn ratios(rows: &[Row]) -> Vec<Ratio> {
    let mut out = Vec::new();
    let mut cells: Vec<(Workload, usize)> = rows.iter().map(|r| (r.workload, r.clients)).collect();
    cells.dedup();
    let mut seen = Vec::new();
    for cell in cells {
        if seen.contains(&cell) {
            continue;
        }
        seen.push(cell);
        let of = |s: System, f: fn(&Row) -> f64| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.system == s && (r.workload, r.clients) == cell)
                .map(f)
                .collect();
            (!v.is_empty()).then(|| median(v))
        };
        let brisk = of(System::Brisk, |r| r.ops_per_s).unwrap_or(0.0);
        let etcd = of(System::Etcd, |r| r.ops_per_s);
        out.push(Ratio {
            workload: cell.0,
            clients: cell.1,
            brisk_ops_per_s: brisk,
            etcd_ops_per_s: etcd,
            throughput_ratio: etcd.filter(|e| *e > 0.0).map(|e| brisk / e),
            brisk_p99_ms: of(System::Brisk, |r| r.p99_ms).unwrap_or(0.0),
            etcd_p99_ms: of(System::Etcd, |r| r.p99_ms),
        });
    }
    out
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb / (1 << 20))
        .unwrap_or(0);
    format!("{cpus} cores, {mem} GiB")
}

pub async fn run(a: CompareArgs) -> Result<ExitCode> {
    let duration = Duration::from_secs_f64(a.duration.unwrap_or(if a.quick { 3.0 } else { 10.0 }));
    let rounds = a.rounds.unwrap_or(if a.quick { 1 } else { 2 }).max(1);
    let clients = if a.clients.is_empty() {
        if a.quick {
            vec![1, 16, 64]
        } else {
            vec![1, 16, 64, 256]
        }
    } else {
        a.clients.clone()
    };
    let workloads = if a.workloads.is_empty() {
        vec![
            Workload::Put,
            Workload::Get,
            Workload::Mix,
            Workload::Txn,
            Workload::Bulk,
        ]
    } else {
        a.workloads.clone()
    };
    let sizes: Vec<u64> = match a.restart_sizes.as_deref() {
        Some("none") => vec![],
        Some(s) => s
            .split(',')
            .map(super::cold_start::parse_size)
            .collect::<Result<_>>()?,
        None if a.quick => vec![32 << 20],
        None => vec![512 << 20, 2 << 30],
    };
    let brisk_exe = match &a.brisk {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("locating the brisk binary")?,
    };
    let mut systems_run = vec![System::Brisk];
    let etcd_exe = if a.brisk_only {
        None
    } else {
        systems_run.push(System::Etcd);
        Some(systems::ensure_etcd()?)
    };
    if a.work_dir.exists() {
        std::fs::remove_dir_all(&a.work_dir)
            .with_context(|| format!("emptying {}", a.work_dir.display()))?;
    }
    std::fs::create_dir_all(&a.work_dir)?;
    std::fs::create_dir_all(&a.out_dir)?;
    let exe = |s: System| match s {
        System::Brisk => brisk_exe.clone(),
        System::Etcd => etcd_exe.clone().unwrap_or_default(),
    };
    let extra = |s: System| match s {
        System::Brisk => a.brisk_args.clone(),
        System::Etcd => Vec::new(),
    };
    let mut clusters = Vec::new();
    for &s in &systems_run {
        let mut c = Cluster::new(s, &exe(s), &a.work_dir)?;
        c.extra_args = extra(s);
        c.start()?;
        clusters.push(c);
    }
    let mut leaders = Vec::new();
    for c in &clusters {
        leaders.push(c.leader(Duration::from_secs(60)).await?);
    }

    let mut rows = Vec::new();
    let cells = rounds * workloads.len() * clients.len() * clusters.len();
    let bar = progress::steps("measuring", cells as u64);
    for round in 0..rounds {
        for &w in &workloads {
            for &n in &clients {
                let fsync_ms = super::cold_start::fsync_latency_ms(&a.work_dir)?;
                // Alternate which system goes first, so drift in the machine hits both.
                let mut order: Vec<usize> = (0..clusters.len()).collect();
                if (round + rows.len()) % 2 == 1 {
                    order.reverse();
                }
                for i in order {
                    bar.set_message(format!("measuring {} {w} clients={n}", clusters[i].system));
                    let placement = Placement {
                        leader: leaders[i],
                        spread: a.spread,
                    };
                    let row =
                        measure(&clusters[i], placement, w, n, duration, round, fsync_ms).await?;
                    progress::say(&bar, format!(
                        "{:<6} {:<5} clients={:<4} {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  cpu {:.3} s/kop  errors {}",
                        row.system,
                        w,
                        n,
                        row.ops_per_s,
                        row.p50_ms,
                        row.p99_ms,
                        row.cpu_s_per_kop,
                        row.errors
                    ));
                    bar.inc(1);
                    rows.push(row);
                }
            }
        }
    }
    bar.finish_and_clear();
    let mut restarts = Vec::new();
    for &size in &sizes {
        for c in clusters.iter_mut() {
            // A fresh cluster per size and system: only the fill is on disk.
            let s = c.system;
            c.kill9();
            *c = Cluster::new(s, &exe(s), &a.work_dir)?;
            c.extra_args = extra(s);
            c.start()?;
            let r = restart(c, size).await?;
            eprintln!(
                "{:<6} restart at {} MiB: first linearizable read after {:.3} s ({:.2} bytes on disk per byte)",
                s,
                size >> 20,
                r.first_read_s,
                r.disk_bytes_per_logical_byte
            );
            restarts.push(r);
        }
    }
    drop(clusters);

    let report = Report {
        machine: machine(),
        spread: a.spread,
        ratios: ratios(&rows),
        rows,
        restarts,
    };
    print_table(&report);
    let json = a.out_dir.join("compare.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    let svg = a.out_dir.join("compare.svg");
    std::fs::write(&svg, plot::throughput(&report)?)?;
    eprintln!("wrote {} and {}", json.display(), svg.display());
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &Report) {
    println!("| workload | clients | brisk ops/s (p99 ms) | etcd ops/s (p99 ms) | brisk / etcd |");
    println!("|---|---|---|---|---|");
    for x in &r.ratios {
        let etcd = match (x.etcd_ops_per_s, x.etcd_p99_ms) {
            (Some(o), Some(p)) => format!("{o:.0} ({p:.1})"),
            _ => "–".into(),
        };
        let ratio = x
            .throughput_ratio
            .map(|v| format!("{v:.2}"))
            .unwrap_or("–".into());
        println!(
            "| {} | {} | {:.0} ({:.1}) | {etcd} | {ratio} |",
            x.workload, x.clients, x.brisk_ops_per_s, x.brisk_p99_ms
        );
    }
    for s in &r.restarts {
        println!(
            "restart {} at {} MiB: {:.3} s to the first linearizable read; {:.2} bytes on disk per logical byte",
            s.system,
            s.size_bytes >> 20,
            s.first_read_s,
            s.disk_bytes_per_logical_byte
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: System, clients: usize, ops: f64) -> Row {
        Row {
            system,
            workload: Workload::Put,
            clients,
            round: 0,
            ops: ops as u64,
            ops_per_s: ops,
            mb_per_s: 0.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            p999_ms: 3.0,
            errors: 0,
            conflicts: 0,
            cpu_s_per_kop: 0.0,
            fsync_ms: 0.1,
        }
    }

    #[test]
    fn ratios_take_the_median_of_the_rounds() {
        let rows = vec![
            row(System::Brisk, 16, 100.0),
            row(System::Etcd, 16, 50.0),
            row(System::Brisk, 16, 300.0),
            row(System::Etcd, 16, 100.0),
            row(System::Brisk, 16, 200.0),
            row(System::Etcd, 16, 200.0),
            row(System::Brisk, 64, 10.0),
        ];
        let r = ratios(&rows);
        assert_eq!(r.len(), 2);
        assert_eq!(
            median(vec![1.0, 4.0]),
            2.5,
            "an even count averages the middle two"
        );
        assert_eq!(r[0].brisk_ops_per_s, 200.0);
        assert_eq!(r[0].etcd_ops_per_s, Some(100.0));
        assert_eq!(r[0].throughput_ratio, Some(2.0));
        assert_eq!(r[1].throughput_ratio, None, "no etcd row, no ratio");
    }
}
