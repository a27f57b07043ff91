//! Reclaims expired keys. Expired records are invisible at once (reads and writes judge them
//! by the clock), but they stay stored until something removes them: on the leader, this
//! task walks the record keys a page at a time and deletes the ones that have expired, each
//! deletion an ordinary replicated transaction that checks the record again first (a key
//! rewritten since the page was read is left alone).

use std::sync::Arc;
use std::time::Duration;

use brisk_service::{KeyRange, Origin, Read, Service};
use tokio::sync::watch;

use crate::command::forget_elements;
use crate::keyspace::{record_prefix, Record};
use crate::tx::{wall_clock_ms, Committed, Tx};

/// Records examined per round.
const PAGE: u32 = 1_000;
/// Pause between rounds (shorter while expired keys keep turning up).
const IDLE: Duration = Duration::from_secs(1);
const BUSY: Duration = Duration::from_millis(50);

pub async fn run(service: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let prefix = record_prefix();
    let mut end = prefix.clone();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut start = prefix.clone();
    loop {
        let mut pause = IDLE;
        if service.leader().0 == Some(service.node_id()) {
            match round(&service, &mut start, &prefix, &end).await {
                Ok(0) => {}
                Ok(n) => {
                    metrics::counter!("brisk_redis_expired_keys_reclaimed_total").increment(n);
                    pause = BUSY;
                }
                Err(e) => tracing::debug!(error = %e, "expired-key sweep round failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One page from `start`: deletes what has expired, moves `start` on (back to the first
/// record after the last page). Returns how many keys it deleted.
async fn round(
    service: &Service,
    start: &mut Vec<u8>,
    prefix: &[u8],
    end: &[u8],
) -> Result<u64, crate::CommandError> {
    let page = service
        .scan(
            Origin::Client,
            KeyRange::Span {
                start: start.clone(),
                end: Some(end.to_vec()),
            },
            PAGE,
            Read::Linearizable,
        )
        .await?;
    let now = wall_clock_ms();
    let expired: Vec<Vec<u8>> = page
        .pairs
        .iter()
        .filter(|p| Record::decode(p.value.clone()).is_ok_and(|r| r.expired(now)))
        .map(|p| p.key[prefix.len()..].to_vec())
        .collect();
    match page.pairs.last() {
        Some(last) if page.pairs.len() == PAGE as usize || page.truncated => {
            *start = last.key.clone();
            start.push(0);
        }
        _ => *start = prefix.to_vec(),
    }
    if expired.is_empty() {
        return Ok(0);
    }
    let mut tx = Tx::new(service);
    let mut deleted = 0;
    for key in &expired {
        // `load` hides expired records: read the stored one to see it is still expired.
        if let Some(r) = tx.load_stored(key).await? {
            if r.expired(tx.now_ms()) {
                forget_elements(&mut tx, key, &r);
                tx.remove(key);
                deleted += 1;
            }
        }
    }
    match tx.commit().await? {
        Committed::Yes => Ok(deleted),
        // A key was rewritten meanwhile: the next pass finds what is still expired.
        Committed::Conflict { .. } => Ok(0),
    }
}
