//! Hash commands.

use super::collection::{self, load, load_or_new};
use super::{parse_f64, parse_i64};
use crate::error::CommandError;
use crate::keyspace::Kind;
use crate::reply::{format_double, Reply};
use crate::tx::Tx;

/// HSET and HMSET: field-value pairs; the number of new fields.
pub async fn hset(tx: &mut Tx<'_>, args: &[Vec<u8>], name: &str) -> Result<Reply, CommandError> {
    if args.len() < 3 || args.len().is_multiple_of(2) {
        return Err(CommandError::Arity(name.into()));
    }
    let key = &args[0];
    let mut h = load_or_new(tx, key, Kind::Hash).await?;
    let mut added = 0;
    for pair in args[1..].chunks(2) {
        if h.put(tx, key, &pair[0], pair[1].clone()).await? {
            added += 1;
        }
    }
    h.save(tx, key)?;
    Ok(if name == "hmset" {
        Reply::Ok
    } else {
        Reply::Int(added)
    })
}

pub async fn hsetnx(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let key = &args[0];
    let mut h = load_or_new(tx, key, Kind::Hash).await?;
    if h.get(tx, key, &args[1]).await?.is_some() {
        return Ok(Reply::Int(0));
    }
    h.put(tx, key, &args[1], args[2].clone()).await?;
    h.save(tx, key)?;
    Ok(Reply::Int(1))
}

pub async fn hget(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let Some(h) = load(tx, &args[0], Kind::Hash).await? else {
        return Ok(Reply::Nil);
    };
    Ok(h.get(tx, &args[0], &args[1])
        .await?
        .map_or(Reply::Nil, Reply::Bulk))
}

pub async fn hmget(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let h = load(tx, &args[0], Kind::Hash).await?;
    let mut out = Vec::with_capacity(args.len() - 1);
    for field in &args[1..] {
        out.push(match &h {
            Some(h) => h
                .get(tx, &args[0], field)
                .await?
                .map_or(Reply::Nil, Reply::Bulk),
            None => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

pub async fn hdel(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let key = &args[0];
    let Some(mut h) = load(tx, key, Kind::Hash).await? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for field in &args[1..] {
        if h.remove(tx, key, field).await? {
            removed += 1;
        }
    }
    if removed > 0 {
        h.save(tx, key)?;
    }
    Ok(Reply::Int(removed))
}

pub async fn hexists(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let Some(h) = load(tx, &args[0], Kind::Hash).await? else {
        return Ok(Reply::Int(0));
    };
    Ok(Reply::Int(
        h.get(tx, &args[0], &args[1]).await?.is_some() as i64
    ))
}

pub async fn hlen(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let len = load(tx, &args[0], Kind::Hash).await?.map_or(0, |h| h.len());
    Ok(Reply::Int(len as i64))
}

/// HGETALL, HKEYS, HVALS.
pub async fn hgetall(tx: &mut Tx<'_>, args: &[Vec<u8>], what: &str) -> Result<Reply, CommandError> {
    let pairs = match load(tx, &args[0], Kind::Hash).await? {
        Some(h) => h.all(tx, &args[0]).await?,
        None => Vec::new(),
    };
    Ok(match what {
        "hkeys" => Reply::Array(pairs.into_iter().map(|(f, _)| Reply::Bulk(f)).collect()),
        "hvals" => Reply::Array(pairs.into_iter().map(|(_, v)| Reply::Bulk(v)).collect()),
        _ => Reply::Map(
            pairs
                .into_iter()
                .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
                .collect(),
        ),
    })
}

pub async fn hincrby(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let by = parse_i64(&args[2])?;
    let key = &args[0];
    let mut h = load_or_new(tx, key, Kind::Hash).await?;
    let current = match h.get(tx, key, &args[1]).await? {
        Some(v) => {
            parse_i64(&v).map_err(|_| CommandError::other("ERR hash value is not an integer"))?
        }
        None => 0,
    };
    let next = current.checked_add(by).ok_or(CommandError::Overflow)?;
    h.put(tx, key, &args[1], next.to_string().into_bytes())
        .await?;
    h.save(tx, key)?;
    Ok(Reply::Int(next))
}

pub async fn hincrbyfloat(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let by = parse_f64(&args[2])?;
    let key = &args[0];
    let mut h = load_or_new(tx, key, Kind::Hash).await?;
    let current = match h.get(tx, key, &args[1]).await? {
        Some(v) => {
            parse_f64(&v).map_err(|_| CommandError::other("ERR hash value is not a float"))?
        }
        None => 0.0,
    };
    let next = current + by;
    if !next.is_finite() {
        return Err(CommandError::NotFinite);
    }
    let text = format_double(next);
    h.put(tx, key, &args[1], text.clone().into_bytes()).await?;
    h.save(tx, key)?;
    Ok(Reply::Bulk(text.into_bytes()))
}

/// Drops a hash or set record's elements once the command that removed it commits.
pub fn forget_elements(tx: &mut Tx<'_>, key: &[u8], record: &crate::keyspace::Record) {
    if let Some(prefix) = collection::elements_of(key, record) {
        tx.discard_after_commit(prefix);
    }
}
