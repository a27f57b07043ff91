//! The recorded history: one entry per client operation, with its invoke and completion
//! times and what the client learned.

use serde::{Deserialize, Serialize};

/// Completion time of an operation whose outcome is unknown: it may take effect at any
/// point after its invocation, or never.
pub const NEVER: i64 = i64::MAX;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Linearizable read of a register key.
    Read,
    /// Blind write of a unique value to a register key.
    Write,
    /// Compare-and-set of a register key, through a transaction.
    Cas,
    /// Append a unique element to a list key, through a transaction.
    Append,
    /// Linearizable read of a list key.
    ReadList,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Took effect (a write was acknowledged, a read returned).
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// May or may not have taken effect.
    Unknown,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Op {
    pub client: u32,
    /// The node the request was sent to.
    pub node: u64,
    /// Nanoseconds since the run started.
    pub invoke: i64,
    /// [`NEVER`] for unknown outcomes.
    pub complete: i64,
    pub kind: Kind,
    pub key: String,
    /// The value written (write, the new value of a cas, the appended element) or read.
    pub value: Option<i64>,
    /// The value a cas expected.
    pub expected: Option<i64>,
    /// The list a list read returned.
    pub list: Option<Vec<i64>>,
    pub outcome: Outcome,
    pub error: Option<String>,
}

impl Op {
    pub fn is_write(&self) -> bool {
        matches!(self.kind, Kind::Write | Kind::Cas | Kind::Append)
    }

    /// A write that was acknowledged or may have taken effect.
    pub fn may_have_written(&self) -> bool {
        self.is_write() && self.outcome != Outcome::Fail
    }
}

pub fn write_jsonl(path: &std::path::Path, ops: &[&Op]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut f, op)?;
        writeln!(f)?;
    }
    f.flush()
}
