//! `brisk serve` settings: command-line flags, `BRISK_*` environment variables and an
//! optional TOML file (`--config`), in that order of precedence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use brisk_raft::gate::ColdStartMode;
use brisk_raft::types::BriskNode;
use serde::Deserialize;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsmSync {
    /// fsync every apply batch (default).
    Sync,
    /// Do not fsync applies; the fsynced Raft log is the backstop.
    Nosync,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ReadPolicyArg {
    ReadIndex,
    Lease,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ColdStart {
    /// Use the store as it is when it is at or past the latest snapshot.
    Auto,
    /// Always rebuild the store from the snapshot (the slow baseline, for benchmarks).
    AlwaysRestore,
}

/// Every flag is optional here so the config file can fill what flags and env leave unset.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// TOML file with any of these settings (keys as the flags, e.g. data-dir = "...").
    #[arg(long, env = "BRISK_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long, env = "BRISK_ID")]
    pub id: Option<u64>,
    /// Directory for the Raft log, the state machine and snapshots.
    #[arg(long, env = "BRISK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Client gRPC address to bind.
    #[arg(long, env = "BRISK_LISTEN")]
    pub listen: Option<String>,
    /// Client gRPC address clients (and members forwarding to a leader) use, if not --listen.
    #[arg(long, env = "BRISK_ADVERTISE")]
    pub advertise: Option<String>,
    /// Peer (Raft transport) address to bind; only members talk to it.
    #[arg(long, env = "BRISK_PEER_LISTEN")]
    pub peer_listen: Option<String>,
    /// Peer address the other members use, if not --peer-listen.
    #[arg(long, env = "BRISK_PEER_ADVERTISE")]
    pub peer_advertise: Option<String>,
    /// PEM certificate this node presents to its peers (as server and as client).
    #[arg(long, env = "BRISK_PEER_TLS_CERT")]
    pub peer_tls_cert: Option<PathBuf>,
    /// PEM private key of --peer-tls-cert.
    #[arg(long, env = "BRISK_PEER_TLS_KEY")]
    pub peer_tls_key: Option<PathBuf>,
    /// PEM CA certificate every peer's certificate must chain to (mutual TLS).
    #[arg(long, env = "BRISK_PEER_TLS_CA")]
    pub peer_tls_ca: Option<PathBuf>,
    /// Run the peer transport without TLS: anyone who reaches the peer port can act as a
    /// member. Only for networks where nothing else can reach that port.
    #[arg(long, env = "BRISK_PEER_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    pub peer_insecure: Option<bool>,
    /// PEM certificate for TLS on the client port (default: plaintext).
    #[arg(long, env = "BRISK_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "BRISK_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA that signed the members' client-port certificates, trusted when this node
    /// forwards a request to the leader or joins through a member (default: --peer-tls-ca).
    #[arg(long, env = "BRISK_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, env = "BRISK_HTTP")]
    pub http: Option<String>,
    /// Address for the Redis protocol endpoint (RESP2/RESP3); off when unset.
    #[arg(long, env = "BRISK_REDIS")]
    pub redis: Option<String>,
    /// Largest Redis request (one command with its arguments), bytes (default 32 MiB); a
    /// larger one gets an error and its connection is closed.
    #[arg(long, env = "BRISK_REDIS_MAX_REQUEST_BYTES")]
    pub redis_max_request_bytes: Option<usize>,
    /// Redis connections served at once (default 10000).
    #[arg(long, env = "BRISK_REDIS_MAX_CONNECTIONS")]
    pub redis_max_connections: Option<usize>,
    /// Initial members, ID=CLIENT_HOST:PORT/PEER_HOST:PORT,...; give every founding member
    /// the same list.
    #[arg(long, env = "BRISK_BOOTSTRAP", conflicts_with = "join")]
    pub bootstrap: Option<String>,
    /// Address of a running member; this node asks to be added as a learner.
    #[arg(long, env = "BRISK_JOIN")]
    pub join: Option<String>,
    /// Apply durability: sync (default) or nosync.
    #[arg(long, env = "BRISK_FSM_SYNC", value_enum)]
    pub fsm_sync: Option<FsmSync>,
    /// Take a snapshot every N applied entries (default 10000).
    #[arg(long, env = "BRISK_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// Snapshots to keep on disk (default 2).
    #[arg(long, env = "BRISK_SNAPSHOT_KEEP")]
    pub snapshot_keep: Option<usize>,
    /// Log entries kept behind a snapshot for slow followers (default 1000).
    #[arg(long, env = "BRISK_LOGS_TO_KEEP")]
    pub logs_to_keep: Option<u64>,
    /// How far ahead of the wall clock the leader's HLC lease reaches, ms (default 10000).
    #[arg(long, env = "BRISK_HLC_WINDOW_MS")]
    pub hlc_window_ms: Option<u64>,
    /// Largest key accepted, bytes (default 4096).
    #[arg(long, env = "BRISK_MAX_KEY_BYTES")]
    pub max_key_bytes: Option<usize>,
    /// Largest value accepted, bytes (default 8 MiB).
    #[arg(long, env = "BRISK_MAX_VALUE_BYTES")]
    pub max_value_bytes: Option<usize>,
    /// Largest Raft log entry a request may produce, bytes (default 16 MiB): bounds what one
    /// apply holds in memory on every replica.
    #[arg(long, env = "BRISK_MAX_ENTRY_BYTES")]
    pub max_entry_bytes: Option<usize>,
    /// Largest snapshot accepted from a leader, bytes (default 64 GiB).
    #[arg(long, env = "BRISK_MAX_SNAPSHOT_BYTES")]
    pub max_snapshot_bytes: Option<u64>,
    /// Snapshot receptions accepted at once (default 2); more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "BRISK_MAX_SNAPSHOT_RECEPTIONS")]
    pub max_snapshot_receptions: Option<usize>,
    /// `/readyz` turns 200 once the applied index is within this many entries of the
    /// cluster's commit index as the leader reported it after start (default 0).
    #[arg(long, env = "BRISK_READY_LAG")]
    pub ready_lag: Option<u64>,
    /// Cold-start policy: auto (default) or always-restore.
    #[arg(long, env = "BRISK_COLD_START", value_enum)]
    pub cold_start: Option<ColdStart>,
    /// Raft heartbeat interval, ms (default 100).
    #[arg(long, env = "BRISK_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Raft election timeout lower bound, ms (default 500; the upper bound is twice it).
    #[arg(long, env = "BRISK_ELECTION_TIMEOUT_MS")]
    pub election_timeout_ms: Option<u64>,
    /// Linearizable reads: read-index (default: a quorum round per read) or lease (reuse a
    /// quorum acknowledgement younger than the leader lease; assumes bounded clock drift).
    #[arg(long, env = "BRISK_READ_POLICY", value_enum)]
    pub read_policy: Option<ReadPolicyArg>,
    /// Longest graceful stop, seconds (default 10): on SIGTERM the node stops taking client
    /// work, hands leadership over and exits; past this (or on a second SIGTERM) it exits at
    /// once.
    #[arg(long, env = "BRISK_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<f64>,
    /// Log filter, e.g. info or brisk_raft=debug (default info; RUST_LOG also works).
    #[arg(long, env = "BRISK_LOG")]
    pub log: Option<String>,
}

macro_rules! fill {
    ($dst:ident, $src:ident, $($f:ident),*) => {
        $( if $dst.$f.is_none() { $dst.$f = $src.$f.clone(); } )*
    };
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

fn check_addr(what: &str, addr: &str) -> Result<()> {
    if brisk_service::is_host_port(addr) {
        Ok(())
    } else {
        Err(anyhow!("{what} {addr:?} is not HOST:PORT"))
    }
}

impl ServeArgs {
    fn merge_file(mut self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let file: ServeArgs = toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        fill!(
            self,
            file,
            id,
            data_dir,
            listen,
            advertise,
            peer_listen,
            peer_advertise,
            peer_tls_cert,
            peer_tls_key,
            peer_tls_ca,
            peer_insecure,
            tls_cert,
            tls_key,
            tls_ca,
            http,
            redis,
            redis_max_request_bytes,
            redis_max_connections,
            bootstrap,
            join,
            fsm_sync,
            snapshot_every,
            snapshot_keep,
            logs_to_keep,
            hlc_window_ms,
            max_key_bytes,
            max_value_bytes,
            max_entry_bytes,
            max_snapshot_bytes,
            max_snapshot_receptions,
            ready_lag,
            cold_start,
            heartbeat_ms,
            election_timeout_ms,
            read_policy,
            shutdown_timeout,
            log
        );
        Ok(self)
    }

    pub fn resolve(self) -> Result<ServeConfig> {
        let a = match self.config.clone() {
            Some(p) => self.merge_file(&p)?,
            None => self,
        };
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
        let peer_insecure = a.peer_insecure.unwrap_or(false);
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
        let redis_defaults = brisk_redis::RedisConfig::default();
        let redis_limits = brisk_redis::RedisConfig {
            max_request_bytes: a
                .redis_max_request_bytes
                .unwrap_or(redis_defaults.max_request_bytes),
            max_connections: a
                .redis_max_connections
                .unwrap_or(redis_defaults.max_connections),
        };
        if redis_limits.max_request_bytes < 1024 || redis_limits.max_connections == 0 {
            bail!("--redis-max-request-bytes must be at least 1024 and --redis-max-connections positive");
        }
        let snapshot_every = a.snapshot_every.unwrap_or(10_000);
        if snapshot_every == 0 {
            bail!("--snapshot-every must be positive");
        }
        let election_timeout_ms = a.election_timeout_ms.unwrap_or(500);
        let max_value_bytes = a.max_value_bytes.unwrap_or(8 << 20);
        let max_entry_bytes = a.max_entry_bytes.unwrap_or(16 << 20);
        if max_entry_bytes > brisk_raft::codec::MAX_DECODE_BYTES / 2 {
            bail!(
                "--max-entry-bytes must be at most {} bytes",
                brisk_raft::codec::MAX_DECODE_BYTES / 2
            );
        }
        if max_value_bytes + a.max_key_bytes.unwrap_or(4 << 10) > max_entry_bytes {
            bail!("--max-entry-bytes must hold the largest key plus the largest value");
        }
        let heartbeat_ms = a.heartbeat_ms.unwrap_or(100);
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
            fsm_sync: a.fsm_sync.unwrap_or(FsmSync::Sync),
            snapshot_every,
            snapshot_keep: a.snapshot_keep.unwrap_or(2).max(1),
            logs_to_keep: a.logs_to_keep.unwrap_or(1_000),
            hlc_window_ms: a.hlc_window_ms.unwrap_or(10_000).max(1_000),
            max_key_bytes: a.max_key_bytes.unwrap_or(4 << 10),
            max_value_bytes,
            max_entry_bytes,
            max_snapshot_bytes: a.max_snapshot_bytes.unwrap_or(64 << 30),
            max_snapshot_receptions: a
                .max_snapshot_receptions
                .unwrap_or(brisk_raft::transport::DEFAULT_MAX_SNAPSHOT_RECEPTIONS)
                .max(1),
            ready_lag: a.ready_lag.unwrap_or(0),
            cold_start: match a.cold_start.unwrap_or(ColdStart::Auto) {
                ColdStart::Auto => ColdStartMode::Auto,
                ColdStart::AlwaysRestore => ColdStartMode::AlwaysRestore,
            },
            heartbeat_ms,
            election_timeout_ms,
            read_policy: a.read_policy.unwrap_or(ReadPolicyArg::ReadIndex),
            shutdown_timeout: {
                let secs = a.shutdown_timeout.unwrap_or(10.0);
                if !(secs.is_finite() && secs > 0.0) {
                    bail!("--shutdown-timeout must be a positive number of seconds");
                }
                std::time::Duration::from_secs_f64(secs)
            },
            // openraft logs every failed heartbeat to an unreachable peer at WARN (ten a
            // second); its errors still show.
            log: a.log.unwrap_or_else(|| "info,openraft=error".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// deploy/brisk.toml documents every setting: each key parses (commented ones too, with
    /// the default they show), and no flag is missing from it.
    #[test]
    fn the_example_config_covers_every_setting_and_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/brisk.toml");
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
        assert_eq!(all.snapshot_every, Some(10_000));
        assert_eq!(all.max_value_bytes, Some(8 << 20));
        assert_eq!(all.max_entry_bytes, Some(16 << 20));
        assert_eq!(all.redis_max_request_bytes, Some(32 << 20));
        assert_eq!(all.fsm_sync, Some(FsmSync::Sync));
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
        assert_eq!(c.fsm_sync, FsmSync::Nosync);
        assert_eq!(c.listen, "127.0.0.1:5000");
        std::fs::write(&p, "bogus-key = 1\n").unwrap();
        let args = ServeArgs {
            config: Some(p),
            ..Default::default()
        };
        assert!(args.resolve().is_err(), "unknown keys are refused");
    }
}
