//! Why a command failed, as the error line Redis clients expect.

use brisk_service::ServiceError;

use crate::keyspace::CorruptRecord;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR increment would produce NaN or Infinity")]
    NotFinite,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    /// Any other error line, code included (`ERR ...`).
    #[error("{0}")]
    Other(String),
    /// The command (or its batch) read more than the budget of value bytes.
    #[error("ERR the command reads more than {0} MiB; read less at a time")]
    ReadBudget(usize),
    /// Optimistic transactions kept conflicting; nothing was written.
    #[error("TRYAGAIN the keys were changed concurrently too many times; nothing was written")]
    TooManyConflicts,
    #[error("ERR stored record of key is unreadable: {0}")]
    Corrupt(#[from] CorruptRecord),
    #[error("{}", service_line(.0))]
    Service(#[from] ServiceError),
}

/// The error line for a failure below the adapter. Answers that promise nothing was applied
/// use `TRYAGAIN` (clients that know Redis Cluster retry it); an unknown outcome says so.
fn service_line(e: &ServiceError) -> String {
    let text = e.to_string().replace(['\r', '\n'], " ");
    match e {
        ServiceError::NotLeader { .. } | ServiceError::Unavailable(_) => format!("TRYAGAIN {text}"),
        ServiceError::Indeterminate(_) => format!("ERR outcome unknown: {text}"),
        _ => format!("ERR {text}"),
    }
}

impl CommandError {
    pub fn other(text: impl Into<String>) -> Self {
        CommandError::Other(text.into())
    }
}
