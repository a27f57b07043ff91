//! Sorted-set commands. Each member is two elements: `m ++ member` holding its score, and
//! `s ++ score_bytes(score) ++ member` (empty) ordering the members by score, then member.
//! Point operations (ZADD, ZSCORE, ZREM, ZINCRBY) touch single elements; ranges and ranks
//! read the score index in order (O(n) in the set's size, where Redis's skip list is
//! O(log n)).

use super::collection::{load, load_or_new, Handle};
use super::{index_range, optional_count, parse_f64, parse_i64};
use crate::error::CommandError;
use crate::keyspace::{score_bytes, Kind};
use crate::reply::Reply;
use crate::tx::Tx;

fn member_key(member: &[u8]) -> Vec<u8> {
    [b"m".as_slice(), member].concat()
}

fn index_key(score: f64, member: &[u8]) -> Vec<u8> {
    [b"s".as_slice(), &score_bytes(score), member].concat()
}

pub(super) fn decode_score(v: &[u8]) -> Result<f64, CommandError> {
    let bytes: [u8; 8] = v
        .try_into()
        .map_err(|_| CommandError::other("ERR stored score is unreadable"))?;
    Ok(f64::from_be_bytes(bytes))
}

async fn score_of(
    h: &Handle,
    tx: &mut Tx<'_>,
    key: &[u8],
    member: &[u8],
) -> Result<Option<f64>, CommandError> {
    match h.get(tx, key, &member_key(member)).await? {
        Some(v) => Ok(Some(decode_score(&v)?)),
        None => Ok(None),
    }
}

/// Sets `member`'s score; true if the member is new.
async fn set_score(
    h: &mut Handle,
    tx: &mut Tx<'_>,
    key: &[u8],
    member: &[u8],
    old: Option<f64>,
    score: f64,
) -> Result<bool, CommandError> {
    if let Some(old) = old {
        h.delete_uncounted(tx, key, &index_key(old, member));
    }
    h.put_uncounted(tx, key, &index_key(score, member), Vec::new());
    h.put(tx, key, &member_key(member), score.to_be_bytes().to_vec())
        .await
}

async fn remove_member(
    h: &mut Handle,
    tx: &mut Tx<'_>,
    key: &[u8],
    member: &[u8],
    score: f64,
) -> Result<(), CommandError> {
    h.delete_uncounted(tx, key, &index_key(score, member));
    h.remove(tx, key, &member_key(member)).await?;
    Ok(())
}

/// Every (member, score) in score order.
async fn ordered(
    h: &Handle,
    tx: &mut Tx<'_>,
    key: &[u8],
) -> Result<Vec<(Vec<u8>, f64)>, CommandError> {
    let mut out = Vec::new();
    for (k, _) in h.all_with(tx, key, b"s").await? {
        if k.len() < 9 {
            return Err(CommandError::other(
                "ERR stored score index entry is unreadable",
            ));
        }
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&k[1..9]);
        let ordered = u64::from_be_bytes(raw);
        let bits = if ordered >> 63 == 1 {
            ordered & !(1 << 63)
        } else {
            !ordered
        };
        out.push((k[9..].to_vec(), f64::from_bits(bits)));
    }
    Ok(out)
}

fn not_float() -> CommandError {
    CommandError::other("ERR value is not a valid float")
}

/// A score argument: a float, `inf`/`+inf`/`-inf`; never NaN.
fn parse_score(b: &[u8]) -> Result<f64, CommandError> {
    parse_f64(b).map_err(|_| not_float())
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub async fn zadd(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let key = &args[0];
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 1;
    while i < args.len() {
        match String::from_utf8_lossy(&args[i])
            .to_ascii_lowercase()
            .as_str()
        {
            "nx" => nx = true,
            "xx" => xx = true,
            "gt" => gt = true,
            "lt" => lt = true,
            "ch" => ch = true,
            "incr" => incr = true,
            _ => break,
        }
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    if nx && xx {
        return Err(CommandError::other(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (gt && lt) || (nx && (gt || lt)) {
        return Err(CommandError::other(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && pairs.len() != 2 {
        return Err(CommandError::other(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let mut scores = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks(2) {
        scores.push(parse_score(&p[0])?);
    }
    let mut h = load_or_new(tx, key, Kind::SortedSet).await?;
    let (mut added, mut changed) = (0i64, 0i64);
    let mut incr_result = None;
    for (p, &score) in pairs.chunks(2).zip(&scores) {
        let member = &p[1];
        let old = score_of(&h, tx, key, member).await?;
        if (nx && old.is_some()) || (xx && old.is_none()) {
            continue;
        }
        let new = match (incr, old) {
            (true, Some(o)) => o + score,
            _ => score,
        };
        if new.is_nan() {
            return Err(CommandError::other(
                "ERR resulting score is not a number (NaN)",
            ));
        }
        if let Some(o) = old {
            if (gt && new <= o) || (lt && new >= o) {
                continue;
            }
            if o == new {
                incr_result = Some(new);
                continue;
            }
            changed += 1;
        } else {
            added += 1;
        }
        set_score(&mut h, tx, key, member, old, new).await?;
        incr_result = Some(new);
    }
    if added + changed > 0 {
        h.save(tx, key)?;
    }
    if incr {
        return Ok(incr_result.map_or(Reply::Nil, Reply::Double));
    }
    Ok(Reply::Int(if ch { added + changed } else { added }))
}

pub async fn zincrby(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let by = parse_score(&args[1])?;
    let key = &args[0];
    let mut h = load_or_new(tx, key, Kind::SortedSet).await?;
    let old = score_of(&h, tx, key, &args[2]).await?;
    let new = old.unwrap_or(0.0) + by;
    if new.is_nan() {
        return Err(CommandError::other(
            "ERR resulting score is not a number (NaN)",
        ));
    }
    set_score(&mut h, tx, key, &args[2], old, new).await?;
    h.save(tx, key)?;
    Ok(Reply::Double(new))
}

pub async fn zcard(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let n = load(tx, &args[0], Kind::SortedSet)
        .await?
        .map_or(0, |h| h.len());
    Ok(Reply::Int(n as i64))
}

pub async fn zscore(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let Some(h) = load(tx, &args[0], Kind::SortedSet).await? else {
        return Ok(Reply::Nil);
    };
    Ok(score_of(&h, tx, &args[0], &args[1])
        .await?
        .map_or(Reply::Nil, Reply::Double))
}

pub async fn zmscore(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let h = load(tx, &args[0], Kind::SortedSet).await?;
    let mut out = Vec::new();
    for m in &args[1..] {
        out.push(match &h {
            Some(h) => score_of(h, tx, &args[0], m)
                .await?
                .map_or(Reply::Nil, Reply::Double),
            None => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

pub async fn zrem(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let key = &args[0];
    let Some(mut h) = load(tx, key, Kind::SortedSet).await? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for m in &args[1..] {
        if let Some(score) = score_of(&h, tx, key, m).await? {
            remove_member(&mut h, tx, key, m, score).await?;
            removed += 1;
        }
    }
    if removed > 0 {
        h.save(tx, key)?;
    }
    Ok(Reply::Int(removed))
}

/// A score bound: `(x` exclusive, `x` inclusive, `-inf`/`+inf`.
#[derive(Clone, Copy)]
struct Bound {
    value: f64,
    exclusive: bool,
}

fn parse_bound(b: &[u8]) -> Result<Bound, CommandError> {
    let err = || CommandError::other("ERR min or max is not a float");
    let (exclusive, rest) = match b.strip_prefix(b"(") {
        Some(r) => (true, r),
        None => (false, b),
    };
    Ok(Bound {
        value: parse_f64(rest).map_err(|_| err())?,
        exclusive,
    })
}

fn above(score: f64, min: Bound) -> bool {
    if min.exclusive {
        score > min.value
    } else {
        score >= min.value
    }
}

fn below(score: f64, max: Bound) -> bool {
    if max.exclusive {
        score < max.value
    } else {
        score <= max.value
    }
}

/// A lexicographic bound: `[x` inclusive, `(x` exclusive, `-`, `+`.
#[derive(Clone)]
enum Lex {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

fn parse_lex(b: &[u8]) -> Result<Lex, CommandError> {
    match b.first() {
        Some(b'-') if b.len() == 1 => Ok(Lex::Min),
        Some(b'+') if b.len() == 1 => Ok(Lex::Max),
        Some(b'[') => Ok(Lex::Incl(b[1..].to_vec())),
        Some(b'(') => Ok(Lex::Excl(b[1..].to_vec())),
        _ => Err(CommandError::other(
            "ERR min or max not valid string range item",
        )),
    }
}

fn lex_above(m: &[u8], min: &Lex) -> bool {
    match min {
        Lex::Min => true,
        Lex::Max => false,
        Lex::Incl(x) => m >= x.as_slice(),
        Lex::Excl(x) => m > x.as_slice(),
    }
}

fn lex_below(m: &[u8], max: &Lex) -> bool {
    match max {
        Lex::Min => false,
        Lex::Max => true,
        Lex::Incl(x) => m <= x.as_slice(),
        Lex::Excl(x) => m < x.as_slice(),
    }
}

fn members_reply(items: Vec<(Vec<u8>, f64)>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(
            items
                .into_iter()
                .map(|(m, s)| (Reply::Bulk(m), Reply::Double(s)))
                .collect(),
        )
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

enum By {
    Rank,
    Score,
    Lex,
}

/// ZRANGE and its older forms: `name` picks the defaults (ZRANGEBYSCORE = BYSCORE,
/// ZRANGEBYLEX = BYLEX, ZREVRANGE = REV, ZREV*BY* = BY* REV with max before min).
pub async fn zrange(tx: &mut Tx<'_>, args: &[Vec<u8>], name: &str) -> Result<Reply, CommandError> {
    let mut by = match name {
        "zrangebyscore" | "zrevrangebyscore" => By::Score,
        "zrangebylex" | "zrevrangebylex" => By::Lex,
        _ => By::Rank,
    };
    let mut rev = name.starts_with("zrev");
    let (mut with_scores, mut limit) = (false, None::<(i64, i64)>);
    let mut i = 3;
    while i < args.len() {
        match String::from_utf8_lossy(&args[i])
            .to_ascii_lowercase()
            .as_str()
        {
            "byscore" if name == "zrange" => by = By::Score,
            "bylex" if name == "zrange" => by = By::Lex,
            "rev" if name == "zrange" => rev = true,
            "withscores" => with_scores = true,
            "limit" if i + 2 < args.len() => {
                limit = Some((parse_i64(&args[i + 1])?, parse_i64(&args[i + 2])?));
                i += 2;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    if limit.is_some() && matches!(by, By::Rank) {
        return Err(CommandError::other(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && matches!(by, By::Lex) {
        return Err(CommandError::other(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    // With REV in ZRANGE the range is given max first; the old ZREV* forms do that too.
    let (lo, hi) = if rev && !matches!(by, By::Rank) {
        (&args[2], &args[1])
    } else {
        (&args[1], &args[2])
    };
    let mut items = match load(tx, &args[0], Kind::SortedSet).await? {
        Some(h) => ordered(&h, tx, &args[0]).await?,
        None => Vec::new(),
    };
    let selected: Vec<(Vec<u8>, f64)> = match by {
        By::Rank => {
            let (start, stop) = (parse_i64(lo)?, parse_i64(hi)?);
            if rev {
                items.reverse();
            }
            match index_range(start, stop, items.len() as u64) {
                Some((a, b)) => items.drain(a as usize..=b as usize).collect(),
                None => Vec::new(),
            }
        }
        By::Score => {
            let (min, max) = (parse_bound(lo)?, parse_bound(hi)?);
            let mut v: Vec<_> = items
                .into_iter()
                .filter(|(_, s)| above(*s, min) && below(*s, max))
                .collect();
            if rev {
                v.reverse();
            }
            v
        }
        By::Lex => {
            let (min, max) = (parse_lex(lo)?, parse_lex(hi)?);
            let mut v: Vec<_> = items
                .into_iter()
                .filter(|(m, _)| lex_above(m, &min) && lex_below(m, &max))
                .collect();
            if rev {
                v.reverse();
            }
            v
        }
    };
    let selected = match limit {
        Some((offset, count)) if offset >= 0 => {
            let it = selected.into_iter().skip(offset as usize);
            if count < 0 {
                it.collect()
            } else {
                it.take(count as usize).collect()
            }
        }
        Some(_) => Vec::new(),
        None => selected,
    };
    Ok(members_reply(selected, with_scores))
}

pub async fn zcount(tx: &mut Tx<'_>, args: &[Vec<u8>]) -> Result<Reply, CommandError> {
    let (min, max) = (parse_bound(&args[1])?, parse_bound(&args[2])?);
    let items = match load(tx, &args[0], Kind::SortedSet).await? {
        Some(h) => ordered(&h, tx, &args[0]).await?,
        None => Vec::new(),
    };
    let n = items
        .iter()
        .filter(|(_, s)| above(*s, min) && below(*s, max))
        .count();
    Ok(Reply::Int(n as i64))
}

/// ZRANK and ZREVRANK.
pub async fn zrank(tx: &mut Tx<'_>, args: &[Vec<u8>], rev: bool) -> Result<Reply, CommandError> {
    let Some(h) = load(tx, &args[0], Kind::SortedSet).await? else {
        return Ok(Reply::Nil);
    };
    if score_of(&h, tx, &args[0], &args[1]).await?.is_none() {
        return Ok(Reply::Nil);
    }
    let items = ordered(&h, tx, &args[0]).await?;
    let pos = items.iter().position(|(m, _)| *m == args[1]);
    Ok(pos.map_or(Reply::Nil, |p| {
        Reply::Int(if rev { items.len() - 1 - p } else { p } as i64)
    }))
}

/// ZREMRANGEBYRANK and ZREMRANGEBYSCORE.
pub async fn zremrange(
    tx: &mut Tx<'_>,
    args: &[Vec<u8>],
    by_score: bool,
) -> Result<Reply, CommandError> {
    let key = &args[0];
    let Some(mut h) = load(tx, key, Kind::SortedSet).await? else {
        if !by_score {
            parse_i64(&args[1])?;
            parse_i64(&args[2])?;
        }
        return Ok(Reply::Int(0));
    };
    let items = ordered(&h, tx, key).await?;
    let doomed: Vec<(Vec<u8>, f64)> = if by_score {
        let (min, max) = (parse_bound(&args[1])?, parse_bound(&args[2])?);
        items
            .into_iter()
            .filter(|(_, s)| above(*s, min) && below(*s, max))
            .collect()
    } else {
        match index_range(
            parse_i64(&args[1])?,
            parse_i64(&args[2])?,
            items.len() as u64,
        ) {
            Some((a, b)) => items[a as usize..=b as usize].to_vec(),
            None => Vec::new(),
        }
    };
    for (m, s) in &doomed {
        remove_member(&mut h, tx, key, m, *s).await?;
    }
    if !doomed.is_empty() {
        h.save(tx, key)?;
    }
    Ok(Reply::Int(doomed.len() as i64))
}

/// ZPOPMIN and ZPOPMAX [count].
pub async fn zpop(tx: &mut Tx<'_>, args: &[Vec<u8>], max: bool) -> Result<Reply, CommandError> {
    let count = optional_count(args)?.map_or(1, |n| n as usize);
    let key = &args[0];
    // Without a count the reply is one flat member-score pair (RESP3 too), as Redis's.
    let flat = args.len() == 1;
    let Some(mut h) = load(tx, key, Kind::SortedSet).await? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let mut items = ordered(&h, tx, key).await?;
    if max {
        items.reverse();
    }
    items.truncate(count);
    for (m, s) in &items {
        remove_member(&mut h, tx, key, m, *s).await?;
    }
    if !items.is_empty() {
        h.save(tx, key)?;
    }
    if flat {
        return Ok(Reply::Array(
            items
                .into_iter()
                .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
                .collect(),
        ));
    }
    Ok(Reply::Pairs(
        items
            .into_iter()
            .map(|(m, s)| (Reply::Bulk(m), Reply::Double(s)))
            .collect(),
    ))
}
