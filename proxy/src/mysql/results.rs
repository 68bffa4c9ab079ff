//! Result sets in MySQL's text protocol (COM_QUERY) and binary protocol (COM_STMT_EXECUTE):
//! column definitions from an Arrow schema, and each row's values.

use super::packet::{put_lenenc_bytes, put_lenenc_int};
use crate::error::Error;
use crate::pg::text;
use crate::pg::types::{PgScalar, pg_scalar};
use crate::pg::values::{
    bytes_value, date_value, float_value, integer_value, interval_value, numeric_value, str_value,
    time_value, timestamp_value, unexpected,
};
use chrono::{Datelike, NaiveDate, Timelike};
use thunderdb_compute::arrow::array::{Array, ArrayRef, RecordBatch};
use thunderdb_compute::arrow::compute::cast;
use thunderdb_compute::arrow::datatypes::{DataType, Field};
use thunderdb_compute::arrow::util::display::{ArrayFormatter, FormatOptions};

/// MySQL column types (`enum_field_types`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ColumnType {
    Tiny = 1,
    Short = 2,
    Long = 3,
    Float = 4,
    Double = 5,
    Null = 6,
    Timestamp = 7,
    LongLong = 8,
    Date = 10,
    Time = 11,
    DateTime = 12,
    Year = 13,
    VarChar = 15,
    Json = 245,
    NewDecimal = 246,
    Blob = 252,
    VarString = 253,
    String = 254,
}

impl ColumnType {
    pub fn from_u8(b: u8) -> Option<ColumnType> {
        use ColumnType::*;
        Some(match b {
            0 | 246 => NewDecimal,
            1 => Tiny,
            2 => Short,
            3 | 9 => Long,
            4 => Float,
            5 => Double,
            6 => Null,
            7 => Timestamp,
            8 => LongLong,
            10 => Date,
            11 => Time,
            12 => DateTime,
            13 => Year,
            15 => VarChar,
            245 => Json,
            249..=252 => Blob,
            253 => VarString,
            254 => String,
            _ => return None,
        })
    }
}

/// Column flags.
pub const NOT_NULL_FLAG: u16 = 1;
pub const BLOB_FLAG: u16 = 16;
pub const UNSIGNED_FLAG: u16 = 32;
pub const BINARY_FLAG: u16 = 128;
pub const NUM_FLAG: u16 = 32768;

/// `utf8mb4_general_ci` and `binary` collations.
const UTF8MB4: u16 = 45;
const BINARY: u16 = 63;

/// How one column is described to the client.
#[derive(Clone, Debug)]
pub struct ColumnDef {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub column_type: ColumnType,
    pub flags: u16,
    pub length: u32,
    pub decimals: u8,
    pub charset: u16,
}

impl ColumnDef {
    /// The MySQL description of an Arrow result column.
    pub fn of_field(field: &Field) -> ColumnDef {
        let (column_type, length, decimals, mut flags) = mysql_type(field.data_type());
        if !field.is_nullable() {
            flags |= NOT_NULL_FLAG;
        }
        // Numbers, like binary strings and temporal values, have the binary collation.
        if flags & NUM_FLAG != 0 {
            flags |= BINARY_FLAG;
        }
        let binary = flags & BINARY_FLAG != 0;
        ColumnDef {
            schema: String::new(),
            table: String::new(),
            name: field.name().clone(),
            column_type,
            flags,
            length,
            decimals,
            charset: if binary { BINARY } else { UTF8MB4 },
        }
    }

    /// A parameter placeholder of a prepared statement.
    pub fn param() -> ColumnDef {
        ColumnDef {
            schema: String::new(),
            table: String::new(),
            name: "?".into(),
            column_type: ColumnType::VarString,
            flags: BINARY_FLAG,
            length: 0,
            decimals: 0,
            charset: BINARY,
        }
    }

    /// The Protocol::ColumnDefinition41 packet; `default` for COM_FIELD_LIST (`Some(None)`:
    /// the column's default is NULL).
    pub fn encode(&self, default: Option<Option<&[u8]>>) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + self.name.len());
        put_lenenc_bytes(&mut p, b"def");
        put_lenenc_bytes(&mut p, self.schema.as_bytes());
        put_lenenc_bytes(&mut p, self.table.as_bytes());
        put_lenenc_bytes(&mut p, self.table.as_bytes());
        put_lenenc_bytes(&mut p, self.name.as_bytes());
        put_lenenc_bytes(&mut p, self.name.as_bytes());
        p.push(0x0C);
        p.extend_from_slice(&self.charset.to_le_bytes());
        p.extend_from_slice(&self.length.to_le_bytes());
        p.push(self.column_type as u8);
        p.extend_from_slice(&self.flags.to_le_bytes());
        p.push(self.decimals);
        p.extend_from_slice(&[0, 0]);
        match default {
            Some(Some(d)) => put_lenenc_bytes(&mut p, d),
            Some(None) => p.push(0xFB),
            None => {}
        }
        p
    }
}

/// (type, display length, decimals, flags) for an Arrow type.
fn mysql_type(dt: &DataType) -> (ColumnType, u32, u8, u16) {
    use ColumnType::*;
    const NOT_FIXED_DEC: u8 = 31;
    match dt {
        DataType::Boolean => (Tiny, 1, 0, NUM_FLAG),
        DataType::Int8 => (Tiny, 4, 0, NUM_FLAG),
        DataType::UInt8 => (Tiny, 3, 0, NUM_FLAG | UNSIGNED_FLAG),
        DataType::Int16 => (Short, 6, 0, NUM_FLAG),
        DataType::UInt16 => (Short, 5, 0, NUM_FLAG | UNSIGNED_FLAG),
        DataType::Int32 => (Long, 11, 0, NUM_FLAG),
        DataType::UInt32 => (Long, 10, 0, NUM_FLAG | UNSIGNED_FLAG),
        DataType::Int64 => (LongLong, 20, 0, NUM_FLAG),
        DataType::UInt64 => (LongLong, 20, 0, NUM_FLAG | UNSIGNED_FLAG),
        DataType::Float16 | DataType::Float32 => (Float, 12, NOT_FIXED_DEC, NUM_FLAG),
        DataType::Float64 => (Double, 22, NOT_FIXED_DEC, NUM_FLAG),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            let scale = (*s).max(0) as u8;
            // Digits, the point, the sign.
            let length = *p as u32 + u32::from(scale > 0) + 1;
            (NewDecimal, length, scale, NUM_FLAG)
        }
        DataType::Date32 | DataType::Date64 => (Date, 10, 0, BINARY_FLAG),
        DataType::Time32(_) | DataType::Time64(_) => (Time, 17, 6, BINARY_FLAG),
        DataType::Timestamp(_, None) => (DateTime, 26, 6, BINARY_FLAG),
        DataType::Timestamp(_, Some(_)) => (Timestamp, 26, 6, BINARY_FLAG),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => (Blob, 65_535, 0, BLOB_FLAG | BINARY_FLAG),
        DataType::Null => (Null, 0, 0, BINARY_FLAG),
        DataType::Dictionary(_, value) => mysql_type(value),
        // Text, and anything shown as text (intervals, arrays, structs): 4 bytes a character.
        _ => (VarString, 4 * 65_535, 0, 0),
    }
}

/// The columns of a batch ready to encode: dictionaries decoded.
pub fn normalize(batch: &RecordBatch) -> Result<Vec<ArrayRef>, Error> {
    batch
        .columns()
        .iter()
        .map(|a| match a.data_type() {
            DataType::Dictionary(_, value) => {
                cast(a, value).map_err(|e| Error::invalid("XX000", e.to_string()))
            }
            _ => Ok(a.clone()),
        })
        .collect()
}

/// A text-protocol row: each value as a length-encoded string, NULL as 0xFB.
pub fn text_row(columns: &[ArrayRef], row: usize, scratch: &mut String) -> Result<Vec<u8>, Error> {
    let mut p = Vec::with_capacity(16 * columns.len());
    for column in columns {
        if column.is_null(row) || column.data_type() == &DataType::Null {
            p.push(0xFB);
            continue;
        }
        match column.data_type() {
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => {
                put_lenenc_bytes(
                    &mut p,
                    bytes_value(column.as_ref(), row).ok_or_else(|| unexpected(column.as_ref()))?,
                );
            }
            _ => {
                scratch.clear();
                write_text(column.as_ref(), row, scratch)?;
                put_lenenc_bytes(&mut p, scratch.as_bytes());
            }
        }
    }
    Ok(p)
}

/// The MySQL text form of a value (not null).
fn write_text(array: &dyn Array, row: usize, out: &mut String) -> Result<(), Error> {
    use std::fmt::Write;
    match pg_scalar(array.data_type()) {
        Some(PgScalar::Bool) => {
            out.push(if array_bool(array, row) { '1' } else { '0' });
        }
        Some(PgScalar::Int2 | PgScalar::Int4 | PgScalar::Int8) => {
            let v = integer_value(array, row).ok_or_else(|| unexpected(array))?;
            let _ = write!(out, "{v}");
        }
        Some(PgScalar::Float4) => {
            let v = float_value(array, row).ok_or_else(|| unexpected(array))?;
            double_out(f64::from(v as f32), Some(v as f32), out);
        }
        Some(PgScalar::Float8) => {
            double_out(
                float_value(array, row).ok_or_else(|| unexpected(array))?,
                None,
                out,
            );
        }
        Some(PgScalar::Numeric) => {
            let (digits, scale) = numeric_value(array, row).ok_or_else(|| unexpected(array))?;
            text::numeric_out(&digits, scale, out);
        }
        Some(PgScalar::Text | PgScalar::Json | PgScalar::Jsonb | PgScalar::Uuid) => {
            out.push_str(str_value(array, row).ok_or_else(|| unexpected(array))?)
        }
        Some(PgScalar::Date) => {
            let days = date_value(array, row).ok_or_else(|| unexpected(array))?;
            if !text::date_out(days, out) {
                return Err(Error::invalid("22008", "date out of range"));
            }
        }
        Some(PgScalar::Time) => text::time_out(
            time_value(array, row).ok_or_else(|| unexpected(array))?,
            out,
        ),
        Some(PgScalar::Timestamp | PgScalar::TimestampTz) => {
            let micros = timestamp_value(array, row)
                .ok_or_else(|| Error::invalid("22008", "timestamp out of range"))?;
            let dt = datetime(micros)
                .ok_or_else(|| Error::invalid("22008", "timestamp out of range"))?;
            let _ = write!(out, "{}", dt.format("%Y-%m-%d %H:%M:%S"));
            if dt.nanosecond() != 0 {
                let _ = write!(out, ".{:06}", dt.nanosecond() / 1000);
            }
        }
        Some(PgScalar::Interval) => {
            let (months, days, micros) = interval_value(array, row)
                .ok_or_else(|| Error::invalid("22008", "interval out of range"))?;
            text::interval_out(months, days, micros, out);
        }
        Some(PgScalar::Bytea) | None => {
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())
                .map_err(|e| Error::invalid("XX000", e.to_string()))?;
            let _ = write!(out, "{}", formatter.value(row));
        }
    }
    Ok(())
}

fn array_bool(array: &dyn Array, row: usize) -> bool {
    use thunderdb_compute::arrow::array::AsArray;
    array.as_boolean().value(row)
}

/// A DOUBLE as MySQL prints it: the shortest digits that read back, in exponent form
/// (`1e20`, `1.5e-7`) from 1e15 and below 1e-4. `single` prints a FLOAT's own digits.
fn double_out(v: f64, single: Option<f32>, out: &mut String) {
    if !v.is_finite() {
        // MySQL has no NaN or infinity; print what it accepts back as a string.
        out.push_str(if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "inf"
        } else {
            "-inf"
        });
        return;
    }
    let sci = match single {
        Some(f) => format!("{:e}", f),
        None => format!("{:e}", v),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if v == 0.0 {
        out.push('0');
    } else if (-5..15).contains(&exp) {
        match single {
            Some(f) => out.push_str(&format!("{f}")),
            None => out.push_str(&format!("{v}")),
        }
    } else {
        out.push_str(mantissa);
        out.push('e');
        out.push_str(&exp.to_string());
    }
}

fn datetime(micros: i64) -> Option<chrono::NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

/// A binary-protocol row (COM_STMT_EXECUTE): a null bitmap, then each value in the binary
/// form of its column type.
pub fn binary_row(
    columns: &[ArrayRef],
    row: usize,
    scratch: &mut String,
) -> Result<Vec<u8>, Error> {
    let mut p = vec![0u8; 1 + (columns.len() + 7 + 2) / 8];
    for (i, column) in columns.iter().enumerate() {
        if column.is_null(row) || column.data_type() == &DataType::Null {
            let bit = i + 2;
            p[1 + bit / 8] |= 1 << (bit % 8);
            continue;
        }
        let array = column.as_ref();
        let (column_type, ..) = mysql_type(array.data_type());
        match column_type {
            ColumnType::Tiny => {
                let v = if array.data_type() == &DataType::Boolean {
                    i128::from(array_bool(array, row))
                } else {
                    integer_value(array, row).ok_or_else(|| unexpected(array))?
                };
                p.push(v as u8);
            }
            ColumnType::Short => {
                let v = integer_value(array, row).ok_or_else(|| unexpected(array))?;
                p.extend_from_slice(&(v as u16).to_le_bytes());
            }
            ColumnType::Long => {
                let v = integer_value(array, row).ok_or_else(|| unexpected(array))?;
                p.extend_from_slice(&(v as u32).to_le_bytes());
            }
            ColumnType::LongLong => {
                let v = integer_value(array, row).ok_or_else(|| unexpected(array))?;
                p.extend_from_slice(&(v as u64).to_le_bytes());
            }
            ColumnType::Float => {
                let v = float_value(array, row).ok_or_else(|| unexpected(array))? as f32;
                p.extend_from_slice(&v.to_le_bytes());
            }
            ColumnType::Double => {
                let v = float_value(array, row).ok_or_else(|| unexpected(array))?;
                p.extend_from_slice(&v.to_le_bytes());
            }
            ColumnType::Date => {
                let days = date_value(array, row).ok_or_else(|| unexpected(array))?;
                let date = text::date_from_unix_days(days)
                    .ok_or_else(|| Error::invalid("22008", "date out of range"))?;
                put_date(&mut p, date, None)?;
            }
            ColumnType::DateTime | ColumnType::Timestamp => {
                let micros = timestamp_value(array, row)
                    .ok_or_else(|| Error::invalid("22008", "timestamp out of range"))?;
                let dt = datetime(micros)
                    .ok_or_else(|| Error::invalid("22008", "timestamp out of range"))?;
                put_date(&mut p, dt.date(), Some(dt.time()))?;
            }
            ColumnType::Time => {
                let micros = time_value(array, row).ok_or_else(|| unexpected(array))?;
                put_time(&mut p, micros);
            }
            ColumnType::Blob => put_lenenc_bytes(
                &mut p,
                bytes_value(array, row).ok_or_else(|| unexpected(array))?,
            ),
            _ => {
                scratch.clear();
                write_text(array, row, scratch)?;
                put_lenenc_bytes(&mut p, scratch.as_bytes());
            }
        }
    }
    Ok(p)
}

/// DATE / DATETIME in the binary protocol: a length (0, 4, 7 or 11), then the fields.
fn put_date(
    p: &mut Vec<u8>,
    date: NaiveDate,
    time: Option<chrono::NaiveTime>,
) -> Result<(), Error> {
    if !(0..=9999).contains(&date.year()) {
        return Err(Error::invalid(
            "22008",
            "date out of range for MySQL (years 0 to 9999)",
        ));
    }
    let micros = time.map_or(0, |t| t.nanosecond() / 1000);
    let has_time = time.is_some_and(|t| t.num_seconds_from_midnight() != 0 || micros != 0);
    let len: u8 = match (has_time, micros != 0) {
        (false, _) => 4,
        (true, false) => 7,
        (true, true) => 11,
    };
    p.push(len);
    p.extend_from_slice(&(date.year() as u16).to_le_bytes());
    p.push(date.month() as u8);
    p.push(date.day() as u8);
    if let Some(t) = time.filter(|_| len > 4) {
        p.push(t.hour() as u8);
        p.push(t.minute() as u8);
        p.push(t.second() as u8);
        if len == 11 {
            p.extend_from_slice(&micros.to_le_bytes());
        }
    }
    Ok(())
}

/// TIME in the binary protocol: length 8 or 12, sign, days, hours, minutes, seconds, micros.
fn put_time(p: &mut Vec<u8>, micros: i64) {
    let negative = micros < 0;
    let m = micros.unsigned_abs();
    let frac = (m % 1_000_000) as u32;
    let secs = m / 1_000_000;
    p.push(if frac != 0 { 12 } else { 8 });
    p.push(u8::from(negative));
    p.extend_from_slice(&((secs / 86_400) as u32).to_le_bytes());
    p.push(((secs % 86_400) / 3600) as u8);
    p.push(((secs % 3600) / 60) as u8);
    p.push((secs % 60) as u8);
    if frac != 0 {
        p.extend_from_slice(&frac.to_le_bytes());
    }
}

/// An OK packet (`header` 0x00, or 0xFE where it ends a result set under DEPRECATE_EOF).
pub fn ok_packet(
    header: u8,
    affected: u64,
    last_insert_id: u64,
    status: u16,
    warnings: u16,
    info: &str,
) -> Vec<u8> {
    let mut p = vec![header];
    put_lenenc_int(&mut p, affected);
    put_lenenc_int(&mut p, last_insert_id);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&warnings.to_le_bytes());
    p.extend_from_slice(info.as_bytes());
    p
}

/// An EOF packet (clients without DEPRECATE_EOF).
pub fn eof_packet(status: u16, warnings: u16) -> Vec<u8> {
    let mut p = vec![0xFE];
    p.extend_from_slice(&warnings.to_le_bytes());
    p.extend_from_slice(&status.to_le_bytes());
    p
}

/// An ERR packet.
pub fn err_packet(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    let mut state = sqlstate.as_bytes().to_vec();
    state.resize(5, b'0');
    p.extend_from_slice(&state);
    p.extend_from_slice(message.as_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_mysql() {
        let cases = [
            (1.5, "1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e20, "1e20"),
            (123456789012345.0, "123456789012345"),
            (1e15, "1e15"),
            (-2.5e-7, "-2.5e-7"),
            (0.0001, "0.0001"),
            (100.0, "100"),
        ];
        for (v, want) in cases {
            let mut s = String::new();
            double_out(v, None, &mut s);
            assert_eq!(s, want, "{v}");
        }
        let mut s = String::new();
        double_out(f64::from(0.1f32), Some(0.1f32), &mut s);
        assert_eq!(s, "0.1");
    }
}
