//! brisk-redis: a Redis-protocol endpoint for brisk. It decodes RESP2/RESP3 requests, runs
//! each command as a [`brisk_service::Service`] transaction and answers with Redis's reply
//! types and error lines. It knows nothing of Raft or RocksDB: every write is acknowledged
//! only after brisk committed it, and reads are linearizable on any node (the service
//! forwards to, or confirms with, the leader).
//!
//! Keys live in their own part of brisk's keyspace (see [`keyspace`]).

mod combiner;
mod command;
mod connection;
mod cursors;
mod error;
mod frame;
pub mod keyspace;
mod reply;
mod sweep;
mod tx;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use brisk_service::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

pub use connection::REDIS_VERSION;
pub use error::CommandError;
pub use frame::FrameError;

use combiner::Pending;
use connection::{After, Connection};
use reply::Reply;

/// Limits and access control of the Redis endpoint.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// The password of Redis's `default` user: when set, a connection must AUTH (or HELLO
    /// ... AUTH) before any other command, as with Redis's `requirepass`.
    pub password: Option<std::sync::Arc<str>>,
    /// The largest request (one command with its arguments); a larger one gets an error and
    /// its connection is closed without touching data.
    pub max_request_bytes: usize,
    /// Connections served at once; one more is answered with an error and closed.
    pub max_connections: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            password: None,
            max_request_bytes: 32 << 20,
            max_connections: 10_000,
        }
    }
}

/// Flush replies once this many bytes are waiting, even in the middle of a pipeline.
const FLUSH_BYTES: usize = 1 << 20;
/// Most batched commands of one connection waiting for their replies.
/// The largest request of a connection that has not authenticated yet.
const UNAUTHENTICATED_MAX_REQUEST_BYTES: usize = 64 << 10;

const MAX_PENDING: usize = 16;

/// Encodes the replies of `pending`, in order, as they come in.
async fn flush_pending(pending: &mut VecDeque<Pending>, out: &mut Vec<u8>, resp3: bool) {
    while let Some(p) = pending.pop_front() {
        p.reply().await.encode(out, resp3);
    }
}

/// Registers the HELP text of every metric the Redis endpoint records.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "brisk_redis_commands_total",
        "Redis commands received, by command name."
    );
    metrics::describe_gauge!("brisk_redis_connections", "Open Redis client connections.");
    metrics::describe_counter!(
        "brisk_redis_protocol_errors_total",
        "Redis connections closed for a malformed or oversized request."
    );
    metrics::describe_histogram!(
        "brisk_redis_batch_commands",
        "Commands committed together in one transaction by a node's batching task."
    );
    metrics::describe_counter!(
        "brisk_redis_expired_keys_reclaimed_total",
        "Expired Redis keys deleted by the leader's replicated sweep."
    );
}

/// Serves Redis clients on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    config: RedisConfig,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let shared = Arc::new(connection::Shared::new(service.clone()));
    tokio::spawn(sweep::run(service.clone(), stop.clone()));
    let ids = AtomicU64::new(1);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "redis accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = stream
                .write_all(b"-ERR max number of clients reached\r\n")
                .await;
            continue;
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let service = service.clone();
        let shared = shared.clone();
        let stop = stop.clone();
        let config = config.clone();
        tokio::spawn(async move {
            metrics::gauge!("brisk_redis_connections").increment(1.0);
            let conn = Connection::new(service, shared, id, config.password.clone());
            if let Err(e) = handle(stream, conn, config, stop).await {
                tracing::debug!(%peer, error = %e, "redis connection ended");
            }
            metrics::gauge!("brisk_redis_connections").decrement(1.0);
            drop(permit);
        });
    }
}

/// One connection: commands are read as they arrive (pipelined ones included) and answered
/// in order; replies are written when no complete command is left in the buffer.
async fn handle(
    mut stream: TcpStream,
    mut conn: Connection,
    config: RedisConfig,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut input: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut out: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut decoder = frame::Decoder::default();
    loop {
        let n = tokio::select! {
            n = stream.read_buf(&mut input) => n?,
            _ = stop.changed() => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let mut taken = 0;
        // Replies of batched commands not in yet, in order: a pipeline's data commands join
        // the node's batches together; anything else first waits for them.
        let mut pending: VecDeque<Pending> = VecDeque::new();
        loop {
            // Until a connection has authenticated, it may send only small requests (as
            // Redis), so a client without the password cannot make the node buffer much.
            let limit = if conn.authenticated() {
                config.max_request_bytes
            } else {
                config
                    .max_request_bytes
                    .min(UNAUTHENTICATED_MAX_REQUEST_BYTES)
            };
            match decoder.next_command(&input[taken..], limit) {
                Ok(Some((args, used))) => {
                    taken += used;
                    if args.is_empty() {
                        continue;
                    }
                    let args = match conn.submit(args).await {
                        Ok(p) => {
                            pending.push_back(p);
                            if pending.len() >= MAX_PENDING {
                                flush_pending(&mut pending, &mut out, conn.resp3()).await;
                                if out.len() >= FLUSH_BYTES {
                                    stream.write_all(&out).await?;
                                    out.clear();
                                }
                            }
                            continue;
                        }
                        Err(args) => args,
                    };
                    flush_pending(&mut pending, &mut out, conn.resp3()).await;
                    let (reply, after) = conn.execute(args).await;
                    reply.encode(&mut out, conn.resp3());
                    if after == After::Close {
                        stream.write_all(&out).await?;
                        return Ok(());
                    }
                    if out.len() >= FLUSH_BYTES {
                        stream.write_all(&out).await?;
                        out.clear();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    flush_pending(&mut pending, &mut out, conn.resp3()).await;
                    metrics::counter!("brisk_redis_protocol_errors_total").increment(1);
                    Reply::error(&e).encode(&mut out, conn.resp3());
                    stream.write_all(&out).await?;
                    close_after_reply(stream, config.max_request_bytes).await;
                    return Ok(());
                }
            }
        }
        flush_pending(&mut pending, &mut out, conn.resp3()).await;
        input.drain(..taken);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}

/// Closes a connection whose client is still sending: the reply is sent and the write side
/// shut, then what the client sends is read and dropped for a moment (at most `budget`
/// bytes), so that closing does not reset the connection before the client read the error.
async fn close_after_reply(mut stream: TcpStream, budget: usize) {
    let _ = stream.shutdown().await;
    let mut scratch = vec![0u8; 64 << 10];
    let mut left = budget;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        while left > 0 {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}
