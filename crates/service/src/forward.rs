//! Leader forwarding: a request that must run on the leader is forwarded there once, over
//! the leader's client port; a forwarded request that lands on a non-leader gets a redirect
//! instead (no loops).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::transactional_kv_client::TransactionalKvClient;
use brisk_proto::MAX_MESSAGE_BYTES;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::error::{from_forwarded, Effect, ServiceError};

/// Marks a request one node forwarded to another.
pub const FORWARDED_HEADER: &str = "x-brisk-forwarded";

/// How long a forwarded request may take on the leader.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Who sent a request: a client, or another member forwarding a client's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Client,
    Forwarded,
}

#[derive(Clone, Default)]
pub(crate) struct Forwarder {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// How to reach other members' client ports when they serve TLS (None: plaintext).
    pub(crate) client_tls: Option<ClientTlsConfig>,
    /// The address forwarded requests originate from (this node's client address).
    pub(crate) local_ip: Option<std::net::IpAddr>,
}

impl Forwarder {
    fn channel(&self, addr: &str) -> Result<Channel, ServiceError> {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let bad = |e: tonic::transport::Error| {
            ServiceError::Internal(format!("bad leader address {addr}: {e}"))
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

    /// `local`'s result, unless it failed because this node is not the leader and the
    /// leader is known: then `remote` runs the request on the leader. A request that was
    /// already forwarded is never forwarded again.
    pub(crate) async fn on_leader<T, F, Fut>(
        &self,
        my_id: u64,
        origin: Origin,
        effect: Effect,
        local: Result<T, ServiceError>,
        remote: F,
    ) -> Result<T, ServiceError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        match local {
            Err(ServiceError::NotLeader {
                leader_id: Some(id),
                leader_addr: Some(addr),
            }) if origin == Origin::Client && id != my_id => {
                let channel = self.channel(&addr)?;
                remote(channel).await.map_err(|s| from_forwarded(s, effect))
            }
            other => other,
        }
    }
}

/// A request marked as forwarded, with the forwarding deadline.
pub(crate) fn request<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        FORWARDED_HEADER,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    r.set_timeout(FORWARD_TIMEOUT);
    r
}

// Clients for a forwarded request. Each accepts replies as large as a node's client port
// sends (values and scan pages beyond tonic's 4 MiB default).

pub(crate) fn raw_kv(ch: Channel) -> RawKvClient<Channel> {
    RawKvClient::new(ch).max_decoding_message_size(MAX_MESSAGE_BYTES)
}

pub(crate) fn txn_kv(ch: Channel) -> TransactionalKvClient<Channel> {
    TransactionalKvClient::new(ch).max_decoding_message_size(MAX_MESSAGE_BYTES)
}

pub(crate) fn admin(ch: Channel) -> RaftAdminClient<Channel> {
    RaftAdminClient::new(ch).max_decoding_message_size(MAX_MESSAGE_BYTES)
}
