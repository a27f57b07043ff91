//! Linearizability of register keys (read, write, compare-and-set) with porcupine-rs, one
//! key at a time. Operations with an unknown outcome complete "never": the search may place
//! them anywhere after their invocation, which includes after everything else (not at all).
//! Failed operations and failed reads are left out: they had no effect and returned nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use porcupine_rs::{CheckResult, Model, Operation};

use crate::history::{Kind, Op, Outcome, NEVER};

#[derive(Clone, Debug)]
pub enum RegisterOp {
    Read(Option<i64>),
    Write(i64),
    Cas { expected: i64, new: i64 },
}

#[derive(Clone)]
pub struct Register;

impl Model for Register {
    type State = Option<i64>;
    type Op = RegisterOp;
    type Metadata = ();

    fn init() -> Self::State {
        None
    }

    fn step(state: &Self::State, op: &Self::Op) -> (bool, Self::State) {
        match op {
            RegisterOp::Read(v) => (v == state, *state),
            RegisterOp::Write(v) => (true, Some(*v)),
            RegisterOp::Cas { expected, new } => {
                if *state == Some(*expected) {
                    (true, Some(*new))
                } else {
                    (false, *state)
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    Ok(String),
    Illegal(String),
    Unknown(String),
}

fn to_operation(op: &Op) -> Option<Operation<Register>> {
    let model_op = match (op.kind, op.outcome) {
        (_, Outcome::Fail) => return None,
        (Kind::Read, Outcome::Ok) => RegisterOp::Read(op.value),
        (Kind::Read, Outcome::Unknown) => return None,
        (Kind::Write, _) => RegisterOp::Write(op.value?),
        (Kind::Cas, _) => RegisterOp::Cas {
            expected: op.expected?,
            new: op.value?,
        },
        _ => return None,
    };
    Some(Operation {
        client_id: Some(op.client),
        call_time: op.invoke,
        return_time: if op.outcome == Outcome::Unknown {
            NEVER
        } else {
            op.complete
        },
        op: model_op,
        metadata: None,
    })
}

/// Whether an operation with an unknown outcome can be left out of the search: a write
/// (or compare-and-set) whose value no successful read returned and no successful
/// compare-and-set expected. It can always be linearized last (its completion is "never"),
/// where it affects nothing, so dropping it changes no verdict; keeping it would make every
/// later operation concurrent with it and the search exponential.
fn unobserved(op: &Op, observed: &std::collections::HashSet<(&str, i64)>) -> bool {
    op.outcome == Outcome::Unknown
        && op
            .value
            .is_none_or(|v| !observed.contains(&(op.key.as_str(), v)))
}

/// A verdict per register key in `history`, each search bounded by `budget`.
pub fn check_registers(history: &[Op], budget: Duration) -> Vec<KeyVerdict> {
    let mut observed = std::collections::HashSet::new();
    for op in history.iter().filter(|o| o.outcome == Outcome::Ok) {
        match op.kind {
            Kind::Read => {
                if let Some(v) = op.value {
                    observed.insert((op.key.as_str(), v));
                }
            }
            Kind::Cas => {
                if let Some(v) = op.expected {
                    observed.insert((op.key.as_str(), v));
                }
            }
            _ => {}
        }
    }
    // A kept unknown compare-and-set needs the write it expected: keep adding what kept
    // operations expect until nothing changes (keeping more unknown writes is always sound).
    loop {
        let before = observed.len();
        for op in history.iter().filter(|o| o.kind == Kind::Cas) {
            if !unobserved(op, &observed) {
                if let Some(e) = op.expected {
                    observed.insert((op.key.as_str(), e));
                }
            }
        }
        if observed.len() == before {
            break;
        }
    }
    let mut by_key: BTreeMap<&str, Vec<Operation<Register>>> = BTreeMap::new();
    for op in history {
        if matches!(op.kind, Kind::Read | Kind::Write | Kind::Cas) && !unobserved(op, &observed) {
            if let Some(o) = to_operation(op) {
                by_key.entry(&op.key).or_default().push(o);
            }
        }
    }
    by_key
        .into_iter()
        .map(|(key, ops)| {
            let key = key.to_string();
            match porcupine_rs::check_operations_timeout(&ops, budget) {
                CheckResult::Ok => KeyVerdict::Ok(key),
                CheckResult::Illegal => KeyVerdict::Illegal(key),
                CheckResult::Unknown => KeyVerdict::Unknown(key),
            }
        })
        .collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn op(kind: Kind, key: &str, value: Option<i64>, t: (i64, i64), outcome: Outcome) -> Op {
        Op {
            client: (t.0 % 7) as u32,
            node: 1,
            invoke: t.0,
            complete: t.1,
            kind,
            key: key.into(),
            value,
            expected: None,
            list: None,
            outcome,
            error: None,
        }
    }

    fn verdict(h: &[Op]) -> KeyVerdict {
        check_registers(h, Duration::from_secs(5)).remove(0)
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Read, "k", Some(1), (20, 30), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (40, 50), Outcome::Ok),
            op(Kind::Read, "k", Some(2), (60, 70), Outcome::Ok),
        ];
        assert_eq!(verdict(&h), KeyVerdict::Ok("k".into()));
    }

    #[test]
    fn a_stale_read_is_caught() {
        // The read starts after the second write was acknowledged but sees the first.
        let h = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Ok),
            op(Kind::Read, "k", Some(1), (40, 50), Outcome::Ok),
        ];
        assert_eq!(verdict(&h), KeyVerdict::Illegal("k".into()));
    }

    #[test]
    fn concurrent_operations_may_be_ordered_either_way() {
        let h = vec![
            op(Kind::Write, "k", Some(1), (0, 100), Outcome::Ok),
            op(Kind::Read, "k", None, (10, 20), Outcome::Ok),
            op(Kind::Read, "k", Some(1), (30, 40), Outcome::Ok),
        ];
        assert_eq!(verdict(&h), KeyVerdict::Ok("k".into()));
    }

    #[test]
    fn an_unknown_write_may_or_may_not_take_effect() {
        let seen = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Unknown),
            op(Kind::Read, "k", Some(2), (500, 510), Outcome::Ok),
        ];
        assert_eq!(verdict(&seen), KeyVerdict::Ok("k".into()));
        let unseen = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Unknown),
            op(Kind::Read, "k", Some(1), (500, 510), Outcome::Ok),
        ];
        assert_eq!(verdict(&unseen), KeyVerdict::Ok("k".into()));
        // But once it was seen, it cannot be unseen.
        let flicker = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Unknown),
            op(Kind::Read, "k", Some(2), (500, 510), Outcome::Ok),
            op(Kind::Read, "k", Some(1), (600, 610), Outcome::Ok),
        ];
        assert_eq!(verdict(&flicker), KeyVerdict::Illegal("k".into()));
    }

    #[test]
    fn an_unknown_chain_of_write_and_compare_and_set_is_kept_whole() {
        // An unknown write of 5, an unknown cas 5 -> 6, a read of 6: linearizable only if
        // both happened, so neither may be pruned although nobody read 5.
        let mut cas = op(Kind::Cas, "k", Some(6), (20, 30), Outcome::Unknown);
        cas.expected = Some(5);
        let h = vec![
            op(Kind::Write, "k", Some(5), (0, 10), Outcome::Unknown),
            cas,
            op(Kind::Read, "k", Some(6), (500, 510), Outcome::Ok),
        ];
        assert_eq!(verdict(&h), KeyVerdict::Ok("k".into()));
    }

    #[test]
    fn a_failed_write_must_not_be_seen() {
        let h = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            op(Kind::Write, "k", Some(2), (20, 30), Outcome::Fail),
            op(Kind::Read, "k", Some(2), (40, 50), Outcome::Ok),
        ];
        assert_eq!(verdict(&h), KeyVerdict::Illegal("k".into()));
    }

    #[test]
    fn compare_and_set_follows_the_register() {
        let mut cas = op(Kind::Cas, "k", Some(2), (20, 30), Outcome::Ok);
        cas.expected = Some(1);
        let good = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            cas.clone(),
            op(Kind::Read, "k", Some(2), (40, 50), Outcome::Ok),
        ];
        assert_eq!(verdict(&good), KeyVerdict::Ok("k".into()));
        let mut wrong = cas;
        wrong.expected = Some(7);
        let bad = vec![
            op(Kind::Write, "k", Some(1), (0, 10), Outcome::Ok),
            wrong,
            op(Kind::Read, "k", Some(2), (40, 50), Outcome::Ok),
        ];
        assert_eq!(verdict(&bad), KeyVerdict::Illegal("k".into()));
    }
}
