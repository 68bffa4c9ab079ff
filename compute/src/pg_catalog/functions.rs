//! PostgreSQL's catalog functions (`format_type`, `pg_get_indexdef`, `pg_table_is_visible` …)
//! over the statement's catalog, and the `reg*` lookups and array helpers the rewrite turns
//! casts and sub-queries into.

use super::Shared;
use super::model::{self as m, Relation};
use crate::error::{to_df, user_error};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, ListArray, ListBuilder,
    StringArray, StringBuilder, UInt32Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use thunderdb_common::SqlState;

/// What an argument is coerced to; `None` keeps the caller's type.
type ArgType = Option<DataType>;

type Body = dyn Fn(&Shared, &[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync;

/// A scalar function of this module: its accepted argument lists and its body over arrays.
struct PgFunction {
    name: &'static str,
    signature: Signature,
    arities: Vec<Vec<ArgType>>,
    ret: Option<DataType>,
    body: Arc<Body>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgFunction({})", self.name)
    }
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for PgFunction {}

impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match &self.ret {
            Some(t) => t.clone(),
            None => arg_types.first().cloned().unwrap_or(DataType::Null),
        })
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let Some(targets) = self.arities.iter().find(|a| a.len() == arg_types.len()) else {
            return Err(to_df(user_error(
                SqlState::UNDEFINED_FUNCTION,
                format!(
                    "function {}({}) does not exist",
                    self.name,
                    vec!["unknown"; arg_types.len()].join(", ")
                ),
            )));
        };
        Ok(targets
            .iter()
            .zip(arg_types)
            .map(|(t, given)| t.clone().unwrap_or_else(|| given.clone()))
            .collect())
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<Vec<_>>>()?;
        Ok(ColumnarValue::Array((self.body)(
            &self.shared,
            &arrays,
            rows,
        )?))
    }
}

const OID: ArgType = Some(DataType::Int64);
const INT: ArgType = Some(DataType::Int64);
const TEXT: ArgType = Some(DataType::Utf8);
const BOOL: ArgType = Some(DataType::Boolean);
const ANY: ArgType = None;

fn register(
    ctx: &SessionContext,
    shared: &Arc<Shared>,
    name: &'static str,
    arities: Vec<Vec<ArgType>>,
    ret: Option<DataType>,
    body: impl Fn(&Shared, &[ArrayRef], usize) -> DfResult<ArrayRef> + Send + Sync + 'static,
) {
    let signature = if arities.iter().all(|a| a.is_empty()) {
        Signature::nullary(Volatility::Stable)
    } else {
        Signature::user_defined(Volatility::Stable)
    };
    ctx.register_udf(ScalarUDF::new_from_impl(PgFunction {
        name,
        signature,
        arities,
        ret,
        body: Arc::new(body),
        shared: shared.clone(),
    }));
}

fn int_at(a: &ArrayRef, row: usize) -> Option<i64> {
    let a = a.as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()?;
    (!a.is_null(row)).then(|| a.value(row))
}

fn text_at(a: &ArrayRef, row: usize) -> Option<&str> {
    let a = a.as_string_opt::<i32>()?;
    (!a.is_null(row)).then(|| a.value(row))
}

fn texts(rows: usize, f: impl FnMut(usize) -> Option<String>) -> DfResult<ArrayRef> {
    Ok(Arc::new((0..rows).map(f).collect::<StringArray>()))
}

fn bools(rows: usize, f: impl FnMut(usize) -> Option<bool>) -> DfResult<ArrayRef> {
    Ok(Arc::new((0..rows).map(f).collect::<BooleanArray>()))
}

fn oids(rows: usize, f: impl FnMut(usize) -> DfResult<Option<i64>>) -> DfResult<ArrayRef> {
    Ok(Arc::new(
        (0..rows).map(f).collect::<DfResult<Int64Array>>()?,
    ))
}

/// One value of a `json_build_object` argument in JSON (a key is always a string).
fn json_value(array: &ArrayRef, row: usize, key: bool) -> String {
    use datafusion::arrow::util::display::array_value_to_string;
    if array.is_null(row) {
        return "null".into();
    }
    let text = array_value_to_string(array, row).unwrap_or_default();
    let quoted = || {
        let mut out = String::new();
        thunderdb_common::json::quote(&text, &mut out);
        out
    };
    if key {
        return quoted();
    }
    match array.data_type() {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..) => text,
        _ => quoted(),
    }
}

/// `'name'::regclass` and friends: a number is taken as the OID itself.
fn lookup(
    text: &str,
    find: impl Fn(&str) -> Option<i64>,
    missing: impl Fn(&str) -> crate::error::Result<()>,
) -> DfResult<Option<i64>> {
    if let Ok(n) = text.trim().parse::<i64>() {
        return Ok(Some(n));
    }
    match find(text) {
        Some(oid) => Ok(Some(oid)),
        None => missing(text).map(|_| None).map_err(to_df),
    }
}

/// The functions clients and psql's meta-commands call.
pub fn register_all(ctx: &SessionContext, shared: &Arc<Shared>) {
    let utf8 = Some(DataType::Utf8);
    let boolean = Some(DataType::Boolean);
    let oid = Some(DataType::Int64);

    register(
        ctx,
        shared,
        "pg_table_is_visible",
        vec![vec![OID]],
        boolean.clone(),
        |s, a, n| {
            let v = s.view();
            bools(n, |r| int_at(&a[0], r).map(|o| v.is_visible(o)))
        },
    );
    register(
        ctx,
        shared,
        "pg_type_is_visible",
        vec![vec![OID]],
        boolean.clone(),
        |s, a, n| {
            let v = s.view();
            bools(n, |r| {
                int_at(&a[0], r).map(|o| {
                    super::types::format_type(o, None) != "???" || v.enum_type(o).is_some()
                })
            })
        },
    );
    // has_table_privilege([user,] table, 'SELECT, INSERT …'): whether any listed privilege is
    // held, the user and the table by name or OID. Column privileges are the table's.
    for name in ["has_table_privilege", "has_any_column_privilege"] {
        register(
            ctx,
            shared,
            name,
            vec![vec![ANY, TEXT], vec![ANY, ANY, TEXT]],
            boolean.clone(),
            |s, a, n| match a {
                [user, table, wanted] => relation_privileges(s, Some(user), table, wanted, n),
                [table, wanted] => relation_privileges(s, None, table, wanted, n),
                _ => unreachable!("arities checked"),
            },
        );
    }
    register(
        ctx,
        shared,
        "has_column_privilege",
        vec![vec![ANY, ANY, TEXT], vec![ANY, ANY, ANY, TEXT]],
        boolean.clone(),
        |s, a, n| match a {
            [user, table, _, wanted] => relation_privileges(s, Some(user), table, wanted, n),
            [table, _, wanted] => relation_privileges(s, None, table, wanted, n),
            _ => unreachable!("arities checked"),
        },
    );
    register(
        ctx,
        shared,
        "pg_get_userbyid",
        vec![vec![OID]],
        utf8.clone(),
        |s, a, n| {
            let v = s.view();
            texts(n, |r| {
                int_at(&a[0], r).map(|o| {
                    v.role_name(o)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("unknown (OID={o})"))
                })
            })
        },
    );
    register(
        ctx,
        shared,
        "format_type",
        vec![vec![OID, INT]],
        utf8.clone(),
        |s, a, n| {
            let v = s.view();
            texts(n, |r| {
                let typmod = int_at(&a[1], r).and_then(|t| i32::try_from(t).ok());
                int_at(&a[0], r).map(|o| {
                    // An enum type of the catalog, else a built-in one.
                    v.enum_type(o)
                        .map(|e| m::quote_ident(crate::catalog::split_relation_key(&e.name).1))
                        .unwrap_or_else(|| super::types::format_type(o, typmod))
                })
            })
        },
    );
    register(
        ctx,
        shared,
        "pg_typeof",
        vec![vec![ANY]],
        utf8.clone(),
        |_, a, n| {
            let name =
                super::types::format_type(super::types::arrow_type_oid(a[0].data_type()), None);
            texts(n, |_| Some(name.clone()))
        },
    );
    register(
        ctx,
        shared,
        "pg_get_indexdef",
        vec![vec![OID], vec![OID, INT, BOOL]],
        utf8.clone(),
        |s, a, n| {
            let v = s.view();
            texts(n, |r| {
                let Some(Relation::Index(idx)) = int_at(&a[0], r).and_then(|o| v.relation(o))
                else {
                    return None;
                };
                match a.get(1).and_then(|c| int_at(c, r)).unwrap_or(0) {
                    0 => Some(idx.definition()),
                    k => idx
                        .columns
                        .get(usize::try_from(k - 1).ok()?)
                        .map(|&c| m::quote_ident(&idx.table.columns[c].name)),
                }
            })
        },
    );
    register(
        ctx,
        shared,
        "pg_get_constraintdef",
        vec![vec![OID], vec![OID, BOOL]],
        utf8.clone(),
        |s, a, n| {
            let v = s.view();
            texts(n, |r| {
                int_at(&a[0], r)
                    .and_then(|o| v.constraint(o))
                    .map(|c| c.definition())
            })
        },
    );
    register(
        ctx,
        shared,
        "pg_get_viewdef",
        vec![vec![OID], vec![OID, BOOL], vec![OID, INT]],
        utf8.clone(),
        |s, a, n| {
            let v = s.view();
            texts(n, |r| match int_at(&a[0], r).and_then(|o| v.relation(o)) {
                Some(Relation::View(view)) => Some(format!(" {};", view.query)),
                _ => None,
            })
        },
    );
    // There are no triggers (pg_trigger is empty; foreign keys are not triggers here), and
    // PostgreSQL answers NULL for an OID that is not one.
    register(
        ctx,
        shared,
        "pg_get_triggerdef",
        vec![vec![OID], vec![OID, BOOL]],
        utf8.clone(),
        |_, _, n| texts(n, |_| None::<String>),
    );
    // Expressions are stored as SQL text, which is what pg_get_expr prints.
    register(
        ctx,
        shared,
        "pg_get_expr",
        vec![vec![TEXT, OID], vec![TEXT, OID, BOOL]],
        utf8.clone(),
        |_, a, n| texts(n, |r| text_at(&a[0], r).map(str::to_string)),
    );
    // ThunderDB has no COMMENT ON yet: every object's description is NULL.
    for name in ["obj_description", "col_description", "shobj_description"] {
        register(
            ctx,
            shared,
            name,
            vec![vec![OID], vec![OID, ANY]],
            utf8.clone(),
            |_, _, n| texts(n, |_| None),
        );
    }
    register(
        ctx,
        shared,
        "pg_get_statisticsobjdef_columns",
        vec![vec![OID]],
        utf8.clone(),
        |_, _, n| texts(n, |_| None),
    );
    register(
        ctx,
        shared,
        "pg_encoding_to_char",
        vec![vec![INT]],
        utf8.clone(),
        |_, a, n| {
            texts(n, |r| {
                int_at(&a[0], r).map(|e| match e {
                    0 => "SQL_ASCII".to_string(),
                    6 => "UTF8".to_string(),
                    _ => String::new(),
                })
            })
        },
    );
    register(
        ctx,
        shared,
        "current_schemas",
        vec![vec![BOOL]],
        Some(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Utf8,
            true,
        )))),
        |s, a, n| {
            let implicit = a[0].as_boolean();
            let path: Vec<String> = s
                .effective_search_path()
                .into_iter()
                .filter(|n| !n.starts_with("pg_temp_"))
                .collect();
            let mut lb = ListBuilder::new(StringBuilder::new());
            for r in 0..n {
                if implicit.is_null(r) {
                    lb.append(false);
                    continue;
                }
                if implicit.value(r) {
                    lb.values().append_value("pg_catalog");
                }
                for schema in &path {
                    lb.values().append_value(schema);
                }
                lb.append(true);
            }
            Ok(Arc::new(lb.finish()))
        },
    );
    // current_schema(): the first schema of search_path that exists.
    register(
        ctx,
        shared,
        "current_schema",
        vec![vec![]],
        utf8.clone(),
        |s, _, n| {
            let first = s
                .effective_search_path()
                .into_iter()
                .find(|n| !n.starts_with("pg_temp_"));
            texts(n, |_| first.clone())
        },
    );
    // Schemas and the database carry no privileges here: every role may use them.
    for (name, arities) in [
        (
            "has_schema_privilege",
            vec![vec![ANY, ANY], vec![ANY, ANY, ANY]],
        ),
        (
            "has_database_privilege",
            vec![vec![ANY, ANY], vec![ANY, ANY, ANY]],
        ),
    ] {
        register(ctx, shared, name, arities, boolean.clone(), |_, _, n| {
            bools(n, |_| Some(true))
        });
    }
    register(
        ctx,
        shared,
        "pg_backend_pid",
        vec![vec![]],
        Some(DataType::Int32),
        |_, _, n| {
            let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
            Ok(Arc::new(Int32Array::from(vec![pid; n])))
        },
    );
    register(
        ctx,
        shared,
        "pg_is_in_recovery",
        vec![vec![]],
        boolean.clone(),
        |_, _, n| bools(n, |_| Some(false)),
    );
    register(
        ctx,
        shared,
        "pg_relation_is_publishable",
        vec![vec![OID]],
        boolean.clone(),
        |s, a, n| {
            let v = s.view();
            bools(n, |r| {
                int_at(&a[0], r)
                    .and_then(|o| v.relation(o))
                    .map(|rel| matches!(rel, Relation::Table(_)))
            })
        },
    );
    // Sizes are not tracked per relation yet.
    for name in [
        "pg_table_size",
        "pg_relation_size",
        "pg_total_relation_size",
        "pg_indexes_size",
        "pg_database_size",
        "pg_tablespace_size",
    ] {
        register(
            ctx,
            shared,
            name,
            vec![vec![OID]],
            oid.clone(),
            |_, _, n| oids(n, |_| Ok(None)),
        );
    }
    register(
        ctx,
        shared,
        "pg_size_pretty",
        vec![vec![INT]],
        utf8.clone(),
        |_, a, n| texts(n, |r| int_at(&a[0], r).map(size_pretty)),
    );
    register(
        ctx,
        shared,
        "pg_tablespace_location",
        vec![vec![OID]],
        utf8.clone(),
        |_, a, n| texts(n, |r| int_at(&a[0], r).map(|_| String::new())),
    );
    register(
        ctx,
        shared,
        "pg_statistics_obj_is_visible",
        vec![vec![OID]],
        boolean.clone(),
        |_, _, n| bools(n, |_| None),
    );
    register(
        ctx,
        shared,
        "quote_ident",
        vec![vec![TEXT]],
        utf8.clone(),
        |_, a, n| texts(n, |r| text_at(&a[0], r).map(m::quote_ident)),
    );
    // PostgreSQL's int4 results, and NULL (not 0) for the dimensions of an empty array.
    // Arrays are one-dimensional and 1-based, so array_length is array_upper.
    for (name, upper) in [
        ("array_upper", true),
        ("array_lower", false),
        ("array_length", true),
    ] {
        register(
            ctx,
            shared,
            name,
            vec![vec![ANY, INT]],
            Some(DataType::Int32),
            move |_, a, n| array_bound(&a[0], &a[1], n, upper),
        );
    }
    register(
        ctx,
        shared,
        "cardinality",
        vec![vec![ANY]],
        Some(DataType::Int32),
        |_, a, n| Ok(Arc::new(Int32Array::from(list_lengths(&a[0], n)))),
    );
    register(
        ctx,
        shared,
        "array_ndims",
        vec![vec![ANY]],
        Some(DataType::Int32),
        |_, a, n| {
            let lens = list_lengths(&a[0], n);
            Ok(Arc::new(
                lens.iter()
                    .map(|l| l.filter(|l| *l > 0).map(|_| 1))
                    .collect::<Int32Array>(),
            ))
        },
    );
    register(
        ctx,
        shared,
        "array_dims",
        vec![vec![ANY]],
        utf8.clone(),
        |_, a, n| {
            let lens = list_lengths(&a[0], n);
            texts(n, |r| {
                lens[r].filter(|l| *l > 0).map(|l| format!("[1:{l}]"))
            })
        },
    );
    register(
        ctx,
        shared,
        "__thunder_regclass",
        vec![vec![TEXT]],
        oid.clone(),
        |s, a, n| {
            let v = s.view();
            oids(n, |r| match text_at(&a[0], r) {
                None => Ok(None),
                Some(t) => lookup(
                    t,
                    |x| v.relation_by_name(x),
                    |x| {
                        Err(user_error(
                            SqlState::UNDEFINED_TABLE,
                            format!("relation \"{x}\" does not exist"),
                        ))
                    },
                ),
            })
        },
    );
    register(
        ctx,
        shared,
        "to_regclass",
        vec![vec![TEXT]],
        oid.clone(),
        |s, a, n| {
            let v = s.view();
            oids(n, |r| {
                Ok(text_at(&a[0], r).and_then(|t| v.relation_by_name(t)))
            })
        },
    );
    register(
        ctx,
        shared,
        "__thunder_regclass_name",
        vec![vec![OID]],
        utf8.clone(),
        |s, a, n| {
            let v = s.view();
            texts(n, |r| {
                int_at(&a[0], r).map(|o| v.relation_name(o).unwrap_or_else(|| o.to_string()))
            })
        },
    );
    register(
        ctx,
        shared,
        "__thunder_regtype",
        vec![vec![TEXT]],
        oid.clone(),
        |_, a, n| {
            oids(n, |r| match text_at(&a[0], r) {
                None => Ok(None),
                Some(t) => lookup(t, super::types::type_oid, |x| {
                    Err(user_error(
                        SqlState::UNDEFINED_OBJECT,
                        format!("type \"{x}\" does not exist"),
                    ))
                }),
            })
        },
    );
    // `pg_get_serial_sequence('t', 'c')`: the sequence a SERIAL or identity column uses.
    register(
        ctx,
        shared,
        "pg_get_serial_sequence",
        vec![vec![TEXT, TEXT]],
        utf8.clone(),
        |s, a, n| {
            let v = s.view();
            texts(n, |r| {
                let table = text_at(&a[0], r)?;
                let column = text_at(&a[1], r)?;
                let table = m::split_qualified(table).1;
                let table = table.as_str();
                v.catalog
                    .sequences
                    .values()
                    .find(|q| {
                        q.owned_by
                            .as_ref()
                            .is_some_and(|(t, c)| *t == table && c == column)
                    })
                    .map(|q| format!("public.{}", m::quote_ident(&q.name)))
            })
        },
    );
    register(
        ctx,
        shared,
        "pg_collation_is_visible",
        vec![vec![OID]],
        boolean.clone(),
        |_, a, n| bools(n, |r| int_at(&a[0], r).map(|_| true)),
    );
    // json_build_object(k1, v1, …): JSON text of the pairs.
    register(
        ctx,
        shared,
        "json_build_object",
        (0..=8).map(|pairs| vec![ANY; pairs * 2]).collect(),
        utf8.clone(),
        |_, a, n| {
            texts(n, |r| {
                let mut out = String::from("{");
                for (k, pair) in a.chunks(2).enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&json_value(&pair[0], r, true));
                    out.push_str(" : ");
                    out.push_str(&json_value(&pair[1], r, false));
                }
                out.push('}');
                Some(out)
            })
        },
    );
    register(
        ctx,
        shared,
        "to_regtype",
        vec![vec![TEXT]],
        oid.clone(),
        |_, a, n| {
            oids(n, |r| {
                Ok(text_at(&a[0], r).and_then(|t| {
                    t.trim()
                        .parse::<i64>()
                        .ok()
                        .or_else(|| super::types::type_oid(t))
                }))
            })
        },
    );
    register(
        ctx,
        shared,
        "__thunder_regnamespace",
        vec![vec![TEXT]],
        oid.clone(),
        |s, a, n| {
            let v = s.view();
            oids(n, |r| match text_at(&a[0], r) {
                None => Ok(None),
                Some(t) => lookup(
                    t,
                    |x| v.namespace_oid(&m::split_qualified(x).1),
                    |x| {
                        Err(user_error(
                            SqlState::INVALID_SCHEMA_NAME,
                            format!("schema \"{x}\" does not exist"),
                        ))
                    },
                ),
            })
        },
    );
    register(
        ctx,
        shared,
        "__thunder_regnamespace_name",
        vec![vec![OID]],
        utf8.clone(),
        |s, a, n| {
            let v = s.view();
            texts(n, |r| {
                int_at(&a[0], r).map(|o| {
                    v.namespaces
                        .iter()
                        .find(|(oid, _)| *oid == o)
                        .map(|(_, name)| m::quote_ident(name))
                        .unwrap_or_else(|| o.to_string())
                })
            })
        },
    );
    register(
        ctx,
        shared,
        "__thunder_regrole",
        vec![vec![TEXT]],
        oid.clone(),
        |s, a, n| {
            let v = s.view();
            oids(n, |r| match text_at(&a[0], r) {
                None => Ok(None),
                Some(t) => lookup(
                    t,
                    |x| v.role_oid(&m::split_qualified(x).1),
                    |x| {
                        Err(user_error(
                            SqlState::UNDEFINED_OBJECT,
                            format!("role \"{x}\" does not exist"),
                        ))
                    },
                ),
            })
        },
    );
    register(
        ctx,
        shared,
        "__thunder_array_or_empty",
        vec![vec![ANY]],
        None,
        |_, a, _| array_or_empty(&a[0]),
    );
    register(
        ctx,
        shared,
        "__thunder_concat_elements",
        vec![vec![TEXT, ANY, TEXT]],
        Some(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Utf8,
            true,
        )))),
        |_, a, n| concat_elements(&a[0], &a[1], &a[2], n),
    );
    ctx.register_udaf(AggregateUDF::new_from_impl(
        super::planner::Single::default(),
    ));
}

/// PostgreSQL 15's `pg_size_pretty`: a unit is used below 10240 bytes or 20480 of the next
/// smaller unit, rounded half away from zero.
fn size_pretty(bytes: i64) -> String {
    const UNITS: [(&str, i64, bool, i32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    let mut size = bytes;
    let mut unit = 0;
    while let Some(next) = UNITS
        .get(unit + 1)
        .filter(|_| size.unsigned_abs() >= UNITS[unit].1.unsigned_abs())
    {
        let (_, _, round, bits) = UNITS[unit];
        size >>= next.3 - bits - i32::from(next.2) + i32::from(round);
        unit += 1;
    }
    let (name, _, round, _) = UNITS[unit];
    if round {
        size = half_rounded(size);
    }
    format!("{size} {name}")
}

/// `has_table_privilege` and the column forms: whether `user` (the session's when `None`)
/// holds any privilege listed in `wanted` on `table`.
fn relation_privileges(
    s: &Shared,
    user: Option<&ArrayRef>,
    table: &ArrayRef,
    wanted: &ArrayRef,
    n: usize,
) -> DfResult<ArrayRef> {
    let v = s.view();
    let name_or_oid = |arr: &ArrayRef, r: usize| -> DfResult<Option<Result<String, i64>>> {
        if let Some(t) = arr.as_string_opt::<i32>() {
            return Ok((!t.is_null(r)).then(|| Ok(t.value(r).to_string())));
        }
        let ints = cast(arr, &DataType::Int64)?;
        Ok(int_at(&ints, r).map(Err))
    };
    let mut out = Vec::with_capacity(n);
    for r in 0..n {
        let role = match user.map(|u| name_or_oid(u, r)).transpose()?.flatten() {
            None if user.is_some() => {
                out.push(None);
                continue;
            }
            None => v.roles.iter().find(|x| x.name == s.user),
            Some(Ok(name)) => v.roles.iter().find(|x| x.name == name),
            Some(Err(oid)) => v.roles.iter().find(|x| x.oid == oid),
        };
        let (Some(relation), Some(wanted)) = (name_or_oid(table, r)?, text_at(wanted, r)) else {
            out.push(None);
            continue;
        };
        let Some(role) = role else {
            return Err(to_df(user_error(
                SqlState::UNDEFINED_OBJECT,
                "role does not exist",
            )));
        };
        let oid = match relation {
            Ok(name) => v.relation_by_name(&name).ok_or_else(|| {
                to_df(user_error(
                    SqlState::UNDEFINED_TABLE,
                    format!("relation \"{name}\" does not exist"),
                ))
            })?,
            Err(oid) => oid,
        };
        let bits = crate::privileges::parse_privilege_list(wanted).map_err(to_df)?;
        out.push(Some(match v.relation(oid) {
            Some(Relation::Table(d)) => privileged(&v, &d.name, role, bits),
            Some(Relation::View(d)) => privileged(&v, &d.name, role, bits),
            Some(Relation::Sequence(d)) => privileged(&v, &d.name, role, bits),
            // System catalogs are readable by everyone.
            Some(Relation::System { .. }) => bits & crate::privileges::SELECT != 0,
            Some(Relation::Index(_)) | None => false,
        }));
    }
    Ok(Arc::new(BooleanArray::from(out)))
}

/// Whether `role` holds any of `bits` on the relation keyed `key`.
fn privileged(
    v: &super::CatalogView,
    key: &str,
    role: &crate::catalog::RoleDef,
    bits: u16,
) -> bool {
    let Some(kind) = crate::privileges::kind(&v.catalog, key) else {
        return false;
    };
    crate::privileges::LETTERS.iter().any(|(_, bit)| {
        bits & bit != 0 && crate::privileges::holds(&v.catalog, key, kind, role, *bit)
    })
}

/// `array_upper(a, 1)` / `array_lower(a, 1)` of a one-dimensional array (1-based).
fn array_bound(list: &ArrayRef, dim: &ArrayRef, n: usize, upper: bool) -> DfResult<ArrayRef> {
    let lens = list_lengths(list, n);
    Ok(Arc::new(
        (0..n)
            .map(|r| {
                let len = lens[r].filter(|l| *l > 0)?;
                (int_at(dim, r)? == 1).then_some(if upper { len } else { 1 })
            })
            .collect::<Int32Array>(),
    ))
}

/// The number of elements of each of `n` lists; NULL for a NULL list or a value that is none.
fn list_lengths(list: &ArrayRef, n: usize) -> Vec<Option<i32>> {
    match list.data_type() {
        DataType::List(_) => {
            let l = list.as_list::<i32>();
            (0..n)
                .map(|r| (!l.is_null(r)).then(|| l.value_length(r)))
                .collect()
        }
        DataType::LargeList(_) => {
            let l = list.as_list::<i64>();
            (0..n)
                .map(|r| (!l.is_null(r)).then(|| i32::try_from(l.value_length(r)).unwrap_or(0)))
                .collect()
        }
        _ => vec![None; n],
    }
}

/// `prefix || x || suffix` for each element `x` of a text array; an empty array for NULL, as
/// `ARRAY(SELECT … FROM unnest(NULL))` gives.
fn concat_elements(
    prefix: &ArrayRef,
    list: &ArrayRef,
    suffix: &ArrayRef,
    n: usize,
) -> DfResult<ArrayRef> {
    let mut lb = ListBuilder::new(StringBuilder::new());
    let lists = match list.data_type() {
        DataType::List(_) => Some(list.as_list::<i32>()),
        _ => None,
    };
    for r in 0..n {
        if let Some(l) = lists.filter(|l| !l.is_null(r)) {
            let values = cast(&l.value(r), &DataType::Utf8)?;
            let values = values.as_string::<i32>();
            for k in 0..values.len() {
                match (text_at(prefix, r), values.is_null(k), text_at(suffix, r)) {
                    (Some(p), false, Some(s)) => lb
                        .values()
                        .append_value(format!("{p}{}{s}", values.value(k))),
                    _ => lb.values().append_null(),
                }
            }
        }
        lb.append(true);
    }
    Ok(Arc::new(lb.finish()))
}

/// A NULL list (from `array_agg` over no rows) as the empty list `ARRAY(sub-query)` gives.
fn array_or_empty(a: &ArrayRef) -> DfResult<ArrayRef> {
    let DataType::List(field) = a.data_type() else {
        return Ok(a.clone());
    };
    let list = a.as_list::<i32>();
    let mut indices = Vec::new();
    let mut offsets = vec![0i32];
    for r in 0..list.len() {
        if !list.is_null(r) {
            let start = list.value_offsets()[r];
            let end = list.value_offsets()[r + 1];
            indices.extend((start..end).map(|i| u32::try_from(i).unwrap_or(u32::MAX)));
        }
        offsets.push(i32::try_from(indices.len()).unwrap_or(i32::MAX));
    }
    let values = take(list.values(), &UInt32Array::from(indices), None)?;
    Ok(Arc::new(ListArray::try_new(
        field.clone(),
        OffsetBuffer::new(offsets.into()),
        values,
        None,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_postgres() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(8192 * 1024), "8192 kB");
        assert_eq!(size_pretty(20 * 1024 * 1024), "20 MB");
        assert_eq!(size_pretty(-10240), "-10 kB");
        assert_eq!(size_pretty(i64::MIN), "-8192 PB");
    }
}
