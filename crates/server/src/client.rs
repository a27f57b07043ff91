//! Client commands. Any node is accepted; writes and linearizable reads are forwarded to the
//! leader by the server, and a redirect (UNAVAILABLE with the leader's address) is followed.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use brisk_client::{Client, Idempotence};
use brisk_proto::raft_admin_client::RaftAdminClient;
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::transactional_kv_client::TransactionalKvClient;
use brisk_proto::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

#[derive(clap::Args, Clone, Debug)]
pub struct ConnArgs {
    /// Nodes to contact, HOST:PORT[,HOST:PORT...]; any member works. Default: the nodes in
    /// ./brisk-data/cluster.json if present, else 127.0.0.1:7001.
    #[arg(long, env = "BRISK_ENDPOINTS", value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Give up after retrying unavailable nodes for this long, seconds.
    #[arg(long, default_value_t = 15.0)]
    pub timeout: f64,
    /// PEM CA certificate to verify the nodes' client-port TLS certificates with; connects
    /// over TLS when given.
    #[arg(long, env = "BRISK_CACERT")]
    pub cacert: Option<std::path::PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    pub key: String,
    pub value: String,
}

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    pub key: String,
    /// Serve from the node reached without a read-index round (may be stale).
    #[arg(long)]
    pub stale: bool,
    /// Read at this timestamp instead of the latest.
    #[arg(long)]
    pub at_ts: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct KeyArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    pub key: String,
}

#[derive(clap::Args, Debug)]
pub struct PrefixArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    pub prefix: String,
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long)]
    pub start: Option<String>,
    #[arg(long)]
    pub end: Option<String>,
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    #[arg(long)]
    pub stale: bool,
    #[arg(long)]
    pub at_ts: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct TxnArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// KEY=VALUE to write (repeatable).
    #[arg(long = "put")]
    pub puts: Vec<String>,
    /// KEY to delete (repeatable).
    #[arg(long = "delete")]
    pub deletes: Vec<String>,
    /// KEY to read at start_ts and keep in the read set: the commit aborts if it changed.
    #[arg(long = "read")]
    pub reads: Vec<String>,
    /// Use this start timestamp instead of calling Begin.
    #[arg(long)]
    pub start_ts: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct AddNodeArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub id: u64,
    /// The new node's client (gRPC API) address.
    #[arg(long)]
    pub addr: String,
    /// The new node's peer (Raft transport) address.
    #[arg(long)]
    pub peer_addr: String,
}

#[derive(clap::Args, Debug)]
pub struct AddVoterArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub id: u64,
    /// The node's client address, to add it as a learner first.
    #[arg(long, requires = "peer_addr")]
    pub addr: Option<String>,
    /// The node's peer address (with --addr).
    #[arg(long, requires = "addr")]
    pub peer_addr: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct IdArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub id: u64,
}

#[derive(clap::Args, Debug)]
pub struct TransferArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub to: u64,
}

#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Snapshot every member, not just the node reached.
    #[arg(long)]
    pub all: bool,
}

impl ConnArgs {
    pub fn resolved_endpoints(&self) -> Vec<String> {
        if !self.endpoints.is_empty() {
            return self
                .endpoints
                .iter()
                .map(|s| s.trim().to_string())
                .collect();
        }
        if let Ok(text) = std::fs::read_to_string("brisk-data/cluster.json") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                let eps: Vec<String> = v["nodes"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|n| n["grpc"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                if !eps.is_empty() {
                    return eps;
                }
            }
        }
        vec!["127.0.0.1:7001".to_string()]
    }
}

impl ConnArgs {
    /// TLS settings from `--cacert` (None: plaintext).
    pub fn tls(&self) -> Result<Option<ClientTlsConfig>> {
        let Some(path) = &self.cacert else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .with_context(|| format!("reading CA certificate {}", path.display()))?;
        Ok(Some(
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
        ))
    }
}

/// A plaintext connection to a node's client port.
pub async fn connect(addr: &str) -> Result<Channel, tonic::transport::Error> {
    connect_tls(addr, None).await
}

/// A connection to a node's client port, over TLS when `tls` is set.
pub async fn connect_tls(
    addr: &str,
    tls: Option<&ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        ep = ep.tls_config(tls.clone())?;
    }
    ep.connect().await
}

/// Calls `f` on the cluster through [`brisk_client::Client`]: unreachable nodes are
/// skipped, redirects followed, and failures that applied nothing retried with backoff until
/// `--timeout`; a write whose outcome is unknown is reported as such, never retried.
pub async fn call<T, F, Fut>(conn: &ConnArgs, kind: Idempotence, f: F) -> Result<T>
where
    F: FnMut(Channel) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    let client = Client::builder(conn.resolved_endpoints())
        .tls(conn.tls()?)
        .deadline(Duration::from_secs_f64(conn.timeout))
        .build()?;
    client.call(kind, f).await.map_err(|e| match e {
        brisk_client::Error::Rejected(s) => anyhow!("{}: {}", code_name(s.code()), s.message()),
        brisk_client::Error::Unknown(s) => anyhow!(
            "outcome unknown (the request may or may not have been applied): {}",
            s.message()
        ),
        brisk_client::Error::GaveUp(s) => {
            anyhow!("giving up after --timeout: {}", s.message())
        }
        other => anyhow::Error::new(other),
    })
}

/// The name of a definite refusal's code (UNKNOWN, INTERNAL and timeouts are not refusals:
/// brisk-client reports them as unknown outcomes).
fn code_name(c: Code) -> &'static str {
    match c {
        Code::InvalidArgument => "invalid argument",
        Code::NotFound => "not found",
        Code::FailedPrecondition => "failed precondition",
        Code::ResourceExhausted => "resource exhausted",
        _ => "error",
    }
}

fn print_write(r: Option<WriteResult>) -> Result<ExitCode> {
    let r = r.ok_or_else(|| anyhow!("server returned no write result"))?;
    println!("OK commit_ts={} log_index={}", r.commit_ts, r.log_index);
    Ok(ExitCode::SUCCESS)
}

pub async fn put(a: PutArgs) -> Result<ExitCode> {
    let req = RawPutRequest {
        key: a.key.into_bytes(),
        value: a.value.into_bytes(),
    };
    let r = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_put(req).await }
    })
    .await?;
    print_write(r.result)
}

pub async fn get(a: GetArgs) -> Result<ExitCode> {
    let req = RawGetRequest {
        key: a.key.into_bytes(),
        at_ts: a.at_ts.unwrap_or(0),
        stale: a.stale,
    };
    let r = call(&a.conn, Idempotence::Read, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_get(req).await }
    })
    .await?;
    if !r.found {
        return Ok(ExitCode::from(1));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&r.value)?;
    out.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(a: KeyArgs) -> Result<ExitCode> {
    let req = RawDeleteRequest {
        key: a.key.into_bytes(),
    };
    let r = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_delete(req).await }
    })
    .await?;
    print_write(r.result)
}

pub async fn delete_prefix(a: PrefixArgs) -> Result<ExitCode> {
    let req = RawDeletePrefixRequest {
        prefix: a.prefix.into_bytes(),
    };
    let r = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_delete_prefix(req).await }
    })
    .await?;
    print_write(r.result)
}

pub async fn scan(a: ScanArgs) -> Result<ExitCode> {
    let req = RawScanRequest {
        start: a.start.unwrap_or_default().into_bytes(),
        end: a.end.unwrap_or_default().into_bytes(),
        limit: a.limit,
        at_ts: a.at_ts.unwrap_or(0),
        stale: a.stale,
        prefix: a.prefix.unwrap_or_default().into_bytes(),
    };
    let r = call(&a.conn, Idempotence::Read, |ch| {
        let req = req.clone();
        async move { RawKvClient::new(ch).raw_scan(req).await }
    })
    .await?;
    let mut out = std::io::stdout().lock();
    let last = r
        .pairs
        .last()
        .map(|p| String::from_utf8_lossy(&p.key).to_string());
    for p in r.pairs {
        out.write_all(&p.key)?;
        out.write_all(b"\t")?;
        out.write_all(&p.value)?;
        out.write_all(b"\n")?;
    }
    if r.truncated {
        eprintln!(
            "brisk: scan stopped at the response size budget after key {:?}; continue from there with --start",
            last.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn txn(a: TxnArgs) -> Result<ExitCode> {
    let mut mutations = Vec::new();
    for p in &a.puts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("--put {p:?} is not KEY=VALUE"))?;
        mutations.push(Mutation {
            op: mutation::Op::Put as i32,
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        });
    }
    for k in &a.deletes {
        mutations.push(Mutation {
            op: mutation::Op::Delete as i32,
            key: k.as_bytes().to_vec(),
            value: Vec::new(),
        });
    }
    if mutations.is_empty() {
        bail!("a transaction needs at least one --put or --delete");
    }
    let start_ts = match a.start_ts {
        Some(ts) => ts,
        None => {
            call(&a.conn, Idempotence::Read, |ch| async move {
                TransactionalKvClient::new(ch).begin(BeginRequest {}).await
            })
            .await?
            .start_ts
        }
    };
    for k in &a.reads {
        let req = TxnGetRequest {
            start_ts,
            key: k.as_bytes().to_vec(),
        };
        let r = call(&a.conn, Idempotence::Read, |ch| {
            let req = req.clone();
            async move { TransactionalKvClient::new(ch).get(req).await }
        })
        .await?;
        if r.found {
            println!("read {k}={}", String::from_utf8_lossy(&r.value));
        } else {
            println!("read {k} (absent)");
        }
    }
    let req = CommitRequest {
        start_ts,
        mutations,
        read_set: a.reads.iter().map(|k| k.as_bytes().to_vec()).collect(),
    };
    let r = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { TransactionalKvClient::new(ch).commit(req).await }
    })
    .await?;
    if r.committed {
        println!("COMMITTED start_ts={start_ts} commit_ts={}", r.commit_ts);
        Ok(ExitCode::SUCCESS)
    } else {
        let c = r.conflict.unwrap_or_default();
        println!(
            "CONFLICT key={} commit_ts={} start_ts={start_ts}",
            String::from_utf8_lossy(&c.key),
            c.conflicting_commit_ts
        );
        Ok(ExitCode::from(2))
    }
}

pub async fn status(a: StatusArgs) -> Result<ExitCode> {
    let s = call(&a.conn, Idempotence::Read, |ch| async move {
        RaftAdminClient::new(ch).status(StatusRequest {}).await
    })
    .await?;
    if a.json {
        let members: Vec<_> = s
            .members
            .iter()
            .map(|m| serde_json::json!({"id": m.id, "addr": m.addr, "peer_addr": m.peer_addr, "voter": m.voter}))
            .collect();
        let v = serde_json::json!({
            "id": s.id,
            "role": s.role,
            "leader_id": if s.has_leader { serde_json::json!(s.leader_id) } else { serde_json::Value::Null },
            "leader_addr": s.leader_addr,
            "leader_peer_addr": s.leader_peer_addr,
            "term": s.term,
            "commit_index": s.commit_index,
            "applied_index": s.applied_index,
            "last_log_index": s.last_log_index,
            "snapshot_index": s.snapshot_index,
            "purged_index": s.purged_index,
            "members": members,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("id:             {}", s.id);
        println!("role:           {}", s.role);
        if s.has_leader {
            println!("leader:         {} ({})", s.leader_id, s.leader_addr);
        } else {
            println!("leader:         none");
        }
        println!("term:           {}", s.term);
        println!("commit_index:   {}", s.commit_index);
        println!("applied_index:  {}", s.applied_index);
        println!("snapshot_index: {}", s.snapshot_index);
        println!("members:        {}", fmt_members(&s.members));
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt_members(m: &[Member]) -> String {
    m.iter()
        .map(|m| {
            format!(
                "{}={}{}",
                m.id,
                m.addr,
                if m.voter { "" } else { " (learner)" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_configuration(c: &ConfigurationResponse) {
    println!("{:<6} {:<24} {:<24} ROLE", "ID", "ADDR", "PEER_ADDR");
    for m in &c.members {
        println!(
            "{:<6} {:<24} {:<24} {}",
            m.id,
            m.addr,
            if m.peer_addr.is_empty() {
                "(not recorded)"
            } else {
                &m.peer_addr
            },
            if m.voter { "voter" } else { "learner" }
        );
    }
}

pub async fn members(a: ConnArgs) -> Result<ExitCode> {
    let c = call(&a, Idempotence::Read, |ch| async move {
        RaftAdminClient::new(ch)
            .configuration(ConfigurationRequest {})
            .await
    })
    .await?;
    print_configuration(&c);
    Ok(ExitCode::SUCCESS)
}

pub async fn add_learner(a: AddNodeArgs) -> Result<ExitCode> {
    let req = AddLearnerRequest {
        id: a.id,
        addr: a.addr,
        peer_addr: a.peer_addr,
    };
    let c = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RaftAdminClient::new(ch).add_learner(req).await }
    })
    .await?;
    print_configuration(&c);
    Ok(ExitCode::SUCCESS)
}

pub async fn add_voter(a: AddVoterArgs) -> Result<ExitCode> {
    let req = AddVoterRequest {
        id: a.id,
        addr: a.addr.unwrap_or_default(),
        peer_addr: a.peer_addr.unwrap_or_default(),
    };
    let c = call(&a.conn, Idempotence::Write, |ch| {
        let req = req.clone();
        async move { RaftAdminClient::new(ch).add_voter(req).await }
    })
    .await?;
    print_configuration(&c);
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(a: IdArgs) -> Result<ExitCode> {
    let req = RemoveServerRequest { id: a.id };
    let c = call(&a.conn, Idempotence::Write, |ch| async move {
        RaftAdminClient::new(ch).remove_server(req).await
    })
    .await?;
    print_configuration(&c);
    Ok(ExitCode::SUCCESS)
}

pub async fn transfer(a: TransferArgs) -> Result<ExitCode> {
    let req = TransferLeadershipRequest { to: a.to };
    let r = call(&a.conn, Idempotence::Write, |ch| async move {
        RaftAdminClient::new(ch).transfer_leadership(req).await
    })
    .await?;
    println!("leader is now node {}", r.leader_id);
    Ok(ExitCode::SUCCESS)
}

pub async fn snapshot(a: SnapshotArgs) -> Result<ExitCode> {
    let targets: Vec<String> = if a.all {
        let c = call(&a.conn, Idempotence::Read, |ch| async move {
            RaftAdminClient::new(ch)
                .configuration(ConfigurationRequest {})
                .await
        })
        .await?;
        c.members.into_iter().map(|m| m.addr).collect()
    } else {
        vec![]
    };
    if targets.is_empty() {
        let r = call(&a.conn, Idempotence::Write, |ch| async move {
            RaftAdminClient::new(ch).snapshot(SnapshotRequest {}).await
        })
        .await?;
        println!("snapshot index={} term={}", r.index, r.term);
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    let tls = a.conn.tls()?;
    for addr in targets {
        let result = async {
            let ch = connect_tls(&addr, tls.as_ref())
                .await
                .with_context(|| format!("connecting to {addr}"))?;
            let r = RaftAdminClient::new(ch)
                .snapshot(SnapshotRequest {})
                .await
                .map_err(|s| anyhow!("{}", s.message()))?
                .into_inner();
            Ok::<_, anyhow::Error>(r)
        }
        .await;
        match result {
            Ok(r) => println!("{addr}: snapshot index={} term={}", r.index, r.term),
            Err(e) => {
                failed = true;
                println!("{addr}: failed: {e:#}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn timestamp(a: ConnArgs) -> Result<ExitCode> {
    let r = call(&a, Idempotence::Read, |ch| async move {
        RawKvClient::new(ch)
            .get_timestamp(GetTimestampRequest {})
            .await
    })
    .await?;
    println!("{}", r.ts);
    Ok(ExitCode::SUCCESS)
}
