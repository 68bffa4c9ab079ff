//! Conversions between Arrow arrays (what DataFusion computes) and `Datum`s (what storage keeps).

use crate::error::{DfResultExt, Result, user_error};
use crate::types::arrow_type;
use datafusion::arrow::array::*;
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano};
use datafusion::arrow::util::display::FormatOptions;
use std::sync::Arc;
use thunderdb_common::{Datum, SqlState, SqlType};

/// Casts `array` to the Arrow type of `ty`, failing (not nulling) on values that do not fit, and
/// enforcing length limits of varchar(n)/char(n).
pub fn cast_to(array: &ArrayRef, ty: &SqlType, column: &str) -> Result<ArrayRef> {
    if let SqlType::Array(element) = ty {
        return crate::arrays::cast_to_array(array, element, column);
    }
    let cast = cast_array(array, &arrow_type(ty))?;
    if matches!(
        ty,
        SqlType::Json | SqlType::JsonText | SqlType::Uuid | SqlType::Enum { .. }
    ) && let Some(strings) = cast.as_any().downcast_ref::<StringArray>()
    {
        let checked: Vec<Option<String>> = strings
            .iter()
            .map(|v| v.map(|v| typed_text_input(ty, v)).transpose())
            .collect::<Result<_>>()?;
        return Ok(Arc::new(StringArray::from(checked)));
    }
    if let SqlType::Varchar(Some(n)) | SqlType::Char(n) = ty
        && let Some(strings) = cast.as_any().downcast_ref::<StringArray>()
    {
        let limit = *n as usize;
        if strings.iter().flatten().any(|s| s.chars().count() > limit) {
            let name = if matches!(ty, SqlType::Char(_)) {
                "character"
            } else {
                "character varying"
            };
            return Err(user_error(
                SqlState::STRING_DATA_RIGHT_TRUNCATION,
                format!("value too long for type {name}({limit})"),
            )
            .with_detail(format!("column \"{column}\"")));
        }
    }
    Ok(cast)
}

/// A value of a type stored as text (jsonb, json, uuid) as its input function reads it: jsonb
/// in canonical form, json checked and kept as given, uuid in its canonical spelling.
pub fn typed_text_input(ty: &SqlType, v: &str) -> Result<String> {
    match ty {
        SqlType::Json | SqlType::JsonText => {
            let parsed = if *ty == SqlType::Json {
                thunderdb_common::json::jsonb_text(v)
            } else {
                thunderdb_common::json::parse(v, false).map(|_| v.to_string())
            };
            parsed.map_err(|e| json_input_error(&e))
        }
        SqlType::Enum { name, labels, .. } => {
            if labels.iter().any(|l| l == v) {
                Ok(v.to_string())
            } else {
                Err(user_error(
                    SqlState::INVALID_TEXT_REPRESENTATION,
                    format!(
                        "invalid input value for enum {}: \"{v}\"",
                        crate::catalog::split_relation_key(name).1
                    ),
                ))
            }
        }
        SqlType::Uuid => thunderdb_common::text_input::parse_uuid(v).ok_or_else(|| {
            user_error(
                SqlState::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type uuid: \"{v}\""),
            )
        }),
        _ => Ok(v.to_string()),
    }
}

/// PostgreSQL's error for text that is not JSON.
pub fn json_input_error(e: &thunderdb_common::json::JsonError) -> thunderdb_common::ThunderError {
    if e.unsupported_escape {
        return user_error(SqlState("22P05"), "unsupported Unicode escape sequence")
            .with_detail(e.detail.clone());
    }
    user_error(
        SqlState::INVALID_TEXT_REPRESENTATION,
        "invalid input syntax for type json",
    )
    .with_detail(e.detail.clone())
}

/// Casts like SQL's CAST, failing on values that do not fit; text becomes bytea through
/// PostgreSQL's bytea input syntax (`\x00ff`, or escapes) rather than its raw bytes, and an
/// array through `array_in`.
pub fn cast_array(array: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if array.data_type() == target {
        return Ok(array.clone());
    }
    // Text becomes an array through `array_in`, not as a one-element list.
    if let DataType::List(element) = target
        && matches!(
            array.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
        && let Some(element) = crate::types::sql_type_of_field(element)
    {
        return crate::arrays::cast_to_array(array, &element, "");
    }
    if *target == DataType::Binary
        && let Ok(text) = cast_with_options(array, &DataType::Utf8, &CastOptions::default())
        && let Some(strings) = text.as_any().downcast_ref::<StringArray>()
    {
        let bytes: Vec<Option<Vec<u8>>> = strings
            .iter()
            .map(|s| s.map(thunderdb_common::text_input::parse_bytea).transpose())
            .collect::<Result<_>>()?;
        return Ok(Arc::new(
            bytes.iter().map(|b| b.as_deref()).collect::<BinaryArray>(),
        ));
    }
    let opts = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    // Times without seconds and `epoch`, which PostgreSQL reads and Arrow does not.
    if let DataType::Timestamp(_, tz) = target
        && let Some(strings) = array.as_any().downcast_ref::<StringArray>()
        && strings
            .iter()
            .flatten()
            .any(|v| thunderdb_common::text_input::timestamp_for_arrow(v, tz.is_some()).is_some())
    {
        let fixed: StringArray = strings
            .iter()
            .map(|v| {
                v.map(|v| {
                    thunderdb_common::text_input::timestamp_for_arrow(v, tz.is_some())
                        .unwrap_or_else(|| v.to_string())
                })
            })
            .collect();
        return cast_with_options(&(Arc::new(fixed) as ArrayRef), target, &opts).map_df();
    }
    // Numbers and booleans read from text may have blanks around them (`' 12 '`).
    if (target.is_numeric() || *target == DataType::Boolean)
        && let Some(strings) = array.as_any().downcast_ref::<StringArray>()
        && strings
            .iter()
            .flatten()
            .any(|v| v.starts_with(char::is_whitespace) || v.ends_with(char::is_whitespace))
    {
        let trimmed: StringArray = strings.iter().map(|v| v.map(str::trim)).collect();
        return cast_with_options(&(Arc::new(trimmed) as ArrayRef), target, &opts).map_df();
    }
    cast_with_options(array, target, &opts).map_df()
}

/// The datum at `row` of an array already cast to `arrow_type(ty)`.
pub fn datum_at(array: &ArrayRef, row: usize, ty: &SqlType) -> Result<Datum> {
    if array.is_null(row) {
        return Ok(Datum::Null);
    }
    let bad = || {
        user_error(
            SqlState::INTERNAL_ERROR,
            format!("unexpected array type {} for {:?}", array.data_type(), ty),
        )
    };
    macro_rules! get {
        ($arr:ty) => {
            array
                .as_any()
                .downcast_ref::<$arr>()
                .ok_or_else(bad)?
                .value(row)
        };
    }
    Ok(match ty {
        SqlType::Bool => Datum::Bool(get!(BooleanArray)),
        SqlType::Int16 => Datum::Int16(get!(Int16Array)),
        SqlType::Int32 => Datum::Int32(get!(Int32Array)),
        SqlType::Int64 => Datum::Int64(get!(Int64Array)),
        SqlType::Float32 => Datum::Float32(get!(Float32Array)),
        SqlType::Float64 => Datum::Float64(get!(Float64Array)),
        SqlType::Numeric { scale, .. } => Datum::Decimal(get!(Decimal128Array), *scale),
        SqlType::Text
        | SqlType::Varchar(_)
        | SqlType::Char(_)
        | SqlType::Uuid
        | SqlType::Json
        | SqlType::JsonText
        | SqlType::Enum { .. } => Datum::Text(get!(StringArray).to_string()),
        SqlType::Bytea => Datum::Bytes(get!(BinaryArray).to_vec()),
        SqlType::Date => Datum::Date(get!(Date32Array)),
        SqlType::Time => Datum::Time(get!(Time64MicrosecondArray)),
        SqlType::Timestamp => Datum::Timestamp(get!(TimestampMicrosecondArray)),
        SqlType::TimestampTz => Datum::TimestampTz(get!(TimestampMicrosecondArray)),
        SqlType::Interval => {
            let v = get!(IntervalMonthDayNanoArray);
            Datum::Interval {
                months: v.months,
                days: v.days,
                nanos: v.nanoseconds,
            }
        }
        SqlType::Array(element) => {
            let list = array.as_list_opt::<i32>().ok_or_else(bad)?;
            let items = list.value(row);
            Datum::Array(
                (0..items.len())
                    .map(|i| datum_at(&items, i, element))
                    .collect::<Result<_>>()?,
            )
        }
    })
}

/// Builds the Arrow column of type `arrow_type(ty)` holding `datums`. A datum of another type
/// than the column's (possible only for rows written before an ALTER) reads as NULL.
pub fn build_array(ty: &SqlType, datums: &[Datum]) -> ArrayRef {
    macro_rules! build {
        ($arr:ty, $pat:pat => $v:expr) => {
            Arc::new(
                datums
                    .iter()
                    .map(|d| match d {
                        $pat => Some($v),
                        _ => None,
                    })
                    .collect::<$arr>(),
            ) as ArrayRef
        };
    }
    match ty {
        SqlType::Bool => build!(BooleanArray, Datum::Bool(b) => *b),
        SqlType::Int16 => build!(Int16Array, Datum::Int16(v) => *v),
        SqlType::Int32 => build!(Int32Array, Datum::Int32(v) => *v),
        SqlType::Int64 => build!(Int64Array, Datum::Int64(v) => *v),
        SqlType::Float32 => build!(Float32Array, Datum::Float32(v) => *v),
        SqlType::Float64 => build!(Float64Array, Datum::Float64(v) => *v),
        SqlType::Numeric { precision, scale } => {
            let arr: Decimal128Array = datums
                .iter()
                .map(|d| match d {
                    Datum::Decimal(v, _) => Some(*v),
                    _ => None,
                })
                .collect();
            Arc::new(
                arr.with_precision_and_scale(*precision, *scale)
                    .expect("catalog precision and scale are valid"),
            )
        }
        SqlType::Text
        | SqlType::Varchar(_)
        | SqlType::Char(_)
        | SqlType::Uuid
        | SqlType::Json
        | SqlType::JsonText
        | SqlType::Enum { .. } => Arc::new(
            datums
                .iter()
                .map(|d| match d {
                    Datum::Text(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
        SqlType::Bytea => Arc::new(
            datums
                .iter()
                .map(|d| match d {
                    Datum::Bytes(b) => Some(b.as_slice()),
                    _ => None,
                })
                .collect::<BinaryArray>(),
        ),
        SqlType::Date => build!(Date32Array, Datum::Date(v) => *v),
        SqlType::Time => build!(Time64MicrosecondArray, Datum::Time(v) => *v),
        SqlType::Timestamp => build!(TimestampMicrosecondArray, Datum::Timestamp(v) => *v),
        SqlType::TimestampTz => {
            let arr: TimestampMicrosecondArray = datums
                .iter()
                .map(|d| match d {
                    Datum::TimestampTz(v) => Some(*v),
                    _ => None,
                })
                .collect();
            Arc::new(arr.with_timezone(crate::types::UTC))
        }
        SqlType::Interval => {
            build!(IntervalMonthDayNanoArray, Datum::Interval { months, days, nanos } => IntervalMonthDayNano::new(*months, *days, *nanos))
        }
        SqlType::Array(element) => {
            let mut offsets = Vec::with_capacity(datums.len() + 1);
            offsets.push(0i32);
            let mut values = Vec::new();
            let mut valid = Vec::with_capacity(datums.len());
            for d in datums {
                if let Datum::Array(items) = d {
                    values.extend(items.iter().cloned());
                }
                valid.push(matches!(d, Datum::Array(_)));
                offsets.push(values.len() as i32);
            }
            let DataType::List(field) = arrow_type(ty) else {
                unreachable!("arrays are Arrow lists")
            };
            Arc::new(ListArray::new(
                field,
                datafusion::arrow::buffer::OffsetBuffer::new(offsets.into()),
                build_array(element, &values),
                Some(valid.into()),
            ))
        }
    }
}

/// A datum as a SQL literal, for constraint error details (`Key (id)=(1) already exists.`).
pub fn datum_text(d: &Datum) -> String {
    match d {
        Datum::Null => "null".into(),
        Datum::Bool(b) => if *b { "t" } else { "f" }.into(),
        Datum::Int16(v) => v.to_string(),
        Datum::Int32(v) => v.to_string(),
        Datum::Int64(v) => v.to_string(),
        Datum::Float32(v) => v.to_string(),
        Datum::Float64(v) => v.to_string(),
        Datum::Decimal(v, s) => {
            let arr = Decimal128Array::from(vec![*v])
                .with_precision_and_scale(38, *s)
                .ok();
            arr.map(|a| a.value_as_string(0))
                .unwrap_or_else(|| v.to_string())
        }
        Datum::Text(s) => s.clone(),
        Datum::Bytes(b) => format!(
            "\\x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
        Datum::Array(items) => crate::arrays::array_text(items.iter().map(|d| match d {
            Datum::Null => None,
            d => Some(datum_text(d)),
        })),
        other => {
            let ty = match other {
                Datum::Date(_) => SqlType::Date,
                Datum::Time(_) => SqlType::Time,
                Datum::Timestamp(_) => SqlType::Timestamp,
                Datum::TimestampTz(_) => SqlType::TimestampTz,
                _ => SqlType::Interval,
            };
            let arr = build_array(&ty, std::slice::from_ref(other));
            datafusion::arrow::util::display::array_value_to_string(&arr, 0).unwrap_or_default()
        }
    }
}
