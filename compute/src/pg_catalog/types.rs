//! PostgreSQL's built-in types as `pg_type` lists them, the type OID and modifier of each
//! ThunderDB column type, and `format_type`.

use super::model::{C_COLLATION, DEFAULT_COLLATION};
use thunderdb_common::SqlType;

/// PostgreSQL type OIDs.
pub mod oids {
    pub const BOOL: i64 = 16;
    pub const BYTEA: i64 = 17;
    pub const CHAR: i64 = 18;
    pub const NAME: i64 = 19;
    pub const INT8: i64 = 20;
    pub const INT2: i64 = 21;
    pub const INT2VECTOR: i64 = 22;
    pub const INT4: i64 = 23;
    pub const REGPROC: i64 = 24;
    pub const TEXT: i64 = 25;
    pub const OID: i64 = 26;
    pub const XID: i64 = 28;
    pub const OIDVECTOR: i64 = 30;
    pub const JSON: i64 = 114;
    pub const PG_NODE_TREE: i64 = 194;
    pub const FLOAT4: i64 = 700;
    pub const FLOAT8: i64 = 701;
    pub const UNKNOWN: i64 = 705;
    pub const ACLITEM: i64 = 1033;
    pub const BPCHAR: i64 = 1042;
    pub const VARCHAR: i64 = 1043;
    pub const DATE: i64 = 1082;
    pub const TIME: i64 = 1083;
    pub const TIMESTAMP: i64 = 1114;
    pub const TIMESTAMPTZ: i64 = 1184;
    pub const INTERVAL: i64 = 1186;
    pub const NUMERIC: i64 = 1700;
    pub const REGCLASS: i64 = 2205;
    pub const REGTYPE: i64 = 2206;
    pub const RECORD: i64 = 2249;
    pub const VOID: i64 = 2278;
    pub const UUID: i64 = 2950;
    pub const JSONB: i64 = 3802;
    pub const REGNAMESPACE: i64 = 4089;
    pub const REGROLE: i64 = 4096;
}

/// A built-in type as `pg_type` describes it.
pub struct PgType {
    pub oid: i64,
    pub name: &'static str,
    /// What `format_type` prints without a type modifier.
    pub display: &'static str,
    pub len: i16,
    pub byval: bool,
    pub category: &'static str,
    pub preferred: bool,
    pub align: &'static str,
    pub storage: &'static str,
    pub collation: i64,
    /// The array type whose elements are this type (0 for none).
    pub array: i64,
    /// For an array type, its element type.
    pub elem: i64,
    pub pseudo: bool,
}

const fn base(
    oid: i64,
    name: &'static str,
    display: &'static str,
    len: i16,
    category: &'static str,
    align: &'static str,
    array: i64,
) -> PgType {
    PgType {
        oid,
        name,
        display,
        len,
        byval: len > 0 && len <= 8,
        category,
        preferred: false,
        align,
        storage: if len > 0 { "p" } else { "x" },
        collation: 0,
        array,
        elem: 0,
        pseudo: false,
    }
}

const fn preferred(mut t: PgType) -> PgType {
    t.preferred = true;
    t
}

const fn collatable(mut t: PgType, collation: i64) -> PgType {
    t.collation = collation;
    t
}

const fn stored(mut t: PgType, storage: &'static str) -> PgType {
    t.storage = storage;
    t
}

const fn pseudo(oid: i64, name: &'static str) -> PgType {
    let mut t = base(oid, name, name, 4, "P", "i", 0);
    t.pseudo = true;
    t
}

/// The base types; their array types are derived from them (`_int4` for `int4`).
pub const BASE_TYPES: &[PgType] = &[
    preferred(base(oids::BOOL, "bool", "boolean", 1, "B", "c", 1000)),
    base(oids::BYTEA, "bytea", "bytea", -1, "U", "i", 1001),
    base(oids::CHAR, "char", "\"char\"", 1, "Z", "c", 1002),
    collatable(
        base(oids::NAME, "name", "name", 64, "S", "c", 1003),
        C_COLLATION,
    ),
    base(oids::INT8, "int8", "bigint", 8, "N", "d", 1016),
    base(oids::INT2, "int2", "smallint", 2, "N", "s", 1005),
    base(
        oids::INT2VECTOR,
        "int2vector",
        "int2vector",
        -1,
        "A",
        "i",
        1006,
    ),
    base(oids::INT4, "int4", "integer", 4, "N", "i", 1007),
    base(oids::REGPROC, "regproc", "regproc", 4, "N", "i", 1008),
    preferred(collatable(
        base(oids::TEXT, "text", "text", -1, "S", "i", 1009),
        DEFAULT_COLLATION,
    )),
    preferred(base(oids::OID, "oid", "oid", 4, "N", "i", 1028)),
    base(oids::XID, "xid", "xid", 4, "U", "i", 1011),
    base(
        oids::OIDVECTOR,
        "oidvector",
        "oidvector",
        -1,
        "A",
        "i",
        1013,
    ),
    base(oids::JSON, "json", "json", -1, "U", "i", 199),
    collatable(
        base(
            oids::PG_NODE_TREE,
            "pg_node_tree",
            "pg_node_tree",
            -1,
            "Z",
            "i",
            0,
        ),
        DEFAULT_COLLATION,
    ),
    base(oids::FLOAT4, "float4", "real", 4, "N", "i", 1021),
    preferred(base(
        oids::FLOAT8,
        "float8",
        "double precision",
        8,
        "N",
        "d",
        1022,
    )),
    base(oids::ACLITEM, "aclitem", "aclitem", 16, "U", "d", 1034),
    collatable(
        base(oids::BPCHAR, "bpchar", "character", -1, "S", "i", 1014),
        DEFAULT_COLLATION,
    ),
    collatable(
        base(
            oids::VARCHAR,
            "varchar",
            "character varying",
            -1,
            "S",
            "i",
            1015,
        ),
        DEFAULT_COLLATION,
    ),
    base(oids::DATE, "date", "date", 4, "D", "i", 1182),
    base(
        oids::TIME,
        "time",
        "time without time zone",
        8,
        "D",
        "d",
        1183,
    ),
    base(
        oids::TIMESTAMP,
        "timestamp",
        "timestamp without time zone",
        8,
        "D",
        "d",
        1115,
    ),
    preferred(base(
        oids::TIMESTAMPTZ,
        "timestamptz",
        "timestamp with time zone",
        8,
        "D",
        "d",
        1185,
    )),
    preferred(base(
        oids::INTERVAL,
        "interval",
        "interval",
        16,
        "T",
        "d",
        1187,
    )),
    stored(
        base(oids::NUMERIC, "numeric", "numeric", -1, "N", "i", 1231),
        "m",
    ),
    base(oids::REGCLASS, "regclass", "regclass", 4, "N", "i", 2210),
    base(oids::REGTYPE, "regtype", "regtype", 4, "N", "i", 2211),
    base(oids::UUID, "uuid", "uuid", 16, "U", "c", 2951),
    base(oids::JSONB, "jsonb", "jsonb", -1, "U", "i", 3807),
    base(
        oids::REGNAMESPACE,
        "regnamespace",
        "regnamespace",
        4,
        "N",
        "i",
        4090,
    ),
    base(oids::REGROLE, "regrole", "regrole", 4, "N", "i", 4097),
    pseudo(oids::UNKNOWN, "unknown"),
    pseudo(oids::RECORD, "record"),
    pseudo(oids::VOID, "void"),
];

/// Every type: the base types and their array types.
pub fn all_types() -> Vec<PgTypeRow> {
    let mut out = Vec::new();
    for t in BASE_TYPES {
        out.push(PgTypeRow {
            oid: t.oid,
            name: t.name.to_string(),
            len: t.len,
            byval: t.byval,
            kind: if t.pseudo { "p" } else { "b" },
            category: t.category,
            preferred: t.preferred,
            align: t.align,
            storage: t.storage,
            collation: t.collation,
            elem: t.elem,
            array: t.array,
        });
    }
    for t in BASE_TYPES.iter().filter(|t| t.array != 0) {
        out.push(PgTypeRow {
            oid: t.array,
            name: format!("_{}", t.name),
            len: -1,
            byval: false,
            kind: "b",
            category: "A",
            preferred: false,
            align: if t.align == "d" { "d" } else { "i" },
            storage: "x",
            collation: t.collation,
            elem: t.oid,
            array: 0,
        });
    }
    out
}

/// One row of `pg_type`.
pub struct PgTypeRow {
    pub oid: i64,
    pub name: String,
    pub len: i16,
    pub byval: bool,
    pub kind: &'static str,
    pub category: &'static str,
    pub preferred: bool,
    pub align: &'static str,
    pub storage: &'static str,
    pub collation: i64,
    pub elem: i64,
    pub array: i64,
}

/// `pg_type.typname` of a type.
pub fn type_name(oid: i64) -> Option<&'static str> {
    base_type(oid).map(|t| t.name)
}

fn base_type(oid: i64) -> Option<&'static PgType> {
    BASE_TYPES.iter().find(|t| t.oid == oid)
}

/// Whether `oid` is an array type.
pub fn is_array(oid: i64) -> bool {
    array_element(oid).is_some()
}

fn array_element(oid: i64) -> Option<&'static PgType> {
    BASE_TYPES.iter().find(|t| t.array == oid && oid != 0)
}

/// The type OID of a name as `'int4'::regtype` reads it (PostgreSQL's names and SQL spellings).
pub fn type_oid(name: &str) -> Option<i64> {
    let n = name.trim().to_lowercase();
    let n = n.strip_prefix("pg_catalog.").unwrap_or(&n);
    if let Some(elem) = n.strip_suffix("[]") {
        let t = type_oid(elem)?;
        return base_type(t).map(|b| b.array).filter(|a| *a != 0);
    }
    let alias = match n {
        "integer" | "int" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "boolean" => "bool",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "character varying" => "varchar",
        "character" => "bpchar",
        "decimal" => "numeric",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "\"char\"" => "char",
        other => other,
    };
    BASE_TYPES
        .iter()
        .find(|t| t.name == alias)
        .map(|t| t.oid)
        .or_else(|| {
            BASE_TYPES
                .iter()
                .find(|t| t.array != 0 && format!("_{}", t.name) == alias)
                .map(|t| t.array)
        })
}

/// The type OID PostgreSQL would give a value of Arrow type `dt` (what `pg_typeof` names).
pub fn arrow_type_oid(dt: &datafusion::arrow::datatypes::DataType) -> i64 {
    use datafusion::arrow::datatypes::DataType as A;
    match dt {
        A::Boolean => oids::BOOL,
        A::Int8 | A::Int16 | A::UInt8 => oids::INT2,
        A::Int32 | A::UInt16 => oids::INT4,
        A::Int64 | A::UInt32 => oids::INT8,
        A::UInt64 | A::Decimal32(..) | A::Decimal64(..) | A::Decimal128(..) | A::Decimal256(..) => {
            oids::NUMERIC
        }
        A::Float16 | A::Float32 => oids::FLOAT4,
        A::Float64 => oids::FLOAT8,
        A::Utf8 | A::LargeUtf8 | A::Utf8View => oids::TEXT,
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => oids::BYTEA,
        A::Date32 | A::Date64 => oids::DATE,
        A::Time32(_) | A::Time64(_) => oids::TIME,
        A::Timestamp(_, None) => oids::TIMESTAMP,
        A::Timestamp(_, Some(_)) => oids::TIMESTAMPTZ,
        A::Interval(_) | A::Duration(_) => oids::INTERVAL,
        A::Dictionary(_, value) => arrow_type_oid(value),
        A::List(f) | A::LargeList(f) | A::FixedSizeList(f, _) => {
            let elem = arrow_type_oid(f.data_type());
            base_type(elem).map(|t| t.array).unwrap_or(0)
        }
        A::Null => oids::UNKNOWN,
        _ => 0,
    }
}

/// The internal name of a type written in SQL (`integer` → `int4`), which PostgreSQL gives
/// an unnamed cast's column; `None` for a type the catalog does not know.
pub fn internal_name(dt: &datafusion::sql::sqlparser::ast::DataType) -> Option<&'static str> {
    let ty = match crate::types::sql_type(dt).ok()? {
        // `'{1}'::int[]` is named after the element type, as in PostgreSQL.
        SqlType::Array(element) => *element,
        ty => ty,
    };
    base_type(column_type(&ty).0).map(|t| t.name)
}

/// A column type as PostgreSQL stores it: type OID and type modifier.
pub fn column_type(ty: &SqlType) -> (i64, i32) {
    use thunderdb_common::types::{NUMERIC_DEFAULT_SCALE, NUMERIC_MAX_PRECISION};
    match ty {
        SqlType::Bool => (oids::BOOL, -1),
        SqlType::Int16 => (oids::INT2, -1),
        SqlType::Int32 => (oids::INT4, -1),
        SqlType::Int64 => (oids::INT8, -1),
        SqlType::Float32 => (oids::FLOAT4, -1),
        SqlType::Float64 => (oids::FLOAT8, -1),
        SqlType::Numeric { precision, scale } => {
            if *precision == NUMERIC_MAX_PRECISION && *scale == NUMERIC_DEFAULT_SCALE {
                (oids::NUMERIC, -1)
            } else {
                let typmod = ((i32::from(*precision) << 16) | i32::from(*scale as u8)) + 4;
                (oids::NUMERIC, typmod)
            }
        }
        SqlType::Text => (oids::TEXT, -1),
        SqlType::Varchar(None) => (oids::VARCHAR, -1),
        SqlType::Varchar(Some(n)) => (oids::VARCHAR, i32::try_from(*n).unwrap_or(i32::MAX - 4) + 4),
        SqlType::Char(n) => (oids::BPCHAR, i32::try_from(*n).unwrap_or(i32::MAX - 4) + 4),
        SqlType::Bytea => (oids::BYTEA, -1),
        SqlType::Date => (oids::DATE, -1),
        SqlType::Time => (oids::TIME, -1),
        SqlType::Timestamp => (oids::TIMESTAMP, -1),
        SqlType::TimestampTz => (oids::TIMESTAMPTZ, -1),
        SqlType::Interval => (oids::INTERVAL, -1),
        SqlType::Uuid => (oids::UUID, -1),
        SqlType::Json => (oids::JSONB, -1),
        SqlType::JsonText => (oids::JSON, -1),
        SqlType::Enum { oid, .. } => (*oid, -1),
        // An array keeps its element's modifier (`character varying(10)[]`).
        SqlType::Array(element) => {
            let (oid, typmod) = column_type(element);
            (base_type(oid).map_or(0, |t| t.array), typmod)
        }
    }
}

/// `format_type(oid, typmod)`: `None` for typmod means the SQL NULL PostgreSQL distinguishes
/// from -1 for `bpchar`.
pub fn format_type(oid: i64, typmod: Option<i32>) -> String {
    if oid == 0 {
        return "-".into();
    }
    if let Some(elem) = array_element(oid) {
        return format!("{}[]", format_type(elem.oid, typmod));
    }
    let Some(t) = base_type(oid) else {
        return "???".into();
    };
    let with_typmod = typmod.filter(|m| *m >= 0);
    match (oid, with_typmod) {
        (oids::BPCHAR, Some(m)) => format!("character({})", m - 4),
        (oids::BPCHAR, None) if typmod.is_some() => "bpchar".into(),
        (oids::VARCHAR, Some(m)) => format!("character varying({})", m - 4),
        (oids::NUMERIC, Some(m)) => {
            let m = m - 4;
            format!("numeric({},{})", (m >> 16) & 0xffff, m & 0xffff)
        }
        (oids::TIMESTAMP, Some(p)) => format!("timestamp({p}) without time zone"),
        (oids::TIMESTAMPTZ, Some(p)) => format!("timestamp({p}) with time zone"),
        (oids::TIME, Some(p)) => format!("time({p}) without time zone"),
        _ => t.display.into(),
    }
}

/// Storage facts of a column's type for `pg_attribute`: length, by value, alignment, storage.
pub fn type_storage(oid: i64) -> (i16, bool, &'static str, &'static str) {
    match base_type(oid) {
        Some(t) => (t.len, t.byval, t.align, t.storage),
        None => (-1, false, "i", "x"),
    }
}

/// The collation a column of this type gets.
pub fn type_collation(oid: i64) -> i64 {
    base_type(oid).map_or(0, |t| t.collation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_type_matches_postgres() {
        assert_eq!(format_type(oids::INT8, Some(-1)), "bigint");
        assert_eq!(
            format_type(oids::NUMERIC, Some(((10 << 16) | 2) + 4)),
            "numeric(10,2)"
        );
        assert_eq!(format_type(oids::NUMERIC, Some(-1)), "numeric");
        assert_eq!(
            format_type(oids::VARCHAR, Some(24)),
            "character varying(20)"
        );
        assert_eq!(format_type(oids::BPCHAR, None), "character");
        assert_eq!(format_type(oids::BPCHAR, Some(-1)), "bpchar");
        assert_eq!(
            format_type(oids::TIMESTAMPTZ, Some(-1)),
            "timestamp with time zone"
        );
        assert_eq!(format_type(1007, None), "integer[]");
        assert_eq!(format_type(0, None), "-");
        assert_eq!(format_type(123_456, None), "???");
    }

    #[test]
    fn column_typmods_match_postgres() {
        assert_eq!(
            column_type(&SqlType::Numeric {
                precision: 10,
                scale: 2
            }),
            (oids::NUMERIC, 655_366)
        );
        assert_eq!(
            column_type(&SqlType::Varchar(Some(20))),
            (oids::VARCHAR, 24)
        );
        assert_eq!(column_type(&SqlType::Char(3)), (oids::BPCHAR, 7));
    }

    #[test]
    fn type_names_resolve() {
        assert_eq!(type_oid("int4"), Some(oids::INT4));
        assert_eq!(type_oid("pg_catalog.text"), Some(oids::TEXT));
        assert_eq!(type_oid("integer[]"), Some(1007));
        assert_eq!(type_oid("_int8"), Some(1016));
        assert_eq!(type_oid("nope"), None);
    }
}
