//! Bitmap commands over string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP.

use super::commands::{CommandSpec, KEY1, R, RF, WD, int_arg, is, spec};
use super::keyspace::{KeyType, Meta};
use super::reply::{RedisError, Reply};
use super::store::RedisTxn;
use super::strings::write;

/// The largest bit offset: the 512 MiB string limit.
const MAX_BIT_OFFSET: i64 = 512 * 1024 * 1024 * 8 - 1;

pub(super) const COMMANDS: &[CommandSpec] = &[
    spec("setbit", 4, WD, KEY1),
    spec("getbit", 3, RF, KEY1),
    spec("bitcount", -2, R, KEY1),
    spec("bitpos", -3, R, KEY1),
    spec("bitop", -4, WD, (2, -1, 1)),
];

pub(super) async fn run(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
) -> Result<Reply, RedisError> {
    let key = args[1].as_slice();
    match name {
        "setbit" => {
            let offset = bit_offset(&args[2])?;
            let on = match args[3].as_slice() {
                b"1" => true,
                b"0" => false,
                _ => return Err(RedisError::err("bit is not an integer or out of range")),
            };
            let meta = txn.meta_of(key, KeyType::String).await?;
            let keep = meta.as_ref().and_then(|m| m.expire_at_ms);
            let mut value = meta.map(|m| m.value).unwrap_or_default();
            let byte = (offset / 8) as usize;
            if value.len() <= byte {
                value.resize(byte + 1, 0);
            }
            let mask = 0x80u8 >> (offset % 8);
            let was = value[byte] & mask != 0;
            if on {
                value[byte] |= mask;
            } else {
                value[byte] &= !mask;
            }
            write(txn, key, value, keep).await?;
            Ok(Reply::Integer(was as i64))
        }
        "getbit" => {
            let offset = bit_offset(&args[2])?;
            let value = string(txn, key).await?;
            let byte = (offset / 8) as usize;
            let bit = value
                .get(byte)
                .is_some_and(|b| b & (0x80u8 >> (offset % 8)) != 0);
            Ok(Reply::Integer(bit as i64))
        }
        "bitcount" => {
            let value = string(txn, key).await?;
            let range = match args.len() {
                2 => None,
                4 | 5 => Some(range(&value, &args[2], &args[3], args.get(4))?),
                _ => return Err(RedisError::syntax()),
            };
            let count = match range {
                None => value.iter().map(|b| b.count_ones() as i64).sum(),
                Some(None) => 0,
                Some(Some((start, end))) => {
                    (start..=end).filter(|&i| bit_at(&value, i)).count() as i64
                }
            };
            Ok(Reply::Integer(count))
        }
        "bitpos" => bitpos(txn, args).await,
        "bitop" => bitop(txn, args).await,
        _ => Err(super::commands::unknown_command(args)),
    }
}

async fn string(txn: &RedisTxn, key: &[u8]) -> Result<Vec<u8>, RedisError> {
    Ok(txn
        .meta_of(key, KeyType::String)
        .await?
        .map(|m| m.value)
        .unwrap_or_default())
}

fn bit_offset(a: &[u8]) -> Result<i64, RedisError> {
    match super::commands::parse_int(a) {
        Some(o) if (0..=MAX_BIT_OFFSET).contains(&o) => Ok(o),
        _ => Err(RedisError::err(
            "bit offset is not an integer or out of range",
        )),
    }
}

fn bit_at(value: &[u8], bit: i64) -> bool {
    value
        .get((bit / 8) as usize)
        .is_some_and(|b| b & (0x80u8 >> (bit % 8)) != 0)
}

/// A `start end [BYTE|BIT]` range as inclusive bit positions; `Ok(None)` when empty.
fn range(
    value: &[u8],
    start: &[u8],
    end: &[u8],
    unit: Option<&Vec<u8>>,
) -> Result<Option<(i64, i64)>, RedisError> {
    let bits = match unit {
        None => false,
        Some(u) if is(u, "byte") => false,
        Some(u) if is(u, "bit") => true,
        Some(_) => return Err(RedisError::syntax()),
    };
    let (start, end) = (int_arg(start)?, int_arg(end)?);
    let len = if bits {
        value.len() as i64 * 8
    } else {
        value.len() as i64
    };
    let resolve = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (resolve(start), resolve(end).min(len - 1));
    if start > end || len == 0 {
        return Ok(None);
    }
    Ok(Some(if bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    }))
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
async fn bitpos(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let want = match args[2].as_slice() {
        b"1" => true,
        b"0" => false,
        _ => return Err(RedisError::err("The bit argument must be 1 or 0.")),
    };
    if args.len() > 6 {
        return Err(RedisError::syntax());
    }
    let exists = txn.meta_of(&args[1], KeyType::String).await?.is_some();
    let value = string(txn, &args[1]).await?;
    if !exists {
        return Ok(Reply::Integer(if want { -1 } else { 0 }));
    }
    let end_given = args.len() >= 5;
    let (start, end) = match args.len() {
        3 => (0, value.len() as i64 * 8 - 1),
        4 => {
            let start = int_arg(&args[3])?;
            let len = value.len() as i64;
            let start = if start < 0 {
                (len + start).max(0)
            } else {
                start
            };
            // A start past the end finds nothing (and must not overflow `* 8`).
            if start >= len {
                return Ok(Reply::Integer(-1));
            }
            (start * 8, len * 8 - 1)
        }
        _ => match range(&value, &args[3], &args[4], args.get(5))? {
            Some(r) => r,
            None => return Ok(Reply::Integer(-1)),
        },
    };
    for i in start..=end {
        if bit_at(&value, i) == want {
            return Ok(Reply::Integer(i));
        }
    }
    // Looking for a clear bit without an explicit end: the string is as if padded with zeros.
    Ok(Reply::Integer(if !want && !end_given {
        (end + 1).max(start)
    } else {
        -1
    }))
}

/// BITOP AND|OR|XOR|NOT destkey key…
async fn bitop(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let op = String::from_utf8_lossy(&args[1]).to_lowercase();
    if !matches!(op.as_str(), "and" | "or" | "xor" | "not") {
        return Err(RedisError::syntax());
    }
    let sources = &args[3..];
    if op == "not" && sources.len() != 1 {
        return Err(RedisError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let mut values = Vec::with_capacity(sources.len());
    for k in sources {
        values.push(string(txn, k).await?);
    }
    let len = values.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = vec![0u8; len];
    for (i, byte) in out.iter_mut().enumerate() {
        let at = |v: &Vec<u8>| v.get(i).copied().unwrap_or(0);
        *byte = match op.as_str() {
            "not" => !at(&values[0]),
            "and" => values.iter().map(at).fold(0xFF, |a, b| a & b),
            "or" => values.iter().map(at).fold(0, |a, b| a | b),
            _ => values.iter().map(at).fold(0, |a, b| a ^ b),
        };
    }
    let dest = &args[2];
    if out.is_empty() {
        txn.delete_key(dest).await?;
    } else {
        let mut meta = Meta::new(KeyType::String);
        meta.value = out;
        txn.delete_key(dest).await?;
        txn.put_meta(dest, meta).await?;
    }
    Ok(Reply::Integer(len as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_in_bytes_and_bits() {
        let v = b"foobar";
        assert_eq!(range(v, b"0", b"0", None).unwrap(), Some((0, 7)));
        assert_eq!(range(v, b"1", b"1", None).unwrap(), Some((8, 15)));
        assert_eq!(
            range(v, b"5", b"30", Some(&b"bit".to_vec())).unwrap(),
            Some((5, 30))
        );
        assert_eq!(range(v, b"-1", b"-1", None).unwrap(), Some((40, 47)));
        assert_eq!(range(v, b"3", b"1", None).unwrap(), None);
        assert_eq!(range(b"", b"0", b"-1", None).unwrap(), None);
        // BITCOUNT foobar 1 1 = 6 (the 'o' byte).
        let (s, e) = range(v, b"1", b"1", None).unwrap().unwrap();
        assert_eq!((s..=e).filter(|&i| bit_at(v, i)).count(), 6);
    }
}
