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
const MAX_BATCH: usize = 128;
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
    // A batch carries at most half an entry of arguments, so its writes fit in one commit.
    let byte_limit = service.limits().max_entry_bytes / 2;
    while let Some(first) = rx.recv().await {
        let mut bytes = job_bytes(&first);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < byte_limit {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job_bytes(&job);
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("brisk_redis_batch_commands").record(batch.len() as f64);
        let replies = run_batch(&service, &batch).await;
        for (job, reply) in batch.into_iter().zip(replies) {
            let _ = job.reply.send(reply);
        }
    }
}

fn job_bytes(j: &Job) -> usize {
    j.args.iter().map(|a| a.len() + 16).sum::<usize>() + j.name.len()
}

async fn run_batch(service: &Service, batch: &[Job]) -> Vec<Reply> {
    for attempt in 0..MAX_ATTEMPTS {
        crate::connection::backoff(attempt).await;
        let mut tx = Tx::new(service);
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch {
            let before = tx.save_point();
            tx.reset_read_budget();
            match command::run(&mut tx, &job.name, &job.args).await {
                Ok(r) => replies.push(r),
                Err(e) => {
                    tx.roll_back(before);
                    replies.push(Reply::error(e));
                }
            }
        }
        match tx.commit().await {
            Ok(Committed::Yes) => return replies,
            Ok(Committed::Conflict { .. }) => continue,
            Err(e) => {
                let line = CommandError::from(e).to_string();
                return batch.iter().map(|_| Reply::Error(line.clone())).collect();
            }
        }
    }
    let line = CommandError::TooManyConflicts.to_string();
    batch.iter().map(|_| Reply::Error(line.clone())).collect()
}
