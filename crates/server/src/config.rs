//! `brisk serve` settings: command-line flags, `BRISK_*` environment variables and an
//! optional TOML file (`--config`), in that order of precedence.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use brisk_raft::gate::ColdStartMode;
use brisk_raft::types::BriskNode;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::units::{ByteCount, Seconds};

#[derive(
    clap::ValueEnum, Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum FsmSync {
    /// fsync every apply batch before it is acknowledged.
    Sync,
    /// fsync applied batches in the background every --fsm-sync-interval-ms (default).
    Periodic,
    /// Do not fsync applies; the fsynced Raft log is the backstop.
    Nosync,
}

impl FsmSync {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ReadPolicyArg {
    ReadIndex,
    Lease,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ColdStart {
    /// Use the store as it is when it is at or past the latest snapshot.
    Auto,
    /// Always rebuild the store from the snapshot (the slow baseline, for benchmarks).
    AlwaysRestore,
}

/// Every flag is optional here so the config file can fill what flags and env leave unset,
/// and [`ServeArgs::defaults`] what neither sets. An unset field is left out when serialized,
/// so it never hides a value from a lower layer.
#[derive(clap::Args, Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// TOML file with any of these settings (keys as the flags, e.g. data-dir = "...").
    #[arg(long, env = "BRISK_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long, env = "BRISK_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Directory for the Raft log, the state machine and snapshots.
    #[arg(long, env = "BRISK_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Client gRPC address to bind.
    #[arg(long, env = "BRISK_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Client gRPC address clients (and members forwarding to a leader) use, if not --listen.
    #[arg(long, env = "BRISK_ADVERTISE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// Peer (Raft transport) address to bind; only members talk to it.
    #[arg(long, env = "BRISK_PEER_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_listen: Option<String>,
    /// Peer address the other members use, if not --peer-listen.
    #[arg(long, env = "BRISK_PEER_ADVERTISE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_advertise: Option<String>,
    /// PEM certificate this node presents to its peers (as server and as client).
    #[arg(long, env = "BRISK_PEER_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_tls_cert: Option<PathBuf>,
    /// PEM private key of --peer-tls-cert.
    #[arg(long, env = "BRISK_PEER_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_tls_key: Option<PathBuf>,
    /// PEM CA certificate every peer's certificate must chain to (mutual TLS).
    #[arg(long, env = "BRISK_PEER_TLS_CA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_tls_ca: Option<PathBuf>,
    /// Run the peer transport without TLS: anyone who reaches the peer port can act as a
    /// member. Only for networks where nothing else can reach that port.
    #[arg(long, env = "BRISK_PEER_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_insecure: Option<bool>,
    /// PEM certificate for TLS on the client port (default: plaintext).
    #[arg(long, env = "BRISK_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "BRISK_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA that signed the members' client-port certificates, trusted when this node
    /// forwards a request to the leader or joins through a member (default: --peer-tls-ca).
    #[arg(long, env = "BRISK_TLS_CA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, env = "BRISK_HTTP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Address for the Redis protocol endpoint (RESP2/RESP3); off when unset.
    #[arg(long, env = "BRISK_REDIS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// Largest Redis request (one command with its arguments), e.g. 32MiB (the default); a
    /// larger one gets an error and its connection is closed.
    #[arg(long, env = "BRISK_REDIS_MAX_REQUEST_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_max_request_bytes: Option<ByteCount>,
    /// File holding the password Redis clients must AUTH with (Redis's `requirepass`; its
    /// first line is the password). Without it the endpoint needs no password.
    #[arg(long, env = "BRISK_REDIS_PASSWORD_FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_password_file: Option<PathBuf>,
    /// Redis connections served at once (default 10000).
    #[arg(long, env = "BRISK_REDIS_MAX_CONNECTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_max_connections: Option<usize>,
    /// Initial members, ID=CLIENT_HOST:PORT/PEER_HOST:PORT,...; give every founding member
    /// the same list.
    #[arg(long, env = "BRISK_BOOTSTRAP", conflicts_with = "join")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    /// Address of a running member; this node asks to be added as a learner.
    #[arg(long, env = "BRISK_JOIN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// When the state machine's applied writes are fsynced: periodic (default), sync or
    /// nosync. Acknowledged writes are durable in the Raft log in every mode; the mode
    /// bounds what a restart after a power loss replays.
    #[arg(long, env = "BRISK_FSM_SYNC", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsm_sync: Option<FsmSync>,
    /// With --fsm-sync periodic, ms between background fsyncs of applied writes (default 100).
    #[arg(long, env = "BRISK_FSM_SYNC_INTERVAL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsm_sync_interval_ms: Option<u64>,
    /// Take a snapshot every N applied entries (default 10000).
    #[arg(long, env = "BRISK_SNAPSHOT_EVERY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<u64>,
    /// Snapshots to keep on disk (default 2).
    #[arg(long, env = "BRISK_SNAPSHOT_KEEP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_keep: Option<usize>,
    /// Log entries kept behind a snapshot for slow followers (default 1000).
    #[arg(long, env = "BRISK_LOGS_TO_KEEP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_to_keep: Option<u64>,
    /// How far ahead of the wall clock the leader's HLC lease reaches, ms (default 10000).
    #[arg(long, env = "BRISK_HLC_WINDOW_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hlc_window_ms: Option<u64>,
    /// Largest key accepted, e.g. 4096 or 4KiB (default 4 KiB).
    #[arg(long, env = "BRISK_MAX_KEY_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_key_bytes: Option<ByteCount>,
    /// Largest value accepted, e.g. 8MiB (the default) or a number of bytes.
    #[arg(long, env = "BRISK_MAX_VALUE_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value_bytes: Option<ByteCount>,
    /// Largest Raft log entry a request may produce, e.g. 16MiB (the default): bounds what one
    /// apply holds in memory on every replica.
    #[arg(long, env = "BRISK_MAX_ENTRY_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_entry_bytes: Option<ByteCount>,
    /// Largest snapshot accepted from a leader, e.g. 64GiB (the default).
    #[arg(long, env = "BRISK_MAX_SNAPSHOT_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_snapshot_bytes: Option<ByteCount>,
    /// Snapshot receptions accepted at once (default 2); more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "BRISK_MAX_SNAPSHOT_RECEPTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_snapshot_receptions: Option<usize>,
    /// `/readyz` turns 200 once the applied index is within this many entries of the
    /// cluster's commit index as the leader reported it after start (default 0).
    #[arg(long, env = "BRISK_READY_LAG")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_lag: Option<u64>,
    /// Cold-start policy: auto (default) or always-restore.
    #[arg(long, env = "BRISK_COLD_START", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold_start: Option<ColdStart>,
    /// Raft heartbeat interval, ms (default 100).
    #[arg(long, env = "BRISK_HEARTBEAT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_ms: Option<u64>,
    /// Raft election timeout lower bound, ms (default 500; the upper bound is twice it).
    #[arg(long, env = "BRISK_ELECTION_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub election_timeout_ms: Option<u64>,
    /// Linearizable reads: read-index (default: a quorum round per read) or lease (reuse a
    /// quorum acknowledgement younger than the leader lease; assumes bounded clock drift).
    #[arg(long, env = "BRISK_READ_POLICY", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_policy: Option<ReadPolicyArg>,
    /// Longest graceful stop, e.g. 10s (the default; a bare number is seconds): on SIGTERM the node stops taking client
    /// work, hands leadership over and exits; past this (or on a second SIGTERM) it exits at
    /// once.
    #[arg(long, env = "BRISK_SHUTDOWN_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_timeout: Option<Seconds>,
    /// Log filter, e.g. info or brisk_raft=debug (default info,openraft=error; RUST_LOG is
    /// used when neither this nor the config file sets one).
    #[arg(long, env = "BRISK_LOG")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// Resolved settings of one node.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub id: u64,
    pub data_dir: PathBuf,
    pub listen: String,
    pub advertise: String,
    pub peer_listen: String,
    pub peer_advertise: String,
    pub peer_tls: Option<PeerTlsFiles>,
    pub client_tls: Option<ClientTlsFiles>,
    pub http: String,
    pub redis: Option<String>,
    pub redis_limits: brisk_redis::RedisConfig,
    pub bootstrap: Option<BTreeMap<u64, BriskNode>>,
    pub join: Option<String>,
    pub fsm_sync: FsmSync,
    pub fsm_sync_interval_ms: u64,
    pub snapshot_every: u64,
    pub snapshot_keep: usize,
    pub logs_to_keep: u64,
    pub hlc_window_ms: u64,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_entry_bytes: usize,
    pub max_snapshot_bytes: u64,
    pub max_snapshot_receptions: usize,
    pub ready_lag: u64,
    pub cold_start: ColdStartMode,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
    pub read_policy: ReadPolicyArg,
    pub shutdown_timeout: std::time::Duration,
    pub log: String,
}

/// The peer certificate, its key and the CA peers' certificates must chain to.
#[derive(Debug, Clone)]
pub struct PeerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// TLS on the client port, and the CA trusted when reaching other members' client ports.
#[derive(Debug, Clone)]
pub struct ClientTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// Parses `--bootstrap`: `ID=CLIENT_HOST:PORT/PEER_HOST:PORT,...`.
pub fn parse_members(s: &str) -> Result<BTreeMap<u64, BriskNode>> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addrs) = part.split_once('=').ok_or_else(|| {
            anyhow!("bootstrap member {part:?} is not ID=CLIENT_HOST:PORT/PEER_HOST:PORT")
        })?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("bootstrap member id {id:?} is not a number"))?;
        if id == 0 {
            bail!("bootstrap member ids must be positive");
        }
        let node = match addrs.trim().split_once('/') {
            Some((client, peer)) => {
                check_addr("bootstrap member client address", client)?;
                check_addr("bootstrap member peer address", peer)?;
                BriskNode::new(client, peer)
            }
            None => bail!(
                "bootstrap member {part:?} has no peer address; give it as ID=CLIENT_HOST:PORT/PEER_HOST:PORT"
            ),
        };
        if out.insert(id, node).is_some() {
            bail!("bootstrap member id {id} appears twice");
        }
    }
    if out.is_empty() {
        bail!("--bootstrap lists no members");
    }
    Ok(out)
}

/// A size setting that [`ServeArgs::defaults`] always provides, as a `usize`; zero is refused
/// (every size is a limit, and a zero limit refuses everything).
fn size(value: Option<ByteCount>, key: &str) -> Result<usize> {
    let bytes = set(value, key)?;
    if bytes.as_u64() == 0 {
        bail!("--{key} must be more than zero bytes");
    }
    bytes.as_usize().map_err(|e| anyhow!("{key}: {e}"))
}

/// A setting that [`ServeArgs::defaults`] always provides.
fn set<T>(value: Option<T>, key: &str) -> Result<T> {
    value.ok_or_else(|| anyhow!("the setting {key} has no value and no default"))
}

fn check_addr(what: &str, addr: &str) -> Result<()> {
    if brisk_service::is_host_port(addr) {
        Ok(())
    } else {
        Err(anyhow!("{what} {addr:?} is not HOST:PORT"))
    }
}

impl ServeArgs {
    /// The default of every setting that has one: the one place defaults are written (the
    /// help text and deploy/brisk.toml repeat them, and a test holds the file to these).
    pub fn defaults() -> ServeArgs {
        let redis = brisk_redis::RedisConfig::default();
        ServeArgs {
            peer_insecure: Some(false),
            redis_max_request_bytes: Some(ByteCount(redis.max_request_bytes as u64)),
            redis_max_connections: Some(redis.max_connections),
            fsm_sync: Some(FsmSync::Periodic),
            fsm_sync_interval_ms: Some(
                brisk_raft::node::DEFAULT_APPLY_SYNC_PERIOD.as_millis() as u64
            ),
            snapshot_every: Some(10_000),
            snapshot_keep: Some(2),
            logs_to_keep: Some(1_000),
            hlc_window_ms: Some(10_000),
            max_key_bytes: Some(ByteCount(4 << 10)),
            max_value_bytes: Some(ByteCount(8 << 20)),
            max_entry_bytes: Some(ByteCount(16 << 20)),
            max_snapshot_bytes: Some(ByteCount(64 << 30)),
            max_snapshot_receptions: Some(brisk_raft::transport::DEFAULT_MAX_SNAPSHOT_RECEPTIONS),
            ready_lag: Some(0),
            cold_start: Some(ColdStart::Auto),
            heartbeat_ms: Some(100),
            election_timeout_ms: Some(500),
            read_policy: Some(ReadPolicyArg::ReadIndex),
            shutdown_timeout: Some(Seconds(std::time::Duration::from_secs(10))),
            // openraft logs every failed heartbeat to an unreachable peer at WARN (ten a
            // second); its errors still show.
            log: Some("info,openraft=error".into()),
            ..ServeArgs::default()
        }
    }

    /// Layers the settings: defaults, then the `--config` file, then environment and flags
    /// (clap reads both into `self`), each later layer winning. The log filter alone has one
    /// more source: `RUST_LOG`, used when no flag, `BRISK_LOG` or file sets it.
    fn layered(self) -> Result<ServeArgs> {
        let mut set = Figment::new();
        if let Some(path) = &self.config {
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            set = set.merge(Toml::file_exact(path));
        }
        let config = self.config.clone();
        let set = set.merge(Serialized::defaults(self));
        let mut defaults = ServeArgs::defaults();
        if set.find_value("log").is_err() {
            if let Some(filter) = std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty()) {
                defaults.log = Some(filter);
            }
        }
        let mut merged: ServeArgs = Figment::from(Serialized::defaults(defaults))
            .merge(set)
            .extract()
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| match &config {
                Some(p) => format!("reading settings (config file {})", p.display()),
                None => "reading settings".to_string(),
            })?;
        merged.config = config;
        Ok(merged)
    }

    pub fn resolve(self) -> Result<ServeConfig> {
        let a = self.layered()?;
        let id = a.id.ok_or_else(|| anyhow!("--id is required"))?;
        if id == 0 {
            bail!("--id must be a positive integer");
        }
        let data_dir = a
            .data_dir
            .ok_or_else(|| anyhow!("--data-dir is required"))?;
        let listen = a.listen.ok_or_else(|| anyhow!("--listen is required"))?;
        check_addr("--listen", &listen)?;
        let advertise = a.advertise.unwrap_or_else(|| listen.clone());
        check_addr("--advertise", &advertise)?;
        let peer_listen = a
            .peer_listen
            .ok_or_else(|| anyhow!("--peer-listen is required (the Raft transport's address)"))?;
        check_addr("--peer-listen", &peer_listen)?;
        let peer_advertise = a.peer_advertise.unwrap_or_else(|| peer_listen.clone());
        check_addr("--peer-advertise", &peer_advertise)?;
        if peer_listen == listen || peer_advertise == advertise {
            bail!("the peer address must differ from the client address: peers and clients use separate ports");
        }
        for (flag, addr) in [
            ("--advertise", &advertise),
            ("--peer-advertise", &peer_advertise),
        ] {
            if addr
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_unspecified())
            {
                bail!(
                    "{flag} {addr} is not an address others can reach; give the host's own address"
                );
            }
        }
        let peer_tls = match (a.peer_tls_cert, a.peer_tls_key, a.peer_tls_ca) {
            (Some(cert), Some(key), Some(ca)) => Some(PeerTlsFiles { cert, key, ca }),
            (None, None, None) => None,
            _ => bail!("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together"),
        };
        let peer_insecure = set(a.peer_insecure, "peer-insecure")?;
        match (&peer_tls, peer_insecure) {
            (None, false) => bail!(
                "the peer transport needs --peer-tls-cert, --peer-tls-key and --peer-tls-ca (mutual TLS), or --peer-insecure to run it in plaintext"
            ),
            (Some(_), true) => bail!("--peer-insecure contradicts the --peer-tls-* flags"),
            _ => {}
        }
        let client_tls = match (a.tls_cert, a.tls_key) {
            (Some(cert), Some(key)) => {
                let ca = a
                    .tls_ca
                    .or_else(|| peer_tls.as_ref().map(|p| p.ca.clone()))
                    .ok_or_else(|| {
                        anyhow!("--tls-cert needs --tls-ca (the CA members trust when forwarding to each other)")
                    })?;
                Some(ClientTlsFiles { cert, key, ca })
            }
            (None, None) if a.tls_ca.is_some() => {
                bail!("--tls-ca is used only with --tls-cert and --tls-key")
            }
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let http = a.http.ok_or_else(|| anyhow!("--http is required"))?;
        check_addr("--http", &http)?;
        let bootstrap = a.bootstrap.as_deref().map(parse_members).transpose()?;
        if let Some(members) = &bootstrap {
            match members.get(&id) {
                Some(n)
                    if n.addr == advertise && n.peer_addr.as_deref() == Some(&peer_advertise) => {}
                Some(n) => bail!(
                    "--bootstrap gives node {id} the addresses {n}, but it advertises {advertise} (peer {peer_advertise})"
                ),
                None => bail!("--bootstrap does not list this node (id {id})"),
            }
        }
        if let Some(j) = &a.join {
            check_addr("--join", j)?;
        }
        if let Some(r) = &a.redis {
            check_addr("--redis", r)?;
        }
        let redis_password = match &a.redis_password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading the Redis password file {}", path.display())
                })?;
                let password = text.lines().next().unwrap_or("").to_string();
                if password.is_empty() {
                    bail!(
                        "the Redis password file {} holds no password on its first line",
                        path.display()
                    );
                }
                Some(std::sync::Arc::<str>::from(password))
            }
            None => None,
        };
        let redis_limits = brisk_redis::RedisConfig {
            password: redis_password,
            max_request_bytes: size(a.redis_max_request_bytes, "redis-max-request-bytes")?,
            max_connections: set(a.redis_max_connections, "redis-max-connections")?,
        };
        if redis_limits.max_request_bytes < 1024 || redis_limits.max_connections == 0 {
            bail!("--redis-max-request-bytes must be at least 1024 and --redis-max-connections positive");
        }
        let snapshot_every = set(a.snapshot_every, "snapshot-every")?;
        if snapshot_every == 0 {
            bail!("--snapshot-every must be positive");
        }
        let election_timeout_ms = set(a.election_timeout_ms, "election-timeout-ms")?;
        let max_value_bytes = size(a.max_value_bytes, "max-value-bytes")?;
        let max_entry_bytes = size(a.max_entry_bytes, "max-entry-bytes")?;
        let max_key_bytes = size(a.max_key_bytes, "max-key-bytes")?;
        if max_entry_bytes > brisk_raft::codec::MAX_DECODE_BYTES / 2 {
            bail!(
                "--max-entry-bytes must be at most {} bytes",
                brisk_raft::codec::MAX_DECODE_BYTES / 2
            );
        }
        if max_value_bytes.saturating_add(max_key_bytes) > max_entry_bytes {
            bail!("--max-entry-bytes must hold the largest key plus the largest value");
        }
        let fsm_sync_interval_ms = set(a.fsm_sync_interval_ms, "fsm-sync-interval-ms")?;
        if !(1..=10_000).contains(&fsm_sync_interval_ms) {
            bail!("--fsm-sync-interval-ms must be between 1 and 10000");
        }
        let heartbeat_ms = set(a.heartbeat_ms, "heartbeat-ms")?;
        if heartbeat_ms == 0 || heartbeat_ms * 2 > election_timeout_ms {
            bail!("--heartbeat-ms must be positive and at most half of --election-timeout-ms");
        }
        Ok(ServeConfig {
            id,
            data_dir,
            listen,
            advertise,
            peer_listen,
            peer_advertise,
            peer_tls,
            client_tls,
            http,
            redis: a.redis,
            redis_limits,
            bootstrap,
            join: a.join,
            fsm_sync: set(a.fsm_sync, "fsm-sync")?,
            fsm_sync_interval_ms,
            snapshot_every,
            snapshot_keep: set(a.snapshot_keep, "snapshot-keep")?.max(1),
            logs_to_keep: set(a.logs_to_keep, "logs-to-keep")?,
            hlc_window_ms: set(a.hlc_window_ms, "hlc-window-ms")?.max(1_000),
            max_key_bytes,
            max_value_bytes,
            max_entry_bytes,
            max_snapshot_bytes: size(a.max_snapshot_bytes, "max-snapshot-bytes")? as u64,
            max_snapshot_receptions: set(a.max_snapshot_receptions, "max-snapshot-receptions")?
                .max(1),
            ready_lag: set(a.ready_lag, "ready-lag")?,
            cold_start: match set(a.cold_start, "cold-start")? {
                ColdStart::Auto => ColdStartMode::Auto,
                ColdStart::AlwaysRestore => ColdStartMode::AlwaysRestore,
            },
            heartbeat_ms,
            election_timeout_ms,
            read_policy: set(a.read_policy, "read-policy")?,
            shutdown_timeout: {
                let Seconds(limit) = set(a.shutdown_timeout, "shutdown-timeout")?;
                if limit.is_zero() {
                    bail!("--shutdown-timeout must be positive");
                }
                limit
            },
            log: set(a.log, "log")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `brisk dev` passes a mode on as the flag value `as_str` names: it must parse back.
    #[test]
    fn fsm_sync_names_are_its_flag_values() {
        use clap::ValueEnum;
        for mode in FsmSync::value_variants() {
            assert_eq!(FsmSync::from_str(mode.as_str(), false), Ok(*mode));
        }
    }

    /// deploy/brisk.toml documents every setting: each key parses (commented ones too, with
    /// the default they show), and no flag is missing from it.
    #[test]
    fn the_example_config_covers_every_setting_and_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/brisk.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let active: ServeArgs = toml::from_str(&text).unwrap();
        assert_eq!(active.id, Some(1));
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                // A commented-out setting: `# key = value` with a flag-like key.
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let all: ServeArgs = toml::from_str(&uncommented).unwrap();
        // Every default the file shows is the default the node uses.
        let shown = toml::Table::try_from(&all).unwrap();
        let defaults = toml::Table::try_from(ServeArgs::defaults()).unwrap();
        assert!(defaults.len() >= 20, "{defaults:?}");
        for (key, default) in &defaults {
            assert_eq!(
                shown.get(key),
                Some(default),
                "deploy/brisk.toml shows {key} with another value than its default"
            );
        }
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Probe {
            #[command(flatten)]
            serve: ServeArgs,
        }
        for arg in Probe::command().get_arguments() {
            let Some(flag) = arg.get_long() else { continue };
            if flag == "config" {
                continue;
            }
            assert!(
                uncommented
                    .lines()
                    .any(|l| l.starts_with(&format!("{flag} = "))),
                "deploy/brisk.toml does not document {flag}"
            );
        }
    }

    #[test]
    fn members_parse_and_reject() {
        let m = parse_members("1=127.0.0.1:1/127.0.0.1:11,2=127.0.0.1:2/127.0.0.1:12").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&2], BriskNode::new("127.0.0.1:2", "127.0.0.1:12"));
        for bad in [
            "1=127.0.0.1:1/127.0.0.1:11,1=127.0.0.1:2/127.0.0.1:12",
            "x=127.0.0.1:1/127.0.0.1:11",
            "1=nothost/127.0.0.1:11",
            "1=127.0.0.1:1/nothost",
            "0=127.0.0.1:1/127.0.0.1:11",
            "1=127.0.0.1:1",
        ] {
            assert!(parse_members(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brisk.toml");
        std::fs::write(
            &p,
            "id = 7\ndata-dir = \"/tmp/x\"\nlisten = \"127.0.0.1:5000\"\npeer-listen = \"127.0.0.1:5002\"\npeer-insecure = true\nhttp = \"127.0.0.1:5001\"\nfsm-sync = \"nosync\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(p.clone()),
            id: Some(3),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.id, 3, "flag wins over file");
        assert_eq!(c.fsm_sync, FsmSync::Nosync, "file wins over default");
        assert_eq!(c.listen, "127.0.0.1:5000");
        assert_eq!(c.snapshot_every, 10_000, "default fills what nothing sets");
        let args = ServeArgs {
            config: Some(p.clone()),
            fsm_sync: Some(FsmSync::Sync),
            snapshot_every: Some(5),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.fsm_sync, FsmSync::Sync, "flag wins over file");
        assert_eq!(c.snapshot_every, 5, "flag wins over default");
        let missing = ServeArgs {
            config: Some(dir.path().join("absent.toml")),
            ..Default::default()
        };
        let e = missing.resolve().unwrap_err();
        assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
        std::fs::write(&p, "bogus-key = 1\n").unwrap();
        let args = ServeArgs {
            config: Some(p),
            ..Default::default()
        };
        assert!(args.resolve().is_err(), "unknown keys are refused");
    }
}
