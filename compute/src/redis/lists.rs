//! List commands: LPUSH … BLMPOP.
//!
//! A list's elements are member elements at sub-key `encode_seq(seq)`, and they always occupy
//! the contiguous sequence numbers `meta.head..meta.tail`: element `i` lives at `head + i`, so
//! an index range is one range scan and LINDEX / LSET are one point access. Pushes and pops
//! move either end; commands that change the middle keep the list contiguous by rewriting
//! positions: LREM from the first removal to the tail, LINSERT on its shorter side.
//!
//! The blocking commands (BLPOP …) make one non-blocking attempt here; the engine runs them
//! again until data arrives or their timeout passes.

use super::commands::{
    BLOCKING, CommandSpec, KEY1, NO_KEYS, R, RF, W, WD, WDF, WF, blocking_timeout, clamp_range,
    int_arg, is, parse_int, spec, unknown_command,
};
use super::keyspace::{KIND_MEMBER, KeyType, Meta, encode_seq};
use super::reply::{RedisError, Reply};
use super::store::RedisTxn;

/// Redis 7.0's flags for the commands that take their keys after a count (`movablekeys`).
const W_MOVABLE: &[&str] = &["write", "movablekeys"];
const BLOCKING_MOVABLE: &[&str] = &["write", "blocking", "movablekeys"];
/// RPOPLPUSH, LMOVE and their blocking forms name the source and the destination.
const SRC_DST: (i32, i32, i32) = (1, 2, 1);
/// BLPOP / BRPOP: every argument but the trailing timeout is a key.
const ALL_BUT_TIMEOUT: (i32, i32, i32) = (1, -2, 1);

/// The list commands.
pub(super) const COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WDF, KEY1),
    spec("rpush", -3, WDF, KEY1),
    spec("lpushx", -3, WDF, KEY1),
    spec("rpushx", -3, WDF, KEY1),
    spec("lpop", -2, WF, KEY1),
    spec("rpop", -2, WF, KEY1),
    spec("lrange", 4, R, KEY1),
    spec("llen", 2, RF, KEY1),
    spec("lindex", 3, R, KEY1),
    spec("lset", 4, WD, KEY1),
    spec("lrem", 4, W, KEY1),
    spec("ltrim", 4, W, KEY1),
    spec("linsert", 5, WD, KEY1),
    spec("lpos", -3, R, KEY1),
    spec("rpoplpush", 3, WD, SRC_DST),
    spec("lmove", 5, WD, SRC_DST),
    spec("lmpop", -4, W_MOVABLE, NO_KEYS),
    spec("blpop", -3, BLOCKING, ALL_BUT_TIMEOUT),
    spec("brpop", -3, BLOCKING, ALL_BUT_TIMEOUT),
    spec("brpoplpush", 4, BLOCKING, SRC_DST),
    spec("blmove", 6, BLOCKING, SRC_DST),
    spec("blmpop", -5, BLOCKING_MOVABLE, NO_KEYS),
];

/// Redis's message for a count that must be zero or more.
pub(super) const MUST_BE_POSITIVE: &str = "value is out of range, must be positive";

/// An integer argument that must be at least `min`; `message` (without `ERR `) is the error
/// for anything else, as Redis's `getRangeLongFromObjectOrReply` words it.
pub(super) fn ranged_int(a: &[u8], min: i64, message: &str) -> Result<i64, RedisError> {
    parse_int(a)
        .filter(|&n| n >= min)
        .ok_or_else(|| RedisError::err(message))
}

/// The optional `count` of LPOP/RPOP, SPOP and ZPOPMIN/ZPOPMAX (`args[2]`): a non-negative
/// integer, `None` when absent.
pub(super) fn pop_count(args: &[Vec<u8>]) -> Result<Option<u64>, RedisError> {
    args.get(2)
        .map(|c| ranged_int(c, 0, MUST_BE_POSITIVE).map(|n| n as u64))
        .transpose()
}

/// Which end of a list.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

/// `LEFT` / `RIGHT`.
fn end_arg(a: &[u8]) -> Result<End, RedisError> {
    if is(a, "left") {
        Ok(End::Left)
    } else if is(a, "right") {
        Ok(End::Right)
    } else {
        Err(RedisError::syntax())
    }
}

/// Runs the list command `name`.
pub(super) async fn run(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
) -> Result<Reply, RedisError> {
    match name {
        "lpush" => push_command(txn, args, End::Left, false).await,
        "rpush" => push_command(txn, args, End::Right, false).await,
        "lpushx" => push_command(txn, args, End::Left, true).await,
        "rpushx" => push_command(txn, args, End::Right, true).await,
        "lpop" => pop_command(txn, name, args, End::Left).await,
        "rpop" => pop_command(txn, name, args, End::Right).await,
        "lrange" => lrange(txn, args).await,
        "llen" => {
            let meta = txn.meta_of(&args[1], KeyType::List).await?;
            Ok(Reply::Integer(meta.map_or(0, |m| m.len as i64)))
        }
        "lindex" => lindex(txn, args).await,
        "lset" => lset(txn, args).await,
        "lrem" => lrem(txn, args).await,
        "ltrim" => ltrim(txn, args).await,
        "linsert" => linsert(txn, args).await,
        "lpos" => lpos(txn, args).await,
        "rpoplpush" => move_element(txn, &args[1], &args[2], End::Right, End::Left).await,
        "lmove" => {
            let (from, to) = (end_arg(&args[3])?, end_arg(&args[4])?);
            move_element(txn, &args[1], &args[2], from, to).await
        }
        "brpoplpush" => {
            blocking_timeout(args)?;
            move_element(txn, &args[1], &args[2], End::Right, End::Left).await
        }
        "blmove" => {
            let (from, to) = (end_arg(&args[3])?, end_arg(&args[4])?);
            blocking_timeout(args)?;
            move_element(txn, &args[1], &args[2], from, to).await
        }
        "blpop" | "brpop" => {
            blocking_timeout(args)?;
            let end = if name == "blpop" {
                End::Left
            } else {
                End::Right
            };
            for key in &args[1..args.len() - 1] {
                let Some(mut meta) = txn.meta_of(key, KeyType::List).await? else {
                    continue;
                };
                if let Some(value) = pop(txn, key, &mut meta, end, 1).await?.pop() {
                    txn.put_meta(key, meta).await?;
                    return Ok(Reply::Array(vec![
                        Reply::bulk(key.clone()),
                        Reply::Bulk(value),
                    ]));
                }
            }
            Ok(Reply::NilArray)
        }
        "lmpop" => {
            let request = MultiPop::parse(args, 1)?;
            request.run(txn, args).await
        }
        "blmpop" => {
            let request = MultiPop::parse(args, 2)?;
            blocking_timeout(args)?;
            request.run(txn, args).await
        }
        _ => Err(unknown_command(args)),
    }
}

/// Elements at indexes `first..=last` (already resolved into the list).
async fn read_range(
    txn: &RedisTxn,
    key: &[u8],
    meta: &Meta,
    first: i64,
    last: i64,
) -> Result<Vec<Vec<u8>>, RedisError> {
    let from = encode_seq(meta.head + first);
    let to = encode_seq(meta.head + last + 1);
    let rows = txn
        .elements(key, KIND_MEMBER, &from, Some(&to), None)
        .await?;
    Ok(rows.into_iter().map(|(_, v)| v).collect())
}

/// Every element of the list.
async fn read_all(txn: &RedisTxn, key: &[u8], meta: &Meta) -> Result<Vec<Vec<u8>>, RedisError> {
    if meta.len == 0 {
        return Ok(Vec::new());
    }
    read_range(txn, key, meta, 0, meta.len as i64 - 1).await
}

/// Adds `value` at one end (the caller writes `meta`).
fn push(txn: &mut RedisTxn, key: &[u8], meta: &mut Meta, end: End, value: Vec<u8>) {
    let seq = match end {
        End::Left => {
            meta.head -= 1;
            meta.head
        }
        End::Right => {
            meta.tail += 1;
            meta.tail - 1
        }
    };
    txn.put_element(key, KIND_MEMBER, &encode_seq(seq), value);
    meta.len += 1;
}

/// Removes up to `count` elements from one end, in the order they were popped (the caller
/// writes `meta`).
async fn pop(
    txn: &mut RedisTxn,
    key: &[u8],
    meta: &mut Meta,
    end: End,
    count: u64,
) -> Result<Vec<Vec<u8>>, RedisError> {
    let n = count.min(meta.len) as i64;
    if n == 0 {
        return Ok(Vec::new());
    }
    let len = meta.len as i64;
    let (first, last) = match end {
        End::Left => (0, n - 1),
        End::Right => (len - n, len - 1),
    };
    let mut values = read_range(txn, key, meta, first, last).await?;
    for i in first..=last {
        txn.delete_element(key, KIND_MEMBER, &encode_seq(meta.head + i));
    }
    match end {
        End::Left => meta.head += n,
        End::Right => {
            meta.tail -= n;
            values.reverse();
        }
    }
    meta.len -= n as u64;
    Ok(values)
}

/// Replaces the elements from index `from` to the tail with `rest` (LINSERT and LREM shift
/// everything after the change), keeping the list contiguous.
fn rewrite_from(txn: &mut RedisTxn, key: &[u8], meta: &mut Meta, from: i64, rest: Vec<Vec<u8>>) {
    let mut seq = meta.head + from;
    for value in rest {
        txn.put_element(key, KIND_MEMBER, &encode_seq(seq), value);
        seq += 1;
    }
    for stale in seq..meta.tail {
        txn.delete_element(key, KIND_MEMBER, &encode_seq(stale));
    }
    meta.tail = seq;
    meta.len = (meta.tail - meta.head) as u64;
}

/// LPUSH / RPUSH / LPUSHX / RPUSHX: the new length.
async fn push_command(
    txn: &mut RedisTxn,
    args: &[Vec<u8>],
    end: End,
    only_existing: bool,
) -> Result<Reply, RedisError> {
    let key = &args[1];
    let mut meta = match txn.meta_of(key, KeyType::List).await? {
        Some(m) => m,
        None if only_existing => return Ok(Reply::Integer(0)),
        None => Meta::new(KeyType::List),
    };
    for value in &args[2..] {
        push(txn, key, &mut meta, end, value.clone());
    }
    let len = meta.len as i64;
    txn.put_meta(key, meta).await?;
    Ok(Reply::Integer(len))
}

/// LPOP / RPOP `key [count]`: a bulk without a count, an array with one.
async fn pop_command(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
    end: End,
) -> Result<Reply, RedisError> {
    if args.len() > 3 {
        return Err(RedisError::arity(name));
    }
    let count = pop_count(args)?;
    let key = &args[1];
    let Some(mut meta) = txn.meta_of(key, KeyType::List).await? else {
        return Ok(if count.is_some() {
            Reply::NilArray
        } else {
            Reply::Nil
        });
    };
    match count {
        Some(0) => Ok(Reply::Array(Vec::new())),
        Some(n) => {
            let values = pop(txn, key, &mut meta, end, n).await?;
            txn.put_meta(key, meta).await?;
            Ok(Reply::bulks(values))
        }
        None => {
            let value = pop(txn, key, &mut meta, end, 1).await?.pop();
            txn.put_meta(key, meta).await?;
            Ok(Reply::opt(value))
        }
    }
}

async fn lrange(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let Some(meta) = txn.meta_of(&args[1], KeyType::List).await? else {
        return Ok(Reply::Array(Vec::new()));
    };
    match clamp_range(start, stop, meta.len as i64) {
        Some((first, last)) => Ok(Reply::bulks(
            read_range(txn, &args[1], &meta, first, last).await?,
        )),
        None => Ok(Reply::Array(Vec::new())),
    }
}

/// The position of index `index` (negative from the tail) in a list of `len`, if inside.
fn resolve_index(index: i64, len: u64) -> Option<i64> {
    let len = len as i64;
    let i = if index < 0 {
        len.checked_add(index)?
    } else {
        index
    };
    (0..len).contains(&i).then_some(i)
}

async fn lindex(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let Some(meta) = txn.meta_of(&args[1], KeyType::List).await? else {
        return Ok(Reply::Nil);
    };
    let index = int_arg(&args[2])?;
    match resolve_index(index, meta.len) {
        Some(i) => Ok(Reply::opt(
            txn.member(&args[1], &encode_seq(meta.head + i)).await?,
        )),
        None => Ok(Reply::Nil),
    }
}

async fn lset(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = &args[1];
    let Some(meta) = txn.meta_of(key, KeyType::List).await? else {
        return Err(RedisError::err("no such key"));
    };
    let index = int_arg(&args[2])?;
    let Some(i) = resolve_index(index, meta.len) else {
        return Err(RedisError::err("index out of range"));
    };
    txn.put_element(
        key,
        KIND_MEMBER,
        &encode_seq(meta.head + i),
        args[3].clone(),
    );
    txn.put_meta(key, meta).await?;
    Ok(Reply::ok())
}

/// LREM `key count element`: removes the first `count` matches from the head (from the tail
/// for a negative count, all of them for 0).
async fn lrem(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let count = int_arg(&args[2])?;
    let key = &args[1];
    let Some(mut meta) = txn.meta_of(key, KeyType::List).await? else {
        return Ok(Reply::Integer(0));
    };
    let values = read_all(txn, key, &meta).await?;
    let limit = count.unsigned_abs();
    let mut removed = vec![false; values.len()];
    let mut n = 0u64;
    let order: Box<dyn Iterator<Item = usize> + Send> = if count < 0 {
        Box::new((0..values.len()).rev())
    } else {
        Box::new(0..values.len())
    };
    for i in order {
        if values[i] == args[3] {
            removed[i] = true;
            n += 1;
            if limit != 0 && n == limit {
                break;
            }
        }
    }
    let Some(first) = removed.iter().position(|&r| r) else {
        return Ok(Reply::Integer(0));
    };
    let rest: Vec<Vec<u8>> = values
        .into_iter()
        .zip(removed)
        .skip(first)
        .filter_map(|(v, r)| (!r).then_some(v))
        .collect();
    rewrite_from(txn, key, &mut meta, first as i64, rest);
    txn.put_meta(key, meta).await?;
    Ok(Reply::Integer(n as i64))
}

/// LTRIM `key start stop`: keeps only that range (deleting the key when it is empty).
async fn ltrim(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let key = &args[1];
    let Some(mut meta) = txn.meta_of(key, KeyType::List).await? else {
        return Ok(Reply::ok());
    };
    let len = meta.len as i64;
    match clamp_range(start, stop, len) {
        None => meta.len = 0,
        Some((first, last)) => {
            for i in (0..first).chain(last + 1..len) {
                txn.delete_element(key, KIND_MEMBER, &encode_seq(meta.head + i));
            }
            meta.tail = meta.head + last + 1;
            meta.head += first;
            meta.len = (last - first + 1) as u64;
        }
    }
    txn.put_meta(key, meta).await?;
    Ok(Reply::ok())
}

/// LINSERT `key BEFORE|AFTER pivot element`: the new length, -1 without the pivot, 0
/// without the key.
async fn linsert(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return Err(RedisError::syntax());
    };
    let key = &args[1];
    let Some(mut meta) = txn.meta_of(key, KeyType::List).await? else {
        return Ok(Reply::Integer(0));
    };
    let values = read_all(txn, key, &meta).await?;
    let Some(pivot) = values.iter().position(|v| *v == args[3]) else {
        return Ok(Reply::Integer(-1));
    };
    let at = pivot + usize::from(after);
    if at <= values.len() / 2 {
        // Nearer the head: move the elements before `at` one position left instead of
        // shifting the (longer) rest right.
        meta.head -= 1;
        for (i, value) in values.into_iter().take(at).enumerate() {
            txn.put_element(key, KIND_MEMBER, &encode_seq(meta.head + i as i64), value);
        }
        let seq = encode_seq(meta.head + at as i64);
        txn.put_element(key, KIND_MEMBER, &seq, args[4].clone());
        meta.len += 1;
    } else {
        let rest: Vec<Vec<u8>> = std::iter::once(args[4].clone())
            .chain(values.into_iter().skip(at))
            .collect();
        rewrite_from(txn, key, &mut meta, at as i64, rest);
    }
    let len = meta.len as i64;
    txn.put_meta(key, meta).await?;
    Ok(Reply::Integer(len))
}

/// LPOS `key element [RANK rank] [COUNT num] [MAXLEN len]`.
async fn lpos(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let mut rank: i64 = 1;
    let mut count: Option<u64> = None;
    let mut maxlen: u64 = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(&args[j], "rank") && more {
            rank = int_arg(&args[j + 1])?;
            if rank == 0 {
                return Err(RedisError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(&args[j], "count") && more {
            count = Some(ranged_int(&args[j + 1], 0, "COUNT can't be negative")? as u64);
        } else if is(&args[j], "maxlen") && more {
            maxlen = ranged_int(&args[j + 1], 0, "MAXLEN can't be negative")? as u64;
        } else {
            return Err(RedisError::syntax());
        }
        j += 2;
    }
    let Some(meta) = txn.meta_of(&args[1], KeyType::List).await? else {
        return Ok(if count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Nil
        });
    };
    let from_tail = rank < 0;
    let rank = rank.unsigned_abs();
    let len = meta.len as i64;
    // MAXLEN bounds the scan, so only that many elements are read.
    let scanned = if maxlen == 0 {
        len
    } else {
        len.min(maxlen as i64)
    };
    let (first, last) = if from_tail {
        (len - scanned, len - 1)
    } else {
        (0, scanned - 1)
    };
    let values = if scanned == 0 {
        Vec::new()
    } else {
        read_range(txn, &args[1], &meta, first, last).await?
    };
    let indexed: Box<dyn Iterator<Item = (i64, &Vec<u8>)> + Send + '_> = if from_tail {
        Box::new((first..=last).rev().zip(values.iter().rev()))
    } else {
        Box::new((first..=last).zip(values.iter()))
    };
    let mut matches = 0u64;
    let mut found = Vec::new();
    for (index, value) in indexed {
        if *value != args[2] {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(index);
        match count {
            None => break,
            Some(c) if c != 0 && found.len() as u64 >= c => break,
            Some(_) => {}
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Integer).collect()),
        None => found.first().map_or(Reply::Nil, |&i| Reply::Integer(i)),
    })
}

/// RPOPLPUSH / LMOVE and their blocking forms: pops from `src`, pushes to `dst`, replies with
/// the element (nil when `src` is empty).
async fn move_element(
    txn: &mut RedisTxn,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Reply, RedisError> {
    let Some(mut src_meta) = txn.meta_of(src, KeyType::List).await? else {
        return Ok(Reply::Nil);
    };
    // A destination of another type fails before anything is popped.
    txn.meta_of(dst, KeyType::List).await?;
    let Some(value) = pop(txn, src, &mut src_meta, from, 1).await?.pop() else {
        return Ok(Reply::Nil);
    };
    txn.put_meta(src, src_meta).await?;
    // Read after the pop: `src` and `dst` may be the same list.
    let mut dst_meta = txn
        .meta_of(dst, KeyType::List)
        .await?
        .unwrap_or_else(|| Meta::new(KeyType::List));
    push(txn, dst, &mut dst_meta, to, value.clone());
    txn.put_meta(dst, dst_meta).await?;
    Ok(Reply::Bulk(value))
}

/// LMPOP `numkeys key... LEFT|RIGHT [COUNT n]` (BLMPOP: the same after its timeout).
struct MultiPop {
    /// The keys are `args[keys.0..keys.1]`.
    keys: (usize, usize),
    end: End,
    count: u64,
}

impl MultiPop {
    /// Parses the arguments from `numkeys_at` on, in Redis's order of checks.
    fn parse(args: &[Vec<u8>], numkeys_at: usize) -> Result<MultiPop, RedisError> {
        let numkeys = ranged_int(&args[numkeys_at], 1, "numkeys should be greater than 0")? as u64;
        let where_at = (numkeys_at as u64 + 1).saturating_add(numkeys);
        if where_at >= args.len() as u64 {
            return Err(RedisError::syntax());
        }
        let where_at = where_at as usize;
        let end = end_arg(&args[where_at])?;
        let mut count: Option<u64> = None;
        let mut j = where_at + 1;
        while j < args.len() {
            if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
                let n = ranged_int(&args[j + 1], 1, "count should be greater than 0")?;
                count = Some(n as u64);
                j += 2;
            } else {
                return Err(RedisError::syntax());
            }
        }
        Ok(MultiPop {
            keys: (numkeys_at + 1, where_at),
            end,
            count: count.unwrap_or(1),
        })
    }

    /// Pops from the first non-empty list: `[key, [elements]]`, or a nil array.
    async fn run(&self, txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
        for key in &args[self.keys.0..self.keys.1] {
            let Some(mut meta) = txn.meta_of(key, KeyType::List).await? else {
                continue;
            };
            let values = pop(txn, key, &mut meta, self.end, self.count).await?;
            if values.is_empty() {
                continue;
            }
            txn.put_meta(key, meta).await?;
            return Ok(Reply::Array(vec![
                Reply::bulk(key.clone()),
                Reply::bulks(values),
            ]));
        }
        Ok(Reply::NilArray)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_resolve_from_either_end() {
        assert_eq!(resolve_index(0, 3), Some(0));
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(-3, 3), Some(0));
        assert_eq!(resolve_index(-4, 3), None);
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(resolve_index(i64::MIN, 3), None);
        assert_eq!(resolve_index(0, 0), None);
    }

    #[test]
    fn counts_are_checked_like_redis() {
        assert_eq!(ranged_int(b"3", 0, MUST_BE_POSITIVE), Ok(3));
        assert_eq!(
            ranged_int(b"-1", 0, MUST_BE_POSITIVE),
            Err(RedisError::err(MUST_BE_POSITIVE))
        );
        assert_eq!(
            ranged_int(b"x", 1, "count should be greater than 0"),
            Err(RedisError::err("count should be greater than 0"))
        );
        assert_eq!(end_arg(b"LeFt"), Ok(End::Left));
        assert!(end_arg(b"up").is_err());
    }
}
