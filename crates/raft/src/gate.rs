//! The cold-start gate (docs/design/cold-start.md I4, I5).
//!
//! Runs before Raft: decides from the store's applied index A and the snapshot pointer X
//! whether the store can be used as it is (skip, O(1) in data size) or must be restored from
//! snapshot X (verify everything first, then swap atomically).

use std::time::{Duration, Instant};

use brisk_storage::{LogIndex, StorageError, Store};

use crate::layout::DataLayout;
use crate::snapshot::{SnapshotError, SnapshotStore};

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumString)]
#[strum(
    serialize_all = "kebab-case",
    parse_err_ty = String,
    parse_err_fn = unknown_mode
)]
pub enum ColdStartMode {
    /// Skip whenever the store is at or past the snapshot.
    Auto,
    /// Always delete the store and restore from the snapshot (the O(data) baseline).
    AlwaysRestore,
}

fn unknown_mode(other: &str) -> String {
    format!("unknown cold-start mode {other:?} (want auto or always-restore)")
}

/// The gate's decision; its name is the `outcome` label of `brisk_cold_start_total` and the
/// inspector's and status reply's `cold_start_outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    Skip,
    Restore,
}

/// Why the gate decided as it did; its name is the `reason` label beside [`Outcome`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    None,
    NoSnapshot,
    MissingMeta,
    ReadError,
    BehindSnapshot,
    StoreMissing,
    Forced,
    /// The snapshot to restore from failed verification; the node rebuilt from the leader.
    VerifyFailed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What the gate saw and decided, and how long each phase took.
#[derive(Clone, Debug)]
pub struct GateReport {
    pub outcome: Outcome,
    pub reason: Reason,
    /// A as found in the store (None: missing meta, unreadable or missing store).
    pub applied_index: Option<LogIndex>,
    /// A of the store the node serves from after the gate (after a restore: X).
    pub served_applied_index: Option<LogIndex>,
    pub snapshot_index: Option<LogIndex>,
    pub open: Duration,
    pub gate: Duration,
    pub verify: Duration,
    pub restore: Duration,
}

impl GateReport {
    /// A - X (0 when either is unknown).
    pub fn applied_index_gap(&self) -> i64 {
        match (self.applied_index, self.snapshot_index) {
            (Some(a), Some(x)) => a.offset_from(x),
            _ => 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cold start refused: snapshot failed verification ({check}): {source}")]
    Verification {
        check: &'static str,
        #[source]
        source: SnapshotError,
    },
    #[error("cold start refused: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("cold start refused: state machine store: {0}")]
    Storage(#[from] StorageError),
    #[error(
        "cold start refused: the state machine needs a restore ({reason}) but there is no snapshot, and the Raft log was compacted"
    )]
    NothingToRestoreFrom { reason: Reason },
}

/// What the gate would decide, without changing anything (the inspector uses this too).
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    pub applied_index: Option<LogIndex>,
    pub snapshot_index: Option<LogIndex>,
    /// The store, opened read-only, when it opened.
    pub store: Option<Store>,
    pub open: Duration,
}

/// The gate's rule (I4) on what the store and the pointer say: `a` is the store's applied
/// index (None with `problem` saying why), `x` the snapshot pointer's index.
pub fn classify(
    mode: ColdStartMode,
    a: Option<LogIndex>,
    x: Option<LogIndex>,
    problem: Option<Reason>,
) -> (Outcome, Reason) {
    match (mode, a, x, problem) {
        (ColdStartMode::AlwaysRestore, _, Some(_), _) => (Outcome::Restore, Reason::Forced),
        (_, Some(_), None, _) => (Outcome::Skip, Reason::NoSnapshot),
        (_, Some(a), Some(x), _) if a >= x => (Outcome::Skip, Reason::None),
        (_, Some(_), Some(_), _) => (Outcome::Restore, Reason::BehindSnapshot),
        (_, None, _, Some(r)) => (Outcome::Restore, r),
        (_, None, _, None) => (Outcome::Restore, Reason::MissingMeta),
    }
}

/// A failed integrity check is a verification failure (the node may rebuild from the
/// leader, I5); any other error (I/O) makes the node refuse to start, changing nothing.
fn verification(source: SnapshotError) -> GateError {
    if source.is_integrity_failure() {
        GateError::Verification {
            check: source.check(),
            source,
        }
    } else {
        GateError::Snapshot(source)
    }
}

pub fn decide(
    layout: &DataLayout,
    snapshots: &SnapshotStore,
    mode: ColdStartMode,
) -> Result<Decision, GateError> {
    // A malformed pointer is a failed check like any other (I5): fail closed.
    let x = snapshots
        .read_pointer()
        .map_err(verification)?
        .map(|(_, token)| token.index);
    let started = Instant::now();
    // Read-only: deciding must not change a byte of the live store (I5: a failed restore
    // leaves it as it was). The skip path reopens it for writing.
    let (store, a, problem) = match Store::open_read_only(&layout.state_machine()) {
        Ok(store) => match store.meta() {
            Ok(meta) => match meta.applied {
                Some(a) => (Some(store), Some(a.index), None),
                None => (Some(store), None, Some(Reason::MissingMeta)),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cold start: state machine meta unreadable");
                (None, None, Some(Reason::ReadError))
            }
        },
        Err(StorageError::Missing(_)) => (None, None, Some(Reason::StoreMissing)),
        Err(e) => {
            tracing::warn!(error = %e, "cold start: state machine store does not open");
            (None, None, Some(Reason::ReadError))
        }
    };
    let open = started.elapsed();
    let (outcome, reason) = classify(mode, a, x, problem);
    Ok(Decision {
        outcome,
        reason,
        applied_index: a,
        snapshot_index: x,
        store,
        open,
    })
}

/// Runs the gate and returns the store to serve from. `log_compacted` tells whether the Raft
/// log lost entries to compaction (then a store without a snapshot cannot be rebuilt).
pub fn run(
    layout: &DataLayout,
    snapshots: &SnapshotStore,
    mode: ColdStartMode,
    log_compacted: bool,
) -> Result<(Store, GateReport), GateError> {
    let gate_started = Instant::now();
    snapshots.ensure_dir()?;
    snapshots.remove_leftovers();
    let d = decide(layout, snapshots, mode)?;
    let mut report = GateReport {
        outcome: d.outcome,
        reason: d.reason,
        applied_index: d.applied_index,
        served_applied_index: d.applied_index,
        snapshot_index: d.snapshot_index,
        open: d.open,
        gate: Duration::ZERO,
        verify: Duration::ZERO,
        restore: Duration::ZERO,
    };
    if d.outcome == Outcome::Skip {
        drop(d.store);
        let store = Store::open_existing(&layout.state_machine())?;
        report.gate = gate_started.elapsed();
        return Ok((store, report));
    }
    drop(d.store);
    let live = layout.state_machine();
    let Some(snap) = snapshots.current().map_err(verification)? else {
        // Nothing to restore from: a brand-new node, or a store without meta keys whose log
        // still starts at index 1, is rebuilt by replaying the whole log from an empty store.
        if log_compacted {
            return Err(GateError::NothingToRestoreFrom {
                reason: report.reason,
            });
        }
        if report.reason == Reason::StoreMissing {
            // A new node: there is nothing to skip and nothing to restore.
            report.outcome = Outcome::Skip;
            report.reason = Reason::NoSnapshot;
        }
        if live.exists() {
            std::fs::remove_dir_all(&live).map_err(|source| StorageError::Io {
                path: live.clone(),
                source,
            })?;
        }
        let store = Store::open(&live)?;
        report.served_applied_index = None;
        report.gate = gate_started.elapsed();
        return Ok((store, report));
    };
    // I5: verify everything before changing anything.
    let t = Instant::now();
    snap.verify().map_err(verification)?;
    report.verify = t.elapsed();
    let t = Instant::now();
    snapshots
        .restore(&snap, mode == ColdStartMode::Auto)
        .map_err(verification)?;
    let store = Store::open_existing(&live)?;
    report.served_applied_index = store.meta()?.applied.map(|a| a.index);
    report.restore = t.elapsed();
    report.gate = gate_started.elapsed();
    Ok((store, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are metric labels and report fields: dashboards and tests match them.
    #[test]
    fn names_are_the_published_labels() {
        assert_eq!(Outcome::Skip.as_str(), "skip");
        assert_eq!(Outcome::Restore.to_string(), "restore");
        let reasons = [
            (Reason::None, "none"),
            (Reason::NoSnapshot, "no_snapshot"),
            (Reason::MissingMeta, "missing_meta"),
            (Reason::ReadError, "read_error"),
            (Reason::BehindSnapshot, "behind_snapshot"),
            (Reason::StoreMissing, "store_missing"),
            (Reason::Forced, "forced"),
            (Reason::VerifyFailed, "verify_failed"),
        ];
        for (reason, name) in reasons {
            assert_eq!(reason.as_str(), name);
            assert_eq!(reason.to_string(), name);
        }
    }

    #[test]
    fn modes_parse_by_their_flag_names() {
        assert_eq!("auto".parse(), Ok(ColdStartMode::Auto));
        assert_eq!("always-restore".parse(), Ok(ColdStartMode::AlwaysRestore));
        let err = "sometimes".parse::<ColdStartMode>().unwrap_err();
        assert!(
            err.contains("\"sometimes\"") && err.contains("always-restore"),
            "{err}"
        );
    }
}
