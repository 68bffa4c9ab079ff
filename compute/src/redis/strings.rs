//! String commands: GET/SET and their options, counters, ranges.

use super::commands::{
    CommandSpec, KEY1, R, RF, WD, WDF, WF, float_arg, int_arg, is, parse_float, parse_int, spec,
};
use super::keyspace::{KeyType, Meta};
use super::reply::{RedisError, Reply};
use super::store::RedisTxn;

/// Redis's limit on a string's size (`proto-max-bulk-len`), which SETRANGE and APPEND respect.
const MAX_STRING: usize = 512 * 1024 * 1024;

pub(super) const COMMANDS: &[CommandSpec] = &[
    spec("get", 2, RF, KEY1),
    spec("set", -3, WD, KEY1),
    spec("setnx", 3, WDF, KEY1),
    spec("setex", 4, WD, KEY1),
    spec("psetex", 4, WD, KEY1),
    spec("getset", 3, WDF, KEY1),
    spec("getdel", 2, WF, KEY1),
    spec("getex", -2, WF, KEY1),
    spec("mget", -2, RF, (1, -1, 1)),
    spec("mset", -3, WD, (1, -1, 2)),
    spec("msetnx", -3, WD, (1, -1, 2)),
    spec("incr", 2, WDF, KEY1),
    spec("decr", 2, WDF, KEY1),
    spec("incrby", 3, WDF, KEY1),
    spec("decrby", 3, WDF, KEY1),
    spec("incrbyfloat", 3, WDF, KEY1),
    spec("append", 3, WDF, KEY1),
    spec("strlen", 2, RF, KEY1),
    spec("getrange", 4, R, KEY1),
    spec("substr", 4, R, KEY1),
    spec("setrange", 4, WD, KEY1),
    spec("lcs", -3, R, (1, 2, 1)),
];

pub(super) async fn run(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
) -> Result<Reply, RedisError> {
    let key = args[1].as_slice();
    match name {
        "get" => Ok(Reply::opt(string(txn, key).await?)),
        "set" => set(txn, args).await,
        "setnx" => {
            if txn.meta(key).await?.is_some() {
                return Ok(Reply::Integer(0));
            }
            write(txn, key, args[2].clone(), None).await?;
            Ok(Reply::Integer(1))
        }
        "setex" | "psetex" => {
            let amount = int_arg(&args[2])?;
            let unit = if name == "setex" { 1000 } else { 1 };
            let at = expiry_at(txn.now_ms, amount, unit, name)?;
            write(txn, key, args[3].clone(), Some(at)).await?;
            Ok(Reply::ok())
        }
        "getset" => {
            let old = string(txn, key).await?;
            write(txn, key, args[2].clone(), None).await?;
            Ok(Reply::opt(old))
        }
        "getdel" => {
            let old = string(txn, key).await?;
            if old.is_some() {
                txn.delete_key(key).await?;
            }
            Ok(Reply::opt(old))
        }
        "getex" => getex(txn, args).await,
        "mget" => {
            let mut out = Vec::with_capacity(args.len() - 1);
            for k in &args[1..] {
                // MGET answers nil for keys of other types rather than failing.
                out.push(match txn.meta(k).await? {
                    Some(m) if m.key_type == KeyType::String => Reply::Bulk(m.value),
                    _ => Reply::Nil,
                });
            }
            Ok(Reply::Array(out))
        }
        "mset" | "msetnx" => {
            if args.len().is_multiple_of(2) {
                return Err(RedisError::arity(name));
            }
            if name == "msetnx" {
                for pair in args[1..].chunks(2) {
                    if txn.meta(&pair[0]).await?.is_some() {
                        return Ok(Reply::Integer(0));
                    }
                }
            }
            for pair in args[1..].chunks(2) {
                write(txn, &pair[0], pair[1].clone(), None).await?;
            }
            Ok(if name == "mset" {
                Reply::ok()
            } else {
                Reply::Integer(1)
            })
        }
        "incr" => incr_by(txn, key, 1).await,
        "decr" => incr_by(txn, key, -1).await,
        "incrby" => incr_by(txn, key, int_arg(&args[2])?).await,
        "decrby" => {
            let by = int_arg(&args[2])?;
            let by = by
                .checked_neg()
                .ok_or_else(|| RedisError::err("decrement would overflow"))?;
            incr_by(txn, key, by).await
        }
        "incrbyfloat" => {
            let meta = txn.meta_of(key, KeyType::String).await?;
            let current = meta.as_ref().map(|m| m.value.as_slice());
            let text = add_float(current, &args[2], "value is not a valid float")?;
            let keep = meta.and_then(|m| m.expire_at_ms);
            write(txn, key, text.clone(), keep).await?;
            Ok(Reply::Bulk(text))
        }
        "append" => {
            let meta = txn.meta_of(key, KeyType::String).await?;
            let keep = meta.as_ref().and_then(|m| m.expire_at_ms);
            let mut value = meta.map(|m| m.value).unwrap_or_default();
            if value.len() + args[2].len() > MAX_STRING {
                return Err(RedisError::err(
                    "string exceeds maximum allowed size (proto-max-bulk-len)",
                ));
            }
            value.extend_from_slice(&args[2]);
            let len = value.len();
            write(txn, key, value, keep).await?;
            Ok(Reply::Integer(len as i64))
        }
        "strlen" => Ok(Reply::Integer(
            string(txn, key).await?.map_or(0, |v| v.len()) as i64,
        )),
        "getrange" | "substr" => {
            let value = string(txn, key).await?.unwrap_or_default();
            let (start, end) = (int_arg(&args[2])?, int_arg(&args[3])?);
            Ok(Reply::Bulk(byte_range(&value, start, end).to_vec()))
        }
        "setrange" => {
            let offset = int_arg(&args[2])?;
            if offset < 0 {
                return Err(RedisError::err("offset is out of range"));
            }
            let offset = offset as usize;
            let meta = txn.meta_of(key, KeyType::String).await?;
            let patch = &args[3];
            if patch.is_empty() {
                return Ok(Reply::Integer(meta.map_or(0, |m| m.value.len()) as i64));
            }
            if offset + patch.len() > MAX_STRING {
                return Err(RedisError::err(
                    "string exceeds maximum allowed size (proto-max-bulk-len)",
                ));
            }
            let keep = meta.as_ref().and_then(|m| m.expire_at_ms);
            let mut value = meta.map(|m| m.value).unwrap_or_default();
            if value.len() < offset + patch.len() {
                value.resize(offset + patch.len(), 0);
            }
            value[offset..offset + patch.len()].copy_from_slice(patch);
            let len = value.len();
            write(txn, key, value, keep).await?;
            Ok(Reply::Integer(len as i64))
        }
        "lcs" => lcs(txn, args).await,
        _ => Err(super::commands::unknown_command(args)),
    }
}

/// `current + by` as INCRBYFLOAT and HINCRBYFLOAT answer it. Redis adds in long double and
/// prints 17 decimals with trailing zeros cut, so `0.1 + 0.2` is `0.3`; exact decimal
/// arithmetic gives the same digits (binary doubles would not), and doubles printed in fixed
/// notation take over beyond its 28-digit range. `not_float` is the message for a current
/// value that is not a number.
pub(super) fn add_float(
    current: Option<&[u8]>,
    by: &[u8],
    not_float: &str,
) -> Result<Vec<u8>, RedisError> {
    use rust_decimal::Decimal;
    let by_value = float_arg(by)?;
    let current_value = match current {
        Some(c) => parse_float(c).ok_or_else(|| RedisError::err(not_float))?,
        None => 0.0,
    };
    let sum = current_value + by_value;
    if !sum.is_finite() {
        return Err(RedisError::err("increment would produce NaN or Infinity"));
    }
    let decimal = |b: &[u8]| {
        let s = std::str::from_utf8(b).ok()?;
        Decimal::from_str_exact(s)
            .or_else(|_| Decimal::from_scientific(s))
            .ok()
    };
    let exact = match current {
        Some(c) => decimal(c),
        None => Some(Decimal::ZERO),
    }
    .zip(decimal(by))
    .and_then(|(a, b)| a.checked_add(b));
    if let Some(exact) = exact {
        return Ok(exact.round_dp(17).normalize().to_string().into_bytes());
    }
    let fixed = format!("{sum:.17}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    Ok(if trimmed == "-0" { "0" } else { trimmed }
        .as_bytes()
        .to_vec())
}

/// The string at `key`; WRONGTYPE for another type.
async fn string(txn: &RedisTxn, key: &[u8]) -> Result<Option<Vec<u8>>, RedisError> {
    Ok(txn.meta_of(key, KeyType::String).await?.map(|m| m.value))
}

/// Replaces whatever `key` holds with a string.
pub(super) async fn write(
    txn: &mut RedisTxn,
    key: &[u8],
    value: Vec<u8>,
    expire_at_ms: Option<i64>,
) -> Result<(), RedisError> {
    if let Some(old) = txn.meta(key).await?
        && old.key_type != KeyType::String
    {
        txn.delete_key(key).await?;
    }
    let mut meta = Meta::new(KeyType::String);
    meta.value = value;
    meta.expire_at_ms = expire_at_ms;
    txn.put_meta(key, meta).await
}

/// The absolute expiry of `amount` units (1000 for seconds, 1 for ms) from now, as Redis
/// validates it.
pub(super) fn expiry_at(
    now_ms: i64,
    amount: i64,
    unit: i64,
    command: &str,
) -> Result<i64, RedisError> {
    let invalid = || RedisError::err(format!("invalid expire time in '{command}' command"));
    if amount <= 0 {
        return Err(invalid());
    }
    amount
        .checked_mul(unit)
        .and_then(|ms| ms.checked_add(now_ms))
        .ok_or_else(invalid)
}

/// An absolute Unix time (seconds or ms) as milliseconds.
pub(super) fn absolute_at(amount: i64, unit: i64, command: &str) -> Result<i64, RedisError> {
    let invalid = || RedisError::err(format!("invalid expire time in '{command}' command"));
    if amount <= 0 {
        return Err(invalid());
    }
    amount.checked_mul(unit).ok_or_else(invalid)
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
async fn set(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = args[1].as_slice();
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expire: Option<i64> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let timed = ["ex", "px", "exat", "pxat"].into_iter().find(|w| is(a, w));
        if is(a, "nx") && !xx {
            nx = true;
        } else if is(a, "xx") && !nx {
            xx = true;
        } else if is(a, "get") {
            get = true;
        } else if is(a, "keepttl") && expire.is_none() {
            keepttl = true;
        } else if let Some(unit) = timed
            && expire.is_none()
            && !keepttl
            && i + 1 < args.len()
        {
            let amount = int_arg(&args[i + 1])?;
            expire = Some(match unit {
                "ex" => expiry_at(txn.now_ms, amount, 1000, "set")?,
                "px" => expiry_at(txn.now_ms, amount, 1, "set")?,
                "exat" => absolute_at(amount, 1000, "set")?,
                _ => absolute_at(amount, 1, "set")?,
            });
            i += 1;
        } else {
            return Err(RedisError::syntax());
        }
        i += 1;
    }
    let old = txn.meta(key).await?;
    if get && old.as_ref().is_some_and(|m| m.key_type != KeyType::String) {
        return Err(RedisError::wrong_type());
    }
    let old_value = old
        .as_ref()
        .filter(|m| m.key_type == KeyType::String)
        .map(|m| m.value.clone());
    let exists = old.is_some();
    if (nx && exists) || (xx && !exists) {
        return Ok(if get {
            Reply::opt(old_value)
        } else {
            Reply::Nil
        });
    }
    let expire = if keepttl {
        old.as_ref().and_then(|m| m.expire_at_ms)
    } else {
        expire
    };
    write(txn, key, args[2].clone(), expire).await?;
    Ok(if get {
        Reply::opt(old_value)
    } else {
        Reply::ok()
    })
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]
async fn getex(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = args[1].as_slice();
    enum Change {
        Keep,
        Persist,
        At(i64),
    }
    let change = match args.len() {
        2 => Change::Keep,
        3 if is(&args[2], "persist") => Change::Persist,
        4 => {
            let amount = int_arg(&args[3])?;
            let a = &args[2];
            Change::At(if is(a, "ex") {
                expiry_at(txn.now_ms, amount, 1000, "getex")?
            } else if is(a, "px") {
                expiry_at(txn.now_ms, amount, 1, "getex")?
            } else if is(a, "exat") {
                absolute_at(amount, 1000, "getex")?
            } else if is(a, "pxat") {
                absolute_at(amount, 1, "getex")?
            } else {
                return Err(RedisError::syntax());
            })
        }
        _ => return Err(RedisError::syntax()),
    };
    let Some(mut meta) = txn.meta_of(key, KeyType::String).await? else {
        return Ok(Reply::Nil);
    };
    let value = meta.value.clone();
    match change {
        Change::Keep => {}
        Change::Persist => {
            if meta.expire_at_ms.take().is_some() {
                txn.put_meta(key, meta).await?;
            }
        }
        Change::At(at) => {
            meta.expire_at_ms = Some(at);
            txn.put_meta(key, meta).await?;
        }
    }
    Ok(Reply::Bulk(value))
}

async fn incr_by(txn: &mut RedisTxn, key: &[u8], by: i64) -> Result<Reply, RedisError> {
    let meta = txn.meta_of(key, KeyType::String).await?;
    let current = match &meta {
        Some(m) => parse_int(&m.value).ok_or_else(RedisError::not_integer)?,
        None => 0,
    };
    let next = current
        .checked_add(by)
        .ok_or_else(|| RedisError::err("increment or decrement would overflow"))?;
    let keep = meta.and_then(|m| m.expire_at_ms);
    write(txn, key, next.to_string().into_bytes(), keep).await?;
    Ok(Reply::Integer(next))
}

/// GETRANGE's inclusive byte range with negative offsets from the end.
fn byte_range(value: &[u8], start: i64, end: i64) -> &[u8] {
    let len = value.len() as i64;
    if len == 0 {
        return &[];
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        (len + end).max(0)
    } else {
        end.min(len - 1)
    };
    if start > end || start >= len {
        return &[];
    }
    &value[start as usize..=end as usize]
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]
async fn lcs(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let a = string(txn, &args[1]).await?.unwrap_or_default();
    let b = string(txn, &args[2]).await?.unwrap_or_default();
    let (mut want_len, mut want_idx, mut with_len, mut min_len) = (false, false, false, 0i64);
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "len") {
            want_len = true;
        } else if is(&args[i], "idx") {
            want_idx = true;
        } else if is(&args[i], "withmatchlen") {
            with_len = true;
        } else if is(&args[i], "minmatchlen") && i + 1 < args.len() {
            min_len = int_arg(&args[i + 1])?.max(0);
            i += 1;
        } else {
            return Err(RedisError::syntax());
        }
        i += 1;
    }
    if want_len && want_idx {
        return Err(RedisError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    if a.len().saturating_mul(b.len()) > 64 * 1024 * 1024 {
        return Err(RedisError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    // Dynamic programming table of common suffix lengths, then walk back from the end.
    let (n, m) = (a.len(), b.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 1..=n {
        for j in 1..=m {
            table[at(i, j)] = if a[i - 1] == b[j - 1] {
                table[at(i - 1, j - 1)] + 1
            } else {
                table[at(i - 1, j)].max(table[at(i, j - 1)])
            };
        }
    }
    let total = table[at(n, m)] as i64;
    if want_len {
        return Ok(Reply::Integer(total));
    }
    let (mut i, mut j) = (n, m);
    let mut common = Vec::new();
    let mut matches: Vec<((usize, usize), (usize, usize))> = Vec::new();
    let mut current: Option<((usize, usize), (usize, usize))> = None;
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            common.push(a[i - 1]);
            let (ai, bj) = (i - 1, j - 1);
            current = match current {
                Some(((a0, a1), (b0, b1))) if a0 == ai + 1 && b0 == bj + 1 => {
                    Some(((ai, a1), (bj, b1)))
                }
                Some(done) => {
                    matches.push(done);
                    Some(((ai, ai), (bj, bj)))
                }
                None => Some(((ai, ai), (bj, bj))),
            };
            i -= 1;
            j -= 1;
        } else if table[at(i - 1, j)] >= table[at(i, j - 1)] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    if let Some(done) = current {
        matches.push(done);
    }
    common.reverse();
    if !want_idx {
        return Ok(Reply::Bulk(common));
    }
    let range = |(s, e): (usize, usize)| {
        Reply::Array(vec![Reply::Integer(s as i64), Reply::Integer(e as i64)])
    };
    let items = matches
        .into_iter()
        .filter(|((a0, a1), _)| (a1 - a0 + 1) as i64 >= min_len)
        .map(|(ra, rb)| {
            let mut item = vec![range(ra), range(rb)];
            if with_len {
                item.push(Reply::Integer((ra.1 - ra.0 + 1) as i64));
            }
            Reply::Array(item)
        })
        .collect();
    Ok(Reply::Map(vec![
        (Reply::bulk("matches"), Reply::Array(items)),
        (Reply::bulk("len"), Reply::Integer(total)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn getrange_offsets() {
        assert_eq!(byte_range(b"This is a string", 0, 3), b"This");
        assert_eq!(byte_range(b"This is a string", -3, -1), b"ing");
        assert_eq!(byte_range(b"This is a string", 0, -1), b"This is a string");
        assert_eq!(byte_range(b"This is a string", 10, 100), b"string");
        assert_eq!(byte_range(b"abc", 2, 1), b"");
        assert_eq!(byte_range(b"", 0, -1), b"");
    }
}
