//! `brisk bench cold-start`: restart time versus data size, for `--cold-start auto` and the
//! `always-restore` baseline.
//!
//! For each size it fills a local 3-node cluster (values of random size), snapshots every
//! node, then repeatedly `kill -9`s all three, restarts them and measures, from process
//! start, (a) every node's `/readyz` and (b) the first successful linearizable read. The
//! disk's fsync latency is sampled alongside. Prints a table, writes JSON and an SVG plot.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::*;
use plotters::prelude::{
    BindKeyPoints, ChartBuilder, Color, ErrorBar, IntoLogRange, LineSeries, SeriesLabelPosition,
};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::plot::{legend, legend_line, series_color, svg};
use super::progress;
use crate::cli::connect;
use crate::dev::http_status;

#[derive(clap::Args, Debug)]
pub struct ColdStartArgs {
    /// Data sizes to measure, ascending (e.g. 64MiB,1GiB,4GiB).
    #[arg(long, value_delimiter = ',', default_value = "64MiB,1GiB,4GiB")]
    pub sizes: Vec<String>,
    /// Restarts per size and mode.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Smallest value, bytes.
    #[arg(long, default_value_t = 4096)]
    pub value_min: usize,
    /// Largest value, bytes.
    #[arg(long, default_value_t = 65536)]
    pub value_max: usize,
    /// Concurrent writers while filling.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Where the cluster's data lives (emptied first).
    #[arg(long, default_value = "bench-cold-start-data")]
    pub work_dir: PathBuf,
    /// Where the table, JSON and SVG go.
    #[arg(long, default_value = "bench-out")]
    pub out_dir: PathBuf,
    /// Modes to measure.
    #[arg(long, value_delimiter = ',', default_value = "auto,always-restore")]
    pub modes: Vec<String>,
}

pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((s, 1));
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad size {s:?}"))?;
    Ok((n * mult as f64) as u64)
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

struct Node {
    id: u64,
    grpc: String,
    http: String,
    peer: String,
    dir: PathBuf,
    child: Option<Child>,
}

struct BenchCluster {
    nodes: Vec<Node>,
    bootstrap: String,
    exe: PathBuf,
    /// Throw-away certificates: the members talk mutual TLS, as deployed.
    certs: PathBuf,
}

impl BenchCluster {
    fn new(work: &Path) -> Result<Self> {
        let free = crate::dev::free_port;
        let mut nodes = Vec::new();
        for id in 1..=3 {
            nodes.push(Node {
                id,
                grpc: format!("127.0.0.1:{}", free()?),
                http: format!("127.0.0.1:{}", free()?),
                peer: format!("127.0.0.1:{}", free()?),
                dir: work.join(format!("node-{id}")),
                child: None,
            });
        }
        let bootstrap = brisk_testkit::members::bootstrap_list(
            nodes
                .iter()
                .map(|n| (n.id, n.grpc.as_str(), n.peer.as_str())),
        );
        let certs = work.join("certs");
        crate::tls::generate(&certs, &["node".into()], &crate::tls::default_hosts())?;
        Ok(BenchCluster {
            nodes,
            bootstrap,
            exe: std::env::current_exe()?,
            certs,
        })
    }

    fn start(&mut self, mode: &str) -> Result<Instant> {
        let started = Instant::now();
        for n in &mut self.nodes {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(n.dir.with_extension("log"))?;
            let child = Command::new(&self.exe)
                .args(["serve", "--id", &n.id.to_string()])
                .arg("--data-dir")
                .arg(&n.dir)
                .args([
                    "--listen",
                    &n.grpc,
                    "--http",
                    &n.http,
                    "--bootstrap",
                    &self.bootstrap,
                    "--peer-listen",
                    &n.peer,
                ])
                .arg("--peer-tls-cert")
                .arg(crate::tls::cert_path(&self.certs, "node"))
                .arg("--peer-tls-key")
                .arg(crate::tls::key_path(&self.certs, "node"))
                .arg("--peer-tls-ca")
                .arg(self.certs.join(crate::tls::CA_CERT))
                .args(["--cold-start", mode, "--snapshot-every", "1000000"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting brisk serve")?;
            n.child = Some(child);
        }
        Ok(started)
    }

    fn kill9(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Seconds from `started` until every node's /readyz is 200, and until the first
    /// linearizable read succeeds.
    async fn measure(&self, started: Instant) -> Result<(f64, f64)> {
        let deadline = started + Duration::from_secs(600);
        let probe_key = b"bench/probe".to_vec();
        let mut read_at = None;
        let mut ready = vec![None; self.nodes.len()];
        while ready.iter().any(|r| r.is_none()) || read_at.is_none() {
            if Instant::now() > deadline {
                bail!("cluster not ready within 600 s");
            }
            for (i, n) in self.nodes.iter().enumerate() {
                if ready[i].is_none() && http_status(&n.http, "/readyz").await == Some(200) {
                    ready[i] = Some(started.elapsed().as_secs_f64());
                }
            }
            if read_at.is_none() {
                for n in &self.nodes {
                    if let Ok(ch) = connect(&n.grpc).await {
                        let r = RawKvClient::new(ch)
                            .raw_get(RawGetRequest {
                                key: probe_key.clone(),
                                ..Default::default()
                            })
                            .await;
                        if r.is_ok() {
                            read_at = Some(started.elapsed().as_secs_f64());
                            break;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ready = ready.into_iter().flatten().fold(0.0, f64::max);
        Ok((ready, read_at.unwrap_or(f64::NAN)))
    }

    async fn leader(&self) -> Result<String> {
        for _ in 0..500 {
            for n in &self.nodes {
                if let Ok(ch) = connect(&n.grpc).await {
                    if let Ok(s) = RaftAdminClient::new(ch).status(StatusRequest {}).await {
                        let s = s.into_inner();
                        if s.has_leader && !s.leader_addr.is_empty() {
                            return Ok(s.leader_addr);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(anyhow!("no leader"))
    }

    /// Writes random values until `target` bytes of values were acknowledged in total.
    async fn fill(&self, written: &mut u64, target: u64, a: &ColdStartArgs) -> Result<()> {
        let leader = self.leader().await?;
        let mut tasks = Vec::new();
        let per = (target.saturating_sub(*written)) / a.clients as u64 + 1;
        let base = *written;
        let bar = progress::bytes(
            format!("filling to {}", human(target)),
            target.saturating_sub(*written),
        );
        for w in 0..a.clients {
            let ch = connect(&leader).await?;
            let (vmin, vmax) = (a.value_min, a.value_max.max(a.value_min));
            let bar = bar.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(base ^ w as u64);
                let mut c = RawKvClient::new(ch);
                let mut done = 0u64;
                let mut i = 0u64;
                while done < per {
                    let len = rng.random_range(vmin..=vmax);
                    let mut value = vec![0u8; len];
                    rng.fill(&mut value[..]);
                    let key = format!("fill/{base:012}/{w:03}/{i:09}").into_bytes();
                    if c.raw_put(RawPutRequest { key, value }).await.is_ok() {
                        done += len as u64;
                        bar.inc(len as u64);
                    }
                    i += 1;
                }
                done
            }));
        }
        for t in tasks {
            *written += t.await?;
        }
        bar.finish_and_clear();
        Ok(())
    }

    async fn snapshot_all(&self) -> Result<()> {
        for n in &self.nodes {
            let ch = connect(&n.grpc).await?;
            let mut req = tonic::Request::new(SnapshotRequest {});
            req.set_timeout(Duration::from_secs(600));
            RaftAdminClient::new(ch)
                .snapshot(req)
                .await
                .map_err(|s| anyhow!("snapshot on node {}: {}", n.id, s.message()))?;
        }
        Ok(())
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Median fsync latency of a 4 KiB write in `dir`, milliseconds.
pub(crate) fn fsync_latency_ms(dir: &Path) -> Result<f64> {
    use std::io::Write;
    let p = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&p)?;
    let mut samples = Vec::new();
    for _ in 0..20 {
        f.write_all(&[7u8; 4096])?;
        let t = Instant::now();
        f.sync_data()?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    std::fs::remove_file(&p)?;
    samples.sort_by(|a, b| a.total_cmp(b));
    Ok(samples[samples.len() / 2])
}

#[derive(Serialize, Clone)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

fn stat(v: &[f64]) -> Stat {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    Stat {
        median: s[s.len() / 2],
        min: s[0],
        max: s[s.len() - 1],
    }
}

#[derive(Serialize, Clone)]
struct Row {
    size_bytes: u64,
    mode: String,
    ready_s: Stat,
    first_read_s: Stat,
    fsync_ms: f64,
    runs: usize,
}

pub async fn run(a: ColdStartArgs) -> Result<ExitCode> {
    let mut sizes: Vec<u64> = a
        .sizes
        .iter()
        .map(|s| parse_size(s))
        .collect::<Result<_>>()?;
    sizes.sort_unstable();
    if a.runs == 0 || sizes.is_empty() {
        bail!("need at least one size and one run");
    }
    for m in &a.modes {
        if m != "auto" && m != "always-restore" {
            bail!("unknown mode {m:?} (auto, always-restore)");
        }
    }
    if a.work_dir.exists() {
        std::fs::remove_dir_all(&a.work_dir)
            .with_context(|| format!("emptying {}", a.work_dir.display()))?;
    }
    std::fs::create_dir_all(&a.work_dir)?;
    std::fs::create_dir_all(&a.out_dir)?;
    let mut cluster = BenchCluster::new(&a.work_dir)?;
    for n in &cluster.nodes {
        std::fs::create_dir_all(&n.dir)?;
    }
    let started = cluster.start("auto")?;
    cluster.measure(started).await?;
    let mut written = 0u64;
    let mut rows = Vec::new();
    for &size in &sizes {
        eprintln!("cold-start bench: filling to {} ...", human(size));
        cluster.fill(&mut written, size, &a).await?;
        {
            let _snapshots = progress::phase("snapshots on every node");
            cluster.snapshot_all().await?;
        }
        let fsync_ms = fsync_latency_ms(&a.work_dir)?;
        let bar = progress::steps(
            format!("restarts at {}", human(size)),
            (a.modes.len() * a.runs) as u64,
        );
        for mode in &a.modes {
            let mut ready = Vec::new();
            let mut first = Vec::new();
            for run in 0..a.runs {
                cluster.kill9();
                let started = cluster.start(mode)?;
                let (r, f) = cluster.measure(started).await?;
                progress::say(
                    &bar,
                    format!(
                        "  {} {mode} run {}: ready {r:.3} s, first read {f:.3} s",
                        human(size),
                        run + 1
                    ),
                );
                bar.inc(1);
                ready.push(r);
                first.push(f);
            }
            rows.push(Row {
                size_bytes: size,
                mode: mode.clone(),
                ready_s: stat(&ready),
                first_read_s: stat(&first),
                fsync_ms,
                runs: a.runs,
            });
        }
        bar.finish_and_clear();
        // Leave the cluster running in auto mode for the next fill.
        cluster.kill9();
        let s = cluster.start("auto")?;
        cluster.measure(s).await?;
    }
    cluster.kill9();

    println!(
        "brisk cold start, 3 nodes, kill -9 of all and restart ({} runs each)",
        a.runs
    );
    println!(
        "{:>9} {:<15} {:>24} {:>24} {:>9}",
        "size", "mode", "ready s (med/min/max)", "1st read s (med/min/max)", "fsync ms"
    );
    for r in &rows {
        println!(
            "{:>9} {:<15} {:>24} {:>24} {:>9.2}",
            human(r.size_bytes),
            r.mode,
            format!(
                "{:.3}/{:.3}/{:.3}",
                r.ready_s.median, r.ready_s.min, r.ready_s.max
            ),
            format!(
                "{:.3}/{:.3}/{:.3}",
                r.first_read_s.median, r.first_read_s.min, r.first_read_s.max
            ),
            r.fsync_ms
        );
    }
    let json = a.out_dir.join("cold-start.json");
    std::fs::write(&json, serde_json::to_string_pretty(&rows)?)?;
    let svg = a.out_dir.join("cold-start.svg");
    std::fs::write(&svg, plot(&rows, &a.modes)?)?;
    println!("wrote {} and {}", json.display(), svg.display());
    Ok(ExitCode::SUCCESS)
}

/// Ready time versus size, one line per mode through the medians, with min-max bars.
fn plot(rows: &[Row], modes: &[String]) -> Result<String> {
    let title = "brisk cold start: time to /readyz after kill -9 (3 nodes)";
    svg((720, 440), title, |area| {
        let mut sizes: Vec<f64> = rows.iter().map(|r| r.size_bytes.max(1) as f64).collect();
        sizes.sort_by(f64::total_cmp);
        sizes.dedup();
        let (lo, hi) = match (sizes.first(), sizes.last()) {
            (Some(lo), Some(hi)) => (*lo, *hi),
            _ => (1.0, 1.0),
        };
        let max_t = rows.iter().map(|r| r.ready_s.max).fold(0.1f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (lo / 1.5..hi * 1.5).log_scale().with_key_points(sizes),
                0.0..max_t,
            )?;
        chart
            .configure_mesh()
            .x_desc("data size (log scale)")
            .y_desc("seconds (median, bars: min-max)")
            .x_label_formatter(&|b| human(*b as u64))
            .y_label_formatter(&|t| format!("{t:.2}"))
            .draw()?;
        for (i, mode) in modes.iter().enumerate() {
            let color = series_color(i);
            let runs: Vec<&Row> = rows.iter().filter(|r| &r.mode == mode).collect();
            chart
                .draw_series(
                    LineSeries::new(
                        runs.iter().map(|r| (r.size_bytes as f64, r.ready_s.median)),
                        color.stroke_width(2),
                    )
                    .point_size(3),
                )?
                .label(mode.as_str())
                .legend(legend_line(color));
            chart.draw_series(runs.iter().map(|r| {
                ErrorBar::new_vertical(
                    r.size_bytes as f64,
                    r.ready_s.min,
                    r.ready_s.median,
                    r.ready_s.max,
                    color.stroke_width(1),
                    8,
                )
            }))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn the_plot_has_a_line_per_mode() {
        let stat = |median: f64| Stat {
            median,
            min: median * 0.8,
            max: median * 1.3,
        };
        let modes = vec!["auto".to_string(), "always-restore".to_string()];
        let rows: Vec<Row> = [64u64 << 20, 1 << 30, 4 << 30]
            .into_iter()
            .flat_map(|size| {
                modes.iter().enumerate().map(move |(i, mode)| Row {
                    size_bytes: size,
                    mode: mode.clone(),
                    ready_s: stat(0.2 + (i as f64 + 1.0) * size as f64 / (1u64 << 30) as f64),
                    first_read_s: stat(0.3),
                    fsync_ms: 1.0,
                    runs: 3,
                })
            })
            .collect();
        let svg = plot(&rows, &modes).unwrap();
        crate::bench::plot::assert_shows(
            &svg,
            &[
                "auto",
                "always-restore",
                "data size",
                "seconds (median",
                "1.0 GiB",
            ],
        );
    }
}
