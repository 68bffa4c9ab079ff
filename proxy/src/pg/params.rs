//! Bind parameters: the bytes a client sends, in text or binary format, to the `ScalarValue`
//! of the type the engine expects.
//!
//! Text input follows PostgreSQL's input functions (what `'…'::type` accepts), so drivers that
//! send every parameter as text (psycopg, node-postgres) behave as against PostgreSQL. Binary
//! input is decoded by the OID the parameter was declared or described with, then converted.

use std::sync::Arc;

use pgwire::api::results::FieldFormat;
use thunderdb_compute::ScalarValue;
use thunderdb_compute::arrow::array::{
    ArrayRef, GenericListArray, OffsetSizeTrait, new_empty_array,
};
use thunderdb_compute::arrow::buffer::OffsetBuffer;
use thunderdb_compute::arrow::compute::cast;
use thunderdb_compute::arrow::datatypes::{
    DataType, FieldRef, IntervalDayTime, IntervalMonthDayNano, IntervalUnit, TimeUnit, i256,
};

use super::input::{
    parse_bool, parse_date, parse_float, parse_interval, parse_numeric, parse_time, parse_timestamp,
};
use super::recv::{Binary, decode_binary};
use super::text::{self, MICROS_PER_DAY};
#[cfg(test)]
use super::types::oid;
use crate::error::{Error, Result};
use thunderdb_common::text_input::parse_array;

/// Session state that parameter input depends on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ParamContext {
    /// Offset east of UTC of the session `TimeZone`, for `timestamptz` text without a zone.
    pub utc_offset_secs: i32,
}

/// Decodes parameter `$index` (1-based): `value` (`None` is SQL NULL) sent in `format` with wire
/// type `wire_oid`, into a value of `target`.
pub(crate) fn decode_parameter(
    index: usize,
    value: Option<&[u8]>,
    format: FieldFormat,
    wire_oid: u32,
    target: &DataType,
    ctx: ParamContext,
) -> Result<ScalarValue> {
    let Some(bytes) = value else {
        return Ok(ScalarValue::try_from(target).unwrap_or(ScalarValue::Null));
    };
    match format {
        FieldFormat::Text => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                Error::invalid("22021", "invalid byte sequence for encoding \"UTF8\"")
            })?;
            from_text(text, target, ctx)
        }
        FieldFormat::Binary => {
            let bad = || {
                Error::invalid(
                    "22P03",
                    format!("incorrect binary data format in bind parameter {index}"),
                )
            };
            let decoded = decode_binary(bytes, wire_oid).ok_or_else(bad)?;
            from_binary(decoded, target, ctx)
        }
    }
}

fn type_name(dt: &DataType) -> &'static str {
    match dt {
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint",
        DataType::Float16 | DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "numeric",
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "bytea",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone",
        DataType::Timestamp(_, None) => "timestamp without time zone",
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone",
        DataType::Interval(_) | DataType::Duration(_) => "interval",
        _ => "text",
    }
}

fn syntax_error(dt: &DataType, input: &str) -> Error {
    let sqlstate = match dt {
        DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Timestamp(..) => "22007",
        _ => "22P02",
    };
    Error::invalid(
        sqlstate,
        format!(
            "invalid input syntax for type {}: \"{input}\"",
            type_name(dt)
        ),
    )
}

fn range_error(dt: &DataType, input: &str) -> Error {
    Error::invalid(
        "22003",
        format!(
            "value \"{input}\" is out of range for type {}",
            type_name(dt)
        ),
    )
}

fn field_overflow() -> Error {
    Error::invalid("22008", "date/time field value out of range")
}

/// Parses PostgreSQL text input for `target`.
pub(crate) fn from_text(input: &str, target: &DataType, ctx: ParamContext) -> Result<ScalarValue> {
    let s = input.trim();
    let int = |min: i128, max: i128| -> Result<i128> {
        let v: i128 = s.parse().map_err(|_| {
            if !s.is_empty()
                && s.trim_start_matches(['+', '-'])
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            {
                range_error(target, input)
            } else {
                syntax_error(target, input)
            }
        })?;
        if v < min || v > max {
            Err(range_error(target, input))
        } else {
            Ok(v)
        }
    };
    Ok(match target {
        DataType::Boolean => ScalarValue::Boolean(Some(
            parse_bool(s).ok_or_else(|| syntax_error(target, input))?,
        )),
        DataType::Int8 => ScalarValue::Int8(Some(int(i8::MIN.into(), i8::MAX.into())? as i8)),
        DataType::Int16 => ScalarValue::Int16(Some(int(i16::MIN.into(), i16::MAX.into())? as i16)),
        DataType::Int32 => ScalarValue::Int32(Some(int(i32::MIN.into(), i32::MAX.into())? as i32)),
        DataType::Int64 => ScalarValue::Int64(Some(int(i64::MIN.into(), i64::MAX.into())? as i64)),
        DataType::UInt8 => ScalarValue::UInt8(Some(int(0, u8::MAX.into())? as u8)),
        DataType::UInt16 => ScalarValue::UInt16(Some(int(0, u16::MAX.into())? as u16)),
        DataType::UInt32 => ScalarValue::UInt32(Some(int(0, u32::MAX.into())? as u32)),
        DataType::UInt64 => ScalarValue::UInt64(Some(int(0, u64::MAX.into())? as u64)),
        DataType::Float16 | DataType::Float32 => {
            let v = parse_float(s).ok_or_else(|| syntax_error(target, input))?;
            let narrowed = v as f32;
            if v.is_finite() && !narrowed.is_finite() {
                return Err(range_error(target, input));
            }
            ScalarValue::Float32(Some(narrowed))
                .cast_to(target)
                .map_err(|_| range_error(target, input))?
        }
        DataType::Float64 => ScalarValue::Float64(Some(
            parse_float(s).ok_or_else(|| syntax_error(target, input))?,
        )),
        DataType::Decimal32(p, sc) | DataType::Decimal64(p, sc) | DataType::Decimal128(p, sc) => {
            let unscaled = parse_numeric(s, *p, *sc)
                .map_err(|e| e.unwrap_or_else(|| syntax_error(target, input)))?;
            let v: i128 = unscaled.parse().map_err(|_| range_error(target, input))?;
            ScalarValue::Decimal128(Some(v), (*p).min(38), *sc)
                .cast_to(target)
                .map_err(|_| range_error(target, input))?
        }
        DataType::Decimal256(p, sc) => {
            let unscaled = parse_numeric(s, *p, *sc)
                .map_err(|e| e.unwrap_or_else(|| syntax_error(target, input)))?;
            ScalarValue::Decimal256(
                Some(i256::from_string(&unscaled).ok_or_else(|| range_error(target, input))?),
                *p,
                *sc,
            )
        }
        DataType::Utf8 => ScalarValue::Utf8(Some(input.to_owned())),
        DataType::LargeUtf8 => ScalarValue::LargeUtf8(Some(input.to_owned())),
        DataType::Utf8View => ScalarValue::Utf8View(Some(input.to_owned())),
        DataType::Null => ScalarValue::Utf8(Some(input.to_owned())),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => bytes_scalar(
            thunderdb_common::text_input::parse_bytea(input).map_err(Error::Sql)?,
            target,
        )?,
        DataType::Date32 | DataType::Date64 => {
            let days = parse_date(s).ok_or_else(|| syntax_error(target, input))?;
            date_scalar(days, target)?
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            let micros = parse_time(s).ok_or_else(|| syntax_error(target, input))?;
            time_scalar(micros, target)?
        }
        DataType::Timestamp(_, tz) => {
            let micros = parse_timestamp(s, tz.is_some(), ctx.utc_offset_secs)
                .ok_or_else(|| syntax_error(target, input))?;
            timestamp_scalar(micros, target)?
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            let (months, days, micros) =
                parse_interval(s).ok_or_else(|| syntax_error(target, input))?;
            interval_scalar(months, days, micros, target)?
        }
        DataType::List(field) | DataType::LargeList(field) => {
            let elements = parse_array(s).ok_or_else(|| {
                Error::invalid("22P02", format!("malformed array literal: \"{input}\""))
            })?;
            let values = elements
                .into_iter()
                .map(|e| match e {
                    Some(e) => from_text(&e, field.data_type(), ctx),
                    None => {
                        Ok(ScalarValue::try_from(field.data_type()).unwrap_or(ScalarValue::Null))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            list_scalar(values, target)?
        }
        other => ScalarValue::try_from_string(input.to_owned(), other)
            .map_err(|_| syntax_error(target, input))?,
    })
}

/// Converts a decoded binary value to `target`, through its text form when no direct
/// conversion applies.
fn from_binary(value: Binary, target: &DataType, ctx: ParamContext) -> Result<ScalarValue> {
    let mismatch = |v: &dyn std::fmt::Debug| {
        Error::invalid(
            "42804",
            format!("cannot use {v:?} as {}", type_name(target)),
        )
    };
    Ok(match (value, target) {
        (Binary::Bool(b), DataType::Boolean) => ScalarValue::Boolean(Some(b)),
        (Binary::Int(v), _) if target.is_integer() => {
            let s = v.to_string();
            from_text(&s, target, ctx)?
        }
        (Binary::Int(v), DataType::Float32 | DataType::Float64) => {
            ScalarValue::Float64(Some(v as f64))
                .cast_to(target)
                .map_err(|e| Error::invalid("22003", e.to_string()))?
        }
        (Binary::Float(v), DataType::Float64) => ScalarValue::Float64(Some(v)),
        (Binary::Float(v), DataType::Float32 | DataType::Float16) => {
            ScalarValue::Float32(Some(v as f32))
                .cast_to(target)
                .map_err(|e| Error::invalid("22003", e.to_string()))?
        }
        (Binary::Text(s) | Binary::Numeric(s), _) => from_text(&s, target, ctx)?,
        (
            Binary::Bytes(b),
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_),
        ) => bytes_scalar(b, target)?,
        (Binary::Date(days), DataType::Date32 | DataType::Date64) => date_scalar(days, target)?,
        (Binary::Date(days), DataType::Timestamp(..)) => timestamp_scalar(
            days.checked_mul(MICROS_PER_DAY)
                .ok_or_else(field_overflow)?,
            target,
        )?,
        (Binary::Time(micros), DataType::Time32(_) | DataType::Time64(_)) => {
            time_scalar(micros, target)?
        }
        (Binary::Timestamp(micros), DataType::Timestamp(..)) => timestamp_scalar(micros, target)?,
        (Binary::Timestamp(micros), DataType::Date32 | DataType::Date64) => {
            date_scalar(micros.div_euclid(MICROS_PER_DAY), target)?
        }
        (Binary::Interval(months, days, micros), DataType::Interval(_) | DataType::Duration(_)) => {
            interval_scalar(months, days, micros, target)?
        }
        (Binary::Array(items), DataType::List(field) | DataType::LargeList(field)) => {
            let values = items
                .into_iter()
                .map(|item| match item {
                    Some(v) => from_binary(v, field.data_type(), ctx),
                    None => {
                        Ok(ScalarValue::try_from(field.data_type()).unwrap_or(ScalarValue::Null))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            list_scalar(values, target)?
        }
        // Anything else goes through the value's text form, as an explicit cast would.
        (value, _) => {
            let mut s = String::new();
            match &value {
                Binary::Bool(b) => s.push(if *b { 't' } else { 'f' }),
                Binary::Int(v) => s.push_str(&v.to_string()),
                Binary::Float(v) => text::float8_out(*v, &mut s),
                Binary::Bytes(b) => text::bytea_out(b, &mut s),
                Binary::Date(d) => {
                    if !text::date_out(*d, &mut s) {
                        return Err(field_overflow());
                    }
                }
                Binary::Time(us) => text::time_out(*us, &mut s),
                Binary::Timestamp(us) => {
                    if !text::timestamp_out(*us, Some(0), &mut s) {
                        return Err(field_overflow());
                    }
                }
                Binary::Interval(m, d, us) => text::interval_out(*m, *d, *us, &mut s),
                Binary::Text(_) | Binary::Numeric(_) | Binary::Array(_) => {
                    return Err(mismatch(&value));
                }
            }
            from_text(&s, target, ctx)?
        }
    })
}

fn bytes_scalar(bytes: Vec<u8>, target: &DataType) -> Result<ScalarValue> {
    Ok(match target {
        DataType::LargeBinary => ScalarValue::LargeBinary(Some(bytes)),
        DataType::BinaryView => ScalarValue::BinaryView(Some(bytes)),
        DataType::FixedSizeBinary(n) => {
            if usize::try_from(*n).ok() != Some(bytes.len()) {
                return Err(Error::invalid(
                    "22001",
                    format!("value must be exactly {n} bytes"),
                ));
            }
            ScalarValue::FixedSizeBinary(*n, Some(bytes))
        }
        _ => ScalarValue::Binary(Some(bytes)),
    })
}

fn date_scalar(days: i64, target: &DataType) -> Result<ScalarValue> {
    Ok(match target {
        DataType::Date64 => ScalarValue::Date64(Some(
            days.checked_mul(86_400_000).ok_or_else(field_overflow)?,
        )),
        _ => ScalarValue::Date32(Some(i32::try_from(days).map_err(|_| field_overflow())?)),
    })
}

fn time_scalar(micros: i64, target: &DataType) -> Result<ScalarValue> {
    Ok(match target {
        DataType::Time32(TimeUnit::Second) => {
            ScalarValue::Time32Second(Some((micros / 1_000_000) as i32))
        }
        DataType::Time32(_) => ScalarValue::Time32Millisecond(Some((micros / 1_000) as i32)),
        DataType::Time64(TimeUnit::Nanosecond) => {
            ScalarValue::Time64Nanosecond(Some(micros * 1_000))
        }
        _ => ScalarValue::Time64Microsecond(Some(micros)),
    })
}

fn timestamp_scalar(micros: i64, target: &DataType) -> Result<ScalarValue> {
    let DataType::Timestamp(unit, tz) = target else {
        return Err(field_overflow());
    };
    let tz: Option<Arc<str>> = tz.clone();
    Ok(match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(Some(micros.div_euclid(1_000_000)), tz),
        TimeUnit::Millisecond => {
            ScalarValue::TimestampMillisecond(Some(micros.div_euclid(1_000)), tz)
        }
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(micros), tz),
        TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(
            Some(micros.checked_mul(1_000).ok_or_else(field_overflow)?),
            tz,
        ),
    })
}

fn interval_scalar(months: i32, days: i32, micros: i64, target: &DataType) -> Result<ScalarValue> {
    let overflow = || Error::invalid("22015", "interval out of range");
    Ok(match target {
        DataType::Interval(IntervalUnit::YearMonth) => ScalarValue::IntervalYearMonth(Some(months)),
        DataType::Interval(IntervalUnit::DayTime) => {
            let ms = i32::try_from(micros / 1_000).map_err(|_| overflow())?;
            ScalarValue::IntervalDayTime(Some(IntervalDayTime::new(days, ms)))
        }
        DataType::Duration(unit) => {
            let total = i64::from(days)
                .checked_mul(MICROS_PER_DAY)
                .and_then(|d| d.checked_add(i64::from(months) * 30 * MICROS_PER_DAY))
                .and_then(|d| d.checked_add(micros))
                .ok_or_else(overflow)?;
            match unit {
                TimeUnit::Second => ScalarValue::DurationSecond(Some(total / 1_000_000)),
                TimeUnit::Millisecond => ScalarValue::DurationMillisecond(Some(total / 1_000)),
                TimeUnit::Microsecond => ScalarValue::DurationMicrosecond(Some(total)),
                TimeUnit::Nanosecond => ScalarValue::DurationNanosecond(Some(
                    total.checked_mul(1_000).ok_or_else(overflow)?,
                )),
            }
        }
        _ => ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(
            months,
            days,
            micros.checked_mul(1_000).ok_or_else(overflow)?,
        ))),
    })
}

/// A one-row list scalar of `values` for the list type `target`.
fn list_scalar(values: Vec<ScalarValue>, target: &DataType) -> Result<ScalarValue> {
    let internal = |e: &dyn std::fmt::Display| Error::invalid("XX000", e.to_string());
    let (DataType::List(field) | DataType::LargeList(field)) = target else {
        return Err(Error::invalid(
            "42804",
            format!("{target} is not a list type"),
        ));
    };
    let element_type = field.data_type();
    let array: ArrayRef = if values.is_empty() {
        new_empty_array(element_type)
    } else {
        let array = ScalarValue::iter_to_array(values).map_err(|e| internal(&e))?;
        if array.data_type() == element_type {
            array
        } else {
            cast(&array, element_type).map_err(|e| internal(&e))?
        }
    };
    Ok(match target {
        DataType::LargeList(_) => {
            ScalarValue::LargeList(Arc::new(one_row_list::<i64>(field, array)?))
        }
        _ => ScalarValue::List(Arc::new(one_row_list::<i32>(field, array)?)),
    })
}

fn one_row_list<O: OffsetSizeTrait>(
    field: &FieldRef,
    values: ArrayRef,
) -> Result<GenericListArray<O>> {
    let offsets = OffsetBuffer::<O>::from_lengths([values.len()]);
    GenericListArray::<O>::try_new(field.clone(), offsets, values, None)
        .map_err(|e| Error::invalid("XX000", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use thunderdb_compute::arrow::array::{Array, AsArray};
    use thunderdb_compute::arrow::datatypes::Int64Type;

    const CTX: ParamContext = ParamContext { utc_offset_secs: 0 };

    fn text(s: &str, dt: &DataType) -> Result<ScalarValue> {
        decode_parameter(1, Some(s.as_bytes()), FieldFormat::Text, oid::TEXT, dt, CTX)
    }

    fn binary(bytes: &[u8], wire_oid: u32, dt: &DataType) -> Result<ScalarValue> {
        decode_parameter(1, Some(bytes), FieldFormat::Binary, wire_oid, dt, CTX)
    }

    fn err(r: Result<ScalarValue>) -> (String, String) {
        let e = r.expect_err("expected an error");
        (e.sqlstate().to_owned(), e.to_string())
    }

    #[test]
    fn integers_and_booleans() {
        assert_eq!(
            text(" 42 ", &DataType::Int32).unwrap(),
            ScalarValue::Int32(Some(42))
        );
        assert_eq!(
            text("-7", &DataType::Int16).unwrap(),
            ScalarValue::Int16(Some(-7))
        );
        assert_eq!(
            err(text("abc", &DataType::Int32)),
            (
                "22P02".into(),
                "invalid input syntax for type integer: \"abc\"".into()
            )
        );
        assert_eq!(
            err(text("99999999999", &DataType::Int32)),
            (
                "22003".into(),
                "value \"99999999999\" is out of range for type integer".into()
            )
        );
        for (input, expected) in [
            ("t", true),
            ("TRUE", true),
            ("yes", true),
            ("on", true),
            ("1", true),
            ("off", false),
            ("f", false),
            ("no", false),
        ] {
            assert_eq!(
                text(input, &DataType::Boolean).unwrap(),
                ScalarValue::Boolean(Some(expected)),
                "{input}"
            );
        }
        assert_eq!(err(text("maybe", &DataType::Boolean)).0, "22P02");
    }

    #[test]
    fn floats_and_numerics() {
        assert_eq!(
            text("1.5", &DataType::Float64).unwrap(),
            ScalarValue::Float64(Some(1.5))
        );
        assert_eq!(
            text("-Infinity", &DataType::Float64).unwrap(),
            ScalarValue::Float64(Some(f64::NEG_INFINITY))
        );
        assert!(
            matches!(text("NaN", &DataType::Float32).unwrap(), ScalarValue::Float32(Some(v)) if v.is_nan())
        );
        let numeric = DataType::Decimal128(10, 2);
        assert_eq!(
            text("5.5", &numeric).unwrap(),
            ScalarValue::Decimal128(Some(550), 10, 2)
        );
        // PostgreSQL rounds half away from zero.
        assert_eq!(
            text("1.005", &numeric).unwrap(),
            ScalarValue::Decimal128(Some(101), 10, 2)
        );
        assert_eq!(
            text("-1.005", &numeric).unwrap(),
            ScalarValue::Decimal128(Some(-101), 10, 2)
        );
        assert_eq!(
            text("1e3", &numeric).unwrap(),
            ScalarValue::Decimal128(Some(100_000), 10, 2)
        );
        assert_eq!(
            text(".5", &numeric).unwrap(),
            ScalarValue::Decimal128(Some(50), 10, 2)
        );
        assert_eq!(
            err(text("123456789", &numeric)),
            ("22003".into(), "numeric field overflow".into())
        );
        assert_eq!(err(text("1.2.3", &numeric)).0, "22P02");
    }

    #[test]
    fn bytea_and_text() {
        assert_eq!(
            text("\\x0102ff", &DataType::Binary).unwrap(),
            ScalarValue::Binary(Some(vec![1, 2, 255]))
        );
        assert_eq!(
            text("ab\\\\c\\001", &DataType::Binary).unwrap(),
            ScalarValue::Binary(Some(b"ab\\c\x01".to_vec()))
        );
        assert_eq!(
            text(" x ", &DataType::Utf8).unwrap(),
            ScalarValue::Utf8(Some(" x ".into()))
        );
        assert_eq!(err(text("\\xzz", &DataType::Binary)).0, "22023");
    }

    #[test]
    fn intervals() {
        assert_eq!(
            text(
                "1 mon 2 days",
                &DataType::Interval(IntervalUnit::MonthDayNano)
            )
            .unwrap(),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, 2, 0)))
        );
        assert_eq!(
            err(text(
                "1 fortnight",
                &DataType::Interval(IntervalUnit::MonthDayNano)
            ))
            .0,
            "22P02"
        );
    }

    #[test]
    fn dates_times_and_timestamps() {
        assert_eq!(
            text("2024-01-31", &DataType::Date32).unwrap(),
            ScalarValue::Date32(Some(19_753))
        );
        assert_eq!(
            text("01/31/2024", &DataType::Date32).unwrap(),
            ScalarValue::Date32(Some(19_753))
        );
        let micros = |h: i64, m: i64, s: i64| ((h * 60 + m) * 60 + s) * 1_000_000;
        assert_eq!(
            text("13:45:00.5", &DataType::Time64(TimeUnit::Microsecond)).unwrap(),
            ScalarValue::Time64Microsecond(Some(micros(13, 45, 0) + 500_000))
        );
        let base = 19_753 * MICROS_PER_DAY + micros(13, 45, 0);
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert_eq!(
            text("2024-01-31 13:45:00", &ts).unwrap(),
            ScalarValue::TimestampMicrosecond(Some(base), None)
        );
        assert_eq!(
            text("2024-01-31T13:45:00", &ts).unwrap(),
            ScalarValue::TimestampMicrosecond(Some(base), None)
        );
        let tstz = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(
            text("2024-01-31 19:15:00+05:30", &tstz).unwrap(),
            ScalarValue::TimestampMicrosecond(Some(base), Some("UTC".into()))
        );
        assert_eq!(
            text("2024-01-31 13:45:00Z", &tstz).unwrap(),
            ScalarValue::TimestampMicrosecond(Some(base), Some("UTC".into()))
        );
        let in_india = ParamContext {
            utc_offset_secs: 19_800,
        };
        assert_eq!(
            decode_parameter(
                1,
                Some(b"2024-01-31 19:15:00"),
                FieldFormat::Text,
                oid::TIMESTAMPTZ,
                &tstz,
                in_india
            )
            .unwrap(),
            ScalarValue::TimestampMicrosecond(Some(base), Some("UTC".into()))
        );
        assert_eq!(err(text("2024-13-01", &DataType::Date32)).0, "22007");
    }

    fn list_values(v: &ScalarValue) -> Vec<Option<i64>> {
        let ScalarValue::List(list) = v else {
            panic!("not a list: {v:?}")
        };
        list.value(0).as_primitive::<Int64Type>().iter().collect()
    }

    #[test]
    fn arrays() {
        let int8s = DataType::new_list(DataType::Int64, true);
        assert_eq!(
            list_values(&text("{1, 2,NULL}", &int8s).unwrap()),
            vec![Some(1), Some(2), None]
        );
        assert_eq!(
            list_values(&text("{}", &int8s).unwrap()),
            Vec::<Option<i64>>::new()
        );
        let texts = DataType::new_list(DataType::Utf8, true);
        let ScalarValue::List(list) = text(r#"{"a b","c\"d",NULL,"NULL"}"#, &texts).unwrap() else {
            panic!()
        };
        let values = list.value(0);
        let strings = values.as_string::<i32>();
        assert_eq!(strings.value(0), "a b");
        assert_eq!(strings.value(1), "c\"d");
        assert!(strings.is_null(2));
        assert_eq!(strings.value(3), "NULL");
        assert_eq!(err(text("{1,2", &int8s)).0, "22P02");

        // int8[] in binary: 1 dimension, has nulls, element int8, [2, 1], then 7 and NULL.
        let mut bytes = Vec::new();
        for v in [1i32, 1, 20, 2, 1] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(&8i32.to_be_bytes());
        bytes.extend_from_slice(&7i64.to_be_bytes());
        bytes.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            list_values(&binary(&bytes, oid::INT8_ARRAY, &int8s).unwrap()),
            vec![Some(7), None]
        );
    }

    #[test]
    fn binary_parameters() {
        assert_eq!(
            binary(&7i32.to_be_bytes(), oid::INT4, &DataType::Int64).unwrap(),
            ScalarValue::Int64(Some(7))
        );
        assert_eq!(
            binary(&1.5f64.to_be_bytes(), oid::FLOAT8, &DataType::Float64).unwrap(),
            ScalarValue::Float64(Some(1.5))
        );
        assert_eq!(
            binary(&[1], oid::BOOL, &DataType::Boolean).unwrap(),
            ScalarValue::Boolean(Some(true))
        );
        assert_eq!(
            binary(b"hi", oid::TEXT, &DataType::Utf8).unwrap(),
            ScalarValue::Utf8(Some("hi".into()))
        );
        let numeric = super::super::binary::numeric_send("-550", 2);
        assert_eq!(
            binary(&numeric, oid::NUMERIC, &DataType::Decimal128(10, 2)).unwrap(),
            ScalarValue::Decimal128(Some(-550), 10, 2)
        );
        let small = super::super::binary::numeric_send("5", 3);
        assert_eq!(
            super::super::recv::numeric_recv(&small).as_deref(),
            Some("0.005")
        );
        let big = super::super::binary::numeric_send("123456789012345678901234567890", 0);
        assert_eq!(
            super::super::recv::numeric_recv(&big).as_deref(),
            Some("123456789012345678901234567890")
        );
        // 2024-01-31 is 8796 days after 2000-01-01.
        assert_eq!(
            binary(&8796i32.to_be_bytes(), oid::DATE, &DataType::Date32).unwrap(),
            ScalarValue::Date32(Some(19_753))
        );
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert_eq!(
            binary(&0i64.to_be_bytes(), oid::TIMESTAMP, &ts).unwrap(),
            ScalarValue::TimestampMicrosecond(
                Some(super::super::recv::PG_EPOCH_DAYS * MICROS_PER_DAY),
                None
            )
        );
        let mut interval = Vec::new();
        interval.extend_from_slice(&1_000_000i64.to_be_bytes());
        interval.extend_from_slice(&2i32.to_be_bytes());
        interval.extend_from_slice(&3i32.to_be_bytes());
        assert_eq!(
            binary(
                &interval,
                oid::INTERVAL,
                &DataType::Interval(IntervalUnit::MonthDayNano)
            )
            .unwrap(),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(3, 2, 1_000_000_000)))
        );
        let uuid: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            binary(&uuid, oid::UUID, &DataType::Utf8).unwrap(),
            ScalarValue::Utf8(Some("00010203-0405-0607-0809-0a0b0c0d0e0f".into()))
        );
        assert_eq!(
            err(binary(&[0, 1, 2], oid::INT4, &DataType::Int32)),
            (
                "22P03".into(),
                "incorrect binary data format in bind parameter 1".into()
            )
        );
        assert_eq!(
            decode_parameter(
                1,
                None,
                FieldFormat::Binary,
                oid::INT4,
                &DataType::Int32,
                CTX
            )
            .unwrap(),
            ScalarValue::Int32(None)
        );
    }
}
