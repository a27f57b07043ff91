//! HSCAN, SSCAN and ZSCAN: a page of a collection's elements after a cursor, in member
//! order. Outside MULTI a page is one call with its own snapshot and the cursor names the
//! last element key returned (kept by the node, as SCAN's); inside MULTI the whole
//! collection comes back in one reply with cursor 0, from the transaction's snapshot.

use super::collection::load;
use super::zsets::decode_score;
use super::{glob, scan_args, ScanArgs};
use crate::error::CommandError;
use crate::keyspace::{element_owner, element_prefix, Kind};
use crate::reply::{score_text, Reply};
use crate::tx::Tx;

/// One page of elements, and the element key to go on after (None: the walk is done).
pub struct ElementPage {
    pub items: Vec<Reply>,
    pub after: Option<Vec<u8>>,
}

/// The collection type a scan command walks.
pub fn kind_of(command: &str) -> Kind {
    match command {
        "hscan" => Kind::Hash,
        "sscan" => Kind::Set,
        _ => Kind::SortedSet,
    }
}

/// Up to `opts.count` elements of collection `key` after element key `after` (None: from
/// the first). A cursor left by another incarnation of the key (deleted and created again
/// meanwhile) ends the walk: the collection it walked is gone. A cursor that names no
/// element of this key is refused.
pub async fn page(
    tx: &mut Tx<'_>,
    key: &[u8],
    kind: Kind,
    opts: &ScanArgs,
    after: Option<Vec<u8>>,
) -> Result<ElementPage, CommandError> {
    let done = ElementPage {
        items: Vec::new(),
        after: None,
    };
    if let Some(a) = &after {
        if element_owner(a).is_none_or(|(owner, _)| owner != key) {
            return Err(CommandError::other("ERR invalid cursor"));
        }
    }
    let Some(handle) = load(tx, key, kind).await? else {
        return Ok(done);
    };
    let mut family = element_prefix(key, handle.generation());
    if kind == Kind::SortedSet {
        // The member-to-score elements; the score index beside them is not walked.
        family.push(b'm');
    }
    let start = match after {
        None => family.clone(),
        Some(k) if k.starts_with(&family) => match tx.key_after(&k) {
            Some(next) => next,
            None => return Ok(done),
        },
        Some(_) => return Ok(done),
    };
    let limit = u32::try_from(opts.count).unwrap_or(u32::MAX);
    let page = tx.scan_page(&family, start, limit).await?;
    let (pairs, after) = (page.pairs, page.resume);
    let mut items = Vec::new();
    for (k, v) in pairs {
        let member = k[family.len()..].to_vec();
        if opts
            .pattern
            .as_ref()
            .is_some_and(|p| !glob::matches(p, &member))
        {
            continue;
        }
        match kind {
            Kind::Hash => items.extend([Reply::Bulk(member), Reply::Bulk(v)]),
            Kind::SortedSet => {
                let score = score_text(decode_score(&v)?);
                items.extend([Reply::Bulk(member), Reply::Bulk(score.into_bytes())]);
            }
            _ => items.push(Reply::Bulk(member)),
        }
    }
    Ok(ElementPage { items, after })
}

/// HSCAN, SSCAN or ZSCAN inside MULTI: every element in one reply, cursor 0.
pub async fn whole(
    tx: &mut Tx<'_>,
    command: &str,
    args: &[Vec<u8>],
) -> Result<Reply, CommandError> {
    let mut opts = scan_args(&args[1..], false)?;
    // COUNT only sizes the pages read here: the reply holds them all.
    opts.count = 1_000;
    let kind = kind_of(command);
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = page(tx, &args[0], kind, &opts, after).await?;
        items.extend(page.items);
        match page.after {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    Ok(Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)]))
}
