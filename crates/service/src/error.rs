//! Why a service call did not do what it was asked, in terms every protocol can state.
//!
//! The variants that matter most to a client are the three outcomes of a failed write:
//! [`NotLeader`](ServiceError::NotLeader) and [`Unavailable`](ServiceError::Unavailable)
//! promise nothing was applied (retrying is safe), [`Indeterminate`](ServiceError::Indeterminate)
//! does not (retrying may apply it twice).

use brisk_client::Failure;
use brisk_proto::{LEADER_ADDR_HEADER, NOT_APPLIED_HEADER};
use brisk_raft::node::ProposeError;
use brisk_storage::StorageError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is wrong (sizes, ranges, addresses, timestamps).
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is well formed but the cluster's state refuses it (membership rules).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A rate or concurrency limit: retry later.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Only the leader serves this; nothing was applied. Retry at `leader_addr` when known.
    #[error("{}", not_leader_message(.leader_id, .leader_addr))]
    NotLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    /// Nothing was applied; retrying is safe.
    #[error("{0}")]
    Unavailable(String),
    /// The request may or may not have taken effect; retrying may apply it twice.
    #[error("{0}")]
    Indeterminate(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    /// This replica could not read its own state machine; nothing was changed.
    #[error("state machine read failed: {0}")]
    Read(#[source] StorageError),
    /// The node cannot serve at all (Raft stopped, an impossible apply result).
    #[error("{0}")]
    Internal(String),
}

fn not_leader_message(id: &Option<u64>, addr: &Option<String>) -> String {
    match (id, addr) {
        (Some(id), Some(addr)) => format!("not the leader; node {id} at {addr} is; retry there"),
        (None, Some(addr)) => format!("not the leader; the leader is at {addr}; retry there"),
        _ => "no leader is known yet; retry in a moment".into(),
    }
}

impl ServiceError {
    /// Whether the request definitely took no effect (a client may retry any request).
    pub fn not_applied(&self) -> bool {
        matches!(
            self,
            ServiceError::NotLeader { .. }
                | ServiceError::Unavailable(_)
                | ServiceError::InvalidArgument(_)
                | ServiceError::NotFound(_)
                | ServiceError::FailedPrecondition(_)
                | ServiceError::ResourceExhausted(_)
                | ServiceError::Read(_)
        )
    }
}

impl From<ProposeError> for ServiceError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::NotLeader {
                leader_id,
                leader_addr,
            } => ServiceError::NotLeader {
                leader_id,
                leader_addr,
            },
            ProposeError::Unavailable(m) => {
                ServiceError::Unavailable(format!("{m}; retry in a moment"))
            }
            ProposeError::Indeterminate(m) => ServiceError::Indeterminate(format!(
                "the request may or may not have taken effect: {m}"
            )),
            ProposeError::Membership(m) => ServiceError::FailedPrecondition(m),
            ProposeError::Fatal(m) => ServiceError::Internal(m),
        }
    }
}

impl From<StorageError> for ServiceError {
    fn from(e: StorageError) -> Self {
        ServiceError::Read(e)
    }
}

/// Whether a forwarded request changes state: a transport failure after sending a write
/// leaves its outcome unknown; for a read it only means "ask again".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    Read,
    Write,
}

/// What the leader's answer to a forwarded request means here. The leader's own answers
/// keep their meaning (the codes and headers the gRPC adapter gives them). A transport
/// failure is judged here, where its error chain is still attached (it is lost on the way
/// to the client): one that proves the request never reached the leader is "not applied",
/// any other leaves a write's outcome unknown, so a client never retries a write that may
/// have happened.
pub(crate) fn from_forwarded(s: Status, effect: Effect) -> ServiceError {
    let from_transport = std::error::Error::source(&s).is_some();
    if from_transport {
        return match (brisk_client::classify(&s), effect) {
            (Failure::NotApplied, _) | (_, Effect::Read) => ServiceError::Unavailable(format!(
                "the leader could not be reached; nothing was applied: {}",
                s.message()
            )),
            (Failure::Unknown | Failure::Rejected, Effect::Write) => ServiceError::Indeterminate(format!(
                "the connection to the leader failed after the write was sent; it may or may not have been applied: {}",
                s.message()
            )),
        };
    }
    let m = s.message().to_string();
    match s.code() {
        Code::InvalidArgument | Code::OutOfRange => ServiceError::InvalidArgument(m),
        Code::NotFound => ServiceError::NotFound(m),
        Code::FailedPrecondition | Code::AlreadyExists => ServiceError::FailedPrecondition(m),
        Code::ResourceExhausted => ServiceError::ResourceExhausted(m),
        Code::Unavailable => {
            let leader_addr = s
                .metadata()
                .get(LEADER_ADDR_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if leader_addr.is_some() {
                ServiceError::NotLeader {
                    leader_id: None,
                    leader_addr,
                }
            } else if s.metadata().contains_key(NOT_APPLIED_HEADER) || effect == Effect::Read {
                ServiceError::Unavailable(m)
            } else {
                ServiceError::Indeterminate(m)
            }
        }
        Code::DeadlineExceeded if effect == Effect::Read => ServiceError::DeadlineExceeded(m),
        Code::Unknown | Code::Cancelled | Code::DeadlineExceeded | Code::Aborted => {
            ServiceError::Indeterminate(m)
        }
        Code::Internal | Code::DataLoss => ServiceError::Internal(m),
        other => ServiceError::Internal(format!("the leader answered {other:?}: {m}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_write_is_unknown_only_when_the_transport_failed_after_sending() {
        let write = |s| from_forwarded(s, Effect::Write);
        let reset = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(matches!(write(reset), ServiceError::Indeterminate(_)));
        let timeout = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert!(matches!(write(timeout), ServiceError::Indeterminate(_)));
        let refused = Status::from_error(Box::new(tonic::ConnectError(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        ))));
        assert!(matches!(write(refused), ServiceError::Unavailable(_)));
        let reset = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(matches!(
            from_forwarded(reset, Effect::Read),
            ServiceError::Unavailable(_)
        ));
    }

    #[test]
    fn the_leaders_own_answers_keep_their_meaning() {
        let write = |s| from_forwarded(s, Effect::Write);
        assert!(matches!(
            write(Status::invalid_argument("bad key")),
            ServiceError::InvalidArgument(m) if m == "bad key"
        ));
        let mut redirect = Status::unavailable("not the leader");
        redirect
            .metadata_mut()
            .insert(LEADER_ADDR_HEADER, "127.0.0.1:7001".parse().unwrap());
        assert!(matches!(
            write(redirect),
            ServiceError::NotLeader { leader_addr: Some(a), .. } if a == "127.0.0.1:7001"
        ));
        let mut stopping = Status::unavailable("stopping");
        stopping
            .metadata_mut()
            .insert(NOT_APPLIED_HEADER, "1".parse().unwrap());
        assert!(matches!(write(stopping), ServiceError::Unavailable(_)));
        // An UNAVAILABLE that does not say "not applied" promises nothing for a write.
        assert!(matches!(
            write(Status::unavailable("?")),
            ServiceError::Indeterminate(_)
        ));
        assert!(matches!(
            write(Status::unknown("maybe")),
            ServiceError::Indeterminate(_)
        ));
    }

    #[test]
    fn only_the_indeterminate_outcomes_may_have_applied() {
        assert!(ServiceError::from(ProposeError::Unavailable("x".into())).not_applied());
        assert!(!ServiceError::from(ProposeError::Indeterminate("x".into())).not_applied());
        assert!(!ServiceError::Internal("x".into()).not_applied());
    }
}
