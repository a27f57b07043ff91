//! The commands: their arity (as Redis states it: n = exactly n words with the name, -n = at
//! least n) and the data commands' implementations, each run inside a [`Tx`].

mod collection;
pub mod glob;
mod hashes;
pub use hashes::forget_elements;
mod keys;
mod lists;
pub mod scan;
mod sets;
mod strings;
mod zsets;

use crate::error::CommandError;
use crate::reply::Reply;
use crate::tx::Tx;

/// Every command this endpoint knows, with its arity.
pub const COMMANDS: &[(&str, i32)] = &[
    // connection and server
    ("ping", -1),
    ("echo", 2),
    ("hello", -1),
    ("quit", -1),
    ("auth", -2),
    ("select", 2),
    ("client", -2),
    ("command", -1),
    ("time", 1),
    ("info", -1),
    ("dbsize", 1),
    ("flushdb", -1),
    ("flushall", -1),
    ("multi", 1),
    ("exec", 1),
    ("discard", 1),
    ("watch", -2),
    ("unwatch", 1),
    // strings
    ("get", 2),
    ("set", -3),
    ("setnx", 3),
    ("setex", 4),
    ("psetex", 4),
    ("getset", 3),
    ("getdel", 2),
    ("getex", -2),
    ("mget", -2),
    ("mset", -3),
    ("msetnx", -3),
    ("incr", 2),
    ("incrby", 3),
    ("incrbyfloat", 3),
    ("decr", 2),
    ("decrby", 3),
    ("append", 3),
    ("strlen", 2),
    ("getrange", 4),
    ("setrange", 4),
    // keys and expiry
    ("del", -2),
    ("unlink", -2),
    ("exists", -2),
    ("type", 2),
    ("rename", 3),
    ("renamenx", 3),
    ("expire", -3),
    ("pexpire", -3),
    ("expireat", -3),
    ("pexpireat", -3),
    ("ttl", 2),
    ("pttl", 2),
    ("persist", 2),
    ("keys", 2),
    ("scan", -2),
    // hashes
    ("hset", -4),
    ("hsetnx", 4),
    ("hget", 3),
    ("hmget", -3),
    ("hmset", -4),
    ("hdel", -3),
    ("hexists", 3),
    ("hgetall", 2),
    ("hkeys", 2),
    ("hvals", 2),
    ("hlen", 2),
    ("hincrby", 4),
    ("hincrbyfloat", 4),
    ("hscan", -3),
    // sets
    ("sadd", -3),
    ("srem", -3),
    ("scard", 2),
    ("sismember", 3),
    ("smismember", -3),
    ("smembers", 2),
    ("spop", -2),
    ("srandmember", -2),
    ("sinter", -2),
    ("sunion", -2),
    ("sdiff", -2),
    ("sscan", -3),
    // lists
    ("lpush", -3),
    ("rpush", -3),
    ("lpushx", -3),
    ("rpushx", -3),
    ("lpop", -2),
    ("rpop", -2),
    ("llen", 2),
    ("lindex", 3),
    ("lrange", 4),
    ("lset", 4),
    ("ltrim", 4),
    ("lrem", 4),
    ("linsert", 5),
    ("lpos", -3),
    ("rpoplpush", 3),
    ("lmove", 5),
    // sorted sets
    ("zadd", -4),
    ("zcard", 2),
    ("zcount", 4),
    ("zincrby", 4),
    ("zrange", -4),
    ("zrangebyscore", -4),
    ("zrevrange", -4),
    ("zrevrangebyscore", -4),
    ("zrangebylex", -4),
    ("zrevrangebylex", -4),
    ("zrank", 3),
    ("zrevrank", 3),
    ("zrem", -3),
    ("zremrangebyrank", 4),
    ("zremrangebyscore", 4),
    ("zscore", 3),
    ("zmscore", -3),
    ("zpopmin", -2),
    ("zpopmax", -2),
    ("zscan", -3),
];

/// The arity of `name` (lower case), None for an unknown command.
pub fn arity(name: &str) -> Option<i32> {
    COMMANDS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// Whether `args` (name included) satisfies `arity`.
pub fn arity_ok(arity: i32, args: usize) -> bool {
    if arity >= 0 {
        args == arity as usize
    } else {
        args >= arity.unsigned_abs() as usize
    }
}

/// Runs data command `name` (lower case, arity checked) with `args` (name excluded).
pub async fn run(tx: &mut Tx<'_>, name: &str, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    match name {
        "get" => strings::get(tx, args).await,
        "set" => strings::set(tx, args).await,
        "setnx" => strings::setnx(tx, args).await,
        "setex" => strings::setex(tx, args, 1000, "setex").await,
        "psetex" => strings::setex(tx, args, 1, "psetex").await,
        "getset" => strings::getset(tx, args).await,
        "getdel" => strings::getdel(tx, args).await,
        "getex" => strings::getex(tx, args).await,
        "mget" => strings::mget(tx, args).await,
        "mset" => strings::mset(tx, args, false).await,
        "msetnx" => strings::mset(tx, args, true).await,
        "incr" => strings::incr_by(tx, &args[0], 1).await,
        "decr" => strings::incr_by(tx, &args[0], -1).await,
        "incrby" => strings::incr_by(tx, &args[0], parse_i64(&args[1])?).await,
        "decrby" => {
            let by = parse_i64(&args[1])?
                .checked_neg()
                .ok_or_else(|| CommandError::other("ERR decrement would overflow"))?;
            strings::incr_by(tx, &args[0], by).await
        }
        "incrbyfloat" => strings::incr_by_float(tx, args).await,
        "append" => strings::append(tx, args).await,
        "strlen" => strings::strlen(tx, args).await,
        "getrange" => strings::getrange(tx, args).await,
        "setrange" => strings::setrange(tx, args).await,
        "del" | "unlink" => keys::del(tx, args).await,
        "exists" => keys::exists(tx, args).await,
        "type" => keys::key_type(tx, args).await,
        "rename" => keys::rename(tx, args, false).await,
        "renamenx" => keys::rename(tx, args, true).await,
        "expire" => keys::expire(tx, args, keys::Expiry::RelativeSeconds, name).await,
        "pexpire" => keys::expire(tx, args, keys::Expiry::RelativeMillis, name).await,
        "expireat" => keys::expire(tx, args, keys::Expiry::AtSeconds, name).await,
        "pexpireat" => keys::expire(tx, args, keys::Expiry::AtMillis, name).await,
        "ttl" => keys::ttl(tx, args, 1000).await,
        "pttl" => keys::ttl(tx, args, 1).await,
        "persist" => keys::persist(tx, args).await,
        "keys" => keys::keys(tx, args).await,
        "hset" | "hmset" => hashes::hset(tx, args, name).await,
        "hsetnx" => hashes::hsetnx(tx, args).await,
        "hget" => hashes::hget(tx, args).await,
        "hmget" => hashes::hmget(tx, args).await,
        "hdel" => hashes::hdel(tx, args).await,
        "hexists" => hashes::hexists(tx, args).await,
        "hgetall" | "hkeys" | "hvals" => hashes::hgetall(tx, args, name).await,
        "hlen" => hashes::hlen(tx, args).await,
        "hincrby" => hashes::hincrby(tx, args).await,
        "hincrbyfloat" => hashes::hincrbyfloat(tx, args).await,
        "hscan" | "sscan" | "zscan" => scan::whole(tx, name, args).await,
        "sadd" => sets::sadd(tx, args).await,
        "srem" => sets::srem(tx, args).await,
        "scard" => sets::scard(tx, args).await,
        "sismember" => sets::sismember(tx, args).await,
        "smismember" => sets::smismember(tx, args).await,
        "smembers" => sets::smembers(tx, args).await,
        "spop" => sets::spop(tx, args).await,
        "srandmember" => sets::srandmember(tx, args).await,
        "sinter" | "sunion" | "sdiff" => sets::combine(tx, args, name).await,
        "lpush" | "rpush" | "lpushx" | "rpushx" => lists::push(tx, args, name).await,
        "lpop" | "rpop" => lists::pop(tx, args, name).await,
        "llen" => lists::llen(tx, args).await,
        "lindex" => lists::lindex(tx, args).await,
        "lrange" => lists::lrange(tx, args).await,
        "lset" => lists::lset(tx, args).await,
        "ltrim" => lists::ltrim(tx, args).await,
        "lrem" => lists::lrem(tx, args).await,
        "linsert" => lists::linsert(tx, args).await,
        "lpos" => lists::lpos(tx, args).await,
        "rpoplpush" => lists::lmove(tx, &args[0], &args[1], false, true).await,
        "zadd" => zsets::zadd(tx, args).await,
        "zcard" => zsets::zcard(tx, args).await,
        "zcount" => zsets::zcount(tx, args).await,
        "zincrby" => zsets::zincrby(tx, args).await,
        "zrange" | "zrangebyscore" | "zrevrange" | "zrevrangebyscore" | "zrangebylex"
        | "zrevrangebylex" => zsets::zrange(tx, args, name).await,
        "zrank" => zsets::zrank(tx, args, false).await,
        "zrevrank" => zsets::zrank(tx, args, true).await,
        "zrem" => zsets::zrem(tx, args).await,
        "zremrangebyrank" => zsets::zremrange(tx, args, false).await,
        "zremrangebyscore" => zsets::zremrange(tx, args, true).await,
        "zscore" => zsets::zscore(tx, args).await,
        "zmscore" => zsets::zmscore(tx, args).await,
        "zpopmin" => zsets::zpop(tx, args, false).await,
        "zpopmax" => zsets::zpop(tx, args, true).await,
        "lmove" => {
            let (from_left, to_left) = (lists::side(&args[2])?, lists::side(&args[3])?);
            lists::lmove(tx, &args[0], &args[1], from_left, to_left).await
        }
        other => Err(CommandError::other(format!(
            "ERR unknown command '{other}'"
        ))),
    }
}

/// The optional COUNT after a key (LPOP, RPOP, SPOP, ZPOPMIN, ZPOPMAX): None when absent;
/// a negative count is refused as Redis refuses it, and so is anything after the count.
pub fn optional_count(args: &[Vec<u8>]) -> Result<Option<u64>, CommandError> {
    if args.len() > 2 {
        return Err(CommandError::Syntax);
    }
    match args.get(1) {
        None => Ok(None),
        Some(c) => {
            let n = parse_i64(c)?;
            if n < 0 {
                return Err(CommandError::other(
                    "ERR value is out of range, must be positive",
                ));
            }
            Ok(Some(n as u64))
        }
    }
}

/// The inclusive index range start..=stop of a sequence of `len` (negative indexes count
/// from the end), clamped as LRANGE, LTRIM and ZRANGE clamp it; None when it is empty.
pub fn index_range(start: i64, stop: i64, len: u64) -> Option<(u64, u64)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then_some((start as u64, stop as u64))
}

/// SCAN-family options after the key: the cursor, MATCH, COUNT and (SCAN only) TYPE.
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Vec<u8>>,
    pub count: usize,
    pub kind: Option<String>,
}

/// Parses `cursor [MATCH pattern] [COUNT n] [TYPE t]`.
pub fn scan_args(args: &[Vec<u8>], allow_type: bool) -> Result<ScanArgs, CommandError> {
    let cursor = std::str::from_utf8(&args[0])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| CommandError::other("ERR invalid cursor"))?;
    let mut out = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
        kind: None,
    };
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(CommandError::Syntax)?;
        match String::from_utf8_lossy(&args[i])
            .to_ascii_lowercase()
            .as_str()
        {
            "match" => out.pattern = Some(value.clone()),
            "count" => {
                let n = parse_i64(value)?;
                if n < 1 {
                    return Err(CommandError::Syntax);
                }
                out.count = n.min(100_000) as usize;
            }
            "type" if allow_type => {
                out.kind = Some(String::from_utf8_lossy(value).to_ascii_lowercase())
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 2;
    }
    Ok(out)
}

/// An integer argument or stored value, parsed as strictly as Redis does: an optional minus
/// sign, digits, no leading zeros, no spaces, within i64.
pub fn parse_i64(b: &[u8]) -> Result<i64, CommandError> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let well_formed = !digits.is_empty()
        && digits.len() <= 19
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1)
        && !(b.len() == 2 && b == b"-0");
    if !well_formed {
        return Err(CommandError::NotInteger);
    }
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(CommandError::NotInteger)
}

/// A float argument or stored value: a decimal or exponent form, `inf`/`-inf`; never NaN,
/// never surrounding spaces.
pub fn parse_f64(b: &[u8]) -> Result<f64, CommandError> {
    let s = std::str::from_utf8(b).map_err(|_| CommandError::NotFloat)?;
    if s.is_empty() || s.trim() != s {
        return Err(CommandError::NotFloat);
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().map_err(|_| CommandError::NotFloat)?,
    };
    if v.is_nan() {
        return Err(CommandError::NotFloat);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_as_strictly_as_redis() {
        assert_eq!(parse_i64(b"42").unwrap(), 42);
        assert_eq!(parse_i64(b"-7").unwrap(), -7);
        assert_eq!(parse_i64(b"0").unwrap(), 0);
        assert_eq!(parse_i64(b"-9223372036854775808").unwrap(), i64::MIN);
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"01",
            b"1.0",
            b"-",
            b"-0",
            b"9223372036854775808",
            b"abc",
        ] {
            assert!(parse_i64(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn floats_refuse_nan_and_spaces() {
        assert_eq!(parse_f64(b"1.5").unwrap(), 1.5);
        assert_eq!(parse_f64(b"5.0e3").unwrap(), 5000.0);
        assert!(parse_f64(b"inf").unwrap().is_infinite());
        for bad in [&b"nan"[..], b" 1", b"", b"x"] {
            assert!(parse_f64(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn index_ranges_clamp_as_redis_does() {
        assert_eq!(index_range(0, -1, 5), Some((0, 4)));
        assert_eq!(index_range(-2, 100, 5), Some((3, 4)));
        assert_eq!(index_range(-100, 1, 5), Some((0, 1)));
        assert_eq!(index_range(3, 1, 5), None);
        assert_eq!(index_range(5, 9, 5), None);
        assert_eq!(index_range(0, -1, 0), None);
    }

    #[test]
    fn every_command_has_a_valid_arity() {
        for (name, a) in COMMANDS {
            assert_ne!(*a, 0, "{name}");
            assert_eq!(name.to_ascii_lowercase(), *name);
        }
        assert!(arity_ok(-2, 3) && !arity_ok(-2, 1) && arity_ok(2, 2) && !arity_ok(2, 3));
    }
}
