//! Leader routing: a request that must run on the leader is forwarded there once; a
//! forwarded request that lands on a non-leader gets a redirect instead (no loops).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brisk_raft::node::ProposeError;
use brisk_raft::RaftNode;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::Status;

use crate::errors::status_of;

pub const FORWARDED_HEADER: &str = "x-brisk-forwarded";

#[derive(Clone)]
pub struct Router {
    pub node: Arc<RaftNode>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// How to reach other members' client ports when they serve TLS (None: plaintext).
    client_tls: Option<ClientTlsConfig>,
    /// The address forwarded requests originate from (this node's client address).
    local_ip: Option<std::net::IpAddr>,
}

impl Router {
    pub fn new(node: Arc<RaftNode>) -> Self {
        Router {
            node,
            channels: Arc::new(Mutex::new(HashMap::new())),
            client_tls: None,
            local_ip: None,
        }
    }

    /// Forwarded requests leave from `ip` (this node's own address).
    pub fn with_local_ip(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.local_ip = ip;
        self
    }

    /// Forwards to the leader's client port over TLS, trusting what `tls` trusts.
    pub fn with_client_tls(mut self, tls: Option<ClientTlsConfig>) -> Self {
        self.client_tls = tls;
        self
    }

    pub fn channel(&self, addr: &str) -> Result<Channel, Status> {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let bad = |e: tonic::transport::Error| {
            Status::internal(format!("bad leader address {addr}: {e}"))
        };
        let scheme = if self.client_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(bad)?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .local_address(self.local_ip);
        if let Some(tls) = &self.client_tls {
            ep = ep.tls_config(tls.clone()).map_err(bad)?;
        }
        let c = ep.connect_lazy();
        map.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Makes sure this replica has applied every commit at or below `ts` before a read at
    /// `ts`, and returns the timestamp to read at. Locally true once it has applied a commit
    /// at or above `ts` (commit timestamps increase in log order), so any replica serves such
    /// a read; otherwise the leader serves it after a barrier, at `ts` capped to its last
    /// applied commit: every commit acknowledged before the barrier is at or below that cap,
    /// and writes being applied in pieces (a DeletePrefix spilling chunks) sit above it.
    pub async fn covered(&self, ts: u64) -> Result<u64, ProposeError> {
        self.node.check_local_reads()?;
        if self.node.sm.kv.last_commit_ts() >= ts {
            return Ok(ts);
        }
        self.node.read_barrier().await?;
        Ok(ts.min(self.node.sm.kv.last_commit_ts()))
    }

    /// The barrier for a raw read: `at_ts == 0` reads the latest commit (linearizable after
    /// a read barrier, or from this replica as it is when `stale`); an explicit timestamp
    /// follows [`covered`].
    /// Returns the timestamp to read at, taken after the barrier: the last applied commit
    /// timestamp, never above it (writes being applied in pieces sit above it).
    ///
    /// [`covered`]: Self::covered
    pub async fn raw_read_ts(&self, at_ts: u64, stale: bool) -> Result<u64, ProposeError> {
        if at_ts != 0 {
            return self.covered(at_ts).await;
        }
        if stale || brisk_raft::fault::broken(brisk_raft::fault::BROKEN_STALE_READS) {
            self.node.check_local_reads()?;
        } else {
            self.node.read_barrier().await?;
        }
        Ok(self.node.sm.kv.last_commit_ts())
    }

    /// Where to forward a request that failed with `e`, or the status to return.
    pub fn forward_target(
        &self,
        e: ProposeError,
        already_forwarded: bool,
    ) -> Result<Channel, Status> {
        match &e {
            ProposeError::NotLeader {
                leader_id: Some(id),
                leader_addr: Some(addr),
            } if !already_forwarded && *id != self.node.id() => self.channel(addr),
            _ => Err(status_of(e)),
        }
    }
}

pub fn is_forwarded<T>(req: &tonic::Request<T>) -> bool {
    req.metadata().contains_key(FORWARDED_HEADER)
}

pub fn forwarded<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        FORWARDED_HEADER,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    r.set_timeout(Duration::from_secs(30));
    r
}

/// [`on_leader!`] for writes: a forwarded write whose connection failed after sending
/// reports an unknown outcome (see [`forwarded_write_failure`](crate::errors::forwarded_write_failure)).
#[macro_export]
macro_rules! write_on_leader {
    ($self:ident, $fwd:expr, $msg:expr, $client:ident, $method:ident, $local:expr) => {{
        $crate::on_leader!($self, $fwd, $msg, $client, $method, $local)
            .map_err($crate::errors::forwarded_write_failure)
    }};
}

/// Runs `$local`; if it fails because this node is not the leader, forwards `$msg` with
/// `$client::$method` to the leader.
#[macro_export]
macro_rules! on_leader {
    ($self:ident, $fwd:expr, $msg:expr, $client:ident, $method:ident, $local:expr) => {{
        match $local {
            Ok(v) => Ok(tonic::Response::new(v)),
            Err(e) => {
                let channel = $self.router.forward_target(e, $fwd)?;
                let mut c = $client::new(channel);
                c.$method($crate::routing::forwarded($msg)).await
            }
        }
    }};
}
