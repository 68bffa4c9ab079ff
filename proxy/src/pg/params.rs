//! Bind parameters: the bytes a client sends, in text or binary format, to the `ScalarValue`
//! of the type the engine expects.
//!
//! Text input follows PostgreSQL's input functions (what `'…'::type` accepts), so drivers that
//! send every parameter as text (psycopg, node-postgres) behave as against PostgreSQL. Binary
//! input is decoded by the OID the parameter was declared or described with, then converted.

use std::sync::Arc;

use bytes::Buf;
use pgwire::api::results::FieldFormat;
use thunderdb_compute::ScalarValue;
use thunderdb_compute::arrow::array::{ArrayRef, GenericListArray, OffsetSizeTrait, new_empty_array};
use thunderdb_compute::arrow::buffer::OffsetBuffer;
use thunderdb_compute::arrow::compute::cast;
use thunderdb_compute::arrow::datatypes::{
    DataType, FieldRef, IntervalDayTime, IntervalMonthDayNano, IntervalUnit, TimeUnit, i256,
};

use super::text::{self, MICROS_PER_DAY};
use super::types::{array_element_oid, oid};
use crate::error::{Error, Result};

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
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Error::invalid("22021", "invalid byte sequence for encoding \"UTF8\""))?;
            from_text(text, target, ctx)
        }
        FieldFormat::Binary => {
            let bad = || Error::invalid("22P03", format!("incorrect binary data format in bind parameter {index}"));
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
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..) => {
            "numeric"
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "bytea",
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
        DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_) | DataType::Timestamp(..) => {
            "22007"
        }
        _ => "22P02",
    };
    Error::invalid(sqlstate, format!("invalid input syntax for type {}: \"{input}\"", type_name(dt)))
}

fn range_error(dt: &DataType, input: &str) -> Error {
    Error::invalid("22003", format!("value \"{input}\" is out of range for type {}", type_name(dt)))
}

fn field_overflow() -> Error {
    Error::invalid("22008", "date/time field value out of range")
}

/// Parses PostgreSQL text input for `target`.
pub(crate) fn from_text(input: &str, target: &DataType, ctx: ParamContext) -> Result<ScalarValue> {
    let s = input.trim();
    let int = |min: i128, max: i128| -> Result<i128> {
        let v: i128 = s.parse().map_err(|_| {
            if !s.is_empty() && s.trim_start_matches(['+', '-']).bytes().all(|b| b.is_ascii_digit()) {
                range_error(target, input)
            } else {
                syntax_error(target, input)
            }
        })?;
        if v < min || v > max { Err(range_error(target, input)) } else { Ok(v) }
    };
    Ok(match target {
        DataType::Boolean => ScalarValue::Boolean(Some(parse_bool(s).ok_or_else(|| syntax_error(target, input))?)),
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
            ScalarValue::Float32(Some(narrowed)).cast_to(target).map_err(|_| range_error(target, input))?
        }
        DataType::Float64 => ScalarValue::Float64(Some(parse_float(s).ok_or_else(|| syntax_error(target, input))?)),
        DataType::Decimal32(p, sc) | DataType::Decimal64(p, sc) | DataType::Decimal128(p, sc) => {
            let unscaled = parse_numeric(s, *p, *sc).map_err(|e| e.unwrap_or_else(|| syntax_error(target, input)))?;
            let v: i128 = unscaled.parse().map_err(|_| range_error(target, input))?;
            ScalarValue::Decimal128(Some(v), (*p).min(38), *sc).cast_to(target).map_err(|_| range_error(target, input))?
        }
        DataType::Decimal256(p, sc) => {
            let unscaled = parse_numeric(s, *p, *sc).map_err(|e| e.unwrap_or_else(|| syntax_error(target, input)))?;
            ScalarValue::Decimal256(Some(i256::from_string(&unscaled).ok_or_else(|| range_error(target, input))?), *p, *sc)
        }
        DataType::Utf8 => ScalarValue::Utf8(Some(input.to_owned())),
        DataType::LargeUtf8 => ScalarValue::LargeUtf8(Some(input.to_owned())),
        DataType::Utf8View => ScalarValue::Utf8View(Some(input.to_owned())),
        DataType::Null => ScalarValue::Utf8(Some(input.to_owned())),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            bytes_scalar(parse_bytea(input)?, target)?
        }
        DataType::Date32 | DataType::Date64 => {
            let days = parse_date(s).ok_or_else(|| syntax_error(target, input))?;
            date_scalar(days, target)?
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            let micros = parse_time(s).ok_or_else(|| syntax_error(target, input))?;
            time_scalar(micros, target)?
        }
        DataType::Timestamp(_, tz) => {
            let micros = parse_timestamp(s, tz.is_some(), ctx).ok_or_else(|| syntax_error(target, input))?;
            timestamp_scalar(micros, target)?
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            let (months, days, micros) = parse_interval(s).ok_or_else(|| syntax_error(target, input))?;
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
                    None => Ok(ScalarValue::try_from(field.data_type()).unwrap_or(ScalarValue::Null)),
                })
                .collect::<Result<Vec<_>>>()?;
            list_scalar(values, target)?
        }
        other => ScalarValue::try_from_string(input.to_owned(), other).map_err(|_| syntax_error(target, input))?,
    })
}

/// `boolin`: true/yes/on/1 and false/no/off/0, case-insensitive, with unique prefixes.
fn parse_bool(s: &str) -> Option<bool> {
    let lower = s.to_ascii_lowercase();
    let is_prefix = |word: &str| !lower.is_empty() && word.starts_with(lower.as_str());
    match lower.as_str() {
        "1" | "on" => Some(true),
        "0" | "of" | "off" => Some(false),
        _ if is_prefix("true") || is_prefix("yes") => Some(true),
        _ if is_prefix("false") || is_prefix("no") => Some(false),
        _ => None,
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        lower if lower.contains("inf") || lower.contains("nan") => None,
        _ => s.parse().ok(),
    }
}

/// `numeric_in` into an unscaled integer at `scale`, rounding half away from zero as
/// PostgreSQL does. `Err(None)` is a syntax error; `Err(Some(_))` an overflow of `precision`.
fn parse_numeric(s: &str, precision: u8, scale: i8) -> std::result::Result<String, Option<Error>> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().map_err(|_| None)?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(None);
    }
    let overflow = || {
        Some(Error::InvalidValue {
            sqlstate: "22003",
            message: "numeric field overflow".to_owned(),
        })
    };
    // value = digits * 10^(exponent - frac_len); unscaled = value * 10^scale.
    let mut digits = format!("{int_part}{frac_part}");
    let shift = i64::from(exponent) - frac_part.len() as i64 + i64::from(scale);
    if shift >= 0 {
        if shift > 100 && digits.bytes().any(|b| b != b'0') {
            return Err(overflow());
        }
        digits.extend(std::iter::repeat_n('0', shift.min(100) as usize));
    } else {
        let drop = (-shift) as usize;
        let round_up = if drop > digits.len() {
            false
        } else {
            digits.as_bytes()[digits.len() - drop] >= b'5'
        };
        digits.truncate(digits.len().saturating_sub(drop));
        if round_up {
            digits = increment_decimal(&digits);
        }
    }
    let digits = digits.trim_start_matches('0');
    let max_digits = usize::from(precision).max(1);
    if digits.len() > max_digits {
        return Err(overflow());
    }
    if digits.is_empty() {
        return Ok("0".to_owned());
    }
    Ok(if negative { format!("-{digits}") } else { digits.to_owned() })
}

/// Adds one to a string of decimal digits.
fn increment_decimal(digits: &str) -> String {
    let mut bytes = digits.as_bytes().to_vec();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(bytes).unwrap_or_default();
        }
    }
    let mut out = String::from("1");
    out.push_str(&String::from_utf8(bytes).unwrap_or_default());
    out
}

/// `byteain`: `\x` hex (white space allowed between pairs) or the escape format.
fn parse_bytea(s: &str) -> Result<Vec<u8>> {
    let bytes = s.as_bytes();
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if digits.len() % 2 != 0 {
            return Err(Error::invalid("22023", "invalid hexadecimal data: odd number of digits"));
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let nibble = |b: u8| (b as char).to_digit(16);
                match (nibble(pair[0]), nibble(pair[1])) {
                    (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                    _ => Err(Error::invalid("22023", "invalid hexadecimal digit")),
                }
            })
            .collect();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let Some(oct) = bytes.get(i + 1..i + 4)
            && oct[0] <= b'3'
            && oct.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push((oct[0] - b'0') * 64 + (oct[1] - b'0') * 8 + (oct[2] - b'0'));
            i += 4;
        } else {
            return Err(Error::invalid("22P02", "invalid input syntax for type bytea"));
        }
    }
    Ok(out)
}

/// Days since 1970-01-01 of `YYYY-MM-DD[ BC]` (ISO) or `MM/DD/YYYY` (DateStyle MDY); a time
/// after the date is accepted and ignored, as `date_in` does.
fn parse_date(s: &str) -> Option<i64> {
    let (date_part, rest) = s.split_once([' ', 'T']).unwrap_or((s, ""));
    let bc = rest.trim().to_ascii_uppercase().ends_with("BC");
    let fields: Vec<&str> = date_part.split(['-', '/']).collect();
    let [a, b, c] = fields.as_slice() else {
        return None;
    };
    let (year, month, day) = if date_part.contains('/') { (c, a, b) } else { (a, b, c) };
    let mut year: i32 = year.parse().ok()?;
    if bc {
        year = 1 - year;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((date - epoch).num_days())
}

/// Microseconds since midnight of `HH:MM[:SS[.ffffff]]`; a trailing zone is ignored.
fn parse_time(s: &str) -> Option<i64> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.')).unwrap_or(s.len());
    let time = &s[..end];
    let mut parts = time.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let (seconds, micros) = match parts.next() {
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Round to microseconds like time_in does.
            let mut frac_digits = format!("{frac:0<7}");
            frac_digits.truncate(7);
            let seventh: i64 = frac_digits.parse().ok()?;
            (whole.parse::<i64>().ok()?, (seventh + 5) / 10)
        }
        None => (0, 0),
    };
    if parts.next().is_some() || minutes > 59 || seconds > 60 {
        return None;
    }
    let total = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    (total <= MICROS_PER_DAY).then_some(total)
}

/// Microseconds since the Unix epoch of `date[ T]time[zone][ BC]`. Without a zone a
/// `timestamptz` is in the session time zone; a `timestamp` ignores any zone, as PostgreSQL does.
fn parse_timestamp(s: &str, with_tz: bool, ctx: ParamContext) -> Option<i64> {
    if s.eq_ignore_ascii_case("epoch") {
        return Some(0);
    }
    let (date_part, rest) = s.split_once([' ', 'T']).unwrap_or((s, ""));
    let mut rest = rest.trim();
    let bc = rest.len() >= 2 && rest.get(rest.len() - 2..).is_some_and(|t| t.eq_ignore_ascii_case("BC"));
    if bc {
        rest = rest[..rest.len() - 2].trim_end();
    }
    let days = parse_date(&format!("{date_part}{}", if bc { " BC" } else { "" }))?;
    let time_end = rest.find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.')).unwrap_or(rest.len());
    let micros_of_day = if time_end == 0 { 0 } else { parse_time(&rest[..time_end])? };
    let zone = rest[time_end..].trim();
    let offset_secs = if zone.is_empty() {
        if with_tz { ctx.utc_offset_secs } else { 0 }
    } else if !with_tz {
        0
    } else if ["z", "utc", "gmt"].iter().any(|z| zone.eq_ignore_ascii_case(z)) {
        0
    } else if zone.starts_with(['+', '-']) {
        // In a timestamp literal the offset follows ISO 8601: `+05:30` is east of UTC.
        -text::utc_offset_of_zone(&format!("UTC{zone}"))?
    } else {
        text::utc_offset_of_zone(zone)?
    };
    let local = days.checked_mul(MICROS_PER_DAY)?.checked_add(micros_of_day)?;
    local.checked_sub(i64::from(offset_secs) * 1_000_000)
}

/// `interval_in` for the PostgreSQL (`1 year 2 mons 3 days 04:05:06`, `@ 1 day ago`, bare
/// seconds) and ISO 8601 (`P1Y2M3DT4H5M6S`) forms. Fractions spill into smaller units.
pub(crate) fn parse_interval(s: &str) -> Option<(i32, i32, i64)> {
    let mut acc = IntervalAcc::default();
    if let Some(iso) = s.strip_prefix(['P', 'p']) {
        parse_iso_interval(iso, &mut acc)?;
        return acc.finish();
    }
    let body = s.trim_start_matches('@').trim();
    let (body, ago) = match body.len().checked_sub(3).and_then(|i| Some((i, body.get(i..)?))) {
        Some((i, tail)) if tail.eq_ignore_ascii_case("ago") => (body[..i].trim_end(), true),
        _ => (body, false),
    };
    let tokens: Vec<&str> = body.split_whitespace().collect();
    if tokens.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        if token.contains(':') {
            let negative = token.starts_with('-');
            let micros = parse_time(token.trim_start_matches(['+', '-'])).or_else(|| {
                // Intervals allow more than 24 hours: 100:00:00.
                let (h, rest) = token.trim_start_matches(['+', '-']).split_once(':')?;
                let h: i64 = h.parse().ok()?;
                Some(h * 3_600_000_000 + parse_time(&format!("00:{rest}"))?)
            })?;
            acc.micros += if negative { -(micros as f64) } else { micros as f64 };
            i += 1;
            continue;
        }
        // A number glued to its unit (`1day`, `10s`) or followed by one (`1 day`).
        let split = token
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
            .filter(|&p| p > 0);
        let (number, unit) = match split {
            Some(p) => (&token[..p], &token[p..]),
            None => match tokens.get(i + 1) {
                Some(next) if next.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                    i += 1;
                    (token, *next)
                }
                _ => (token, "second"),
            },
        };
        let value: f64 = number.parse().ok()?;
        acc.add(value, unit.trim_end_matches(','))?;
        i += 1;
    }
    if ago {
        acc.months = -acc.months;
        acc.days = -acc.days;
        acc.micros = -acc.micros;
    }
    acc.finish()
}

fn parse_iso_interval(iso: &str, acc: &mut IntervalAcc) -> Option<()> {
    let mut in_time = false;
    let mut number = String::new();
    for c in iso.chars() {
        match c {
            'T' | 't' => in_time = true,
            '0'..='9' | '.' | '-' | '+' | ',' => number.push(if c == ',' { '.' } else { c }),
            unit => {
                let value: f64 = number.parse().ok()?;
                number.clear();
                let unit = match (unit.to_ascii_uppercase(), in_time) {
                    ('Y', false) => "year",
                    ('M', false) => "month",
                    ('W', false) => "week",
                    ('D', false) => "day",
                    ('H', true) => "hour",
                    ('M', true) => "minute",
                    ('S', true) => "second",
                    _ => return None,
                };
                acc.add(value, unit)?;
            }
        }
    }
    number.is_empty().then_some(())
}

#[derive(Default)]
struct IntervalAcc {
    months: f64,
    days: f64,
    micros: f64,
}

impl IntervalAcc {
    fn add(&mut self, value: f64, unit: &str) -> Option<()> {
        match unit.to_ascii_lowercase().as_str() {
            "millennium" | "millennia" | "millenniums" | "mil" | "mils" => self.months += value * 12_000.0,
            "century" | "centuries" | "cent" | "c" => self.months += value * 1_200.0,
            "decade" | "decades" | "dec" | "decs" => self.months += value * 120.0,
            "year" | "years" | "yr" | "yrs" | "y" => self.months += value * 12.0,
            "month" | "months" | "mon" | "mons" => self.months += value,
            "week" | "weeks" | "w" => self.days += value * 7.0,
            "day" | "days" | "d" => self.days += value,
            "hour" | "hours" | "hr" | "hrs" | "h" => self.micros += value * 3_600_000_000.0,
            "minute" | "minutes" | "min" | "mins" | "m" => self.micros += value * 60_000_000.0,
            "second" | "seconds" | "sec" | "secs" | "s" => self.micros += value * 1_000_000.0,
            "millisecond" | "milliseconds" | "msec" | "msecs" | "ms" => self.micros += value * 1_000.0,
            "microsecond" | "microseconds" | "usec" | "usecs" | "us" => self.micros += value,
            _ => return None,
        }
        Some(())
    }

    /// Whole months and days, with fractions moved down (a month is 30 days, as in PostgreSQL).
    fn finish(self) -> Option<(i32, i32, i64)> {
        let months = self.months.trunc();
        let days = self.days + (self.months - months) * 30.0;
        let whole_days = days.trunc();
        let micros = self.micros + (days - whole_days) * MICROS_PER_DAY as f64;
        let fits = |v: f64, max: f64| v.is_finite() && v.abs() <= max;
        if !fits(months, i32::MAX as f64) || !fits(whole_days, i32::MAX as f64) || !fits(micros, 9.2e18) {
            return None;
        }
        Some((months as i32, whole_days as i32, micros.round() as i64))
    }
}

/// Elements of an array literal `{a,"b c",NULL,{1,2}}`: unquoted elements are trimmed and
/// unescaped, `NULL` is `None`, and a nested array is returned as its own literal.
fn parse_array(s: &str) -> Option<Vec<Option<String>>> {
    // A `[1:3]={...}` dimension decoration carries no information we keep.
    let s = match s.find('=') {
        Some(eq) if s.starts_with('[') => s[eq + 1..].trim(),
        _ => s,
    };
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let bytes: Vec<char> = inner.chars().collect();
    let mut elements = Vec::new();
    if inner.trim().is_empty() {
        return Some(elements);
    }
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        let mut element = String::new();
        let mut quoted = false;
        if i < bytes.len() && bytes[i] == '{' {
            let start = i;
            let mut depth = 0;
            let mut in_quotes = false;
            while i < bytes.len() {
                match bytes[i] {
                    '\\' if in_quotes => i += 1,
                    '"' => in_quotes = !in_quotes,
                    '{' if !in_quotes => depth += 1,
                    '}' if !in_quotes => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            element = bytes[start..i.min(bytes.len())].iter().collect();
            quoted = true;
        } else {
            let mut in_quotes = false;
            while i < bytes.len() {
                let c = bytes[i];
                match c {
                    '\\' => {
                        element.push(*bytes.get(i + 1)?);
                        i += 2;
                        continue;
                    }
                    '"' => {
                        in_quotes = !in_quotes;
                        quoted = true;
                    }
                    ',' if !in_quotes => break,
                    _ => element.push(c),
                }
                i += 1;
            }
            if in_quotes {
                return None;
            }
            if !quoted {
                element = element.trim().to_owned();
            }
        }
        if !quoted && element.eq_ignore_ascii_case("NULL") {
            elements.push(None);
        } else {
            elements.push(Some(element));
        }
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            return Some(elements);
        }
        if bytes[i] != ',' {
            return None;
        }
        i += 1;
    }
}

/// A decoded binary parameter, before conversion to the engine's type.
#[derive(Debug, PartialEq)]
enum Binary {
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
const PG_EPOCH_DAYS: i64 = 10_957;

/// Decodes the binary format of `wire_oid`; `None` when the bytes do not fit the format.
fn decode_binary(bytes: &[u8], wire_oid: u32) -> Option<Binary> {
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
            Binary::Text(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
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
fn numeric_recv(bytes: &[u8]) -> Option<String> {
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
        let g = usize::try_from(idx).ok().and_then(|i| groups.get(i)).copied().unwrap_or(0);
        int_part.push_str(&format!("{g:04}"));
    }
    let int_part = int_part.trim_start_matches('0');
    let mut frac = String::new();
    let mut idx = weight + 1;
    while frac.len() < dscale {
        let g = usize::try_from(idx).ok().and_then(|i| groups.get(i)).copied().unwrap_or(0);
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

/// Converts a decoded binary value to `target`, through its text form when no direct
/// conversion applies.
fn from_binary(value: Binary, target: &DataType, ctx: ParamContext) -> Result<ScalarValue> {
    let mismatch = |v: &dyn std::fmt::Debug| Error::invalid("42804", format!("cannot use {v:?} as {}", type_name(target)));
    Ok(match (value, target) {
        (Binary::Bool(b), DataType::Boolean) => ScalarValue::Boolean(Some(b)),
        (Binary::Int(v), _) if target.is_integer() => {
            let s = v.to_string();
            from_text(&s, target, ctx)?
        }
        (Binary::Int(v), DataType::Float32 | DataType::Float64) => ScalarValue::Float64(Some(v as f64))
            .cast_to(target)
            .map_err(|e| Error::invalid("22003", e.to_string()))?,
        (Binary::Float(v), DataType::Float64) => ScalarValue::Float64(Some(v)),
        (Binary::Float(v), DataType::Float32 | DataType::Float16) => ScalarValue::Float32(Some(v as f32))
            .cast_to(target)
            .map_err(|e| Error::invalid("22003", e.to_string()))?,
        (Binary::Text(s) | Binary::Numeric(s), _) => from_text(&s, target, ctx)?,
        (Binary::Bytes(b), DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_)) => {
            bytes_scalar(b, target)?
        }
        (Binary::Date(days), DataType::Date32 | DataType::Date64) => date_scalar(days, target)?,
        (Binary::Date(days), DataType::Timestamp(..)) => {
            timestamp_scalar(days.checked_mul(MICROS_PER_DAY).ok_or_else(field_overflow)?, target)?
        }
        (Binary::Time(micros), DataType::Time32(_) | DataType::Time64(_)) => time_scalar(micros, target)?,
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
                    None => Ok(ScalarValue::try_from(field.data_type()).unwrap_or(ScalarValue::Null)),
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
                Binary::Text(_) | Binary::Numeric(_) | Binary::Array(_) => return Err(mismatch(&value)),
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
                return Err(Error::invalid("22001", format!("value must be exactly {n} bytes")));
            }
            ScalarValue::FixedSizeBinary(*n, Some(bytes))
        }
        _ => ScalarValue::Binary(Some(bytes)),
    })
}

fn date_scalar(days: i64, target: &DataType) -> Result<ScalarValue> {
    Ok(match target {
        DataType::Date64 => ScalarValue::Date64(Some(days.checked_mul(86_400_000).ok_or_else(field_overflow)?)),
        _ => ScalarValue::Date32(Some(i32::try_from(days).map_err(|_| field_overflow())?)),
    })
}

fn time_scalar(micros: i64, target: &DataType) -> Result<ScalarValue> {
    Ok(match target {
        DataType::Time32(TimeUnit::Second) => ScalarValue::Time32Second(Some((micros / 1_000_000) as i32)),
        DataType::Time32(_) => ScalarValue::Time32Millisecond(Some((micros / 1_000) as i32)),
        DataType::Time64(TimeUnit::Nanosecond) => ScalarValue::Time64Nanosecond(Some(micros * 1_000)),
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
        TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(micros.div_euclid(1_000)), tz),
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(micros), tz),
        TimeUnit::Nanosecond => {
            ScalarValue::TimestampNanosecond(Some(micros.checked_mul(1_000).ok_or_else(field_overflow)?), tz)
        }
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
                TimeUnit::Nanosecond => {
                    ScalarValue::DurationNanosecond(Some(total.checked_mul(1_000).ok_or_else(overflow)?))
                }
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
        return Err(Error::invalid("42804", format!("{target} is not a list type")));
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
        DataType::LargeList(_) => ScalarValue::LargeList(Arc::new(one_row_list::<i64>(field, array)?)),
        _ => ScalarValue::List(Arc::new(one_row_list::<i32>(field, array)?)),
    })
}

fn one_row_list<O: OffsetSizeTrait>(field: &FieldRef, values: ArrayRef) -> Result<GenericListArray<O>> {
    let offsets = OffsetBuffer::<O>::from_lengths([values.len()]);
    GenericListArray::<O>::try_new(field.clone(), offsets, values, None)
        .map_err(|e| Error::invalid("XX000", e.to_string()))
}
