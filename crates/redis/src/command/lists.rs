//! List commands. Elements sit at consecutive positions from the record's head; pushes and
//! pops at either end and access by index are O(1) element reads or writes, inserts and
//! removals in the middle rewrite the list (O(n), as in Redis).

use super::collection::{load, load_or_new, Handle};
use super::{index_range, optional_count, parse_i64};
use crate::error::CommandError;
use crate::keyspace::Kind;
use crate::reply::Reply;
use crate::tx::Tx;

/// `index` (negative from the end) as a position in a list of `len`, None if outside.
fn resolve(index: i64, len: u64) -> Option<u64> {
    let i = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&i).then_some(i as u64)
}

/// LPUSH, RPUSH, LPUSHX, RPUSHX: the length after the push.
pub async fn push(tx: &mut Tx<'_>, args: &[Vec<u8>], name: &str) -> Result<Reply, CommandError> {
    let key = &args[0];
    let only_existing = name.ends_with('x');
    let mut l = if only_existing {
        match load(tx, key, Kind::List).await? {
            Some(l) => l,
            None => return Ok(Reply::Int(0)),
        }
    } else {
        load_or_new(tx, key, Kind::List).await?
    };
    for v in &args[1..] {
        if name.starts_with('l') {
            l.push_front(tx, key, v.clone());
        } else {
            l.push_back(tx, key, v.clone());
        }
    }
    let len = l.len();
    l.save(tx, key)?;
    Ok(Reply::Int(len as i64))
}

/// LPOP and RPOP, with an optional count.
pub async fn pop(tx: &mut Tx<'_>, args: &[Vec<u8>], name: &str) -> Result<Reply, CommandError> {
    let count = optional_count(args)?;
    let key = &args[0];
    let Some(mut l) = load(tx, key, Kind::List).await? else {
        return Ok(if count.is_some() {
            Reply::NilArray
        } else {
            Reply::Nil
        });
    };
    let mut out = Vec::new();
    for _ in 0..count.unwrap_or(1).min(l.len()) {
        let v = if name == "lpop" {
            l.pop_front(tx, key).await?
        } else {
            l.pop_back(tx, key).await?
        };
        out.extend(v);
    }
    if !out.is_empty() {
        l.save(tx, key)?;
    }
    Ok(match count {
        Some(_) => Reply::Array(out.into_iter().map(Reply::Bulk).collect()),
        None => out.pop().map_or(Reply::Nil, Reply::Bulk),
    })
}

pub async fn llen(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let n = load(tx, &args[0], Kind::List).await?.map_or(0, |l| l.len());
    Ok(Reply::Int(n as i64))
}

pub async fn lindex(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let index = parse_i64(&args[1])?;
    let Some(l) = load(tx, &args[0], Kind::List).await? else {
        return Ok(Reply::Nil);
    };
    let Some(i) = resolve(index, l.len()) else {
        return Ok(Reply::Nil);
    };
    Ok(l.at(tx, &args[0], i).await?.map_or(Reply::Nil, Reply::Bulk))
}

pub async fn lrange(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let (start, stop) = (parse_i64(&args[1])?, parse_i64(&args[2])?);
    let Some(l) = load(tx, &args[0], Kind::List).await? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let Some((from, to)) = index_range(start, stop, l.len()) else {
        return Ok(Reply::Array(Vec::new()));
    };
    let mut out = Vec::new();
    for i in from..=to {
        if let Some(v) = l.at(tx, &args[0], i).await? {
            out.push(Reply::Bulk(v));
        }
    }
    Ok(Reply::Array(out))
}

pub async fn lset(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let index = parse_i64(&args[1])?;
    let Some(l) = load(tx, &args[0], Kind::List).await? else {
        return Err(CommandError::other("ERR no such key"));
    };
    let Some(i) = resolve(index, l.len()) else {
        return Err(CommandError::other("ERR index out of range"));
    };
    l.set_at(tx, &args[0], i, args[2].clone());
    l.save(tx, &args[0])?;
    Ok(Reply::Ok)
}

pub async fn ltrim(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let (start, stop) = (parse_i64(&args[1])?, parse_i64(&args[2])?);
    let key = &args[0];
    let Some(mut l) = load(tx, key, Kind::List).await? else {
        return Ok(Reply::Ok);
    };
    let items = l.items(tx, key).await?;
    let kept = match index_range(start, stop, l.len()) {
        Some((from, to)) => items[from as usize..=to as usize].to_vec(),
        None => Vec::new(),
    };
    l.replace_items(tx, key, kept);
    l.save(tx, key)?;
    Ok(Reply::Ok)
}

pub async fn lrem(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let count = parse_i64(&args[1])?;
    let key = &args[0];
    let Some(mut l) = load(tx, key, Kind::List).await? else {
        return Ok(Reply::Int(0));
    };
    let mut items = l.items(tx, key).await?;
    let limit = if count == 0 {
        u64::MAX
    } else {
        count.unsigned_abs()
    };
    let mut removed = 0u64;
    if count < 0 {
        items.reverse();
    }
    items.retain(|v| {
        if removed < limit && *v == args[2] {
            removed += 1;
            false
        } else {
            true
        }
    });
    if count < 0 {
        items.reverse();
    }
    if removed > 0 {
        l.replace_items(tx, key, items);
        l.save(tx, key)?;
    }
    Ok(Reply::Int(removed as i64))
}

pub async fn linsert(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let after = match String::from_utf8_lossy(&args[1])
        .to_ascii_lowercase()
        .as_str()
    {
        "before" => false,
        "after" => true,
        _ => return Err(CommandError::Syntax),
    };
    let key = &args[0];
    let Some(mut l) = load(tx, key, Kind::List).await? else {
        return Ok(Reply::Int(0));
    };
    let mut items = l.items(tx, key).await?;
    let Some(at) = items.iter().position(|v| *v == args[2]) else {
        return Ok(Reply::Int(-1));
    };
    items.insert(if after { at + 1 } else { at }, args[3].clone());
    let len = items.len();
    l.replace_items(tx, key, items);
    l.save(tx, key)?;
    Ok(Reply::Int(len as i64))
}

/// LPOS key element [RANK r] [COUNT n] [MAXLEN m].
pub async fn lpos(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0u64);
    let mut i = 2;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(CommandError::Syntax)?;
        match String::from_utf8_lossy(&args[i])
            .to_ascii_lowercase()
            .as_str()
        {
            "rank" => {
                rank = parse_i64(value)?;
                if rank == 0 || rank == i64::MIN {
                    return Err(CommandError::other(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                    ));
                }
            }
            "count" => {
                let n = parse_i64(value)?;
                if n < 0 {
                    return Err(CommandError::other("ERR COUNT can't be negative"));
                }
                count = Some(n as u64);
            }
            "maxlen" => {
                let n = parse_i64(value)?;
                if n < 0 {
                    return Err(CommandError::other("ERR MAXLEN can't be negative"));
                }
                maxlen = n as u64;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 2;
    }
    let items = match load(tx, &args[0], Kind::List).await? {
        Some(l) => l.items(tx, &args[0]).await?,
        None => Vec::new(),
    };
    let len = items.len();
    let order: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(0..len)
    } else {
        Box::new((0..len).rev())
    };
    let mut skip = rank.unsigned_abs() - 1;
    let want = match count {
        Some(0) => u64::MAX,
        Some(n) => n,
        None => 1,
    };
    let mut found = Vec::new();
    for (scanned, idx) in order.enumerate() {
        if maxlen != 0 && scanned as u64 >= maxlen {
            break;
        }
        if items[idx] == args[1] {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(Reply::Int(idx as i64));
            if found.len() as u64 >= want {
                break;
            }
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found),
        None => found.pop().unwrap_or(Reply::Nil),
    })
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT (and RPOPLPUSH = RIGHT LEFT).
pub async fn lmove(
    tx: &mut Tx<'_>,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Reply, CommandError> {
    let Some(mut from) = load(tx, src, Kind::List).await? else {
        return Ok(Reply::Nil);
    };
    // The destination must be a list (or absent) before anything moves.
    let existing_dst = if src == dst {
        None
    } else {
        Some(load_or_new(tx, dst, Kind::List).await?)
    };
    let v = if from_left {
        from.pop_front(tx, src).await?
    } else {
        from.pop_back(tx, src).await?
    };
    let Some(v) = v else {
        return Ok(Reply::Nil);
    };
    let mut to: Handle = match existing_dst {
        Some(h) => {
            from.save(tx, src)?;
            h
        }
        None => from,
    };
    if to_left {
        to.push_front(tx, dst, v.clone());
    } else {
        to.push_back(tx, dst, v.clone());
    }
    to.save(tx, dst)?;
    Ok(Reply::Bulk(v))
}

pub fn side(arg: &[u8]) -> Result<bool, CommandError> {
    match String::from_utf8_lossy(arg).to_ascii_lowercase().as_str() {
        "left" => Ok(true),
        "right" => Ok(false),
        _ => Err(CommandError::Syntax),
    }
}
