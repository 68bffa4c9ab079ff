//! Binary parameter formats (`*_recv`): the bytes of each type OID, decoded before
//! conversion to the engine's type.

use bytes::Buf;

use super::text::MICROS_PER_DAY;
use super::types::{array_element_oid, oid};

/// A decoded binary parameter, before conversion to the engine's type.
#[derive(Debug, PartialEq)]
pub(crate) enum Binary {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Decimal text, for numeric, so any precision survives until the target is known.
    Numeric(String),
    Text(String),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i64),
    Time(i64),
    /// Microseconds since the Unix epoch.
    Timestamp(i64),
    Interval(i32, i32, i64),
    Array(Vec<Option<Binary>>),
}

/// Days between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
pub(crate) const PG_EPOCH_DAYS: i64 = 10_957;

/// Decodes the binary format of `wire_oid`; `None` when the bytes do not fit the format.
pub(crate) fn decode_binary(bytes: &[u8], wire_oid: u32) -> Option<Binary> {
    let mut buf = bytes;
    let exact = |len: usize| (bytes.len() == len).then_some(());
    let value = match wire_oid {
        oid::BOOL => {
            exact(1)?;
            Binary::Bool(buf.get_u8() != 0)
        }
        oid::INT2 => {
            exact(2)?;
            Binary::Int(buf.get_i16().into())
        }
        oid::INT4 => {
            exact(4)?;
            Binary::Int(buf.get_i32().into())
        }
        oid::OID => {
            exact(4)?;
            Binary::Int(buf.get_u32().into())
        }
        oid::INT8 => {
            exact(8)?;
            Binary::Int(buf.get_i64())
        }
        oid::FLOAT4 => {
            exact(4)?;
            Binary::Float(buf.get_f32().into())
        }
        oid::FLOAT8 => {
            exact(8)?;
            Binary::Float(buf.get_f64())
        }
        oid::NUMERIC => Binary::Numeric(numeric_recv(bytes)?),
        oid::BYTEA => Binary::Bytes(bytes.to_vec()),
        oid::DATE => {
            exact(4)?;
            Binary::Date(i64::from(buf.get_i32()) + PG_EPOCH_DAYS)
        }
        oid::TIME => {
            exact(8)?;
            Binary::Time(buf.get_i64())
        }
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            exact(8)?;
            Binary::Timestamp(buf.get_i64().checked_add(PG_EPOCH_DAYS * MICROS_PER_DAY)?)
        }
        oid::INTERVAL => {
            exact(16)?;
            let micros = buf.get_i64();
            let days = buf.get_i32();
            Binary::Interval(buf.get_i32(), days, micros)
        }
        oid::UUID => {
            exact(16)?;
            let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            Binary::Text(format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            ))
        }
        oid::JSONB => match bytes.split_first() {
            // jsonb's binary form is a version byte (1) and the JSON text.
            Some((&1, json)) => Binary::Text(String::from_utf8(json.to_vec()).ok()?),
            _ => return None,
        },
        other => match array_element_oid(other) {
            Some(element_oid) => array_recv(bytes, element_oid)?,
            // text, varchar, name, json and unknown types send their text bytes.
            None => Binary::Text(String::from_utf8(bytes.to_vec()).ok()?),
        },
    };
    Some(value)
}

/// `numeric_recv` into decimal text (`-12.50`).
pub(crate) fn numeric_recv(bytes: &[u8]) -> Option<String> {
    let mut buf = bytes;
    if buf.len() < 8 {
        return None;
    }
    let ndigits = usize::try_from(buf.get_i16()).ok()?;
    let weight = i32::from(buf.get_i16());
    let sign = buf.get_u16();
    let dscale = usize::from(buf.get_u16());
    if buf.len() != ndigits * 2 || sign != 0 && sign != 0x4000 || dscale > 16_383 {
        return None;
    }
    let groups: Vec<i16> = (0..ndigits).map(|_| buf.get_i16()).collect();
    if groups.iter().any(|g| !(0..10_000).contains(g)) {
        return None;
    }
    // Group i holds digits worth 10000^(weight - i).
    let mut int_part = String::new();
    for w in (0..=weight.max(-1)).rev() {
        let idx = weight - w;
        let g = usize::try_from(idx)
            .ok()
            .and_then(|i| groups.get(i))
            .copied()
            .unwrap_or(0);
        int_part.push_str(&format!("{g:04}"));
    }
    let int_part = int_part.trim_start_matches('0');
    let mut frac = String::new();
    let mut idx = weight + 1;
    while frac.len() < dscale {
        let g = usize::try_from(idx)
            .ok()
            .and_then(|i| groups.get(i))
            .copied()
            .unwrap_or(0);
        frac.push_str(&format!("{g:04}"));
        idx += 1;
    }
    frac.truncate(dscale);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    out.push_str(if int_part.is_empty() { "0" } else { int_part });
    if dscale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// `array_recv` of a one-dimensional (or empty) array of `element_oid`.
fn array_recv(bytes: &[u8], element_oid: u32) -> Option<Binary> {
    let mut buf = bytes;
    if buf.len() < 12 {
        return None;
    }
    let ndim = buf.get_i32();
    let _has_nulls = buf.get_i32();
    let _element_type = buf.get_u32();
    let len = match ndim {
        0 => 0,
        1 if buf.len() >= 8 => {
            let len = usize::try_from(buf.get_i32()).ok()?;
            let _lower_bound = buf.get_i32();
            len
        }
        _ => return None,
    };
    let mut items = Vec::with_capacity(len.min(buf.len() / 4));
    for _ in 0..len {
        if buf.len() < 4 {
            return None;
        }
        let item_len = buf.get_i32();
        if item_len < 0 {
            items.push(None);
            continue;
        }
        let item_len = item_len as usize;
        if buf.len() < item_len {
            return None;
        }
        items.push(Some(decode_binary(&buf[..item_len], element_oid)?));
        buf.advance(item_len);
    }
    buf.is_empty().then_some(Binary::Array(items))
}
