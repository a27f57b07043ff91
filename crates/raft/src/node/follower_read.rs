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

/// How long the leader may take to answer a read index.
const READ_INDEX_DEADLINE: Duration = Duration::from_secs(5);

/// How long a follower waits to apply the leader's read index before giving up the read.
const APPLY_DEADLINE: Duration = Duration::from_secs(10);

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
        rx.await.unwrap_or_else(|_| {
            Err(ProposeError::Unavailable(
                "the node is shutting down".into(),
            ))
        })
    }
}

async fn run(mut rx: mpsc::Receiver<Waiter>, mut leaders: Leaders, metrics: GroupMetrics) {
    while let Some(first) = rx.recv().await {
        let mut round: BTreeMap<NodeId, Vec<oneshot::Sender<Answer>>> = BTreeMap::new();
        round.entry(first.leader).or_default().push(first.answer);
        while let Ok(w) = rx.try_recv() {
            round.entry(w.leader).or_default().push(w.answer);
        }
        for (leader, waiters) in round {
            metrics.follower_read_rounds.increment(1);
            metrics.follower_reads.increment(waiters.len() as u64);
            let answer = leaders.read_index(leader).await;
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
    async fn read_index(&mut self, leader: NodeId) -> Answer {
        let Some(node) = self.directory.get(leader) else {
            return Err(ProposeError::Unavailable(format!(
                "leader {leader} is not in this node's membership"
            )));
        };
        let client = match self.clients.get(&leader) {
            Some((known, client)) if *known == node => client.clone(),
            _ => {
                let endpoint = self.connector.endpoint(&node).map_err(|e| {
                    ProposeError::Unavailable(format!("cannot reach leader {leader}: {e}"))
                })?;
                let client = RaftTransportClient::new(endpoint.connect_lazy());
                self.clients.insert(leader, (node.clone(), client.clone()));
                client
            }
        };
        let mut request = tonic::Request::new(ReadIndexRequest {
            group: self.group.0,
        });
        request.set_timeout(READ_INDEX_DEADLINE);
        match client.clone().read_index(request).await {
            Ok(r) => Ok(LogIndex(r.into_inner().index)),
            // A leader of an older version: the read is forwarded to it whole instead.
            Err(s) if s.code() == tonic::Code::Unimplemented => Err(ProposeError::NotLeader {
                leader_id: Some(leader),
                leader_addr: Some(node.addr),
            }),
            Err(s) => Err(ProposeError::Unavailable(format!(
                "asking leader {leader} for a read index: {}",
                s.message()
            ))),
        }
    }
}

impl RaftNode {
    /// The barrier for a linearizable read on any replica: on the leader, [`read_barrier`];
    /// on a follower, the leader's read index, applied here. After it returns, this node's
    /// state holds every write acknowledged before the call.
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
        self.check_local_reads()?;
        let index = self.read_index.read_index(leader).await?;
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
