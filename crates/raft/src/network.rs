//! Client side of the node-to-node transport (gRPC service `RaftTransport`).

use std::future::Future;
use std::time::{Duration, Instant};

use brisk_proto::raft_transport_client::RaftTransportClient;
use brisk_proto::{snapshot_chunk, FileChunk, RaftMessage, SnapshotChunk};
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{stream_append_sequential, RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tonic::transport::Channel;

use crate::append_stream;
use crate::codec;
use crate::peer::{PeerConnector, PeerDirectory};
use crate::snapshot::manifest::MANIFEST_FILE;
use crate::snapshot::SnapshotDir;
use crate::types::{BriskNode, GroupId, NodeId, SnapshotMeta, TypeConfig, Vote};

/// Bytes of file data per snapshot chunk message.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// First message of a snapshot transfer.
#[derive(Serialize, Deserialize)]
pub struct SnapshotHeader {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    /// The snapshot's token (magic, version, index, manifest CRC) as in the sender's pointer.
    pub token: String,
    /// The manifest file's exact bytes; the receiver checks its CRC and every file against it.
    pub manifest: Vec<u8>,
}

/// A snapshot found corrupt while being sent (`file` names the file), or refused by a
/// receiver with `DATA_LOSS` (`file` is None: the sender checks its copy again). The node
/// replaces it with a fresh build (I5: a leader never keeps streaming a snapshot that cannot
/// pass verification).
pub struct SnapshotRepair {
    pub dir: SnapshotDir,
    pub file: Option<String>,
}

pub type SnapshotRepairs = tokio::sync::mpsc::UnboundedSender<SnapshotRepair>;

#[derive(Clone)]
pub struct NetworkFactory {
    group: GroupId,
    repairs: SnapshotRepairs,
    connector: PeerConnector,
    directory: PeerDirectory,
}

impl NetworkFactory {
    pub fn new(
        group: GroupId,
        repairs: SnapshotRepairs,
        connector: PeerConnector,
        directory: PeerDirectory,
    ) -> Self {
        NetworkFactory {
            group,
            repairs,
            connector,
            directory,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = NetworkConnection;

    async fn new_client(&mut self, target: NodeId, node: &BriskNode) -> Self::Network {
        NetworkConnection {
            group: self.group,
            target,
            node: self.directory.resolve(target, node),
            connector: self.connector.clone(),
            directory: self.directory.clone(),
            client: None,
            unary_until: None,
            repairs: self.repairs.clone(),
        }
    }
}

pub struct NetworkConnection {
    /// Every message names its group, so the receiving process routes it (one group today).
    group: GroupId,
    target: NodeId,
    node: BriskNode,
    connector: PeerConnector,
    directory: PeerDirectory,
    client: Option<RaftTransportClient<Channel>>,
    /// Until then appends go one unary call at a time: the peer answered `StreamAppend`
    /// with UNIMPLEMENTED (an older version, during a rolling upgrade).
    unary_until: Option<Instant>,
    repairs: SnapshotRepairs,
}

/// How long appends to a peer without `StreamAppend` stay unary before the stream is tried
/// again (the peer may have been upgraded meanwhile).
const UNARY_FALLBACK: Duration = Duration::from_secs(60);

/// A snapshot file whose bytes do not match the manifest, found while streaming it.
#[derive(Debug, thiserror::Error)]
#[error("snapshot file {file} failed verification while being sent: {detail}")]
struct CorruptSnapshot {
    file: String,
    detail: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

fn unreachable_err(e: impl std::fmt::Display) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&TransportError(e.to_string())))
}

pub(crate) fn network_err(e: impl std::fmt::Display) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::new(&TransportError(e.to_string())))
}

pub(crate) fn status_err(s: tonic::Status) -> RPCError<TypeConfig> {
    match s.code() {
        tonic::Code::Unavailable => unreachable_err(s.message()),
        _ => network_err(format!("{}: {}", s.code(), s.message())),
    }
}

fn streaming_err(e: RPCError<TypeConfig>) -> StreamingError<TypeConfig> {
    match e {
        RPCError::Unreachable(u) => StreamingError::Unreachable(u),
        RPCError::Network(n) => StreamingError::Network(n),
        RPCError::Timeout(t) => StreamingError::Timeout(t),
        other => StreamingError::Network(NetworkError::new(&TransportError(other.to_string()))),
    }
}

impl NetworkConnection {
    fn client(&mut self) -> Result<RaftTransportClient<Channel>, RPCError<TypeConfig>> {
        if let Some(current) = self.directory.get(self.target) {
            if current != self.node {
                self.node = current;
                self.client = None;
            }
        }
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let endpoint = self
            .connector
            .endpoint(&self.node)
            .map_err(unreachable_err)?;
        let client = RaftTransportClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        self.client = Some(client.clone());
        Ok(client)
    }

    fn request<T>(msg: T, deadline: Duration) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(deadline);
        req
    }
}

/// The rate at which a healthy but busy peer is assumed to take in an AppendEntries batch,
/// for its deadline ([`append_deadline`]).
const APPEND_FLOOR_BYTES_PER_SEC: u64 = 16 << 20;

/// The deadline of one AppendEntries carrying `payload_bytes`: openraft's TTL (one heartbeat
/// interval, which is what an empty or small batch gets) plus the time to move the batch at
/// [`APPEND_FLOOR_BYTES_PER_SEC`]. A batch of large values (up to openraft's 300 entries of
/// up to the request limit each) legitimately takes longer than a heartbeat to send, append
/// and fsync on a busy follower; timing it out abandons work the follower may have done and
/// sends the whole batch again, stalling commits. Unreachable peers still fail at once.
pub(crate) fn append_deadline(option: &RPCOption, payload_bytes: usize) -> Duration {
    let transfer_ms = (payload_bytes as u64).saturating_mul(1_000) / APPEND_FLOOR_BYTES_PER_SEC;
    option.hard_ttl() + Duration::from_millis(transfer_ms)
}

macro_rules! unary {
    ($self:ident, $method:ident, $rpc:expr, $option:expr) => {
        unary!($self, $method, $rpc, $option, |_| $option.hard_ttl())
    };
    ($self:ident, $method:ident, $rpc:expr, $option:expr, $deadline:expr) => {{
        let payload = codec::encode(&$rpc).map_err(network_err)?;
        let deadline: Duration = $deadline(payload.len());
        let mut client = $self.client()?;
        let resp = client
            .$method(Self::request(
                RaftMessage {
                    payload,
                    group: $self.group.0,
                },
                deadline,
            ))
            .await
            .map_err(|s| {
                if s.code() == tonic::Code::Unavailable {
                    // Drop the channel so the next attempt reconnects.
                    $self.client = None;
                }
                status_err(s)
            })?;
        codec::decode(&resp.into_inner().payload).map_err(network_err)
    }};
}

impl RaftNetworkV2<TypeConfig> for NetworkConnection {
    type SnapshotData = SnapshotDir;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        unary!(self, append_entries, rpc, option, |bytes| append_deadline(
            &option, bytes
        ))
    }

    /// Pipelined appends over one `StreamAppend` stream (see [`append_stream`]); one unary
    /// call per batch to a peer that does not serve the stream.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>>
            + OptionalSend
            + Unpin
            + 'static,
    {
        if self.unary_until.is_some_and(|until| Instant::now() < until) {
            return stream_append_sequential(self, input, option);
        }
        self.unary_until = None;
        Box::pin(async move {
            let mut client = self.client()?;
            let window = append_stream::Window::default();
            let requests = append_stream::requests(input, self.group.0, window.clone());
            // The stream is open once the follower's response headers arrive.
            let setup = append_deadline(&option, 0);
            let responses = match tokio::time::timeout(setup, client.stream_append(requests)).await
            {
                Ok(Ok(response)) => response.into_inner(),
                Ok(Err(s)) => {
                    match s.code() {
                        tonic::Code::Unimplemented => {
                            tracing::warn!(
                                target_node = self.target,
                                "the peer does not serve pipelined appends (an older version); \
                                 sending one batch at a time"
                            );
                            self.unary_until = Some(Instant::now() + UNARY_FALLBACK);
                        }
                        // Drop the channel so the next attempt reconnects.
                        tonic::Code::Unavailable => self.client = None,
                        _ => {}
                    }
                    return Err(status_err(s));
                }
                Err(_) => {
                    return Err(network_err(format!(
                        "no answer to StreamAppend within {setup:?}"
                    )))
                }
            };
            Ok(append_stream::results(responses, window, option))
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        unary!(self, vote, rpc, option)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        unary!(self, pre_vote, rpc, option)
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        unary!(self, transfer_leader, req, option)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotDir>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let dir = snapshot.snapshot;
        let manifest_path = dir.path.join(MANIFEST_FILE);
        let manifest = tokio::fs::read(&manifest_path)
            .await
            .map_err(|e| streaming_err(network_err(format!("{}: {e}", manifest_path.display()))))?;
        let header = SnapshotHeader {
            vote,
            meta: snapshot.meta,
            token: dir.token().to_hex(),
            manifest,
        };
        let header = codec::encode(&header).map_err(|e| streaming_err(network_err(e)))?;
        // A bounded channel: the reader runs at most a few chunks ahead of the network
        // (HTTP/2 flow control does the rest).
        let (tx, rx) = tokio::sync::mpsc::channel::<SnapshotChunk>(4);
        let files = dir.manifest.files.clone();
        let root = dir.path.clone();
        let group = self.group.0;
        let reader = tokio::spawn(async move {
            let _ = tx
                .send(SnapshotChunk {
                    chunk: Some(snapshot_chunk::Chunk::Header(header)),
                    group,
                })
                .await;
            for f in files {
                let path = root.join(&f.name);
                let mut file = tokio::fs::File::open(&path).await?;
                let mut offset = 0u64;
                // Verified while streaming (I5): a file's last chunk is sent only once its
                // size and CRC match the manifest, so a corrupt snapshot never completes.
                let mut crc = 0u32;
                loop {
                    let mut buf = vec![0u8; SNAPSHOT_CHUNK_BYTES];
                    let n = file.read(&mut buf).await?;
                    buf.truncate(n);
                    crc = crc32c::crc32c_append(crc, &buf);
                    let at_end = offset + n as u64 >= f.size;
                    if n == 0 || at_end {
                        let size = offset + n as u64;
                        let extra = if at_end && n > 0 {
                            file.read(&mut [0u8; 1]).await?
                        } else {
                            0
                        };
                        if size != f.size || extra != 0 || crc != f.crc32c {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                CorruptSnapshot {
                                    file: f.name.clone(),
                                    detail: format!(
                                        "size {}{}, crc32c {crc:08x}; the manifest says size {}, crc32c {:08x}",
                                        size,
                                        if extra != 0 { "+" } else { "" },
                                        f.size,
                                        f.crc32c
                                    ),
                                },
                            ));
                        }
                    }
                    if n == 0 && offset > 0 {
                        break;
                    }
                    let chunk = SnapshotChunk {
                        chunk: Some(snapshot_chunk::Chunk::File(FileChunk {
                            name: f.name.clone(),
                            offset,
                            data: buf,
                        })),
                        group,
                    };
                    if tx.send(chunk).await.is_err() {
                        return Ok(());
                    }
                    offset += n as u64;
                    if n == 0 {
                        break;
                    }
                }
            }
            Ok::<(), std::io::Error>(())
        });
        let mut client = self.client().map_err(streaming_err)?;
        let call = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
        let result = tokio::select! {
            r = call => r,
            closed = cancel => {
                reader.abort();
                return Err(StreamingError::Closed(closed));
            }
        };
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if let Some(corrupt) = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<CorruptSnapshot>())
                {
                    tracing::error!(error = %e, path = %dir.path.display(), "snapshot failed verification while being sent");
                    let _ = self.repairs.send(SnapshotRepair {
                        file: Some(corrupt.file.clone()),
                        dir,
                    });
                }
                return Err(streaming_err(network_err(format!("reading snapshot: {e}"))));
            }
            Err(e) => return Err(streaming_err(network_err(e))),
        }
        let resp = result.map_err(|s| {
            if s.code() == tonic::Code::DataLoss {
                tracing::error!(target_node = self.target, error = %s.message(), path = %dir.path.display(), "the receiver could not verify the snapshot");
                let _ = self.repairs.send(SnapshotRepair {
                    dir: dir.clone(),
                    file: None,
                });
            }
            streaming_err(status_err(s))
        })?;
        tracing::info!(target_node = self.target, "snapshot sent");
        codec::decode(&resp.into_inner().payload).map_err(|e| streaming_err(network_err(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_deadline_grows_with_the_batch_bytes() {
        let option = RPCOption::new(Duration::from_millis(100));
        assert_eq!(append_deadline(&option, 0), option.hard_ttl());
        assert_eq!(append_deadline(&option, 1 << 10), option.hard_ttl());
        assert_eq!(
            append_deadline(&option, 16 << 20),
            option.hard_ttl() + Duration::from_secs(1)
        );
        assert_eq!(
            append_deadline(&option, 64 << 20),
            option.hard_ttl() + Duration::from_secs(4)
        );
    }
}
