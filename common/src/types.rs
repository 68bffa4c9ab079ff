//! `SqlType`: the column types the catalog knows.

use serde::{Deserialize, Serialize};

/// A column's SQL type as the catalog stores it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SqlType {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// NUMERIC(precision, scale); unconstrained NUMERIC is stored with the widest precision.
    Numeric {
        precision: u8,
        scale: i8,
    },
    Text,
    Varchar(Option<u32>),
    Char(u32),
    Bytea,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    /// jsonb: stored in canonical text form.
    Json,
    /// json: the text as given, checked to be JSON.
    JsonText,
    /// A type made with `CREATE TYPE … AS ENUM`: its catalog key, OID and labels in order.
    /// Values are stored as their label.
    Enum {
        name: String,
        oid: i64,
        labels: Vec<String>,
    },
    /// A one-dimensional array of the element type (`integer[]`); NULL elements allowed.
    Array(Box<SqlType>),
}

/// The Arrow field metadata key naming the PostgreSQL type of a text column whose type Arrow
/// cannot tell apart from text (`jsonb`, `json`, `uuid`), so the frontends send its real OID.
pub const PG_TYPE_METADATA: &str = "thunderdb.pg_type";

impl SqlType {
    /// The [`PG_TYPE_METADATA`] value of a column of this type, if it needs one.
    pub fn text_subtype(&self) -> Option<&'static str> {
        match self {
            SqlType::Json => Some("jsonb"),
            SqlType::JsonText => Some("json"),
            SqlType::Uuid => Some("uuid"),
            _ => None,
        }
    }

    /// smallint, integer or bigint: what AUTO_INCREMENT, identity columns and sequences take.
    pub fn is_integer(&self) -> bool {
        matches!(self, SqlType::Int16 | SqlType::Int32 | SqlType::Int64)
    }

    /// The name PostgreSQL's `format_type` prints.
    pub fn pg_name(&self) -> String {
        match self {
            SqlType::Bool => "boolean".into(),
            SqlType::Int16 => "smallint".into(),
            SqlType::Int32 => "integer".into(),
            SqlType::Int64 => "bigint".into(),
            SqlType::Float32 => "real".into(),
            SqlType::Float64 => "double precision".into(),
            SqlType::Numeric { precision, scale } => {
                if *precision == NUMERIC_MAX_PRECISION && *scale == NUMERIC_DEFAULT_SCALE {
                    "numeric".into()
                } else {
                    format!("numeric({precision},{scale})")
                }
            }
            SqlType::Text => "text".into(),
            SqlType::Varchar(None) => "character varying".into(),
            SqlType::Varchar(Some(n)) => format!("character varying({n})"),
            SqlType::Char(n) => format!("character({n})"),
            SqlType::Bytea => "bytea".into(),
            SqlType::Date => "date".into(),
            SqlType::Time => "time without time zone".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::TimestampTz => "timestamp with time zone".into(),
            SqlType::Interval => "interval".into(),
            SqlType::Uuid => "uuid".into(),
            SqlType::Json => "jsonb".into(),
            SqlType::JsonText => "json".into(),
            SqlType::Enum { name, .. } => name.rsplit('.').next().unwrap_or(name).to_string(),
            SqlType::Array(element) => format!("{}[]", element.pg_name()),
        }
    }
}

/// Precision used for NUMERIC without a type modifier (Arrow's Decimal128 maximum).
pub const NUMERIC_MAX_PRECISION: u8 = 38;
/// Scale used for NUMERIC without a type modifier.
pub const NUMERIC_DEFAULT_SCALE: i8 = 10;
