//! How a node is configured: addresses, peers, sync mode, snapshot and timing knobs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use openraft::ReadPolicy;

use crate::gate::ColdStartMode;
use crate::peer::PeerConnector;
use crate::state_machine::ApplySync;
use crate::types::{BriskNode, GroupId, NodeId};

/// How long after a run is applied the background WAL fsync follows by default (what etcd
/// waits between commits of its state machine's batch).
pub const DEFAULT_APPLY_SYNC_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The Raft group this node serves (one per process today: 0).
    pub group: GroupId,
    pub data_dir: PathBuf,
    /// The gRPC address clients use to reach this node.
    pub advertise_addr: String,
    /// The Raft transport address peers use to reach this node.
    pub peer_advertise_addr: String,
    /// How this node reaches its peers (mutual TLS or plaintext).
    pub connector: PeerConnector,
    /// `--fsm-sync`: when applied runs are fsynced (I7).
    pub apply_sync: ApplySync,
    pub snapshot_every: u64,
    pub snapshot_keep: usize,
    /// Entries kept after a snapshot for slow followers.
    pub logs_to_keep: u64,
    pub hlc_window_ms: u64,
    pub lease_interval_ms: u64,
    pub max_snapshot_bytes: u64,
    pub cold_start: ColdStartMode,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// How the leader confirms it still leads before a linearizable read.
    pub read_policy: ReadPolicy,
    /// Readiness tolerates this many entries between the applied index and its target.
    pub ready_lag: u64,
    /// The other members as configured (the bootstrap list): where a node with a new data
    /// directory looks for a leader that already counts it as a member, and where the peer
    /// address of a member recorded by an older version (none in its entry) comes from.
    pub peers: BTreeMap<NodeId, BriskNode>,
}

impl NodeConfig {
    pub fn new(
        id: NodeId,
        data_dir: PathBuf,
        advertise_addr: String,
        peer_advertise_addr: String,
    ) -> Self {
        NodeConfig {
            id,
            group: GroupId::default(),
            data_dir,
            advertise_addr,
            peer_advertise_addr,
            connector: PeerConnector::plaintext(),
            apply_sync: ApplySync::Every(DEFAULT_APPLY_SYNC_PERIOD),
            snapshot_every: 10_000,
            snapshot_keep: 2,
            logs_to_keep: 1_000,
            hlc_window_ms: 10_000,
            lease_interval_ms: 1_000,
            max_snapshot_bytes: 64 << 30,
            cold_start: ColdStartMode::Auto,
            heartbeat_ms: 100,
            election_min_ms: 500,
            election_max_ms: 1_000,
            read_policy: ReadPolicy::ReadIndex,
            ready_lag: 0,
            peers: BTreeMap::new(),
        }
    }
}
