//! One client connection: its protocol version, name, MULTI queue and WATCH state, and the
//! connection-level commands.

use std::sync::Arc;

use brisk_service::{KeyRange, Origin, Read, Service, ServiceError};

use crate::command::{self, arity, arity_ok, parse_i64};
use crate::cursors::Cursors;
use crate::error::CommandError;
use crate::keyspace::{record_key, record_prefix, records_end, Record, NAMESPACE};
use crate::reply::Reply;
use crate::tx::{wall_clock_ms, Committed, Tx};
use brisk_service::Timestamp;

/// How many times a command runs again after its transaction conflicted.
const MAX_ATTEMPTS: usize = 64;
/// Keys one connection may WATCH at once.
const MAX_WATCHED: usize = 10_000;

/// Before attempt `n` (from 0): nothing first, then a short random wait that grows, so that
/// clients contending for one key spread out instead of conflicting in lockstep.
pub(crate) async fn backoff(attempt: usize) {
    if attempt == 0 {
        return;
    }
    let ceiling_us = 200u64 << attempt.min(6);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    tokio::time::sleep(std::time::Duration::from_micros(nanos % ceiling_us)).await;
}
/// The Redis version whose commands and replies this endpoint follows.
pub const REDIS_VERSION: &str = "7.2.0";

/// State the connections of one endpoint share: scan cursors and the batching task.
pub struct Shared {
    cursors: std::sync::Mutex<Cursors>,
    combiner: crate::combiner::Combiner,
}

impl Shared {
    pub fn new(service: Arc<Service>) -> Shared {
        Shared {
            cursors: Default::default(),
            combiner: crate::combiner::Combiner::start(service),
        }
    }

    fn remember(&self, last_key: Vec<u8>) -> u64 {
        let mut c = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        c.remember(last_key)
    }

    fn recall(&self, id: u64) -> Option<Vec<u8>> {
        let c = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        c.recall(id)
    }
}

pub struct Connection {
    service: Arc<Service>,
    shared: Arc<Shared>,
    pub id: u64,
    resp3: bool,
    name: Option<Vec<u8>>,
    /// Commands queued since MULTI, and their arguments' bytes.
    multi: Option<Vec<(String, Vec<Vec<u8>>)>>,
    queued_bytes: usize,
    /// A queued command was refused: EXEC discards the transaction.
    multi_failed: bool,
    /// WATCHed keys, each with the timestamp of the WATCH that named it.
    watch: Vec<(Vec<u8>, Timestamp)>,
    /// The `default` user's password, when the endpoint has one.
    password: Option<Arc<str>>,
    /// Whether this connection may run commands (always, without a password).
    authenticated: bool,
}

/// What the connection does after a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Continue,
    Close,
}

impl Connection {
    pub fn new(
        service: Arc<Service>,
        shared: Arc<Shared>,
        id: u64,
        password: Option<Arc<str>>,
    ) -> Self {
        Connection {
            authenticated: password.is_none(),
            password,
            service,
            shared,
            id,
            resp3: false,
            name: None,
            multi: None,
            queued_bytes: 0,
            multi_failed: false,
            watch: Vec::new(),
        }
    }

    pub fn resp3(&self) -> bool {
        self.resp3
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// AUTH [user] password: only the `default` user exists. The comparison takes the same
    /// time wherever the first difference is.
    fn auth(&mut self, user: Option<&[u8]>, given: &[u8]) -> Result<Reply, CommandError> {
        let Some(password) = &self.password else {
            return Err(CommandError::other(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        };
        let user_ok = user.is_none_or(|u| u == b"default");
        let expected = password.as_bytes();
        let same = expected.len() == given.len()
            && expected
                .iter()
                .zip(given)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if user_ok && same {
            self.authenticated = true;
            Ok(Reply::Ok)
        } else {
            Err(CommandError::other(
                "WRONGPASS invalid username-password pair or user is disabled.",
            ))
        }
    }

    /// Queues `args` in the node's batches when it is a data command outside MULTI (its
    /// reply comes later; commands queued from one connection keep their order), or hands it
    /// back to be run with [`execute`](Self::execute) once earlier replies are in.
    pub async fn submit(
        &mut self,
        mut args: Vec<Vec<u8>>,
    ) -> Result<crate::combiner::Pending, Vec<Vec<u8>>> {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let batched = self.multi.is_none()
            && self.authenticated
            && is_data_command(&name)
            && !matches!(name.as_str(), "hscan" | "sscan" | "zscan")
            && arity(&name).is_some_and(|a| arity_ok(a, args.len()));
        if !batched {
            return Err(args);
        }
        metrics::counter!("brisk_redis_commands_total", "command" => name.clone()).increment(1);
        args.remove(0);
        Ok(self.shared.combiner.submit(name, args).await)
    }

    /// Runs one command (`args[0]` is its name) and returns its reply.
    pub async fn execute(&mut self, mut args: Vec<Vec<u8>>) -> (Reply, After) {
        let raw_name = args.remove(0);
        let name = String::from_utf8_lossy(&raw_name).to_ascii_lowercase();
        let Some(arity) = arity(&name) else {
            if self.multi.is_some() {
                self.multi_failed = true;
            }
            // As Redis: the name and the arguments shown are cut at 128 bytes each.
            let mut shown = String::new();
            for a in &args {
                if shown.len() >= 128 {
                    break;
                }
                let room = 128 - shown.len();
                let a = String::from_utf8_lossy(&a[..a.len().min(room)]).into_owned();
                shown.push_str(&format!("'{a}' "));
            }
            return (
                Reply::Error(format!(
                    "ERR unknown command '{}', with args beginning with: {shown}",
                    String::from_utf8_lossy(&raw_name[..raw_name.len().min(128)])
                )),
                After::Continue,
            );
        };
        metrics::counter!("brisk_redis_commands_total", "command" => name.clone()).increment(1);
        if !arity_ok(arity, args.len() + 1) {
            if self.multi.is_some() {
                self.multi_failed = true;
            }
            return (Reply::error(CommandError::Arity(name)), After::Continue);
        }
        if !self.authenticated && !matches!(name.as_str(), "auth" | "hello" | "quit") {
            return (
                Reply::Error("NOAUTH Authentication required.".into()),
                After::Continue,
            );
        }
        if self.multi.is_some()
            && !matches!(
                name.as_str(),
                "exec" | "discard" | "multi" | "watch" | "quit" | "unwatch"
            )
        {
            return (self.queue(name, args), After::Continue);
        }
        match self.connection_command(&name, &args).await {
            Some(Ok(reply)) => (
                reply,
                if name == "quit" {
                    After::Close
                } else {
                    After::Continue
                },
            ),
            Some(Err(e)) => (Reply::error(e), After::Continue),
            None => (
                self.shared.combiner.submit(name, args).await.reply().await,
                After::Continue,
            ),
        }
    }

    fn queue(&mut self, name: String, args: Vec<Vec<u8>>) -> Reply {
        if !is_data_command(&name) && !is_stateless(&name) {
            self.multi_failed = true;
            return Reply::Error(format!(
                "ERR Command '{name}' is not allowed inside a transaction on this server"
            ));
        }
        // A transaction commits as one log entry: what it queues is bounded by the entry
        // limit (and so is what a client can make a node hold for it).
        let limit = self.service.limits().max_entry_bytes;
        self.queued_bytes = args
            .iter()
            .fold(self.queued_bytes.saturating_add(name.len()), |n, a| {
                n.saturating_add(a.len() + 16)
            });
        if self.queued_bytes > limit {
            self.multi_failed = true;
            if let Some(q) = self.multi.as_mut() {
                q.clear();
            }
            return Reply::Error(format!(
                "ERR the transaction's queued commands exceed {limit} bytes (the server's --max-entry-bytes)"
            ));
        }
        if let Some(q) = self.multi.as_mut() {
            q.push((name, args));
        }
        Reply::Simple("QUEUED".into())
    }

    /// Connection and server commands; None for a data command.
    async fn connection_command(
        &mut self,
        name: &str,
        args: &[Vec<u8>],
    ) -> Option<Result<Reply, CommandError>> {
        if let Some(reply) = stateless_reply(name, args) {
            return Some(reply);
        }
        let reply = match name {
            "quit" => Ok(Reply::Ok),
            "auth" => match args {
                [password] => self.auth(None, password),
                [user, password] => self.auth(Some(user), password),
                _ => Err(CommandError::Syntax),
            },
            "select" => match parse_i64(&args[0]) {
                Ok(0) => Ok(Reply::Ok),
                Ok(_) => Err(CommandError::other("ERR DB index is out of range")),
                Err(e) => Err(e),
            },
            "hello" => self.hello(args),
            "client" => self.client(args),
            "command" => Ok(command_info(args)),
            "dbsize" => count_keys(&self.service).await.map(Reply::Int),
            "scan" => self.scan(args).await,
            // A page of one collection per call, outside the node's batches: the cursor is
            // the node's, as SCAN's (inside MULTI the transaction reads them whole).
            "hscan" | "sscan" | "zscan" => self.scan_elements(name, args).await,
            // KEYS walks the whole keyspace: on its own transaction, not in the node's
            // batches, where it would hold every other client's command back.
            "keys" => {
                let mut tx = Tx::new(&self.service);
                Box::pin(command::run(&mut tx, "keys", args)).await
            }
            "info" => self.info().await,
            "flushdb" | "flushall" => self
                .service
                .delete_prefix(Origin::Client, NAMESPACE.to_vec())
                .await
                .map(|_| Reply::Ok)
                .map_err(CommandError::from),
            "multi" => {
                if self.multi.is_some() {
                    Err(CommandError::other("ERR MULTI calls can not be nested"))
                } else {
                    self.multi = Some(Vec::new());
                    self.queued_bytes = 0;
                    self.multi_failed = false;
                    Ok(Reply::Ok)
                }
            }
            "discard" => match self.multi.take() {
                Some(_) => {
                    self.watch.clear();
                    Ok(Reply::Ok)
                }
                None => Err(CommandError::other("ERR DISCARD without MULTI")),
            },
            "exec" => match self.multi.take() {
                Some(queued) => {
                    let watch = std::mem::take(&mut self.watch);
                    if std::mem::take(&mut self.multi_failed) {
                        Err(CommandError::other(
                            "EXECABORT Transaction discarded because of previous errors.",
                        ))
                    } else {
                        self.exec(queued, watch).await
                    }
                }
                None => Err(CommandError::other("ERR EXEC without MULTI")),
            },
            "watch" => {
                if self.multi.is_some() {
                    Err(CommandError::other("ERR WATCH inside MULTI is not allowed"))
                } else {
                    self.watch_keys(args).await
                }
            }
            "unwatch" => {
                self.watch.clear();
                Ok(Reply::Ok)
            }
            _ => return None,
        };
        Some(reply)
    }

    fn hello(&mut self, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
        if let Some(v) = args.first() {
            let version = parse_i64(v).map_err(|_| {
                CommandError::other("ERR Protocol version is not an integer or out of range")
            })?;
            if version != 2 && version != 3 {
                return Err(CommandError::other("NOPROTO unsupported protocol version"));
            }
            let mut i = 1;
            while i < args.len() {
                match String::from_utf8_lossy(&args[i])
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "setname" if i + 1 < args.len() => {
                        self.name = Some(args[i + 1].clone());
                        i += 2;
                    }
                    "auth" if i + 2 < args.len() => {
                        self.auth(Some(&args[i + 1]), &args[i + 2])?;
                        i += 3;
                    }
                    _ => return Err(CommandError::Syntax),
                }
            }
            if !self.authenticated {
                return Err(CommandError::other(
                    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
                ));
            }
            self.resp3 = version == 3;
        } else if !self.authenticated {
            return Err(CommandError::other("NOAUTH Authentication required."));
        }
        let (leader, _) = self.service.leader();
        let role = if leader == Some(self.service.node_id()) {
            "master"
        } else {
            "replica"
        };
        Ok(Reply::Map(vec![
            (Reply::bulk("server"), Reply::bulk("redis")),
            (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
            (
                Reply::bulk("proto"),
                Reply::Int(if self.resp3 { 3 } else { 2 }),
            ),
            (Reply::bulk("id"), Reply::Int(self.id as i64)),
            (Reply::bulk("mode"), Reply::bulk("standalone")),
            (Reply::bulk("role"), Reply::bulk(role)),
            (Reply::bulk("modules"), Reply::Array(Vec::new())),
        ]))
    }

    fn client(&mut self, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
        let sub = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        match (sub.as_str(), args.len()) {
            ("setname", 2) => {
                if args[1].iter().any(|&b| b <= b' ' || b > b'~') {
                    return Err(CommandError::other(
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    ));
                }
                self.name = (!args[1].is_empty()).then(|| args[1].clone());
                Ok(Reply::Ok)
            }
            ("getname", 1) => Ok(self.name.clone().map_or(Reply::Nil, Reply::Bulk)),
            ("id", 1) => Ok(Reply::Int(self.id as i64)),
            ("setinfo", 3) => Ok(Reply::Ok),
            ("setname" | "getname" | "id" | "setinfo", _) => {
                Err(CommandError::Arity(format!("client|{sub}")))
            }
            _ => Err(CommandError::other(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[0])
            ))),
        }
    }

    async fn watch_keys(&mut self, keys: &[Vec<u8>]) -> Result<Reply, CommandError> {
        if self.watch.len() + keys.len() > MAX_WATCHED {
            return Err(CommandError::other(format!(
                "ERR at most {MAX_WATCHED} keys can be watched at once"
            )));
        }
        let ts = self.service.begin(Origin::Client).await?;
        self.watch.extend(keys.iter().map(|k| (k.clone(), ts)));
        Ok(Reply::Ok)
    }

    /// EXEC: the queued commands as one brisk transaction. A command that fails answers its
    /// error in place and the others still apply (as Redis); a watched key written after the
    /// first WATCH aborts it all (a nil reply).
    async fn exec(
        &self,
        queued: Vec<(String, Vec<Vec<u8>>)>,
        watch: Vec<(Vec<u8>, Timestamp)>,
    ) -> Result<Reply, CommandError> {
        for attempt in 0..MAX_ATTEMPTS {
            backoff(attempt).await;
            let mut tx = Tx::new(&self.service);
            if !watch.is_empty() {
                // The transaction starts first: a write to a watched key committed at or below
                // its start is seen by the check below (a linearizable read after it); one
                // committed above it conflicts in the commit (the key is in the read set).
                tx.start_ts().await?;
                for (k, watched_at) in &watch {
                    let bkey = record_key(k);
                    let last = self
                        .service
                        .latest_commit_ts(Origin::Client, &bkey, Read::Linearizable)
                        .await?;
                    if last.is_some_and(|ts| ts > *watched_at) {
                        return Ok(Reply::NilArray);
                    }
                    tx.watch(bkey);
                }
            }
            let mut replies = Vec::with_capacity(queued.len());
            for (name, args) in &queued {
                if let Some(reply) = stateless_reply(name, args) {
                    replies.push(reply.unwrap_or_else(Reply::error));
                    continue;
                }
                let before = tx.save_point();
                let result = match (
                    Box::pin(command::run(&mut tx, name, args)).await,
                    tx.take_refusal(),
                ) {
                    (Ok(_), Some(refused)) => Err(refused),
                    (result, _) => result,
                };
                match result {
                    Ok(r) => replies.push(r),
                    // Nothing is written when brisk itself could not serve a command.
                    Err(CommandError::Service(e)) => return Err(e.into()),
                    // A failed command leaves nothing behind; the others still apply.
                    Err(e) => {
                        tx.roll_back(before);
                        replies.push(Reply::error(e));
                    }
                }
            }
            match tx.commit().await? {
                Committed::Yes => return Ok(Reply::Array(replies)),
                Committed::Conflict { .. } => continue,
            }
        }
        Err(CommandError::TooManyConflicts)
    }

    /// HSCAN, SSCAN or ZSCAN key cursor [MATCH p] [COUNT n]: up to COUNT elements after the
    /// cursor's, from one linearizable snapshot per call; every element present from the
    /// first call to the last is returned (elements are visited in member order).
    async fn scan_elements(&self, name: &str, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
        let opts = command::scan_args(&args[1..], false)?;
        let after = match opts.cursor {
            0 => None,
            id => Some(
                self.shared
                    .recall(id)
                    .ok_or_else(|| CommandError::other("ERR invalid cursor"))?,
            ),
        };
        let mut tx = Tx::new(&self.service);
        let kind = command::scan::kind_of(name);
        let page = command::scan::page(&mut tx, &args[0], kind, &opts, after).await?;
        let cursor = page.after.map_or(0, |k| self.shared.remember(k));
        Ok(Reply::Array(vec![
            Reply::bulk(cursor.to_string()),
            Reply::Array(page.items),
        ]))
    }

    /// SCAN cursor [MATCH p] [COUNT n] [TYPE t]: up to COUNT keys after the cursor's, each
    /// call a linearizable read; every key present from the first call to the last is
    /// returned (keys are visited in order), without materialising the keyspace.
    async fn scan(&self, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
        let opts = command::scan_args(args, true)?;
        let prefix = record_prefix();
        let end = records_end();
        let start = match opts.cursor {
            0 => prefix.clone(),
            id => {
                let invalid = || CommandError::other("ERR invalid cursor");
                // A cursor of HSCAN, SSCAN or ZSCAN names an element key: not SCAN's.
                let k = self
                    .shared
                    .recall(id)
                    .filter(|k| k.starts_with(&prefix))
                    .ok_or_else(invalid)?;
                match crate::tx::key_after(&k, self.service.limits().max_key_bytes) {
                    Some(next) => next,
                    None => end.clone(),
                }
            }
        };
        let page = self
            .service
            .scan(
                Origin::Client,
                KeyRange::Span {
                    start,
                    end: Some(end),
                },
                opts.count as u32,
                Read::Linearizable,
            )
            .await?;
        let now = wall_clock_ms();
        let done = page.pairs.len() < opts.count && !page.truncated;
        let last = page.pairs.last().map(|p| p.key.clone());
        let mut keys = Vec::new();
        for p in page.pairs {
            let r = Record::decode(p.value)?;
            let key = &p.key[prefix.len()..];
            if r.expired(now)
                || opts.kind.as_deref().is_some_and(|k| k != r.kind.name())
                || opts
                    .pattern
                    .as_ref()
                    .is_some_and(|pat| !command::glob::matches(pat, key))
            {
                continue;
            }
            keys.push(Reply::Bulk(key.to_vec()));
        }
        let cursor = match last {
            Some(k) if !done => self.shared.remember(k),
            _ => 0,
        };
        Ok(Reply::Array(vec![
            Reply::bulk(cursor.to_string()),
            Reply::Array(keys),
        ]))
    }

    async fn info(&self) -> Result<Reply, CommandError> {
        let status = self.service.status();
        let role = if status.has_leader && status.leader_id == status.id {
            "master"
        } else {
            "slave"
        };
        let keys = count_keys(&self.service).await?;
        let text = format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nbrisk_version:{}\r\nredis_mode:standalone\r\n\r\n\
             # Replication\r\nrole:{role}\r\nbrisk_node_id:{}\r\nbrisk_leader_id:{}\r\nbrisk_leader_addr:{}\r\n\
             brisk_term:{}\r\nbrisk_commit_index:{}\r\nbrisk_applied_index:{}\r\nconnected_slaves:{}\r\n\r\n\
             # Keyspace\r\n{}",
            env!("CARGO_PKG_VERSION"),
            status.id,
            status.leader_id,
            status.leader_addr,
            status.term,
            status.commit_index,
            status.applied_index,
            status.members.len().saturating_sub(1),
            if keys > 0 {
                format!("db0:keys={keys},expires=0,avg_ttl=0\r\n")
            } else {
                String::new()
            }
        );
        Ok(Reply::Bulk(text.into_bytes()))
    }
}

/// Commands answered from their arguments alone, which MULTI queues like data commands (their
/// replies take their place in EXEC's).
fn is_stateless(name: &str) -> bool {
    matches!(name, "ping" | "echo" | "time")
}

fn stateless_reply(name: &str, args: &[Vec<u8>]) -> Option<Result<Reply, CommandError>> {
    let reply = match name {
        "ping" => match args {
            [] => Ok(Reply::Simple("PONG".into())),
            [m] => Ok(Reply::Bulk(m.clone())),
            _ => Err(CommandError::Arity("ping".into())),
        },
        "echo" => match args {
            [m] => Ok(Reply::Bulk(m.clone())),
            _ => Err(CommandError::Arity("echo".into())),
        },
        "time" => {
            let us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            Ok(Reply::Array(vec![
                Reply::bulk((us / 1_000_000).to_string()),
                Reply::bulk((us % 1_000_000).to_string()),
            ]))
        }
        _ => return None,
    };
    Some(reply)
}

fn is_data_command(name: &str) -> bool {
    !matches!(
        name,
        "ping"
            | "echo"
            | "hello"
            | "quit"
            | "auth"
            | "select"
            | "client"
            | "command"
            | "time"
            | "info"
            | "dbsize"
            | "scan"
            | "keys"
            | "flushdb"
            | "flushall"
            | "multi"
            | "exec"
            | "discard"
            | "watch"
            | "unwatch"
    )
}

fn command_info(args: &[Vec<u8>]) -> Reply {
    let sub = args
        .first()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase());
    match sub.as_deref() {
        Some("count") => Reply::Int(command::COMMANDS.len() as i64),
        Some("docs") => Reply::Map(Vec::new()),
        _ => Reply::Array(
            command::COMMANDS
                .iter()
                .map(|(n, a)| Reply::Array(vec![Reply::bulk(n), Reply::Int(i64::from(*a))]))
                .collect(),
        ),
    }
}

/// Live (not expired) keys, counted page by page on one snapshot.
async fn count_keys(service: &Service) -> Result<i64, CommandError> {
    const PAGE: u32 = 10_000;
    let ts = service.begin(Origin::Client).await?;
    let prefix = record_prefix();
    let end = records_end();
    let now = wall_clock_ms();
    let (mut start, mut count) = (prefix, 0i64);
    loop {
        let page = service
            .txn_scan(
                Origin::Client,
                ts,
                KeyRange::Span {
                    start: start.clone(),
                    end: Some(end.clone()),
                },
                PAGE,
            )
            .await?;
        for p in &page.pairs {
            if !Record::decode(p.value.clone())?.expired(now) {
                count += 1;
            }
        }
        match page.pairs.last() {
            Some(last) if page.truncated || page.pairs.len() == PAGE as usize => {
                match crate::tx::key_after(&last.key, service.limits().max_key_bytes) {
                    Some(next) => start = next,
                    None => return Ok(count),
                }
            }
            _ => return Ok(count),
        }
    }
}

impl From<ServiceError> for Reply {
    fn from(e: ServiceError) -> Reply {
        Reply::error(CommandError::from(e))
    }
}
