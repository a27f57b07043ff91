//! Lost writes on register keys: an acknowledged write whose value is not in the final state
//! although no other write could have been ordered after it.

use std::collections::BTreeMap;

use super::Anomaly;
use crate::history::{Kind, Op, Outcome};

/// The final read of each register key is the last successful read by the final-read client
/// (`final_client`). A write W is lost when the final value differs from W's and every other
/// write to the key that may have taken effect had completed before W was invoked (so none
/// can be ordered after W).
pub fn lost_register_writes(history: &[Op]) -> Vec<Anomaly> {
    let mut finals: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for op in history {
        if op.client == crate::workload::FINAL_CLIENT
            && op.kind == Kind::Read
            && op.outcome == Outcome::Ok
        {
            finals.insert(&op.key, op.value);
        }
    }
    let mut writes: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        if matches!(op.kind, Kind::Write | Kind::Cas) && op.may_have_written() {
            writes.entry(&op.key).or_default().push(op);
        }
    }
    let mut out = Vec::new();
    for (key, ws) in writes {
        let Some(final_value) = finals.get(key) else {
            continue;
        };
        for w in ws.iter().filter(|w| w.outcome == Outcome::Ok) {
            if *final_value == w.value {
                continue;
            }
            let overwritable = ws
                .iter()
                .any(|o| !std::ptr::eq(*o, *w) && o.complete > w.invoke);
            if !overwritable {
                out.push(Anomaly {
                    kind: "lost-write".into(),
                    key: key.to_string(),
                    detail: format!(
                        "acknowledged write of {:?} (client {}, invoked at {} ns) is not the final value {final_value:?}, and no other write could follow it",
                        w.value, w.client, w.invoke
                    ),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::register::tests::op;
    use crate::workload::FINAL_CLIENT;

    fn final_read(key: &str, v: Option<i64>) -> Op {
        let mut o = op(Kind::Read, key, v, (10_000, 10_010), Outcome::Ok);
        o.client = FINAL_CLIENT;
        o
    }

    #[test]
    fn the_last_acknowledged_write_must_survive() {
        let h = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Ok),
            final_read("k", Some(1)),
        ];
        let lost = lost_register_writes(&h);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].detail.contains("Some(2)"));
        let kept = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Ok),
            final_read("k", Some(2)),
        ];
        assert!(lost_register_writes(&kept).is_empty());
    }

    #[test]
    fn a_concurrent_or_unknown_later_write_may_overwrite() {
        let h = vec![
            op(Kind::Write, "k", Some(1), (0, 100), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Ok),
            final_read("k", Some(1)),
        ];
        assert!(lost_register_writes(&h).is_empty());
        let h = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Unknown),
            final_read("k", Some(2)),
        ];
        assert!(lost_register_writes(&h).is_empty());
    }
}
