//! The `brisk` command line's contract, run as a user runs it: the exit codes of
//! `brisk --help`, one JSON document on stdout with `--json`, one escaped line per scanned
//! pair, errors on stderr with nothing on stdout, and the generated completions and man
//! pages.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

// The exit codes `brisk --help` documents.
const NEGATIVE: i32 = 1;
const USAGE: i32 = 2;
const CONFLICT: i32 = 3;
const UNAVAILABLE: i32 = 4;
const INDETERMINATE: i32 = 5;
const FAILED: i32 = 6;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The one JSON document a successful `--json` run printed.
fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {:?}; stderr: {}",
            stdout(o),
            stderr(o)
        )
    })
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}: stderr {}",
        o.status.code(),
        stderr(o)
    );
}

/// A failure: the given code, a message on stderr and nothing on stdout.
#[track_caller]
fn assert_fails(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout {:?}, stderr {:?}",
        stdout(o),
        stderr(o)
    );
    assert!(o.stdout.is_empty(), "stdout of a failure: {:?}", stdout(o));
    assert!(!o.stderr.is_empty(), "a failure without a message");
}

/// Runs the CLI against `c` with arguments that need not be UTF-8.
fn cli_bytes(c: &Cluster, args: &[&[u8]]) -> Output {
    Command::new(BIN)
        .args(args.iter().map(|a| OsStr::from_bytes(a)))
        .env("BRISK_ENDPOINTS", c.endpoints())
        .output()
        .expect("run brisk")
}

/// Runs the CLI with no cluster around.
fn brisk(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("BRISK_ENDPOINTS")
        .output()
        .expect("run brisk")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_answer_with_documented_exit_codes_and_json() {
    let c = Cluster::start(1, &[]);
    c.wait_all_ready().await;
    c.leader().await;

    // put and get, as JSON.
    let o = c.cli(&["put", "greeting", "hello", "--json"]);
    assert_ok(&o);
    let v = json_of(&o);
    assert!(v["commit_ts"].as_u64().is_some_and(|ts| ts > 0), "{v}");
    assert!(v["log_index"].as_u64().is_some(), "{v}");
    let o = c.cli(&["get", "greeting", "--json"]);
    assert_ok(&o);
    assert_eq!(
        json_of(&o),
        json!({"key": "greeting", "found": true, "value": "hello"})
    );

    // An absent key is an answer, not an error: exit code 1, no text, nothing on stderr.
    let o = c.cli(&["get", "nope"]);
    assert_eq!(o.status.code(), Some(NEGATIVE), "{}", stderr(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{o:?}");
    let o = c.cli(&["get", "nope", "--json"]);
    assert_eq!(o.status.code(), Some(NEGATIVE), "{}", stderr(&o));
    assert_eq!(json_of(&o), json!({"key": "nope", "found": false}));

    // Keys and values are bytes: a tab, a newline, a backslash, bytes that are not UTF-8.
    for (k, v) in [
        (&b"tab\tkey"[..], &b"line1\nline2"[..]),
        (b"bin", b"\xff\x01ok"),
        (b"back\\slash", b"x"),
    ] {
        assert_ok(&cli_bytes(&c, &[b"put", k, v]));
    }
    let o = cli_bytes(&c, &[b"get", b"bin"]);
    assert_ok(&o);
    assert_eq!(o.stdout, b"\xff\x01ok\n", "get prints the value as stored");
    let o = c.cli(&["get", "bin", "--json"]);
    assert_eq!(
        json_of(&o),
        json!({"key": "bin", "found": true, "value_base64": "/wFvaw=="})
    );

    // Scanned as text: one escaped KEY<TAB>VALUE line per pair.
    let o = c.cli(&["scan"]);
    assert_ok(&o);
    assert_eq!(
        stdout(&o),
        "back\\\\slash\tx\n\
         bin\t\\xff\\x01ok\n\
         greeting\thello\n\
         tab\\tkey\tline1\\nline2\n"
    );
    // As JSON: UTF-8 as strings, anything else as base64.
    let o = c.cli(&["scan", "--json"]);
    assert_ok(&o);
    let v = json_of(&o);
    assert_eq!(v["truncated"], false);
    let pairs = v["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 4, "{v}");
    assert_eq!(pairs[1]["key"], "bin");
    assert_eq!(pairs[1]["value_base64"], "/wFvaw==");
    assert!(pairs[1].get("value").is_none(), "{v}");
    assert_eq!(pairs[3]["key"], "tab\tkey");
    assert_eq!(pairs[3]["value"], "line1\nline2");
    assert!(
        pairs.iter().all(|p| p["commit_ts"].as_u64() > Some(0)),
        "{v}"
    );

    // Deletes, as JSON.
    for args in [
        &["delete", "back\\slash", "--json"][..],
        &["delete-prefix", "ta", "--json"],
    ] {
        let o = c.cli(args);
        assert_ok(&o);
        assert!(json_of(&o)["commit_ts"].as_u64().is_some(), "{args:?}");
    }

    // A transaction that commits, then one that conflicts: exit code 3, nothing written.
    let o = c.cli(&["txn", "--put", "a=1", "--read", "greeting", "--json"]);
    assert_ok(&o);
    let v = json_of(&o);
    assert_eq!(v["committed"], true, "{v}");
    assert!(v["commit_ts"].as_u64().is_some(), "{v}");
    assert_eq!(
        v["reads"],
        json!([{"key": "greeting", "found": true, "value": "hello"}])
    );
    let o = c.cli(&["txn", "--put", "a=2", "--start-ts", "1"]);
    assert_eq!(o.status.code(), Some(CONFLICT), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("CONFLICT key=a "), "{}", stdout(&o));
    let o = c.cli(&["txn", "--put", "a=2", "--start-ts", "1", "--json"]);
    assert_eq!(o.status.code(), Some(CONFLICT), "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["committed"], false, "{v}");
    assert_eq!(v["conflict"]["key"], "a", "{v}");
    assert_eq!(stdout(&c.cli(&["get", "a"])), "1\n");

    // The node's state, as JSON.
    let o = c.cli(&["status", "--json"]);
    assert_ok(&o);
    let v = json_of(&o);
    assert_eq!(v["id"], 1);
    assert_eq!(v["role"], "leader");
    assert_eq!(v["leader_id"], 1);
    assert_eq!(v["members"].as_array().map(Vec::len), Some(1), "{v}");
    let o = c.cli(&["members", "--json"]);
    assert_ok(&o);
    let v = json_of(&o);
    assert_eq!(v["members"][0]["id"], 1, "{v}");
    assert_eq!(v["members"][0]["addr"], c.node(1).grpc.as_str(), "{v}");
    assert_eq!(v["members"][0]["voter"], true, "{v}");
    let o = c.cli(&["timestamp", "--json"]);
    assert_ok(&o);
    assert!(json_of(&o)["ts"].as_u64().is_some_and(|ts| ts > 0));
    let o = c.cli(&["snapshot", "--all", "--json"]);
    assert_ok(&o);
    let v = json_of(&o);
    assert_eq!(v["snapshots"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["failed"], json!([]), "{v}");
    // On-demand snapshots are at least a second apart; one asked for sooner is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = c.cli(&["snapshot", "--json"]);
        if o.status.success() {
            assert!(json_of(&o)["index"].as_u64().is_some(), "{}", stdout(&o));
            break;
        }
        assert_fails(&o, FAILED);
        assert!(stderr(&o).contains("resource exhausted"), "{}", stderr(&o));
        assert!(Instant::now() < deadline, "no second snapshot within 20 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A request the server refuses: exit code 6, the reason on stderr, stdout empty (also
    // with --json).
    for args in [&["put", "", "x"][..], &["put", "", "x", "--json"]] {
        let o = c.cli(args);
        assert_fails(&o, FAILED);
        assert!(stderr(&o).contains("invalid argument"), "{}", stderr(&o));
    }

    // Usage errors: exit code 2, caught before anything is sent.
    for args in [
        &["get", "k", "--no-such-flag"][..],
        &["txn", "--put", "novalue"],
        &["txn", "--read", "a"],
        &["put", "k", "v", "--timeout", "10 parsecs"],
        &["put", "k"],
    ] {
        assert_fails(&c.cli(args), USAGE);
    }
    assert_eq!(stdout(&c.cli(&["get", "k"])), "", "no usage error wrote");

    // --timeout takes units; a bare number is seconds.
    for t in ["2", "1500ms", "1m"] {
        assert_ok(&c.cli(&["put", "k", t, "--timeout", t]));
    }

    // The inspector's report, as JSON, while the node runs.
    let dir = c.data_dir(1).display().to_string();
    let o = c.cli(&["inspect", &dir, "--json"]);
    let v = json_of(&o);
    assert!(v["gate"]["outcome"].is_string(), "{v}");
    assert!(
        v["state_machine"]["applied"]["index"].as_u64().is_some(),
        "{v}"
    );
    assert_eq!(
        o.status.code(),
        Some(if v["ok"] == true { 0 } else { NEGATIVE }),
        "{v}"
    );
}

#[test]
fn an_unreachable_cluster_is_unavailable() {
    // Nothing listens on a free port: every connection is refused, so nothing was applied.
    let addr = format!("127.0.0.1:{}", free_port());
    for args in [
        &["get", "k"][..],
        &["put", "k", "v"],
        &["status", "--json"],
        &["txn", "--put", "k=v"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--endpoints", addr.as_str(), "--timeout", "300ms"]);
        assert_fails(&brisk(&all), UNAVAILABLE);
    }
}

#[test]
fn a_write_without_an_answer_is_indeterminate() {
    // A node that accepts connections and never answers: a write sent to it may or may not
    // have been applied, while a read simply found no node to serve it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local port");
    let addr = listener.local_addr().expect("local address").to_string();
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let holder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
    };
    let o = brisk(&["put", "k", "v", "--endpoints", &addr, "--timeout", "500ms"]);
    assert_fails(&o, INDETERMINATE);
    assert!(
        stderr(&o).contains("may or may not have been applied"),
        "{}",
        stderr(&o)
    );
    let o = brisk(&["get", "k", "--endpoints", &addr, "--timeout", "500ms"]);
    assert_fails(&o, UNAVAILABLE);
    stop.store(true, Ordering::Relaxed);
    holder.join().expect("the holder thread");
}

#[test]
fn completions_and_man_pages_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let o = brisk(&["completions", shell]);
        assert_ok(&o);
        assert!(stdout(&o).contains("brisk"), "{shell}: {}", stdout(&o));
    }
    assert_fails(&brisk(&["completions", "no-such-shell"]), USAGE);

    let o = brisk(&["man"]);
    assert_ok(&o);
    let page = stdout(&o);
    assert!(page.contains(".TH brisk"), "{page}");
    assert!(page.contains("Exit codes"), "{page}");

    let dir = tempfile::tempdir().expect("temp dir");
    let o = Command::new(BIN)
        .arg("man")
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .expect("run brisk man");
    assert_ok(&o);
    for page in ["brisk.1", "brisk-put.1", "brisk-txn.1", "brisk-inspect.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_default();
        assert!(text.contains(".TH"), "{page}: {text:?}");
    }

    let o = brisk(&["--help"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("Exit codes"), "{}", stdout(&o));
}
