use tonic::Status;

/// Why a [`Client`](crate::Client) call failed. Each kind says what is known of the outcome.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered definitely (bad argument, limit, failed precondition); nothing
    /// was applied.
    #[error("refused: {}", .0.message())]
    Rejected(#[source] Status),
    /// A write may or may not have been applied; it was not retried. Read it back to learn.
    #[error("outcome unknown: {}", .0.message())]
    Unknown(#[source] Status),
    /// No node applied the request before the deadline (definitely not applied for writes).
    #[error("gave up before the deadline; the last node said: {}", .0.message())]
    GaveUp(#[source] Status),
    /// An endpoint is not a valid address, or its TLS settings are unusable.
    #[error("bad endpoint {addr}: {source}")]
    Endpoint {
        addr: String,
        source: tonic::transport::Error,
    },
    /// A client needs at least one endpoint.
    #[error("no endpoints given")]
    NoEndpoints,
    /// The server's answer lacked a field this client needs.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
}

impl Error {
    /// The status behind a failed call, when a node or the transport gave one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Rejected(s) | Error::Unknown(s) | Error::GaveUp(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the request may have taken effect.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, Error::Unknown(_))
    }
}
