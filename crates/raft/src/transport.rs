//! Server side of the node-to-node transport, including the snapshot receiver.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brisk_proto::raft_transport_server::RaftTransport;
use brisk_proto::{
    snapshot_chunk, AllowLogResetRequest, AllowLogResetResponse, RaftMessage, ReadIndexRequest,
    ReadIndexResponse, SnapshotChunk, StatusRequest, StatusResponse,
};
use brisk_storage::LogIndex;
use openraft::ReadPolicy;
use tonic::{Request, Response, Status, Streaming};

use crate::codec;
use crate::fault;
use crate::metrics::GroupMetrics;
use crate::network::SnapshotHeader;
use crate::snapshot::manifest::MANIFEST_FILE;
use crate::snapshot::{SnapshotDir, SnapshotError, SnapshotManifest, SnapshotStore};
use crate::state_machine::Snapshot;
use crate::types::{BriskRaft, GroupId};

pub struct RaftTransportService {
    /// The group this service's Raft runs; a message for another group is refused.
    group: GroupId,
    metrics: GroupMetrics,
    raft: BriskRaft,
    snapshots: SnapshotStore,
    max_snapshot_bytes: u64,
    /// While set (fail-closed recovery, I5) this node grants no votes.
    recovering: Arc<AtomicBool>,
    /// Until then this node grants no votes (see [`RaftTransportService::new`]).
    votes_refused_until: Instant,
    /// Snapshot receptions in progress are bounded: each spools up to
    /// `max_snapshot_bytes` to disk.
    receptions: Arc<tokio::sync::Semaphore>,
    /// How this node, as leader, confirms its leadership for a follower's read index.
    read_policy: ReadPolicy,
}

/// Snapshot receptions a node accepts at once by default; one more is refused with
/// `RESOURCE_EXHAUSTED`.
pub const DEFAULT_MAX_SNAPSHOT_RECEPTIONS: usize = 2;

impl RaftTransportService {
    /// `vote_grace`: how long after this start the node grants no vote. Lease reads need it:
    /// a follower promises, by acknowledging a leader, not to vote for a rival until the
    /// leader's lease (one election timeout) has passed; a restarted follower has forgotten
    /// that promise, so it keeps it blindly for one lease after every start.
    pub fn new(
        raft: BriskRaft,
        snapshots: SnapshotStore,
        max_snapshot_bytes: u64,
        recovering: Arc<AtomicBool>,
        vote_grace: Duration,
        read_policy: ReadPolicy,
    ) -> Self {
        let group = snapshots.layout().group;
        RaftTransportService {
            group,
            metrics: GroupMetrics::new(group),
            raft,
            snapshots,
            max_snapshot_bytes,
            recovering,
            votes_refused_until: Instant::now() + vote_grace,
            receptions: Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_SNAPSHOT_RECEPTIONS)),
            read_policy,
        }
    }

    /// At most `n` snapshot receptions at once (default [`DEFAULT_MAX_SNAPSHOT_RECEPTIONS`]).
    pub fn with_max_snapshot_receptions(mut self, n: usize) -> Self {
        self.receptions = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    fn refuse_votes_while_recovering(&self) -> Result<(), Status> {
        if self.recovering.load(Ordering::SeqCst) {
            return Err(Status::unavailable(
                "recovering from a failed snapshot verification; not voting",
            ));
        }
        if Instant::now() < self.votes_refused_until {
            return Err(Status::unavailable(
                "started less than a leader lease ago; not voting yet",
            ));
        }
        Ok(())
    }
}

/// A snapshot reception in progress: holds its place and shows in
/// `brisk_snapshot_receptions_in_progress` until dropped.
struct Reception {
    _permit: tokio::sync::OwnedSemaphorePermit,
    in_progress: metrics::Gauge,
}

impl Reception {
    fn start(permit: tokio::sync::OwnedSemaphorePermit, in_progress: metrics::Gauge) -> Self {
        in_progress.increment(1.0);
        Reception {
            _permit: permit,
            in_progress,
        }
    }
}

impl Drop for Reception {
    fn drop(&mut self) {
        self.in_progress.decrement(1.0);
    }
}

/// How long a snapshot reception waits for its next chunk before giving up its place.
pub const RECEIVE_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

async fn next_chunk(
    stream: &mut Streaming<SnapshotChunk>,
) -> Result<Option<SnapshotChunk>, Status> {
    match tokio::time::timeout(RECEIVE_IDLE_TIMEOUT, stream.message()).await {
        Ok(r) => r,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no snapshot data for {} s",
            RECEIVE_IDLE_TIMEOUT.as_secs()
        ))),
    }
}

/// A received snapshot that fails an integrity check is `DATA_LOSS` (the sender checks its
/// copy and rebuilds if it is the bad one); an I/O error here is this node's problem.
fn received_check(e: SnapshotError) -> Status {
    if e.is_integrity_failure() {
        Status::data_loss(format!("received snapshot failed verification: {e}"))
    } else {
        Status::internal(format!("checking the received snapshot: {e}"))
    }
}

fn bad(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

impl RaftTransportService {
    /// The payload of a message for this node's group; NOT_FOUND names any other group.
    fn payload(&self, msg: RaftMessage) -> Result<Vec<u8>, Status> {
        self.check_group(msg.group)?;
        Ok(msg.payload)
    }

    fn check_group(&self, group: u64) -> Result<(), Status> {
        check_group(self.group, group)
    }

    fn reply<T: serde::Serialize>(&self, v: &T) -> Result<Response<RaftMessage>, Status> {
        message(self.group, v).map(Response::new)
    }
}

/// `v` encoded as a message of group `group`.
fn message<T: serde::Serialize>(group: GroupId, v: &T) -> Result<RaftMessage, Status> {
    let payload = codec::encode(v).map_err(|e| Status::internal(e.to_string()))?;
    Ok(RaftMessage {
        payload,
        group: group.0,
    })
}

/// NOT_FOUND for a message naming a group other than `ours`.
fn check_group(ours: GroupId, group: u64) -> Result<(), Status> {
    if group == ours.0 {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "no Raft group {group} on this node (it runs group {ours})"
        )))
    }
}

fn raft_err(e: impl std::fmt::Display) -> Status {
    Status::unavailable(e.to_string())
}

/// The results of a `StreamAppend` stream, in request order.
pub type AppendResults =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<RaftMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl RaftTransport for RaftTransportService {
    type StreamAppendStream = AppendResults;

    /// Pipelined appends from the leader (the leader's half is `append_stream`). openraft
    /// takes each request as it arrives and answers them in order, so a batch is appended
    /// while the previous one may still be waiting for its flush. A message that is not an
    /// AppendEntries request for this group ends the stream with an error after the results
    /// of the requests before it; it reaches nothing.
    async fn stream_append(
        &self,
        req: Request<Streaming<RaftMessage>>,
    ) -> Result<Response<AppendResults>, Status> {
        use futures::StreamExt;
        let refused: Arc<std::sync::Mutex<Option<Status>>> = Arc::default();
        let ours = self.group;
        let requests = futures::stream::unfold(
            (req.into_inner(), refused.clone()),
            move |(mut input, refused)| {
                async move {
                    // A failed read is the leader going away: the stream just ends.
                    let msg = input.message().await.ok()??;
                    let decoded = check_group(ours, msg.group)
                        .and_then(|()| codec::decode(&msg.payload).map_err(bad));
                    match decoded {
                        Ok(rpc) => Some((rpc, (input, refused))),
                        Err(status) => {
                            *refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                            None
                        }
                    }
                }
            },
        );
        let results = self
            .raft
            .stream_append(Box::pin(requests))
            .map(move |r| message(ours, &r.map_err(raft_err)?));
        let refusal = futures::stream::once(async move {
            refused.lock().unwrap_or_else(|e| e.into_inner()).take()
        })
        .filter_map(|refusal| async move { refusal.map(Err) });
        Ok(Response::new(Box::pin(results.chain(refusal))))
    }

    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc = codec::decode(&self.payload(req.into_inner())?).map_err(bad)?;
        let resp = self.raft.append_entries(rpc).await.map_err(raft_err)?;
        self.reply(&resp)
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let payload = self.payload(req.into_inner())?;
        self.refuse_votes_while_recovering()?;
        let rpc = codec::decode(&payload).map_err(bad)?;
        let resp = self.raft.vote(rpc).await.map_err(raft_err)?;
        self.reply(&resp)
    }

    async fn pre_vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let payload = self.payload(req.into_inner())?;
        self.refuse_votes_while_recovering()?;
        let rpc = codec::decode(&payload).map_err(bad)?;
        let resp = self.raft.pre_vote(rpc).await.map_err(raft_err)?;
        self.reply(&resp)
    }

    async fn transfer_leader(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc = codec::decode(&self.payload(req.into_inner())?).map_err(bad)?;
        let resp = self
            .raft
            .handle_transfer_leader(rpc)
            .await
            .map_err(raft_err)?;
        self.reply(&resp)
    }

    async fn allow_log_reset(
        &self,
        req: Request<AllowLogResetRequest>,
    ) -> Result<Response<AllowLogResetResponse>, Status> {
        let id = req.into_inner().node_id;
        if !self.raft.is_leader() {
            return Err(Status::failed_precondition("not the leader"));
        }
        match self.raft.trigger().allow_next_revert(&id, true).await {
            Ok(Ok(())) => {
                tracing::warn!(
                    node = id,
                    "allowing the node's log to be reset once (it rejoins after a failed snapshot verification)"
                );
                Ok(Response::new(AllowLogResetResponse {}))
            }
            Ok(Err(e)) => Err(Status::failed_precondition(e.to_string())),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }

    async fn peer_status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        use openraft::async_runtime::watch::WatchReceiver;
        let m = self.raft.metrics().borrow_watched().clone();
        Ok(Response::new(crate::peer::status(m.id, &m)))
    }

    /// A follower's read index (design: "Follower reads"): the index it must have applied
    /// before serving a linearizable read, once this leader has confirmed its leadership as
    /// it does for a read of its own.
    async fn read_index(
        &self,
        req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        use openraft::errors::{LinearizableReadError, RaftError};
        self.check_group(req.into_inner().group)?;
        match self.raft.get_read_log_id(self.read_policy.clone()).await {
            Ok((read_log_id, _)) => Ok(Response::new(ReadIndexResponse {
                index: read_log_id.index(),
            })),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => {
                Err(Status::failed_precondition("not the leader"))
            }
            Err(e) => Err(raft_err(e)),
        }
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftMessage>, Status> {
        let Ok(permit) = self.receptions.clone().try_acquire_owned() else {
            return Err(Status::resource_exhausted(
                "too many snapshot receptions in progress on this node",
            ));
        };
        let _reception =
            Reception::start(permit, self.metrics.snapshot_receptions_in_progress.clone());
        let dir = self
            .snapshots
            .incoming_dir()
            .map_err(|e| Status::internal(e.to_string()))?;
        let result = self.receive(req.into_inner(), &dir).await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let (header, snap) = result?;
        // Crash point receive_before_install: the snapshot is on disk and verified, not yet
        // installed.
        fault::crash_point(fault::RECEIVE_BEFORE_INSTALL);
        let snapshot = Snapshot {
            meta: header.meta,
            snapshot: snap,
        };
        let resp = self.raft.install_full_snapshot(header.vote, snapshot).await;
        // An installed snapshot was moved into place; one openraft declined (stale vote, or
        // not newer than what is committed here) is still in the spool directory.
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        self.reply(&resp.map_err(raft_err)?)
    }
}

impl RaftTransportService {
    /// Spools a transfer into `dir` and verifies it completely (manifest CRC, every file's
    /// size and CRC, nothing missing or extra) before anything is installed (I5).
    async fn receive(
        &self,
        mut stream: Streaming<SnapshotChunk>,
        dir: &Path,
    ) -> Result<(SnapshotHeader, SnapshotDir), Status> {
        let first = next_chunk(&mut stream)
            .await?
            .ok_or_else(|| bad("empty snapshot stream"))?;
        self.check_group(first.group)?;
        let Some(snapshot_chunk::Chunk::Header(raw)) = first.chunk else {
            return Err(bad("snapshot stream must start with a header"));
        };
        let header: SnapshotHeader = codec::decode(&raw).map_err(bad)?;
        let (manifest, manifest_crc) = SnapshotManifest::decode(&header.manifest).map_err(bad)?;
        let token = manifest.token(manifest_crc).to_hex();
        if token != header.token {
            return Err(bad(format!(
                "snapshot token {} does not match its manifest ({token})",
                header.token
            )));
        }
        // Names come from the network: nothing is written under a name that is not a plain
        // file name (no `..`, no `/`).
        for f in &manifest.files {
            crate::snapshot::store::check_file_name(&f.name).map_err(bad)?;
        }
        let want = header
            .meta
            .last_log_id
            .as_ref()
            .map(|l| (LogIndex(l.index), l.leader_id.term));
        if want != Some((manifest.index, manifest.term)) {
            return Err(bad(format!(
                "snapshot meta {:?} does not match manifest ({}, {})",
                want, manifest.index, manifest.term
            )));
        }
        if manifest.total_bytes() > self.max_snapshot_bytes {
            return Err(Status::resource_exhausted(format!(
                "snapshot of {} bytes exceeds the cap of {} bytes (--max-snapshot-bytes)",
                manifest.total_bytes(),
                self.max_snapshot_bytes
            )));
        }
        let sizes: HashMap<String, u64> = manifest
            .files
            .iter()
            .map(|f| (f.name.clone(), f.size))
            .collect();
        let mut written: HashMap<String, u64> = HashMap::new();
        let mut open: Option<(String, std::fs::File)> = None;
        let mut total = 0u64;
        let mut chunks = 0u64;
        while let Some(msg) = next_chunk(&mut stream).await? {
            self.check_group(msg.group)?;
            let Some(snapshot_chunk::Chunk::File(fc)) = msg.chunk else {
                return Err(bad("unexpected second header in snapshot stream"));
            };
            let Some(&size) = sizes.get(&fc.name) else {
                return Err(bad(format!(
                    "snapshot chunk for unlisted file {:?}",
                    fc.name
                )));
            };
            let done = written.entry(fc.name.clone()).or_insert(0);
            if fc.offset != *done || *done + fc.data.len() as u64 > size {
                return Err(bad(format!(
                    "snapshot chunk for {} at offset {} (expected {}, file size {})",
                    fc.name, fc.offset, done, size
                )));
            }
            total += fc.data.len() as u64;
            if total > self.max_snapshot_bytes {
                return Err(Status::resource_exhausted("snapshot exceeds the size cap"));
            }
            if open.as_ref().map(|(n, _)| n != &fc.name).unwrap_or(true) {
                if let Some((_, f)) = open.take() {
                    f.sync_all().map_err(|e| Status::internal(e.to_string()))?;
                }
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(&fc.name))
                    .map_err(|e| Status::internal(e.to_string()))?;
                open = Some((fc.name.clone(), f));
            }
            if let Some((_, f)) = open.as_mut() {
                f.write_all(&fc.data)
                    .map_err(|e| Status::internal(e.to_string()))?;
            }
            *done += fc.data.len() as u64;
            chunks += 1;
            if chunks == 1 {
                // Crash point receive_mid_transfer: part of the snapshot is spooled.
                fault::crash_point(fault::RECEIVE_MID_TRANSFER);
            }
        }
        if let Some((_, f)) = open.take() {
            f.sync_all().map_err(|e| Status::internal(e.to_string()))?;
        }
        crate::snapshot::store::write_atomic(&dir.join(MANIFEST_FILE), &header.manifest)
            .map_err(|e| Status::internal(e.to_string()))?;
        let snap = SnapshotDir::open(dir).map_err(received_check)?;
        let verify_dir = snap.clone();
        tokio::task::spawn_blocking(move || verify_dir.verify())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(received_check)?;
        tracing::info!(
            index = manifest.index.get(),
            term = manifest.term,
            bytes = total,
            "snapshot received and verified"
        );
        Ok((header, snap))
    }
}
