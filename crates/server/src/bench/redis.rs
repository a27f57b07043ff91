//! `brisk bench redis`: `redis-benchmark` against a 3-node brisk cluster's Redis endpoint and
//! against a durable single-node `redis-server` (`--appendonly yes --appendfsync always`),
//! alternately in one run, with and without pipelining. Prints a table of requests/s and
//! latency with the brisk/Redis ratio per row, and writes JSON and an SVG bar chart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use plotters::prelude::{ChartBuilder, Color, RGBColor, Rectangle, SeriesLabelPosition};
use serde::Serialize;

use super::cold_start::fsync_latency_ms;
use super::compare::systems::{Cluster, System};
use super::plot;
use super::progress;

#[derive(clap::Args, Debug)]
pub struct RedisBenchArgs {
    /// redis-benchmark's tests (-t).
    #[arg(long, default_value = "set,get,incr,lpush,hset")]
    pub tests: String,
    /// Requests per test (-n).
    #[arg(long, default_value_t = 200_000)]
    pub requests: u64,
    /// Parallel connections (-c).
    #[arg(long, default_value_t = 50)]
    pub clients: u32,
    /// Pipeline depths to run (-P), comma-separated.
    #[arg(long, default_value = "1,16")]
    pub pipelines: String,
    /// 20,000 requests per test: a run of about a minute.
    #[arg(long)]
    pub quick: bool,
    /// Scratch directory for both systems' data.
    #[arg(long, default_value = "/tmp/brisk-bench-redis")]
    pub work_dir: PathBuf,
    /// Where the results go, as JSON.
    #[arg(long, default_value = "bench-redis.json")]
    pub out: PathBuf,
    /// Where the chart of the results goes.
    #[arg(long, default_value = "bench-redis.svg")]
    pub svg: PathBuf,
}

#[derive(Serialize, Clone, Debug)]
pub struct Measured {
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Row {
    pub test: String,
    pub pipeline: u32,
    pub redis: Measured,
    pub brisk: Measured,
    /// brisk requests/s over durable Redis's.
    pub ratio: f64,
    /// The disk's fsync latency sampled before this pipeline depth's pair, ms.
    pub fsync_ms: f64,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub machine: String,
    pub clients: u32,
    pub requests: u64,
    pub rows: Vec<Row>,
}

/// A durable single-node redis-server, stopped on drop.
struct DurableRedis {
    child: Child,
    port: u16,
}

impl DurableRedis {
    fn start(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = crate::dev::free_port()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server (Debian's redis-server package; scripts/setup.sh installs it)")?;
        Ok(DurableRedis { child, port })
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a write through `port` succeeds: a brisk node answers PING before its cluster
/// has a settled leader, and a benchmark that starts then fails on TRYAGAIN.
async fn wait_writable(port: u16) -> Result<()> {
    let mut last = String::new();
    for _ in 0..300 {
        let o = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "set", "bench:ready", "1"])
            .output();
        match o {
            Ok(o) if o.stdout.starts_with(b"OK") => return Ok(()),
            Ok(o) => last = String::from_utf8_lossy(&o.stdout).trim().to_string(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no write succeeded on port {port} within 30 s (last answer: {last})")
}

/// One redis-benchmark run; its CSV rows by test name.
fn redis_benchmark(
    port: u16,
    a: &RedisBenchArgs,
    requests: u64,
    pipeline: u32,
) -> Result<Vec<(String, Measured)>> {
    let o = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", &a.tests, "-c", &a.clients.to_string()])
        .args(["-n", &requests.to_string(), "-P", &pipeline.to_string()])
        .args(["-r", "100000", "--csv"])
        .output()
        .context("running redis-benchmark")?;
    if !o.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    parse_csv(&String::from_utf8_lossy(&o.stdout))
}

/// redis-benchmark's `--csv` output: a header, then "TEST","rps","avg",...,"p50","p95","p99","max".
pub fn parse_csv(text: &str) -> Result<Vec<(String, Measured)>> {
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').map(|x| x.trim_matches('"')).collect();
        if f.len() < 8 {
            continue;
        }
        let num = |i: usize| -> Result<f64> {
            f[i].parse()
                .with_context(|| format!("bad number {:?} in {line:?}", f[i]))
        };
        rows.push((
            f[0].to_string(),
            Measured {
                requests_per_s: num(1)?,
                p50_ms: num(4)?,
                p99_ms: num(6)?,
            },
        ));
    }
    if rows.is_empty() {
        bail!("redis-benchmark printed no results: {text:?}");
    }
    Ok(rows)
}

pub async fn run(a: RedisBenchArgs) -> Result<ExitCode> {
    for tool in ["redis-server", "redis-benchmark", "redis-cli"] {
        if Command::new(tool).arg("--version").output().is_err() {
            bail!("{tool} is missing: install Debian's redis-server and redis-tools (scripts/setup.sh does)");
        }
    }
    let requests = if a.quick { 20_000 } else { a.requests };
    let pipelines: Vec<u32> = a
        .pipelines
        .split(',')
        .map(|p| p.trim().parse().context("--pipelines takes numbers"))
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(&a.work_dir)?;
    let exe = std::env::current_exe()?;
    let mut brisk = Cluster::new(System::Brisk, &exe, &a.work_dir)?;
    brisk.serve_redis()?;
    brisk.start()?;
    let leader = brisk.leader(Duration::from_secs(60)).await?;
    let brisk_port: u16 = brisk.members[leader]
        .redis
        .as_deref()
        .and_then(|r| r.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .context("the leader's Redis port")?;
    wait_writable(brisk_port).await?;
    let redis = DurableRedis::start(&a.work_dir.join("redis"))?;
    wait_writable(redis.port).await?;

    let mut rows = Vec::new();
    let bar = progress::steps("redis-benchmark", 2 * pipelines.len() as u64);
    for &pipeline in &pipelines {
        let fsync_ms = fsync_latency_ms(&a.work_dir)?;
        let system = format!("-P {pipeline}: durable redis-server");
        progress::say(&bar, format!("bench redis: {system}"));
        bar.set_message(system);
        let r = redis_benchmark(redis.port, &a, requests, pipeline)?;
        bar.inc(1);
        let system = format!("-P {pipeline}: brisk (3 nodes, leader endpoint)");
        progress::say(&bar, format!("bench redis: {system}"));
        bar.set_message(system);
        let b = redis_benchmark(brisk_port, &a, requests, pipeline)?;
        bar.inc(1);
        for (test, rm) in r {
            if let Some((_, bm)) = b.iter().find(|(t, _)| *t == test) {
                rows.push(Row {
                    ratio: bm.requests_per_s / rm.requests_per_s.max(1e-9),
                    test: test.clone(),
                    pipeline,
                    redis: rm,
                    brisk: bm.clone(),
                    fsync_ms,
                });
            }
        }
    }
    drop(bar);
    let report = Report {
        machine: format!(
            "{} cores, {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::env::consts::ARCH
        ),
        clients: a.clients,
        requests,
        rows,
    };
    println!("{}", table(&report));
    std::fs::write(&a.out, serde_json::to_string_pretty(&report)?)?;
    std::fs::write(&a.svg, svg(&report)?)?;
    eprintln!(
        "bench redis: wrote {} and {}",
        a.out.display(),
        a.svg.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn table(r: &Report) -> String {
    let mut s = String::from(
        "| test | -P | durable redis-server req/s (p50/p99 ms) | brisk 3 nodes req/s (p50/p99 ms) | brisk / redis | fsync ms |\n|---|---|---|---|---|---|\n",
    );
    for row in &r.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} ({:.2}/{:.2}) | {:.0} ({:.2}/{:.2}) | {:.2} | {:.2} |",
            row.test,
            row.pipeline,
            row.redis.requests_per_s,
            row.redis.p50_ms,
            row.redis.p99_ms,
            row.brisk.requests_per_s,
            row.brisk.p50_ms,
            row.brisk.p99_ms,
            row.ratio,
            row.fsync_ms
        );
    }
    s
}

/// Requests/s per test and pipeline depth, durable Redis next to brisk.
pub fn svg(r: &Report) -> Result<String> {
    let size = ((r.rows.len() as u32 * 72).max(480) + 100, 420);
    let title = format!(
        "requests/s, {} clients: durable redis-server vs brisk, 3 nodes",
        r.clients
    );
    plot::svg(size, &title, |area| {
        let max = r
            .rows
            .iter()
            .map(|x| x.redis.requests_per_s.max(x.brisk.requests_per_s))
            .fold(1.0, f64::max);
        let rows = plot::Categories(
            r.rows
                .iter()
                .map(|row| format!("{} P{}", row.test.to_lowercase(), row.pipeline))
                .collect(),
        );
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(rows, 0.0..max * 1.25)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("test, pipeline depth (-P)")
            .y_desc("requests/s")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        // Each row's category holds durable Redis's bar on the left, brisk's on the right.
        let bars = |offset: f64, color: RGBColor, requests_per_s: fn(&Row) -> f64| {
            r.rows.iter().enumerate().map(move |(i, row)| {
                let left = i as f64 + offset;
                let top = (left + 0.4, requests_per_s(row));
                Rectangle::new([(left, 0.0), top], color.filled())
            })
        };
        chart
            .draw_series(bars(0.1, plot::BASELINE, |row| row.redis.requests_per_s))?
            .label("durable redis-server")
            .legend(plot::legend_box(plot::BASELINE));
        chart
            .draw_series(bars(0.5, plot::BRISK, |row| row.brisk.requests_per_s))?
            .label("brisk, 3 nodes")
            .legend(plot::legend_box(plot::BRISK));
        plot::legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_csv_parses() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"32786.89\",\"0.075\",\"0.016\",\"0.055\",\"0.103\",\"0.463\",\"5.431\"\n";
        let rows = parse_csv(text).unwrap();
        assert_eq!(rows[0].0, "SET");
        assert_eq!(rows[0].1.requests_per_s, 32786.89);
        assert_eq!(rows[0].1.p99_ms, 0.463);
        assert!(parse_csv("\"test\"\n").is_err());
    }

    #[test]
    fn the_chart_has_both_systems_bars_per_row() {
        let measured = |requests_per_s| Measured {
            requests_per_s,
            p50_ms: 0.5,
            p99_ms: 2.0,
        };
        let rows = [("SET", 1), ("GET", 1), ("SET", 16), ("GET", 16)]
            .into_iter()
            .map(|(test, pipeline)| Row {
                test: test.into(),
                pipeline,
                redis: measured(40_000.0 * pipeline as f64),
                brisk: measured(20_000.0 * pipeline as f64),
                ratio: 0.5,
                fsync_ms: 1.0,
            })
            .collect();
        let report = Report {
            machine: "2 cores".into(),
            clients: 50,
            requests: 1000,
            rows,
        };
        let svg = svg(&report).unwrap();
        crate::bench::plot::assert_shows(
            &svg,
            &[
                "set P1",
                "get P16",
                "requests/s",
                "durable redis-server",
                "brisk, 3 nodes",
                "50 clients",
            ],
        );
    }
}
