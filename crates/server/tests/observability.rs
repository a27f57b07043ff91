//! What operators' tools read from a node: the Prometheus page (checked with `promtool`) and
//! gRPC server reflection.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// Runs `promtool check metrics` on a page; panics with its findings when it objects.
fn promtool_accepts(page: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's `prometheus` package; scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(page.as_bytes())
        .expect("write the page to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool check metrics objects:\n{}{}\n--- page ---\n{page}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn samples(page: &str) -> Vec<prometheus_parse::Sample> {
    prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_string())))
        .expect("the page parses as Prometheus text")
        .samples
}

fn value(s: &prometheus_parse::Sample) -> Option<f64> {
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => Some(v),
        _ => None,
    }
}

/// The states of `brisk_raft_state` that are 1 on a page.
fn states(page: &str) -> Vec<String> {
    samples(page)
        .iter()
        .filter(|s| s.metric == "brisk_raft_state" && value(s) == Some(1.0))
        .filter_map(|s| s.labels.get("state").map(str::to_string))
        .collect()
}

/// The page follows Prometheus naming (promtool's lint), carries no sentinel values, names the
/// role as a state set and the build, and leaves the leader out while there is none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_report_status_without_sentinels() {
    let mut c = Cluster::new(3, &[]);
    c.spawn(1);
    // Alone, node 1 has no leader: no leader id at all, has_leader 0.
    let alone = wait_for(
        "node 1's metrics page",
        Duration::from_secs(30),
        async || {
            let page = c.metrics(1);
            (!page.is_empty()).then_some(page)
        },
    )
    .await;
    promtool_accepts(&alone);
    assert_eq!(
        metric_value(&alone, "brisk_raft_has_leader", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&alone, "brisk_raft_leader_id", &[]),
        None,
        "{alone}"
    );
    assert_eq!(states(&alone).len(), 1, "{alone}");

    c.spawn(2);
    c.spawn(3);
    c.wait_all_ready().await;
    let leader = c.leader().await;
    let mut client = c.raw(leader).await;
    for i in 0..20 {
        put(&mut client, &format!("k{i}"), "v").await.expect("put");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    for id in 1..=3 {
        let page = c.metrics(id);
        promtool_accepts(&page);
        for s in samples(&page) {
            if let Some(v) = value(&s) {
                assert!(
                    v >= 0.0,
                    "{} {:?} = {v}: a sentinel value",
                    s.metric,
                    s.labels
                );
            }
        }
        let info = samples(&page)
            .into_iter()
            .find(|s| s.metric == "brisk_build_info")
            .expect("brisk_build_info");
        assert_eq!(info.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
        assert!(!info.labels.get("commit").unwrap_or_default().is_empty());
        let expected_state = if id == leader { "leader" } else { "follower" };
        assert_eq!(states(&page), vec![expected_state.to_string()], "node {id}");
        let group = [("group", "0")];
        assert_eq!(
            metric_value(&page, "brisk_raft_leader_id", &group),
            Some(leader as f64),
            "node {id}"
        );
        assert!(metric_value(&page, "brisk_raft_applied_index", &group) >= Some(20.0));
        // The lease ceiling is a Unix time in seconds: near now, not milliseconds.
        let ceiling = metric_value(&page, "brisk_hlc_ceiling_timestamp_seconds", &group)
            .expect("the lease ceiling");
        assert!(
            (ceiling - now).abs() < 3600.0,
            "ceiling {ceiling}, now {now}"
        );
        // Recorded per-group series carry the group too.
        assert!(
            metric_value(&page, "brisk_applied_entries_total", &group) >= Some(20.0),
            "node {id}"
        );
        assert_eq!(
            metric_value(&page, "brisk_cold_start_total", &group),
            Some(1.0),
            "node {id}"
        );
    }
}

/// gRPC server reflection on the client port: a tool with no .proto lists the client
/// services (and not the peer transport) and fetches their descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_reflection_lists_and_describes_the_client_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut c = Cluster::new(3, &[]);
    c.spawn(1);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", c.node(1).grpc))
        .expect("endpoint")
        .connect_lazy();
    let mut reflection = ServerReflectionClient::new(channel);
    let ask = |request: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let requests = vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "brisk.v1.RawKV".into(),
        )),
    ];
    let mut responses = wait_for("a reflection stream", Duration::from_secs(30), async || {
        reflection
            .server_reflection_info(tokio_stream::iter(requests.clone()))
            .await
            .ok()
    })
    .await
    .into_inner();
    let mut answers = Vec::new();
    while let Some(r) = responses.message().await.expect("a reflection response") {
        answers.push(r.message_response.expect("a response body"));
    }
    assert_eq!(answers.len(), 2, "{answers:?}");
    let MessageResponse::ListServicesResponse(list) = &answers[0] else {
        panic!("not a service list: {:?}", answers[0]);
    };
    let mut names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "brisk.v1.RaftAdmin",
            "brisk.v1.RawKV",
            "brisk.v1.TransactionalKV",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ]
    );
    let MessageResponse::FileDescriptorResponse(files) = &answers[1] else {
        panic!("not a descriptor: {:?}", answers[1]);
    };
    let described = files
        .file_descriptor_proto
        .iter()
        .any(|f| f.windows(b"RawKV".len()).any(|w| w == b"RawKV"));
    assert!(described, "no descriptor names RawKV");
    // An unknown symbol ends the stream with NOT_FOUND.
    let unknown = ask(MessageRequest::FileContainingSymbol(
        "brisk.v1.NoSuchService".into(),
    ));
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([unknown]))
        .await
        .expect("a reflection stream")
        .into_inner();
    let refused = stream
        .message()
        .await
        .expect_err("an unknown symbol was described");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");

    // Tools that still speak v1alpha get the same answer.
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", c.node(1).grpc))
        .expect("endpoint")
        .connect_lazy();
    let list = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let answer = AlphaClient::new(channel)
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .expect("a v1alpha reflection stream")
        .into_inner()
        .message()
        .await
        .expect("a v1alpha answer")
        .and_then(|r| r.message_response);
    let Some(AlphaResponse::ListServicesResponse(list)) = answer else {
        panic!("not a service list: {answer:?}");
    };
    assert!(
        list.service.iter().any(|s| s.name == "brisk.v1.RawKV"),
        "{list:?}"
    );
}
