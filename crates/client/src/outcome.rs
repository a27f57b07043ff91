//! What a failed call says about whether the request took effect.
//!
//! A gRPC status reaches a client from two places: the server's own answer, or the client's
//! transport (a connection that could not be made, broke, or timed out). Only some of them
//! prove that nothing was applied; a write may be retried only after one of those.

use std::error::Error as StdError;

use brisk_proto::NOT_APPLIED_HEADER;
use tonic::{Code, Status};

/// The meaning of a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nothing was applied: a node said so (not the leader, not ready, stopping), or the
    /// request never left this process. Safe to retry anything.
    NotApplied,
    /// The request may or may not have been applied (a connection lost after sending, a
    /// timeout, an internal error). Only an idempotent read may be retried blindly.
    Unknown,
    /// A definite answer from the server (bad argument, limit, failed precondition): it was
    /// not applied, and retrying the same request gets the same answer.
    Rejected,
}

/// Classifies a status as this process received it (before it is sent on anywhere, which
/// strips the transport errors it carries).
pub fn classify(status: &Status) -> Failure {
    if status.metadata().contains_key(NOT_APPLIED_HEADER) {
        return Failure::NotApplied;
    }
    if let Some(transport) = StdError::source(status) {
        return classify_transport(transport);
    }
    match status.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Unauthenticated
        | Code::ResourceExhausted => Failure::Rejected,
        // A node's own UNAVAILABLE carries the header; one without it was made by something
        // in between (a proxy, an older node's forward) that cannot vouch for the outcome.
        _ => Failure::Unknown,
    }
}

/// A transport error, walked from the outside in: the first cause that proves the request
/// never reached a server decides; anything else leaves the outcome open.
fn classify_transport(err: &(dyn StdError + 'static)) -> Failure {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<tonic::ConnectError>().is_some() {
            // No connection was made, so no byte of the request was sent.
            return Failure::NotApplied;
        }
        if e.downcast_ref::<tonic::TimeoutExpired>().is_some() {
            return Failure::Unknown;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            // hyper cancels a request still queued for a connection when that connection
            // closes ("connection closed") or was never ready: it was never handed to it.
            if h.is_canceled() {
                return Failure::NotApplied;
            }
        }
        if let Some(h) = e.downcast_ref::<h2::Error>() {
            // The server refused the stream before processing it (HTTP/2 section 8.1.4).
            if h.is_reset() && h.is_remote() && h.reason() == Some(h2::Reason::REFUSED_STREAM) {
                return Failure::NotApplied;
            }
            // A clean GOAWAY cut the stream off: its id is above the last stream the server
            // took, so the server never processed it (HTTP/2 section 6.8). h2 fails only
            // those streams with this error; a stream the server took and the closing
            // connection then lost fails as a broken pipe (unknown) instead.
            if h.is_go_away() && h.is_remote() && h.reason() == Some(h2::Reason::NO_ERROR) {
                return Failure::NotApplied;
            }
        }
        cause = e.source();
    }
    Failure::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_applied(message: &str) -> Status {
        let mut s = Status::unavailable(message);
        s.metadata_mut().insert(
            NOT_APPLIED_HEADER,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        s
    }

    #[test]
    fn a_nodes_own_unavailable_is_not_applied_and_any_other_is_unknown() {
        assert_eq!(
            classify(&not_applied("not the leader")),
            Failure::NotApplied
        );
        assert_eq!(
            classify(&Status::unavailable("from a proxy")),
            Failure::Unknown
        );
        assert_eq!(classify(&Status::unknown("maybe")), Failure::Unknown);
        assert_eq!(classify(&Status::cancelled("gone")), Failure::Unknown);
        assert_eq!(classify(&Status::internal("fatal")), Failure::Unknown);
        assert_eq!(
            classify(&Status::deadline_exceeded("late")),
            Failure::Unknown
        );
    }

    #[test]
    fn definite_answers_are_rejections() {
        for s in [
            Status::invalid_argument("key too long"),
            Status::failed_precondition("not a member"),
            Status::resource_exhausted("too many snapshots"),
            Status::unimplemented("raft on the client port"),
        ] {
            assert_eq!(classify(&s), Failure::Rejected, "{s:?}");
        }
    }

    #[test]
    fn a_connect_error_is_not_applied_and_a_timeout_is_unknown() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let s = Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(classify(&s), Failure::NotApplied);
        let s = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(classify(&s), Failure::Unknown);
        // A transport failure that is neither (a reset connection) leaves the outcome open,
        // whatever code it maps to.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let s = Status::from_error(Box::new(reset));
        assert_eq!(classify(&s), Failure::Unknown);
    }

    #[tokio::test]
    async fn a_real_refused_connection_is_not_applied() {
        // A port that was just bound and released refuses connections.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a local port");
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_lazy();
        let err = brisk_proto::raw_kv_client::RawKvClient::new(ch)
            .raw_get(brisk_proto::RawGetRequest::default())
            .await
            .expect_err("nothing listens there");
        assert_eq!(classify(&err), Failure::NotApplied, "{err:?}");
    }

    #[tokio::test]
    async fn a_stream_a_clean_goaway_cut_off_is_not_applied() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("local address");
        // A server that announces it is going away before taking any stream.
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("a connection");
            let mut conn = h2::server::handshake(socket)
                .await
                .expect("an HTTP/2 handshake");
            conn.abrupt_shutdown(h2::Reason::NO_ERROR);
            while let Some(Ok(_)) = conn.accept().await {}
        });
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_lazy();
        let err = brisk_proto::raw_kv_client::RawKvClient::new(ch)
            .raw_put(brisk_proto::RawPutRequest::default())
            .await
            .expect_err("the server is going away");
        assert_eq!(classify(&err), Failure::NotApplied, "{err:?}");
        server.abort();
    }

    #[tokio::test]
    async fn a_server_that_accepts_and_never_answers_is_unknown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("local address");
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .timeout(std::time::Duration::from_millis(300))
            .connect_lazy();
        let err = brisk_proto::raw_kv_client::RawKvClient::new(ch)
            .raw_put(brisk_proto::RawPutRequest::default())
            .await
            .expect_err("nobody answers");
        assert_eq!(classify(&err), Failure::Unknown, "{err:?}");
        holder.abort();
    }
}
