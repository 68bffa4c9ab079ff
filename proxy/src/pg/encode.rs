//! Arrow record batches to `DataRow` messages, each column in the text or binary format the
//! client asked for.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveTime, Utc};
use pgwire::api::Type;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use thunderdb_compute::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use thunderdb_compute::arrow::buffer::NullBuffer;
use thunderdb_compute::arrow::compute::cast;
use thunderdb_compute::arrow::datatypes::*;
use thunderdb_compute::arrow::util::display::{ArrayFormatter, FormatOptions as ArrowFormatOptions};

use super::text::{self, MICROS_PER_DAY};
use super::types::{PgColumnType, PgScalar, list_element, pg_column_type, pg_scalar};
use crate::error::{Error, Result};

/// Session settings that change how values print.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EncodeContext {
    /// Offset east of UTC of the session `TimeZone`, used for `timestamptz`.
    pub utc_offset_secs: i32,
}

/// Lazily encodes `batches` into `DataRow`s, one row per `next`, so a large result is not held
/// twice in memory. `fields` carries each column's requested format.
pub(crate) fn data_rows(
    batches: Vec<RecordBatch>,
    fields: Arc<Vec<FieldInfo>>,
    ctx: EncodeContext,
) -> impl Iterator<Item = PgWireResult<DataRow>> + Send + 'static {
    let mut encoder = RowEncoder { out: DataRowEncoder::new(fields.clone()), fields, ctx, scratch: String::new() };
    batches.into_iter().flat_map(move |batch| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> {
        match normalize_columns(&batch) {
            Ok(columns) => {
                let mut encoder = encoder.fork();
                Box::new((0..batch.num_rows()).map(move |row| {
                    encoder.encode_row(&columns, row).map_err(Error::into_pgwire)
                }))
            }
            Err(e) => Box::new(std::iter::once(Err(e.into_pgwire()))),
        }
    })
}

/// A column ready to encode: its array (dictionaries and run-end encodings decoded) and the
/// logical null mask, which unlike `Array::is_null` also covers `NullArray`.
struct Column {
    array: ArrayRef,
    nulls: Option<NullBuffer>,
    pg: PgColumnType,
}

fn normalize_columns(batch: &RecordBatch) -> Result<Vec<Column>> {
    batch
        .columns()
        .iter()
        .map(|array| {
            let decoded = match array.data_type() {
                DataType::Dictionary(_, value) => Some(value.as_ref().clone()),
                DataType::RunEndEncoded(_, values) => Some(values.data_type().clone()),
                _ => None,
            };
            let array = match decoded {
                Some(value_type) => cast(array, &value_type).map_err(|e| Error::invalid("XX000", e.to_string()))?,
                None => array.clone(),
            };
            Ok(Column { nulls: array.logical_nulls(), pg: pg_column_type(array.data_type()), array })
        })
        .collect()
}

struct RowEncoder {
    out: DataRowEncoder,
    fields: Arc<Vec<FieldInfo>>,
    ctx: EncodeContext,
    scratch: String,
}

impl RowEncoder {
    /// A fresh encoder for the next batch; the iterator of each batch owns its own.
    fn fork(&mut self) -> RowEncoder {
        RowEncoder {
            out: DataRowEncoder::new(self.fields.clone()),
            fields: self.fields.clone(),
            ctx: self.ctx,
            scratch: String::new(),
        }
    }

    fn encode_row(&mut self, columns: &[Column], row: usize) -> Result<DataRow> {
        let out = &mut self.out;
        for (i, column) in columns.iter().enumerate() {
            let format = self.fields.get(i).map(|f| f.format()).unwrap_or(FieldFormat::Text);
            if column.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                put_null(out)?;
            } else if format == FieldFormat::Binary && column.pg != PgColumnType::Display {
                write_binary(column.array.as_ref(), column.pg, row, out)?;
            } else {
                self.scratch.clear();
                write_text(column.array.as_ref(), row, self.ctx, &mut self.scratch)?;
                put_text(out, &self.scratch)?;
            }
        }
        Ok(out.take_row())
    }
}

fn put_null(out: &mut DataRowEncoder) -> Result<()> {
    out.encode_field_with_type_and_format(&None::<i32>, &Type::INT4, FieldFormat::Binary, &FormatOptions::default())
        .map_err(encode_error)
}

fn put_text(out: &mut DataRowEncoder, text: &str) -> Result<()> {
    // Plain `text` makes pgwire copy the bytes as they are (it quotes only array elements).
    out.encode_field_with_type_and_format(&text, &Type::TEXT, FieldFormat::Text, &FormatOptions::default())
        .map_err(encode_error)
}

/// Raw bytes already in PostgreSQL's binary format for the column's type.
fn put_raw(out: &mut DataRowEncoder, bytes: &[u8]) -> Result<()> {
    out.encode_field_with_type_and_format(&bytes, &Type::BYTEA, FieldFormat::Binary, &FormatOptions::default())
        .map_err(encode_error)
}

fn encode_error(e: impl std::fmt::Display) -> Error {
    Error::invalid("XX000", format!("could not encode value: {e}"))
}

/// Encodes one binary value through postgres-types' `ToSql`, as pgwire does.
macro_rules! put_binary {
    ($out:expr, $value:expr, $ty:expr) => {
        $out.encode_field_with_type_and_format(&$value, &$ty, FieldFormat::Binary, &FormatOptions::default())
            .map_err(encode_error)
    };
}

fn out_of_range(what: &str) -> Error {
    Error::invalid("22008", format!("{what} out of range"))
}

/// An integer column's value widened to i128, for the integer and numeric encodings.
fn integer_value(array: &dyn Array, row: usize) -> Option<i128> {
    Some(match array.data_type() {
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        _ => return None,
    })
}

/// A decimal or integer value as (unscaled digits, scale) for `numeric`.
fn numeric_value(array: &dyn Array, row: usize) -> Option<(String, i8)> {
    Some(match array.data_type() {
        DataType::Decimal32(_, s) => (array.as_primitive::<Decimal32Type>().value(row).to_string(), *s),
        DataType::Decimal64(_, s) => (array.as_primitive::<Decimal64Type>().value(row).to_string(), *s),
        DataType::Decimal128(_, s) => (array.as_primitive::<Decimal128Type>().value(row).to_string(), *s),
        DataType::Decimal256(_, s) => (array.as_primitive::<Decimal256Type>().value(row).to_string(), *s),
        _ => (integer_value(array, row)?.to_string(), 0),
    })
}

fn float_value(array: &dyn Array, row: usize) -> Option<f64> {
    Some(match array.data_type() {
        DataType::Float16 => array.as_primitive::<Float16Type>().value(row).to_f64(),
        DataType::Float32 => array.as_primitive::<Float32Type>().value(row).into(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row),
        _ => return None,
    })
}

fn str_value(array: &dyn Array, row: usize) -> Option<&str> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row),
        DataType::Utf8View => array.as_string_view().value(row),
        _ => return None,
    })
}

fn bytes_value(array: &dyn Array, row: usize) -> Option<&[u8]> {
    Some(match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(row),
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::BinaryView => array.as_binary_view().value(row),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(row),
        _ => return None,
    })
}

/// Days since 1970-01-01 of a date column.
fn date_value(array: &dyn Array, row: usize) -> Option<i64> {
    Some(match array.data_type() {
        DataType::Date32 => array.as_primitive::<Date32Type>().value(row).into(),
        DataType::Date64 => array.as_primitive::<Date64Type>().value(row).div_euclid(86_400_000),
        _ => return None,
    })
}

fn to_micros(value: i64, unit: &TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => value.checked_mul(1_000_000),
        TimeUnit::Millisecond => value.checked_mul(1_000),
        TimeUnit::Microsecond => Some(value),
        // PostgreSQL keeps microseconds; round down like a cast to timestamp(6) of a floor.
        TimeUnit::Nanosecond => Some(value.div_euclid(1_000)),
    }
}

/// Microseconds since midnight of a time column.
fn time_value(array: &dyn Array, row: usize) -> Option<i64> {
    match array.data_type() {
        DataType::Time32(unit) => {
            let v = match unit {
                TimeUnit::Second => array.as_primitive::<Time32SecondType>().value(row),
                _ => array.as_primitive::<Time32MillisecondType>().value(row),
            };
            to_micros(v.into(), unit)
        }
        DataType::Time64(unit) => {
            let v = match unit {
                TimeUnit::Nanosecond => array.as_primitive::<Time64NanosecondType>().value(row),
                _ => array.as_primitive::<Time64MicrosecondType>().value(row),
            };
            to_micros(v, unit)
        }
        _ => None,
    }
    .map(|us| us.rem_euclid(MICROS_PER_DAY))
}

/// Microseconds since the Unix epoch of a timestamp column.
fn timestamp_value(array: &dyn Array, row: usize) -> Option<i64> {
    let DataType::Timestamp(unit, _) = array.data_type() else {
        return None;
    };
    let v = match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
    };
    to_micros(v, unit)
}

/// (months, days, microseconds) of an interval or duration column.
fn interval_value(array: &dyn Array, row: usize) -> Option<(i32, i32, i64)> {
    Some(match array.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => {
            (array.as_primitive::<IntervalYearMonthType>().value(row), 0, 0)
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = array.as_primitive::<IntervalDayTimeType>().value(row);
            (0, v.days, i64::from(v.milliseconds) * 1_000)
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            (v.months, v.days, v.nanoseconds / 1_000)
        }
        DataType::Duration(unit) => {
            let v = match unit {
                TimeUnit::Second => array.as_primitive::<DurationSecondType>().value(row),
                TimeUnit::Millisecond => array.as_primitive::<DurationMillisecondType>().value(row),
                TimeUnit::Microsecond => array.as_primitive::<DurationMicrosecondType>().value(row),
                TimeUnit::Nanosecond => array.as_primitive::<DurationNanosecondType>().value(row),
            };
            let micros = match unit {
                TimeUnit::Nanosecond => v / 1_000,
                _ => to_micros(v, unit)?,
            };
            (0, 0, micros)
        }
        _ => return None,
    })
}

/// The row's element list of a list column.
fn list_value(array: &dyn Array, row: usize) -> Option<ArrayRef> {
    Some(match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(row),
        DataType::LargeList(_) => array.as_list::<i64>().value(row),
        DataType::ListView(_) => array.as_list_view::<i32>().value(row),
        DataType::LargeListView(_) => array.as_list_view::<i64>().value(row),
        DataType::FixedSizeList(..) => array.as_fixed_size_list().value(row),
        _ => return None,
    })
}

fn unexpected(array: &dyn Array) -> Error {
    Error::invalid("XX000", format!("cannot encode a value of type {}", array.data_type()))
}

/// Appends the PostgreSQL text form of `array[row]` (not null) to `out`.
pub(crate) fn write_text(array: &dyn Array, row: usize, ctx: EncodeContext, out: &mut String) -> Result<()> {
    use std::fmt::Write;
    let dt = array.data_type();
    if list_element(dt).is_some() {
        return write_array_text(array, row, ctx, out);
    }
    match pg_scalar(dt) {
        Some(PgScalar::Bool) => out.push(if array.as_boolean().value(row) { 't' } else { 'f' }),
        Some(PgScalar::Int2 | PgScalar::Int4 | PgScalar::Int8) => {
            let v = integer_value(array, row).ok_or_else(|| unexpected(array))?;
            let _ = write!(out, "{v}");
        }
        Some(PgScalar::Float4) => {
            let v = float_value(array, row).ok_or_else(|| unexpected(array))?;
            text::float4_out(v as f32, out);
        }
        Some(PgScalar::Float8) => {
            text::float8_out(float_value(array, row).ok_or_else(|| unexpected(array))?, out)
        }
        Some(PgScalar::Numeric) => {
            let (digits, scale) = numeric_value(array, row).ok_or_else(|| unexpected(array))?;
            text::numeric_out(&digits, scale, out);
        }
        Some(PgScalar::Text) => out.push_str(str_value(array, row).ok_or_else(|| unexpected(array))?),
        Some(PgScalar::Bytea) => text::bytea_out(bytes_value(array, row).ok_or_else(|| unexpected(array))?, out),
        Some(PgScalar::Date) => {
            let days = date_value(array, row).ok_or_else(|| unexpected(array))?;
            if !text::date_out(days, out) {
                return Err(out_of_range("date"));
            }
        }
        Some(PgScalar::Time) => text::time_out(time_value(array, row).ok_or_else(|| unexpected(array))?, out),
        Some(scalar @ (PgScalar::Timestamp | PgScalar::TimestampTz)) => {
            let micros = timestamp_value(array, row).ok_or_else(|| out_of_range("timestamp"))?;
            let offset = (scalar == PgScalar::TimestampTz).then_some(ctx.utc_offset_secs);
            if !text::timestamp_out(micros, offset, out) {
                return Err(out_of_range("timestamp"));
            }
        }
        Some(PgScalar::Interval) => {
            let (months, days, micros) = interval_value(array, row).ok_or_else(|| out_of_range("interval"))?;
            text::interval_out(months, days, micros, out);
        }
        None => {
            // No PostgreSQL type: show what Arrow shows (structs, maps, unions ...).
            let formatter = ArrayFormatter::try_new(array, &ArrowFormatOptions::default())
                .map_err(|e| Error::invalid("XX000", e.to_string()))?;
            let _ = write!(out, "{}", formatter.value(row));
        }
    }
    Ok(())
}

/// `{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a b",NULL}` as `array_out` prints them.
fn write_array_text(array: &dyn Array, row: usize, ctx: EncodeContext, out: &mut String) -> Result<()> {
    let values = list_value(array, row).ok_or_else(|| unexpected(array))?;
    let nulls = values.logical_nulls();
    let nested = list_element(values.data_type()).is_some();
    let mut element = String::new();
    out.push('{');
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            out.push_str("NULL");
        } else if nested {
            write_array_text(values.as_ref(), i, ctx, out)?;
        } else {
            element.clear();
            write_text(values.as_ref(), i, ctx, &mut element)?;
            text::array_element_out(&element, out);
        }
    }
    out.push('}');
    Ok(())
}

/// Encodes `array[row]` (not null) in PostgreSQL's binary format for the column type `pg`.
fn write_binary(array: &dyn Array, pg: PgColumnType, row: usize, out: &mut DataRowEncoder) -> Result<()> {
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

fn write_binary_scalar(array: &dyn Array, scalar: PgScalar, row: usize, out: &mut DataRowEncoder) -> Result<()> {
    let int = || integer_value(array, row).ok_or_else(|| unexpected(array));
    let narrow = |_| Error::invalid("22003", "integer out of range");
    match scalar {
        PgScalar::Bool => put_binary!(out, array.as_boolean().value(row), Type::BOOL),
        PgScalar::Int2 => put_binary!(out, i16::try_from(int()?).map_err(narrow)?, Type::INT2),
        PgScalar::Int4 => put_binary!(out, i32::try_from(int()?).map_err(narrow)?, Type::INT4),
        PgScalar::Int8 => put_binary!(out, i64::try_from(int()?).map_err(narrow)?, Type::INT8),
        PgScalar::Float4 => {
            put_binary!(out, float_value(array, row).ok_or_else(|| unexpected(array))? as f32, Type::FLOAT4)
        }
        PgScalar::Float8 => put_binary!(out, float_value(array, row).ok_or_else(|| unexpected(array))?, Type::FLOAT8),
        PgScalar::Numeric => {
            let (digits, scale) = numeric_value(array, row).ok_or_else(|| unexpected(array))?;
            put_raw(out, &numeric_send(&digits, scale))
        }
        PgScalar::Text => put_binary!(out, str_value(array, row).ok_or_else(|| unexpected(array))?, Type::TEXT),
        PgScalar::Bytea => put_binary!(out, bytes_value(array, row).ok_or_else(|| unexpected(array))?, Type::BYTEA),
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
            let ts: DateTime<Utc> = DateTime::from_timestamp_micros(micros).ok_or_else(|| out_of_range("timestamp"))?;
            if scalar == PgScalar::Timestamp {
                put_binary!(out, ts.naive_utc(), Type::TIMESTAMP)
            } else {
                put_binary!(out, ts, Type::TIMESTAMPTZ)
            }
        }
        PgScalar::Interval => {
            let (months, days, micros) = interval_value(array, row).ok_or_else(|| out_of_range("interval"))?;
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
fn write_binary_array(array: &dyn Array, scalar: PgScalar, row: usize, out: &mut BytesMut) -> Result<()> {
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
        out.put_i32(i32::try_from(*dim).map_err(|_| Error::invalid("54000", "array size exceeds the maximum allowed"))?);
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
                let inner = if is_null { None } else { list_value(values.as_ref(), i) };
                match inner {
                    Some(inner) if inner.len() == *dim => flatten(&inner, scalar, rest, out, has_nulls)?,
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
    let padded = format!("{}{}{}{}", "0".repeat(int_pad), int_part, frac_part, "0".repeat(frac_pad));
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
    buf.put_u16(if negative && !groups.is_empty() { 0x4000 } else { 0 });
    buf.put_u16(dscale as u16);
    for g in groups {
        buf.put_i16(g);
    }
    buf
}
