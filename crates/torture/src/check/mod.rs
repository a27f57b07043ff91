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
    /// `phantom-element`, `divergent-read`, `stale-read`, `checker-timeout`.
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
    out
}

/// Anomalies that are violations (a checker timeout is reported, not counted).
pub fn violations(anomalies: &[Anomaly]) -> usize {
    anomalies
        .iter()
        .filter(|a| a.kind != "checker-timeout" && !is_lost(a))
        .count()
}

pub fn is_lost(a: &Anomaly) -> bool {
    a.kind == "lost-write" || a.kind == "lost-append"
}
