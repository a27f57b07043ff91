//! `brisk serve`: one node.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use backon::{ExponentialBuilder, Retryable};
use brisk_grpc::{AdminService, RawKvService, TxnService};
use brisk_proto::raft_admin_server::RaftAdminServer;
use brisk_proto::raft_transport_server::RaftTransportServer;
use brisk_proto::raw_kv_server::RawKvServer;
use brisk_proto::transactional_kv_server::TransactionalKvServer;
use brisk_raft::node::NodeConfig;
use brisk_raft::peer::PeerConnector;
use brisk_raft::state_machine::ApplySync;
use brisk_raft::transport::RaftTransportService;
use brisk_raft::RaftNode;
use brisk_service::{Limits, Service};
use tokio::net::TcpListener;
use tonic::transport::ClientTlsConfig;

use crate::config::{FsmSync, ReadPolicyArg, ServeArgs, ServeConfig};

/// Client requests and Raft messages up to this size are accepted.
use brisk_proto::MAX_MESSAGE_BYTES;

/// Logs to stderr with `filter` (the settings already weighed `RUST_LOG` against `--log`).
pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::new(filter);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Holds the data directory's lock for the life of the process.
pub struct DataDirLock {
    _file: File,
}

/// Takes an exclusive lock on `DATA_DIR/LOCK`, so two processes never share a data dir.
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join("LOCK");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let who = if holder.is_empty() {
            "another process".to_string()
        } else {
            format!("process {holder}")
        };
        return Err(anyhow!(
            "data directory {} is locked by {who}; is another brisk node running on it?",
            dir.display()
        ));
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.sync_all()?;
    Ok(DataDirLock { _file: file })
}

fn node_config(c: &ServeConfig, peer_tls: Option<ClientTlsConfig>) -> NodeConfig {
    let mut n = NodeConfig::new(
        c.id,
        c.data_dir.clone(),
        c.advertise.clone(),
        c.peer_advertise.clone(),
    );
    n.connector = PeerConnector::new(peer_tls, specific_ip(&c.peer_listen));
    n.apply_sync = match c.fsm_sync {
        FsmSync::Sync => ApplySync::EveryRun,
        FsmSync::Periodic => {
            ApplySync::Every(std::time::Duration::from_millis(c.fsm_sync_interval_ms))
        }
        FsmSync::Nosync => ApplySync::Never,
    };
    n.snapshot_every = c.snapshot_every;
    n.snapshot_keep = c.snapshot_keep;
    n.logs_to_keep = c.logs_to_keep;
    n.hlc_window_ms = c.hlc_window_ms;
    n.max_snapshot_bytes = c.max_snapshot_bytes;
    n.cold_start = c.cold_start;
    n.heartbeat_ms = c.heartbeat_ms;
    n.election_min_ms = c.election_timeout_ms;
    n.election_max_ms = c.election_timeout_ms * 2;
    n.read_policy = match c.read_policy {
        ReadPolicyArg::ReadIndex => openraft::ReadPolicy::ReadIndex,
        ReadPolicyArg::Lease => openraft::ReadPolicy::LeaseRead,
    };
    n.ready_lag = c.ready_lag;
    n.peers = c
        .bootstrap
        .iter()
        .flatten()
        .filter(|(id, _)| **id != c.id)
        .map(|(id, node)| (*id, node.clone()))
        .collect();
    n
}

/// Accepted connections with Nagle's algorithm off. tonic applies its `tcp_nodelay` setting
/// only to listeners it binds itself, and with Nagle on, a small response waiting for the
/// peer's delayed ACK stalls for about 40 ms.
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The IP of `addr` when it names one specific address (not a host name, not 0.0.0.0 or
/// [::]): outgoing connections to members leave from it, so firewalls can match members.
fn specific_ip(addr: &str) -> Option<std::net::IpAddr> {
    addr.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
}

/// SIGTERM and Ctrl-C, listened for from start to exit, so a second one is never missed.
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn new() -> Self {
        StopSignals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(term) = &mut self.term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(args: ServeArgs, process_started: Instant) -> Result<ExitCode> {
    // Invalid settings are a usage error (exit 2), like an invalid flag, whichever layer
    // (flag, environment, config file) gave them.
    let cfg = match args.resolve() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("brisk: {e:#}");
            return Ok(crate::cli::Exit::Usage.into());
        }
    };
    init_tracing(&cfg.log);
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let prometheus = crate::metrics::install()?;

    let (peer_server_tls, peer_client_tls) = match &cfg.peer_tls {
        Some(files) => {
            let (server, client) = crate::tls::peer(files)?;
            (Some(server), Some(client))
        }
        None => {
            tracing::warn!(
                peer_listen = %cfg.peer_listen,
                "--peer-insecure: the peer transport runs without TLS; anyone who reaches it can act as a member"
            );
            (None, None)
        }
    };
    let (client_server_tls, forward_tls) = match &cfg.client_tls {
        Some(files) => {
            let (server, client) = crate::tls::client(files)?;
            (Some(server), Some(client))
        }
        None => (None, None),
    };

    let starting = || format!("starting node {} in {}", cfg.id, cfg.data_dir.display());
    let gated = RaftNode::pass_gate(node_config(&cfg, peer_client_tls), process_started)
        .await
        .with_context(starting)?;
    // I8: the ports bind right after the gate, before Raft re-applies the log tail: a node
    // answers (not ready yet) as soon as it knows it will serve from its store.
    let grpc_listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding gRPC address {}", cfg.listen))?;
    let peer_listener = TcpListener::bind(&cfg.peer_listen)
        .await
        .with_context(|| format!("binding peer address {}", cfg.peer_listen))?;
    let http_listener = TcpListener::bind(&cfg.http)
        .await
        .with_context(|| format!("binding HTTP address {}", cfg.http))?;
    let redis_listener = match &cfg.redis {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding Redis address {addr}"))?,
        ),
        None => None,
    };
    let http_bound = http_listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let node = gated.start_raft().await.with_context(starting)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let limits = Limits {
        max_key_bytes: cfg.max_key_bytes,
        max_value_bytes: cfg.max_value_bytes,
        max_entry_bytes: cfg.max_entry_bytes,
    };
    let service = Arc::new(
        Service::new(node.clone(), limits)
            .with_forwarding(forward_tls.clone(), specific_ip(&cfg.listen))
            .with_http_addr(reachable_http_addr(&http_bound)),
    );
    let transport = RaftTransportService::new(
        node.raft().clone(),
        node.snapshots().clone(),
        cfg.max_snapshot_bytes,
        node.recovering_flag(),
        node.vote_grace(),
        node.config().read_policy.clone(),
    )
    .with_max_snapshot_receptions(cfg.max_snapshot_receptions);
    // Raft is served on the peer listener only (the client port answers UNIMPLEMENTED).
    let mut peer_server = tonic::transport::Server::builder().tcp_nodelay(true);
    if let Some(tls) = peer_server_tls {
        peer_server = peer_server
            .tls_config(tls)
            .context("configuring the peer listener's TLS")?;
    }
    let peer_grpc = peer_server.add_service(
        RaftTransportServer::new(transport)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    );
    let mut client_server = tonic::transport::Server::builder().tcp_nodelay(true);
    if let Some(tls) = client_server_tls {
        client_server = client_server
            .tls_config(tls)
            .context("configuring the client port's TLS")?;
    }
    // grpc.health.v1: SERVING exactly when /readyz says 200 (see `report_health`).
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    tokio::spawn(report_health(node.clone(), health));
    let reflection = reflection_builder()
        .build_v1()
        .context("building the gRPC reflection service")?;
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .context("building the gRPC reflection service (v1alpha)")?;
    let grpc = client_server
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(
            RawKvServer::new(RawKvService {
                service: service.clone(),
            })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            TransactionalKvServer::new(TxnService {
                service: service.clone(),
            })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(RaftAdminServer::new(AdminService {
            service: service.clone(),
        }));
    let mut grpc_stop = stop_rx.clone();
    let grpc_task = tokio::spawn(grpc.serve_with_incoming_shutdown(
        incoming(grpc_listener),
        async move {
            let _ = grpc_stop.changed().await;
        },
    ));
    let (peer_stop_tx, peer_stop_rx) = tokio::sync::watch::channel(false);
    let mut peer_stop = peer_stop_rx;
    let peer_task = tokio::spawn(peer_grpc.serve_with_incoming_shutdown(
        incoming(peer_listener),
        async move {
            let _ = peer_stop.changed().await;
        },
    ));
    let redis_task = redis_listener.map(|l| {
        tokio::spawn(brisk_redis::serve(
            l,
            service.clone(),
            cfg.redis_limits.clone(),
            stop_rx.clone(),
        ))
    });
    let http_task = tokio::spawn(crate::http::serve(
        http_listener,
        node.clone(),
        prometheus,
        stop_rx.clone(),
    ));

    tracing::info!(
        id = cfg.id,
        grpc = %cfg.listen,
        peer = %cfg.peer_listen,
        peer_tls = cfg.peer_tls.is_some(),
        client_tls = cfg.client_tls.is_some(),
        http = %cfg.http,
        redis = cfg.redis.as_deref().unwrap_or("off"),
        data_dir = %cfg.data_dir.display(),
        fsm_sync = cfg.fsm_sync.as_str(),
        fsm_sync_interval_ms = cfg.fsm_sync_interval_ms,
        "serving"
    );

    if let Some(members) = &cfg.bootstrap {
        let mut members = members.clone();
        // Test builds can record the members without their peer addresses, as versions
        // before the peer listener did, to exercise running such a cluster.
        if cfg!(feature = "crash-points")
            && std::env::var_os("BRISK_TEST_MEMBERS_WITHOUT_PEER").is_some()
        {
            for n in members.values_mut() {
                n.peer_addr = None;
            }
        }
        node.bootstrap(members).await?;
    }
    if let Some(join) = cfg.join.clone() {
        tokio::spawn(join_cluster(node.clone(), join, forward_tls.clone()));
    }
    check_own_addresses(&node);
    node.spawn_lease_task();
    tokio::spawn(watch_ready(node.clone()));
    // Compactions were paused for the start (fast open); a node that takes long to turn ready
    // (no leader yet) must not pile up unflushed levels either.
    let late = node.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        late.resume_compactions();
    });

    // Listened for once the node serves (a stop during start-up keeps the default action:
    // the process ends at once), and kept for the second signal.
    let mut stops = StopSignals::new();
    stops.next().await;
    let limit = cfg.shutdown_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    tracing::info!(
        timeout_s = limit.as_secs_f64(),
        "stopping gracefully (a second SIGTERM exits at once)"
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tokio::spawn(async move {
        tokio::select! {
            _ = stops.next() => tracing::warn!("second stop signal: exiting at once"),
            _ = tokio::time::sleep_until(deadline) => tracing::warn!("the graceful stop took longer than --shutdown-timeout: exiting at once"),
        }
        std::process::exit(1);
    });
    // Every stage gets part of what is left before the deadline, so a clean stop ends
    // before the watchdog fires. Leadership moves first, while this node still forwards and
    // serves what is in flight; then the client port closes (in-flight requests finish),
    // then Raft and the peer port.
    let left = |share: f64| {
        deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .mul_f64(share)
    };
    let new_leader = node.drain(left(0.6)).await;
    tracing::info!(?new_leader, "client work drained");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(left(0.5), grpc_task).await;
    if let Some(t) = redis_task {
        let _ = tokio::time::timeout(left(0.5), t).await;
    }
    let _ = tokio::time::timeout(left(0.6), node.shutdown()).await;
    let _ = peer_stop_tx.send(true);
    let _ = tokio::time::timeout(left(0.5), peer_task).await;
    let _ = tokio::time::timeout(left(0.5), http_task).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The HTTP address to report to others: the bound one, unless it names no host (0.0.0.0,
/// [::]), which tells a remote caller nothing, so none is reported.
fn reachable_http_addr(http: &str) -> String {
    match http.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() || a.port() == 0 => String::new(),
        _ => http.to_string(),
    }
}

/// Logs and records when the node turns ready (I8), with the time since process start.
async fn watch_ready(node: Arc<RaftNode>) {
    node.wait_readiness(true, Duration::from_millis(20)).await;
    let since_start = node.started_at().elapsed();
    let phases = node.group_metrics();
    phases.cold_start_phase("replay", node.raft_started().elapsed());
    phases.cold_start_phase("ready", since_start);
    // One line with the whole start (I4): decision, A, X and every phase.
    let g = node.gate();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    tracing::info!(
        outcome = %g.outcome,
        reason = %g.reason,
        applied_index = ?g.applied_index,
        snapshot_index = ?g.snapshot_index,
        gap = g.applied_index_gap(),
        open_ms = ms(g.open),
        gate_ms = ms(g.gate),
        verify_ms = ms(g.verify),
        restore_ms = ms(g.restore),
        replay_ms = ms(node.raft_started().elapsed()),
        ready_ms = ms(since_start),
        "ready"
    );
    // Under systemd's Type=notify the unit turns active now, when /readyz would say
    // 200 (without NOTIFY_SOCKET this does nothing).
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "telling the service manager the node is ready failed");
    }
    node.resume_compactions();
}

/// The services on the client port, by full gRPC name (the peer transport, in the same
/// package, lives on the peer port).
const CLIENT_SERVICES: [&str; 3] = [
    <RawKvServer<RawKvService> as tonic::server::NamedService>::NAME,
    <TransactionalKvServer<TxnService> as tonic::server::NamedService>::NAME,
    <RaftAdminServer<AdminService> as tonic::server::NamedService>::NAME,
];

/// gRPC server reflection for the client port's services, so `grpcurl` and other tools
/// discover the API without the .proto file: v1, and v1alpha for tools that still ask it.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(brisk_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection");
    for name in CLIENT_SERVICES {
        builder = builder.with_service_name(name);
    }
    builder
}

/// Keeps the gRPC health status of the node ("") and of each client service in step with
/// readiness: NOT_SERVING while starting, catching up, recovering or draining.
async fn report_health(node: Arc<RaftNode>, health: tonic_health::server::HealthReporter) {
    let services = std::iter::once("").chain(CLIENT_SERVICES);
    let mut last = None;
    loop {
        let ready = node.is_ready();
        if last != Some(ready) {
            let status = if ready {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for name in services.clone() {
                health.set_service_status(name, status).await;
            }
            last = Some(ready);
        }
        node.wait_readiness(!ready, Duration::from_millis(50)).await;
    }
}

/// A member's addresses are fixed in the membership: a node started with other ones is
/// unreachable at the new ones (moving a member is remove-and-add), so say so.
fn check_own_addresses(node: &RaftNode) {
    let m = node.metrics();
    let Some(me) = m
        .membership_config
        .membership()
        .get_node(&node.id())
        .cloned()
    else {
        return;
    };
    let peer = me.peer_addr.as_deref();
    if me.addr != node.config().advertise_addr
        || peer.is_some_and(|p| p != node.config().peer_advertise_addr)
    {
        tracing::error!(
            recorded = %me,
            advertise = %node.config().advertise_addr,
            peer_advertise = %node.config().peer_advertise_addr,
            "this node's addresses differ from those its membership entry records; members reach it at the recorded ones (to move a member, remove it and add it again)"
        );
    }
}

/// `--join`: ask the cluster (through any member) to add this node as a learner, until it
/// succeeds or this node already is a member; attempts are spaced 200 ms doubling to 5 s.
async fn join_cluster(node: Arc<RaftNode>, via: String, tls: Option<ClientTlsConfig>) {
    let pauses = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times();
    let joined = (|| ask_to_join(&node, &via, tls.as_ref()))
        .retry(pauses)
        .notify(|e, pause| tracing::warn!(via = %via, error = %e, ?pause, "join attempt failed"))
        .await;
    match joined {
        Ok(Joined::AlreadyMember) => tracing::info!(via = %via, "joined the cluster as a member"),
        Ok(Joined::AddedAsLearner) => tracing::info!(via = %via, "added as a learner"),
        // The retries above have no bound, so this is not reached.
        Err(e) => tracing::error!(via = %via, error = %e, "gave up joining the cluster"),
    }
}

enum Joined {
    /// The membership this node follows already lists it.
    AlreadyMember,
    /// The cluster took it in as a learner.
    AddedAsLearner,
}

#[derive(Debug, thiserror::Error)]
enum JoinError {
    #[error("no TLS handshake within 5 s")]
    Handshake,
    #[error("cannot reach the member: {0}")]
    Unreachable(#[from] tonic::transport::Error),
    #[error("{}", .0.message())]
    Refused(tonic::Status),
}

/// One attempt to join through `via`.
async fn ask_to_join(
    node: &RaftNode,
    via: &str,
    tls: Option<&ClientTlsConfig>,
) -> Result<Joined, JoinError> {
    use brisk_proto::raft_admin_client::RaftAdminClient;
    let m = node.metrics();
    if m.membership_config
        .membership()
        .get_node(&node.id())
        .is_some()
    {
        return Ok(Joined::AlreadyMember);
    }
    let req = brisk_proto::AddLearnerRequest {
        id: node.id(),
        addr: node.config().advertise_addr.clone(),
        peer_addr: node.config().peer_advertise_addr.clone(),
    };
    let ch = tokio::time::timeout(Duration::from_secs(5), crate::cli::connect_tls(via, tls))
        .await
        .map_err(|_| JoinError::Handshake)??;
    RaftAdminClient::new(ch)
        .add_learner(req)
        .await
        .map_err(JoinError::Refused)?;
    Ok(Joined::AddedAsLearner)
}
