//! Reading one value of an Arrow column as the plain Rust value its PostgreSQL encodings need.

use thunderdb_compute::arrow::array::{Array, ArrayRef, AsArray};
use thunderdb_compute::arrow::datatypes::*;

use super::text::MICROS_PER_DAY;
use crate::error::Error;

pub(crate) fn out_of_range(what: &str) -> Error {
    Error::invalid("22008", format!("{what} out of range"))
}

/// An integer column's value widened to i128, for the integer and numeric encodings.
pub(crate) fn integer_value(array: &dyn Array, row: usize) -> Option<i128> {
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
pub(crate) fn numeric_value(array: &dyn Array, row: usize) -> Option<(String, i8)> {
    Some(match array.data_type() {
        DataType::Decimal32(_, s) => (
            array.as_primitive::<Decimal32Type>().value(row).to_string(),
            *s,
        ),
        DataType::Decimal64(_, s) => (
            array.as_primitive::<Decimal64Type>().value(row).to_string(),
            *s,
        ),
        DataType::Decimal128(_, s) => (
            array
                .as_primitive::<Decimal128Type>()
                .value(row)
                .to_string(),
            *s,
        ),
        DataType::Decimal256(_, s) => (
            array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_string(),
            *s,
        ),
        _ => (integer_value(array, row)?.to_string(), 0),
    })
}

pub(crate) fn float_value(array: &dyn Array, row: usize) -> Option<f64> {
    Some(match array.data_type() {
        DataType::Float16 => array.as_primitive::<Float16Type>().value(row).to_f64(),
        DataType::Float32 => array.as_primitive::<Float32Type>().value(row).into(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row),
        _ => return None,
    })
}

pub(crate) fn str_value(array: &dyn Array, row: usize) -> Option<&str> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row),
        DataType::Utf8View => array.as_string_view().value(row),
        _ => return None,
    })
}

pub(crate) fn bytes_value(array: &dyn Array, row: usize) -> Option<&[u8]> {
    Some(match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(row),
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::BinaryView => array.as_binary_view().value(row),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(row),
        _ => return None,
    })
}

/// Days since 1970-01-01 of a date column.
pub(crate) fn date_value(array: &dyn Array, row: usize) -> Option<i64> {
    Some(match array.data_type() {
        DataType::Date32 => array.as_primitive::<Date32Type>().value(row).into(),
        DataType::Date64 => array
            .as_primitive::<Date64Type>()
            .value(row)
            .div_euclid(86_400_000),
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
pub(crate) fn time_value(array: &dyn Array, row: usize) -> Option<i64> {
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
pub(crate) fn timestamp_value(array: &dyn Array, row: usize) -> Option<i64> {
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
pub(crate) fn interval_value(array: &dyn Array, row: usize) -> Option<(i32, i32, i64)> {
    Some(match array.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => (
            array.as_primitive::<IntervalYearMonthType>().value(row),
            0,
            0,
        ),
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
pub(crate) fn list_value(array: &dyn Array, row: usize) -> Option<ArrayRef> {
    Some(match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(row),
        DataType::LargeList(_) => array.as_list::<i64>().value(row),
        DataType::ListView(_) => array.as_list_view::<i32>().value(row),
        DataType::LargeListView(_) => array.as_list_view::<i64>().value(row),
        DataType::FixedSizeList(..) => array.as_fixed_size_list().value(row),
        _ => return None,
    })
}

pub(crate) fn unexpected(array: &dyn Array) -> Error {
    Error::invalid(
        "XX000",
        format!("cannot encode a value of type {}", array.data_type()),
    )
}
