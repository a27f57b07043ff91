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
    let svg = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
}
