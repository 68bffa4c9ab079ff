//! PostgreSQL's binary output format (`*_send`) for Arrow values: scalars through
//! postgres-types' `ToSql` as pgwire encodes them, numeric, interval and arrays by hand.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveTime, Utc};
use pgwire::api::Type;
use pgwire::api::results::{DataRowEncoder, FieldFormat};
use pgwire::types::format::FormatOptions;
use thunderdb_compute::arrow::array::{Array, ArrayRef, AsArray};

use super::encode::{encode_error, put_null, put_raw};
use super::text;
use super::types::{PgColumnType, PgScalar, list_element};
use super::values::*;
use crate::error::{Error, Result};

/// Encodes one binary value through postgres-types' `ToSql`, as pgwire does.
macro_rules! put_binary {
    ($out:expr, $value:expr, $ty:expr) => {
        $out.encode_field_with_type_and_format(
            &$value,
            &$ty,
            FieldFormat::Binary,
            &FormatOptions::default(),
        )
        .map_err(encode_error)
    };
}

/// Encodes `array[row]` (not null) in PostgreSQL's binary format for the column type `pg`.
pub(crate) fn write_binary(
    array: &dyn Array,
    pg: PgColumnType,
    row: usize,
    out: &mut DataRowEncoder,
) -> Result<()> {
    match pg {
        PgColumnType::Scalar(scalar) => write_binary_scalar(array, scalar, row, out),
        PgColumnType::Array(scalar) => {
            let mut payload = BytesMut::new();
            write_binary_array(array, scalar, row, &mut payload)?;
            put_raw(out, &payload)
        }
        PgColumnType::Display => Err(unexpected(array)),
    }
}

fn write_binary_scalar(
    array: &dyn Array,
    scalar: PgScalar,
    row: usize,
    out: &mut DataRowEncoder,
) -> Result<()> {
    let int = || integer_value(array, row).ok_or_else(|| unexpected(array));
    let narrow = |_| Error::invalid("22003", "integer out of range");
    match scalar {
        PgScalar::Bool => put_binary!(out, array.as_boolean().value(row), Type::BOOL),
        PgScalar::Int2 => put_binary!(out, i16::try_from(int()?).map_err(narrow)?, Type::INT2),
        PgScalar::Int4 => put_binary!(out, i32::try_from(int()?).map_err(narrow)?, Type::INT4),
        PgScalar::Int8 => put_binary!(out, i64::try_from(int()?).map_err(narrow)?, Type::INT8),
        PgScalar::Float4 => {
            put_binary!(
                out,
                float_value(array, row).ok_or_else(|| unexpected(array))? as f32,
                Type::FLOAT4
            )
        }
        PgScalar::Float8 => put_binary!(
            out,
            float_value(array, row).ok_or_else(|| unexpected(array))?,
            Type::FLOAT8
        ),
        PgScalar::Numeric => {
            let (digits, scale) = numeric_value(array, row).ok_or_else(|| unexpected(array))?;
            put_raw(out, &numeric_send(&digits, scale))
        }
        PgScalar::Json => put_raw(
            out,
            str_value(array, row)
                .ok_or_else(|| unexpected(array))?
                .as_bytes(),
        ),
        PgScalar::Jsonb => {
            let text = str_value(array, row).ok_or_else(|| unexpected(array))?;
            let mut payload = Vec::with_capacity(text.len() + 1);
            payload.push(1);
            payload.extend_from_slice(text.as_bytes());
            put_raw(out, &payload)
        }
        PgScalar::Uuid => {
            let text = str_value(array, row).ok_or_else(|| unexpected(array))?;
            let bytes = uuid_bytes(text).ok_or_else(|| {
                Error::invalid(
                    "22P02",
                    format!("invalid input syntax for type uuid: \"{text}\""),
                )
            })?;
            put_raw(out, &bytes)
        }
        PgScalar::Text => put_binary!(
            out,
            str_value(array, row).ok_or_else(|| unexpected(array))?,
            Type::TEXT
        ),
        PgScalar::Bytea => put_binary!(
            out,
            bytes_value(array, row).ok_or_else(|| unexpected(array))?,
            Type::BYTEA
        ),
        PgScalar::Date => {
            let days = date_value(array, row).ok_or_else(|| unexpected(array))?;
            let date = text::date_from_unix_days(days).ok_or_else(|| out_of_range("date"))?;
            put_binary!(out, date, Type::DATE)
        }
        PgScalar::Time => {
            let micros = time_value(array, row).ok_or_else(|| unexpected(array))?;
            let time = NaiveTime::from_num_seconds_from_midnight_opt(
                (micros / 1_000_000) as u32,
                (micros % 1_000_000) as u32 * 1_000,
            )
            .ok_or_else(|| out_of_range("time"))?;
            put_binary!(out, time, Type::TIME)
        }
        PgScalar::Timestamp | PgScalar::TimestampTz => {
            let micros = timestamp_value(array, row).ok_or_else(|| out_of_range("timestamp"))?;
            let ts: DateTime<Utc> =
                DateTime::from_timestamp_micros(micros).ok_or_else(|| out_of_range("timestamp"))?;
            if scalar == PgScalar::Timestamp {
                put_binary!(out, ts.naive_utc(), Type::TIMESTAMP)
            } else {
                put_binary!(out, ts, Type::TIMESTAMPTZ)
            }
        }
        PgScalar::Interval => {
            let (months, days, micros) =
                interval_value(array, row).ok_or_else(|| out_of_range("interval"))?;
            let mut buf = BytesMut::with_capacity(16);
            buf.put_i64(micros);
            buf.put_i32(days);
            buf.put_i32(months);
            put_raw(out, &buf)
        }
    }
}

/// `array_send`: dimensions, a has-nulls flag, the element OID, then every element as
/// length-prefixed binary in row-major order.
fn write_binary_array(
    array: &dyn Array,
    scalar: PgScalar,
    row: usize,
    out: &mut BytesMut,
) -> Result<()> {
    let values = list_value(array, row).ok_or_else(|| unexpected(array))?;
    // Dimensions come from the first element at each level; `flatten` checks the rest agree.
    let mut dims = vec![values.len()];
    let mut probe = values.clone();
    while list_element(probe.data_type()).is_some() && !probe.is_empty() && !probe.is_null(0) {
        let first = list_value(probe.as_ref(), 0).ok_or_else(|| unexpected(probe.as_ref()))?;
        dims.push(first.len());
        probe = first;
    }
    let mut elements = DataRowEncoder::new(Arc::new(Vec::new()));
    let mut has_nulls = false;
    flatten(&values, scalar, &dims[1..], &mut elements, &mut has_nulls)?;
    let elements = elements.take_row();

    let ndim = if values.is_empty() { 0 } else { dims.len() };
    out.put_i32(ndim as i32);
    out.put_i32(i32::from(has_nulls));
    out.put_u32(scalar.oid());
    for dim in dims.iter().take(ndim) {
        out.put_i32(
            i32::try_from(*dim)
                .map_err(|_| Error::invalid("54000", "array size exceeds the maximum allowed"))?,
        );
        out.put_i32(1);
    }
    out.put_slice(&elements.data);
    Ok(())
}

fn flatten(
    values: &ArrayRef,
    scalar: PgScalar,
    inner_dims: &[usize],
    out: &mut DataRowEncoder,
    has_nulls: &mut bool,
) -> Result<()> {
    let nulls = values.logical_nulls();
    for i in 0..values.len() {
        let is_null = nulls.as_ref().is_some_and(|n| n.is_null(i));
        match inner_dims.split_first() {
            None if is_null => {
                *has_nulls = true;
                put_null(out)?;
            }
            None => write_binary_scalar(values.as_ref(), scalar, i, out)?,
            Some((dim, rest)) => {
                let inner = if is_null {
                    None
                } else {
                    list_value(values.as_ref(), i)
                };
                match inner {
                    Some(inner) if inner.len() == *dim => {
                        flatten(&inner, scalar, rest, out, has_nulls)?
                    }
                    _ => {
                        return Err(Error::invalid(
                            "2202E",
                            "multidimensional arrays must have array expressions with matching dimensions",
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `numeric_send` of an unscaled decimal (digits with optional `-`) at `scale`: base-10000
/// digits with leading and trailing zero groups dropped, the weight of the first group, the
/// sign and the display scale.
pub(crate) fn numeric_send(unscaled: &str, scale: i8) -> BytesMut {
    let (negative, digits) = match unscaled.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, unscaled),
    };
    let mut digits = digits.to_owned();
    let dscale = if scale < 0 {
        digits.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        0
    } else {
        scale as usize
    };
    if digits.len() <= dscale {
        digits = format!("{}{}", "0".repeat(dscale + 1 - digits.len()), digits);
    }
    let (int_part, frac_part) = digits.split_at(digits.len() - dscale);
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let padded = format!(
        "{}{}{}{}",
        "0".repeat(int_pad),
        int_part,
        frac_part,
        "0".repeat(frac_pad)
    );
    let mut groups: Vec<i16> = padded
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = ((int_part.len() + int_pad) / 4) as i32 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let mut buf = BytesMut::with_capacity(8 + 2 * groups.len());
    buf.put_i16(groups.len() as i16);
    buf.put_i16(if groups.is_empty() { 0 } else { weight as i16 });
    buf.put_u16(if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    });
    buf.put_u16(dscale as u16);
    for g in groups {
        buf.put_i16(g);
    }
    buf
}

/// The 16 bytes of a uuid's text.
fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let canonical = thunderdb_common::text_input::parse_uuid(text)?;
    let hex: Vec<u8> = canonical.bytes().filter(|b| *b != b'-').collect();
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}
