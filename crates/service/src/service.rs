//! The service of one node: the handle every protocol adapter holds.

use std::future::Future;
use std::sync::Arc;

use brisk_raft::RaftNode;
use tonic::transport::ClientTlsConfig;

use crate::error::{Effect, ServiceError};
use crate::forward::{Forwarder, Origin};
use crate::Limits;

pub struct Service {
    pub(crate) node: Arc<RaftNode>,
    pub(crate) limits: Limits,
    pub(crate) forward: Forwarder,
    /// When the last on-demand snapshot finished; held while one runs (see
    /// [`SNAPSHOT_INTERVAL`](crate::membership::SNAPSHOT_INTERVAL)).
    pub(crate) last_snapshot: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// This process's start, reported by [`status`](Service::status).
    pub(crate) incarnation: u64,
    pub(crate) http_addr: String,
}

impl Service {
    pub fn new(node: Arc<RaftNode>, limits: Limits) -> Self {
        Service {
            node,
            limits,
            forward: Forwarder::default(),
            last_snapshot: tokio::sync::Mutex::new(None),
            incarnation: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            http_addr: String::new(),
        }
    }

    /// Forwards to the leader's client port over TLS when `tls` is set (trusting what it
    /// trusts), from `local_ip` (this node's own address) when set.
    pub fn with_forwarding(
        mut self,
        tls: Option<ClientTlsConfig>,
        local_ip: Option<std::net::IpAddr>,
    ) -> Self {
        self.forward.client_tls = tls;
        self.forward.local_ip = local_ip;
        self
    }

    /// The HTTP address [`status`](Service::status) reports.
    pub fn with_http_addr(mut self, addr: impl Into<String>) -> Self {
        self.http_addr = addr.into();
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.node.id()
    }

    /// The current leader's id and client address, when known.
    pub fn leader(&self) -> (Option<u64>, Option<String>) {
        self.node.leader()
    }

    /// Whether this node serves clients as a ready member (I8).
    pub fn is_ready(&self) -> bool {
        self.node.is_ready()
    }

    /// `local`, or the request run on the leader when `local` failed because this node is
    /// not the leader (see [`Forwarder::on_leader`]).
    pub(crate) async fn on_leader<T, F, Fut>(
        &self,
        origin: Origin,
        effect: Effect,
        local: Result<T, ServiceError>,
        remote: F,
    ) -> Result<T, ServiceError>
    where
        F: FnOnce(tonic::transport::Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        self.forward
            .on_leader(self.node.id(), origin, effect, local, remote)
            .await
    }
}
