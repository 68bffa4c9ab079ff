//! Compute's errors are `ThunderError`s: each carries the SQLSTATE a client sees. This module
//! maps DataFusion's and Arrow's errors onto PostgreSQL's codes and messages.

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use thunderdb_common::{SqlState, ThunderError};

pub type Result<T, E = ThunderError> = std::result::Result<T, E>;

pub fn user_error(state: SqlState, message: impl Into<String>) -> ThunderError {
    ThunderError::new(state, message)
}

/// Wraps a `ThunderError` so it can travel through DataFusion and come back out unchanged.
pub fn to_df(e: ThunderError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The client-facing error for a DataFusion error.
pub fn from_df(e: DataFusionError) -> ThunderError {
    let root = e.find_root();
    match root {
        DataFusionError::External(inner) => {
            if let Some(t) = inner.downcast_ref::<ThunderError>() {
                return t.clone();
            }
            if let Some(a) = inner.downcast_ref::<ArrowError>() {
                return from_arrow(a);
            }
            ThunderError::internal(inner.to_string())
        }
        DataFusionError::ArrowError(a, _) => from_arrow(a),
        DataFusionError::SQL(p, _) => ThunderError::new(
            SqlState::SYNTAX_ERROR,
            format!(
                "syntax error: {}",
                p.to_string().trim_start_matches("sql parser error: ")
            ),
        ),
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            SchemaError::FieldNotFound { field, .. } => ThunderError::new(
                SqlState::UNDEFINED_COLUMN,
                format!("column \"{}\" does not exist", field.name),
            ),
            SchemaError::AmbiguousReference { field } => ThunderError::new(
                SqlState::AMBIGUOUS_COLUMN,
                format!("column reference \"{}\" is ambiguous", field.name),
            ),
            other => ThunderError::new(SqlState::DUPLICATE_COLUMN, other.to_string()),
        },
        DataFusionError::Plan(msg) => from_plan_message(msg),
        DataFusionError::NotImplemented(msg) => {
            ThunderError::new(SqlState::FEATURE_NOT_SUPPORTED, msg.clone())
        }
        DataFusionError::Execution(msg) => from_execution_message(msg),
        DataFusionError::ResourcesExhausted(msg) => {
            ThunderError::new(SqlState("53200"), msg.clone())
        }
        other => {
            tracing::warn!(error = %other, "internal query error");
            ThunderError::internal(other.to_string())
        }
    }
}

fn from_arrow(a: &ArrowError) -> ThunderError {
    match a {
        ArrowError::DivideByZero => {
            ThunderError::new(SqlState::DIVISION_BY_ZERO, "division by zero")
        }
        ArrowError::ArithmeticOverflow(m) => ThunderError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            out_of_range_message(m),
        ),
        ArrowError::CastError(m) | ArrowError::ParseError(m) => {
            if let Some(message) = integer_range_message(m) {
                ThunderError::new(SqlState::NUMERIC_VALUE_OUT_OF_RANGE, message)
            } else if m.contains("overflow") || m.contains("too large") || m.contains("Overflow") {
                ThunderError::new(
                    SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                    out_of_range_message(m),
                )
            } else {
                text_input_error(m).unwrap_or_else(|| {
                    ThunderError::new(
                        SqlState::INVALID_TEXT_REPRESENTATION,
                        format!("invalid input syntax: {m}"),
                    )
                })
            }
        }
        ArrowError::ComputeError(m) if m.contains("verflow") => ThunderError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            out_of_range_message(m),
        ),
        ArrowError::InvalidArgumentError(m) if m.contains("precision") => ThunderError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("numeric field overflow: {m}"),
        ),
        ArrowError::ExternalError(inner) => match inner.downcast_ref::<ThunderError>() {
            Some(t) => t.clone(),
            None => ThunderError::internal(inner.to_string()),
        },
        other => ThunderError::new(SqlState::DATA_EXCEPTION, other.to_string()),
    }
}

/// PostgreSQL's error for text that does not parse as the type (Arrow: "Cannot cast string
/// 'x' to value of Int32 type", "Error parsing timestamp from 'x': …"): 22P02, or 22003 for an
/// integer too large for its type.
fn text_input_error(m: &str) -> Option<ThunderError> {
    let (value, arrow_type) = if let Some(rest) = m
        .strip_prefix("Cannot cast string '")
        .or_else(|| m.strip_prefix("Cannot cast value '"))
    {
        let (value, tail) = rest.rsplit_once("' to value of ")?;
        (value, tail.strip_suffix(" type")?)
    } else {
        let rest = m.strip_prefix("Error parsing timestamp from '")?;
        (rest.split_once("': ")?.0, "Timestamp")
    };
    let pg = match arrow_type.split('(').next()? {
        "Int8" | "Int16" => "smallint",
        "Int32" => "integer",
        "Int64" => "bigint",
        "Float16" | "Float32" => "real",
        "Float64" => "double precision",
        "Decimal32" | "Decimal64" | "Decimal128" | "Decimal256" => "numeric",
        "Boolean" => "boolean",
        "Date32" | "Date64" => "date",
        "Time32" | "Time64" => "time without time zone",
        "Timestamp" => "timestamp",
        _ => return None,
    };
    let digits = value.trim().trim_start_matches(['-', '+']);
    if matches!(pg, "smallint" | "integer" | "bigint")
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(ThunderError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("value \"{value}\" is out of range for type {pg}"),
        ));
    }
    Some(ThunderError::new(
        SqlState::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {pg}: \"{value}\""),
    ))
}

/// PostgreSQL's message for a number cast to an integer type it does not fit
/// (Arrow: "Can't cast value 3000000000.0 to type Int32", "value of … is out of range Int32").
fn integer_range_message(m: &str) -> Option<&'static str> {
    if !(m.starts_with("Can't cast value") || m.contains("is out of range")) {
        return None;
    }
    if m.ends_with("Int16") {
        Some("smallint out of range")
    } else if m.ends_with("Int32") {
        Some("integer out of range")
    } else if m.ends_with("Int64") {
        Some("bigint out of range")
    } else {
        None
    }
}

fn out_of_range_message(m: &str) -> String {
    if m.contains("Int16") || m.contains("Int32") || m.contains("Int64") || m.contains("overflow") {
        format!("value out of range: {m}")
    } else {
        m.to_string()
    }
}

fn from_plan_message(msg: &str) -> ThunderError {
    let lower = msg.to_lowercase();
    if let Some(name) = quoted_after(msg, "table '").filter(|_| lower.contains("not found")) {
        let short = name.rsplit('.').next().unwrap_or(&name).to_string();
        return ThunderError::new(
            SqlState::UNDEFINED_TABLE,
            format!("relation \"{short}\" does not exist"),
        );
    }
    if lower.contains("invalid function") || lower.contains("no function matches") {
        let name = quoted_after(msg, "function '").unwrap_or_default();
        return ThunderError::new(
            SqlState::UNDEFINED_FUNCTION,
            format!("function {name} does not exist"),
        );
    }
    if lower.contains("ambiguous") {
        return ThunderError::new(SqlState::AMBIGUOUS_COLUMN, msg.to_string());
    }
    if lower.contains("cannot be cast")
        || lower.contains("cannot infer common")
        || lower.contains("there isn't a common type")
        || lower.contains("failed to coerce")
        || lower.contains("unsupported data type")
    {
        return ThunderError::new(SqlState::DATATYPE_MISMATCH, msg.to_string());
    }
    if lower.contains("must appear in the group by")
        || lower.contains("projection references non-aggregate")
    {
        return ThunderError::new(SqlState("42803"), msg.to_string());
    }
    ThunderError::new(SqlState::SYNTAX_ERROR, msg.to_string())
}

fn from_execution_message(msg: &str) -> ThunderError {
    let lower = msg.to_lowercase();
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        ThunderError::new(SqlState::DIVISION_BY_ZERO, "division by zero")
    } else if lower.contains("overflow") {
        ThunderError::new(SqlState::NUMERIC_VALUE_OUT_OF_RANGE, msg.to_string())
    } else if lower.contains("cast") || lower.contains("parse") {
        ThunderError::new(SqlState::INVALID_TEXT_REPRESENTATION, msg.to_string())
    } else {
        ThunderError::new(SqlState::DATA_EXCEPTION, msg.to_string())
    }
}

fn quoted_after(msg: &str, marker: &str) -> Option<String> {
    let start = msg.find(marker)? + marker.len();
    let end = msg[start..].find('\'')?;
    Some(msg[start..start + end].to_string())
}

pub trait DfResultExt<T> {
    fn map_df(self) -> Result<T>;
}

impl<T> DfResultExt<T> for std::result::Result<T, DataFusionError> {
    fn map_df(self) -> Result<T> {
        self.map_err(from_df)
    }
}

impl<T> DfResultExt<T> for std::result::Result<T, ArrowError> {
    fn map_df(self) -> Result<T> {
        self.map_err(|e| from_arrow(&e))
    }
}
