//! `brisk bench compare --brisk-only` runs end to end and writes every field of its report
//! (the CI check of the benchmark harness; no timing is asserted).

mod common;

use common::BIN;

#[test]
fn compare_writes_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new(BIN)
        .args(["bench", "compare", "--quick", "--brisk-only"])
        .args([
            "--duration",
            "0.5",
            "--clients",
            "1,4",
            "--workloads",
            "put,get,txn,bulk",
        ])
        .args(["--restart-sizes", "1MiB"])
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "4 workloads × 2 client counts");
    for r in rows {
        for field in [
            "ops_per_s",
            "p50_ms",
            "p99_ms",
            "p999_ms",
            "cpu_s_per_kop",
            "fsync_ms",
            "mb_per_s",
        ] {
            assert!(r[field].is_number(), "{field} missing in {r}");
        }
        assert!(r["ops_per_s"].as_f64().unwrap() > 0.0, "no throughput: {r}");
        assert_eq!(r["system"], "brisk");
    }
    let ratios = report["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 8);
    assert!(ratios.iter().all(|x| x["throughput_ratio"].is_null()));
    let restarts = report["restarts"].as_array().unwrap();
    assert_eq!(restarts.len(), 1);
    assert!(restarts[0]["first_read_s"].as_f64().unwrap() > 0.0);
    assert!(restarts[0]["disk_bytes_per_logical_byte"].as_f64().unwrap() > 0.0);
    // The plot: one line per system per workload panel, the axes named.
    let svg = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    for text in ["brisk", "clients", "ops/s", "put", "bulk"] {
        assert!(svg.contains(text), "{text} missing from the plot");
    }
}

/// `brisk bench rolling-restart` at a small size: the roll succeeds under load and the
/// report has every phase and node (no timing is asserted).
#[test]
fn rolling_restart_bench_writes_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new(BIN)
        .args([
            "bench",
            "rolling-restart",
            "--size",
            "4MiB",
            "--window",
            "1",
        ])
        .args(["--clients", "4", "--fill-clients", "4"])
        .arg("--work")
        .arg(dir.path().join("work"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("rolling-restart.json")).unwrap())
            .unwrap();
    assert_eq!(report["roll_ok"], true, "{report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
    let nodes = report["roll"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{report}");
    for n in nodes {
        assert_eq!(n["cold_start_outcome"], "skip", "{report}");
    }
    let phases = report["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["before", "during", "after"]);
    for p in phases {
        assert!(p["ops"].as_u64().unwrap() > 0, "no load in {p}");
        assert!(p["p99_ms"].is_number());
    }
    let svg = std::fs::read_to_string(out.join("rolling-restart.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    for text in ["completed ops/s", "p99 latency, ms", "rolling restart"] {
        assert!(svg.contains(text), "{text} missing from the plot");
    }
}

/// `brisk bench redis` with a few requests: both systems answer every test at every depth and
/// the report, table and plot are written (no timing is asserted).
#[test]
fn redis_bench_writes_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("r.json"), dir.path().join("r.svg"));
    let o = std::process::Command::new(BIN)
        .args([
            "bench",
            "redis",
            "--tests",
            "set,get,lpush",
            "--requests",
            "2000",
        ])
        .args(["--clients", "8", "--pipelines", "1,4"])
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .arg("--out")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{report}");
    for r in rows {
        for system in ["redis", "brisk"] {
            assert!(
                r[system]["requests_per_s"].as_f64().unwrap() > 0.0,
                "{report}"
            );
        }
        assert!(r["ratio"].as_f64().unwrap() > 0.0, "{report}");
    }
    assert!(stdout.contains("| SET | 4 |"), "{stdout}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    for text in [
        "durable redis-server",
        "brisk, 3 nodes",
        "set P4",
        "requests/s",
    ] {
        assert!(svg.contains(text), "{text} missing from the plot");
    }
}
