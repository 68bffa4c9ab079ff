//! Enum types: `CREATE TYPE name AS ENUM (…)`, `ALTER TYPE … ADD VALUE | RENAME TO`,
//! `DROP TYPE`, columns of an enum type (values checked against the labels, 22P02 otherwise)
//! and casts to one (`'sad'::mood`). A column of an enum type carries the labels in its
//! `SqlType`, so a value is checked where every other column value is; a label added to the
//! type is written into each such column's definition in the same transaction.
//!
//! Values are stored and sent as their label text. PostgreSQL sorts and compares enums by
//! label position; here they compare as text (a documented difference).

use crate::catalog::{self, Catalog, EnumDef};
use crate::error::{Result, to_df, user_error};
use crate::session::{CommandTag, QueryOutput, Session};
use crate::sql::ident_name;
use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    self, AlterTypeAddValuePosition, AlterTypeOperation, DataType as SqlDataType, Expr, ObjectName,
    ObjectNamePart, UserDefinedTypeRepresentation, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;
use std::sync::Arc;
use thunderdb_common::{SqlState, SqlType};

fn written(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => ident_name(i),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The enum type `name` refers to: qualified, or found through `path`.
pub(crate) fn find<'c>(catalog: &'c Catalog, path: &[String], name: &str) -> Option<&'c EnumDef> {
    if let Some(def) = catalog.types.get(name) {
        return Some(def);
    }
    if name.contains('.') {
        let (schema, bare) = name.split_once('.')?;
        return catalog
            .types
            .get(&catalog::relation_key(schema, bare))
            .map(|d| d.as_ref());
    }
    path.iter()
        .filter_map(|s| catalog.types.get(&catalog::relation_key(s, name)))
        .next()
        .map(|d| d.as_ref())
}

/// The catalog type of a column declared as `dt`: an enum of the catalog, or a built-in type.
pub(crate) fn column_type(s: &Session, catalog: &Catalog, dt: &SqlDataType) -> Result<SqlType> {
    if let Some(element) = crate::types::array_element(dt) {
        return match column_type(s, catalog, element)? {
            SqlType::Enum { name, .. } => Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "arrays of enum type {} are not supported",
                    catalog::split_relation_key(&name).1
                ),
            )),
            element => Ok(crate::types::array_of(element)),
        };
    }
    if let SqlDataType::Custom(name, modifiers) = dt
        && modifiers.is_empty()
        && let Some(def) = find(catalog, &s.search_path(), &written(name))
    {
        return Ok(def.sql_type());
    }
    crate::types::sql_type(dt)
}

fn does_not_exist(name: &str) -> thunderdb_common::ThunderError {
    user_error(
        SqlState::UNDEFINED_OBJECT,
        format!("type \"{name}\" does not exist"),
    )
}

/// `CREATE TYPE name AS ENUM ('a', 'b')`.
pub(crate) async fn create_type(
    s: &mut Session,
    name: &ObjectName,
    representation: Option<UserDefinedTypeRepresentation>,
) -> Result<QueryOutput> {
    let labels = match representation {
        Some(UserDefinedTypeRepresentation::Enum { labels }) => labels,
        _ => {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                "only enum types (CREATE TYPE … AS ENUM) are supported",
            ));
        }
    };
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let key = crate::sql::object_name(name);
    env.view.depend_on_key(catalog::type_key(&key));
    let bare = catalog::split_relation_key(&key).1;
    if env.catalog.types.contains_key(&key) || crate::pg_catalog::type_oid_of_name(bare).is_some() {
        return Err(user_error(
            SqlState::DUPLICATE_OBJECT,
            format!("type \"{bare}\" already exists"),
        ));
    }
    let mut seen = Vec::new();
    for l in &labels {
        let label = l.value.clone();
        if label.len() > 63 {
            return Err(user_error(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("invalid enum label \"{label}\""),
            )
            .with_detail("Labels must be 63 bytes or less."));
        }
        if seen.contains(&label) {
            return Err(user_error(
                SqlState::UNIQUE_VIOLATION,
                format!("enum label \"{label}\" used more than once"),
            ));
        }
        seen.push(label);
    }
    let oid = crate::pg_catalog::relation_oid(catalog::allocate_table_id(&env.view).await?);
    catalog::put_type(
        &env.view,
        &EnumDef {
            oid,
            name: key,
            labels: seen,
        },
    )?;
    Ok(QueryOutput::Command(CommandTag::new("CREATE TYPE")))
}

/// Writes `def` and the definition of every column of its type (they carry its labels).
fn store(env: &crate::provider::StatementEnv, old_name: &str, def: &EnumDef) -> Result<()> {
    catalog::put_type(&env.view, def)?;
    for table in env.catalog.tables.values() {
        let mut changed = table.as_ref().clone();
        let mut touched = false;
        for c in &mut changed.columns {
            if matches!(&c.ty, SqlType::Enum { name, .. } if name == old_name) {
                c.ty = def.sql_type();
                touched = true;
            }
        }
        if touched {
            catalog::put_table(&env.view, &changed)?;
        }
    }
    Ok(())
}

/// `ALTER TYPE name ADD VALUE [IF NOT EXISTS] 'v' [BEFORE | AFTER 'w']` and `RENAME TO`.
pub(crate) async fn alter_type(s: &mut Session, alter: ast::AlterType) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let Some(def) = find(&env.catalog, &s.search_path(), &written(&alter.name)) else {
        return Err(does_not_exist(&written(&alter.name)));
    };
    let mut def = def.clone();
    let key = def.name.clone();
    env.view.depend_on_key(catalog::type_key(&key));
    match alter.operation {
        AlterTypeOperation::AddValue(add) => {
            let value = add.value.value.clone();
            if def.labels.contains(&value) {
                if add.if_not_exists {
                    return Ok(QueryOutput::Command(CommandTag::new("ALTER TYPE")));
                }
                return Err(user_error(
                    SqlState::DUPLICATE_OBJECT,
                    format!("enum label \"{value}\" already exists"),
                ));
            }
            let at = match &add.position {
                None => def.labels.len(),
                Some(
                    AlterTypeAddValuePosition::Before(n) | AlterTypeAddValuePosition::After(n),
                ) => {
                    let Some(i) = def.labels.iter().position(|l| *l == n.value) else {
                        return Err(user_error(
                            SqlState::INVALID_PARAMETER_VALUE,
                            format!("\"{}\" is not an existing enum label", n.value),
                        ));
                    };
                    match add.position {
                        Some(AlterTypeAddValuePosition::After(_)) => i + 1,
                        _ => i,
                    }
                }
            };
            def.labels.insert(at, value);
            store(&env, &key, &def)?;
        }
        AlterTypeOperation::Rename(r) => {
            let (schema, _) = catalog::split_relation_key(&key);
            let new_key = catalog::relation_key(schema, &ident_name(&r.new_name));
            env.view.depend_on_key(catalog::type_key(&new_key));
            if env.catalog.types.contains_key(&new_key) {
                return Err(user_error(
                    SqlState::DUPLICATE_OBJECT,
                    format!("type \"{}\" already exists", ident_name(&r.new_name)),
                ));
            }
            catalog::delete_type(&env.view, &key);
            def.name = new_key;
            store(&env, &key, &def)?;
        }
        AlterTypeOperation::RenameValue(_) => {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                "ALTER TYPE … RENAME VALUE is not supported yet (stored values are labels)",
            ));
        }
    }
    Ok(QueryOutput::Command(CommandTag::new("ALTER TYPE")))
}

/// `DROP TYPE [IF EXISTS] name [, …]`; refused while a column has the type.
pub(crate) async fn drop_types(
    s: &mut Session,
    names: &[ObjectName],
    if_exists: bool,
    cascade: bool,
) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    for n in names {
        let Some(def) = find(&env.catalog, &s.search_path(), &written(n)) else {
            if if_exists {
                continue;
            }
            return Err(does_not_exist(&written(n)));
        };
        let key = def.name.clone();
        env.view.depend_on_key(catalog::type_key(&key));
        let bare = catalog::split_relation_key(&key).1;
        if let Some((table, column)) = env.catalog.tables.values().find_map(|t| {
            t.columns
                .iter()
                .find(|c| matches!(&c.ty, SqlType::Enum { name, .. } if *name == key))
                .map(|c| (t.name.clone(), c.name.clone()))
        }) {
            let what = if cascade {
                "DROP TYPE … CASCADE (dropping the columns) is not supported yet"
            } else {
                "other objects depend on it"
            };
            return Err(user_error(
                SqlState("2BP01"),
                format!("cannot drop type {bare} because {what}"),
            )
            .with_detail(format!(
                "column {column} of table {} depends on type {bare}",
                catalog::split_relation_key(&table).1
            )));
        }
        catalog::delete_type(&env.view, &key);
    }
    Ok(QueryOutput::Command(CommandTag::new("DROP TYPE")))
}

/// Rewrites casts to an enum type (`'sad'::mood`) as a call that checks the label.
pub(crate) fn rewrite_casts(stmt: &mut ast::Statement, catalog: &Catalog, path: &[String]) {
    if catalog.types.is_empty() {
        return;
    }
    struct Casts<'a> {
        catalog: &'a Catalog,
        path: &'a [String],
    }
    impl VisitorMut for Casts<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let (inner, data_type) = match expr {
                Expr::Cast {
                    expr, data_type, ..
                } => ((**expr).clone(), data_type.clone()),
                Expr::TypedString(ts) => (Expr::Value(ts.value.clone()), ts.data_type.clone()),
                _ => return ControlFlow::Continue(()),
            };
            let SqlDataType::Custom(name, _) = &data_type else {
                return ControlFlow::Continue(());
            };
            let Some(def) = find(self.catalog, self.path, &written(name)) else {
                return ControlFlow::Continue(());
            };
            let mut args = vec![
                inner,
                Expr::value(ast::Value::SingleQuotedString(def.name.clone())),
            ];
            args.extend(
                def.labels
                    .iter()
                    .map(|l| Expr::value(ast::Value::SingleQuotedString(l.clone()))),
            );
            *expr = Expr::Function(crate::sql::function("__thunder_enum_in", args));
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Casts { catalog, path });
}

/// `__thunder_enum_in(value, type, label…)`: the value if it is one of the labels.
#[derive(Debug, PartialEq, Eq, Hash)]
struct EnumIn {
    signature: Signature,
}

impl ScalarUDFImpl for EnumIn {
    fn name(&self) -> &str {
        "__thunder_enum_in"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if arrays.len() < 2 {
            return Err(datafusion::error::DataFusionError::Plan(
                "__thunder_enum_in takes a value, a type name and its labels".into(),
            ));
        }
        if arrays[0].is_empty() {
            return Ok(ColumnarValue::Array(Arc::new(StringArray::from(Vec::<
                Option<String>,
            >::new(
            )))));
        }
        let text = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &DataType::Utf8);
        let values = text(&arrays[0])?;
        let values = values.as_string::<i32>();
        let type_name = text(&arrays[1])?.as_string::<i32>().value(0).to_string();
        let labels: Vec<String> = arrays[2..]
            .iter()
            .map(|a| text(a).map(|t| t.as_string::<i32>().value(0).to_string()))
            .collect::<std::result::Result<_, _>>()?;
        let ty = SqlType::Enum {
            name: type_name,
            oid: 0,
            labels,
        };
        let out = values
            .iter()
            .map(|v| {
                v.map(|v| crate::convert::typed_text_input(&ty, v))
                    .transpose()
            })
            .collect::<Result<StringArray>>()
            .map_err(to_df)?;
        let out: ArrayRef = Arc::new(out);
        if scalar {
            return ScalarValue::try_from_array(&out, 0).map(ColumnarValue::Scalar);
        }
        Ok(ColumnarValue::Array(out))
    }
}

pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(EnumIn {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
}
