use brisk_raft::node::ProposeError;
use tonic::Status;

/// Response metadata naming the leader's gRPC address, set on redirects.
pub const LEADER_ADDR_HEADER: &str = "x-brisk-leader-addr";

/// Response metadata on every UNAVAILABLE a node answers itself ("nothing was applied;
/// retry"). An UNAVAILABLE without it came from the transport (a connection that failed
/// after the request may have been sent), which says nothing about the outcome.
pub const NOT_APPLIED_HEADER: &str = "x-brisk-not-applied";

fn unavailable(message: String) -> Status {
    let mut s = Status::unavailable(message);
    s.metadata_mut().insert(
        NOT_APPLIED_HEADER,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    s
}

/// What a forwarded write's failure means to the client: a node's own answers pass
/// through; a transport failure after the connection was made (the leader may have applied
/// the write) becomes UNKNOWN, so a client never retries a write that may have happened.
pub fn forwarded_write_failure(s: Status) -> Status {
    let own_answer =
        s.code() != tonic::Code::Unavailable || s.metadata().contains_key(NOT_APPLIED_HEADER);
    // tonic turns a failed connection into UNAVAILABLE carrying the connector's message
    // (hyper's "tcp connect error"), without the error chain: nothing was sent.
    let never_sent = s.message().starts_with("tcp connect error");
    if own_answer || never_sent {
        s
    } else {
        Status::unknown(format!(
            "the connection to the leader failed after the write was sent; it may or may not have been applied: {}",
            s.message()
        ))
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
            Status::unknown(format!("the write may or may not have been applied: {m}"))
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
        let reset = Status::unavailable("transport error: connection reset");
        assert_eq!(forwarded_write_failure(reset).code(), tonic::Code::Unknown);
        let refused = Status::unavailable("tcp connect error");
        assert_eq!(
            forwarded_write_failure(refused).code(),
            tonic::Code::Unavailable
        );
        let conflict = Status::invalid_argument("bad key");
        assert_eq!(
            forwarded_write_failure(conflict).code(),
            tonic::Code::InvalidArgument
        );
    }
}
