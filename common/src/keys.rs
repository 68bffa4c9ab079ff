//! Memcomparable key encoding: `table id | index id | encoded key columns`.
//!
//! Byte order of encoded keys equals the order of the values they encode, column by column, so
//! the storage layer can serve range scans on plain byte ranges. NULL sorts before every value.

use crate::datum::Datum;
use crate::error::{SqlState, ThunderError};
use crate::ids::{IndexId, TableId};
use crate::types::SqlType;

const NULL_TAG: u8 = 0x00;
const VALUE_TAG: u8 = 0x01;
const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;
/// Array elements: each is `ELEMENT` and its value, or `NULL_ELEMENT`; `ARRAY_END` follows the
/// last, so a prefix of an array sorts before it and, as in PostgreSQL, a NULL element sorts
/// after every value.
const ARRAY_END: u8 = 0x01;
const ELEMENT: u8 = 0x02;
const NULL_ELEMENT: u8 = 0x03;

/// The 8-byte prefix shared by every key of one index of one table.
pub fn index_prefix(table: TableId, index: IndexId) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&table.0.to_be_bytes());
    out.extend_from_slice(&index.0.to_be_bytes());
    out
}

/// The prefix of every key (rows and indexes) of a table.
pub fn table_prefix(table: TableId) -> Vec<u8> {
    table.0.to_be_bytes().to_vec()
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when the prefix
/// is all 0xFF (then the range is unbounded above).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Table and index ids of a key.
pub fn split_prefix(key: &[u8]) -> Option<(TableId, IndexId)> {
    if key.len() < 8 {
        return None;
    }
    let t = u32::from_be_bytes(key[0..4].try_into().ok()?);
    let i = u32::from_be_bytes(key[4..8].try_into().ok()?);
    Some((TableId(t), IndexId(i)))
}

/// Appends the memcomparable encoding of `datum` to `out`.
pub fn encode_datum(out: &mut Vec<u8>, datum: &Datum) {
    match datum {
        Datum::Null => out.push(NULL_TAG),
        other => {
            out.push(VALUE_TAG);
            encode_value(out, other);
        }
    }
}

fn encode_value(out: &mut Vec<u8>, datum: &Datum) {
    match datum {
        Datum::Null => {}
        Datum::Bool(b) => out.push(*b as u8),
        Datum::Int16(v) => out.extend_from_slice(&((*v as u16) ^ 0x8000).to_be_bytes()),
        Datum::Int32(v) | Datum::Date(v) => {
            out.extend_from_slice(&((*v as u32) ^ (1 << 31)).to_be_bytes())
        }
        Datum::Int64(v) | Datum::Time(v) | Datum::Timestamp(v) | Datum::TimestampTz(v) => {
            out.extend_from_slice(&((*v as u64) ^ (1 << 63)).to_be_bytes())
        }
        Datum::Float32(f) => {
            let bits = normalize_f32(*f).to_bits();
            let key = if bits >> 31 == 1 {
                !bits
            } else {
                bits | (1 << 31)
            };
            out.extend_from_slice(&key.to_be_bytes());
        }
        Datum::Float64(f) => {
            let bits = normalize_f64(*f).to_bits();
            let key = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&key.to_be_bytes());
        }
        // The scale is fixed per column, so the unscaled integer orders like the value.
        Datum::Decimal(v, _) => out.extend_from_slice(&((*v as u128) ^ (1 << 127)).to_be_bytes()),
        Datum::Text(s) => encode_bytes(out, s.as_bytes()),
        Datum::Bytes(b) => encode_bytes(out, b),
        Datum::Interval {
            months,
            days,
            nanos,
        } => {
            out.extend_from_slice(&((*months as u32) ^ (1 << 31)).to_be_bytes());
            out.extend_from_slice(&((*days as u32) ^ (1 << 31)).to_be_bytes());
            out.extend_from_slice(&((*nanos as u64) ^ (1 << 63)).to_be_bytes());
        }
        Datum::Array(items) => {
            for item in items {
                if item.is_null() {
                    out.push(NULL_ELEMENT);
                } else {
                    out.push(ELEMENT);
                    encode_value(out, item);
                }
            }
            out.push(ARRAY_END);
        }
    }
}

// -0.0 and 0.0 compare equal in SQL and must produce one key; every NaN is one value that sorts
// above all numbers, as in PostgreSQL.
fn normalize_f32(f: f32) -> f32 {
    if f == 0.0 {
        0.0
    } else if f.is_nan() {
        f32::NAN
    } else {
        f
    }
}

fn normalize_f64(f: f64) -> f64 {
    if f == 0.0 {
        0.0
    } else if f.is_nan() {
        f64::NAN
    } else {
        f
    }
}

fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == ESCAPE {
            out.push(ESCAPE);
            out.push(ESCAPED_ZERO);
        } else {
            out.push(b);
        }
    }
    out.push(ESCAPE);
    out.push(TERMINATOR);
}

fn corrupt() -> ThunderError {
    ThunderError::new(SqlState::INTERNAL_ERROR, "corrupt key encoding")
}

/// Decodes one datum of type `ty` from the front of `input`, advancing it.
pub fn decode_datum(input: &mut &[u8], ty: &SqlType) -> Result<Datum, ThunderError> {
    let (&tag, rest) = input.split_first().ok_or_else(corrupt)?;
    *input = rest;
    if tag == NULL_TAG {
        return Ok(Datum::Null);
    }
    if tag != VALUE_TAG {
        return Err(corrupt());
    }
    decode_value(input, ty)
}

/// Decodes one value (after its tag) of type `ty` from the front of `input`, advancing it.
fn decode_value(input: &mut &[u8], ty: &SqlType) -> Result<Datum, ThunderError> {
    fn take<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], ThunderError> {
        if input.len() < N {
            return Err(corrupt());
        }
        let (head, rest) = input.split_at(N);
        *input = rest;
        head.try_into().map_err(|_| corrupt())
    }
    let datum = match ty {
        SqlType::Bool => Datum::Bool(take::<1>(input)?[0] != 0),
        SqlType::Int16 => Datum::Int16((u16::from_be_bytes(take(input)?) ^ 0x8000) as i16),
        SqlType::Int32 => Datum::Int32((u32::from_be_bytes(take(input)?) ^ (1 << 31)) as i32),
        SqlType::Date => Datum::Date((u32::from_be_bytes(take(input)?) ^ (1 << 31)) as i32),
        SqlType::Int64 | SqlType::Time | SqlType::Timestamp | SqlType::TimestampTz => {
            let v = (u64::from_be_bytes(take(input)?) ^ (1 << 63)) as i64;
            match ty {
                SqlType::Int64 => Datum::Int64(v),
                SqlType::Time => Datum::Time(v),
                SqlType::Timestamp => Datum::Timestamp(v),
                _ => Datum::TimestampTz(v),
            }
        }
        SqlType::Float32 => {
            let key = u32::from_be_bytes(take(input)?);
            let bits = if key >> 31 == 1 {
                key & !(1 << 31)
            } else {
                !key
            };
            Datum::Float32(f32::from_bits(bits))
        }
        SqlType::Float64 => {
            let key = u64::from_be_bytes(take(input)?);
            let bits = if key >> 63 == 1 {
                key & !(1 << 63)
            } else {
                !key
            };
            Datum::Float64(f64::from_bits(bits))
        }
        SqlType::Numeric { scale, .. } => Datum::Decimal(
            (u128::from_be_bytes(take(input)?) ^ (1 << 127)) as i128,
            *scale,
        ),
        SqlType::Text
        | SqlType::Varchar(_)
        | SqlType::Char(_)
        | SqlType::Json
        | SqlType::JsonText
        | SqlType::Enum { .. }
        | SqlType::Uuid => {
            let bytes = decode_bytes(input)?;
            Datum::Text(String::from_utf8(bytes).map_err(|_| corrupt())?)
        }
        SqlType::Bytea => Datum::Bytes(decode_bytes(input)?),
        SqlType::Interval => {
            let months = (u32::from_be_bytes(take(input)?) ^ (1 << 31)) as i32;
            let days = (u32::from_be_bytes(take(input)?) ^ (1 << 31)) as i32;
            let nanos = (u64::from_be_bytes(take(input)?) ^ (1 << 63)) as i64;
            Datum::Interval {
                months,
                days,
                nanos,
            }
        }
        SqlType::Array(element) => {
            let mut items = Vec::new();
            loop {
                let (&marker, rest) = input.split_first().ok_or_else(corrupt)?;
                *input = rest;
                match marker {
                    ARRAY_END => break,
                    NULL_ELEMENT => items.push(Datum::Null),
                    ELEMENT => items.push(decode_value(input, element)?),
                    _ => return Err(corrupt()),
                }
            }
            Datum::Array(items)
        }
    };
    Ok(datum)
}

fn decode_bytes(input: &mut &[u8]) -> Result<Vec<u8>, ThunderError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == ESCAPE {
            match input.get(i + 1) {
                Some(&ESCAPED_ZERO) => out.push(0),
                Some(&TERMINATOR) => {
                    *input = &input[i + 2..];
                    return Ok(out);
                }
                _ => return Err(corrupt()),
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Err(corrupt())
}

/// Encodes a full key: prefix then each datum.
pub fn encode_key(table: TableId, index: IndexId, datums: &[Datum]) -> Vec<u8> {
    let mut out = index_prefix(table, index);
    for d in datums {
        encode_datum(&mut out, d);
    }
    out
}

/// Decodes the key columns after the 8-byte prefix.
pub fn decode_key(key: &[u8], types: &[SqlType]) -> Result<Vec<Datum>, ThunderError> {
    let mut input = key.get(8..).ok_or_else(corrupt)?;
    types.iter().map(|t| decode_datum(&mut input, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(d: &Datum) -> Vec<u8> {
        let mut v = Vec::new();
        encode_datum(&mut v, d);
        v
    }

    proptest! {
        #[test]
        fn int64_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), enc(&Datum::Int64(a)).cmp(&enc(&Datum::Int64(b))));
        }

        #[test]
        fn int32_order(a: i32, b: i32) {
            prop_assert_eq!(a.cmp(&b), enc(&Datum::Int32(a)).cmp(&enc(&Datum::Int32(b))));
        }

        #[test]
        fn int16_order(a: i16, b: i16) {
            prop_assert_eq!(a.cmp(&b), enc(&Datum::Int16(a)).cmp(&enc(&Datum::Int16(b))));
        }

        #[test]
        fn float64_order(a in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::INFINITE | proptest::num::f64::SUBNORMAL,
                         b in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::INFINITE) {
            prop_assert_eq!(a.partial_cmp(&b).unwrap(), enc(&Datum::Float64(a)).cmp(&enc(&Datum::Float64(b))));
        }

        #[test]
        fn decimal_order(a: i64, b: i64) {
            let (a, b) = (a as i128 * 1000, b as i128 * 7);
            prop_assert_eq!(a.cmp(&b), enc(&Datum::Decimal(a, 2)).cmp(&enc(&Datum::Decimal(b, 2))));
        }

        #[test]
        fn text_order(a in "\\PC*", b in "\\PC*") {
            prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), enc(&Datum::Text(a.clone())).cmp(&enc(&Datum::Text(b.clone()))));
        }

        #[test]
        fn bytes_order(a: Vec<u8>, b: Vec<u8>) {
            prop_assert_eq!(a.cmp(&b), enc(&Datum::Bytes(a.clone())).cmp(&enc(&Datum::Bytes(b.clone()))));
        }

        #[test]
        fn composite_order_and_round_trip(a: (i64, Vec<u8>), b: (i64, Vec<u8>)) {
            let ka = encode_key(TableId(7), IndexId(1), &[Datum::Int64(a.0), Datum::Bytes(a.1.clone())]);
            let kb = encode_key(TableId(7), IndexId(1), &[Datum::Int64(b.0), Datum::Bytes(b.1.clone())]);
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            let types = [SqlType::Int64, SqlType::Bytea];
            prop_assert_eq!(decode_key(&ka, &types).unwrap(), vec![Datum::Int64(a.0), Datum::Bytes(a.1)]);
        }

        #[test]
        fn text_array_order_and_round_trip(a: Vec<Option<String>>, b: Vec<Option<String>>) {
            let arr = |v: &[Option<String>]| Datum::Array(v.iter().map(|s| s.clone().map_or(Datum::Null, Datum::Text)).collect());
            let ka = encode_key(TableId(7), IndexId(1), &[arr(&a), Datum::Int32(1)]);
            let kb = encode_key(TableId(7), IndexId(1), &[arr(&b), Datum::Int32(1)]);
            // Element by element, a NULL element after every value, a shorter prefix first.
            let pg = |v: &[Option<String>]| v.iter().map(|s| (s.is_none(), s.clone())).collect::<Vec<_>>();
            prop_assert_eq!(pg(&a).cmp(&pg(&b)), ka.cmp(&kb));
            let types = [SqlType::Array(Box::new(SqlType::Text)), SqlType::Int32];
            prop_assert_eq!(decode_key(&ka, &types).unwrap(), vec![arr(&a), Datum::Int32(1)]);
        }

        #[test]
        fn round_trip(i in any::<i32>(), f in proptest::num::f32::NORMAL, s in "\\PC*", t: i64, m: i32, d: i32, n: i64) {
            let datums = vec![Datum::Int32(i), Datum::Float32(f), Datum::Text(s), Datum::TimestampTz(t),
                Datum::Null, Datum::Interval { months: m, days: d, nanos: n }, Datum::Date(i), Datum::Bool(i % 2 == 0)];
            let types = [SqlType::Int32, SqlType::Float32, SqlType::Text, SqlType::TimestampTz, SqlType::Int64,
                SqlType::Interval, SqlType::Date, SqlType::Bool];
            let key = encode_key(TableId(1), IndexId(0), &datums);
            prop_assert_eq!(decode_key(&key, &types).unwrap(), datums);
        }
    }

    #[test]
    fn null_sorts_first_and_prefix_end() {
        assert!(enc(&Datum::Null) < enc(&Datum::Int64(i64::MIN)));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }
}
