//! The checks must be able to fail: nodes run in deliberately broken modes (compiled only
//! into test builds of brisk) and the harness must report what they break.

use std::process::Command;

const TORTURE: &str = env!("CARGO_BIN_EXE_brisk-torture");

/// Runs brisk-torture with `args`; returns (exit code, the RESULT line's fields).
fn torture(args: &[&str]) -> (i32, std::collections::BTreeMap<String, u64>, String) {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(TORTURE)
        .args(args)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .arg("--out-dir")
        .arg(dir.path().join("out"))
        .output()
        .expect("run brisk-torture");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("RESULT "),
        "no RESULT line: {stdout}\n{stderr}"
    );
    let fields = last
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0)))
        .collect();
    (o.status.code().unwrap_or(-1), fields, stderr)
}

#[test]
fn reads_without_a_read_barrier_are_caught_as_stale() {
    let (code, r, log) = torture(&[
        "--broken",
        "stale-reads",
        "--nemesis",
        "partition-one,partition-leader",
        "--duration",
        "15",
        "--seed",
        "7",
    ]);
    assert_eq!(r.get("error"), None, "{log}");
    assert!(
        r["violations"] > 0,
        "stale reads went unnoticed: {r:?}\n{log}"
    );
    assert_eq!(code, 1, "{log}");
}

#[test]
fn acknowledging_without_fsync_loses_writes_on_power_loss() {
    let (code, r, log) = torture(&[
        "--broken",
        "unsynced-log",
        "--nemesis",
        "power-cut-all",
        "--duration",
        "12",
        "--seed",
        "11",
    ]);
    assert_eq!(r.get("error"), None, "{log}");
    assert!(
        r["lost_writes"] > 0,
        "a power cut after unsynced acknowledgements lost nothing: {r:?}\n{log}"
    );
    assert_eq!(code, 1, "{log}");
}
