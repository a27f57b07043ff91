//! Fail-closed recovery (docs/design/cold-start.md I5): a node whose snapshot fails verification
//! never serves from it. If the cluster has a leader, the node quarantines its state machine,
//! starts from an empty one with an empty log (its vote kept), refuses to vote or campaign,
//! and catches up by receiving a fresh snapshot from the leader. If no leader answers, it
//! refuses to start with the verification error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use backon::{ConstantBuilder, Retryable};
use brisk_proto::raft_transport_client::RaftTransportClient;
use brisk_proto::{AllowLogResetRequest, StatusRequest, StatusResponse};
use brisk_storage::{LogIndex, StorageError, Store};

use crate::codec;
use crate::layout::DataLayout;
use crate::peer::{self, PeerConnector};
use crate::snapshot::{SnapshotDir, SnapshotStore};
use crate::types::{BriskNode, NodeId, StoredMembership};

/// The other members, from whatever this node can still read (the store's membership meta
/// key, else the snapshot's manifest) and from its configured member list, which also
/// supplies the peer address of a member recorded without one. Only used to find a leader.
pub fn peers(
    layout: &DataLayout,
    snapshots: &SnapshotStore,
    me: NodeId,
    configured: &BTreeMap<NodeId, BriskNode>,
) -> Vec<BriskNode> {
    let mut membership: Option<StoredMembership> = Store::open_read_only(&layout.state_machine())
        .ok()
        .and_then(|s| s.meta().ok())
        .and_then(|m| m.membership)
        .filter(|raw| !raw.is_empty())
        .and_then(|raw| codec::decode(&raw).ok());
    if membership.is_none() {
        membership = snapshots
            .read_pointer()
            .ok()
            .flatten()
            .and_then(|(dir, _)| SnapshotDir::open(&layout.snapshots().join(dir)).ok())
            .map(|s| s.manifest.membership);
    }
    let mut found: BTreeMap<NodeId, BriskNode> = configured.clone();
    if let Some(m) = membership {
        for (id, n) in m.membership().nodes() {
            found.insert(*id, peer::complete(*id, n, configured));
        }
    }
    found.remove(&me);
    found.into_values().collect()
}

/// Finds the leader through the peers and asks it to accept this node's log going
/// backwards once (openraft treats a reverted follower log as a fault unless told). Returns
/// the leader's last log index once a leader agreed (None if none did within `patience`):
/// the node may vote again only after applying that far, so it never votes with a log
/// shorter than what it may have helped commit.
pub async fn prepare_rejoin(
    connector: &PeerConnector,
    peers: &[BriskNode],
    configured: &BTreeMap<NodeId, BriskNode>,
    me: NodeId,
    patience: Duration,
) -> Option<LogIndex> {
    let deadline = Instant::now() + patience;
    (|| ask_leader_to_accept(connector, peers, configured, me))
        .retry(
            ConstantBuilder::new()
                .with_delay(Duration::from_millis(200))
                .without_max_times(),
        )
        .when(|_| Instant::now() < deadline)
        .await
        .ok()
}

/// No leader reached in a pass over the peers accepted this node's log and told how far its
/// own reaches.
struct NoLeaderAgreed;

/// One pass over the peers: the leader each knows is asked to accept this node's log going
/// backwards and then for its last log index; the first that gives both ends the pass.
async fn ask_leader_to_accept(
    connector: &PeerConnector,
    peers: &[BriskNode],
    configured: &BTreeMap<NodeId, BriskNode>,
    me: NodeId,
) -> Result<LogIndex, NoLeaderAgreed> {
    for node in peers {
        let Some(leader) = leader_via(connector, node, configured, me).await else {
            continue;
        };
        let leader_addr = leader.peer_addr.clone().unwrap_or_default();
        let Some(ch) = connector.connect(&leader).await else {
            tracing::warn!(
                leader = %leader.addr,
                leader_peer = %leader_addr,
                "cannot reach the leader's peer port to ask it to accept this node's log"
            );
            continue;
        };
        let mut client = RaftTransportClient::new(ch.clone());
        let asked = tokio::time::timeout(
            Duration::from_secs(2),
            client.allow_log_reset(AllowLogResetRequest { node_id: me }),
        )
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer within 2 s")));
        match asked {
            Ok(_) => {
                // Recovery must know how far the leader's log reaches: without that
                // index the node could vote again too early, so no answer means retry.
                match status(ch).await {
                    Ok(s) => return Ok(LogIndex(s.last_log_index)),
                    Err(s) => tracing::warn!(
                        leader = %leader_addr,
                        error = %s.message(),
                        "leader's log index unknown; retrying"
                    ),
                }
            }
            Err(s) => {
                tracing::warn!(leader = %leader_addr, error = %s.message(), "leader refused the log reset")
            }
        }
    }
    Err(NoLeaderAgreed)
}

/// A running cluster counts this node, whose data directory is new, as a member, but its
/// leader did not accept the node's empty log: the node must not start.
#[derive(Debug, thiserror::Error)]
#[error("the cluster has a leader, but it did not accept this node's empty log within 10 s; retry, or remove and re-add the node")]
pub struct LogResetRefused;

/// For a node whose data directory is new: whether its peers already run a cluster that
/// counts it as a member (its disk was replaced or wiped), and if so the index it must apply
/// before it votes or serves again. One pass over the peers: the highest commit index any
/// member reports. When one of them knows a leader, that leader must accept this node's log
/// going backwards (it is asked, with patience) and its last index joins the target; if it
/// never accepts, the node must not start (Err). Ok(None) when no peer reports such a cluster
/// (a cluster being bootstrapped, or no peer reachable).
///
/// The target is a floor: recovery also waits for the cluster's commit index as a leader
/// reports it after the start (see `RaftNode`), so peers that lag behind entries this node
/// helped commit cannot end it early.
pub async fn replaced_member_target(
    connector: &PeerConnector,
    configured: &BTreeMap<NodeId, BriskNode>,
    me: NodeId,
) -> Result<Option<LogIndex>, LogResetRefused> {
    let peers: Vec<BriskNode> = configured.values().cloned().collect();
    let peers = peers.as_slice();
    let mut target = None;
    let mut leader_known = false;
    for node in peers {
        let Some(ch) = connector.connect(node).await else {
            continue;
        };
        let Ok(s) = status(ch).await else {
            continue;
        };
        if s.last_log_index > 0 && s.members.iter().any(|m| m.id == me) {
            target = Some(
                target
                    .unwrap_or(LogIndex::ZERO)
                    .max(LogIndex(s.commit_index)),
            );
            leader_known |= s.has_leader && s.leader_id != me;
        }
    }
    let Some(target) = target else {
        return Ok(None);
    };
    if !leader_known {
        return Ok(Some(target));
    }
    match prepare_rejoin(connector, peers, configured, me, Duration::from_secs(10)).await {
        Some(leader_last) => Ok(Some(target.max(leader_last))),
        None => Err(LogResetRefused),
    }
}

/// A peer's status (over the peer transport), answered within a second.
async fn status(ch: tonic::transport::Channel) -> Result<StatusResponse, tonic::Status> {
    let mut client = RaftTransportClient::new(ch);
    match tokio::time::timeout(Duration::from_secs(1), client.peer_status(StatusRequest {})).await {
        Ok(r) => Ok(r?.into_inner()),
        Err(_) => Err(tonic::Status::deadline_exceeded("no status within 1 s")),
    }
}

/// The leader as `node` reports it, if it knows a leader other than us. A membership written
/// without peer addresses names none: the leader's peer address then comes from this node's
/// own configured peers (as replication finds it, see [`peer::PeerDirectory`]).
async fn leader_via(
    connector: &PeerConnector,
    node: &BriskNode,
    configured: &BTreeMap<NodeId, BriskNode>,
    me: NodeId,
) -> Option<BriskNode> {
    let s = status(connector.connect(node).await?).await.ok()?;
    leader_of(&s, configured, me)
}

fn leader_of(
    s: &StatusResponse,
    configured: &BTreeMap<NodeId, BriskNode>,
    me: NodeId,
) -> Option<BriskNode> {
    peer::reported_leader(s)
        .filter(|(id, _)| *id != me)
        .map(|(id, n)| peer::complete(id, &n, configured))
}

/// Moves the unverifiable state machine and the snapshot pointer aside (kept for the
/// operator, never served from: openraft would otherwise install the pointed-to snapshot at
/// start) and opens an empty state machine in their place.
pub fn quarantine_and_reset(layout: &DataLayout) -> Result<(Store, PathBuf), StorageError> {
    let live = layout.state_machine();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let pointer = layout.snapshot_pointer();
    // The snapshot the pointer names failed verification: move it aside too, so nothing
    // (openraft, the garbage collector, the inspector) takes it for a snapshot again.
    let named = std::fs::read_to_string(&pointer)
        .ok()
        .and_then(|text| text.lines().next().map(str::to_string))
        .filter(|name| crate::layout::is_snapshot_dir_name(name));
    if let Some(name) = named {
        let from = layout.snapshots().join(&name);
        let to = layout
            .snapshots()
            .join(format!("quarantine-{nanos}-{name}"));
        if from.exists() {
            std::fs::rename(&from, &to).map_err(|source| StorageError::Io { path: to, source })?;
        }
    }
    if pointer.exists() {
        let aside = layout
            .snapshots()
            .join(format!("CURRENT.quarantine-{nanos}"));
        std::fs::rename(&pointer, &aside).map_err(|source| StorageError::Io {
            path: aside,
            source,
        })?;
    }
    let quarantine = layout.path().join(format!("sm.quarantine-{nanos}"));
    if live.exists() {
        std::fs::rename(&live, &quarantine).map_err(|source| StorageError::Io {
            path: quarantine.clone(),
            source,
        })?;
    }
    // The renames are durable before the empty store is created: after a crash the node
    // must not find the unverifiable pointer or store back in place.
    for dir in [layout.snapshots(), layout.path().to_path_buf()] {
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| StorageError::Io {
                path: dir.clone(),
                source,
            })?;
    }
    Ok((Store::open(&live)?, quarantine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_recorded_without_a_peer_address_is_reached_through_the_configured_peers() {
        let status = StatusResponse {
            has_leader: true,
            leader_id: 2,
            leader_addr: "127.0.0.1:7002".into(),
            ..Default::default()
        };
        let configured = BTreeMap::from([(2, BriskNode::new("127.0.0.1:7002", "127.0.0.1:8002"))]);
        let leader = leader_of(&status, &configured, 3).unwrap();
        assert_eq!(leader.peer_addr.as_deref(), Some("127.0.0.1:8002"));
        // A leader that reports its peer address keeps it; this node is never its own leader.
        let reported = StatusResponse {
            leader_peer_addr: "127.0.0.1:9002".into(),
            ..status.clone()
        };
        let leader = leader_of(&reported, &configured, 3).unwrap();
        assert_eq!(leader.peer_addr.as_deref(), Some("127.0.0.1:9002"));
        assert!(leader_of(&status, &configured, 2).is_none());
    }
}
