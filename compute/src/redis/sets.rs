//! Set commands: SADD … SSCAN.
//!
//! A set's members are member elements whose sub-key is the member and whose value is empty,
//! so members come back from a scan in byte order and membership is one point read.

use super::commands::{
    ALL_KEYS, CommandSpec, KEY1, NO_KEYS, R, RF, WD, WDF, WF, glob_match, int_arg, is, spec,
    unknown_command,
};
use super::keys::{load_cursor, save_cursor};
use super::keyspace::{KIND_MEMBER, KeyType, Meta};
use super::lists::{pop_count, ranged_int};
use super::reply::{RedisError, Reply};
use super::store::RedisTxn;
use std::collections::BTreeSet;

/// SINTERCARD's Redis 7.0 flags: its keys follow a count (`movablekeys`).
const R_MOVABLE: &[&str] = &["readonly", "movablekeys"];
/// SMOVE names the source and the destination.
const SRC_DST: (i32, i32, i32) = (1, 2, 1);

/// The set commands.
pub(super) const COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, WDF, KEY1),
    spec("srem", -3, WF, KEY1),
    spec("smembers", 2, R, KEY1),
    spec("sismember", 3, RF, KEY1),
    spec("smismember", -3, RF, KEY1),
    spec("scard", 2, RF, KEY1),
    spec("spop", -2, WF, KEY1),
    spec("srandmember", -2, R, KEY1),
    spec("sunion", -2, R, ALL_KEYS),
    spec("sinter", -2, R, ALL_KEYS),
    spec("sdiff", -2, R, ALL_KEYS),
    spec("sunionstore", -3, WD, ALL_KEYS),
    spec("sinterstore", -3, WD, ALL_KEYS),
    spec("sdiffstore", -3, WD, ALL_KEYS),
    spec("smove", 4, WF, SRC_DST),
    spec("sintercard", -3, R_MOVABLE, NO_KEYS),
    spec("sscan", -3, R, KEY1),
];

/// How SUNION, SINTER and SDIFF combine their inputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// Runs the set command `name`.
pub(super) async fn run(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
) -> Result<Reply, RedisError> {
    let key = &args[1];
    match name {
        "sadd" => sadd(txn, key, &args[2..]).await,
        "srem" => srem(txn, key, &args[2..]).await,
        "smembers" => Ok(set_reply(load(txn, key).await?)),
        "sismember" => {
            let found = match txn.meta_of(key, KeyType::Set).await? {
                Some(_) => txn.member(key, &args[2]).await?.is_some(),
                None => false,
            };
            Ok(Reply::Integer(i64::from(found)))
        }
        "smismember" => {
            let exists = txn.meta_of(key, KeyType::Set).await?.is_some();
            let mut replies = Vec::with_capacity(args.len() - 2);
            for member in &args[2..] {
                let found = exists && txn.member(key, member).await?.is_some();
                replies.push(Reply::Integer(i64::from(found)));
            }
            Ok(Reply::Array(replies))
        }
        "scard" => {
            let meta = txn.meta_of(key, KeyType::Set).await?;
            Ok(Reply::Integer(meta.map_or(0, |m| m.len as i64)))
        }
        "spop" => spop(txn, args).await,
        "srandmember" => srandmember(txn, args).await,
        "sunion" => Ok(set_reply(combine(txn, &args[1..], SetOp::Union).await?)),
        "sinter" => Ok(set_reply(combine(txn, &args[1..], SetOp::Inter).await?)),
        "sdiff" => Ok(set_reply(combine(txn, &args[1..], SetOp::Diff).await?)),
        "sunionstore" => store(txn, args, SetOp::Union).await,
        "sinterstore" => store(txn, args, SetOp::Inter).await,
        "sdiffstore" => store(txn, args, SetOp::Diff).await,
        "smove" => smove(txn, &args[1], &args[2], &args[3]).await,
        "sintercard" => sintercard(txn, args).await,
        "sscan" => sscan(txn, args).await,
        _ => Err(unknown_command(args)),
    }
}

/// A RESP3 set of bulk strings (an array in RESP2).
fn set_reply(members: impl IntoIterator<Item = Vec<u8>>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

/// Every member of the set at `key`, in byte order (none when the key is missing).
async fn load(txn: &RedisTxn, key: &[u8]) -> Result<Vec<Vec<u8>>, RedisError> {
    if txn.meta_of(key, KeyType::Set).await?.is_none() {
        return Ok(Vec::new());
    }
    Ok(txn
        .members(key)
        .await?
        .into_iter()
        .map(|(m, _)| m)
        .collect())
}

/// Writes the members of a set and returns its metadata (the caller writes that).
fn add_all(txn: &mut RedisTxn, key: &[u8], members: &BTreeSet<Vec<u8>>) -> Meta {
    let mut meta = Meta::new(KeyType::Set);
    for m in members {
        txn.put_element(key, KIND_MEMBER, m, Vec::new());
    }
    meta.len = members.len() as u64;
    meta
}

async fn sadd(txn: &mut RedisTxn, key: &[u8], members: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let mut meta = txn
        .meta_of(key, KeyType::Set)
        .await?
        .unwrap_or_else(|| Meta::new(KeyType::Set));
    let mut added = 0;
    for m in members {
        // Reads see this transaction's writes, so a member repeated in one SADD counts once.
        if txn.member(key, m).await?.is_none() {
            txn.put_element(key, KIND_MEMBER, m, Vec::new());
            added += 1;
        }
    }
    if added > 0 {
        meta.len += added;
        txn.put_meta(key, meta).await?;
    }
    Ok(Reply::Integer(added as i64))
}

async fn srem(txn: &mut RedisTxn, key: &[u8], members: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let Some(mut meta) = txn.meta_of(key, KeyType::Set).await? else {
        return Ok(Reply::Integer(0));
    };
    let mut removed = 0;
    for m in members {
        if txn.member(key, m).await?.is_some() {
            txn.delete_element(key, KIND_MEMBER, m);
            removed += 1;
        }
    }
    if removed > 0 {
        meta.len = meta.len.saturating_sub(removed);
        txn.put_meta(key, meta).await?;
    }
    Ok(Reply::Integer(removed as i64))
}

/// A uniformly random index below `n` (`n > 0`).
pub(super) fn random_index(n: usize) -> usize {
    use rand::Rng;
    rand::thread_rng().gen_range(0..n)
}

/// `k` distinct random indexes below `n` (`k <= n`), in random order.
pub(super) fn random_indexes(n: usize, k: usize) -> Vec<usize> {
    rand::seq::index::sample(&mut rand::thread_rng(), n, k).into_vec()
}

/// The longest reply a random pick with repetition (a negative count) builds: a larger one
/// would exhaust memory rather than answer.
const MAX_RANDOM_REPLY: u64 = 1 << 24;

/// A count for SRANDMEMBER / ZRANDMEMBER / HRANDFIELD: any integer but `i64::MIN` (Redis's
/// `-LONG_MAX` bound), with repetition at most `MAX_RANDOM_REPLY` items.
pub(super) fn random_count(a: &[u8]) -> Result<i64, RedisError> {
    match int_arg(a)? {
        n if n == i64::MIN || n.unsigned_abs() > MAX_RANDOM_REPLY && n < 0 => {
            Err(RedisError::err(format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )))
        }
        n => Ok(n),
    }
}

/// SPOP `key [count]`: removes random members.
async fn spop(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = &args[1];
    if args.len() > 3 {
        return Err(RedisError::syntax());
    }
    let count = pop_count(args)?;
    let Some(mut meta) = txn.meta_of(key, KeyType::Set).await? else {
        return Ok(match count {
            Some(_) => Reply::Set(Vec::new()),
            None => Reply::Nil,
        });
    };
    if count == Some(0) {
        return Ok(Reply::Set(Vec::new()));
    }
    let mut members: Vec<Vec<u8>> = txn
        .members(key)
        .await?
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    let picked: Vec<Vec<u8>> = match count {
        Some(n) if n >= members.len() as u64 => std::mem::take(&mut members),
        Some(n) => {
            let mut indexes = random_indexes(members.len(), n as usize);
            indexes.sort_unstable();
            indexes
                .iter()
                .map(|&i| std::mem::take(&mut members[i]))
                .collect()
        }
        None if members.is_empty() => Vec::new(),
        None => vec![members.swap_remove(random_index(members.len()))],
    };
    if picked.is_empty() {
        return Ok(if count.is_some() {
            Reply::Set(Vec::new())
        } else {
            Reply::Nil
        });
    }
    for m in &picked {
        txn.delete_element(key, KIND_MEMBER, m);
    }
    meta.len = meta.len.saturating_sub(picked.len() as u64);
    txn.put_meta(key, meta).await?;
    Ok(match count {
        Some(_) => set_reply(picked),
        None => Reply::opt(picked.into_iter().next()),
    })
}

/// SRANDMEMBER `key [count]`: random members; a negative count may repeat them.
async fn srandmember(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = &args[1];
    if args.len() > 3 {
        return Err(RedisError::syntax());
    }
    let count = match args.get(2) {
        Some(c) => Some(random_count(c)?),
        None => None,
    };
    let members = load(txn, key).await?;
    let Some(count) = count else {
        if members.is_empty() {
            return Ok(Reply::Nil);
        }
        let i = random_index(members.len());
        return Ok(Reply::Bulk(members[i].clone()));
    };
    if count == 0 || members.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    Ok(Reply::bulks(random_pick(members, count)))
}

/// `count` random items of `items` (non-empty): distinct for a positive count (all of them
/// when it exceeds their number), possibly repeated for a negative one.
pub(super) fn random_pick<T: Clone>(items: Vec<T>, count: i64) -> Vec<T> {
    if count < 0 {
        let n = count.unsigned_abs();
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(items[random_index(items.len())].clone());
        }
        return out;
    }
    let k = count as u64;
    if k >= items.len() as u64 {
        return items;
    }
    random_indexes(items.len(), k as usize)
        .into_iter()
        .map(|i| items[i].clone())
        .collect()
}

/// Combines the sets at `keys`. Every key is type-checked first, as Redis does; a missing key
/// is an empty set.
async fn combine(
    txn: &RedisTxn,
    keys: &[Vec<u8>],
    op: SetOp,
) -> Result<BTreeSet<Vec<u8>>, RedisError> {
    let mut metas = Vec::with_capacity(keys.len());
    for key in keys {
        metas.push(txn.meta_of(key, KeyType::Set).await?);
    }
    match op {
        SetOp::Union => {
            let mut out = BTreeSet::new();
            for (key, meta) in keys.iter().zip(&metas) {
                if meta.is_some() {
                    out.extend(load(txn, key).await?);
                }
            }
            Ok(out)
        }
        SetOp::Inter => {
            if metas.iter().any(Option::is_none) {
                return Ok(BTreeSet::new());
            }
            // Start from the smallest set and check the others against it.
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_by_key(|&i| metas[i].as_ref().map_or(0, |m| m.len));
            let mut out: BTreeSet<Vec<u8>> =
                load(txn, &keys[order[0]]).await?.into_iter().collect();
            for &i in &order[1..] {
                if out.is_empty() {
                    break;
                }
                out = keep_members(txn, &keys[i], metas[i].as_ref(), out, true).await?;
            }
            Ok(out)
        }
        SetOp::Diff => {
            if metas[0].is_none() {
                return Ok(BTreeSet::new());
            }
            let mut out: BTreeSet<Vec<u8>> = load(txn, &keys[0]).await?.into_iter().collect();
            for (key, meta) in keys.iter().zip(&metas).skip(1) {
                if out.is_empty() {
                    break;
                }
                if meta.is_some() {
                    out = keep_members(txn, key, meta.as_ref(), out, false).await?;
                }
            }
            Ok(out)
        }
    }
}

/// Keeps the `candidates` that are (`inside`) or are not (`!inside`) members of the set at
/// `key`, reading whichever is cheaper: the whole set, or one member at a time.
async fn keep_members(
    txn: &RedisTxn,
    key: &[u8],
    meta: Option<&Meta>,
    candidates: BTreeSet<Vec<u8>>,
    inside: bool,
) -> Result<BTreeSet<Vec<u8>>, RedisError> {
    let len = meta.map_or(0, |m| m.len);
    if len == 0 {
        return Ok(if inside { BTreeSet::new() } else { candidates });
    }
    if len <= 4 * candidates.len() as u64 {
        let members: BTreeSet<Vec<u8>> = load(txn, key).await?.into_iter().collect();
        return Ok(candidates
            .into_iter()
            .filter(|m| members.contains(m) == inside)
            .collect());
    }
    let mut out = BTreeSet::new();
    for m in candidates {
        if txn.member(key, &m).await?.is_some() == inside {
            out.insert(m);
        }
    }
    Ok(out)
}

/// SUNIONSTORE / SINTERSTORE / SDIFFSTORE `dst key...`: the size of the stored result; an
/// empty result deletes `dst`.
async fn store(txn: &mut RedisTxn, args: &[Vec<u8>], op: SetOp) -> Result<Reply, RedisError> {
    let dst = &args[1];
    // Computed before `dst` is replaced: it may also be an input.
    let result = combine(txn, &args[2..], op).await?;
    txn.delete_key(dst).await?;
    if result.is_empty() {
        return Ok(Reply::Integer(0));
    }
    let meta = add_all(txn, dst, &result);
    txn.put_meta(dst, meta).await?;
    Ok(Reply::Integer(result.len() as i64))
}

/// SMOVE `src dst member`: 1 when the member moved (or is already in `src == dst`).
async fn smove(
    txn: &mut RedisTxn,
    src: &[u8],
    dst: &[u8],
    member: &[u8],
) -> Result<Reply, RedisError> {
    let src_meta = txn.meta(src).await?;
    let dst_meta = txn.meta(dst).await?;
    let Some(mut src_meta) = src_meta else {
        return Ok(Reply::Integer(0));
    };
    if src_meta.key_type != KeyType::Set
        || dst_meta
            .as_ref()
            .is_some_and(|m| m.key_type != KeyType::Set)
    {
        return Err(RedisError::wrong_type());
    }
    let present = txn.member(src, member).await?.is_some();
    if src == dst || !present {
        return Ok(Reply::Integer(i64::from(present)));
    }
    txn.delete_element(src, KIND_MEMBER, member);
    src_meta.len = src_meta.len.saturating_sub(1);
    txn.put_meta(src, src_meta).await?;
    let mut dst_meta = dst_meta.unwrap_or_else(|| Meta::new(KeyType::Set));
    if txn.member(dst, member).await?.is_none() {
        txn.put_element(dst, KIND_MEMBER, member, Vec::new());
        dst_meta.len += 1;
    }
    txn.put_meta(dst, dst_meta).await?;
    Ok(Reply::Integer(1))
}

/// SINTERCARD `numkeys key... [LIMIT limit]`: the size of the intersection, at most `limit`
/// (0: no limit).
async fn sintercard(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let numkeys = ranged_int(&args[1], 1, "numkeys should be greater than 0")? as u64;
    if numkeys > (args.len() - 2) as u64 {
        return Err(RedisError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0u64;
    let mut j = keys_end;
    while j < args.len() {
        if is(&args[j], "limit") && j + 1 < args.len() {
            limit = ranged_int(&args[j + 1], 0, "LIMIT can't be negative")? as u64;
            j += 2;
        } else {
            return Err(RedisError::syntax());
        }
    }
    let n = combine(txn, &args[2..keys_end], SetOp::Inter).await?.len() as u64;
    let n = if limit == 0 { n } else { n.min(limit) };
    Ok(Reply::Integer(n as i64))
}

/// The `MATCH pattern` and `COUNT n` options of SSCAN / ZSCAN (from `args[3]` on): the
/// pattern (`None` for everything) and the page size.
pub(super) fn scan_options(args: &[Vec<u8>]) -> Result<(Option<&[u8]>, u64), RedisError> {
    let mut pattern = None;
    let mut count = 10u64;
    let mut j = 3;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            let n = int_arg(&args[j + 1])?;
            if n < 1 {
                return Err(RedisError::syntax());
            }
            count = n as u64;
        } else if is(&args[j], "match") && j + 1 < args.len() {
            let p = args[j + 1].as_slice();
            pattern = (p != b"*").then_some(p);
        } else {
            return Err(RedisError::syntax());
        }
        j += 2;
    }
    Ok((pattern, count))
}

/// One page of a collection scan: up to `count` member elements (sub-key, value) in byte
/// order after the position `cursor` names, and the cursor of the next page (0 at the end).
/// Positions are member bytes kept server-side, so a member present for the whole scan is
/// returned whatever else is added or removed meanwhile.
pub(super) async fn scan_page(
    txn: &RedisTxn,
    key: &[u8],
    cursor: &[u8],
    count: u64,
) -> Result<(u64, Vec<(Vec<u8>, Vec<u8>)>), RedisError> {
    let from = load_cursor(cursor)?.map(|mut after| {
        after.push(0);
        after
    });
    let limit = usize::try_from(count).unwrap_or(usize::MAX);
    let rows = txn
        .elements(
            key,
            KIND_MEMBER,
            from.as_deref().unwrap_or(&[]),
            None,
            Some(limit),
        )
        .await?;
    let next = if rows.len() < limit {
        0
    } else {
        rows.last().map_or(0, |(m, _)| save_cursor(m.clone()))
    };
    Ok((next, rows))
}

/// A SCAN-family reply: the next cursor and this page's items.
pub(super) fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
}

/// SSCAN `key cursor [MATCH pattern] [COUNT count]`.
async fn sscan(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    load_cursor(&args[2])?;
    let (pattern, count) = scan_options(args)?;
    if txn.meta_of(&args[1], KeyType::Set).await?.is_none() {
        return Ok(scan_reply(0, Vec::new()));
    }
    let (next, page) = scan_page(txn, &args[1], &args[2], count).await?;
    let items = page
        .into_iter()
        .filter(|(m, _)| pattern.is_none_or(|p| glob_match(p, m)))
        .map(|(m, _)| Reply::Bulk(m))
        .collect();
    Ok(scan_reply(next, items))
}

#[cfg(test)]
mod tests {
    use super::super::commands::parse_int;
    use super::*;

    #[test]
    fn random_picks_respect_count_and_distinctness() {
        let items: Vec<u32> = (0..10).collect();
        let mut picked = random_pick(items.clone(), 4);
        assert_eq!(picked.len(), 4);
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), 4);
        assert_eq!(random_pick(items.clone(), 20).len(), 10);
        assert_eq!(random_pick(vec![7u32], -5), vec![7; 5]);
    }

    #[test]
    fn scan_arguments_parse_like_redis() {
        let args: Vec<Vec<u8>> = ["sscan", "k", "0", "MATCH", "a*", "COUNT", "5"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(scan_options(&args), Ok((Some(&b"a*"[..]), 5)));
        let bad: Vec<Vec<u8>> = ["sscan", "k", "0", "COUNT", "0"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(scan_options(&bad), Err(RedisError::syntax()));
    }

    #[test]
    fn random_counts_refuse_the_one_unrepresentable_value() {
        assert_eq!(random_count(b"-3"), Ok(-3));
        assert!(random_count(b"-9223372036854775808").is_err());
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
    }
}
