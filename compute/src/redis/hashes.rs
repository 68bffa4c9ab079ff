//! Hash commands. A field is a member element of its key: sub-key the field, value the value.

use super::commands::{
    CommandSpec, KEY1, R, RF, WDF, WF, float_arg, glob_match, int_arg, is, parse_int, spec,
};
use super::keys::load_cursor;
use super::keyspace::{KIND_MEMBER, KeyType, Meta};
use super::reply::{RedisError, Reply};
use super::store::RedisTxn;
use std::hash::{BuildHasher, RandomState};

pub(super) const COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, WDF, KEY1),
    spec("hmset", -4, WDF, KEY1),
    spec("hsetnx", 4, WDF, KEY1),
    spec("hget", 3, RF, KEY1),
    spec("hmget", -3, RF, KEY1),
    spec("hdel", -3, WF, KEY1),
    spec("hgetall", 2, R, KEY1),
    spec("hkeys", 2, R, KEY1),
    spec("hvals", 2, R, KEY1),
    spec("hlen", 2, RF, KEY1),
    spec("hexists", 3, RF, KEY1),
    spec("hstrlen", 3, RF, KEY1),
    spec("hincrby", 4, WDF, KEY1),
    spec("hincrbyfloat", 4, WDF, KEY1),
    spec("hscan", -3, R, KEY1),
    spec("hrandfield", -2, R, KEY1),
];

pub(super) async fn run(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
) -> Result<Reply, RedisError> {
    let key = args[1].as_slice();
    match name {
        "hset" | "hmset" => {
            if !args.len().is_multiple_of(2) {
                return Err(RedisError::arity(name));
            }
            let mut meta = hash(txn, key)
                .await?
                .unwrap_or_else(|| Meta::new(KeyType::Hash));
            let mut added = 0;
            for pair in args[2..].chunks(2) {
                if txn.member(key, &pair[0]).await?.is_none() {
                    added += 1;
                    meta.len += 1;
                }
                txn.put_element(key, KIND_MEMBER, &pair[0], pair[1].clone());
            }
            txn.put_meta(key, meta).await?;
            Ok(if name == "hset" {
                Reply::Integer(added)
            } else {
                Reply::ok()
            })
        }
        "hsetnx" => {
            let mut meta = hash(txn, key)
                .await?
                .unwrap_or_else(|| Meta::new(KeyType::Hash));
            if txn.member(key, &args[2]).await?.is_some() {
                return Ok(Reply::Integer(0));
            }
            txn.put_element(key, KIND_MEMBER, &args[2], args[3].clone());
            meta.len += 1;
            txn.put_meta(key, meta).await?;
            Ok(Reply::Integer(1))
        }
        "hget" => {
            if hash(txn, key).await?.is_none() {
                return Ok(Reply::Nil);
            }
            Ok(Reply::opt(txn.member(key, &args[2]).await?))
        }
        "hmget" => {
            let exists = hash(txn, key).await?.is_some();
            let mut out = Vec::with_capacity(args.len() - 2);
            for f in &args[2..] {
                out.push(if exists {
                    Reply::opt(txn.member(key, f).await?)
                } else {
                    Reply::Nil
                });
            }
            Ok(Reply::Array(out))
        }
        "hdel" => {
            let Some(mut meta) = hash(txn, key).await? else {
                return Ok(Reply::Integer(0));
            };
            let mut removed = 0;
            for f in &args[2..] {
                if txn.member(key, f).await?.is_some() {
                    txn.delete_element(key, KIND_MEMBER, f);
                    removed += 1;
                    meta.len -= 1;
                }
            }
            if removed > 0 {
                txn.put_meta(key, meta).await?;
            }
            Ok(Reply::Integer(removed))
        }
        "hgetall" | "hkeys" | "hvals" => {
            if hash(txn, key).await?.is_none() {
                return Ok(if name == "hgetall" {
                    Reply::Map(vec![])
                } else {
                    Reply::Array(vec![])
                });
            }
            let fields = txn.members(key).await?;
            Ok(match name {
                "hgetall" => Reply::Map(
                    fields
                        .into_iter()
                        .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
                        .collect(),
                ),
                "hkeys" => Reply::bulks(fields.into_iter().map(|(f, _)| f)),
                _ => Reply::bulks(fields.into_iter().map(|(_, v)| v)),
            })
        }
        "hlen" => Ok(Reply::Integer(
            hash(txn, key).await?.map_or(0, |m| m.len) as i64
        )),
        "hexists" => {
            let found =
                hash(txn, key).await?.is_some() && txn.member(key, &args[2]).await?.is_some();
            Ok(Reply::Integer(found as i64))
        }
        "hstrlen" => {
            let len = match hash(txn, key).await? {
                Some(_) => txn.member(key, &args[2]).await?.map_or(0, |v| v.len()),
                None => 0,
            };
            Ok(Reply::Integer(len as i64))
        }
        "hincrby" => {
            let by = int_arg(&args[3])?;
            let mut meta = hash(txn, key)
                .await?
                .unwrap_or_else(|| Meta::new(KeyType::Hash));
            let current = match txn.member(key, &args[2]).await? {
                Some(v) => {
                    parse_int(&v).ok_or_else(|| RedisError::err("hash value is not an integer"))?
                }
                None => {
                    meta.len += 1;
                    0
                }
            };
            let next = current
                .checked_add(by)
                .ok_or_else(|| RedisError::err("increment or decrement would overflow"))?;
            txn.put_element(key, KIND_MEMBER, &args[2], next.to_string().into_bytes());
            txn.put_meta(key, meta).await?;
            Ok(Reply::Integer(next))
        }
        "hincrbyfloat" => {
            if float_arg(&args[3])?.is_infinite() {
                return Err(RedisError::err("value is NaN or Infinity"));
            }
            let mut meta = hash(txn, key)
                .await?
                .unwrap_or_else(|| Meta::new(KeyType::Hash));
            let current = txn.member(key, &args[2]).await?;
            let text = super::strings::add_float(
                current.as_deref(),
                &args[3],
                "hash value is not a float",
            )?;
            if current.is_none() {
                meta.len += 1;
            }
            txn.put_element(key, KIND_MEMBER, &args[2], text.clone());
            txn.put_meta(key, meta).await?;
            Ok(Reply::Bulk(text))
        }
        "hscan" => hscan(txn, args).await,
        "hrandfield" => hrandfield(txn, args).await,
        _ => Err(super::commands::unknown_command(args)),
    }
}

async fn hash(txn: &RedisTxn, key: &[u8]) -> Result<Option<Meta>, RedisError> {
    txn.meta_of(key, KeyType::Hash).await
}

/// HSCAN key cursor [MATCH pattern] [COUNT n] [NOVALUES]
async fn hscan(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = args[1].as_slice();
    load_cursor(&args[2])?;
    let (mut pattern, mut count, mut values) = (None, 10usize, true);
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "match") && i + 1 < args.len() {
            pattern = Some(args[i + 1].clone());
            i += 2;
        } else if is(&args[i], "count") && i + 1 < args.len() {
            let n = int_arg(&args[i + 1])?;
            if n < 1 {
                return Err(RedisError::syntax());
            }
            count = n.min(100_000) as usize;
            i += 2;
        } else if is(&args[i], "novalues") {
            values = false;
            i += 1;
        } else {
            return Err(RedisError::syntax());
        }
    }
    if hash(txn, key).await?.is_none() {
        return Ok(Reply::Array(vec![Reply::bulk("0"), Reply::Array(vec![])]));
    }
    let (next, page) = super::sets::scan_page(txn, key, &args[2], count as u64).await?;
    let mut items = Vec::new();
    for (f, v) in page {
        if pattern.as_ref().is_none_or(|p| glob_match(p, &f)) {
            items.push(Reply::Bulk(f));
            if values {
                items.push(Reply::Bulk(v));
            }
        }
    }
    Ok(Reply::Array(vec![
        Reply::bulk(next.to_string()),
        Reply::Array(items),
    ]))
}

/// HRANDFIELD key [count [WITHVALUES]]
async fn hrandfield(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = args[1].as_slice();
    let count = args
        .get(2)
        .map(|c| super::sets::random_count(c))
        .transpose()?;
    let with_values = match args.get(3) {
        None => false,
        Some(a) if is(a, "withvalues") && args.len() == 4 => true,
        Some(_) => return Err(RedisError::syntax()),
    };
    if hash(txn, key).await?.is_none() {
        return Ok(match count {
            None => Reply::Nil,
            Some(_) => Reply::Array(vec![]),
        });
    }
    let fields = txn.members(key).await?;
    let random = RandomState::new();
    let pick = |i: u64| (random.hash_one(i) % fields.len() as u64) as usize;
    let Some(count) = count else {
        return Ok(Reply::Bulk(fields[pick(0)].0.clone()));
    };
    let chosen: Vec<usize> = if count >= 0 {
        // Distinct fields: a random rotation of the whole list, cut to `count`.
        let start = pick(0);
        (0..fields.len().min(count as usize))
            .map(|i| (start + i) % fields.len())
            .collect()
    } else {
        (0..count.unsigned_abs()).map(pick).collect()
    };
    Ok(if with_values {
        Reply::Pairs(
            chosen
                .into_iter()
                .map(|i| {
                    (
                        Reply::Bulk(fields[i].0.clone()),
                        Reply::Bulk(fields[i].1.clone()),
                    )
                })
                .collect(),
        )
    } else {
        Reply::Array(
            chosen
                .into_iter()
                .map(|i| Reply::Bulk(fields[i].0.clone()))
                .collect(),
        )
    })
}
