//! Runs the data commands of every connection of one node in batches: each batch is one
//! optimistic transaction and one commit. Concurrent commands on a hot key (INCR of a
//! counter, LPUSH onto a queue) would otherwise conflict with each other and retry; in a
//! batch they run one after the other on the transaction's own writes, and fifty clients
//! cost one log entry instead of fifty.
//!
//! A command's reply is sent only after its batch committed (a later command in the batch
//! may have read its writes). A command that fails leaves no writes behind (the transaction
//! rolls back to before it); a batch that conflicts with a writer elsewhere runs again;
//! a batch whose commit failed answers that failure to each of its commands.

use std::sync::Arc;

use brisk_service::Service;
use tokio::sync::{mpsc, oneshot};

use crate::command;
use crate::error::CommandError;
use crate::reply::Reply;
use crate::tx::{Committed, Tx};

/// Most commands in one batch.
const MAX_BATCH: usize = 1024;
/// How many times a batch runs again after its transaction conflicted.
const MAX_ATTEMPTS: usize = 64;

struct Job {
    name: String,
    args: Vec<Vec<u8>>,
    reply: oneshot::Sender<Reply>,
}

#[derive(Clone)]
pub struct Combiner {
    jobs: mpsc::Sender<Job>,
}

impl Combiner {
    /// Starts the batching task of `service`; it ends when every handle is dropped.
    pub fn start(service: Arc<Service>) -> Combiner {
        let (jobs, rx) = mpsc::channel(4096);
        tokio::spawn(run(service, rx));
        Combiner { jobs }
    }

    /// Queues data command `name` (lower case, arity checked) for the next batch; its reply
    /// comes through the returned [`Pending`]. Commands queued one after the other run in
    /// that order.
    pub async fn submit(&self, name: String, args: Vec<Vec<u8>>) -> Pending {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job { name, args, reply }).await;
        Pending(answer)
    }
}

/// The reply of a queued command, once its batch is done.
pub struct Pending(oneshot::Receiver<Reply>);

impl Pending {
    pub async fn reply(self) -> Reply {
        self.0
            .await
            .unwrap_or_else(|_| Reply::Error("TRYAGAIN this node is shutting down".into()))
    }
}

async fn run(service: Arc<Service>, mut rx: mpsc::Receiver<Job>) {
    // A batch carries at most half an entry of arguments, so its writes usually fit in one
    // commit (a batch that would not is cut, see `run_batch`).
    let byte_limit = service.limits().max_entry_bytes / 2;
    let mut waiting: Vec<Job> = Vec::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(job) => waiting.push(job),
                None => return,
            }
        }
        let mut bytes: usize = waiting.iter().map(job_bytes).sum();
        while waiting.len() < MAX_BATCH && bytes < byte_limit {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job_bytes(&job);
                    waiting.push(job);
                }
                Err(_) => break,
            }
        }
        let batch = std::mem::take(&mut waiting);
        metrics::histogram!("brisk_redis_batch_commands").record(batch.len() as f64);
        let (done, rest) = run_batch(&service, batch).await;
        for (job, reply) in done {
            let _ = job.reply.send(reply);
        }
        // Commands cut from the batch go first in the next one, in their order.
        waiting = rest;
    }
}

fn job_bytes(j: &Job) -> usize {
    j.args.iter().map(|a| a.len() + 16).sum::<usize>() + j.name.len()
}

/// Runs `batch` in one transaction. Returns the commands that ran with their replies, and
/// the commands cut from the batch to run in the next one: a command that would take the
/// batch over the read budget or over one log entry is cut with every command after it
/// (alone in a batch, it answers the error instead).
async fn run_batch(service: &Service, mut batch: Vec<Job>) -> (Vec<(Job, Reply)>, Vec<Job>) {
    let entry_limit = service.limits().max_entry_bytes;
    let mut outcome = Err(CommandError::TooManyConflicts);
    let mut cut = batch.len();
    for attempt in 0..MAX_ATTEMPTS {
        crate::connection::backoff(attempt).await;
        let mut tx = Tx::new(service);
        let mut replies = Vec::with_capacity(batch.len());
        cut = batch.len();
        for (i, job) in batch.iter().enumerate() {
            let before = tx.save_point();
            let result = Box::pin(command::run(&mut tx, &job.name, &job.args)).await;
            let refused = tx.take_refusal();
            let too_big = tx.entry_bytes() > entry_limit;
            let over_budget = matches!(result, Err(CommandError::ReadBudget(_)));
            if i > 0 && (too_big || over_budget) {
                tx.roll_back(before);
                cut = i;
                break;
            }
            let reply = match (result, refused) {
                (_, Some(e)) | (Err(e), None) => {
                    tx.roll_back(before);
                    Reply::error(e)
                }
                (Ok(_), None) if too_big => {
                    tx.roll_back(before);
                    Reply::error(CommandError::other(format!(
                        "ERR the command would write more than {entry_limit} bytes in one commit (the server's --max-entry-bytes)"
                    )))
                }
                (Ok(r), None) => {
                    if !tx.wrote_since(&before) {
                        tx.forget_reads_since(&before);
                    }
                    r
                }
            };
            replies.push(reply);
        }
        match tx.commit().await {
            Ok(Committed::Yes) => {
                outcome = Ok(replies);
                break;
            }
            Ok(Committed::Conflict { .. }) => continue,
            Err(e) => {
                outcome = Err(CommandError::from(e));
                break;
            }
        }
    }
    let rest = batch.split_off(cut);
    let done = match outcome {
        Ok(replies) => batch.into_iter().zip(replies).collect(),
        Err(e) => {
            let line = e.to_string();
            batch
                .into_iter()
                .map(|j| (j, Reply::Error(line.clone())))
                .collect()
        }
    };
    (done, rest)
}
