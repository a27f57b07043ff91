//! Checks a recorded history: linearizability of every register key, lost writes, and the
//! list-append anomalies.

mod lists;
mod lost;
mod register;

use crate::history::Op;

pub use lists::check_lists;
pub use lost::lost_register_writes;
pub use register::{check_registers, KeyVerdict};

/// One anomaly found in a history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Anomaly {
    /// `non-linearizable`, `lost-write`, `lost-append`, `duplicate-append`,
    /// `phantom-element`, `divergent-read`, `stale-read`, `corrupt-value`; not violations:
    /// `checker-timeout`, `unavailable`, `nemesis-failed`.
    pub kind: String,
    pub key: String,
    pub detail: String,
}

/// Everything wrong with `history` (its final reads included).
pub fn check(history: &[Op], budget: std::time::Duration) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for v in check_registers(history, budget) {
        match v {
            KeyVerdict::Illegal(key) => out.push(Anomaly {
                kind: "non-linearizable".into(),
                detail: "no linearization of the key's reads, writes and compare-and-sets exists"
                    .into(),
                key,
            }),
            KeyVerdict::Unknown(key) => out.push(Anomaly {
                kind: "checker-timeout".into(),
                detail: "the linearizability search ran out of time".into(),
                key,
            }),
            KeyVerdict::Ok(_) => {}
        }
    }
    out.extend(lost_register_writes(history));
    out.extend(check_lists(history));
    for op in history {
        if let Some(e) = op
            .error
            .as_deref()
            .filter(|e| e.starts_with(crate::workload::CORRUPT))
        {
            out.push(Anomaly {
                kind: "corrupt-value".into(),
                key: op.key.clone(),
                detail: format!("client {} at {} ns: {e}", op.client, op.invoke),
            });
        }
    }
    out
}

/// Anomalies that are not about consistency: the cluster did not come back (a liveness
/// failure, reported on its own), or the checker ran out of time (nothing was proven).
pub fn is_availability(a: &Anomaly) -> bool {
    matches!(a.kind.as_str(), "unavailable" | "nemesis-failed")
}

pub fn is_unchecked(a: &Anomaly) -> bool {
    a.kind == "checker-timeout"
}

/// Anomalies that are consistency violations (lost writes are counted on their own).
pub fn violations(anomalies: &[Anomaly]) -> usize {
    anomalies
        .iter()
        .filter(|a| !is_unchecked(a) && !is_lost(a) && !is_availability(a))
        .count()
}

pub fn is_lost(a: &Anomaly) -> bool {
    a.kind == "lost-write" || a.kind == "lost-append"
}
