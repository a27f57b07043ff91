use brisk_proto::{LEADER_ADDR_HEADER, NOT_APPLIED_HEADER};
use brisk_service::ServiceError;
use tonic::metadata::MetadataValue;
use tonic::Status;

/// The status a client acts on. UNAVAILABLE always carries the "not applied" header (a
/// client may retry anything that gets it) and, for a redirect, the leader's address;
/// UNKNOWN means the request may or may not have taken effect.
pub fn status_of(e: ServiceError) -> Status {
    let message = e.to_string();
    match e {
        ServiceError::InvalidArgument(_) => Status::invalid_argument(message),
        ServiceError::NotFound(_) => Status::not_found(message),
        ServiceError::FailedPrecondition(_) => Status::failed_precondition(message),
        ServiceError::ResourceExhausted(_) => Status::resource_exhausted(message),
        ServiceError::NotLeader { leader_addr, .. } => {
            let mut s = not_applied(message);
            if let Some(v) = leader_addr.and_then(|a| a.parse().ok()) {
                s.metadata_mut().insert(LEADER_ADDR_HEADER, v);
            }
            s
        }
        ServiceError::Unavailable(_) | ServiceError::Read(_) => not_applied(message),
        ServiceError::Indeterminate(_) => Status::unknown(message),
        ServiceError::DeadlineExceeded(_) => Status::deadline_exceeded(message),
        ServiceError::Internal(_) => Status::internal(message),
    }
}

fn not_applied(message: String) -> Status {
    let mut s = Status::unavailable(message);
    s.metadata_mut()
        .insert(NOT_APPLIED_HEADER, MetadataValue::from_static("1"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_promise_nothing_was_applied_say_so() {
        let redirect = status_of(ServiceError::NotLeader {
            leader_id: Some(2),
            leader_addr: Some("127.0.0.1:7001".into()),
        });
        assert_eq!(redirect.code(), tonic::Code::Unavailable);
        assert!(redirect.metadata().contains_key(NOT_APPLIED_HEADER));
        assert_eq!(
            redirect.metadata().get(LEADER_ADDR_HEADER).unwrap(),
            "127.0.0.1:7001"
        );
        assert!(redirect.message().contains("node 2"));
        let maybe = status_of(ServiceError::Indeterminate("lost".into()));
        assert_eq!(maybe.code(), tonic::Code::Unknown);
        assert!(!maybe.metadata().contains_key(NOT_APPLIED_HEADER));
        let bad = status_of(ServiceError::InvalidArgument("bad key".into()));
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert_eq!(bad.message(), "bad key");
    }
}
