//! The peer transport: Raft travels on its own listener under mutual TLS; the client port
//! serves no Raft; a peer without a certificate from the cluster's CA is refused; membership
//! written before members had a peer address keeps working; client-port TLS.

mod common;

use std::time::Duration;

use common::*;

/// A vote request for a candidate with a term far above the cluster's: a node that processes
/// it adopts term 1000, so an unchanged term proves it was never processed.
fn hostile_vote() -> brisk_proto::RaftMessage {
    use brisk_raft::types::{log_id, TypeConfig, Vote};
    let req = openraft::raft::VoteRequest::<TypeConfig>::new(
        Vote::new(1_000, 99),
        Some(log_id(999, 99, 1_000_000)),
    );
    brisk_proto::RaftMessage {
        payload: brisk_raft::codec::encode(&req).expect("encode a vote request"),
        group: 0,
    }
}

/// An append from a leader of term 1000: a node that processes it adopts that term (see
/// [`hostile_vote`]).
fn hostile_append() -> brisk_proto::RaftMessage {
    use brisk_raft::types::{TypeConfig, Vote};
    let req = openraft::raft::AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1_000, 99),
        prev_log_id: None,
        leader_commit: None,
        entries: vec![],
    };
    brisk_proto::RaftMessage {
        payload: brisk_raft::codec::encode(&req).expect("encode an append request"),
        group: 0,
    }
}

/// The status that ends a pipelined-append stream of `messages`, none of which may get a
/// result.
async fn stream_refusal(
    peer: &mut brisk_proto::raft_transport_client::RaftTransportClient<tonic::transport::Channel>,
    messages: Vec<brisk_proto::RaftMessage>,
) -> tonic::Status {
    let mut results = match peer.stream_append(tokio_stream::iter(messages)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return status,
    };
    match results.message().await {
        Ok(Some(result)) => panic!("a result for a message that should be refused: {result:?}"),
        Ok(None) => panic!("the stream ended without an error"),
        Err(status) => status,
    }
}

async fn term(c: &Cluster, id: u64) -> u64 {
    c.status(id).await.expect("status").term
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_port_serves_no_raft_rpcs() {
    let c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let mut client = transport_client(&c.node(f).grpc, None)
        .await
        .expect("connect to the client port");
    let vote = client.vote(hostile_vote()).await.expect_err("vote served");
    assert_eq!(vote.code(), tonic::Code::Unimplemented, "{vote:?}");
    let append = client
        .append_entries(brisk_proto::RaftMessage {
            payload: vec![],
            group: 0,
        })
        .await
        .expect_err("append served");
    assert_eq!(append.code(), tonic::Code::Unimplemented, "{append:?}");
    let reset = client
        .allow_log_reset(brisk_proto::AllowLogResetRequest { node_id: f })
        .await
        .expect_err("log reset served");
    assert_eq!(reset.code(), tonic::Code::Unimplemented, "{reset:?}");
    let status = client
        .peer_status(brisk_proto::StatusRequest {})
        .await
        .expect_err("peer status served");
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    let stream = stream_refusal(&mut client, vec![hostile_append()]).await;
    assert_eq!(stream.code(), tonic::Code::Unimplemented, "{stream:?}");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    let snapshot = client
        .install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect_err("snapshot reception served");
    assert_eq!(snapshot.code(), tonic::Code::Unimplemented, "{snapshot:?}");
    assert!(term(&c, f).await < 1_000);
    // The same request with the cluster's certificate on the peer port is processed (the
    // node refuses the vote only because it has a leader), so the refusals above are the
    // port's doing.
    let mut peer = c.peer_client(f).await.expect("connect to the peer port");
    peer.peer_status(brisk_proto::StatusRequest {})
        .await
        .expect("peer status over mTLS");
    // A message or snapshot for a Raft group the node does not run is refused unread.
    let other_group = brisk_proto::RaftMessage {
        group: 7,
        ..hostile_vote()
    };
    let refused = peer
        .vote(other_group)
        .await
        .expect_err("a vote for group 7");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    assert!(refused.message().contains("no Raft group 7"), "{refused:?}");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(brisk_proto::SnapshotChunk {
        chunk: Some(brisk_proto::snapshot_chunk::Chunk::Header(vec![0; 8])),
        group: 7,
    })
    .await
    .expect("queue a chunk");
    drop(tx);
    let refused = peer
        .install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect_err("a snapshot for group 7");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    let refused = stream_refusal(
        &mut peer,
        vec![brisk_proto::RaftMessage {
            group: 7,
            ..hostile_append()
        }],
    )
    .await;
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    // A message that is no append request ends a pipelined-append stream with a clear error;
    // what follows it on the stream is never processed.
    let garbled = brisk_proto::RaftMessage {
        payload: vec![0xff; 16],
        group: 0,
    };
    let refused = stream_refusal(&mut peer, vec![garbled, hostile_append()]).await;
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(term(&c, f).await < 1_000);
}

/// Asks `addr` for its peer status and then for a vote, with `tls`: Ok when the node
/// answered either.
async fn answered(addr: &str, tls: Option<tonic::transport::ClientTlsConfig>) -> bool {
    let Ok(mut client) = transport_client(addr, tls).await else {
        return false;
    };
    let status = client.peer_status(brisk_proto::StatusRequest {}).await;
    let vote = client.vote(hostile_vote()).await;
    status.is_ok() || vote.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_clusters_certificate_is_refused() {
    let c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let addr = c.node(f).peer.clone();
    let cluster_ca =
        || tonic::transport::Certificate::from_pem(std::fs::read(c.certs.join("ca.pem")).unwrap());

    // The control: with the cluster's certificate the node answers.
    let mut member = c
        .peer_client(f)
        .await
        .expect("connect with the member certificate");
    member
        .peer_status(brisk_proto::StatusRequest {})
        .await
        .expect("peer status with the member certificate");

    // No TLS at all.
    assert!(
        !answered(&addr, None).await,
        "a plaintext request was answered"
    );
    // TLS that trusts the cluster's CA but presents no client certificate.
    let anonymous = tonic::transport::ClientTlsConfig::new().ca_certificate(cluster_ca());
    assert!(
        !answered(&addr, Some(anonymous)).await,
        "a request without a client certificate was answered"
    );
    // A client certificate from another CA (the server's certificate is trusted, so only
    // the server's check of the client certificate can refuse it).
    let foreign = c.tmp.path().join("foreign");
    make_certs(&foreign);
    let foreign_client = peer_tls(&foreign, "node").ca_certificate(cluster_ca());
    assert!(
        !answered(&addr, Some(foreign_client)).await,
        "a request with another CA's client certificate was answered"
    );
    assert!(
        term(&c, f).await < 1_000,
        "a refused vote request was processed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_cas_certificate_cannot_join() {
    let mut c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    assert!(c.cli(&["put", "before", "1"]).status.success());
    let foreign = c.tmp.path().join("foreign");
    make_certs(&foreign);
    let cert = foreign.join("node.pem");
    let key = foreign.join("node.key");
    let ca = foreign.join("ca.pem");
    let via = c.node(1).grpc.clone();
    let id = c.add_node(&[
        "--join",
        &via,
        "--peer-tls-cert",
        cert.to_str().unwrap(),
        "--peer-tls-key",
        key.to_str().unwrap(),
        "--peer-tls-ca",
        ca.to_str().unwrap(),
    ]);
    // The join request goes to the client port, so the leader adds it as a learner; every
    // replication attempt then fails the TLS handshake (both directions distrust each other).
    wait_for(
        "the intruder to be listed as a learner",
        Duration::from_secs(20),
        async || {
            let s = c.status(leader).await?;
            s.members.iter().any(|m| m.id == id).then_some(())
        },
    )
    .await;
    assert!(c.cli(&["put", "after", "2"]).status.success());
    let commit = c.status(leader).await.unwrap().commit_index;
    for &m in &[1, 2, 3] {
        c.wait_applied(m, commit).await;
    }
    // The members applied the new entries; give the intruder five heartbeat rounds' worth
    // of chances (it would have had them in milliseconds with the right certificate).
    for _ in 0..25 {
        let s = c.status(id).await.expect("the intruder answers status");
        assert_eq!(
            s.applied_index, 0,
            "a node with another CA's certificate received entries"
        );
        assert_eq!(
            s.term, 0,
            "a node with another CA's certificate heard a leader"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_recorded_without_peer_addresses_are_reached_through_the_bootstrap_list() {
    // A membership as older versions wrote it (no peer addresses): the members find each
    // other's peer listeners through their --bootstrap lists, also across a full restart,
    // and a member added now has its peer address recorded.
    let mut c = Cluster::new(3, &[]);
    for id in 1..=3 {
        c.spawn_with_env(id, &[("BRISK_TEST_MEMBERS_WITHOUT_PEER", "1")]);
    }
    c.wait_all_ready().await;
    let s = c.status(c.leader().await).await.unwrap();
    assert!(
        s.members.iter().all(|m| m.peer_addr.is_empty()),
        "the members were recorded with peer addresses: {s:?}"
    );
    for i in 0..20 {
        let o = c.cli(&["put", &format!("m{i}"), "v"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for id in 1..=3 {
        c.kill9(id);
    }
    for id in 1..=3 {
        c.spawn(id);
    }
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let mut client = transport_client(&c.node(f).grpc, None).await.unwrap();
    let vote = client.vote(hostile_vote()).await.expect_err("vote served");
    assert_eq!(vote.code(), tonic::Code::Unimplemented, "{vote:?}");
    assert!(c.cli(&["put", "after-restart", "ok"]).status.success());
    let mut raw = c.raw(f).await;
    for i in 0..20 {
        assert_eq!(
            get(&mut raw, &format!("m{i}"), true)
                .await
                .unwrap()
                .as_deref(),
            Some("v")
        );
    }
    let via = c.node(1).grpc.clone();
    let id = c.add_node(&["--join", &via]);
    let commit = c.status(leader).await.unwrap().commit_index;
    c.wait_applied(id, commit).await;
    let s = c.status(leader).await.unwrap();
    let joined = s.members.iter().find(|m| m.id == id).unwrap();
    assert_eq!(joined.peer_addr, c.node(id).peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_port_can_serve_tls() {
    let mut c = Cluster::new(3, &[]);
    let (node_pem, node_key) = (c.certs.join("node.pem"), c.certs.join("node.key"));
    for n in &mut c.nodes {
        n.args.extend([
            "--tls-cert".to_string(),
            node_pem.display().to_string(),
            "--tls-key".to_string(),
            node_key.display().to_string(),
        ]);
    }
    for id in 1..=3 {
        c.spawn(id);
    }
    c.wait_all_ready().await;
    let ca = c.certs.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let on = |id: u64, args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .args(["--endpoints", &c.node(id).grpc])
            .output()
            .unwrap()
    };
    // A write through every node: the followers forward theirs to the leader over TLS.
    for id in 1..=3u64 {
        let o = on(id, &["put", &format!("k{id}"), "v", "--cacert", ca]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for id in 1..=3u64 {
        let other = id % 3 + 1;
        let o = on(other, &["get", &format!("k{id}"), "--cacert", ca]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "v\n");
    }
    // A plaintext client cannot talk to a TLS client port.
    let o = on(1, &["get", "k1", "--timeout", "2"]);
    assert!(!o.status.success(), "a plaintext client was served");
}
