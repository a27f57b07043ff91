//! `brisk bench rolling-restart`: fills a `brisk dev` cluster, then rolls it with `brisk
//! rolling-restart --dev` under a steady client load, and reports per-node ready times, the
//! whole roll's time, the errors clients saw, and latency during the roll against before it.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use brisk_client::{Client, Read};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use plotters::prelude::{
    ChartBuilder, Color, LineSeries, RGBColor, Rectangle, SeriesLabelPosition,
};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;

use super::cold_start::{fsync_latency_ms, parse_size};
use super::plot;
use super::progress;
use crate::dev::{http_status, read_cluster_file};

#[derive(clap::Args, Debug)]
pub struct RollingBenchArgs {
    /// Bytes of values to write before the roll (e.g. 512MiB, 2GiB).
    #[arg(long, default_value = "2GiB")]
    pub size: String,
    /// Concurrent clients during the roll (half write 256 B values, half read).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds of load measured before the roll starts (and after it ends).
    #[arg(long, default_value_t = 5.0)]
    pub window: f64,
    /// The roll's --health-timeout, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub health_timeout: f64,
    /// Smallest fill value, bytes.
    #[arg(long, default_value_t = 4096)]
    pub value_min: usize,
    /// Largest fill value, bytes.
    #[arg(long, default_value_t = 65536)]
    pub value_max: usize,
    /// Concurrent writers while filling.
    #[arg(long, default_value_t = 32)]
    pub fill_clients: usize,
    /// Working directory for the cluster (emptied first).
    #[arg(long, default_value = "bench-rolling-data")]
    pub work: PathBuf,
    /// Where rolling-restart.json and rolling-restart.svg go.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
}

/// One client operation: when it was invoked (seconds since the load started), how long it
/// took, and whether it failed.
#[derive(Clone, Copy)]
struct Sample {
    at: f64,
    micros: u64,
    failed: bool,
}

#[derive(Serialize, Debug)]
pub struct Phase {
    pub name: &'static str,
    pub seconds: f64,
    pub ops: u64,
    pub errors: u64,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub size_bytes: u64,
    pub fill_seconds: f64,
    pub fsync_ms: f64,
    pub clients: usize,
    pub health_timeout_s: f64,
    pub roll_ok: bool,
    pub roll_seconds: f64,
    /// The roll's own report (per node: stop and ready times, leader moves, cold start).
    pub roll: serde_json::Value,
    pub phases: Vec<Phase>,
    pub errors: Vec<String>,
}

/// A `brisk dev` process and its nodes, stopped on drop.
struct DevProcess {
    child: std::process::Child,
    dir: PathBuf,
}

impl DevProcess {
    async fn start(exe: &Path, dir: &Path) -> Result<DevProcess> {
        std::fs::create_dir_all(dir)?;
        let log = std::fs::File::create(dir.join("dev.log"))?;
        let base = free_base_port()?;
        let child = std::process::Command::new(exe)
            .args(["dev", "--nodes", "3", "--base-port", &base.to_string()])
            .arg("--data-dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting brisk dev")?;
        let p = DevProcess {
            child,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(f) = read_cluster_file(dir) {
                let mut ready = true;
                for n in &f.nodes {
                    ready &= http_status(&n.http, "/readyz").await == Some(200);
                }
                if ready {
                    return Ok(p);
                }
            }
            if Instant::now() > deadline {
                bail!("the dev cluster did not turn ready; see {}", dir.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn endpoints(&self) -> Result<Vec<String>> {
        Ok(read_cluster_file(&self.dir)?
            .nodes
            .into_iter()
            .map(|n| n.grpc)
            .collect())
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        // brisk dev stops its nodes gracefully on SIGTERM.
        crate::dev::signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// A base port whose client, HTTP (+1000) and peer (+2000) ranges are free for 3 nodes.
fn free_base_port() -> Result<u16> {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let start = (std::process::id() % 9000) as u16;
    for k in 0..9000u16 {
        let base = 20_000 + (start + k * 7) % 9000;
        if (0..3).all(|i| free(base + i) && free(base + 1000 + i) && free(base + 2000 + i)) {
            return Ok(base);
        }
    }
    bail!("no free ports in 20000..31000")
}

pub async fn run(a: RollingBenchArgs) -> Result<ExitCode> {
    let size = parse_size(&a.size)?;
    if a.clients < 2 {
        bail!("--clients must be at least 2 (writers and readers)");
    }
    if a.work.exists() {
        std::fs::remove_dir_all(&a.work)
            .with_context(|| format!("emptying {}", a.work.display()))?;
    }
    std::fs::create_dir_all(&a.work)?;
    std::fs::create_dir_all(&a.out)?;
    let work = std::fs::canonicalize(&a.work)?;
    let exe = std::env::current_exe().context("locating the brisk binary")?;
    let fsync_ms = fsync_latency_ms(&work)?;

    let dev = DevProcess::start(&exe, &work.join("cluster")).await?;
    let client = Arc::new(
        Client::builder(dev.endpoints()?)
            .deadline(Duration::from_secs(30))
            .build()?,
    );
    eprintln!("filling {} ...", a.size);
    let filled = Instant::now();
    let bar = progress::bytes(format!("filling {}", a.size), size);
    fill(&client, size, &a, &bar).await?;
    drop(bar);
    let fill_seconds = filled.elapsed().as_secs_f64();
    // Snapshots on every node, so each restart has one to skip.
    let snapshots = progress::phase("snapshots on every node");
    let membership = client
        .call(brisk_client::Idempotence::Read, |ch| async move {
            brisk_proto::raft_admin_client::RaftAdminClient::new(ch)
                .configuration(brisk_proto::ConfigurationRequest {})
                .await
        })
        .await?;
    for m in membership.members {
        let ch = crate::cli::connect(&m.addr).await?;
        let mut req = tonic::Request::new(brisk_proto::SnapshotRequest {});
        req.set_timeout(Duration::from_secs(600));
        brisk_proto::raft_admin_client::RaftAdminClient::new(ch)
            .snapshot(req)
            .await
            .with_context(|| format!("snapshot on node {}", m.id))?;
    }
    drop(snapshots);

    eprintln!("load for {} s, then the roll ...", a.window);
    let bar = progress::phase(format!("load for {} s before the roll", a.window));
    let stop = Arc::new(AtomicBool::new(false));
    let load_start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        tasks.push(tokio::spawn(load_client(
            client.clone(),
            c,
            c % 2 == 0,
            load_start,
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs_f64(a.window)).await;
    bar.set_message("rolling restart under load");
    let roll_start = load_start.elapsed().as_secs_f64();
    let roll_json = work.join("roll.json");
    let roll_out = tokio::process::Command::new(&exe)
        .args(["rolling-restart", "--dev", "--data-dir"])
        .arg(work.join("cluster"))
        .args(["--health-timeout", &a.health_timeout.to_string(), "--json"])
        .arg(&roll_json)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running brisk rolling-restart")?;
    let roll_end = load_start.elapsed().as_secs_f64();
    bar.set_message(format!("load for {} s after the roll", a.window));
    tokio::time::sleep(Duration::from_secs_f64(a.window)).await;
    drop(bar);
    stop.store(true, Ordering::SeqCst);
    let load_end = load_start.elapsed().as_secs_f64();
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (s, e) = t.await?;
        samples.extend(s);
        errors.extend(e);
    }
    drop(dev);

    let roll: serde_json::Value = std::fs::read(&roll_json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    let phases = vec![
        phase("before", &samples, 0.0, roll_start)?,
        phase("during", &samples, roll_start, roll_end)?,
        phase("after", &samples, roll_end, load_end)?,
    ];
    let report = Report {
        size_bytes: size,
        fill_seconds,
        fsync_ms,
        clients: a.clients,
        health_timeout_s: a.health_timeout,
        roll_ok: roll_out.status.success(),
        roll_seconds: roll_end - roll_start,
        roll,
        phases,
        errors,
    };
    print_report(&report);
    if !report.roll_ok {
        eprintln!("{}", String::from_utf8_lossy(&roll_out.stderr));
    }
    let json = a.out.join("rolling-restart.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    let svg = a.out.join("rolling-restart.svg");
    std::fs::write(&svg, plot(&samples, roll_start, roll_end, load_end)?)?;
    println!("wrote {} and {}", json.display(), svg.display());
    Ok(if report.roll_ok && report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes random values of `value_min..=value_max` bytes until `size` bytes were
/// acknowledged.
async fn fill(
    client: &Arc<Client>,
    size: u64,
    a: &RollingBenchArgs,
    bar: &ProgressBar,
) -> Result<()> {
    let per = size / a.fill_clients.max(1) as u64 + 1;
    let (vmin, vmax) = (a.value_min, a.value_max.max(a.value_min));
    let mut tasks = Vec::new();
    for w in 0..a.fill_clients.max(1) {
        let client = client.clone();
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            let (mut done, mut i) = (0u64, 0u64);
            while done < per {
                let len = rng.random_range(vmin..=vmax);
                let mut value = vec![0u8; len];
                rng.fill(&mut value[..]);
                client
                    .put(format!("fill/{w:03}/{i:09}"), value)
                    .await
                    .with_context(|| format!("fill write {w}/{i}"))?;
                done += len as u64;
                bar.inc(len as u64);
                i += 1;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// One load client: puts of 256 B (writers) or linearizable gets (readers) until stopped.
async fn load_client(
    client: Arc<Client>,
    id: usize,
    writer: bool,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> (Vec<Sample>, Vec<String>) {
    let (mut samples, mut errors) = (Vec::new(), Vec::new());
    let value = vec![b'v'; 256];
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let t0 = Instant::now();
        let at = t0.duration_since(start).as_secs_f64();
        let r = if writer {
            client
                .put(format!("load/{id:03}/{n:09}"), value.clone())
                .await
                .map(|_| ())
        } else {
            client
                .get(format!("fill/000/{:09}", n % 64), Read::Linearizable)
                .await
                .map(|_| ())
        };
        n += 1;
        let failed = r.is_err();
        if let Err(e) = r {
            errors.push(format!("{at:.3}s client {id}: {e}"));
        }
        samples.push(Sample {
            at,
            micros: t0.elapsed().as_micros() as u64,
            failed,
        });
    }
    (samples, errors)
}

fn phase(name: &'static str, samples: &[Sample], from: f64, to: f64) -> Result<Phase> {
    let mut hist: Histogram<u64> = Histogram::new_with_bounds(1, 600_000_000, 3)?;
    let (mut ops, mut errors) = (0u64, 0u64);
    for s in samples.iter().filter(|s| s.at >= from && s.at < to) {
        ops += 1;
        errors += u64::from(s.failed);
        hist.saturating_record(s.micros.max(1));
    }
    let seconds = (to - from).max(1e-9);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(Phase {
        name,
        seconds,
        ops,
        errors,
        ops_per_s: ops as f64 / seconds,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: hist.max() as f64 / 1000.0,
    })
}

fn print_report(r: &Report) {
    println!(
        "rolling restart of a 3-node cluster holding {:.2} GiB (filled in {:.0} s; fsync {:.2} ms), {} clients, health budget {} s",
        r.size_bytes as f64 / (1u64 << 30) as f64,
        r.fill_seconds,
        r.fsync_ms,
        r.clients,
        r.health_timeout_s
    );
    if let Some(nodes) = r.roll["nodes"].as_array() {
        println!(
            "{:<6} {:<8} {:>8} {:>9}  COLD START",
            "NODE", "ROLE", "STOP_S", "READY_S"
        );
        for n in nodes {
            println!(
                "{:<6} {:<8} {:>8.2} {:>9.2}  {} ({})",
                n["id"].as_u64().unwrap_or(0),
                if n["was_leader"] == true {
                    "leader"
                } else {
                    "follower"
                },
                n["stop_s"].as_f64().unwrap_or(f64::NAN),
                n["ready_s"].as_f64().unwrap_or(f64::NAN),
                n["cold_start_outcome"].as_str().unwrap_or("?"),
                n["cold_start_reason"].as_str().unwrap_or("?"),
            );
        }
    }
    println!(
        "roll: {} in {:.2} s",
        if r.roll_ok { "ok" } else { "FAILED" },
        r.roll_seconds
    );
    println!(
        "{:<8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "PHASE", "SECONDS", "OPS", "ERRORS", "OPS/S", "P50_MS", "P99_MS"
    );
    for p in &r.phases {
        println!(
            "{:<8} {:>8.1} {:>8} {:>8} {:>9.0} {:>9.2} {:>9.2}",
            p.name, p.seconds, p.ops, p.errors, p.ops_per_s, p.p50_ms, p.p99_ms
        );
    }
    for e in r.errors.iter().take(10) {
        println!("client error: {e}");
    }
}

/// Completed operations per second and p99 latency per 250 ms, the roll shaded.
fn plot(samples: &[Sample], roll_start: f64, roll_end: f64, end: f64) -> Result<String> {
    const BUCKET: f64 = 0.25;
    let n = ((end / BUCKET).ceil() as usize).max(1);
    let mut buckets: Vec<Vec<u64>> = vec![Vec::new(); n];
    for s in samples {
        let i = ((s.at / BUCKET) as usize).min(n - 1);
        buckets[i].push(s.micros);
    }
    let rate: Vec<f64> = buckets.iter().map(|b| b.len() as f64 / BUCKET).collect();
    let p99: Vec<f64> = buckets
        .iter_mut()
        .map(|b| {
            b.sort_unstable();
            b.get((b.len() * 99 / 100).min(b.len().saturating_sub(1)))
                .map_or(0.0, |v| *v as f64 / 1000.0)
        })
        .collect();
    let title = "brisk rolling restart under load, per 250 ms";
    let end = end.max(BUCKET);
    plot::svg((860, 560), title, |area| {
        let panels = area.split_evenly((2, 1));
        for (panel, (series, what)) in panels
            .iter()
            .zip([(&rate, "completed ops/s"), (&p99, "p99 latency, ms")])
        {
            let max = series.iter().cloned().fold(1.0, f64::max) * 1.1;
            let mut chart = ChartBuilder::on(panel)
                .caption(what, (plot::FONT, 14))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..end, 0.0..max)?;
            chart
                .configure_mesh()
                .x_desc("seconds since the load started")
                .y_desc(what)
                .draw()?;
            let shade = RGBColor(0xdd, 0xdd, 0xdd);
            chart
                .draw_series([Rectangle::new(
                    [(roll_start, 0.0), (roll_end, max)],
                    shade.filled(),
                )])?
                .label("rolling restart")
                .legend(plot::legend_box(shade));
            chart
                .draw_series(LineSeries::new(
                    series
                        .iter()
                        .enumerate()
                        .map(|(i, v)| ((i as f64 + 0.5) * BUCKET, *v)),
                    plot::BRISK.stroke_width(2),
                ))?
                .label(what)
                .legend(plot::legend_line(plot::BRISK));
            plot::legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_shows_rate_and_latency_around_the_roll() {
        let samples: Vec<Sample> = (0..4000)
            .map(|i| Sample {
                at: i as f64 * 0.005,
                micros: if (8000..12000).contains(&(i * 5)) {
                    9_000
                } else {
                    1_500
                },
                failed: false,
            })
            .collect();
        let svg = plot(&samples, 8.0, 12.0, 20.0).unwrap();
        crate::bench::plot::assert_shows(
            &svg,
            &[
                "completed ops/s",
                "p99 latency, ms",
                "rolling restart",
                "seconds since the load started",
            ],
        );
        assert!(svg.contains("<polyline"));
    }
}
