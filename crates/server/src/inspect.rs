//! `brisk inspect DATA_DIR`: what a data directory holds and what the cold-start gate would
//! decide, without a server. Opens everything read-only.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use brisk_raft::gate::{classify, ColdStartMode, Reason};
use brisk_raft::layout::DataLayout;
use brisk_raft::log_store::LogSummary;
use brisk_raft::snapshot::{SnapshotDir, SnapshotStore};
use brisk_raft::types::StoredMembership;
use brisk_storage::{StorageError, Store};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A node's data directory (the one given to `brisk serve --data-dir`).
    pub data_dir: PathBuf,
    /// Also check every snapshot file's size and CRC32C (reads all snapshot data).
    #[arg(long)]
    pub verify: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn members(m: &StoredMembership) -> Value {
    let voters: Vec<u64> = m.membership().voter_ids().collect();
    let nodes: Vec<Value> = m
        .membership()
        .nodes()
        .map(|(id, n)| json!({"id": id, "addr": n.addr, "peer_addr": n.peer_addr, "voter": voters.contains(id)}))
        .collect();
    json!(nodes)
}

pub fn run(a: InspectArgs) -> Result<ExitCode> {
    let layout = DataLayout::new(&a.data_dir);
    let snapshots = SnapshotStore::new(layout.clone(), usize::MAX);
    let mut failed: Vec<String> = Vec::new();
    let mut report = serde_json::Map::new();
    report.insert("data_dir".into(), json!(a.data_dir.display().to_string()));

    // State machine.
    let (applied, problem) = match Store::open_read_only(&layout.state_machine()) {
        Ok(store) => match store.meta() {
            Ok(meta) => {
                let membership: Option<StoredMembership> = meta
                    .membership
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .and_then(|r| brisk_raft::codec::decode(r).ok());
                report.insert(
                    "state_machine".into(),
                    json!({
                        "applied": meta.applied.map(|a| json!({"index": a.index, "term": a.term, "leader_node": a.leader_node})),
                        "membership": membership.as_ref().map(members),
                        "hlc_ceiling_ms": meta.hlc_ceiling_ms,
                        "last_commit_ts": meta.last_commit_ts,
                        "sst_bytes": store.approximate_size_bytes(),
                    }),
                );
                match meta.applied {
                    Some(a) => (Some(a.index), None),
                    None => (None, Some(Reason::MissingMeta)),
                }
            }
            Err(e) => {
                failed.push(format!("state machine meta: {e}"));
                report.insert("state_machine".into(), json!({"error": e.to_string()}));
                (None, Some(Reason::ReadError))
            }
        },
        Err(StorageError::Missing(p)) => {
            report.insert(
                "state_machine".into(),
                json!({"error": format!("missing: {}", p.display())}),
            );
            (None, Some(Reason::StoreMissing))
        }
        Err(e) => {
            failed.push(format!("state machine: {e}"));
            report.insert("state_machine".into(), json!({"error": e.to_string()}));
            (None, Some(Reason::ReadError))
        }
    };

    // Raft log.
    match LogSummary::read_only(&layout.raft_log()) {
        Ok(s) => {
            report.insert(
                "raft_log".into(),
                json!({
                    "committed_index": s.committed.map(|l| l.index),
                    "last_log_index": s.last_log_id.map(|l| l.index),
                    "last_purged_index": s.last_purged.map(|l| l.index),
                    "vote_term": s.vote.map(|v| v.leader_id.term),
                    "recover_until": s.recover_until,
                }),
            );
        }
        Err(e) => {
            report.insert("raft_log".into(), json!({"error": e.to_string()}));
        }
    }

    // Snapshot pointer and manifest.
    let x = match snapshots.read_pointer() {
        Ok(Some((dir, token))) => {
            let mut snap = json!({"dir": dir, "token": token.to_hex(), "index": token.index});
            match snapshots.current() {
                Ok(Some(s)) => {
                    snap["manifest"] = manifest_json(&s);
                }
                Ok(None) => {}
                Err(e) => {
                    failed.push(format!("snapshot {dir}: {e}"));
                    snap["error"] = json!(e.to_string());
                    snap["failed_check"] = json!(e.check());
                }
            }
            report.insert("snapshot".into(), snap);
            Some(token.index)
        }
        Ok(None) => {
            report.insert("snapshot".into(), Value::Null);
            None
        }
        Err(e) => {
            failed.push(format!("snapshot pointer: {e}"));
            report.insert(
                "snapshot".into(),
                json!({"error": e.to_string(), "failed_check": e.check()}),
            );
            None
        }
    };

    let (outcome, reason) = classify(ColdStartMode::Auto, applied, x, problem);
    report.insert(
        "gate".into(),
        json!({
            "outcome": outcome.as_str(),
            "reason": reason.as_str(),
            "applied_index": applied,
            "snapshot_index": x,
            "gap": match (applied, x) { (Some(a), Some(x)) => Some(a as i64 - x as i64), _ => None },
        }),
    );

    if a.verify {
        let mut results = Vec::new();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(layout.snapshots())
            .map(|it| {
                it.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name().is_some_and(|n| {
                            brisk_raft::layout::is_snapshot_dir_name(&n.to_string_lossy())
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        for d in dirs {
            let r = SnapshotDir::open(&d).and_then(|s| s.verify().map(|_| s));
            match r {
                Ok(s) => results.push(json!({"dir": d.display().to_string(), "ok": true, "files": s.manifest.files.len()})),
                Err(e) => {
                    failed.push(format!("verify {}: {e}", d.display()));
                    results.push(json!({"dir": d.display().to_string(), "ok": false, "failed_check": e.check(), "error": e.to_string()}));
                }
            }
        }
        report.insert("verify".into(), json!(results));
    }
    report.insert("ok".into(), json!(failed.is_empty()));
    report.insert("problems".into(), json!(failed));

    let report = Value::Object(report);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn manifest_json(s: &SnapshotDir) -> Value {
    let m = &s.manifest;
    json!({
        "version": m.version,
        "index": m.index,
        "term": m.term,
        "hlc_ceiling_ms": m.header.hlc_ceiling_ms,
        "cutover_index": m.header.cutover_index,
        "files": m.files.len(),
        "bytes": m.total_bytes(),
        "membership": members(&m.membership),
    })
}

fn print_human(r: &Value) {
    let show = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("data dir          {}", show(&r["data_dir"]));
    let sm = &r["state_machine"];
    if sm.get("error").is_some() {
        println!("state machine     ERROR {}", show(&sm["error"]));
    } else {
        println!("applied           {}", show(&sm["applied"]));
        println!("membership        {}", show(&sm["membership"]));
        println!("hlc ceiling ms    {}", show(&sm["hlc_ceiling_ms"]));
        println!("last commit ts    {}", show(&sm["last_commit_ts"]));
    }
    let log = &r["raft_log"];
    if log.get("error").is_some() {
        println!("raft log          ERROR {}", show(&log["error"]));
    } else {
        println!(
            "raft log          committed {} / last {} / purged {}",
            show(&log["committed_index"]),
            show(&log["last_log_index"]),
            show(&log["last_purged_index"])
        );
        if !log["recover_until"].is_null() {
            println!(
                "recovering        until index {} is applied (no vote, no reads before)",
                show(&log["recover_until"])
            );
        }
    }
    let snap = &r["snapshot"];
    if snap.is_null() {
        println!("snapshot          none");
    } else {
        println!(
            "snapshot pointer  {} (token {})",
            show(&snap["dir"]),
            show(&snap["token"])
        );
        if let Some(m) = snap.get("manifest") {
            println!(
                "snapshot manifest v{} index {} term {}, {} files, {} bytes",
                show(&m["version"]),
                show(&m["index"]),
                show(&m["term"]),
                show(&m["files"]),
                show(&m["bytes"])
            );
        }
        if let Some(e) = snap.get("error") {
            println!(
                "snapshot          ERROR ({}) {}",
                show(&snap["failed_check"]),
                show(e)
            );
        }
    }
    let g = &r["gate"];
    println!(
        "gate would       {} (reason {}, A={}, X={}, gap {})",
        show(&g["outcome"]),
        show(&g["reason"]),
        show(&g["applied_index"]),
        show(&g["snapshot_index"]),
        show(&g["gap"])
    );
    if let Some(Value::Array(vs)) = r.get("verify") {
        for v in vs {
            if v["ok"] == json!(true) {
                println!(
                    "verify            OK   {} ({} files)",
                    show(&v["dir"]),
                    show(&v["files"])
                );
            } else {
                println!(
                    "verify            FAIL {} ({}): {}",
                    show(&v["dir"]),
                    show(&v["failed_check"]),
                    show(&v["error"])
                );
            }
        }
    }
    if r["ok"] != json!(true) {
        println!("problems          {}", show(&r["problems"]));
    }
}
