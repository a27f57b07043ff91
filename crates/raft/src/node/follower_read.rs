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
//! answers that it no longer leads (or has no such request, an older version), or it is too
//! far behind the read index — hands the read to the leader whole (the service forwards a
//! [`ProposeError::NotLeader`]), as before follower reads existed. A leader it has not yet
//! applied the membership of cannot be reached, as when no leader is known.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use brisk_proto::raft_transport_client::RaftTransportClient;
use brisk_proto::ReadIndexRequest;
use brisk_storage::LogIndex;
use futures::future::BoxFuture;
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

/// How the rounds reach a leader: the peer transport ([`Leaders`]), or a script in tests.
trait AskLeader: Send + 'static {
    /// The request for `leader`'s read index (sent when polled), or why none can be sent.
    fn ask(&mut self, leader: NodeId) -> Result<BoxFuture<'static, Answer>, ProposeError>;
    /// A request to `leader` failed: its connection may be what failed.
    fn failed(&mut self, leader: NodeId);
}

async fn run(mut rx: mpsc::Receiver<Waiter>, mut leaders: impl AskLeader, metrics: GroupMetrics) {
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
                let request = leaders.ask(leader);
                async move {
                    match request {
                        Ok(r) => (leader, r.await),
                        Err(e) => (leader, Err(e)),
                    }
                }
            })
            .collect();
        // Each leader's readers are answered as its request completes: a slow leader (one
        // that no longer leads) does not hold up the others.
        let mut requests: futures::stream::FuturesUnordered<_> = requests.into_iter().collect();
        while let Some((leader, answer)) = futures::StreamExt::next(&mut requests).await {
            if matches!(answer, Err(ProposeError::Unavailable(_))) {
                // No answer (a timeout or a transport error): the connection may be what
                // failed. A leader's refusal came over a working one.
                leaders.failed(leader);
            }
            metrics.follower_read_rounds.increment(1);
            for w in round.remove(&leader).unwrap_or_default() {
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

impl AskLeader for Leaders {
    fn failed(&mut self, leader: NodeId) {
        // The next request builds a new connection.
        self.clients.remove(&leader);
    }

    /// The request for `leader`'s read index, bounded by [`READ_INDEX_DEADLINE`] whole (a
    /// paused leader can accept a connection and never finish its TLS handshake).
    fn ask(&mut self, leader: NodeId) -> Result<BoxFuture<'static, Answer>, ProposeError> {
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
        Ok(Box::pin(async move {
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
        }))
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
            Err(ProposeError::NotLeader { .. }) => {
                return match self.leader() {
                    // Elected meanwhile: a read of its own.
                    (Some(l), _) if l == self.id() => self.read_barrier().await,
                    _ => Err(forward()),
                };
            }
            other => other?,
        };
        let applied = self.sm.applied_index();
        if index.get() > applied.get().saturating_add(FORWARD_BEHIND_ENTRIES) {
            return Err(forward());
        }
        if self.sm.wait_applied(index, APPLY_DEADLINE).await {
            self.sm.metrics.follower_reads.increment(1);
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A leader whose requests are answered by the test, in the order they were sent.
    type Sent = Vec<(NodeId, oneshot::Sender<Answer>)>;

    #[derive(Clone, Default)]
    struct Script {
        sent: Arc<Mutex<Sent>>,
        failed: Arc<Mutex<Vec<NodeId>>>,
    }

    impl AskLeader for Script {
        fn ask(&mut self, leader: NodeId) -> Result<BoxFuture<'static, Answer>, ProposeError> {
            let (tx, rx) = oneshot::channel();
            self.sent.lock().unwrap().push((leader, tx));
            Ok(Box::pin(async move {
                rx.await
                    .unwrap_or_else(|_| Err(ProposeError::Unavailable("dropped".into())))
            }))
        }

        fn failed(&mut self, leader: NodeId) {
            self.failed.lock().unwrap().push(leader);
        }
    }

    impl Script {
        fn start(&self) -> ReadIndexRounds {
            let (waiting, rx) = mpsc::channel(MAX_WAITING_READS);
            tokio::spawn(run(rx, self.clone(), GroupMetrics::new(GroupId(0))));
            ReadIndexRounds { waiting }
        }

        async fn wait_sent(&self, n: usize) {
            let sent = async {
                while self.sent.lock().unwrap().len() < n {
                    tokio::task::yield_now().await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), sent)
                .await
                .unwrap_or_else(|_| panic!("request {n} was never sent"));
        }

        fn answer(&self, i: usize, answer: Answer) {
            let (_, tx) =
                std::mem::replace(&mut self.sent.lock().unwrap()[i], (0, oneshot::channel().0));
            tx.send(answer).unwrap();
        }
    }

    async fn queued(rounds: &ReadIndexRounds, n: usize) {
        let queued = async {
            while rounds.waiting.max_capacity() - rounds.waiting.capacity() < n {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), queued)
            .await
            .unwrap_or_else(|_| panic!("{n} reads never queued"));
    }

    /// A read of `leader`'s index, running.
    fn read(rounds: &ReadIndexRounds, leader: NodeId) -> tokio::task::JoinHandle<Answer> {
        let r = rounds.clone();
        tokio::spawn(async move { r.read_index(leader).await })
    }

    #[tokio::test]
    async fn a_read_never_takes_the_answer_of_a_request_sent_before_it_arrived() {
        let script = Script::default();
        let rounds = script.start();
        let first = read(&rounds, 2);
        script.wait_sent(1).await;
        // Two reads arrive while the first request is in flight: they share the next one.
        let later: Vec<_> = (0..2).map(|_| read(&rounds, 2)).collect();
        queued(&rounds, 2).await;
        script.answer(0, Ok(LogIndex(10)));
        assert_eq!(first.await.unwrap().unwrap(), LogIndex(10));
        script.wait_sent(2).await;
        script.answer(1, Ok(LogIndex(20)));
        for r in later {
            assert_eq!(r.await.unwrap().unwrap(), LogIndex(20));
        }
        assert_eq!(
            script.sent.lock().unwrap().len(),
            2,
            "one request per round"
        );
    }

    #[tokio::test]
    async fn a_failed_request_fails_its_round_only_and_reaches_each_leader_once() {
        let script = Script::default();
        let rounds = script.start();
        let first = read(&rounds, 2);
        script.wait_sent(1).await;
        // Reads for two leaders (a leader change) queue behind the first request.
        let (for_2, for_3) = (read(&rounds, 2), read(&rounds, 3));
        queued(&rounds, 2).await;
        script.answer(0, Err(ProposeError::Unavailable("leader gone".into())));
        assert!(matches!(
            first.await.unwrap(),
            Err(ProposeError::Unavailable(_))
        ));
        assert_eq!(*script.failed.lock().unwrap(), vec![2]);
        // The next round asks both leaders at once.
        script.wait_sent(3).await;
        let asked: Vec<NodeId> = script.sent.lock().unwrap()[1..]
            .iter()
            .map(|(l, _)| *l)
            .collect();
        assert_eq!(asked, vec![2, 3]);
        script.answer(2, Ok(LogIndex(7)));
        script.answer(1, Ok(LogIndex(5)));
        assert_eq!(for_2.await.unwrap().unwrap(), LogIndex(5));
        assert_eq!(for_3.await.unwrap().unwrap(), LogIndex(7));
    }
}
