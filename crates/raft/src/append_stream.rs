//! Pipelined replication, the leader's half: AppendEntries over one bidirectional gRPC stream
//! per follower (`RaftTransport.StreamAppend`). openraft hands the transport each batch as soon
//! as its entries are submitted to the local log; the batch goes out at once, without waiting
//! for the previous batch's result, and the follower answers every request in order. The
//! follower's half is [`crate::transport`].
//!
//! At most [`MAX_UNANSWERED`] requests are out at once: entries submitted meanwhile wait and
//! go out together in the next request, so a busy leader sends fewer, larger batches (each
//! request costs both nodes CPU, and the cluster is CPU-bound under load) while a follower
//! still always has the next batch in hand when it finishes one.
//!
//! A stream has no overall deadline (it lives as long as this node leads); instead its
//! results must keep coming: the oldest unanswered request gets [`append_deadline`], counted
//! from when it was sent or from the previous result, whichever is later.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use brisk_proto::RaftMessage;
use futures::{Stream, StreamExt};
use openraft::base::BoxStream;
use openraft::errors::RPCError;
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use tonic::Streaming;

use crate::codec;
use crate::network::{append_deadline, network_err, status_err};
use crate::types::TypeConfig;

/// Requests of one stream sent and not yet answered, at most.
pub(crate) const MAX_UNANSWERED: usize = 2;

/// The requests of one stream that have no result yet, shared by its two halves.
#[derive(Clone, Default)]
pub(crate) struct Window {
    state: Arc<Mutex<WindowState>>,
    /// Signalled on every result (a place in the window may have come free).
    answered: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct WindowState {
    /// When each unanswered request was handed to the transport, and its encoded size;
    /// oldest first (results come in request order).
    unanswered: VecDeque<(Instant, usize)>,
    /// When the last result arrived.
    last_result: Option<Instant>,
    /// Why the request side ended early (a request that could not be encoded).
    failure: Option<String>,
}

impl Window {
    fn state(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sent(&self, bytes: usize) {
        self.state().unanswered.push_back((Instant::now(), bytes));
    }

    fn answered(&self) {
        let mut state = self.state();
        state.unanswered.pop_front();
        state.last_result = Some(Instant::now());
        drop(state);
        self.answered.notify_one();
    }

    /// Waits until fewer than [`MAX_UNANSWERED`] requests are unanswered.
    async fn place(&self) {
        while self.state().unanswered.len() >= MAX_UNANSWERED {
            // A result between the check and the wait leaves a permit: no wake-up is lost.
            self.answered.notified().await;
        }
    }

    fn fail(&self, why: String) {
        self.state().failure = Some(why);
    }

    fn take_failure(&self) -> Option<String> {
        self.state().failure.take()
    }

    /// Since when the oldest unanswered request has been waiting for its result, and when it
    /// is overdue; None when nothing is unanswered.
    fn due(&self, option: &RPCOption) -> Option<(Instant, Instant)> {
        let state = self.state();
        let &(sent, bytes) = state.unanswered.front()?;
        let since = state.last_result.map_or(sent, |last| last.max(sent));
        Some((since, since + append_deadline(option, bytes)))
    }
}

/// The messages of one stream: `input` encoded, each recorded in `window` as it is handed
/// to the transport, the next one taken from `input` only once `window` has a place. A request that cannot be encoded ends the stream (the results side
/// then reports why).
pub(crate) fn requests<S>(
    input: S,
    group: u64,
    window: Window,
) -> impl Stream<Item = RaftMessage> + Send + 'static
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
{
    futures::stream::unfold((input, window), move |(mut input, window)| async move {
        window.place().await;
        let rpc = input.next().await?;
        match codec::encode(&rpc) {
            Ok(payload) => {
                window.sent(payload.len());
                Some((RaftMessage { payload, group }, (input, window)))
            }
            Err(e) => {
                window.fail(format!("encoding an AppendEntries request: {e}"));
                None
            }
        }
    })
}

type StreamResult = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// The follower's results, in request order. The stream ends after the first error: a
/// conflict or higher vote from the follower, a transport failure, or an overdue result.
pub(crate) fn results(
    responses: Streaming<RaftMessage>,
    window: Window,
    option: RPCOption,
) -> BoxStream<'static, StreamResult> {
    let results = Results {
        responses,
        window,
        option,
        ended: false,
    };
    Box::pin(futures::stream::unfold(results, |mut results| async move {
        let next = results.next().await?;
        Some((next, results))
    }))
}

struct Results {
    responses: Streaming<RaftMessage>,
    window: Window,
    option: RPCOption,
    ended: bool,
}

impl Results {
    async fn next(&mut self) -> Option<StreamResult> {
        if self.ended {
            return None;
        }
        loop {
            let now = Instant::now();
            // With nothing unanswered, look again after a heartbeat interval: a request sent
            // meanwhile starts being timed then at the latest.
            let wake = match self.window.due(&self.option) {
                Some((since, due)) if due <= now => {
                    self.ended = true;
                    return Some(Err(network_err(format!(
                        "no AppendEntries result from the follower for {:?}",
                        now - since
                    ))));
                }
                Some((_, due)) => due,
                None => now + self.option.hard_ttl(),
            };
            tokio::select! {
                message = self.responses.message() => return self.on_message(message),
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    fn on_message(
        &mut self,
        message: Result<Option<RaftMessage>, tonic::Status>,
    ) -> Option<StreamResult> {
        let result = match message {
            Ok(Some(m)) => {
                self.window.answered();
                codec::decode::<StreamAppendResult<TypeConfig>>(&m.payload).map_err(network_err)
            }
            Ok(None) => {
                self.ended = true;
                return self.window.take_failure().map(|why| Err(network_err(why)));
            }
            Err(status) => Err(status_err(status)),
        };
        // After a conflict or a higher vote the follower ends the stream; after an error
        // nothing more can be trusted to line up with the requests.
        if !matches!(result, Ok(Ok(_))) {
            self.ended = true;
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use brisk_proto::raft_transport_server::{RaftTransport, RaftTransportServer};
    use brisk_proto::{
        AllowLogResetRequest, AllowLogResetResponse, SnapshotChunk, StatusRequest, StatusResponse,
    };
    use openraft::network::{RaftNetworkFactory, RaftNetworkV2};
    use openraft::raft::AppendEntriesResponse;
    use tonic::{Request, Response, Status};

    use super::*;
    use crate::network::{NetworkConnection, NetworkFactory};
    use crate::peer::{PeerConnector, PeerDirectory};
    use crate::transport::AppendResults;
    use crate::types::{log_id, BriskNode, GroupId, LogId, Vote};

    /// How a scripted follower treats appends.
    #[derive(Clone, Copy)]
    enum Follower {
        /// Serves the stream, but answers only once it holds this many unanswered requests.
        AnswersInBatchesOf(usize),
        /// An older version: appends one unary call at a time, no stream.
        UnaryOnly,
        /// Takes requests on the stream and never answers.
        Silent,
    }

    /// What a scripted follower received.
    #[derive(Clone, Default)]
    struct Received {
        unary_calls: Arc<AtomicUsize>,
        streamed: Arc<AtomicUsize>,
    }

    struct Scripted {
        follower: Follower,
        received: Received,
    }

    /// The log id a request for an empty batch after `prev` is acknowledged with.
    fn acked(msg: &RaftMessage) -> Option<LogId> {
        let rpc: AppendEntriesRequest<TypeConfig> = codec::decode(&msg.payload).expect("decode");
        rpc.prev_log_id
    }

    fn reply<T: serde::Serialize>(v: &T) -> RaftMessage {
        RaftMessage {
            payload: codec::encode(v).expect("encode"),
            group: 0,
        }
    }

    #[tonic::async_trait]
    impl RaftTransport for Scripted {
        type StreamAppendStream = AppendResults;

        async fn stream_append(
            &self,
            req: Request<Streaming<RaftMessage>>,
        ) -> Result<Response<AppendResults>, Status> {
            let mut input = req.into_inner();
            let streamed = self.received.streamed.clone();
            let batch = match self.follower {
                Follower::UnaryOnly => return Err(Status::unimplemented("StreamAppend")),
                Follower::Silent => {
                    tokio::spawn(async move {
                        while let Ok(Some(_)) = input.message().await {
                            streamed.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                    return Ok(Response::new(Box::pin(futures::stream::pending())));
                }
                Follower::AnswersInBatchesOf(n) => n,
            };
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok(Some(msg)) = input.message().await {
                    streamed.fetch_add(1, Ordering::SeqCst);
                    held.push(acked(&msg));
                    if held.len() == batch {
                        for last in held.drain(..) {
                            let result: StreamAppendResult<TypeConfig> = Ok(last);
                            let _ = tx.send(Ok(reply(&result))).await;
                        }
                    }
                }
            });
            Ok(Response::new(Box::pin(
                tokio_stream::wrappers::ReceiverStream::new(rx),
            )))
        }

        async fn append_entries(
            &self,
            req: Request<RaftMessage>,
        ) -> Result<Response<RaftMessage>, Status> {
            self.received.unary_calls.fetch_add(1, Ordering::SeqCst);
            let _ = acked(req.get_ref());
            Ok(Response::new(reply(
                &AppendEntriesResponse::<TypeConfig>::Success,
            )))
        }

        async fn vote(&self, _: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
            Err(Status::unimplemented("scripted"))
        }

        async fn pre_vote(&self, _: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
            Err(Status::unimplemented("scripted"))
        }

        async fn transfer_leader(
            &self,
            _: Request<RaftMessage>,
        ) -> Result<Response<RaftMessage>, Status> {
            Err(Status::unimplemented("scripted"))
        }

        async fn install_snapshot(
            &self,
            _: Request<Streaming<SnapshotChunk>>,
        ) -> Result<Response<RaftMessage>, Status> {
            Err(Status::unimplemented("scripted"))
        }

        async fn allow_log_reset(
            &self,
            _: Request<AllowLogResetRequest>,
        ) -> Result<Response<AllowLogResetResponse>, Status> {
            Err(Status::unimplemented("scripted"))
        }

        async fn peer_status(
            &self,
            _: Request<StatusRequest>,
        ) -> Result<Response<StatusResponse>, Status> {
            Err(Status::unimplemented("scripted"))
        }

        async fn read_index(
            &self,
            _: Request<brisk_proto::ReadIndexRequest>,
        ) -> Result<Response<brisk_proto::ReadIndexResponse>, Status> {
            Err(Status::unimplemented("scripted"))
        }
    }

    /// A connection from a leader to a scripted follower, and what the follower received.
    async fn connect(follower: Follower) -> (NetworkConnection, Received) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let received = Received::default();
        let service = RaftTransportServer::new(Scripted {
            follower,
            received: received.clone(),
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let (repairs, _) = tokio::sync::mpsc::unbounded_channel();
        let mut factory = NetworkFactory::new(
            GroupId(0),
            repairs,
            PeerConnector::plaintext(),
            PeerDirectory::new(BTreeMap::new()),
        );
        let node = BriskNode::new("127.0.0.1:1", addr.to_string());
        (factory.new_client(2, &node).await, received)
    }

    /// An AppendEntries request with no entries after index `prev`.
    fn append_after(prev: u64) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(log_id(1, 1, prev)),
            leader_commit: None,
            entries: vec![],
        }
    }

    async fn results_of(
        conn: &mut NetworkConnection,
        prevs: &[u64],
        option: RPCOption,
    ) -> Result<Vec<StreamResult>, RPCError<TypeConfig>> {
        let input =
            futures::stream::iter(prevs.iter().map(|&p| append_after(p)).collect::<Vec<_>>());
        let results = conn.stream_append(input, option).await?;
        Ok(
            tokio::time::timeout(Duration::from_secs(30), results.collect::<Vec<_>>())
                .await
                .expect("the results end"),
        )
    }

    fn acks(prevs: &[u64]) -> Vec<Option<LogId>> {
        prevs.iter().map(|&p| Some(log_id(1, 1, p))).collect()
    }

    fn acked_ids(results: Vec<StreamResult>) -> Vec<Option<LogId>> {
        results
            .into_iter()
            .map(|r| r.expect("no transport error").expect("no append error"))
            .collect()
    }

    #[tokio::test]
    async fn batches_go_out_without_waiting_for_the_previous_result() {
        // The follower answers nothing until it holds a full window of requests: only a
        // leader that sends the next batch before the previous result gets any answer.
        let (mut conn, received) = connect(Follower::AnswersInBatchesOf(MAX_UNANSWERED)).await;
        let option = RPCOption::new(Duration::from_secs(10));
        let prevs: Vec<u64> = (1..=2 * MAX_UNANSWERED as u64).collect();
        let results = results_of(&mut conn, &prevs, option).await.expect("stream");
        assert_eq!(acked_ids(results), acks(&prevs));
        assert_eq!(received.unary_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn no_more_than_a_window_of_requests_is_unanswered() {
        let (mut conn, received) = connect(Follower::Silent).await;
        let option = RPCOption::new(Duration::from_millis(300));
        let results = results_of(&mut conn, &[1, 2, 3, 4, 5], option)
            .await
            .expect("stream");
        assert!(matches!(results[..], [Err(_)]), "{results:?}");
        assert_eq!(received.streamed.load(Ordering::SeqCst), MAX_UNANSWERED);
    }

    #[tokio::test]
    async fn a_peer_without_the_stream_gets_one_call_per_batch() {
        let (mut conn, received) = connect(Follower::UnaryOnly).await;
        let option = RPCOption::new(Duration::from_secs(10));
        let refused = results_of(&mut conn, &[1], option.clone()).await;
        assert!(refused.is_err(), "the first stream is refused: {refused:?}");
        let results = results_of(&mut conn, &[1, 2], option)
            .await
            .expect("unary appends");
        assert_eq!(acked_ids(results), acks(&[1, 2]));
        assert_eq!(received.unary_calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_follower_that_stops_answering_fails_the_stream() {
        let (mut conn, _) = connect(Follower::Silent).await;
        let option = RPCOption::new(Duration::from_millis(100));
        let results = results_of(&mut conn, &[1], option).await.expect("stream");
        assert_eq!(results.len(), 1, "{results:?}");
        assert!(
            matches!(results[0], Err(RPCError::Network(_))),
            "{results:?}"
        );
    }
}
