//! Set commands. A member is an element whose value is empty.

use std::collections::BTreeSet;

use super::collection::{load, load_or_new};
use super::{optional_count, parse_i64};
use crate::error::CommandError;
use crate::keyspace::Kind;
use crate::reply::Reply;
use crate::tx::Tx;

async fn members(tx: &mut Tx<'_>, key: &[u8]) -> Result<Vec<Vec<u8>>, CommandError> {
    Ok(match load(tx, key, Kind::Set).await? {
        Some(s) => s.all(tx, key).await?.into_iter().map(|(m, _)| m).collect(),
        None => Vec::new(),
    })
}

fn set_reply(members: impl IntoIterator<Item = Vec<u8>>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

pub async fn sadd(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let key = &args[0];
    let mut s = load_or_new(tx, key, Kind::Set).await?;
    let mut added = 0;
    for m in &args[1..] {
        if s.insert(tx, key, m).await? {
            added += 1;
        }
    }
    if added > 0 {
        s.save(tx, key)?;
    }
    Ok(Reply::Int(added))
}

pub async fn srem(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let key = &args[0];
    let Some(mut s) = load(tx, key, Kind::Set).await? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for m in &args[1..] {
        if s.remove(tx, key, m).await? {
            removed += 1;
        }
    }
    if removed > 0 {
        s.save(tx, key)?;
    }
    Ok(Reply::Int(removed))
}

pub async fn scard(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let n = load(tx, &args[0], Kind::Set).await?.map_or(0, |s| s.len());
    Ok(Reply::Int(n as i64))
}

pub async fn sismember(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let Some(s) = load(tx, &args[0], Kind::Set).await? else {
        return Ok(Reply::Int(0));
    };
    Ok(Reply::Int(
        s.get(tx, &args[0], &args[1]).await?.is_some() as i64
    ))
}

pub async fn smismember(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let s = load(tx, &args[0], Kind::Set).await?;
    let mut out = Vec::with_capacity(args.len() - 1);
    for m in &args[1..] {
        let found = match &s {
            Some(s) => s.get(tx, &args[0], m).await?.is_some(),
            None => false,
        };
        out.push(Reply::Int(found as i64));
    }
    Ok(Reply::Array(out))
}

pub async fn smembers(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    Ok(set_reply(members(tx, &args[0]).await?))
}

/// A pseudo-random index below `n` (for SPOP and SRANDMEMBER, which promise no
/// distribution beyond "random").
fn pick(n: usize, salt: u64) -> usize {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = t ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x % n.max(1) as u64) as usize
}

fn parse_count(arg: Option<&Vec<u8>>) -> Result<Option<i64>, CommandError> {
    arg.map(|a| parse_i64(a)).transpose()
}

pub async fn spop(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let count = optional_count(args)?;
    let key = &args[0];
    let Some(mut s) = load(tx, key, Kind::Set).await? else {
        return Ok(if count.is_some() {
            Reply::Set(Vec::new())
        } else {
            Reply::Nil
        });
    };
    let mut all: Vec<Vec<u8>> = s.all(tx, key).await?.into_iter().map(|(m, _)| m).collect();
    let want = count.map_or(1, |c| c as usize).min(all.len());
    let mut popped = Vec::with_capacity(want);
    for i in 0..want {
        let m = all.swap_remove(pick(all.len(), i as u64));
        s.remove(tx, key, &m).await?;
        popped.push(m);
    }
    if !popped.is_empty() {
        s.save(tx, key)?;
    }
    Ok(match count {
        Some(_) => set_reply(popped),
        None => popped.pop().map_or(Reply::Nil, Reply::Bulk),
    })
}

pub async fn srandmember(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    if args.len() > 2 {
        return Err(CommandError::Syntax);
    }
    let count = parse_count(args.get(1))?;
    let mut all = members(tx, &args[0]).await?;
    let Some(count) = count else {
        return Ok(if all.is_empty() {
            Reply::Nil
        } else {
            Reply::Bulk(all.swap_remove(pick(all.len(), 0)))
        });
    };
    if all.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    let out: Vec<Vec<u8>> = if count >= 0 {
        let want = (count as usize).min(all.len());
        (0..want)
            .map(|i| all.swap_remove(pick(all.len(), i as u64)))
            .collect()
    } else {
        let want = count.unsigned_abs().min(1 << 20) as usize;
        let mut picked = Vec::with_capacity(want.min(1024));
        for i in 0..want {
            let m = &all[pick(all.len(), i as u64)];
            // Repeats build a reply larger than what was read: they count against the
            // budget, before they are copied.
            tx.charge(m.len())?;
            picked.push(m.clone());
        }
        picked
    };
    Ok(Reply::Array(out.into_iter().map(Reply::Bulk).collect()))
}

/// SINTER, SUNION, SDIFF.
pub async fn combine(tx: &mut Tx<'_>, args: &[Vec<u8>], how: &str) -> Result<Reply, CommandError> {
    let mut acc: BTreeSet<Vec<u8>> = members(tx, &args[0]).await?.into_iter().collect();
    for key in &args[1..] {
        let next: BTreeSet<Vec<u8>> = members(tx, key).await?.into_iter().collect();
        acc = match how {
            "sinter" => acc.intersection(&next).cloned().collect(),
            "sunion" => acc.union(&next).cloned().collect(),
            _ => acc.difference(&next).cloned().collect(),
        };
    }
    Ok(set_reply(acc))
}
