//! SORT and SORT_RO: the elements of a list, set or sorted set, ordered by themselves or by
//! weights in other keys (`BY`), with values fetched from other keys (`GET`).

use super::commands::{CommandSpec, int_arg, is, parse_float, spec};
use super::keyspace::{KIND_MEMBER, KIND_SCORE, KeyType, Meta};
use super::reply::{RedisError, Reply};
use super::store::RedisTxn;
use std::cmp::Ordering;

pub(super) const COMMANDS: &[CommandSpec] = &[
    spec("sort", -2, &["write", "denyoom", "movablekeys"], (1, 1, 1)),
    spec("sort_ro", -2, &["readonly", "movablekeys"], (1, 1, 1)),
];

/// What a SORT asks for.
struct Options {
    by: Option<Vec<u8>>,
    limit: Option<(i64, i64)>,
    gets: Vec<Vec<u8>>,
    desc: bool,
    alpha: bool,
    store: Option<Vec<u8>>,
}

fn options(args: &[Vec<u8>], read_only: bool) -> Result<Options, RedisError> {
    let mut o = Options {
        by: None,
        limit: None,
        gets: Vec::new(),
        desc: false,
        alpha: false,
        store: None,
    };
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        let has_next = i + 1 < args.len();
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && i + 2 < args.len() {
            o.limit = Some((int_arg(&args[i + 1])?, int_arg(&args[i + 2])?));
            i += 2;
        } else if is(a, "store") && has_next && !read_only {
            o.store = Some(args[i + 1].clone());
            i += 1;
        } else if is(a, "by") && has_next {
            o.by = Some(args[i + 1].clone());
            i += 1;
        } else if is(a, "get") && has_next {
            o.gets.push(args[i + 1].clone());
            i += 1;
        } else {
            return Err(RedisError::syntax());
        }
        i += 1;
    }
    Ok(o)
}

/// The value a pattern names for `element`: `#` is the element itself; otherwise the first
/// `*` is replaced by it, and `key->field` reads a hash field. `None` when the pattern has no
/// `*` or the key (or field) is missing or of another type.
async fn lookup(
    txn: &RedisTxn,
    pattern: &[u8],
    element: &[u8],
) -> Result<Option<Vec<u8>>, RedisError> {
    if pattern == b"#" {
        return Ok(Some(element.to_vec()));
    }
    let Some(star) = pattern.iter().position(|&b| b == b'*') else {
        return Ok(None);
    };
    let arrow = pattern
        .windows(2)
        .rposition(|w| w == b"->")
        .filter(|&p| p > star && p + 2 < pattern.len());
    let (key_pattern, field) = match arrow {
        Some(p) => (&pattern[..p], Some(&pattern[p + 2..])),
        None => (pattern, None),
    };
    let mut key = key_pattern[..star].to_vec();
    key.extend_from_slice(element);
    key.extend_from_slice(&key_pattern[star + 1..]);
    let Some(meta) = txn.meta(&key).await? else {
        return Ok(None);
    };
    Ok(match (field, meta.key_type) {
        (None, KeyType::String) => Some(meta.value),
        (Some(f), KeyType::Hash) => txn.member(&key, f).await?,
        _ => None,
    })
}

/// The elements of `key` in their natural order (list order, set member order, zset score
/// order); `None` when the key is missing.
async fn elements(txn: &RedisTxn, key: &[u8], meta: &Meta) -> Result<Vec<Vec<u8>>, RedisError> {
    Ok(match meta.key_type {
        KeyType::List | KeyType::Set => {
            let kind = KIND_MEMBER;
            let rows = txn.elements(key, kind, &[], None, None).await?;
            if meta.key_type == KeyType::List {
                rows.into_iter().map(|(_, v)| v).collect()
            } else {
                rows.into_iter().map(|(m, _)| m).collect()
            }
        }
        KeyType::ZSet => txn
            .elements(key, KIND_SCORE, &[], None, None)
            .await?
            .into_iter()
            .map(|(sub, _)| sub.get(8..).unwrap_or_default().to_vec())
            .collect(),
        _ => return Err(RedisError::wrong_type()),
    })
}

pub(super) async fn run(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
) -> Result<Reply, RedisError> {
    let o = options(args, name == "sort_ro")?;
    let items = match txn.meta(&args[1]).await? {
        Some(meta) => elements(txn, &args[1], &meta).await?,
        None => Vec::new(),
    };
    // `BY` a pattern without `*` means "do not sort".
    let sort = o.by.as_ref().is_none_or(|b| b.contains(&b'*'));
    let mut keyed: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(items.len());
    for item in items {
        let weight = match &o.by {
            Some(by) if sort => lookup(txn, by, &item).await?,
            _ => Some(item.clone()),
        };
        keyed.push((item, weight));
    }
    if sort {
        let mut scored = Vec::with_capacity(keyed.len());
        for (item, weight) in keyed {
            let score = if o.alpha {
                0.0
            } else {
                match &weight {
                    None => 0.0,
                    Some(w) => parse_float(w).ok_or_else(|| {
                        RedisError::err("One or more scores can't be converted into double")
                    })?,
                }
            };
            scored.push((item, weight, score));
        }
        scored.sort_by(|a, b| {
            let order = if o.alpha {
                // A missing weight sorts first.
                a.1.cmp(&b.1)
            } else {
                a.2.partial_cmp(&b.2).unwrap_or(Ordering::Equal)
            };
            // Equal weights fall back to the elements themselves, so the order is defined.
            let order = order.then_with(|| a.0.cmp(&b.0));
            if o.desc { order.reverse() } else { order }
        });
        keyed = scored.into_iter().map(|(i, w, _)| (i, w)).collect();
    } else if o.desc {
        keyed.reverse();
    }
    let (start, count) = o.limit.unwrap_or((0, -1));
    let start = start.max(0) as usize;
    let chosen: Vec<Vec<u8>> = keyed
        .into_iter()
        .skip(start)
        .take(if count < 0 {
            usize::MAX
        } else {
            count as usize
        })
        .map(|(item, _)| item)
        .collect();
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    for item in &chosen {
        if o.gets.is_empty() {
            out.push(Some(item.clone()));
        }
        for get in &o.gets {
            out.push(lookup(txn, get, item).await?);
        }
    }
    let Some(dest) = o.store else {
        return Ok(Reply::Array(out.into_iter().map(Reply::opt).collect()));
    };
    txn.delete_key(&dest).await?;
    let stored = out.len();
    if stored > 0 {
        let mut meta = Meta::new(KeyType::List);
        for (i, value) in out.into_iter().enumerate() {
            let seq = super::keyspace::encode_seq(i as i64);
            txn.put_element(&dest, KIND_MEMBER, &seq, value.unwrap_or_default());
        }
        meta.len = stored as u64;
        meta.head = 0;
        meta.tail = stored as i64;
        txn.put_meta(&dest, meta).await?;
    }
    Ok(Reply::Integer(stored as i64))
}
