//! A brisk Raft node: the cold-start gate, the log, the state machine and openraft, wired.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brisk_kv::hlc::wall_clock_ms;
use brisk_kv::{Command, Hlc, KvStateMachine, Request, Response};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::{RaftMetrics, ReadPolicy, ServerState, SnapshotPolicy};

use crate::fault;
use crate::gate::{self, ColdStartMode, GateError, GateReport};
use crate::layout::DataLayout;
use crate::log_store::LogStore;
use crate::network::NetworkFactory;
use crate::peer::{PeerConnector, PeerDirectory};
use crate::recovery;
use crate::snapshot::SnapshotStore;
use crate::state_machine::{SmShared, StateMachineStore};
use crate::types::{BriskNode, BriskRaft, NodeId, TypeConfig};

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub data_dir: PathBuf,
    /// The gRPC address clients use to reach this node.
    pub advertise_addr: String,
    /// The Raft transport address peers use to reach this node.
    pub peer_advertise_addr: String,
    /// How this node reaches its peers (mutual TLS or plaintext).
    pub connector: PeerConnector,
    pub fsm_sync: bool,
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
            data_dir,
            advertise_addr,
            peer_advertise_addr,
            connector: PeerConnector::plaintext(),
            fsm_sync: true,
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

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("raft log store at {path}: {detail}")]
    LogStore { path: PathBuf, detail: String },
    #[error("state machine: {0}")]
    StateMachine(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("cannot rejoin the cluster with a new data directory: {0}")]
    Rejoin(String),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a proposal or a linearizable read did not happen here.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    /// Nothing was applied; retrying is safe.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The entry may or may not commit; retrying may apply it twice.
    #[error("outcome unknown: {0}")]
    Indeterminate(String),
    #[error("membership change rejected: {0}")]
    Membership(String),
    #[error("raft stopped: {0}")]
    Fatal(String),
}

pub struct RaftNode {
    pub(crate) config: NodeConfig,
    pub(crate) raft: BriskRaft,
    pub(crate) sm: Arc<SmShared>,
    pub(crate) log: LogStore,
    pub(crate) gate: GateReport,
    /// The commit index this node knew when it started (its own, possibly unsynced
    /// `committed` record, or a recovery's target); a floor for the readiness target.
    pub(crate) start_commit_index: u64,
    /// What readiness waits to apply (I8): the cluster's commit index as the leader first
    /// reported it after this start (at least `start_commit_index`). Learned from the leader,
    /// not from this node's own records, which an emptied or lagging node does not have.
    ready_target: std::sync::OnceLock<u64>,
    pub(crate) started_at: Instant,
    /// When Raft started (after the gate): the replay phase runs from here to ready.
    pub(crate) raft_started: Instant,
    /// Set while the node rebuilds from the leader after a failed verification (I5): it
    /// neither votes nor campaigns.
    pub(crate) recovering: Arc<AtomicBool>,
    /// Set when a graceful stop begins: the node takes no new client work (see
    /// [`RaftNode::drain`]).
    draining: AtomicBool,
}

impl RaftNode {
    /// Starts a node in two halves. This one runs the cold-start gate (and, on a failed
    /// verification, the fail-closed recovery's preparation); [`GatedNode::start_raft`]
    /// starts Raft. The caller binds its listeners in between, so they answer while Raft
    /// re-applies the log tail (I8). `process_started` is when the process began, for the
    /// phase durations.
    pub async fn pass_gate(
        config: NodeConfig,
        process_started: Instant,
    ) -> Result<GatedNode, NodeError> {
        let layout = DataLayout::new(&config.data_dir);
        std::fs::create_dir_all(layout.path()).map_err(|source| NodeError::DataDir {
            path: layout.root.clone(),
            source,
        })?;
        let log_path = layout.raft_log();
        let log_err = |detail: String| NodeError::LogStore {
            path: log_path.clone(),
            detail,
        };
        let log = LogStore::open(&log_path).map_err(|e| log_err(e.to_string()))?;
        // A Raft log with no vote, no entry and no recovery marker is new: a brand-new member,
        // or a member whose disk was replaced or wiped (see the rejoin below). Judged by
        // content, not by the directory's existence, so a crash during the rejoin repeats it.
        let fresh = log.is_pristine().map_err(|e| log_err(e.to_string()))?;
        let log_compacted = log
            .last_purged()
            .map_err(|e| log_err(e.to_string()))?
            .is_some();
        let start_commit_index = log
            .committed()
            .map_err(|e| log_err(e.to_string()))?
            .map(|l| l.index)
            .unwrap_or(0);
        // A recovery interrupted by a crash resumes: the node still may not vote (I5).
        let unfinished_recovery = log.recover_until().map_err(|e| log_err(e.to_string()))?;

        let snapshots = SnapshotStore::new(layout.clone(), config.snapshot_keep);
        let gate_layout = layout.clone();
        let gate_snapshots = snapshots.clone();
        let mode = config.cold_start;
        let gate_result = tokio::task::spawn_blocking(move || {
            gate::run(&gate_layout, &gate_snapshots, mode, log_compacted)
        })
        .await
        .map_err(|e| NodeError::StateMachine(e.to_string()))?;
        let mut recover_to: Option<u64> = None;
        let (store, report) = match gate_result {
            Ok(r) => r,
            Err(GateError::Verification { check, source }) => {
                // I5: never serve from what failed verification. Rejoin empty if a leader
                // can send a fresh snapshot, else refuse to start.
                metrics::counter!("brisk_cold_start_verify_failed_total", "check" => check)
                    .increment(1);
                let peers = recovery::peers(&layout, &snapshots, config.id, &config.peers);
                let leader_last = if peers.is_empty() {
                    None
                } else {
                    recovery::prepare_rejoin(
                        &config.connector,
                        &peers,
                        &config.peers,
                        config.id,
                        Duration::from_secs(10),
                    )
                    .await
                };
                let Some(leader_last) = leader_last else {
                    return Err(GateError::Verification { check, source }.into());
                };
                tracing::error!(
                    check,
                    error = %source,
                    "snapshot failed verification; quarantining the state machine and re-fetching state from the leader"
                );
                let x = snapshots
                    .read_pointer()
                    .ok()
                    .flatten()
                    .map(|(_, t)| t.index)
                    .unwrap_or(0);
                // Every entry this node helped commit is in the current leader's log (leader
                // completeness), so the leader's last index covers whatever its vote could
                // otherwise betray; its own uncommitted tail is not waited for (it may never
                // commit).
                let target = [
                    x,
                    start_commit_index,
                    leader_last,
                    unfinished_recovery.unwrap_or(0),
                ]
                .into_iter()
                .max()
                .unwrap_or(0);
                log.reset_for_recovery(target)
                    .map_err(|e| log_err(e.to_string()))?;
                let (store, quarantine) = recovery::quarantine_and_reset(&layout)
                    .map_err(|e| NodeError::StateMachine(e.to_string()))?;
                tracing::warn!(path = %quarantine.display(), "unverifiable state machine moved aside");
                fault::crash_point(fault::RECOVERY_BEFORE_CATCH_UP);
                recover_to = Some(target);
                let report = GateReport {
                    outcome: gate::Outcome::Restore,
                    reason: gate::Reason::VerifyFailed,
                    applied_index: None,
                    served_applied_index: None,
                    snapshot_index: Some(x),
                    open: Duration::ZERO,
                    gate: Duration::ZERO,
                    verify: Duration::ZERO,
                    restore: Duration::ZERO,
                };
                (store, report)
            }
            Err(e) => return Err(e.into()),
        };
        // A recovery begun by this very start already asked the leader to accept the reset.
        let resuming = recover_to.is_none() && unfinished_recovery.is_some();
        let mut recover_to = recover_to.or(unfinished_recovery);
        if fresh && recover_to.is_none() && !config.peers.is_empty() {
            // A new data directory for a member of a running cluster: its disk was replaced.
            // It may have acknowledged entries before; with an empty log it must neither vote
            // nor serve until it holds them again, exactly like the fail-closed recovery
            // (I5). A cluster being bootstrapped reports no log yet: then this is a new member.
            if let Some(target) =
                recovery::replaced_member_target(&config.connector, &config.peers, config.id)
                    .await
                    .map_err(NodeError::Rejoin)?
            {
                tracing::warn!(
                    target,
                    "new data directory for a member of a running cluster (replaced disk): rejoining; not voting or serving until index {target} is applied"
                );
                log.reset_for_recovery(target)
                    .map_err(|e| log_err(e.to_string()))?;
                recover_to = Some(target);
            }
        }
        if let Some(target) = unfinished_recovery.filter(|_| resuming) {
            tracing::warn!(
                target,
                "resuming an unfinished recovery: not voting, campaigning or serving reads until index {target} is applied"
            );
            // The leader (perhaps another one by now) must accept once more that this node's
            // log went backwards; without a leader the node waits in recovery all the same.
            let peers = recovery::peers(&layout, &snapshots, config.id, &config.peers);
            if recovery::prepare_rejoin(
                &config.connector,
                &peers,
                &config.peers,
                config.id,
                Duration::from_secs(5),
            )
            .await
            .is_none()
            {
                tracing::warn!("no leader accepted the resumed recovery yet");
            }
        }

        Ok(GatedNode {
            config,
            process_started,
            log,
            store,
            snapshots,
            report,
            start_commit_index,
            recover_to,
        })
    }
}

/// A node that passed the cold-start gate and has not started Raft yet.
pub struct GatedNode {
    config: NodeConfig,
    process_started: Instant,
    log: LogStore,
    store: brisk_storage::Store,
    snapshots: SnapshotStore,
    report: GateReport,
    start_commit_index: u64,
    /// Set while a fail-closed recovery is under way (I5): the index to apply before voting.
    recover_to: Option<u64>,
}

impl GatedNode {
    /// The second half of a start (see [`RaftNode::pass_gate`]): opens the state machine
    /// and starts Raft.
    pub async fn start_raft(self) -> Result<Arc<RaftNode>, NodeError> {
        let GatedNode {
            config,
            process_started,
            log,
            store,
            snapshots,
            report,
            start_commit_index,
            recover_to,
        } = self;
        let hlc = Arc::new(Hlc::new());
        let kv =
            KvStateMachine::new(store, hlc).map_err(|e| NodeError::StateMachine(e.to_string()))?;
        let sm = SmShared::new(kv, snapshots, config.fsm_sync)
            .map_err(|e| NodeError::StateMachine(e.to_string()))?;

        let raft_config = openraft::Config {
            cluster_name: "brisk".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_min_ms,
            election_timeout_max: config.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.logs_to_keep,
            install_snapshot_timeout: 60_000,
            // A recovering node must not campaign until it holds verified state again.
            enable_elect: recover_to.is_none(),
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Raft(e.to_string()))?;

        let raft_started = Instant::now();
        let (repairs, repair_requests) = tokio::sync::mpsc::unbounded_channel();
        let directory = PeerDirectory::new(config.peers.clone());
        let raft = openraft::Raft::new(
            config.id,
            Arc::new(raft_config),
            NetworkFactory::new(repairs, config.connector.clone(), directory.clone()),
            log.clone(),
            StateMachineStore { shared: sm.clone() },
        )
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
        directory.follow(&raft);

        let node = Arc::new(RaftNode {
            config,
            raft,
            sm,
            log,
            gate: report,
            start_commit_index: recover_to.unwrap_or(0).max(start_commit_index),
            ready_target: std::sync::OnceLock::new(),
            started_at: process_started,
            raft_started,
            recovering: Arc::new(AtomicBool::new(recover_to.is_some())),
            draining: AtomicBool::new(false),
        });
        node.record_gate();
        if let Some(target) = recover_to {
            node.spawn_recovery_watch(target);
        }
        crate::snapshot::repair::spawn(node.clone(), repair_requests);
        Ok(node)
    }
}

impl RaftNode {
    fn record_gate(&self) {
        let g = &self.gate;
        metrics::counter!("brisk_cold_start_total", "outcome" => g.outcome.as_str(), "reason" => g.reason.as_str())
            .increment(1);
        metrics::gauge!("brisk_cold_start_applied_index_gap").set(g.applied_index_gap() as f64);
        // The applied index of the store the node serves from (after a restore: X); absent
        // for a store that never applied an entry.
        if let Some(applied) = g.served_applied_index {
            metrics::gauge!("brisk_cold_start_applied_index").set(applied as f64);
        }
        for (phase, d) in [
            ("open", g.open),
            ("gate", g.gate),
            ("verify", g.verify),
            ("restore", g.restore),
        ] {
            metrics::gauge!("brisk_cold_start_phase_seconds", "phase" => phase)
                .set(d.as_secs_f64());
        }
        // The decision, logged at once (the `ready` line adds every phase duration).
        tracing::info!(
            outcome = %g.outcome,
            reason = %g.reason,
            applied_index = ?g.applied_index,
            snapshot_index = ?g.snapshot_index,
            start_commit_index = self.start_commit_index,
            "cold start"
        );
    }

    /// Initializes the cluster with `members` unless this node already has Raft state
    /// (restarting with the same `--bootstrap` flags resumes the cluster).
    pub async fn bootstrap(&self, members: BTreeMap<NodeId, BriskNode>) -> Result<(), NodeError> {
        if self.recovering.load(Ordering::SeqCst) {
            // Rejoining an existing cluster: its leader sends the membership.
            return Ok(());
        }
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?
        {
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(e)) => {
                // Another member's vote or log reached us first: already part of a cluster.
                tracing::info!(error = %e, "bootstrap skipped");
                Ok(())
            }
            Err(e) => Err(NodeError::Raft(e.to_string())),
        }
    }

    /// The node's configuration as it started.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The openraft handle (membership changes, triggers, the metrics watch).
    pub fn raft(&self) -> &BriskRaft {
        &self.raft
    }

    /// The MVCC state machine this node applies to (reads go through it).
    pub fn kv(&self) -> &KvStateMachine {
        &self.sm.kv
    }

    /// This node's snapshot files (served to peers by the transport).
    pub fn snapshots(&self) -> &SnapshotStore {
        &self.sm.snapshots
    }

    /// Set while the node rebuilds from the leader (I5); the transport refuses votes then.
    pub fn recovering_flag(&self) -> Arc<AtomicBool> {
        self.recovering.clone()
    }

    /// What the cold-start gate decided at this start.
    pub fn gate(&self) -> &GateReport {
        &self.gate
    }

    /// When this node's process began.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// When Raft started, after the gate (the replay phase runs from here to ready).
    pub fn raft_started(&self) -> Instant {
        self.raft_started
    }

    pub fn metrics(&self) -> RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The current leader and its address, if known.
    pub fn leader(&self) -> (Option<NodeId>, Option<String>) {
        let m = self.metrics();
        let addr = m.current_leader.and_then(|l| {
            m.membership_config
                .membership()
                .get_node(&l)
                .map(|n| n.addr.clone())
        });
        (m.current_leader, addr)
    }

    fn not_leader(&self) -> ProposeError {
        let (leader_id, leader_addr) = self.leader();
        ProposeError::NotLeader {
            leader_id,
            leader_addr,
        }
    }

    /// Issues an HLC timestamp; only the leader does (design: HLC).
    pub fn issue_ts(&self) -> Result<u64, ProposeError> {
        let m = self.metrics();
        if m.current_leader != Some(self.id()) || m.state != ServerState::Leader {
            return Err(self.not_leader());
        }
        self.sm
            .kv
            .hlc()
            .issue(m.current_term, wall_clock_ms())
            .map_err(|e| ProposeError::Unavailable(e.to_string()))
    }

    /// Refuses client work once a graceful stop began: the client retries another member.
    fn check_not_draining(&self) -> Result<(), ProposeError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ProposeError::Unavailable(
                "this node is shutting down; retry another member".into(),
            ));
        }
        Ok(())
    }

    /// Proposes a command with a fresh timestamp and waits until it is applied here.
    pub async fn propose(&self, command: Command) -> Result<(Response, u64), ProposeError> {
        // Lease renewals stop too: an entry appended after the handover began would leave the
        // chosen successor behind, and openraft ignores a transfer to a lagging node.
        self.check_not_draining()?;
        let ts = match command {
            Command::LeaseRenewal { .. } => 0,
            _ => self.issue_ts()?,
        };
        metrics::counter!("brisk_proposals_total").increment(1);
        match self.raft.client_write(Request { ts, command }).await {
            Ok(resp) => Ok((resp.data, resp.log_id.index)),
            Err(e) => Err(self.map_write_error(e)),
        }
    }

    pub fn map_write_error(
        &self,
        e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> ProposeError {
        metrics::counter!("brisk_proposals_failed_total").increment(1);
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                let leader_addr = f.leader_node.map(|n| n.addr);
                ProposeError::NotLeader {
                    leader_id: f.leader_id,
                    leader_addr,
                }
            }
            RaftError::APIError(ClientWriteError::LogEntryDiscarded(f)) => {
                ProposeError::Indeterminate(format!(
                    "leader changed to {:?} before the entry committed",
                    f.leader_id
                ))
            }
            RaftError::APIError(e) => ProposeError::Membership(e.to_string()),
            RaftError::Fatal(f) => ProposeError::Fatal(f.to_string()),
        }
    }

    /// Read barrier: returns once this node (the leader) confirmed with a quorum that it
    /// still leads (per the read policy) and has applied everything committed before the call
    /// (linearizable reads). Waits on the state machine's own applied index rather than
    /// openraft's metrics, which are published less eagerly.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        self.check_not_draining()?;
        let read_log_id = match self
            .raft
            .get_read_log_id(self.config.read_policy.clone())
            .await
        {
            Ok((read_log_id, _)) => read_log_id,
            Err(RaftError::APIError(openraft::errors::LinearizableReadError::ForwardToLeader(
                _,
            ))) => return Err(self.not_leader()),
            Err(RaftError::APIError(e)) => return Err(ProposeError::Unavailable(e.to_string())),
            Err(RaftError::Fatal(f)) => return Err(ProposeError::Fatal(f.to_string())),
        };
        if self
            .sm
            .wait_applied(read_log_id.index(), Duration::from_secs(10))
            .await
        {
            Ok(())
        } else {
            Err(ProposeError::Unavailable(format!(
                "the state machine did not apply index {} within 10 s",
                read_log_id.index()
            )))
        }
    }

    /// How long after start this node refuses to vote: one leader lease under the lease
    /// read policy (see [`RaftTransportService::new`](crate::transport::RaftTransportService::new)),
    /// nothing otherwise.
    pub fn vote_grace(&self) -> Duration {
        match self.config.read_policy {
            ReadPolicy::LeaseRead => Duration::from_millis(self.config.election_max_ms),
            _ => Duration::ZERO,
        }
    }

    /// Whether this replica may serve a read from its own state (stale and at-timestamp
    /// reads): not while it rebuilds from the leader after a failed verification (I5).
    pub fn check_local_reads(&self) -> Result<(), ProposeError> {
        self.check_not_draining()?;
        if self.recovering.load(Ordering::SeqCst) {
            return Err(ProposeError::Unavailable(
                "this node is rebuilding its state from the leader and serves no reads".into(),
            ));
        }
        Ok(())
    }

    /// I8: ready once a leader is known and this node has applied (within `ready_lag`
    /// entries) the cluster's commit index as the leader reported it after this start.
    pub fn is_ready(&self) -> bool {
        self.is_ready_at(&self.metrics())
    }

    /// [`is_ready`](Self::is_ready) as of the metrics `m`.
    pub fn is_ready_at(&self, m: &RaftMetrics<TypeConfig>) -> bool {
        let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        if m.current_leader.is_none()
            || self.recovering.load(Ordering::SeqCst)
            || self.draining.load(Ordering::SeqCst)
        {
            return false;
        }
        match self.ready_target(m) {
            Some(target) => applied.saturating_add(self.config.ready_lag) >= target,
            None => false,
        }
    }

    /// The readiness target if already learned (learning it is [`is_ready`]'s business).
    ///
    /// [`is_ready`]: Self::is_ready
    pub fn learned_ready_target(&self) -> Option<u64> {
        self.ready_target.get().copied()
    }

    /// The readiness target, learned now if a leader has reported the cluster's commit index
    /// (see the field's docs). Called only with a leader known.
    fn ready_target(&self, m: &RaftMetrics<TypeConfig>) -> Option<u64> {
        if let Some(t) = self.ready_target.get() {
            return Some(*t);
        }
        let cluster = m.cluster_committed.as_ref()?.index;
        Some(
            *self
                .ready_target
                .get_or_init(|| cluster.max(self.start_commit_index)),
        )
    }

    /// The leader's lease loop (design: HLC). On becoming leader it waits until everything
    /// committed before its term is applied, fences its clock above the previous durable
    /// ceiling, then keeps the ceiling `window` ahead of its wall clock.
    pub fn spawn_lease_task(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            let tick = Duration::from_millis(50);
            let renew_every = Duration::from_millis(node.config.lease_interval_ms);
            let mut last_renewal: Option<(u64, Instant)> = None;
            loop {
                tokio::time::sleep(tick).await;
                let m = node.metrics();
                if m.running_state.is_err() || m.state == ServerState::Shutdown {
                    return;
                }
                if m.state != ServerState::Leader {
                    continue;
                }
                let term = m.current_term;
                let hlc = node.sm.kv.hlc();
                if hlc.fenced_term() != Some(term) {
                    if node.read_barrier().await.is_err() {
                        continue;
                    }
                    hlc.fence_for_term(term, hlc.ceiling_ms());
                    tracing::info!(
                        term,
                        ceiling_ms = hlc.ceiling_ms(),
                        "leader clock fenced above previous ceiling"
                    );
                }
                let due = match last_renewal {
                    Some((t, at)) => t != term || at.elapsed() >= renew_every,
                    None => true,
                };
                if !due {
                    continue;
                }
                let ceiling_ms = wall_clock_ms().max(hlc.ceiling_ms()) + node.config.hlc_window_ms;
                match node.propose(Command::LeaseRenewal { ceiling_ms }).await {
                    Ok(_) => last_renewal = Some((term, Instant::now())),
                    Err(e) => tracing::debug!(error = %e, "lease renewal failed"),
                }
            }
        })
    }

    /// Ends recovery once the node has applied past the snapshot it could not verify and
    /// the commit index it knew: from then on it votes and campaigns again.
    fn spawn_recovery_watch(self: &Arc<Self>, target: u64) {
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                let m = node.metrics();
                if m.running_state.is_err() {
                    return;
                }
                let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
                // Besides the recorded target, the cluster's commit index as a leader reported
                // it after this start: the target may have been learned from peers that lag
                // behind entries this node helped commit.
                let caught_up = m.current_leader.is_some()
                    && node
                        .ready_target(&m)
                        .is_some_and(|cluster| applied >= target.max(cluster));
                if caught_up {
                    // The marker goes first (fsynced), then the node votes again; if removing
                    // it fails, the node keeps refusing and tries again.
                    if let Err(e) = node.log.finish_recovery() {
                        tracing::warn!(error = %e, "could not clear the recovery marker; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    node.recovering.store(false, Ordering::SeqCst);
                    node.raft.runtime_config().elect(true);
                    tracing::info!(applied, target, "recovered from the leader; voting again");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    /// Resumes the background compactions paused for start-up (called once ready, I8).
    pub fn resume_compactions(&self) {
        if let Err(e) = self.log.resume_compactions() {
            tracing::warn!(error = %e, "could not resume raft log compactions");
        }
        match self.sm.kv.store().map(|s| s.resume_compactions()) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not resume state machine compactions"),
            Err(e) => tracing::warn!(error = %e, "could not resume state machine compactions"),
        }
    }

    /// The first half of a graceful stop: take no new client work (clients retry another
    /// member), let what was proposed apply, and if this node leads, hand leadership to the
    /// most caught-up voter and wait (within `patience`) until another node leads, so the
    /// cluster keeps serving without waiting for an election timeout. Returns the new
    /// leader, if leadership moved.
    pub async fn drain(&self, patience: Duration) -> Option<NodeId> {
        self.draining.store(true, Ordering::SeqCst);
        // A stopping node must not win an election (it would lead and refuse all work).
        self.raft.runtime_config().elect(false);
        let deadline = Instant::now() + patience;
        let mut rx = self.raft.metrics();
        // A leader's in-flight proposals finish (they commit or fail) before leadership
        // moves, so none of them is left with an unknown outcome by the transfer. What was
        // in its log when draining began is the bound: new proposals are refused from now
        // on, while a follower's log keeps growing with the leader's entries and it has no
        // proposals of its own to wait for.
        let started = self.metrics();
        if started.current_leader == Some(self.id()) {
            let last = started.last_log_index.unwrap_or(0);
            loop {
                let m = self.metrics();
                let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
                if applied >= last
                    || m.current_leader != Some(self.id())
                    || Instant::now() >= deadline
                {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
            }
        }
        let m = self.metrics();
        if m.current_leader != Some(self.id()) {
            return m.current_leader;
        }
        let target = m.replication.as_ref().and_then(|r| {
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            r.iter()
                .filter(|(id, _)| **id != self.id() && voters.contains(id))
                .max_by_key(|(_, matched)| matched.as_ref().map(|l| l.index))
                .map(|(id, _)| *id)
        });
        let to = target?;
        tracing::info!(to, "stopping: transferring leadership");
        // openraft sends the transfer once and the successor ignores it while its log is
        // behind: wait until it holds everything, and ask again until leadership moves.
        let mut asked_at: Option<Instant> = None;
        loop {
            let m = self.metrics();
            if let Some(l) = m.current_leader.filter(|l| *l != self.id()) {
                return Some(l);
            }
            if Instant::now() >= deadline {
                tracing::warn!("leadership did not move before the stop deadline");
                return None;
            }
            let last = m.last_log_index.unwrap_or(0);
            let caught_up = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&to).cloned().flatten())
                .is_some_and(|l| l.index >= last);
            let due = asked_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(200));
            if caught_up && due {
                if let Err(e) = self.raft.trigger().transfer_leader(to).await {
                    tracing::warn!(error = %e, "leadership transfer failed");
                    return None;
                }
                asked_at = Some(Instant::now());
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}
