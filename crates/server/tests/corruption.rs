//! Corrupt or truncated snapshots fail closed (docs/design/cold-start.md I5): a typed error naming
//! the check (and the file), nothing mutated, and `brisk inspect --verify` reports it. Also:
//! the gate's skip path reads no snapshot byte, and its restore path swaps a verified
//! snapshot in.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use brisk_kv::{Command, Hlc, KvStateMachine, Request, Timestamp};
use brisk_raft::gate::{self, ColdStartMode, GateError, Outcome, Reason};
use brisk_raft::layout::DataLayout;
use brisk_raft::snapshot::manifest::MANIFEST_FILE;
use brisk_raft::snapshot::store::CheckpointInfo;
use brisk_raft::snapshot::{SnapshotManifest, SnapshotStore};
use brisk_raft::types::StoredMembership;
use brisk_storage::{AppliedLogId, AppliedState, Durability, LogIndex, Store};
use common::BIN;

fn apply(sm: &KvStateMachine, index: u64) {
    let state = AppliedState {
        log_id: AppliedLogId {
            term: 1,
            leader_node: 1,
            index: LogIndex(index),
        },
        membership: brisk_raft::codec::encode(&StoredMembership::default()).unwrap(),
    };
    let req = Request {
        ts: Timestamp(index * 10),
        command: Command::Put {
            key: format!("k{index:02}").into_bytes(),
            value: vec![b'x'; 2000],
        },
    };
    sm.apply(state, Some(&req), Durability::Sync).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A data dir whose live store is at index 5 while snapshot 10 is the restart point (the
/// gate must restore), plus the snapshot directory's path.
fn prepared(root: &Path) -> (DataLayout, SnapshotStore, PathBuf) {
    let layout = DataLayout::new(root);
    let snapshots = SnapshotStore::new(layout.clone(), 2);
    let at5 = root.join("sm-at-5");
    {
        let sm = KvStateMachine::new(
            Store::open(&layout.state_machine()).unwrap(),
            Arc::new(Hlc::new()),
        )
        .unwrap();
        for i in 1..=5 {
            apply(&sm, i);
        }
    }
    copy_dir(&layout.state_machine(), &at5);
    let snap = {
        let sm = KvStateMachine::new(
            Store::open(&layout.state_machine()).unwrap(),
            Arc::new(Hlc::new()),
        )
        .unwrap();
        for i in 6..=10 {
            apply(&sm, i);
        }
        let store = sm.store().unwrap();
        let cp = snapshots.checkpoint(&store, "10-1").unwrap();
        assert_eq!(cp.info.index, LogIndex(10));
        snapshots.finish_build(&cp.dir, cp.info).unwrap()
    };
    std::fs::remove_dir_all(layout.state_machine()).unwrap();
    std::fs::rename(&at5, layout.state_machine()).unwrap();
    (layout, snapshots, snap.path)
}

/// Every key and meta key of the live store, read without writing to it.
fn live_content(layout: &DataLayout) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let store = Store::open_read_only(&layout.state_machine()).unwrap();
    let mut out = Vec::new();
    store
        .for_each_raw(|cf, k, v| out.push((cf.to_string(), k.to_vec(), v.to_vec())))
        .unwrap();
    out
}

fn dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Every file of a RocksDB directory byte for byte, except RocksDB's own info logs (`LOG*`),
/// which record each open and are not data.
fn store_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    dir_bytes(dir)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("LOG"))
        .collect()
}

fn largest_sst(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("the snapshot has an SST file")
}

fn rewrite_manifest(snap: &Path, f: impl FnOnce(&mut SnapshotManifest)) -> u32 {
    let raw = std::fs::read(snap.join(MANIFEST_FILE)).unwrap();
    let (mut m, _) = SnapshotManifest::decode(&raw).unwrap();
    f(&mut m);
    let (raw, crc) = m.encode().unwrap();
    std::fs::write(snap.join(MANIFEST_FILE), raw).unwrap();
    crc
}

/// Makes the pointer's token name a manifest rewritten with CRC `crc` (a self-consistent
/// but lying snapshot).
fn point_at_manifest_crc(pointer: &Path, crc: u32) {
    let text = std::fs::read_to_string(pointer).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut token = brisk_raft::snapshot::SnapshotToken::from_hex(&lines[1]).unwrap();
    token.manifest_crc = crc;
    lines[1] = token.to_hex();
    std::fs::write(pointer, lines.join("\n") + "\n").unwrap();
}

/// Applies `corrupt`, then checks the gate's typed error, that nothing changed, and that the
/// inspector reports the same check.
fn fails_closed(check: &str, names_file: bool, corrupt: impl FnOnce(&Path, &Path)) {
    let dir = tempfile::tempdir().unwrap();
    let (layout, snapshots, snap) = prepared(dir.path());
    corrupt(&snap, &layout.snapshot_pointer());
    let live_bytes_before = store_bytes(&layout.state_machine());
    let live_before = live_content(&layout);
    let snap_before = dir_bytes(&snap);
    let pointer_before = std::fs::read(layout.snapshot_pointer()).unwrap();

    let err = match gate::run(&layout, &snapshots, ColdStartMode::Auto, true) {
        Ok((_, report)) => panic!("{check}: the gate accepted a corrupt snapshot: {report:?}"),
        Err(e) => e,
    };
    match &err {
        GateError::Verification { check: got, .. } => assert_eq!(*got, check, "{err}"),
        other => panic!("{check}: not a verification error: {other}"),
    }
    assert!(
        store_bytes(&layout.state_machine()) == live_bytes_before,
        "{check}: a file of the live store changed"
    );
    if names_file {
        assert!(
            err.to_string().contains(&snap.display().to_string()),
            "{check}: {err}"
        );
    }
    assert_eq!(
        live_content(&layout),
        live_before,
        "{check}: the live store changed"
    );
    assert_eq!(
        dir_bytes(&snap),
        snap_before,
        "{check}: the snapshot changed"
    );
    assert_eq!(
        std::fs::read(layout.snapshot_pointer()).unwrap(),
        pointer_before
    );
    assert!(!layout.restore_tmp().exists() && !layout.state_machine_old().exists());

    let o = std::process::Command::new(BIN)
        .arg("inspect")
        .arg(dir.path())
        .args(["--verify", "--json"])
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "{check}: inspect --verify passed a corrupt snapshot"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("\"failed_check\": \"{check}\"")),
        "{check}: {out}"
    );
}

#[test]
fn truncated_data_file() {
    fails_closed("file_size", true, |snap, _| {
        let f = largest_sst(snap);
        let len = std::fs::metadata(&f).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    });
}

#[test]
fn flipped_byte_in_data_file() {
    fails_closed("file_crc", true, |snap, _| {
        let f = largest_sst(snap);
        let mut b = std::fs::read(&f).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        std::fs::write(&f, b).unwrap();
    });
}

#[test]
fn flipped_byte_in_manifest() {
    fails_closed("manifest_crc", true, |snap, _| {
        let p = snap.join(MANIFEST_FILE);
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x01;
        std::fs::write(&p, b).unwrap();
    });
}

#[test]
fn wrong_token_in_pointer() {
    fails_closed("token", true, |_, pointer| {
        let text = std::fs::read_to_string(pointer).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        // Same magic, version and index; a different manifest CRC.
        let t = &lines[1];
        let flipped = if t.ends_with('0') { "1" } else { "0" };
        lines[1] = format!("{}{flipped}", &t[..t.len() - 1]);
        std::fs::write(pointer, lines.join("\n") + "\n").unwrap();
    });
}

#[test]
fn malformed_pointer_file() {
    fails_closed("pointer", false, |_, pointer| {
        std::fs::write(pointer, b"not a pointer").unwrap();
    });
}

#[test]
fn unknown_manifest_version() {
    fails_closed("unknown_version", false, |snap, _| {
        // A well-formed manifest (valid CRC) of a version this build does not know.
        let raw = std::fs::read(snap.join(MANIFEST_FILE)).unwrap();
        let mut body = raw[..raw.len() - 4].to_vec();
        body[8..12].copy_from_slice(&9u32.to_le_bytes());
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        std::fs::write(snap.join(MANIFEST_FILE), body).unwrap();
    });
}

#[test]
fn missing_data_file() {
    fails_closed("file_missing", true, |snap, _| {
        std::fs::remove_file(largest_sst(snap)).unwrap();
    });
}

#[test]
fn extra_file_in_snapshot() {
    fails_closed("extra_file", true, |snap, _| {
        std::fs::write(snap.join("000999.sst"), b"not listed").unwrap();
    });
}

#[test]
fn manifest_listing_a_wrong_size_fails_even_with_a_valid_crc() {
    // The manifest is self-consistent (valid CRC, pointer token updated) but lies about a
    // file: the per-file check catches it.
    fails_closed("file_size", true, |snap, pointer| {
        let crc = rewrite_manifest(snap, |m| m.files[0].size += 1);
        point_at_manifest_crc(pointer, crc);
    });
}

#[test]
fn snapshot_pointer_never_moves_backwards_and_same_index_rebuild_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, snapshots, snap) = prepared(dir.path());
    let store = Store::open(&layout.state_machine()).unwrap();
    let info = |index| CheckpointInfo {
        index: LogIndex(index),
        term: 1,
        leader_node: 1,
        membership: StoredMembership::default(),
        hlc_ceiling_ms: 0,
    };
    // A build that finishes after a newer snapshot was adopted does not move the pointer back.
    let tmp = snapshots.checkpoint(&store, "7-1").unwrap().dir;
    snapshots.finish_build(&tmp, info(7)).unwrap();
    assert_eq!(
        snapshots.read_pointer().unwrap().unwrap().1.index,
        LogIndex(10)
    );
    // Rebuilding at the pointed-to (index, term) keeps that directory as it is.
    let before = dir_bytes(&snap);
    let tmp = snapshots.checkpoint(&store, "10-1").unwrap().dir;
    let again = snapshots.finish_build(&tmp, info(10)).unwrap();
    assert_eq!(again.path, snap);
    assert_eq!(dir_bytes(&snap), before);
    assert!(!tmp.exists());
}

#[test]
fn gate_restores_a_store_behind_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, snapshots, _) = prepared(dir.path());
    let (store, report) = gate::run(&layout, &snapshots, ColdStartMode::Auto, true).unwrap();
    assert_eq!(
        (report.outcome, report.reason),
        (Outcome::Restore, Reason::BehindSnapshot)
    );
    assert_eq!(report.applied_index, Some(LogIndex(5)));
    assert_eq!(report.snapshot_index, Some(LogIndex(10)));
    let meta = store.meta().unwrap();
    assert_eq!(
        meta.applied.unwrap().index,
        LogIndex(10),
        "restored store reads A = X (I3)"
    );
    assert!(store.get_at(b"k10", Timestamp::MAX).unwrap().is_some());
    drop(store);
    // The next start skips.
    let (_, report) = gate::run(&layout, &snapshots, ColdStartMode::Auto, true).unwrap();
    assert_eq!(
        (report.outcome, report.reason),
        (Outcome::Skip, Reason::None)
    );
}

#[test]
fn gate_skip_reads_no_snapshot_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, snapshots, snap) = prepared(dir.path());
    // Bring the store to A = 10 >= X, then ruin every snapshot data file: a skip must not
    // notice, because it must not read them (O(1) in data size, I4).
    gate::run(&layout, &snapshots, ColdStartMode::Auto, true).unwrap();
    // Replace (not overwrite in place): the restored store hard-links the same SST inodes.
    for e in std::fs::read_dir(&snap).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != MANIFEST_FILE {
            let tmp = p.with_extension("garbage");
            std::fs::write(&tmp, b"garbage").unwrap();
            std::fs::rename(&tmp, &p).unwrap();
        }
    }
    let (store, report) = gate::run(&layout, &snapshots, ColdStartMode::Auto, true).unwrap();
    assert_eq!(
        (report.outcome, report.reason),
        (Outcome::Skip, Reason::None)
    );
    assert_eq!(report.verify, std::time::Duration::ZERO);
    assert_eq!(store.meta().unwrap().applied.unwrap().index, LogIndex(10));
}

#[test]
fn serve_refuses_to_start_from_a_corrupt_snapshot_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _, snap) = prepared(dir.path());
    let f = largest_sst(&snap);
    let mut b = std::fs::read(&f).unwrap();
    b[10] ^= 0xff;
    std::fs::write(&f, b).unwrap();
    let before = live_content(&layout);
    let o = std::process::Command::new(BIN)
        .args(["serve", "--id", "1"])
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--listen",
            &format!("127.0.0.1:{}", common::free_port()),
            "--http",
            &format!("127.0.0.1:{}", common::free_port()),
            "--peer-listen",
            &format!("127.0.0.1:{}", common::free_port()),
            "--peer-insecure",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("file_crc") && e.contains(&f.display().to_string()),
        "{e}"
    );
    assert_eq!(live_content(&layout), before);
}

/// The gate's error for a data dir prepared by `prepared` and changed by `change`, with the
/// live store checked unchanged and no restore left behind.
fn gate_error_leaving_live_store(change: impl FnOnce(&Path, &Path)) -> GateError {
    let dir = tempfile::tempdir().unwrap();
    let (layout, snapshots, snap) = prepared(dir.path());
    change(&snap, &layout.snapshot_pointer());
    let live_bytes_before = store_bytes(&layout.state_machine());
    let err = match gate::run(&layout, &snapshots, ColdStartMode::Auto, true) {
        Ok((_, report)) => panic!("the gate accepted the snapshot: {report:?}"),
        Err(e) => e,
    };
    assert!(
        store_bytes(&layout.state_machine()) == live_bytes_before,
        "a file of the live store changed ({err})"
    );
    assert!(!layout.restore_tmp().exists() && !layout.state_machine_old().exists());
    err
}

#[test]
fn an_io_error_is_not_a_verification_failure() {
    // Only a failed integrity check may lead to the log-wiping recovery; an I/O error must
    // make the node refuse to start with everything left in place. Root bypasses file
    // permissions, so the I/O error here is EISDIR: the manifest path is a directory.
    let err = gate_error_leaving_live_store(|snap, _| {
        let m = snap.join(MANIFEST_FILE);
        let saved = snap.with_extension("manifest-saved");
        std::fs::rename(&m, &saved).unwrap();
        std::fs::create_dir(&m).unwrap();
    });
    match &err {
        GateError::Snapshot(source) => {
            assert!(!source.is_integrity_failure(), "{err}");
            assert_eq!(source.check(), "io");
        }
        other => panic!("an I/O error became {other:?}"),
    }
}

#[test]
fn a_restore_whose_applied_id_differs_from_the_manifest_fails_closed() {
    // A self-consistent manifest (valid CRC, pointer token updated, every file intact) that
    // names another term than the checkpoint it lists: the restored copy is checked against
    // it before it replaces the live store.
    let err = gate_error_leaving_live_store(|snap, pointer| {
        let crc = rewrite_manifest(snap, |m| m.term = 2);
        point_at_manifest_crc(pointer, crc);
    });
    match &err {
        GateError::Verification { check, .. } => assert_eq!(*check, "applied_id", "{err}"),
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

/// A snapshot replacing the pointed-to directory of the same name was interrupted: `state`
/// sets up what the crash left, and the next start must still restore from the snapshot the
/// pointer names.
fn interrupted_replacement(state: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let (layout, snapshots, snap) = prepared(dir.path());
    state(&snap);
    let (store, report) = gate::run(&layout, &snapshots, ColdStartMode::Auto, true)
        .unwrap_or_else(|e| panic!("the gate failed after an interrupted replacement: {e}"));
    assert_eq!(
        (report.outcome, report.reason),
        (Outcome::Restore, Reason::BehindSnapshot)
    );
    assert_eq!(store.meta().unwrap().applied.unwrap().index, LogIndex(10));
    let names: Vec<String> = std::fs::read_dir(layout.snapshots())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with("replaced-")),
        "{names:?}"
    );
    snapshots.current().unwrap().unwrap().verify().unwrap();
}

fn replaced(snap: &Path) -> PathBuf {
    snap.with_file_name(format!(
        "replaced-{}",
        snap.file_name().unwrap().to_string_lossy()
    ))
}

#[test]
fn replacement_interrupted_with_the_old_snapshot_aside_rolls_back() {
    interrupted_replacement(|snap| std::fs::rename(snap, replaced(snap)).unwrap());
}

#[test]
fn replacement_interrupted_before_the_pointer_moved_rolls_back() {
    interrupted_replacement(|snap| {
        // The new directory (another manifest, so another token) took the name; the pointer
        // still holds the old token.
        copy_dir(snap, &snap.with_extension("new"));
        std::fs::rename(snap, replaced(snap)).unwrap();
        std::fs::rename(snap.with_extension("new"), snap).unwrap();
        rewrite_manifest(snap, |m| m.header.hlc_ceiling_ms += 1);
    });
}
