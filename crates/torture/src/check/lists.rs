//! List-append checks. Every list key's history is a set of appends of unique elements and
//! reads of the whole list. In a serializable, linearizable store all reads are prefixes of
//! one order, the final list holds every acknowledged append exactly once and nothing never
//! appended, and a read that starts after an append was acknowledged (or after another read
//! returned) sees at least that much.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Anomaly;
use crate::history::{Kind, Op, Outcome};

pub fn check_lists(history: &[Op]) -> Vec<Anomaly> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        if matches!(op.kind, Kind::Append | Kind::ReadList) {
            by_key.entry(&op.key).or_default().push(op);
        }
    }
    let mut out = Vec::new();
    for (key, ops) in by_key {
        check_key(key, &ops, &mut out);
    }
    out
}

fn anomaly(out: &mut Vec<Anomaly>, kind: &str, key: &str, detail: String) {
    out.push(Anomaly {
        kind: kind.into(),
        key: key.into(),
        detail,
    });
}

fn check_key(key: &str, ops: &[&Op], out: &mut Vec<Anomaly>) {
    let reads: Vec<(&Op, &Vec<i64>)> = ops
        .iter()
        .filter(|o| o.kind == Kind::ReadList && o.outcome == Outcome::Ok)
        .filter_map(|o| o.list.as_ref().map(|l| (*o, l)))
        .collect();
    // The longest read is the reference order; every read must be a prefix of it.
    let Some(longest) = reads.iter().map(|(_, l)| *l).max_by_key(|l| l.len()) else {
        return;
    };
    let appended: HashMap<i64, &Op> = ops
        .iter()
        .filter(|o| o.kind == Kind::Append && o.may_have_written())
        .filter_map(|o| o.value.map(|v| (v, *o)))
        .collect();
    let mut seen = HashSet::new();
    for e in longest {
        if !seen.insert(*e) {
            anomaly(
                out,
                "duplicate-append",
                key,
                format!("element {e} appears twice in {longest:?}"),
            );
        }
        if !appended.contains_key(e) {
            anomaly(
                out,
                "phantom-element",
                key,
                format!("element {e} was never appended (or its append failed)"),
            );
        }
    }
    for (r, l) in &reads {
        if !longest.starts_with(l) {
            anomaly(
                out,
                "divergent-read",
                key,
                format!(
                    "read by client {} at {} ns saw {l:?}, not a prefix of {longest:?}",
                    r.client, r.invoke
                ),
            );
        }
    }
    // Real time: a read sees every append acknowledged before it began, and everything an
    // earlier completed read saw.
    for (r, l) in &reads {
        let has: HashSet<i64> = l.iter().copied().collect();
        for (e, a) in &appended {
            if a.outcome == Outcome::Ok && a.complete < r.invoke && !has.contains(e) {
                anomaly(
                    out,
                    "stale-read",
                    key,
                    format!(
                        "read by client {} at {} ns misses element {e}, acknowledged at {} ns",
                        r.client, r.invoke, a.complete
                    ),
                );
            }
        }
        for (r0, l0) in &reads {
            if r0.complete < r.invoke && l0.len() > l.len() {
                anomaly(
                    out,
                    "stale-read",
                    key,
                    format!(
                        "read at {} ns saw {} elements after a read that returned {} elements at {} ns",
                        r.invoke,
                        l.len(),
                        l0.len(),
                        r0.complete
                    ),
                );
            }
        }
    }
    // Lost appends: the final read (the last read of the final-read client) must hold every
    // acknowledged append.
    let final_list = reads
        .iter()
        .filter(|(r, _)| r.client == crate::workload::FINAL_CLIENT)
        .max_by_key(|(r, _)| r.invoke)
        .map(|(_, l)| *l);
    if let Some(final_list) = final_list {
        let has: HashSet<i64> = final_list.iter().copied().collect();
        for (e, a) in &appended {
            if a.outcome == Outcome::Ok && !has.contains(e) {
                anomaly(
                    out,
                    "lost-append",
                    key,
                    format!(
                        "acknowledged append of {e} (client {}) is not in the final list",
                        a.client
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::register::tests::op;

    fn append(e: i64, t: (i64, i64), outcome: Outcome) -> Op {
        op(Kind::Append, "l", Some(e), t, outcome)
    }

    fn read(l: &[i64], t: (i64, i64)) -> Op {
        let mut o = op(Kind::ReadList, "l", None, t, Outcome::Ok);
        o.list = Some(l.to_vec());
        o
    }

    fn kinds(h: &[Op]) -> Vec<String> {
        check_lists(h).into_iter().map(|a| a.kind).collect()
    }

    #[test]
    fn a_consistent_history_passes() {
        let h = vec![
            append(1, (0, 10), Outcome::Ok),
            read(&[1], (20, 30)),
            append(2, (40, 50), Outcome::Unknown),
            read(&[1, 2], (60, 70)),
        ];
        assert!(kinds(&h).is_empty(), "{:?}", check_lists(&h));
    }

    #[test]
    fn anomalies_are_named() {
        let dup = vec![append(1, (0, 10), Outcome::Ok), read(&[1, 1], (20, 30))];
        assert!(kinds(&dup).contains(&"duplicate-append".to_string()));
        let phantom = vec![append(1, (0, 10), Outcome::Fail), read(&[1], (20, 30))];
        assert!(kinds(&phantom).contains(&"phantom-element".to_string()));
        let divergent = vec![
            append(1, (0, 10), Outcome::Ok),
            append(2, (0, 10), Outcome::Ok),
            read(&[1, 2], (20, 30)),
            read(&[2], (40, 50)),
        ];
        assert!(kinds(&divergent).contains(&"divergent-read".to_string()));
        let stale = vec![
            append(1, (0, 10), Outcome::Ok),
            append(2, (20, 30), Outcome::Ok),
            read(&[1], (40, 50)),
            read(&[1, 2], (60, 70)),
        ];
        assert!(kinds(&stale).contains(&"stale-read".to_string()));
        let mut final_read = read(&[1], (100, 110));
        final_read.client = crate::workload::FINAL_CLIENT;
        let lost = vec![
            append(1, (0, 10), Outcome::Ok),
            append(2, (20, 30), Outcome::Ok),
            read(&[1, 2], (40, 50)),
            final_read,
        ];
        let k = kinds(&lost);
        assert!(k.contains(&"lost-append".to_string()), "{k:?}");
    }
}
