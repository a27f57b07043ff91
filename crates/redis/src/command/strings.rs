//! String commands.

use super::{parse_f64, parse_i64};
use crate::error::CommandError;
use crate::keyspace::{Kind, Record};
use crate::reply::{format_double, Reply};
use crate::tx::Tx;

/// A string key's record (None if absent); WRONGTYPE if it holds another type.
async fn load_string(tx: &mut Tx<'_>, key: &[u8]) -> Result<Option<Record>, CommandError> {
    match tx.load(key).await? {
        Some(r) if r.kind != Kind::String => Err(CommandError::WrongType),
        other => Ok(other),
    }
}

fn bulk_or_nil(r: Option<Record>) -> Reply {
    r.map_or(Reply::Nil, |r| Reply::Bulk(r.body))
}

/// Stores `body` at `key` expiring at `expire_at_ms`; an expiry already past deletes the key
/// (Redis: a SET with a past EXAT leaves no key).
fn put(
    tx: &mut Tx<'_>,
    key: &[u8],
    body: Vec<u8>,
    expire_at_ms: Option<u64>,
) -> Result<(), CommandError> {
    if expire_at_ms.is_some_and(|at| at <= tx.now_ms()) {
        tx.remove(key);
        Ok(())
    } else {
        tx.store(key, &Record::string(body, expire_at_ms))
    }
}

/// An expiry option's absolute time in milliseconds; `command` names the command in the
/// error Redis gives for a non-positive or overflowing time.
fn expire_at(now_ms: u64, option: &str, value: &[u8], command: &str) -> Result<u64, CommandError> {
    let v = parse_i64(value)?;
    let invalid = || CommandError::InvalidExpire(command.to_string());
    if v <= 0 {
        return Err(invalid());
    }
    let v = v as u64;
    let at = match option {
        "ex" => v.checked_mul(1000).and_then(|ms| ms.checked_add(now_ms)),
        "px" => v.checked_add(now_ms),
        "exat" => v.checked_mul(1000),
        _ => Some(v),
    };
    at.filter(|&at| at < i64::MAX as u64).ok_or_else(invalid)
}

pub async fn get(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    Ok(bulk_or_nil(load_string(tx, &args[0]).await?))
}

pub async fn set(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let (key, value) = (&args[0], &args[1]);
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    let mut expiry: Option<u64> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = String::from_utf8_lossy(&args[i]).to_ascii_lowercase();
        match opt.as_str() {
            "nx" if !xx => nx = true,
            "xx" if !nx => xx = true,
            "get" => get = true,
            "keepttl" if expiry.is_none() => keep_ttl = true,
            "ex" | "px" | "exat" | "pxat" if expiry.is_none() && !keep_ttl => {
                let v = args.get(i + 1).ok_or(CommandError::Syntax)?;
                expiry = Some(expire_at(tx.now_ms(), &opt, v, "set")?);
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    let old = if nx || xx || get || keep_ttl {
        if get {
            load_string(tx, key).await?
        } else {
            tx.load(key).await?
        }
    } else {
        None
    };
    let exists = old.is_some();
    let old_value = if get {
        bulk_or_nil(old.clone())
    } else {
        Reply::Nil
    };
    if (nx && exists) || (xx && !exists) {
        return Ok(old_value);
    }
    let expiry = if keep_ttl {
        old.and_then(|r| r.expire_at_ms)
    } else {
        expiry
    };
    put(tx, key, value.clone(), expiry)?;
    Ok(if get { old_value } else { Reply::Ok })
}

pub async fn setnx(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    if tx.load(&args[0]).await?.is_some() {
        return Ok(Reply::Int(0));
    }
    put(tx, &args[0], args[1].clone(), None)?;
    Ok(Reply::Int(1))
}

/// SETEX and PSETEX: `unit_ms` milliseconds per unit of the time argument.
pub async fn setex(
    tx: &mut Tx<'_>,
    args: &[Vec<u8>],
    unit_ms: u64,
    name: &str,
) -> Result<Reply, CommandError> {
    let option = if unit_ms == 1000 { "ex" } else { "px" };
    let at = expire_at(tx.now_ms(), option, &args[1], name)?;
    put(tx, &args[0], args[2].clone(), Some(at))?;
    Ok(Reply::Ok)
}

pub async fn getset(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let old = load_string(tx, &args[0]).await?;
    put(tx, &args[0], args[1].clone(), None)?;
    Ok(bulk_or_nil(old))
}

pub async fn getdel(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let old = load_string(tx, &args[0]).await?;
    if old.is_some() {
        tx.remove(&args[0]);
    }
    Ok(bulk_or_nil(old))
}

pub async fn getex(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let key = &args[0];
    // None: leave the expiry; Some(None): remove it; Some(Some(at)): set it.
    let mut change: Option<Option<u64>> = None;
    let mut i = 1;
    while i < args.len() {
        let opt = String::from_utf8_lossy(&args[i]).to_ascii_lowercase();
        match opt.as_str() {
            "persist" if change.is_none() => change = Some(None),
            "ex" | "px" | "exat" | "pxat" if change.is_none() => {
                let v = args.get(i + 1).ok_or(CommandError::Syntax)?;
                change = Some(Some(expire_at(tx.now_ms(), &opt, v, "getex")?));
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    let Some(r) = load_string(tx, key).await? else {
        return Ok(Reply::Nil);
    };
    if let Some(expiry) = change {
        if expiry != r.expire_at_ms {
            put(tx, key, r.body.clone(), expiry)?;
        }
    }
    Ok(Reply::Bulk(r.body))
}

pub async fn mget(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let mut out = Vec::with_capacity(args.len());
    for key in args {
        out.push(match tx.load(key).await? {
            Some(r) if r.kind == Kind::String => Reply::Bulk(r.body),
            _ => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

/// MSET, and MSETNX (`only_if_none_exist`).
pub async fn mset(
    tx: &mut Tx<'_>,
    args: &[Vec<u8>],
    only_if_none_exist: bool,
) -> Result<Reply, CommandError> {
    let name = if only_if_none_exist { "msetnx" } else { "mset" };
    if !args.len().is_multiple_of(2) {
        return Err(CommandError::Arity(name.into()));
    }
    if only_if_none_exist {
        for pair in args.chunks(2) {
            if tx.load(&pair[0]).await?.is_some() {
                return Ok(Reply::Int(0));
            }
        }
    }
    for pair in args.chunks(2) {
        put(tx, &pair[0], pair[1].clone(), None)?;
    }
    Ok(if only_if_none_exist {
        Reply::Int(1)
    } else {
        Reply::Ok
    })
}

pub async fn incr_by(tx: &mut Tx<'_>, key: &[u8], by: i64) -> Result<Reply, CommandError> {
    let old = load_string(tx, key).await?;
    let (current, expiry) = match &old {
        Some(r) => (parse_i64(&r.body)?, r.expire_at_ms),
        None => (0, None),
    };
    let next = current.checked_add(by).ok_or(CommandError::Overflow)?;
    put(tx, key, next.to_string().into_bytes(), expiry)?;
    Ok(Reply::Int(next))
}

pub async fn incr_by_float(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let by = parse_f64(&args[1])?;
    let old = load_string(tx, &args[0]).await?;
    let (current, expiry) = match &old {
        Some(r) => (parse_f64(&r.body)?, r.expire_at_ms),
        None => (0.0, None),
    };
    let next = current + by;
    if !next.is_finite() {
        return Err(CommandError::NotFinite);
    }
    let text = format_double(next);
    put(tx, &args[0], text.clone().into_bytes(), expiry)?;
    Ok(Reply::Bulk(text.into_bytes()))
}

pub async fn append(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let old = load_string(tx, &args[0]).await?;
    let (mut body, expiry) = old.map_or((Vec::new(), None), |r| (r.body, r.expire_at_ms));
    body.extend_from_slice(&args[1]);
    let len = body.len() as i64;
    put(tx, &args[0], body, expiry)?;
    Ok(Reply::Int(len))
}

pub async fn strlen(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let len = load_string(tx, &args[0]).await?.map_or(0, |r| r.body.len());
    Ok(Reply::Int(len as i64))
}

pub async fn getrange(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let (start, end) = (parse_i64(&args[1])?, parse_i64(&args[2])?);
    let body = load_string(tx, &args[0])
        .await?
        .map_or(Vec::new(), |r| r.body);
    let len = body.len() as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return Ok(Reply::Bulk(Vec::new()));
    }
    let resolve = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (resolve(start), resolve(end).min(len - 1));
    if start > end || start >= len {
        return Ok(Reply::Bulk(Vec::new()));
    }
    Ok(Reply::Bulk(body[start as usize..=end as usize].to_vec()))
}

pub async fn setrange(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let offset = parse_i64(&args[1])?;
    if offset < 0 {
        return Err(CommandError::other("ERR offset is out of range"));
    }
    let value = &args[2];
    let old = load_string(tx, &args[0]).await?;
    let (mut body, expiry) = old.map_or((Vec::new(), None), |r| (r.body, r.expire_at_ms));
    if value.is_empty() {
        return Ok(Reply::Int(body.len() as i64));
    }
    let max = tx.service().limits().max_value_bytes;
    let end = (offset as u64).saturating_add(value.len() as u64);
    if end > max as u64 {
        return Err(CommandError::other(
            "ERR string exceeds maximum allowed size (the server's --max-value-bytes)",
        ));
    }
    let (offset, end) = (offset as usize, end as usize);
    if body.len() < end {
        body.resize(end, 0);
    }
    body[offset..end].copy_from_slice(value);
    let len = body.len() as i64;
    put(tx, &args[0], body, expiry)?;
    Ok(Reply::Int(len))
}
