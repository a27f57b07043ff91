//! The client's retry rule against scripted nodes: each node answers puts and gets from a
//! queue of outcomes and counts the requests it received.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brisk_client::{Client, Error, Read};
use brisk_proto::raw_kv_server::{RawKv, RawKvServer};
use brisk_proto::*;
use tonic::{Request, Response, Status};

#[derive(Clone, Debug)]
enum Answer {
    Ok,
    /// A node's own "not applied", naming the leader when given.
    NotApplied(Option<String>),
    Unknown,
    Invalid,
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Answer>>,
    received: AtomicUsize,
}

impl Script {
    fn next(&self) -> Result<(), Status> {
        self.received.fetch_add(1, Ordering::SeqCst);
        let a = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Ok);
        match a {
            Answer::Ok => Ok(()),
            Answer::NotApplied(leader) => {
                let mut s = Status::unavailable("not the leader");
                s.metadata_mut()
                    .insert(NOT_APPLIED_HEADER, "1".parse().unwrap());
                if let Some(l) = leader {
                    s.metadata_mut()
                        .insert(LEADER_ADDR_HEADER, l.parse().unwrap());
                }
                Err(s)
            }
            Answer::Unknown => Err(Status::unknown("may or may not have been applied")),
            Answer::Invalid => Err(Status::invalid_argument("key too long")),
        }
    }
}

struct Node(Arc<Script>);

#[tonic::async_trait]
impl RawKv for Node {
    async fn raw_put(&self, _: Request<RawPutRequest>) -> Result<Response<RawPutResponse>, Status> {
        self.0.next()?;
        Ok(Response::new(RawPutResponse {
            result: Some(WriteResult::default()),
        }))
    }
    async fn raw_get(&self, _: Request<RawGetRequest>) -> Result<Response<RawGetResponse>, Status> {
        self.0.next()?;
        Ok(Response::new(RawGetResponse {
            found: true,
            value: b"v".to_vec(),
            ..Default::default()
        }))
    }
    async fn raw_delete(
        &self,
        _: Request<RawDeleteRequest>,
    ) -> Result<Response<RawDeleteResponse>, Status> {
        Err(Status::unimplemented("scripted node"))
    }
    async fn raw_delete_prefix(
        &self,
        _: Request<RawDeletePrefixRequest>,
    ) -> Result<Response<RawDeletePrefixResponse>, Status> {
        Err(Status::unimplemented("scripted node"))
    }
    async fn raw_scan(
        &self,
        _: Request<RawScanRequest>,
    ) -> Result<Response<RawScanResponse>, Status> {
        Err(Status::unimplemented("scripted node"))
    }
    async fn raw_latest_commit_ts(
        &self,
        _: Request<RawLatestCommitTsRequest>,
    ) -> Result<Response<RawLatestCommitTsResponse>, Status> {
        Err(Status::unimplemented("scripted node"))
    }
    async fn get_timestamp(
        &self,
        _: Request<GetTimestampRequest>,
    ) -> Result<Response<GetTimestampResponse>, Status> {
        Err(Status::unimplemented("scripted node"))
    }
}

/// Starts a scripted node; returns its address and script.
async fn node(answers: &[Answer]) -> (String, Arc<Script>) {
    let script = Arc::new(Script::default());
    script
        .answers
        .lock()
        .unwrap()
        .extend(answers.iter().cloned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let svc = RawKvServer::new(Node(script.clone()));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream_of(listener)),
    );
    (addr, script)
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    })
}

fn client(endpoints: &[&str]) -> Client {
    Client::builder(endpoints.iter().map(|s| s.to_string()))
        .deadline(Duration::from_secs(3))
        .build()
        .unwrap()
}

fn received(s: &Script) -> usize {
    s.received.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_write_that_was_not_applied_follows_the_named_leader() {
    let (leader, at_leader) = node(&[]).await;
    let (follower, at_follower) = node(&[Answer::NotApplied(Some(leader.clone()))]).await;
    client(&[&follower]).put("k", "v").await.unwrap();
    assert_eq!(received(&at_follower), 1);
    assert_eq!(received(&at_leader), 1);
}

#[tokio::test]
async fn a_write_with_an_unknown_outcome_is_never_sent_again() {
    let (a, at_a) = node(&[Answer::Unknown]).await;
    let (b, at_b) = node(&[]).await;
    let err = client(&[&a, &b]).put("k", "v").await.unwrap_err();
    assert!(matches!(err, Error::Unknown(_)), "{err:?}");
    assert!(err.may_have_applied());
    assert_eq!(received(&at_a) + received(&at_b), 1);
}

#[tokio::test]
async fn a_read_is_retried_after_an_unknown_outcome() {
    let (a, at_a) = node(&[Answer::Unknown, Answer::Unknown]).await;
    let v = client(&[&a]).get("k", Read::Linearizable).await.unwrap();
    assert_eq!(v.as_deref(), Some(&b"v"[..]));
    assert_eq!(received(&at_a), 3);
}

#[tokio::test]
async fn a_definite_refusal_is_returned_at_once() {
    let (a, at_a) = node(&[Answer::Invalid]).await;
    let err = client(&[&a]).put("k", "v").await.unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err:?}");
    assert!(!err.may_have_applied());
    assert_eq!(received(&at_a), 1);
}

#[tokio::test]
async fn an_unreachable_node_is_skipped_for_writes() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let (live, at_live) = node(&[]).await;
    client(&[&dead, &live]).put("k", "v").await.unwrap();
    assert_eq!(received(&at_live), 1);
}

#[tokio::test]
async fn a_write_nobody_applies_gives_up_at_the_deadline_as_not_applied() {
    let refusals = vec![Answer::NotApplied(None); 1000];
    let (a, at_a) = node(&refusals).await;
    let c = Client::builder([a])
        .deadline(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = c.put("k", "v").await.unwrap_err();
    assert!(matches!(err, Error::GaveUp(_)), "{err:?}");
    assert!(!err.may_have_applied());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(received(&at_a) > 1, "it was retried with backoff");
}

#[tokio::test]
async fn a_read_moves_on_from_a_node_that_hangs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung = listener.local_addr().unwrap().to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let (live, at_live) = node(&[]).await;
    let c = Client::builder([hung, live])
        .deadline(Duration::from_secs(10))
        .read_attempt_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let v = c.get("k", Read::Linearizable).await.unwrap();
    assert_eq!(v.as_deref(), Some(&b"v"[..]));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(received(&at_live), 1);
    holder.abort();
}
