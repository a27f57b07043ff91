//! Clients: each runs operations one at a time against a random node until told to stop,
//! recording every operation with its invoke and completion times.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{ConstantBuilder, Retryable};
use brisk_proto::raw_kv_client::RawKvClient;
use brisk_proto::transactional_kv_client::TransactionalKvClient;
use brisk_proto::TxnGetRequest;
use brisk_proto::{mutation, BeginRequest, CommitRequest, Mutation, RawGetRequest, RawPutRequest};
use rand::Rng;
use tonic::transport::{Channel, Endpoint};

use crate::history::{Kind, Op, Outcome, NEVER};

/// The client id of the final reads taken after the faults healed.
pub const FINAL_CLIENT: u32 = 1_000_000;
/// How long a client waits for one operation before calling its outcome unknown.
pub const OP_TIMEOUT: Duration = Duration::from_secs(3);

pub const REGISTERS: usize = 6;
pub const LISTS: usize = 3;

pub fn register_key(i: usize) -> String {
    format!("torture/r{i}")
}

pub fn list_key(i: usize) -> String {
    format!("torture/l{i}")
}

/// The shared recording: operations and the run's time base.
#[derive(Clone)]
pub struct Recorder {
    pub started: Instant,
    pub ops: Arc<Mutex<Vec<Op>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            started: Instant::now(),
            ops: Arc::default(),
        }
    }

    pub fn now(&self) -> i64 {
        self.started.elapsed().as_nanos() as i64
    }

    fn push(&self, op: Op) {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }

    pub fn take(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// gRPC channels to every node's client port.
#[derive(Clone)]
pub struct Nodes {
    pub channels: Vec<(u64, Channel)>,
}

impl Nodes {
    pub fn new(addrs: &[(u64, String)]) -> anyhow::Result<Self> {
        let mut channels = Vec::new();
        for (id, addr) in addrs {
            let ch = Endpoint::from_shared(format!("http://{addr}"))?
                .connect_timeout(Duration::from_millis(500))
                .tcp_nodelay(true)
                .connect_lazy();
            channels.push((*id, ch));
        }
        Ok(Nodes { channels })
    }

    fn pick(&self, rng: &mut impl Rng) -> (u64, Channel) {
        let i = rng.random_range(0..self.channels.len());
        self.channels[i].clone()
    }
}

fn encode(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn decode(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn decode_list(b: &[u8]) -> Option<Vec<i64>> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',').map(|e| e.parse().ok()).collect()
}

fn encode_list(l: &[i64]) -> Vec<u8> {
    l.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

/// What the client learned from one attempt.
enum Answer {
    Ok(Option<i64>),
    List(Vec<i64>),
    /// Definitely not applied (a conflict, a failed comparison).
    Fail(String),
    /// The request failed in a way that leaves its outcome open.
    Error(String),
}

async fn bounded<F: std::future::Future<Output = Answer>>(f: F) -> Answer {
    match tokio::time::timeout(OP_TIMEOUT, f).await {
        Ok(a) => a,
        Err(_) => Answer::Error("timed out".into()),
    }
}

/// Whether an operation's error is one a client sees as a failure of the store (not a
/// transaction conflict or a failed comparison, which are answers).
pub fn is_client_error(e: &str) -> bool {
    !(e == CONFLICT || e.starts_with(MISMATCH))
}

const CONFLICT: &str = "conflict";
/// The error of a read that returned bytes no client wrote.
pub const CORRUPT: &str = "corrupt value";
const MISMATCH: &str = "expected ";

fn err(s: tonic::Status) -> Answer {
    Answer::Error(format!("{:?}: {}", s.code(), s.message()))
}

/// A linearizable read of `key`: its bytes (None when absent), or the failure.
async fn get(ch: Channel, key: &str) -> Result<Option<Vec<u8>>, Answer> {
    let req = RawGetRequest {
        key: key.as_bytes().to_vec(),
        at_ts: 0,
        stale: false,
    };
    match RawKvClient::new(ch).raw_get(req).await {
        Ok(r) => {
            let r = r.into_inner();
            Ok(r.found.then_some(r.value))
        }
        Err(s) => Err(err(s)),
    }
}

async fn read(ch: Channel, key: &str) -> Answer {
    match get(ch, key).await {
        Ok(None) => Answer::Ok(None),
        Ok(Some(b)) => match decode(&b) {
            Some(v) => Answer::Ok(Some(v)),
            None => Answer::Error(format!("{CORRUPT} {b:?}")),
        },
        Err(a) => a,
    }
}

async fn read_list(ch: Channel, key: &str) -> Answer {
    match get(ch, key).await {
        Ok(None) => Answer::List(Vec::new()),
        Ok(Some(b)) => match decode_list(&b) {
            Some(l) => Answer::List(l),
            None => Answer::Error(format!("{CORRUPT} {b:?}")),
        },
        Err(a) => a,
    }
}

async fn write(ch: Channel, key: &str, v: i64) -> Answer {
    let req = RawPutRequest {
        key: key.as_bytes().to_vec(),
        value: encode(v),
    };
    match RawKvClient::new(ch).raw_put(req).await {
        Ok(_) => Answer::Ok(Some(v)),
        Err(s) => err(s),
    }
}

/// Reads `key` in a transaction, lets `next` decide the new value (None: give up, nothing
/// written), and commits it with `key` in the read set.
async fn read_modify_write(
    ch: Channel,
    key: &str,
    next: impl FnOnce(Option<&[u8]>) -> Result<Vec<u8>, String>,
) -> Answer {
    let mut txn = TransactionalKvClient::new(ch);
    let start_ts = match txn.begin(BeginRequest {}).await {
        Ok(r) => r.into_inner().start_ts,
        // Nothing was proposed yet: a failed begin wrote nothing.
        Err(s) => return Answer::Fail(format!("begin: {}", s.message())),
    };
    let current = match txn
        .get(TxnGetRequest {
            start_ts,
            key: key.as_bytes().to_vec(),
        })
        .await
    {
        Ok(r) => {
            let r = r.into_inner();
            r.found.then_some(r.value)
        }
        Err(s) => return Answer::Fail(format!("get: {}", s.message())),
    };
    let value = match next(current.as_deref()) {
        Ok(v) => v,
        Err(why) => return Answer::Fail(why),
    };
    let req = CommitRequest {
        start_ts,
        mutations: vec![Mutation {
            op: mutation::Op::Put as i32,
            key: key.as_bytes().to_vec(),
            value,
        }],
        read_set: vec![key.as_bytes().to_vec()],
    };
    match txn.commit(req).await {
        Ok(r) if r.get_ref().committed => Answer::Ok(None),
        Ok(_) => Answer::Fail(CONFLICT.into()),
        Err(s) => err(s),
    }
}

/// Runs client `id` until `stop` turns true.
pub async fn run_client(
    id: u32,
    nodes: Nodes,
    rec: Recorder,
    stop: tokio::sync::watch::Receiver<bool>,
    seed: u64,
) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut seq: i64 = 0;
    let mut last_seen: Vec<Option<i64>> = vec![None; REGISTERS];
    while !*stop.borrow() {
        seq += 1;
        let unique = (id as i64 + 1) * 10_000_000 + seq;
        let (node, ch) = nodes.pick(&mut rng);
        let invoke = rec.now();
        let mut op = Op {
            client: id,
            node,
            invoke,
            complete: 0,
            kind: Kind::Read,
            key: String::new(),
            value: None,
            expected: None,
            list: None,
            outcome: Outcome::Ok,
            error: None,
        };
        let answer = if rng.random_bool(0.7) {
            let r = rng.random_range(0..REGISTERS);
            op.key = register_key(r);
            match rng.random_range(0..10) {
                0..=3 => {
                    op.kind = Kind::Read;
                    let a = bounded(read(ch, &op.key)).await;
                    if let Answer::Ok(v) = &a {
                        last_seen[r] = *v;
                    }
                    a
                }
                4..=6 => {
                    op.kind = Kind::Write;
                    op.value = Some(unique);
                    let a = bounded(write(ch, &op.key, unique)).await;
                    if let Answer::Ok(_) = a {
                        last_seen[r] = Some(unique);
                    }
                    a
                }
                _ => {
                    op.kind = Kind::Cas;
                    let expected = last_seen[r].unwrap_or(0);
                    op.expected = Some(expected);
                    op.value = Some(unique);
                    let a = bounded(read_modify_write(ch, &op.key, |cur| {
                        match cur.and_then(decode) {
                            Some(v) if v == expected => Ok(encode(unique)),
                            other => Err(format!("{MISMATCH}{expected}, found {other:?}")),
                        }
                    }))
                    .await;
                    if let Answer::Ok(_) = a {
                        last_seen[r] = Some(unique);
                    }
                    a
                }
            }
        } else {
            op.key = list_key(rng.random_range(0..LISTS));
            if rng.random_bool(0.6) {
                op.kind = Kind::Append;
                op.value = Some(unique);
                bounded(read_modify_write(ch, &op.key, |cur| {
                    let mut l = match cur {
                        Some(b) => decode_list(b).ok_or("undecodable list")?,
                        None => Vec::new(),
                    };
                    l.push(unique);
                    Ok(encode_list(&l))
                }))
                .await
            } else {
                op.kind = Kind::ReadList;
                bounded(read_list(ch, &op.key)).await
            }
        };
        op.complete = rec.now();
        match answer {
            Answer::Ok(v) => {
                if op.kind == Kind::Read {
                    op.value = v;
                }
            }
            Answer::List(l) => op.list = Some(l),
            Answer::Fail(e) => {
                op.outcome = Outcome::Fail;
                op.error = Some(e);
            }
            Answer::Error(e) => {
                // A read that failed had no effect; a write that failed may have.
                op.outcome = if op.is_write() {
                    Outcome::Unknown
                } else {
                    Outcome::Fail
                };
                if op.outcome == Outcome::Unknown {
                    op.complete = NEVER;
                }
                op.error = Some(e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        rec.push(op);
    }
}

/// Reads every key once more after the faults healed (retrying each every 100 ms until it
/// answers or the deadline passes), as the final-read client: the checks compare these with
/// what was acknowledged.
pub async fn final_reads(nodes: &Nodes, rec: &Recorder, deadline: Duration) -> Vec<String> {
    let until = Instant::now() + deadline;
    let mut unread = Vec::new();
    let keys: Vec<(String, bool)> = (0..REGISTERS)
        .map(|i| (register_key(i), false))
        .chain((0..LISTS).map(|i| (list_key(i), true)))
        .collect();
    let mut rng = rand::rng();
    for (key, is_list) in keys {
        let read = || {
            let (node, ch) = nodes.pick(&mut rng);
            final_read(rec, node, ch, &key, is_list)
        };
        let done = read
            .retry(
                ConstantBuilder::new()
                    .with_delay(Duration::from_millis(100))
                    .without_max_times(),
            )
            // A corrupt value is an answer (the checker reports it); anything else is tried
            // again on a node picked anew.
            .when(|failed| !failed.corrupt && Instant::now() <= until)
            .await;
        match done {
            Ok(op) => rec.push(op),
            Err(failed) if failed.corrupt => rec.push(failed.op),
            Err(failed) => unread.push(format!(
                "the final read of {key} did not succeed: {}",
                failed.op.error.unwrap_or_default()
            )),
        }
    }
    unread
}

/// A final read that returned no value: the operation as it would be recorded (failed, with
/// its error), and whether the error was a corrupt value.
struct FailedRead {
    op: Op,
    corrupt: bool,
}

/// One final read of `key` through `node`.
async fn final_read(
    rec: &Recorder,
    node: u64,
    ch: Channel,
    key: &str,
    is_list: bool,
) -> Result<Op, FailedRead> {
    let invoke = rec.now();
    let a = if is_list {
        bounded(read_list(ch, key)).await
    } else {
        bounded(read(ch, key)).await
    };
    let mut op = Op {
        client: FINAL_CLIENT,
        node,
        invoke,
        complete: rec.now(),
        kind: if is_list { Kind::ReadList } else { Kind::Read },
        key: key.to_string(),
        value: None,
        expected: None,
        list: None,
        outcome: Outcome::Ok,
        error: None,
    };
    match a {
        Answer::Ok(v) => op.value = v,
        Answer::List(l) => op.list = Some(l),
        Answer::Fail(e) | Answer::Error(e) => {
            op.outcome = Outcome::Fail;
            let corrupt = e.starts_with(CORRUPT);
            op.error = Some(e);
            return Err(FailedRead { op, corrupt });
        }
    }
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip() {
        assert_eq!(decode_list(&encode_list(&[])), Some(vec![]));
        assert_eq!(decode_list(&encode_list(&[1, 22, 3])), Some(vec![1, 22, 3]));
        assert_eq!(decode_list(b"1,x"), None);
    }
}
