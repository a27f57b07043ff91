//! `brisk inspect DATA_DIR`: what a data directory holds and what the cold-start gate would
//! decide, without a server. Opens everything read-only.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use brisk_raft::gate::{classify, ColdStartMode, Reason};
use brisk_raft::layout::DataLayout;
use brisk_raft::log_store::LogSummary;
use brisk_raft::snapshot::{SnapshotDir, SnapshotError, SnapshotStore};
use brisk_raft::types::StoredMembership;
use brisk_storage::{LogIndex, StorageError, Store};
use serde::Serialize;

use super::output::{Format, Report};
use super::Exit;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A node's data directory (the one given to `brisk serve --data-dir`).
    pub data_dir: PathBuf,
    /// Also check every snapshot file's size and CRC32C (reads all snapshot data).
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub format: Format,
}

/// Everything `inspect` found. `ok` is false, and the exit code 1, when any check failed;
/// `problems` says which.
#[derive(Serialize, Debug)]
pub struct Inspection {
    pub data_dir: String,
    pub state_machine: Section<StateMachine>,
    pub raft_log: Section<RaftLog>,
    /// None: the directory has no snapshot pointer.
    pub snapshot: Option<SnapshotReport>,
    pub gate: Gate,
    /// Present with --verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Vec<Verified>>,
    pub ok: bool,
    pub problems: Vec<String>,
}

/// A part of the data directory: what was read, or `{"error": ...}`.
#[derive(Serialize, Debug)]
#[serde(untagged)]
pub enum Section<T> {
    Read(T),
    Unreadable { error: String },
}

#[derive(Serialize, Debug)]
pub struct StateMachine {
    pub applied: Option<Applied>,
    pub membership: Option<Vec<Node>>,
    pub hlc_ceiling_ms: u64,
    pub last_commit_ts: u64,
    pub sst_bytes: u64,
}

// The fields of `Applied` and `Node` are in alphabetical order: the text output prints them
// as compact JSON, and keeps the key order of its documented example.

/// The log id of the last entry the state machine applied.
#[derive(Serialize, Debug)]
pub struct Applied {
    pub index: LogIndex,
    pub leader_node: u64,
    pub term: u64,
}

/// A member as a stored membership records it.
#[derive(Serialize, Debug)]
pub struct Node {
    pub addr: String,
    pub id: u64,
    pub peer_addr: Option<String>,
    pub voter: bool,
}

#[derive(Serialize, Debug)]
pub struct RaftLog {
    pub committed_index: Option<LogIndex>,
    pub last_log_index: Option<LogIndex>,
    pub last_purged_index: Option<LogIndex>,
    pub vote_term: Option<u64>,
    /// A recovery in progress: the node neither votes nor serves reads until it has applied
    /// this index.
    pub recover_until: Option<LogIndex>,
}

/// The snapshot the pointer names, or why it could not be read.
#[derive(Serialize, Debug)]
#[serde(untagged)]
pub enum SnapshotReport {
    Pointer(SnapshotPointer),
    /// The pointer file itself is unreadable.
    Unreadable(Problem),
}

#[derive(Serialize, Debug)]
pub struct SnapshotPointer {
    pub dir: String,
    pub token: String,
    pub index: LogIndex,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    /// The snapshot the pointer names failed a check.
    #[serde(flatten)]
    pub problem: Option<Problem>,
}

/// A failed snapshot check: which one (e.g. `file_crc`) and the error.
#[derive(Serialize, Debug)]
pub struct Problem {
    pub error: String,
    pub failed_check: &'static str,
}

impl From<&SnapshotError> for Problem {
    fn from(e: &SnapshotError) -> Problem {
        Problem {
            error: e.to_string(),
            failed_check: e.check(),
        }
    }
}

#[derive(Serialize, Debug)]
pub struct Manifest {
    pub version: u32,
    pub index: LogIndex,
    pub term: u64,
    pub hlc_ceiling_ms: u64,
    pub cutover_index: LogIndex,
    pub files: usize,
    pub bytes: u64,
    pub membership: Vec<Node>,
}

/// What the cold-start gate would decide on this directory (in `auto` mode).
#[derive(Serialize, Debug)]
pub struct Gate {
    pub outcome: &'static str,
    pub reason: &'static str,
    pub applied_index: Option<LogIndex>,
    pub snapshot_index: Option<LogIndex>,
    /// applied_index - snapshot_index, when both are known.
    pub gap: Option<i64>,
}

/// One snapshot directory checked by --verify.
#[derive(Serialize, Debug)]
pub struct Verified {
    pub dir: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<usize>,
    #[serde(flatten)]
    pub problem: Option<Problem>,
}

fn nodes(m: &StoredMembership) -> Vec<Node> {
    let voters: Vec<u64> = m.membership().voter_ids().collect();
    m.membership()
        .nodes()
        .map(|(id, n)| Node {
            addr: n.addr.clone(),
            id: *id,
            peer_addr: n.peer_addr.clone(),
            voter: voters.contains(id),
        })
        .collect()
}

fn manifest(s: &SnapshotDir) -> Manifest {
    let m = &s.manifest;
    Manifest {
        version: m.version,
        index: m.index,
        term: m.term,
        hlc_ceiling_ms: m.header.hlc_ceiling_ms,
        cutover_index: m.header.cutover_index,
        files: m.files.len(),
        bytes: m.total_bytes(),
        membership: nodes(&m.membership),
    }
}

pub fn run(a: InspectArgs) -> Result<Exit> {
    if !a.data_dir.is_dir() {
        anyhow::bail!("{} is not a directory", a.data_dir.display());
    }
    let layout = DataLayout::new(&a.data_dir);
    let snapshots = SnapshotStore::new(layout.clone(), usize::MAX);
    let mut problems: Vec<String> = Vec::new();

    let (state_machine, applied, problem) = match Store::open_read_only(&layout.state_machine()) {
        Ok(store) => match store.meta() {
            Ok(meta) => {
                let membership: Option<StoredMembership> = meta
                    .membership
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .and_then(|r| brisk_raft::codec::decode(r).ok());
                let sm = StateMachine {
                    applied: meta.applied.map(|a| Applied {
                        index: a.index,
                        leader_node: a.leader_node,
                        term: a.term,
                    }),
                    membership: membership.as_ref().map(nodes),
                    hlc_ceiling_ms: meta.hlc_ceiling_ms,
                    last_commit_ts: meta.last_commit_ts.get(),
                    sst_bytes: store.approximate_size_bytes(),
                };
                match meta.applied {
                    Some(a) => (Section::Read(sm), Some(a.index), None),
                    None => (Section::Read(sm), None, Some(Reason::MissingMeta)),
                }
            }
            Err(e) => {
                problems.push(format!("state machine meta: {e}"));
                let error = e.to_string();
                (Section::Unreadable { error }, None, Some(Reason::ReadError))
            }
        },
        Err(StorageError::Missing(p)) => {
            let error = format!("missing: {}", p.display());
            (
                Section::Unreadable { error },
                None,
                Some(Reason::StoreMissing),
            )
        }
        Err(e) => {
            problems.push(format!("state machine: {e}"));
            let error = e.to_string();
            (Section::Unreadable { error }, None, Some(Reason::ReadError))
        }
    };

    let raft_log = match LogSummary::read_only(&layout.raft_log()) {
        Ok(s) => Section::Read(RaftLog {
            committed_index: s.committed.map(|l| LogIndex(l.index)),
            last_log_index: s.last_log_id.map(|l| LogIndex(l.index)),
            last_purged_index: s.last_purged.map(|l| LogIndex(l.index)),
            vote_term: s.vote.map(|v| v.leader_id.term),
            recover_until: s.recover_until,
        }),
        Err(e) => {
            problems.push(format!("raft log: {e}"));
            Section::Unreadable {
                error: e.to_string(),
            }
        }
    };

    let (snapshot, snapshot_index) = match snapshots.read_pointer() {
        Ok(Some((dir, token))) => {
            let mut pointer = SnapshotPointer {
                dir,
                token: token.to_hex(),
                index: token.index,
                manifest: None,
                problem: None,
            };
            match snapshots.current() {
                Ok(Some(s)) => pointer.manifest = Some(manifest(&s)),
                Ok(None) => {}
                Err(e) => {
                    problems.push(format!("snapshot {}: {e}", pointer.dir));
                    pointer.problem = Some(Problem::from(&e));
                }
            }
            (Some(SnapshotReport::Pointer(pointer)), Some(token.index))
        }
        Ok(None) => (None, None),
        Err(e) => {
            problems.push(format!("snapshot pointer: {e}"));
            (Some(SnapshotReport::Unreadable(Problem::from(&e))), None)
        }
    };

    let (outcome, reason) = classify(ColdStartMode::Auto, applied, snapshot_index, problem);
    let gate = Gate {
        outcome: outcome.as_str(),
        reason: reason.as_str(),
        applied_index: applied,
        snapshot_index,
        gap: match (applied, snapshot_index) {
            (Some(a), Some(x)) => Some(a.offset_from(x)),
            _ => None,
        },
    };

    let verify = a.verify.then(|| verify_all(&layout, &mut problems));

    let report = Inspection {
        data_dir: a.data_dir.display().to_string(),
        state_machine,
        raft_log,
        snapshot,
        gate,
        verify,
        ok: problems.is_empty(),
        problems,
    };
    a.format.print(&report)?;
    Ok(if report.ok {
        Exit::Success
    } else {
        Exit::Negative
    })
}

/// Checks every snapshot directory's files; a failure is added to `problems`. A directory
/// gone by the time it fails was collected by the running node meanwhile, and is left out.
fn verify_all(layout: &DataLayout, problems: &mut Vec<String>) -> Vec<Verified> {
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
    dirs.into_iter()
        .filter_map(|d| {
            let dir = d.display().to_string();
            let verified = SnapshotDir::open(&d).and_then(|s| s.verify().map(|_| s));
            if verified.is_err() && !d.exists() {
                return None;
            }
            Some(match verified {
                Ok(s) => Verified {
                    dir,
                    ok: true,
                    files: Some(s.manifest.files.len()),
                    problem: None,
                },
                Err(e) => {
                    problems.push(format!("verify {dir}: {e}"));
                    Verified {
                        dir,
                        ok: false,
                        files: None,
                        problem: Some(Problem::from(&e)),
                    }
                }
            })
        })
        .collect()
}

/// `-` for a value that is absent, else the value.
fn show<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A part of the report as compact JSON, `-` when absent.
fn show_json<T: Serialize>(v: Option<&T>) -> String {
    v.and_then(|v| serde_json::to_string(v).ok())
        .unwrap_or_else(|| "-".to_string())
}

impl Report for Inspection {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "data dir          {}", self.data_dir)?;
        match &self.state_machine {
            Section::Unreadable { error } => writeln!(out, "state machine     ERROR {error}")?,
            Section::Read(sm) => {
                writeln!(out, "applied           {}", show_json(sm.applied.as_ref()))?;
                writeln!(
                    out,
                    "membership        {}",
                    show_json(sm.membership.as_ref())
                )?;
                writeln!(out, "hlc ceiling ms    {}", sm.hlc_ceiling_ms)?;
                writeln!(out, "last commit ts    {}", sm.last_commit_ts)?;
            }
        }
        match &self.raft_log {
            Section::Unreadable { error } => writeln!(out, "raft log          ERROR {error}")?,
            Section::Read(log) => {
                writeln!(
                    out,
                    "raft log          committed {} / last {} / purged {}",
                    show(log.committed_index),
                    show(log.last_log_index),
                    show(log.last_purged_index)
                )?;
                if let Some(index) = log.recover_until {
                    writeln!(
                        out,
                        "recovering        until index {index} is applied (no vote, no reads before)"
                    )?;
                }
            }
        }
        match &self.snapshot {
            None => writeln!(out, "snapshot          none")?,
            Some(SnapshotReport::Unreadable(p)) => {
                writeln!(out, "snapshot pointer  - (token -)")?;
                writeln!(
                    out,
                    "snapshot          ERROR ({}) {}",
                    p.failed_check, p.error
                )?;
            }
            Some(SnapshotReport::Pointer(s)) => {
                writeln!(out, "snapshot pointer  {} (token {})", s.dir, s.token)?;
                if let Some(m) = &s.manifest {
                    writeln!(
                        out,
                        "snapshot manifest v{} index {} term {}, {} files, {} bytes",
                        m.version, m.index, m.term, m.files, m.bytes
                    )?;
                }
                if let Some(p) = &s.problem {
                    writeln!(
                        out,
                        "snapshot          ERROR ({}) {}",
                        p.failed_check, p.error
                    )?;
                }
            }
        }
        let g = &self.gate;
        writeln!(
            out,
            "gate would       {} (reason {}, A={}, X={}, gap {})",
            g.outcome,
            g.reason,
            show(g.applied_index),
            show(g.snapshot_index),
            show(g.gap)
        )?;
        for v in self.verify.iter().flatten() {
            match &v.problem {
                None => writeln!(
                    out,
                    "verify            OK   {} ({} files)",
                    v.dir,
                    show(v.files)
                )?,
                Some(p) => writeln!(
                    out,
                    "verify            FAIL {} ({}): {}",
                    v.dir, p.failed_check, p.error
                )?,
            }
        }
        if !self.ok {
            writeln!(out, "problems          {}", show_json(Some(&self.problems)))?;
        }
        Ok(())
    }
}
