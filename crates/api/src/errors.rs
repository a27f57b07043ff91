use brisk_client::Failure;
use brisk_raft::node::ProposeError;
use tonic::Status;

pub use brisk_proto::{LEADER_ADDR_HEADER, NOT_APPLIED_HEADER};

fn unavailable(message: String) -> Status {
    let mut s = Status::unavailable(message);
    s.metadata_mut().insert(
        NOT_APPLIED_HEADER,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    s
}

/// What a forwarded write's failure means to the client. A node's own answers pass
/// through. A transport failure is judged here, where its error chain is still attached
/// (it is lost on the way to the client): one that proves the write never reached the
/// leader becomes a retryable UNAVAILABLE, any other an UNKNOWN, so a client never retries
/// a write that may have happened.
pub fn forwarded_write_failure(s: Status) -> Status {
    let from_transport = std::error::Error::source(&s).is_some();
    if !from_transport {
        return s;
    }
    match brisk_client::classify(&s) {
        Failure::NotApplied => unavailable(format!(
            "the leader could not be reached; nothing was applied: {}",
            s.message()
        )),
        Failure::Unknown | Failure::Rejected => Status::unknown(format!(
            "the connection to the leader failed after the write was sent; it may or may not have been applied: {}",
            s.message()
        )),
    }
}

/// Maps an engine error to a gRPC status a client can act on.
pub fn status_of(e: ProposeError) -> Status {
    match e {
        ProposeError::NotLeader {
            leader_id,
            leader_addr,
        } => {
            let mut s = match (&leader_id, &leader_addr) {
                (Some(id), Some(addr)) => unavailable(format!(
                    "not the leader; node {id} at {addr} is; retry there"
                )),
                _ => unavailable("no leader is known yet; retry in a moment".into()),
            };
            if let Some(addr) = leader_addr {
                if let Ok(v) = addr.parse() {
                    s.metadata_mut().insert(LEADER_ADDR_HEADER, v);
                }
            }
            s
        }
        ProposeError::Unavailable(m) => unavailable(format!("{m}; retry in a moment")),
        ProposeError::Indeterminate(m) => {
            Status::unknown(format!("the request may or may not have taken effect: {m}"))
        }
        ProposeError::Membership(m) => Status::failed_precondition(m),
        ProposeError::Fatal(m) => Status::internal(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_write_is_unknown_only_when_the_transport_failed_after_sending() {
        let own = status_of(ProposeError::Unavailable("no leader".into()));
        assert_eq!(
            forwarded_write_failure(own).code(),
            tonic::Code::Unavailable
        );
        let redirect = status_of(ProposeError::NotLeader {
            leader_id: Some(2),
            leader_addr: Some("127.0.0.1:1".into()),
        });
        assert_eq!(
            forwarded_write_failure(redirect).code(),
            tonic::Code::Unavailable
        );
        let reset = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(forwarded_write_failure(reset).code(), tonic::Code::Unknown);
        let timeout = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(timeout.code(), tonic::Code::Cancelled);
        assert_eq!(
            forwarded_write_failure(timeout).code(),
            tonic::Code::Unknown
        );
        let refused = Status::from_error(Box::new(tonic::ConnectError(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        ))));
        let refused = forwarded_write_failure(refused);
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        assert!(refused.metadata().contains_key(NOT_APPLIED_HEADER));
        let conflict = Status::invalid_argument("bad key");
        assert_eq!(
            forwarded_write_failure(conflict).code(),
            tonic::Code::InvalidArgument
        );
    }
}
