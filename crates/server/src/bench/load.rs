//! `brisk bench load`: drives a running cluster over gRPC and reports throughput and latency.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::transactional_kv_client::TransactionalKvClient;
use brisk_proto::*;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use brisk_client::Idempotence;

use super::progress;
use crate::cli::{call, connect, ConnArgs};

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Concurrent clients (each with its own connection).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Value size, bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Measured duration, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Operation mix as percentages, e.g. put=50,get=40,txn=10.
    #[arg(long, default_value = "put=100")]
    pub mix: String,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Write the result as JSON here.
    #[arg(long, default_value = "bench-result.json")]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, strum::Display, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
enum Op {
    Put,
    Get,
    Txn,
}

#[derive(Serialize)]
struct OpStats {
    op: Op,
    count: u64,
    errors: u64,
    conflicts: u64,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct BenchResult {
    clients: usize,
    value_size: usize,
    duration_s: f64,
    mix: String,
    leader: String,
    total_ops_per_sec: f64,
    ops: Vec<OpStats>,
}

fn parse_mix(s: &str) -> Result<Vec<(Op, u32)>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (name, pct) = part.split_once('=').context("mix entries are OP=PERCENT")?;
        let name = name.trim();
        let op: Op = name
            .parse()
            .map_err(|_| anyhow!("unknown op {name:?} in --mix (put, get, txn)"))?;
        out.push((op, pct.trim().parse().context("mix percentage")?));
    }
    if out.iter().map(|(_, p)| p).sum::<u32>() != 100 {
        bail!("--mix percentages must add up to 100");
    }
    Ok(out)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

#[derive(Default)]
struct ClientLog {
    lat_us: [Vec<u64>; 3],
    errors: [u64; 3],
    conflicts: u64,
}

fn idx(op: Op) -> usize {
    match op {
        Op::Put => 0,
        Op::Get => 1,
        Op::Txn => 2,
    }
}

async fn client_loop(
    channel: tonic::transport::Channel,
    mix: Vec<(Op, u32)>,
    keys: u64,
    value: Vec<u8>,
    until: Instant,
) -> ClientLog {
    let mut raw = RawKvClient::new(channel.clone());
    let mut txn = TransactionalKvClient::new(channel);
    let mut log = ClientLog::default();
    let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
    while Instant::now() < until {
        let roll = rng.random_range(0..100u32);
        let mut acc = 0;
        let mut op = Op::Put;
        for (o, p) in &mix {
            acc += p;
            if roll < acc {
                op = *o;
                break;
            }
        }
        let key = format!("bench/{:012}", rng.random_range(0..keys)).into_bytes();
        let started = Instant::now();
        let ok = match op {
            Op::Put => raw
                .raw_put(RawPutRequest {
                    key,
                    value: value.clone(),
                })
                .await
                .is_ok(),
            Op::Get => raw
                .raw_get(RawGetRequest {
                    key,
                    ..Default::default()
                })
                .await
                .is_ok(),
            Op::Txn => match txn.begin(BeginRequest {}).await {
                Ok(b) => {
                    let start_ts = b.into_inner().start_ts;
                    let r = txn
                        .commit(CommitRequest {
                            start_ts,
                            mutations: vec![Mutation {
                                op: mutation::Op::Put as i32,
                                key,
                                value: value.clone(),
                            }],
                            read_set: vec![],
                        })
                        .await;
                    match r {
                        Ok(r) => {
                            if !r.into_inner().committed {
                                log.conflicts += 1;
                            }
                            true
                        }
                        Err(_) => false,
                    }
                }
                Err(_) => false,
            },
        };
        if ok {
            log.lat_us[idx(op)].push(started.elapsed().as_micros() as u64);
        } else {
            log.errors[idx(op)] += 1;
        }
    }
    log
}

pub async fn run(a: LoadArgs) -> Result<ExitCode> {
    let mix = parse_mix(&a.mix)?;
    if a.clients == 0 || a.duration <= 0.0 {
        bail!("--clients and --duration must be positive");
    }
    // Connect straight to the leader so the numbers measure Raft, not forwarding.
    let status = call(&a.conn, Idempotence::Read, |ch| async move {
        RaftAdminClient::new(ch).status(StatusRequest {}).await
    })
    .await?;
    if !status.has_leader {
        bail!("the cluster has no leader");
    }
    let leader = status.leader_addr.clone();
    let mut channels = Vec::new();
    for _ in 0..a.clients {
        channels.push(
            connect(&leader)
                .await
                .with_context(|| format!("connecting to leader {leader}"))?,
        );
    }
    let value: Vec<u8> = (0..a.value_size).map(|i| b'a' + (i % 26) as u8).collect();
    let bar = progress::phase("warming up for 1 s");
    // Warm-up: 1 s unmeasured.
    let warm = Instant::now() + Duration::from_secs(1);
    let mut tasks = Vec::new();
    for ch in channels.iter().cloned() {
        tasks.push(tokio::spawn(client_loop(
            ch,
            mix.clone(),
            a.keys,
            value.clone(),
            warm,
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    bar.set_message(format!("measuring for {} s", a.duration));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(a.duration);
    let mut tasks = Vec::new();
    for ch in channels {
        tasks.push(tokio::spawn(client_loop(
            ch,
            mix.clone(),
            a.keys,
            value.clone(),
            until,
        )));
    }
    let mut all = ClientLog::default();
    for t in tasks {
        let log = t.await?;
        for i in 0..3 {
            all.lat_us[i].extend_from_slice(&log.lat_us[i]);
            all.errors[i] += log.errors[i];
        }
        all.conflicts += log.conflicts;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(bar);
    let mut ops = Vec::new();
    for op in [Op::Put, Op::Get, Op::Txn] {
        let i = idx(op);
        if !mix.iter().any(|(o, _)| *o == op) {
            continue;
        }
        let lat = &mut all.lat_us[i];
        lat.sort_unstable();
        ops.push(OpStats {
            op,
            count: lat.len() as u64,
            errors: all.errors[i],
            conflicts: if op == Op::Txn { all.conflicts } else { 0 },
            ops_per_sec: lat.len() as f64 / elapsed,
            p50_ms: percentile(lat, 0.50),
            p99_ms: percentile(lat, 0.99),
            p999_ms: percentile(lat, 0.999),
            max_ms: lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        });
    }
    let result = BenchResult {
        clients: a.clients,
        value_size: a.value_size,
        duration_s: elapsed,
        mix: a.mix.clone(),
        leader,
        total_ops_per_sec: ops.iter().map(|o| o.ops_per_sec).sum(),
        ops,
    };
    println!(
        "brisk bench: {} clients, {} B values, {:.1} s, mix {}",
        result.clients, result.value_size, result.duration_s, result.mix
    );
    println!(
        "{:<5} {:>10} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "op", "count", "errors", "ops/s", "p50 ms", "p99 ms", "p999 ms", "max ms"
    );
    for o in &result.ops {
        println!(
            "{:<5} {:>10} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            o.op, o.count, o.errors, o.ops_per_sec, o.p50_ms, o.p99_ms, o.p999_ms, o.max_ms
        );
    }
    println!("total {:.0} ops/s", result.total_ops_per_sec);
    std::fs::write(&a.out, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!("result written to {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_names_each_op_once_and_adds_up_to_100() {
        let mix = parse_mix("put=50, get=40,txn =10").unwrap();
        assert_eq!(mix, [(Op::Put, 50), (Op::Get, 40), (Op::Txn, 10)]);
        assert_eq!(Op::Txn.to_string(), "txn");
        let err = parse_mix("put=50,scan=50").unwrap_err().to_string();
        assert!(err.contains("\"scan\""), "{err}");
        assert!(parse_mix("put=50").is_err());
    }
}
