//! The client commands and the offline inspector: one file per command, each with its
//! arguments and its `run`.
//!
//! Every client command reaches the cluster through [`call`]: any node is accepted, writes
//! and linearizable reads are forwarded to the leader by the server, and a redirect
//! (UNAVAILABLE with the leader's address) is followed. Results go to stdout, as text or, with
//! `--json`, as one JSON document ([`output`]); errors go to stderr; the exit code says what
//! happened ([`exit::Exit`]).

pub mod completions;
pub mod delete;
pub mod exit;
pub mod get;
pub mod inspect;
pub mod man;
pub mod members;
pub mod membership;
pub mod output;
pub mod put;
pub mod scan;
pub mod snapshot;
pub mod status;
pub mod timestamp;
pub mod txn;

use std::ffi::OsString;
use std::future::Future;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use brisk_client::{Client, Idempotence};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

pub use exit::Exit;

/// How a client command reaches the cluster.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnArgs {
    /// Nodes to contact, HOST:PORT[,HOST:PORT...]; any member works. Default: the nodes in
    /// ./brisk-data/cluster.json if present, else 127.0.0.1:7001.
    #[arg(long, env = "BRISK_ENDPOINTS", value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Give up after retrying unavailable nodes for this long: 500ms, 10s, 2m, ... (a bare
    /// number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// PEM CA certificate to verify the nodes' client-port TLS certificates with; connects
    /// over TLS when given.
    #[arg(long, env = "BRISK_CACERT")]
    pub cacert: Option<std::path::PathBuf>,
}

impl ConnArgs {
    /// `--endpoints`, else the nodes `brisk dev` wrote to ./brisk-data/cluster.json, else the
    /// first node of a default `brisk dev`.
    pub fn resolved_endpoints(&self) -> Vec<String> {
        if !self.endpoints.is_empty() {
            return self
                .endpoints
                .iter()
                .map(|s| s.trim().to_string())
                .collect();
        }
        // An unreadable or foreign cluster.json is no reason to fail: the default applies.
        if let Ok(file) = crate::dev::read_cluster_file(Path::new("brisk-data")) {
            let eps: Vec<String> = file.nodes.into_iter().map(|n| n.grpc).collect();
            if !eps.is_empty() {
                return eps;
            }
        }
        vec!["127.0.0.1:7001".to_string()]
    }

    /// TLS settings from `--cacert` (None: plaintext).
    pub fn tls(&self) -> Result<Option<ClientTlsConfig>> {
        let Some(path) = &self.cacert else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .with_context(|| format!("reading CA certificate {}", path.display()))?;
        Ok(Some(
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
        ))
    }

    /// A cluster client with these endpoints, TLS settings and deadline.
    pub fn client(&self) -> Result<Client> {
        Client::builder(self.resolved_endpoints())
            .tls(self.tls()?)
            .deadline(self.timeout)
            .build()
            .map_err(|e| CallError(e).into())
    }
}

/// A duration on the command line: a bare number is seconds (`2`, `0.5`), anything else is
/// read by humantime (`500ms`, `10s`, `2m 30s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{s:?} is not a duration of zero seconds or more"))?,
        Err(_) => {
            humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration: {e}"))?
        }
    };
    // Far beyond any wait brisk has, and far below what deadline arithmetic overflows on.
    if d > MAX_DURATION {
        return Err(format!(
            "{s:?} is longer than the longest accepted duration (365 days)"
        ));
    }
    Ok(d)
}

/// The longest duration any setting or flag accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A timeout: a duration (see [`parse_duration`]) that is not zero.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: a timeout must be longer than zero")),
        d => Ok(d),
    }
}

/// A key, value or prefix as the shell passed it: any bytes, UTF-8 or not.
pub fn bytes(arg: OsString) -> Vec<u8> {
    arg.into_vec()
}

/// A plaintext connection to a node's client port.
pub async fn connect(addr: &str) -> Result<Channel, tonic::transport::Error> {
    connect_tls(addr, None).await
}

/// A connection to a node's client port, over TLS when `tls` is set.
pub async fn connect_tls(
    addr: &str,
    tls: Option<&ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        ep = ep.tls_config(tls.clone())?;
    }
    ep.connect().await
}

/// Calls `f` on the cluster through [`brisk_client::Client`]: unreachable nodes are
/// skipped, redirects followed, and failures that applied nothing retried with backoff until
/// `--timeout`; a write whose outcome is unknown is reported as such, never retried. A
/// failure is a [`CallError`], which decides the exit code.
pub async fn call<T, F, Fut>(conn: &ConnArgs, kind: Idempotence, f: F) -> Result<T>
where
    F: FnMut(Channel) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    let client = conn.client()?;
    Ok(client.call(kind, f).await.map_err(CallError)?)
}

/// A failed call to the cluster, worded for the command line. It keeps the client's error,
/// which says whether the request may have been applied.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct CallError(pub brisk_client::Error);

fn describe(e: &brisk_client::Error) -> String {
    use brisk_client::Error as E;
    match e {
        E::Rejected(s) => format!("{}: {}", code_name(s.code()), s.message()),
        E::Unknown(s) => format!(
            "outcome unknown (the request may or may not have been applied): {}",
            s.message()
        ),
        E::GaveUp(s) => format!("giving up after --timeout: {}", s.message()),
        other => other.to_string(),
    }
}

/// The name of a definite refusal's code (UNKNOWN, INTERNAL and timeouts are not refusals:
/// brisk-client reports them as unknown outcomes).
fn code_name(c: Code) -> &'static str {
    match c {
        Code::InvalidArgument => "invalid argument",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::FailedPrecondition => "failed precondition",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "unimplemented",
        Code::Unauthenticated => "unauthenticated",
        Code::ResourceExhausted => "resource exhausted",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_bare_numbers_are_seconds() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m 30s"), Ok(Duration::from_secs(150)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("0s").is_err());
        assert!(parse_duration("1e19").is_err(), "would overflow a deadline");
        assert!(parse_duration("400days").is_err());
        for bad in ["", "-1", "ten", "10x", "NaN", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_refusal_is_worded_with_its_code() {
        let e = CallError(brisk_client::Error::Rejected(Status::invalid_argument(
            "key must not be empty",
        )));
        assert_eq!(e.to_string(), "invalid argument: key must not be empty");
    }
}
