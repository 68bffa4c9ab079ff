//! SQL types: the catalog's `SqlType`, its Arrow representation, and parsing from SQL.

use crate::error::{Result, user_error};
use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{self, ExactNumberInfo};
use thunderdb_common::types::{NUMERIC_DEFAULT_SCALE, NUMERIC_MAX_PRECISION};
use thunderdb_common::{SqlState, SqlType};

/// UTC as Arrow spells a timestamptz's zone; values are stored in UTC and shown in the session's.
pub const UTC: &str = "+00:00";

/// The Arrow type a column of `ty` is scanned as.
pub fn arrow_type(ty: &SqlType) -> DataType {
    match ty {
        SqlType::Bool => DataType::Boolean,
        SqlType::Int16 => DataType::Int16,
        SqlType::Int32 => DataType::Int32,
        SqlType::Int64 => DataType::Int64,
        SqlType::Float32 => DataType::Float32,
        SqlType::Float64 => DataType::Float64,
        SqlType::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
        SqlType::Text
        | SqlType::Varchar(_)
        | SqlType::Char(_)
        | SqlType::Uuid
        | SqlType::Json
        | SqlType::JsonText
        | SqlType::Enum { .. } => DataType::Utf8,
        SqlType::Bytea => DataType::Binary,
        SqlType::Date => DataType::Date32,
        SqlType::Time => DataType::Time64(TimeUnit::Microsecond),
        SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        SqlType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        SqlType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
        SqlType::Array(element) => {
            DataType::List(std::sync::Arc::new(field("item", element, true)))
        }
    }
}

/// The Arrow field of a column of `ty`, tagged with its PostgreSQL type where Arrow's type
/// does not tell it.
pub fn field(name: &str, ty: &SqlType, nullable: bool) -> datafusion::arrow::datatypes::Field {
    let f = datafusion::arrow::datatypes::Field::new(name, arrow_type(ty), nullable);
    match ty.text_subtype() {
        Some(t) => f.with_metadata(
            [(
                thunderdb_common::types::PG_TYPE_METADATA.to_string(),
                t.to_string(),
            )]
            .into(),
        ),
        None => f,
    }
}

/// The element field of an Arrow list type.
pub fn list_element(dt: &DataType) -> Option<&datafusion::arrow::datatypes::FieldRef> {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => Some(f),
        _ => None,
    }
}

/// The catalog type of a query's result column (`CREATE TABLE … AS`), or `None` for types no
/// column stores (lists, structs).
pub fn sql_type_of_field(f: &datafusion::arrow::datatypes::Field) -> Option<SqlType> {
    if let DataType::List(element) | DataType::LargeList(element) = f.data_type() {
        return match sql_type_of_field(element)? {
            // Arrays have one dimension here.
            SqlType::Array(_) => None,
            element => Some(SqlType::Array(Box::new(element))),
        };
    }
    match f
        .metadata()
        .get(thunderdb_common::types::PG_TYPE_METADATA)
        .map(String::as_str)
    {
        Some("jsonb") => return Some(SqlType::Json),
        Some("json") => return Some(SqlType::JsonText),
        Some("uuid") => return Some(SqlType::Uuid),
        _ => {}
    }
    Some(match f.data_type() {
        DataType::Boolean => SqlType::Bool,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::Int16,
        DataType::Int32 | DataType::UInt16 => SqlType::Int32,
        DataType::Int64 | DataType::UInt32 => SqlType::Int64,
        DataType::UInt64 => SqlType::Numeric {
            precision: NUMERIC_MAX_PRECISION,
            scale: 0,
        },
        DataType::Float16 | DataType::Float32 => SqlType::Float32,
        DataType::Float64 => SqlType::Float64,
        DataType::Decimal128(p, s) => SqlType::Numeric {
            precision: (*p).min(NUMERIC_MAX_PRECISION),
            scale: *s,
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => SqlType::Text,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytea,
        DataType::Date32 | DataType::Date64 => SqlType::Date,
        DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
        DataType::Timestamp(_, None) => SqlType::Timestamp,
        DataType::Timestamp(_, Some(_)) => SqlType::TimestampTz,
        DataType::Interval(_) => SqlType::Interval,
        _ => return None,
    })
}

/// A type name (`numeric(10,2)`, `timestamp with time zone` …) as the parser reads it.
pub fn parse_data_type(name: &str) -> Result<ast::DataType> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(name)
        .and_then(|mut p| p.parse_data_type())
        .map_err(|e| {
            user_error(
                SqlState::INTERNAL_ERROR,
                format!("type name {name} does not parse: {e}"),
            )
        })
}

/// The catalog type for a column declared as `dt`.
pub fn sql_type(dt: &ast::DataType) -> Result<SqlType> {
    use ast::DataType as D;
    let len = |l: &Option<ast::CharacterLength>| match l {
        Some(ast::CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
        _ => None,
    };
    Ok(match dt {
        D::Boolean | D::Bool => SqlType::Bool,
        D::SmallInt(_) | D::Int2(_) | D::TinyInt(_) | D::TinyIntUnsigned(_) => SqlType::Int16,
        D::Int(_) | D::Integer(_) | D::Int4(_) | D::MediumInt(_) => SqlType::Int32,
        // MySQL's unsigned integers: the next wider signed type holds every value.
        D::SmallIntUnsigned(_) | D::MediumIntUnsigned(_) => SqlType::Int32,
        // BIGINT UNSIGNED (the usual id column) is stored as BIGINT: values above 2^63 - 1 are
        // out of range.
        D::BigInt(_)
        | D::Int8(_)
        | D::IntUnsigned(_)
        | D::IntegerUnsigned(_)
        | D::BigIntUnsigned(_) => SqlType::Int64,
        D::DecimalUnsigned(info) => return sql_type(&D::Decimal(*info)),
        D::TinyText | D::MediumText | D::LongText => SqlType::Text,
        D::TinyBlob | D::MediumBlob | D::LongBlob => SqlType::Bytea,
        D::Enum(..) | D::Set(_) => SqlType::Text,
        D::Real | D::Float4 => SqlType::Float32,
        D::Float(info) => match info {
            ExactNumberInfo::Precision(p) | ExactNumberInfo::PrecisionAndScale(p, _)
                if *p <= 24 =>
            {
                SqlType::Float32
            }
            _ => SqlType::Float64,
        },
        D::Double(_) | D::DoublePrecision | D::Float8 | D::Float64 => SqlType::Float64,
        D::Numeric(info) | D::Decimal(info) | D::Dec(info) => match info {
            ExactNumberInfo::None => SqlType::Numeric {
                precision: NUMERIC_MAX_PRECISION,
                scale: NUMERIC_DEFAULT_SCALE,
            },
            ExactNumberInfo::Precision(p) => numeric(*p, 0)?,
            ExactNumberInfo::PrecisionAndScale(p, s) => numeric(*p, *s)?,
        },
        D::Text | D::String(_) => SqlType::Text,
        D::Varchar(l) | D::CharacterVarying(l) | D::CharVarying(l) | D::Nvarchar(l) => {
            SqlType::Varchar(len(l))
        }
        D::Char(l) | D::Character(l) => SqlType::Char(len(l).unwrap_or(1)),
        D::Bytea | D::Blob(_) | D::Varbinary(_) | D::Binary(_) => SqlType::Bytea,
        D::Date => SqlType::Date,
        D::Time(_, tz) => match tz {
            ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => {
                return Err(user_error(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "type time with time zone is not supported",
                ));
            }
            _ => SqlType::Time,
        },
        D::Timestamp(_, tz) => match tz {
            ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => SqlType::TimestampTz,
            _ => SqlType::Timestamp,
        },
        D::Datetime(_) => SqlType::Timestamp,
        D::Interval { .. } => SqlType::Interval,
        D::Uuid => SqlType::Uuid,
        D::JSONB => SqlType::Json,
        D::JSON => SqlType::JsonText,
        D::Array(_) if let Some(element) = array_element(dt) => array_of(sql_type(element)?),
        D::Custom(name, _) => {
            let n = name.to_string().to_lowercase();
            match n.as_str() {
                "timestamptz" => SqlType::TimestampTz,
                "serial" | "serial4" => SqlType::Int32,
                "bigserial" | "serial8" => SqlType::Int64,
                "smallserial" | "serial2" => SqlType::Int16,
                "float" => SqlType::Float64,
                _ => {
                    return Err(user_error(
                        SqlState::UNDEFINED_OBJECT,
                        format!("type \"{n}\" does not exist"),
                    ));
                }
            }
        }
        other => {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("type {other} is not supported"),
            ));
        }
    })
}

/// The element type of an array type as the parser reads it (`int[]`, `ARRAY<int>`).
pub fn array_element(dt: &ast::DataType) -> Option<&ast::DataType> {
    match dt {
        ast::DataType::Array(
            ast::ArrayElemTypeDef::SquareBracket(element, _)
            | ast::ArrayElemTypeDef::AngleBracket(element)
            | ast::ArrayElemTypeDef::Parenthesis(element),
        ) => Some(element),
        _ => None,
    }
}

/// The array type of `element`. As in PostgreSQL, `integer[][]` is the same type as
/// `integer[]`: the declared number of dimensions is not enforced.
pub fn array_of(element: SqlType) -> SqlType {
    match element {
        SqlType::Array(_) => element,
        other => SqlType::Array(Box::new(other)),
    }
}

fn numeric(p: u64, s: i64) -> Result<SqlType> {
    if p == 0 || p > NUMERIC_MAX_PRECISION as u64 {
        return Err(user_error(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("NUMERIC precision {p} must be between 1 and {NUMERIC_MAX_PRECISION}"),
        ));
    }
    if s < 0 || s as u64 > p {
        return Err(user_error(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("NUMERIC scale {s} must be between 0 and precision {p}"),
        ));
    }
    Ok(SqlType::Numeric {
        precision: p as u8,
        scale: s as i8,
    })
}
