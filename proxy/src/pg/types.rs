//! Which PostgreSQL type a client sees for each Arrow type, and back.

use pgwire::api::Type;
use pgwire::api::results::{FieldFormat, FieldInfo};
use thunderdb_common::types::{NUMERIC_DEFAULT_SCALE, NUMERIC_MAX_PRECISION};
use thunderdb_compute::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};

/// Type OIDs from PostgreSQL's `pg_type.dat`.
pub(crate) mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;

    pub const BOOL_ARRAY: u32 = 1000;
    pub const BYTEA_ARRAY: u32 = 1001;
    pub const INT2_ARRAY: u32 = 1005;
    pub const INT4_ARRAY: u32 = 1007;
    pub const TEXT_ARRAY: u32 = 1009;
    pub const BPCHAR_ARRAY: u32 = 1014;
    pub const VARCHAR_ARRAY: u32 = 1015;
    pub const INT8_ARRAY: u32 = 1016;
    pub const FLOAT4_ARRAY: u32 = 1021;
    pub const FLOAT8_ARRAY: u32 = 1022;
    pub const TIMESTAMP_ARRAY: u32 = 1115;
    pub const DATE_ARRAY: u32 = 1182;
    pub const TIME_ARRAY: u32 = 1183;
    pub const TIMESTAMPTZ_ARRAY: u32 = 1185;
    pub const INTERVAL_ARRAY: u32 = 1187;
    pub const NUMERIC_ARRAY: u32 = 1231;
    pub const UUID_ARRAY: u32 = 2951;
    pub const JSON_ARRAY: u32 = 199;
    pub const JSONB_ARRAY: u32 = 3807;
}

/// The PostgreSQL scalar type an Arrow value is shown as.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum PgScalar {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bytea,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    /// Text columns the engine tags with their PostgreSQL type.
    Json,
    Jsonb,
    Uuid,
}

impl PgScalar {
    pub(crate) fn oid(self) -> u32 {
        match self {
            PgScalar::Bool => oid::BOOL,
            PgScalar::Int2 => oid::INT2,
            PgScalar::Int4 => oid::INT4,
            PgScalar::Int8 => oid::INT8,
            PgScalar::Float4 => oid::FLOAT4,
            PgScalar::Float8 => oid::FLOAT8,
            PgScalar::Numeric => oid::NUMERIC,
            PgScalar::Text => oid::TEXT,
            PgScalar::Bytea => oid::BYTEA,
            PgScalar::Date => oid::DATE,
            PgScalar::Time => oid::TIME,
            PgScalar::Timestamp => oid::TIMESTAMP,
            PgScalar::TimestampTz => oid::TIMESTAMPTZ,
            PgScalar::Interval => oid::INTERVAL,
            PgScalar::Json => oid::JSON,
            PgScalar::Jsonb => oid::JSONB,
            PgScalar::Uuid => oid::UUID,
        }
    }

    fn array_oid(self) -> u32 {
        match self {
            PgScalar::Bool => oid::BOOL_ARRAY,
            PgScalar::Int2 => oid::INT2_ARRAY,
            PgScalar::Int4 => oid::INT4_ARRAY,
            PgScalar::Int8 => oid::INT8_ARRAY,
            PgScalar::Float4 => oid::FLOAT4_ARRAY,
            PgScalar::Float8 => oid::FLOAT8_ARRAY,
            PgScalar::Numeric => oid::NUMERIC_ARRAY,
            PgScalar::Text => oid::TEXT_ARRAY,
            PgScalar::Bytea => oid::BYTEA_ARRAY,
            PgScalar::Date => oid::DATE_ARRAY,
            PgScalar::Time => oid::TIME_ARRAY,
            PgScalar::Timestamp => oid::TIMESTAMP_ARRAY,
            PgScalar::TimestampTz => oid::TIMESTAMPTZ_ARRAY,
            PgScalar::Interval => oid::INTERVAL_ARRAY,
            PgScalar::Json => oid::JSON_ARRAY,
            PgScalar::Jsonb => oid::JSONB_ARRAY,
            PgScalar::Uuid => oid::UUID_ARRAY,
        }
    }

    /// `pg_type.typlen`: the fixed width, or -1 for variable-width types.
    fn typlen(self) -> i16 {
        match self {
            PgScalar::Bool => 1,
            PgScalar::Int2 => 2,
            PgScalar::Int4 | PgScalar::Float4 | PgScalar::Date => 4,
            PgScalar::Int8
            | PgScalar::Float8
            | PgScalar::Time
            | PgScalar::Timestamp
            | PgScalar::TimestampTz => 8,
            PgScalar::Interval | PgScalar::Uuid => 16,
            PgScalar::Numeric
            | PgScalar::Text
            | PgScalar::Bytea
            | PgScalar::Json
            | PgScalar::Jsonb => -1,
        }
    }
}

/// How a column of some Arrow type goes over the wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum PgColumnType {
    Scalar(PgScalar),
    /// A one- or more-dimensional array of the scalar (nested Arrow lists are dimensions).
    Array(PgScalar),
    /// No PostgreSQL counterpart: sent as `text` with Arrow's display of the value.
    Display,
}

impl PgColumnType {
    pub(crate) fn oid(self) -> u32 {
        match self {
            PgColumnType::Scalar(s) => s.oid(),
            PgColumnType::Array(s) => s.array_oid(),
            PgColumnType::Display => oid::TEXT,
        }
    }

    fn typlen(self) -> i16 {
        match self {
            PgColumnType::Scalar(s) => s.typlen(),
            PgColumnType::Array(_) | PgColumnType::Display => -1,
        }
    }
}

/// The scalar PostgreSQL type of an Arrow scalar type, or `None` when it has none.
pub(crate) fn pg_scalar(dt: &DataType) -> Option<PgScalar> {
    Some(match dt {
        DataType::Boolean => PgScalar::Bool,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgScalar::Int2,
        DataType::Int32 | DataType::UInt16 => PgScalar::Int4,
        DataType::Int64 | DataType::UInt32 => PgScalar::Int8,
        // No unsigned 64-bit integer type in PostgreSQL; numeric holds every value.
        DataType::UInt64 => PgScalar::Numeric,
        DataType::Float16 | DataType::Float32 => PgScalar::Float4,
        DataType::Float64 => PgScalar::Float8,
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => PgScalar::Numeric,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            PgScalar::Text
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => PgScalar::Bytea,
        DataType::Date32 | DataType::Date64 => PgScalar::Date,
        DataType::Time32(_) | DataType::Time64(_) => PgScalar::Time,
        DataType::Timestamp(_, None) => PgScalar::Timestamp,
        DataType::Timestamp(_, Some(_)) => PgScalar::TimestampTz,
        DataType::Interval(_) | DataType::Duration(_) => PgScalar::Interval,
        DataType::Dictionary(_, value) => return pg_scalar(value),
        _ => return None,
    })
}

/// The element field of an Arrow list type.
pub(crate) fn list_element(dt: &DataType) -> Option<&Field> {
    match dt {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => Some(f),
        _ => None,
    }
}

/// The wire type of a column of Arrow type `dt`.
pub(crate) fn pg_column_type(dt: &DataType) -> PgColumnType {
    if let Some(scalar) = pg_scalar(dt) {
        return PgColumnType::Scalar(scalar);
    }
    // PostgreSQL arrays are rectangular and typed by their innermost element.
    let mut inner = dt;
    while let Some(element) = list_element(inner) {
        inner = element.data_type();
    }
    if inner != dt
        && let Some(scalar) = pg_scalar(inner)
    {
        return PgColumnType::Array(scalar);
    }
    PgColumnType::Display
}

/// The wire type of a result field: its Arrow type, unless the engine tagged a text field with
/// its PostgreSQL type (jsonb, json, uuid).
pub(crate) fn pg_field_type(field: &Field) -> PgColumnType {
    // An array of a tagged type carries the tag on its element field.
    if let Some(element) = list_element(field.data_type())
        && let PgColumnType::Scalar(scalar) = pg_field_type(element)
    {
        return PgColumnType::Array(scalar);
    }
    let tagged = field
        .metadata()
        .get(thunderdb_common::types::PG_TYPE_METADATA)
        .and_then(|t| match t.as_str() {
            "jsonb" => Some(PgScalar::Jsonb),
            "json" => Some(PgScalar::Json),
            "uuid" => Some(PgScalar::Uuid),
            _ => None,
        });
    match (tagged, pg_column_type(field.data_type())) {
        (Some(t), PgColumnType::Scalar(PgScalar::Text)) => PgColumnType::Scalar(t),
        (_, other) => other,
    }
}

/// `pg_attribute.atttypmod` for a column: `numeric(p, s)` carries its precision and scale so
/// that JDBC and friends report the right scale; everything else has none.
fn typmod(dt: &DataType) -> i32 {
    let (precision, scale) = match dt {
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
            (*p, *s)
        }
        DataType::Decimal256(p, s) => (*p, *s),
        _ => return -1,
    };
    // Unconstrained NUMERIC is stored with the widest precision and default scale.
    if scale < 0 || (precision == NUMERIC_MAX_PRECISION && scale == NUMERIC_DEFAULT_SCALE) {
        return -1;
    }
    ((i32::from(precision) << 16) | i32::from(scale)) + 4
}

/// The `RowDescription` entry for an Arrow field sent in `format`.
pub(crate) fn field_info(field: &Field, format: FieldFormat) -> FieldInfo {
    let dt = field.data_type();
    let column = pg_field_type(field);
    let pg_type = Type::from_oid(column.oid()).unwrap_or(Type::TEXT);
    FieldInfo::new(field.name().clone(), None, None, pg_type, format)
        .with_type_size(column.typlen())
        .with_type_modifier(typmod(dt))
}

/// The Arrow type the engine should assume for a parameter the client declared with `type_oid`
/// in `Parse`, or `None` to let the engine infer it (OID 0, `unknown`, or a type we do not map).
pub(crate) fn arrow_type_of_oid(type_oid: u32) -> Option<DataType> {
    let element = |oid: u32| arrow_type_of_oid(oid).map(|dt| DataType::new_list(dt, true));
    Some(match type_oid {
        oid::BOOL => DataType::Boolean,
        oid::INT2 => DataType::Int16,
        oid::INT4 => DataType::Int32,
        oid::INT8 => DataType::Int64,
        oid::OID => DataType::Int64,
        oid::FLOAT4 => DataType::Float32,
        oid::FLOAT8 => DataType::Float64,
        oid::NUMERIC => DataType::Decimal128(NUMERIC_MAX_PRECISION, NUMERIC_DEFAULT_SCALE),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::UUID | oid::JSON | oid::JSONB => {
            DataType::Utf8
        }
        oid::BYTEA => DataType::Binary,
        oid::DATE => DataType::Date32,
        oid::TIME => DataType::Time64(TimeUnit::Microsecond),
        oid::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        oid::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        oid::INTERVAL => DataType::Interval(IntervalUnit::MonthDayNano),
        oid::BOOL_ARRAY => return element(oid::BOOL),
        oid::INT2_ARRAY => return element(oid::INT2),
        oid::INT4_ARRAY => return element(oid::INT4),
        oid::INT8_ARRAY => return element(oid::INT8),
        oid::FLOAT4_ARRAY => return element(oid::FLOAT4),
        oid::FLOAT8_ARRAY => return element(oid::FLOAT8),
        oid::NUMERIC_ARRAY => return element(oid::NUMERIC),
        oid::TEXT_ARRAY
        | oid::VARCHAR_ARRAY
        | oid::BPCHAR_ARRAY
        | oid::UUID_ARRAY
        | oid::JSON_ARRAY
        | oid::JSONB_ARRAY => return element(oid::TEXT),
        oid::BYTEA_ARRAY => return element(oid::BYTEA),
        oid::DATE_ARRAY => return element(oid::DATE),
        oid::TIME_ARRAY => return element(oid::TIME),
        oid::TIMESTAMP_ARRAY => return element(oid::TIMESTAMP),
        oid::TIMESTAMPTZ_ARRAY => return element(oid::TIMESTAMPTZ),
        oid::INTERVAL_ARRAY => return element(oid::INTERVAL),
        _ => return None,
    })
}

/// The element type OID of an array type OID we decode, or `None` if `type_oid` is no array.
pub(crate) fn array_element_oid(type_oid: u32) -> Option<u32> {
    Some(match type_oid {
        oid::BOOL_ARRAY => oid::BOOL,
        oid::INT2_ARRAY => oid::INT2,
        oid::INT4_ARRAY => oid::INT4,
        oid::INT8_ARRAY => oid::INT8,
        oid::FLOAT4_ARRAY => oid::FLOAT4,
        oid::FLOAT8_ARRAY => oid::FLOAT8,
        oid::NUMERIC_ARRAY => oid::NUMERIC,
        oid::TEXT_ARRAY => oid::TEXT,
        oid::VARCHAR_ARRAY => oid::VARCHAR,
        oid::BPCHAR_ARRAY => oid::BPCHAR,
        oid::UUID_ARRAY => oid::UUID,
        oid::JSON_ARRAY => oid::JSON,
        oid::JSONB_ARRAY => oid::JSONB,
        oid::BYTEA_ARRAY => oid::BYTEA,
        oid::DATE_ARRAY => oid::DATE,
        oid::TIME_ARRAY => oid::TIME,
        oid::TIMESTAMP_ARRAY => oid::TIMESTAMP,
        oid::TIMESTAMPTZ_ARRAY => oid::TIMESTAMPTZ,
        oid::INTERVAL_ARRAY => oid::INTERVAL,
        _ => return None,
    })
}

/// The OID a parameter is described with: the client's declaration when we can decode it,
/// else the type the engine inferred.
pub(crate) fn parameter_oid(declared: Option<u32>, inferred: &DataType) -> u32 {
    match declared {
        Some(d) if d != 0 && d != oid::UNKNOWN && arrow_type_of_oid(d).is_some() => d,
        _ => pg_column_type(inferred).oid(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_map_to_postgres_oids() {
        let cases = [
            (DataType::Boolean, 16),
            (DataType::Int8, 21),
            (DataType::Int16, 21),
            (DataType::Int32, 23),
            (DataType::Int64, 20),
            (DataType::UInt8, 21),
            (DataType::UInt16, 23),
            (DataType::UInt32, 20),
            (DataType::UInt64, 1700),
            (DataType::Float16, 700),
            (DataType::Float32, 700),
            (DataType::Float64, 701),
            (DataType::Decimal128(10, 2), 1700),
            (DataType::Utf8, 25),
            (DataType::Utf8View, 25),
            (DataType::Null, 25),
            (DataType::LargeBinary, 17),
            (DataType::FixedSizeBinary(16), 17),
            (DataType::Date32, 1082),
            (DataType::Time64(TimeUnit::Nanosecond), 1083),
            (DataType::Timestamp(TimeUnit::Microsecond, None), 1114),
            (
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+05:30".into())),
                1184,
            ),
            (DataType::Interval(IntervalUnit::YearMonth), 1186),
            (DataType::new_list(DataType::Int64, true), 1016),
            (DataType::new_list(DataType::Utf8, true), 1009),
            (
                DataType::new_list(DataType::new_list(DataType::Int32, true), true),
                1007,
            ),
            (DataType::Struct(Default::default()), 25),
        ];
        for (dt, expected) in cases {
            assert_eq!(pg_column_type(&dt).oid(), expected, "{dt}");
        }
    }

    #[test]
    fn numeric_typmod_carries_precision_and_scale() {
        assert_eq!(typmod(&DataType::Decimal128(10, 2)), (10 << 16 | 2) + 4);
        assert_eq!(typmod(&DataType::Decimal128(38, 10)), -1);
        assert_eq!(typmod(&DataType::Int32), -1);
    }

    #[test]
    fn declared_oids_map_back() {
        assert_eq!(arrow_type_of_oid(23), Some(DataType::Int32));
        assert_eq!(arrow_type_of_oid(0), None);
        assert_eq!(
            arrow_type_of_oid(1016),
            Some(DataType::new_list(DataType::Int64, true))
        );
        assert_eq!(parameter_oid(Some(2950), &DataType::Utf8), 2950);
        assert_eq!(parameter_oid(Some(0), &DataType::Int64), 20);
        assert_eq!(parameter_oid(None, &DataType::Float64), 701);
    }
}
