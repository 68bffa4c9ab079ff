//! `Datum`: one SQL value as it is stored in keys and rows.

use serde::{Deserialize, Serialize};

/// One SQL value in storage form. Time values are microseconds; dates are days since 1970-01-01;
/// decimals are an unscaled integer with the column's scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Datum {
    Null,
    Bool(bool),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Decimal(i128, i8),
    Text(String),
    Bytes(Vec<u8>),
    Date(i32),
    Time(i64),
    Timestamp(i64),
    TimestampTz(i64),
    Interval {
        months: i32,
        days: i32,
        nanos: i64,
    },
    /// The elements of a one-dimensional array, each of the element type or NULL.
    Array(Vec<Datum>),
}

impl Datum {
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }
}
