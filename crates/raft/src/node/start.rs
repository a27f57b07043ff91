//! Starting a node in two halves: the cold-start gate ([`RaftNode::pass_gate`]), then Raft
//! ([`GatedNode::start_raft`]); the caller binds its listeners in between (I8).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brisk_kv::{Hlc, KvStateMachine};
use brisk_storage::LogIndex;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::RaftError;
use openraft::storage::RaftLogReader;
use openraft::SnapshotPolicy;

use super::fail_closed;
use super::{NodeConfig, NodeError, RaftNode};
use crate::gate::{self, GateError, GateReport};
use crate::layout::DataLayout;
use crate::log_store::LogStore;
use crate::network::NetworkFactory;
use crate::peer::PeerDirectory;
use crate::snapshot::SnapshotStore;
use crate::state_machine::{SmShared, StateMachineStore};
use crate::types::{BriskNode, NodeId};

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
        let layout = DataLayout::new(&config.data_dir).group(config.group);
        std::fs::create_dir_all(layout.path()).map_err(|source| NodeError::DataDir {
            path: layout.root.clone(),
            source,
        })?;
        let log_path = layout.raft_log();
        let log_err = NodeError::log_store(&log_path);
        let log = LogStore::open(&log_path, config.group).map_err(&log_err)?;
        // A Raft log with no vote, no entry and no recovery marker is new: a brand-new member,
        // or a member whose disk was replaced or wiped (see the rejoin below). Judged by
        // content, not by the directory's existence, so a crash during the rejoin repeats it.
        let fresh = log.is_pristine().map_err(&log_err)?;
        let log_compacted = log.last_purged().map_err(&log_err)?.is_some();
        let start_commit_index = log
            .committed()
            .map_err(&log_err)?
            .map_or(LogIndex::ZERO, |l| LogIndex(l.index));
        // A recovery interrupted by a crash resumes: the node still may not vote (I5).
        let unfinished_recovery = log.recover_until().map_err(&log_err)?;

        let snapshots = SnapshotStore::new(layout.clone(), config.snapshot_keep);
        let gate_layout = layout.clone();
        let gate_snapshots = snapshots.clone();
        let mode = config.cold_start;
        let gate_result = tokio::task::spawn_blocking(move || {
            gate::run(&gate_layout, &gate_snapshots, mode, log_compacted)
        })
        .await
        .map_err(NodeError::GateTask)?;
        let (store, report, recover_to) = match gate_result {
            Ok((store, report)) => (store, report, None),
            Err(GateError::Verification { check, source }) => {
                let failed = fail_closed::FailedVerification {
                    check,
                    source,
                    start_commit_index,
                    unfinished_recovery,
                };
                let (store, report, target) =
                    fail_closed::recover(&config, &layout, &snapshots, &log, failed).await?;
                (store, report, Some(target))
            }
            Err(e) => return Err(e.into()),
        };
        // A recovery begun by this very start already asked the leader to accept the reset.
        let resuming = recover_to.is_none() && unfinished_recovery.is_some();
        let mut recover_to = recover_to.or(unfinished_recovery);
        if fresh && recover_to.is_none() && !config.peers.is_empty() {
            recover_to = fail_closed::rejoin_replaced_member(&config, &layout, &log).await?;
        }
        if let Some(target) = unfinished_recovery.filter(|_| resuming) {
            fail_closed::resume(&config, &layout, &snapshots, target).await;
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
    start_commit_index: LogIndex,
    /// Set while a fail-closed recovery is under way (I5): the index to apply before voting.
    recover_to: Option<LogIndex>,
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
        let kv = KvStateMachine::new(store, hlc)?;
        let sm =
            SmShared::new(kv, snapshots, config.apply_sync).map_err(NodeError::StateMachine)?;

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
            // A leader that restarts must win a new election rather than resume its term
            // (docs/design/cold-start.md, I7): its state machine may have lost applied
            // writes to a power loss and `committed` is not fsynced, so a resumed leader
            // would take a read index below writes it acknowledged. A new term's first
            // entry bounds every read index from below. `prompt_election` keeps the
            // restart fast.
            enable_leader_restore: Some(false),
            ..Default::default()
        }
        .validate()?;

        let led_before = recover_to.is_none()
            && log
                .clone()
                .read_vote()
                .await
                .map_err(NodeError::log_store(
                    &DataLayout::new(&config.data_dir)
                        .group(config.group)
                        .raft_log(),
                ))?
                .is_some_and(|v| v.is_committed() && v.leader_id().node_id == config.id);
        let raft_started = Instant::now();
        let (repairs, repair_requests) = tokio::sync::mpsc::unbounded_channel();
        let directory = PeerDirectory::new(config.peers.clone());
        let raft = openraft::Raft::new(
            config.id,
            Arc::new(raft_config),
            NetworkFactory::new(
                config.group,
                repairs,
                config.connector.clone(),
                directory.clone(),
            ),
            log.clone(),
            StateMachineStore { shared: sm.clone() },
        )
        .await?;
        directory.follow(&raft);
        let read_index = super::follower_read::ReadIndexRounds::spawn(
            config.group,
            config.connector.clone(),
            directory,
            sm.metrics.clone(),
        );

        let node = Arc::new(RaftNode {
            config,
            raft,
            sm,
            log,
            gate: report,
            start_commit_index: recover_to.unwrap_or(LogIndex::ZERO).max(start_commit_index),
            ready_target: std::sync::OnceLock::new(),
            started_at: process_started,
            raft_started,
            recovering: Arc::new(AtomicBool::new(recover_to.is_some())),
            draining: AtomicBool::new(false),
            read_index,
        });
        node.record_gate();
        if led_before {
            prompt_election(Arc::downgrade(&node));
        }
        if let Some(target) = recover_to {
            node.spawn_recovery_watch(target);
        }
        crate::snapshot::repair::spawn(node.clone(), repair_requests);
        Ok(node)
    }
}

/// A node that led before it restarted campaigns at once instead of waiting out an election
/// timeout (it no longer resumes its term, see `enable_leader_restore` above): when the whole
/// cluster restarts, the first read then waits for one vote round, not for a timeout.
/// Members not up yet refuse the first attempts, so it tries again every heartbeat until
/// some leader is known, for at most 30 heartbeats, and never while the node drains.
fn prompt_election(node: std::sync::Weak<RaftNode>) {
    tokio::spawn(async move {
        for _ in 0..30 {
            let Some(n) = node.upgrade() else { return };
            if n.draining.load(Ordering::SeqCst)
                || n.raft.metrics().borrow_watched().current_leader.is_some()
            {
                return;
            }
            // Pre-vote: a leader elected meanwhile, still heard by its followers, is not
            // unseated.
            if let Err(e) = n.raft.trigger().elect(true).await {
                tracing::debug!(error = %e, "prompt election after restart not started");
                return;
            }
            let heartbeat = Duration::from_millis(n.config.heartbeat_ms);
            drop(n);
            tokio::time::sleep(heartbeat).await;
        }
    });
}

impl RaftNode {
    fn record_gate(&self) {
        let g = &self.gate;
        self.sm.metrics.record_gate(g);
        // The decision, logged at once (the `ready` line adds every phase duration).
        tracing::info!(
            outcome = %g.outcome,
            reason = %g.reason,
            applied_index = ?g.applied_index,
            snapshot_index = ?g.snapshot_index,
            start_commit_index = self.start_commit_index.get(),
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
        if self.raft.is_initialized().await? {
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(e)) => {
                // Another member's vote or log reached us first: already part of a cluster.
                tracing::info!(error = %e, "bootstrap skipped");
                Ok(())
            }
            Err(e) => Err(NodeError::Bootstrap(e)),
        }
    }
}
