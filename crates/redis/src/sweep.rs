//! Reclaims what the keyspace no longer reaches. Expired records are invisible at once
//! (reads and writes judge them by the clock), but they stay stored until something removes
//! them: on the leader, this task walks the record keys a page at a time and deletes the
//! ones that have expired, each deletion an ordinary replicated transaction that checks the
//! record again first (a key rewritten since the page was read is left alone).
//!
//! Alongside, it walks the collection elements and deletes every generation no record names
//! any more: a collection that SET, RENAME or MSET replaced leaves its elements behind, as
//! does a DEL whose element deletion after the commit failed (docs/design/redis.md,
//! "Keyspace").

use std::sync::Arc;
use std::time::Duration;

use brisk_service::{KeyRange, Origin, Read, Service};
use tokio::sync::watch;

use crate::command::forget_elements;
use crate::keyspace::{
    element_owner, element_prefix, elements_prefix, record_key, record_prefix, records_end,
    Collection, Kind, Record,
};
use crate::tx::{key_after, prefix_end, wall_clock_ms, Committed, Tx};

/// Records examined per round.
const PAGE: u32 = 1_000;
/// Element keys examined per round of the walk for orphaned generations.
const ELEMENT_PAGE: u32 = 256;
/// Pause between rounds (shorter while expired keys keep turning up).
const IDLE: Duration = Duration::from_secs(1);
const BUSY: Duration = Duration::from_millis(50);

pub async fn run(service: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let prefix = record_prefix();
    let end = records_end();
    let mut start = prefix.clone();
    let mut element_start = elements_prefix();
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
            match orphan_round(&service, &mut element_start).await {
                Ok(0) => {}
                Ok(n) => {
                    metrics::counter!("brisk_redis_orphaned_generations_reclaimed_total")
                        .increment(n);
                    pause = BUSY;
                }
                Err(e) => tracing::debug!(error = %e, "orphaned-element sweep round failed"),
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
            *start = key_after(&last.key, service.limits().max_key_bytes)
                .unwrap_or_else(|| prefix.to_vec());
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

/// One page of the element walk from `start`: deletes the elements of every generation that
/// no record names, and moves `start` past each collection seen (back to the first element
/// after the last page). Returns how many generations it deleted.
///
/// Deleting is safe because a generation, once no record names it, is never written again:
/// a new collection takes a fresh generation, and every change of an existing one rewrites
/// its record, so a writer that still saw the old record conflicts on commit. The page and
/// the records are read at one snapshot, so elements seen there were committed together with
/// a record naming them, and that record has since been replaced or removed.
async fn orphan_round(service: &Service, start: &mut Vec<u8>) -> Result<u64, crate::CommandError> {
    let all = elements_prefix();
    let end = prefix_end(&all);
    let ts = service.begin(Origin::Client).await?;
    let page = service
        .txn_scan(
            Origin::Client,
            ts,
            KeyRange::Span {
                start: start.clone(),
                end: end.clone(),
            },
            ELEMENT_PAGE,
        )
        .await?;
    let mut owners: Vec<(Vec<u8>, u64)> = Vec::new();
    for pair in &page.pairs {
        if let Some((key, generation)) = element_owner(&pair.key) {
            if owners
                .last()
                .is_none_or(|(k, g)| (k.as_slice(), *g) != (key, generation))
            {
                owners.push((key.to_vec(), generation));
            }
        }
    }
    let more = page.truncated || page.pairs.len() == ELEMENT_PAGE as usize;
    let next = match (owners.last(), page.pairs.last()) {
        _ if !more => all,
        // Past every element of the last collection seen: it has been judged whole.
        (Some((key, generation)), _) => {
            prefix_end(&element_prefix(key, *generation)).unwrap_or_else(elements_prefix)
        }
        // A page of keys that are not element keys (written into the reserved namespace by
        // hand): past the last one.
        (None, Some(last)) => key_after(&last.key, service.limits().max_key_bytes).unwrap_or(all),
        (None, None) => all,
    };
    let mut reclaimed = 0;
    for (key, generation) in owners {
        // The record is read raw (no read budget: a string record may be large).
        let stored = service
            .txn_get(Origin::Client, ts, &record_key(&key))
            .await?;
        if !names_generation(stored.map(|v| v.value), generation) {
            service
                .delete_prefix(Origin::Client, element_prefix(&key, generation))
                .await?;
            reclaimed += 1;
        }
    }
    // Moved on only once the page is judged: a failed round repeats it.
    *start = next;
    Ok(reclaimed)
}

/// Whether a stored record (expired or not) names `generation` as its elements'. One that
/// does not decode, in its header or in its collection body, is taken to name it: its
/// elements are left for an operator, with it.
fn names_generation(record: Option<Vec<u8>>, generation: u64) -> bool {
    let Some(bytes) = record else {
        return false;
    };
    match Record::decode(bytes) {
        Ok(r) if r.kind == Kind::String => false,
        Ok(r) => Collection::decode(&r.body).map_or(true, |c| c.generation == generation),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_readable_record_of_another_generation_or_type_releases_elements() {
        let hash = |generation| {
            let body = Collection {
                count: 1,
                generation,
                head: 0,
            }
            .encode();
            Some(
                Record {
                    kind: Kind::Hash,
                    expire_at_ms: None,
                    body,
                }
                .encode(),
            )
        };
        assert!(names_generation(hash(7), 7));
        assert!(!names_generation(hash(8), 7));
        assert!(!names_generation(None, 7));
        assert!(!names_generation(
            Some(Record::string(b"v".to_vec(), None).encode()),
            7
        ));
        // Damaged: a header that does not decode, or a collection body cut short.
        assert!(names_generation(Some(vec![9; 12]), 7));
        let mut cut = hash(8).unwrap();
        cut.truncate(cut.len() - 3);
        assert!(names_generation(Some(cut), 7));
    }
}
