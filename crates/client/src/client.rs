//! A connection to a cluster: any member is an entry point, redirects are followed, and a
//! failed call is retried only when its outcome allows it (see [`crate::outcome`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::LEADER_ADDR_HEADER;
use brisk_proto::{RawDeleteRequest, RawGetRequest, RawPutRequest, WriteResult};
use tokio::time::Instant;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::Status;

use crate::error::Error;
use crate::outcome::{classify, Failure};

/// Whether a call may be repeated after an ambiguous failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotence {
    /// A read: repeating it changes nothing, so it is retried after any transient failure.
    Read,
    /// A write: retried only when it definitely was not applied; an ambiguous failure is
    /// returned as [`Error::Unknown`].
    Write,
}

/// How a read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The latest committed value, confirmed with the leader.
    Linearizable,
    /// Whatever the node reached holds (may be stale).
    Stale,
    /// The value at a timestamp.
    At(u64),
}

/// Settings of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    tls: Option<ClientTlsConfig>,
    deadline: Duration,
    connect_timeout: Duration,
    read_attempt_timeout: Duration,
}

impl ClientBuilder {
    /// TLS for the client port, verified with the given settings (plaintext without).
    pub fn tls(mut self, tls: Option<ClientTlsConfig>) -> Self {
        self.tls = tls;
        self
    }

    /// How long one operation may take, retries included (default 15 s).
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }

    /// How long one attempt of a read may take before it is tried on another node
    /// (default 5 s): a node that hangs does not hold a read until the deadline. A write's
    /// attempt runs until the deadline, as cutting it short would leave its outcome unknown.
    pub fn read_attempt_timeout(mut self, d: Duration) -> Self {
        self.read_attempt_timeout = d;
        self
    }

    /// How long a connection attempt to one node may take (default 1 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let mut channels = HashMap::new();
        for addr in &self.endpoints {
            channels.insert(addr.clone(), self.channel(addr)?);
        }
        Ok(Client {
            settings: self,
            channels: Mutex::new(channels),
            preferred: AtomicUsize::new(0),
        })
    }

    fn channel(&self, addr: &str) -> Result<Channel, Error> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let bad = |source| Error::Endpoint {
            addr: addr.to_string(),
            source,
        };
        let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(bad)?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            ep = ep.tls_config(tls.clone()).map_err(bad)?;
        }
        // Lazy: a node that is down costs a failed connect (not applied) when it is tried,
        // and a node that comes back is reconnected to by the same channel.
        Ok(ep.connect_lazy())
    }
}

/// The pauses between passes over the cluster: 20 ms doubling to 500 ms, for as long as the
/// deadline allows.
const PAUSES: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(20))
    .with_max_delay(Duration::from_millis(500))
    .without_max_times();

/// Where a call's next attempt goes.
struct Cursor {
    /// Index into the endpoints of the next one to try.
    next: usize,
    /// The leader the last refusal named, tried before the next endpoint.
    redirect: Option<String>,
}

impl Cursor {
    /// The address to try next, with its index when it is one of the endpoints.
    fn take(&mut self, endpoints: &[String]) -> (String, Option<usize>) {
        match self.redirect.take() {
            Some(a) => (a, None),
            None => {
                let i = self.next % endpoints.len();
                self.next = i + 1;
                (endpoints[i].clone(), Some(i))
            }
        }
    }
}

/// How a pass over the cluster ended without a reply.
enum PassEnd {
    /// Nothing was applied (or, for a read, nothing is known): another pass may succeed.
    TryAgain(Status),
    /// The call's result: a definite refusal, a write's unknown outcome, a bad endpoint, or
    /// the deadline reached while waiting for an answer.
    Answer(Error),
}

impl PassEnd {
    fn into_error(self) -> Error {
        match self {
            PassEnd::TryAgain(status) => Error::GaveUp(status),
            PassEnd::Answer(e) => e,
        }
    }
}

/// The client's locks are held for a few statements and never across an await; none of them
/// can leave what they guard half-changed, so a poisoned one is used as it is.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A cluster connection. Cheap to share: calls run concurrently over cached channels.
pub struct Client {
    settings: ClientBuilder,
    channels: Mutex<HashMap<String, Channel>>,
    /// Index into the endpoints of the node that answered last; calls start there.
    preferred: AtomicUsize,
}

impl Client {
    /// A builder for a client of the cluster whose members include `endpoints` (HOST:PORT).
    pub fn builder<I, S>(endpoints: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientBuilder {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            tls: None,
            deadline: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(1),
            read_attempt_timeout: Duration::from_secs(5),
        }
    }

    /// The channel to `addr`, made on first use (redirects may name a node not given).
    fn channel(&self, addr: &str) -> Result<Channel, Error> {
        let mut channels = lock(&self.channels);
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let c = self.settings.channel(addr)?;
        channels.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Runs `f` against the cluster until a node answers: a node that did not apply the
    /// request (not the leader, starting, stopping, unreachable) is followed by the leader it
    /// names or the next endpoint, with backoff once every endpoint was tried, until the
    /// deadline. A definite answer is returned at once; an ambiguous failure is retried only
    /// for reads.
    pub async fn call<T, F, Fut>(&self, kind: Idempotence, f: F) -> Result<T, Error>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = Instant::now() + self.settings.deadline;
        let cursor = Mutex::new(Cursor {
            next: self.preferred.load(Ordering::Relaxed),
            redirect: None,
        });
        // Shared by the passes, which run one after another.
        let f = Mutex::new(f);
        (|| self.pass(kind, deadline, &cursor, &f))
            .retry(PAUSES)
            .when(|end| matches!(end, PassEnd::TryAgain(_)))
            // No pause that would end past the deadline: give up instead.
            .adjust(|_, pause| pause.filter(|p| Instant::now() + *p < deadline))
            .notify(|end, pause| {
                if let PassEnd::TryAgain(status) = end {
                    tracing::debug!(?pause, code = ?status.code(), message = status.message(), "every endpoint tried; pausing");
                }
            })
            .await
            .map_err(PassEnd::into_error)
    }

    /// One pass over the cluster: every endpoint (and a redirect or two) gets one try, so a
    /// stale leader hint that points in a circle does not spin. Ends early, with the call's
    /// result, on an answer or a failure that must not be retried.
    async fn pass<T, F, Fut>(
        &self,
        kind: Idempotence,
        deadline: Instant,
        cursor: &Mutex<Cursor>,
        f: &Mutex<F>,
    ) -> Result<T, PassEnd>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let endpoints = &self.settings.endpoints;
        let mut tries = 0;
        // A pause between passes may end just past the deadline (timers tick in whole
        // milliseconds): then no attempt starts, and a write is never sent without a budget.
        if Instant::now() >= deadline {
            return Err(PassEnd::TryAgain(Status::deadline_exceeded(
                "the deadline passed before another attempt could start",
            )));
        }
        loop {
            let (addr, index) = lock(cursor).take(endpoints);
            let channel = self.channel(&addr).map_err(PassEnd::Answer)?;
            let left = deadline.saturating_duration_since(Instant::now());
            let budget = match kind {
                Idempotence::Read => left.min(self.settings.read_attempt_timeout),
                Idempotence::Write => left,
            };
            let attempt = (*lock(f))(channel);
            let status = match tokio::time::timeout(budget, attempt).await {
                Ok(Ok(r)) => {
                    if let Some(i) = index {
                        self.preferred.store(i, Ordering::Relaxed);
                    }
                    return Ok(r.into_inner());
                }
                Ok(Err(s)) => s,
                Err(_) if kind == Idempotence::Write => {
                    return Err(PassEnd::Answer(Error::Unknown(Status::deadline_exceeded(
                        format!("no answer from {addr} before the deadline; the write may or may not have been applied"),
                    ))))
                }
                Err(_) if Instant::now() >= deadline => {
                    return Err(PassEnd::Answer(Error::GaveUp(Status::deadline_exceeded(
                        format!("no answer from {addr} before the deadline"),
                    ))))
                }
                Err(_) => Status::deadline_exceeded(format!(
                    "no answer from {addr} within the read attempt timeout"
                )),
            };
            match (classify(&status), kind) {
                (Failure::Rejected, _) => return Err(PassEnd::Answer(Error::Rejected(status))),
                (Failure::Unknown, Idempotence::Write) => {
                    return Err(PassEnd::Answer(Error::Unknown(status)))
                }
                (Failure::NotApplied, _) | (Failure::Unknown, Idempotence::Read) => {}
            }
            tracing::debug!(%addr, code = ?status.code(), message = status.message(), "retrying elsewhere");
            lock(cursor).redirect = status
                .metadata()
                .get(LEADER_ADDR_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|leader| *leader != addr)
                .map(String::from);
            tries += 1;
            if tries > endpoints.len() + 1 || Instant::now() >= deadline {
                return Err(PassEnd::TryAgain(status));
            }
        }
    }

    /// Writes `value` under `key`.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<WriteResult, Error> {
        let req = RawPutRequest {
            key: key.into(),
            value: value.into(),
        };
        let r = self
            .call(Idempotence::Write, |ch| {
                let req = req.clone();
                async move { RawKvClient::new(ch).raw_put(req).await }
            })
            .await?;
        r.result
            .ok_or(Error::Malformed("a put answer without its result"))
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<WriteResult, Error> {
        let req = RawDeleteRequest { key: key.into() };
        let r = self
            .call(Idempotence::Write, |ch| {
                let req = req.clone();
                async move { RawKvClient::new(ch).raw_delete(req).await }
            })
            .await?;
        r.result
            .ok_or(Error::Malformed("a delete answer without its result"))
    }

    /// The value of `key` (None when absent).
    pub async fn get(&self, key: impl Into<Vec<u8>>, read: Read) -> Result<Option<Vec<u8>>, Error> {
        let (at_ts, stale) = match read {
            Read::Linearizable => (0, false),
            Read::Stale => (0, true),
            Read::At(ts) => (ts, false),
        };
        let req = RawGetRequest {
            key: key.into(),
            at_ts,
            stale,
        };
        let r = self
            .call(Idempotence::Read, |ch| {
                let req = req.clone();
                async move { RawKvClient::new(ch).raw_get(req).await }
            })
            .await?;
        Ok(r.found.then_some(r.value))
    }
}
