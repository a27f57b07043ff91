//! Key commands: DEL, EXISTS, TYPE, RENAME and expiry.

use super::collection::elements_of;
use super::parse_i64;
use crate::error::CommandError;
use crate::keyspace::{element_prefix, record_prefix, Collection, Record};
use crate::reply::Reply;
use crate::tx::{fresh_generation, Tx};

pub async fn del(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let mut removed = 0;
    for key in args {
        if let Some(r) = tx.load(key).await? {
            super::hashes::forget_elements(tx, key, &r);
            tx.remove(key);
            removed += 1;
        }
    }
    Ok(Reply::Int(removed))
}

/// RENAME src dst, or RENAMENX (`only_new`: only if dst does not exist): moves src's value,
/// expiry included, to dst, replacing what dst held. A collection's elements are keyed by
/// their collection's name, so they are copied to a fresh generation under dst, one write
/// per element (O(n) in the collection's size, where Redis moves a pointer; the command's
/// read budget bounds it), and src's are deleted after the commit.
pub async fn rename(
    tx: &mut Tx<'_>,
    args: &[Vec<u8>],
    only_new: bool,
) -> Result<Reply, CommandError> {
    let (src, dst) = (&args[0], &args[1]);
    let Some(record) = tx.load(src).await? else {
        return Err(CommandError::other("ERR no such key"));
    };
    let done = |renamed: bool| match (only_new, renamed) {
        (false, _) => Reply::Ok,
        (true, renamed) => Reply::Int(i64::from(renamed)),
    };
    if src == dst {
        return Ok(done(false));
    }
    let now = tx.now_ms();
    if let Some(old) = tx.load_stored(dst).await? {
        if only_new && !old.expired(now) {
            return Ok(done(false));
        }
        super::hashes::forget_elements(tx, dst, &old);
    }
    let moved = match elements_of(src, &record) {
        None => record,
        Some(from) => {
            let mut meta = Collection::decode(&record.body)?;
            meta.generation = fresh_generation();
            let to = element_prefix(dst, meta.generation);
            for (bkey, value) in tx.scan_prefix(&from).await? {
                let mut moved_key = to.clone();
                moved_key.extend_from_slice(&bkey[from.len()..]);
                tx.put_raw(moved_key, value);
            }
            tx.discard_after_commit(from);
            Record {
                body: meta.encode(),
                ..record
            }
        }
    };
    tx.remove(src);
    tx.store(dst, &moved)?;
    Ok(done(true))
}

/// KEYS pattern: every live key matching, from one snapshot.
pub async fn keys(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let prefix = record_prefix();
    let now = tx.now_ms();
    let mut out = Vec::new();
    for (bkey, value) in tx.scan_prefix(&prefix).await? {
        let key = &bkey[prefix.len()..];
        if super::glob::matches(&args[0], key) && !Record::decode(value)?.expired(now) {
            out.push(Reply::Bulk(key.to_vec()));
        }
    }
    Ok(Reply::Array(out))
}

pub async fn exists(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let mut found = 0;
    for key in args {
        if tx.load(key).await?.is_some() {
            found += 1;
        }
    }
    Ok(Reply::Int(found))
}

pub async fn key_type(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let name = tx.load(&args[0]).await?.map_or("none", |r| r.kind.name());
    Ok(Reply::Simple(name.into()))
}

/// How an EXPIRE-family command states its time.
#[derive(Clone, Copy)]
pub enum Expiry {
    RelativeSeconds,
    RelativeMillis,
    AtSeconds,
    AtMillis,
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with NX/XX/GT/LT. A time already past deletes the key.
pub async fn expire(
    tx: &mut Tx<'_>,
    args: &[Vec<u8>],
    how: Expiry,
    name: &str,
) -> Result<Reply, CommandError> {
    let t = parse_i64(&args[1])?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[2..] {
        match String::from_utf8_lossy(opt).to_ascii_lowercase().as_str() {
            "nx" => nx = true,
            "xx" => xx = true,
            "gt" => gt = true,
            "lt" => lt = true,
            other => {
                return Err(CommandError::other(format!(
                    "ERR Unsupported option {other}"
                )))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError::other(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CommandError::other(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let now = tx.now_ms() as i64;
    let invalid = || CommandError::InvalidExpire(name.to_string());
    let at = match how {
        Expiry::RelativeSeconds => t.checked_mul(1000).and_then(|ms| ms.checked_add(now)),
        Expiry::RelativeMillis => t.checked_add(now),
        Expiry::AtSeconds => t.checked_mul(1000),
        Expiry::AtMillis => Some(t),
    }
    .ok_or_else(invalid)?;
    let key = &args[0];
    let Some(r) = tx.load(key).await? else {
        return Ok(Reply::Int(0));
    };
    // No expiry counts as an infinite one for GT and LT.
    let current = r.expire_at_ms.map(|c| c as i64);
    let allowed = match current {
        _ if nx => current.is_none(),
        None if xx || gt => false,
        Some(c) if gt => at > c,
        Some(c) if lt => at < c,
        _ => true,
    };
    if !allowed {
        return Ok(Reply::Int(0));
    }
    if at <= now {
        super::hashes::forget_elements(tx, key, &r);
        tx.remove(key);
    } else {
        tx.store(
            key,
            &Record {
                expire_at_ms: Some(at as u64),
                ..r
            },
        )?;
    }
    Ok(Reply::Int(1))
}

/// TTL (`unit_ms` 1000) and PTTL (1): -2 for no key, -1 for no expiry.
pub async fn ttl(tx: &mut Tx<'_>, args: &[Vec<u8>], unit_ms: u64) -> Result<Reply, CommandError> {
    let Some(r) = tx.load(&args[0]).await? else {
        return Ok(Reply::Int(-2));
    };
    let Some(at) = r.expire_at_ms else {
        return Ok(Reply::Int(-1));
    };
    let left = at.saturating_sub(tx.now_ms());
    Ok(Reply::Int(((left + unit_ms / 2) / unit_ms) as i64))
}

pub async fn persist(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    match tx.load(&args[0]).await? {
        Some(r) if r.expire_at_ms.is_some() => {
            tx.store(
                &args[0],
                &Record {
                    expire_at_ms: None,
                    ..r
                },
            )?;
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}
