//! Linearizable reads on a follower (design: "Follower reads"). The follower asks the leader
//! for a read index over the peer transport — the leader confirms its leadership as for a
//! read of its own and answers its commit index — and serves the read from its own state once
//! it has applied that index. Every write acknowledged before the read began committed at or
//! below that index, so the read sees it.
//!
//! Reads that arrive while a request is in flight wait for the next one and share it, as
//! etcd's read loop does: one request to the leader per round trip, whatever the read rate.
//! A read never joins a request sent before it arrived (that request's index may predate a
//! write acknowledged before the read).
//!
//! A follower that cannot serve the read itself — it is rebuilding (I5), the leader it knows
//! is not in its membership yet or answers that it no longer leads, or it is too far behind
//! the read index — hands the read to the leader whole (the service forwards a
//! [`ProposeError::NotLeader`]), as before follower reads existed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use brisk_proto::raft_transport_client::RaftTransportClient;
use brisk_proto::ReadIndexRequest;
use brisk_storage::LogIndex;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;

use super::{ProposeError, RaftNode};
use crate::metrics::GroupMetrics;
use crate::peer::{PeerConnector, PeerDirectory};
use crate::types::{BriskNode, GroupId, NodeId};

/// Reads waiting for a read index at once; one more is refused as unavailable.
const MAX_WAITING_READS: usize = 65_536;

/// How long the leader may take to answer a read index, connecting included.
const READ_INDEX_DEADLINE: Duration = Duration::from_secs(5);

/// How long a follower waits to apply the leader's read index before giving up the read.
const APPLY_DEADLINE: Duration = Duration::from_secs(10);

/// A follower this many entries behind the read index forwards the read instead of waiting
/// (it is catching up, perhaps through a snapshot).
const FORWARD_BEHIND_ENTRIES: u64 = 10_000;

type Answer = Result<LogIndex, ProposeError>;

struct Waiter {
    leader: NodeId,
    answer: oneshot::Sender<Answer>,
}

/// The follower's side: a task that sends one read-index request per leader and round.
#[derive(Clone)]
pub(crate) struct ReadIndexRounds {
    waiting: mpsc::Sender<Waiter>,
}

impl ReadIndexRounds {
    /// Starts the task; it ends when the last handle is dropped.
    pub(crate) fn spawn(
        group: GroupId,
        connector: PeerConnector,
        directory: PeerDirectory,
        metrics: GroupMetrics,
    ) -> Self {
        let (waiting, rx) = mpsc::channel(MAX_WAITING_READS);
        let leaders = Leaders {
            group,
            connector,
            directory,
            clients: HashMap::new(),
        };
        tokio::spawn(run(rx, leaders, metrics));
        ReadIndexRounds { waiting }
    }

    /// The read index of `leader`, from a request sent after this call began.
    async fn read_index(&self, leader: NodeId) -> Answer {
        let (answer, rx) = oneshot::channel();
        self.waiting
            .try_send(Waiter { leader, answer })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ProposeError::Unavailable(
                    "too many follower reads are waiting for the leader".into(),
                ),
                mpsc::error::TrySendError::Closed(_) => {
                    ProposeError::Unavailable("the node is shutting down".into())
                }
            })?;
        // The task answers within the request deadline; this one only bounds the wait
        // behind a round already in flight.
        match tokio::time::timeout(READ_INDEX_DEADLINE * 3, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ProposeError::Unavailable(
                "the node is shutting down".into(),
            )),
            Err(_) => Err(ProposeError::Unavailable(format!(
                "leader {leader} gave no read index within {} s",
                (READ_INDEX_DEADLINE * 3).as_secs()
            ))),
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Waiter>, mut leaders: Leaders, metrics: GroupMetrics) {
    while let Some(first) = rx.recv().await {
        let mut round: BTreeMap<NodeId, Vec<oneshot::Sender<Answer>>> = BTreeMap::new();
        round.entry(first.leader).or_default().push(first.answer);
        while let Ok(w) = rx.try_recv() {
            round.entry(w.leader).or_default().push(w.answer);
        }
        // One request per leader, all at once (more than one only around a leader change).
        let requests: Vec<_> = round
            .keys()
            .map(|&leader| {
                let request = leaders.request(leader);
                async move {
                    match request {
                        Ok(r) => (leader, r.await),
                        Err(e) => (leader, Err(e)),
                    }
                }
            })
            .collect();
        for (leader, answer) in futures::future::join_all(requests).await {
            if answer.is_err() {
                // The connection may be what failed: the next request builds a new one.
                leaders.clients.remove(&leader);
            }
            let waiters = round.remove(&leader).unwrap_or_default();
            metrics.follower_read_rounds.increment(1);
            metrics.follower_reads.increment(waiters.len() as u64);
            for w in waiters {
                // A reader that gave up (its client went away) no longer listens.
                let _ = w.send(answer.clone());
            }
        }
    }
}

/// Channels to the leaders this follower asked, kept across rounds.
struct Leaders {
    group: GroupId,
    connector: PeerConnector,
    directory: PeerDirectory,
    clients: HashMap<NodeId, (BriskNode, RaftTransportClient<Channel>)>,
}

impl Leaders {
    /// The request for `leader`'s read index, bounded by [`READ_INDEX_DEADLINE`] whole (a
    /// paused leader can accept a connection and never finish its TLS handshake).
    fn request(
        &mut self,
        leader: NodeId,
    ) -> Result<impl std::future::Future<Output = Answer> + use<>, ProposeError> {
        let not_leader = ProposeError::NotLeader {
            leader_id: Some(leader),
            leader_addr: None,
        };
        // Not in the membership this node has applied yet: the read is forwarded.
        let node = self.directory.get(leader).ok_or(not_leader.clone())?;
        let mut client = match self.clients.get(&leader) {
            Some((known, client)) if *known == node => client.clone(),
            _ => {
                let endpoint = self.connector.endpoint(&node).map_err(|e| {
                    ProposeError::Unavailable(format!("cannot reach leader {leader}: {e}"))
                })?;
                let client = RaftTransportClient::new(endpoint.connect_lazy());
                self.clients.insert(leader, (node, client.clone()));
                client
            }
        };
        let mut request = tonic::Request::new(ReadIndexRequest {
            group: self.group.0,
        });
        request.set_timeout(READ_INDEX_DEADLINE);
        Ok(async move {
            match tokio::time::timeout(READ_INDEX_DEADLINE, client.read_index(request)).await {
                Ok(Ok(r)) => Ok(LogIndex(r.into_inner().index)),
                // A leader of an older version, or one that no longer leads: the read is
                // forwarded whole (to whoever leads by then).
                Ok(Err(s))
                    if matches!(
                        s.code(),
                        tonic::Code::Unimplemented | tonic::Code::FailedPrecondition
                    ) =>
                {
                    Err(not_leader)
                }
                Ok(Err(s)) => Err(ProposeError::Unavailable(format!(
                    "asking leader {leader} for a read index: {}",
                    s.message()
                ))),
                Err(_) => Err(ProposeError::Unavailable(format!(
                    "leader {leader} gave no read index within {} s",
                    READ_INDEX_DEADLINE.as_secs()
                ))),
            }
        })
    }
}

impl RaftNode {
    /// The barrier for a linearizable read on any replica: on the leader, [`read_barrier`];
    /// on a follower, the leader's read index, applied here. After it returns, this node's
    /// state holds every write acknowledged before the call. A follower that cannot serve
    /// the read itself answers [`ProposeError::NotLeader`] naming the leader Raft reports,
    /// so that the service forwards the read.
    ///
    /// [`read_barrier`]: RaftNode::read_barrier
    pub async fn linearizable_barrier(&self) -> Result<(), ProposeError> {
        match self.read_barrier().await {
            Err(ProposeError::NotLeader {
                leader_id: Some(leader),
                ..
            }) if leader != self.id() => self.follower_barrier(leader).await,
            other => other,
        }
    }

    async fn follower_barrier(&self, leader: NodeId) -> Result<(), ProposeError> {
        let forward = || {
            let (leader_id, leader_addr) = self.leader();
            ProposeError::NotLeader {
                leader_id,
                leader_addr,
            }
        };
        self.check_not_draining()?;
        if self.recovering.load(std::sync::atomic::Ordering::SeqCst) {
            // Rebuilding its state (I5): the leader serves the read.
            return Err(forward());
        }
        let index = match self.read_index.read_index(leader).await {
            Err(ProposeError::NotLeader { .. }) => return Err(forward()),
            other => other?,
        };
        let applied = self.sm.applied_index();
        if index.get() > applied.get().saturating_add(FORWARD_BEHIND_ENTRIES) {
            return Err(forward());
        }
        if self.sm.wait_applied(index, APPLY_DEADLINE).await {
            Ok(())
        } else {
            Err(ProposeError::Unavailable(format!(
                "this follower did not apply the leader's read index {} within {} s",
                index.get(),
                APPLY_DEADLINE.as_secs()
            )))
        }
    }
}
