//! Key-space commands: existence, deletion, renaming, expiry, iteration, FLUSHDB.

use super::DATABASES;
use super::commands::{
    ALL_KEYS, CommandSpec, KEY1, NO_KEYS, R, RF, W, WF, glob_match, int_arg, is, spec,
};
use super::keyspace::Meta;
use super::reply::{RedisError, Reply};
use super::store::RedisTxn;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;

pub(super) const COMMANDS: &[CommandSpec] = &[
    spec("del", -2, W, ALL_KEYS),
    spec("unlink", -2, WF, ALL_KEYS),
    spec("exists", -2, RF, ALL_KEYS),
    spec("touch", -2, RF, ALL_KEYS),
    spec("type", 2, RF, KEY1),
    spec("rename", 3, W, (1, 2, 1)),
    spec("renamenx", 3, WF, (1, 2, 1)),
    spec("copy", -3, W, (1, 2, 1)),
    spec("move", 3, WF, KEY1),
    spec("keys", 2, R, NO_KEYS),
    spec("scan", -2, R, NO_KEYS),
    spec("randomkey", 1, R, NO_KEYS),
    spec("dbsize", 1, RF, NO_KEYS),
    spec("flushdb", -1, W, NO_KEYS),
    spec("flushall", -1, W, NO_KEYS),
    spec("expire", -3, WF, KEY1),
    spec("pexpire", -3, WF, KEY1),
    spec("expireat", -3, WF, KEY1),
    spec("pexpireat", -3, WF, KEY1),
    spec("ttl", 2, RF, KEY1),
    spec("pttl", 2, RF, KEY1),
    spec("expiretime", 2, RF, KEY1),
    spec("pexpiretime", 2, RF, KEY1),
    spec("persist", 2, WF, KEY1),
    spec("object", -2, R, (2, 2, 1)),
    spec("memory", -2, R, NO_KEYS),
];

pub(super) async fn run(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
) -> Result<Reply, RedisError> {
    match name {
        "del" | "unlink" => {
            let mut n = 0;
            for k in &args[1..] {
                if txn.delete_key(k).await? {
                    n += 1;
                }
            }
            Ok(Reply::Integer(n))
        }
        "exists" | "touch" => {
            let mut n = 0;
            for k in &args[1..] {
                if txn.meta(k).await?.is_some() {
                    n += 1;
                }
            }
            Ok(Reply::Integer(n))
        }
        "type" => Ok(Reply::Simple(
            txn.meta(&args[1])
                .await?
                .map_or("none", |m| m.key_type.name())
                .into(),
        )),
        "rename" | "renamenx" => {
            let (src, dst) = (&args[1], &args[2]);
            let Some(meta) = txn.meta(src).await? else {
                return Err(RedisError::err("no such key"));
            };
            if src == dst {
                return Ok(if name == "rename" {
                    Reply::ok()
                } else {
                    Reply::Integer(0)
                });
            }
            if name == "renamenx" && txn.meta(dst).await?.is_some() {
                return Ok(Reply::Integer(0));
            }
            let db = txn.db;
            copy_key(txn, db, src, meta, db, dst).await?;
            txn.delete_key(src).await?;
            Ok(if name == "rename" {
                Reply::ok()
            } else {
                Reply::Integer(1)
            })
        }
        "copy" => {
            let (src, dst) = (&args[1], &args[2]);
            let (mut db, mut replace) = (txn.db, false);
            let mut i = 3;
            while i < args.len() {
                if is(&args[i], "replace") {
                    replace = true;
                } else if is(&args[i], "db") && i + 1 < args.len() {
                    db = db_index(&args[i + 1])?;
                    i += 1;
                } else {
                    return Err(RedisError::syntax());
                }
                i += 1;
            }
            let Some(meta) = txn.meta(src).await? else {
                return Ok(Reply::Integer(0));
            };
            if db == txn.db && src == dst {
                return Err(RedisError::err(
                    "source and destination objects are the same",
                ));
            }
            if txn.meta_in(db, dst).await?.is_some() && !replace {
                return Ok(Reply::Integer(0));
            }
            let from = txn.db;
            copy_key(txn, from, src, meta, db, dst).await?;
            Ok(Reply::Integer(1))
        }
        "move" => {
            let key = &args[1];
            let db = db_index(&args[2])?;
            if db == txn.db {
                return Err(RedisError::err(
                    "source and destination objects are the same",
                ));
            }
            let Some(meta) = txn.meta(key).await? else {
                return Ok(Reply::Integer(0));
            };
            if txn.meta_in(db, key).await?.is_some() {
                return Ok(Reply::Integer(0));
            }
            let from = txn.db;
            copy_key(txn, from, key, meta, db, key).await?;
            txn.delete_key(key).await?;
            Ok(Reply::Integer(1))
        }
        "keys" => {
            let pattern = &args[1];
            let keys = txn.keys(Some(txn.db), None, None).await?;
            Ok(Reply::bulks(
                keys.into_iter()
                    .filter(|(_, k, _)| glob_match(pattern, k))
                    .map(|(_, k, _)| k),
            ))
        }
        "scan" => scan(txn, args).await,
        "randomkey" => {
            // Uniform over the database's keys: exactly, up to this many keys; beyond, the key
            // after a random point of the key space.
            const EXACT: usize = 10_000;
            let keys = txn.keys(Some(txn.db), None, Some(EXACT + 1)).await?;
            let pick = if keys.len() <= EXACT {
                match keys.len() {
                    0 => None,
                    n => keys.into_iter().nth(rand::random::<u64>() as usize % n),
                }
            } else {
                let probe: [u8; 8] = rand::random();
                match txn
                    .keys(Some(txn.db), Some(&probe), Some(1))
                    .await?
                    .into_iter()
                    .next()
                {
                    Some(k) => Some(k),
                    None => keys.into_iter().next(),
                }
            };
            Ok(Reply::opt(pick.map(|(_, k, _)| k)))
        }
        "dbsize" => Ok(Reply::Integer(
            txn.keys(Some(txn.db), None, None).await?.len() as i64,
        )),
        "flushdb" | "flushall" => {
            if args.len() > 2
                || args
                    .get(1)
                    .is_some_and(|a| !is(a, "sync") && !is(a, "async"))
            {
                return Err(RedisError::syntax());
            }
            let scope = (name == "flushdb").then_some(txn.db);
            for (db, key, _) in txn.keys(scope, None, None).await? {
                txn.delete_key_in(db, &key).await?;
            }
            Ok(Reply::ok())
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => expire(txn, name, args).await,
        "ttl" | "pttl" | "expiretime" | "pexpiretime" => {
            let Some(meta) = txn.meta(&args[1]).await? else {
                return Ok(Reply::Integer(-2));
            };
            let Some(at) = meta.expire_at_ms else {
                return Ok(Reply::Integer(-1));
            };
            let left = (at - txn.now_ms).max(0);
            Ok(Reply::Integer(match name {
                "ttl" => (left + 500) / 1000,
                "pttl" => left,
                "expiretime" => at / 1000,
                _ => at,
            }))
        }
        "persist" => {
            let Some(mut meta) = txn.meta(&args[1]).await? else {
                return Ok(Reply::Integer(0));
            };
            if meta.expire_at_ms.take().is_none() {
                return Ok(Reply::Integer(0));
            }
            txn.put_meta(&args[1], meta).await?;
            Ok(Reply::Integer(1))
        }
        "object" => object(txn, args).await,
        "memory" => memory(txn, args).await,
        _ => Err(super::commands::unknown_command(args)),
    }
}

/// OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ key. ThunderDB stores every value one way;
/// ENCODING names the encoding Redis 7.0 would pick for the value with its default limits, for
/// tools that read it. Access times are not tracked, so IDLETIME is 0.
async fn object(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    if sub == "help" {
        return Ok(Reply::bulks(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "FREQ <key>",
                "IDLETIME <key>",
                "REFCOUNT <key>",
            ]
            .map(|l| l.as_bytes().to_vec()),
        ));
    }
    if args.len() != 3 {
        return Err(RedisError::err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try OBJECT HELP."
        )));
    }
    let key = &args[2];
    let Some(meta) = txn.meta(key).await? else {
        return Ok(Reply::Nil);
    };
    match sub.as_str() {
        "encoding" => Ok(Reply::bulk(encoding(txn, key, &meta).await?)),
        "refcount" => Ok(Reply::Integer(1)),
        "idletime" => Ok(Reply::Integer(0)),
        "freq" => Err(RedisError::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        )),
        _ => Err(RedisError::err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try OBJECT HELP."
        ))),
    }
}

/// MEMORY USAGE key [SAMPLES n]: the bytes the key takes in storage (its metadata record and
/// every element's key and value).
async fn memory(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let samples_ok = match args.len() {
        3 => true,
        5 => is(&args[3], "samples") && int_arg(&args[4]).is_ok_and(|n| n >= 0),
        _ => false,
    };
    if sub != "usage" || !samples_ok {
        return Err(RedisError::err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try MEMORY HELP."
        )));
    }
    let key = &args[2];
    let Some(meta) = txn.meta(key).await? else {
        return Ok(Reply::Nil);
    };
    let db = txn.db;
    let elements = txn.all_elements_in(db, key).await?;
    let meta_bytes = super::keyspace::meta_key(db, key).len() + meta.encode().len();
    let element_bytes: usize = elements
        .iter()
        .map(|(_, sub, value)| {
            super::keyspace::key_elements_prefix(db, key).len() + 1 + sub.len() + value.len()
        })
        .sum();
    Ok(Reply::Integer((meta_bytes + element_bytes) as i64))
}

async fn encoding(txn: &RedisTxn, key: &[u8], meta: &Meta) -> Result<&'static str, RedisError> {
    use super::keyspace::KeyType;
    let small = |limit: usize, items: &[(Vec<u8>, Vec<u8>)], value_limit: Option<usize>| {
        items.len() <= limit
            && items
                .iter()
                .all(|(m, v)| m.len() <= 64 && value_limit.is_none_or(|l| v.len() <= l))
    };
    Ok(match meta.key_type {
        KeyType::String => {
            if meta.value.len() <= 20 && super::commands::parse_int(&meta.value).is_some() {
                "int"
            } else if meta.value.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        KeyType::List => "quicklist",
        KeyType::Hash => {
            if meta.len <= 128 && small(128, &txn.members(key).await?, Some(64)) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        KeyType::Set => {
            let members = if meta.len <= 512 {
                txn.members(key).await?
            } else {
                Vec::new()
            };
            if meta.len <= 512
                && members
                    .iter()
                    .all(|(m, _)| super::commands::parse_int(m).is_some())
            {
                "intset"
            } else {
                "hashtable"
            }
        }
        KeyType::ZSet => {
            if meta.len <= 128 && small(128, &txn.members(key).await?, None) {
                "listpack"
            } else {
                "skiplist"
            }
        }
    })
}

/// A `SELECT`-style database index argument.
pub fn db_index(a: &[u8]) -> Result<u8, RedisError> {
    let n = int_arg(a)?;
    u8::try_from(n)
        .ok()
        .filter(|n| *n < DATABASES)
        .ok_or_else(|| RedisError::err("DB index is out of range"))
}

/// Writes a copy of `src` (with metadata `meta`) as `dst`, replacing what `dst` held.
async fn copy_key(
    txn: &mut RedisTxn,
    src_db: u8,
    src: &[u8],
    meta: Meta,
    dst_db: u8,
    dst: &[u8],
) -> Result<(), RedisError> {
    let elements = txn.all_elements_in(src_db, src).await?;
    txn.delete_key_in(dst_db, dst).await?;
    for (kind, sub, value) in elements {
        txn.put_element_in(dst_db, dst, kind, &sub, value);
    }
    txn.put_meta_in(dst_db, dst, meta).await
}

/// EXPIRE key amount [NX|XX|GT|LT] and its millisecond / absolute forms.
async fn expire(txn: &mut RedisTxn, name: &str, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = &args[1];
    let amount = int_arg(&args[2])?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else {
            return Err(RedisError::err(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(a)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(RedisError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(RedisError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    // A time at or before now deletes the key; past-due arithmetic must not overflow.
    let at = match name {
        "expire" => amount
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(txn.now_ms)),
        "pexpire" => amount.checked_add(txn.now_ms),
        "expireat" => amount.checked_mul(1000),
        _ => Some(amount),
    }
    .ok_or_else(|| RedisError::err(format!("invalid expire time in '{name}' command")))?;
    let Some(mut meta) = txn.meta(key).await? else {
        return Ok(Reply::Integer(0));
    };
    let current = meta.expire_at_ms;
    // A key without expiry counts as an infinite TTL for GT and LT.
    let allowed = !(nx && current.is_some()
        || xx && current.is_none()
        || gt && current.is_none_or(|c| at <= c)
        || lt && current.is_some_and(|c| at >= c));
    if !allowed {
        return Ok(Reply::Integer(0));
    }
    if at <= txn.now_ms {
        txn.delete_key(key).await?;
    } else {
        meta.expire_at_ms = Some(at);
        txn.put_meta(key, meta).await?;
    }
    Ok(Reply::Integer(1))
}

/// Where each SCAN cursor handed out stopped: cursors are opaque integers to clients, and
/// keys here are ordered bytes, so the position is kept server-side (bounded, oldest dropped;
/// an unknown cursor starts over).
static CURSORS: LazyLock<Mutex<Cursors>> = LazyLock::new(Default::default);
const MAX_CURSORS: usize = 65_536;

/// Saved positions, the oldest dropped first when full.
#[derive(Default)]
struct Cursors {
    positions: HashMap<u64, Vec<u8>>,
    order: std::collections::VecDeque<u64>,
    next: u64,
}

/// Saves a position and returns the cursor naming it.
pub(super) fn save_cursor(position: Vec<u8>) -> u64 {
    let mut cursors = CURSORS.lock();
    while cursors.positions.len() >= MAX_CURSORS {
        match cursors.order.pop_front() {
            Some(old) => {
                cursors.positions.remove(&old);
            }
            None => break,
        }
    }
    let state = RandomState::new();
    loop {
        cursors.next = cursors.next.wrapping_add(1);
        // Positive and below 2^53, so clients that hold cursors as doubles keep them exact.
        let id = state.hash_one((&position, cursors.next)) & ((1 << 53) - 1);
        if id != 0 && !cursors.positions.contains_key(&id) {
            cursors.positions.insert(id, position);
            cursors.order.push_back(id);
            return id;
        }
    }
}

/// The position a cursor names; `None` for 0 (the start) or an unknown cursor.
pub(super) fn load_cursor(cursor: &[u8]) -> Result<Option<Vec<u8>>, RedisError> {
    let id: u64 = std::str::from_utf8(cursor)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RedisError::err("invalid cursor"))?;
    Ok(if id == 0 {
        None
    } else {
        CURSORS.lock().positions.get(&id).cloned()
    })
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]
async fn scan(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let after = load_cursor(&args[1])?;
    let (mut pattern, mut count, mut type_filter) = (None, 10usize, None);
    let mut i = 2;
    while i + 1 < args.len() {
        if is(&args[i], "match") {
            pattern = Some(args[i + 1].clone());
        } else if is(&args[i], "count") {
            let n = int_arg(&args[i + 1])?;
            if n < 1 {
                return Err(RedisError::syntax());
            }
            count = n.min(100_000) as usize;
        } else if is(&args[i], "type") {
            type_filter = Some(String::from_utf8_lossy(&args[i + 1]).to_lowercase());
        } else {
            return Err(RedisError::syntax());
        }
        i += 2;
    }
    if i != args.len() {
        return Err(RedisError::syntax());
    }
    let page = txn
        .keys(Some(txn.db), after.as_deref(), Some(count))
        .await?;
    let next = if page.len() < count {
        0
    } else {
        page.last().map_or(0, |(_, k, _)| save_cursor(k.clone()))
    };
    let keys = page
        .into_iter()
        .filter(|(_, k, m)| {
            pattern.as_ref().is_none_or(|p| glob_match(p, k))
                && type_filter.as_ref().is_none_or(|t| t == m.key_type.name())
        })
        .map(|(_, k, _)| k);
    Ok(Reply::Array(vec![
        Reply::bulk(next.to_string()),
        Reply::bulks(keys),
    ]))
}
