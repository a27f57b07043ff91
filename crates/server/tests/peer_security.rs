//! The peer transport: Raft travels on its own listener under mutual TLS; the client port
//! serves no Raft; a peer without a certificate from the cluster's CA is refused; membership
//! written before members had a peer address migrates.

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
        .append_entries(brisk_proto::RaftMessage { payload: vec![] })
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
    assert!(term(&c, f).await < 1_000);
    // The same request with the cluster's certificate on the peer port is processed (the
    // node refuses the vote only because it has a leader), so the refusals above are the
    // port's doing.
    let mut peer = c.peer_client(f).await.expect("connect to the peer port");
    peer.peer_status(brisk_proto::StatusRequest {})
        .await
        .expect("peer status over mTLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_clusters_certificate_is_refused() {
    let c = Cluster::start(3, &[]);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let addr = c.node(f).peer.clone();
    let before = term(&c, f).await;

    // No TLS at all.
    let plain = match transport_client(&addr, None).await {
        Ok(mut client) => client.vote(hostile_vote()).await.map(|_| ()),
        Err(s) => Err(s),
    };
    assert!(plain.is_err(), "a plaintext vote request was answered");

    // TLS that trusts the cluster's CA but presents no client certificate.
    let ca = std::fs::read(c.certs.join("ca.pem")).unwrap();
    let anonymous = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca));
    let anon = match transport_client(&addr, Some(anonymous)).await {
        Ok(mut client) => client.vote(hostile_vote()).await.map(|_| ()),
        Err(s) => Err(s),
    };
    assert!(
        anon.is_err(),
        "a vote request without a client certificate was answered"
    );

    // A certificate from another CA (trusting the cluster's CA for the server side).
    let foreign = c.tmp.path().join("foreign");
    make_certs(&foreign);
    let foreign_tls = peer_tls(&foreign, "node").ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(c.certs.join("ca.pem")).unwrap()),
    );
    let other = match transport_client(&addr, Some(foreign_tls)).await {
        Ok(mut client) => client.vote(hostile_vote()).await.map(|_| ()),
        Err(s) => Err(s),
    };
    assert!(
        other.is_err(),
        "a vote request with another CA's certificate was answered"
    );
    assert_eq!(
        term(&c, f).await,
        before,
        "a refused vote request changed the term"
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
async fn membership_without_peer_addresses_migrates_to_the_peer_listener() {
    // A cluster whose membership has no peer addresses, as older versions wrote it: its
    // members reach each other on their client ports until each records its peer address.
    let mut c = Cluster::new(3, &[]);
    let current_bootstrap = c.bootstrap.clone();
    c.bootstrap = c
        .nodes
        .iter()
        .map(|n| format!("{}={}", n.id, n.grpc))
        .collect::<Vec<_>>()
        .join(",");
    for id in 1..=3 {
        c.spawn_with_env(id, &[("BRISK_TEST_MEMBERS_WITHOUT_PEER", "1")]);
    }
    c.wait_all_ready().await;
    for i in 0..20 {
        let o = c.cli(&["put", &format!("m{i}"), "v"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    wait_for(
        "every member's peer address recorded",
        Duration::from_secs(30),
        async || {
            let s = c.status(c.leader().await).await?;
            (s.members.len() == 3 && s.members.iter().all(|m| m.peer_addr == c.node(m.id).peer))
                .then_some(())
        },
    )
    .await;
    // Restarted, the members talk on their peer listeners only: the client ports refuse
    // Raft and the cluster still elects, serves and holds every write.
    for id in 1..=3 {
        c.kill9(id);
    }
    c.bootstrap = current_bootstrap;
    for id in 1..=3 {
        c.spawn(id);
    }
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let f = c.running_ids().into_iter().find(|&i| i != leader).unwrap();
    let mut client = transport_client(&c.node(f).grpc, None).await.unwrap();
    let vote = client.vote(hostile_vote()).await.expect_err("vote served");
    assert_eq!(vote.code(), tonic::Code::Unimplemented, "{vote:?}");
    assert!(c.cli(&["put", "after-migration", "ok"]).status.success());
    let o = c.cli(&["get", "after-migration"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\n");
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
}
