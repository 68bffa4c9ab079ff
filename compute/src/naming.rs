//! Output column names as PostgreSQL gives them: `sum` for `sum(total)`, `?column?` for
//! `a + 1`, duplicates allowed. DataFusion derives names from whole expressions and requires them
//! to be unique, so unnamed select items get internal aliases that are renamed after execution.

use crate::sql::ident_name;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{
    DataType, Expr, Ident, Query, SelectItem, SetExpr, Statement, TrimWhereField,
};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) const PREFIX: &str = "__thunder_col";

/// The name PostgreSQL gives an unaliased select item.
pub(crate) fn pg_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => ident_name(i),
        Expr::CompoundIdentifier(parts) => parts.last().map(ident_name).unwrap_or_default(),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .map(|p| p.to_string().to_lowercase())
            .unwrap_or_default(),
        Expr::Nested(inner) => pg_name(inner),
        // A cast names its column after the type unless its operand has a stronger name
        // (a column or function); the outermost of nested casts wins.
        Expr::Cast {
            expr, data_type, ..
        } => match (expr.as_ref(), pg_name(expr).as_str()) {
            (Expr::Cast { .. } | Expr::TypedString(_) | Expr::Interval(_), _) | (_, "?column?") => {
                type_name(data_type)
            }
            (_, n) => n.to_string(),
        },
        Expr::TypedString(ts) => type_name(&ts.data_type),
        Expr::Interval(_) => "interval".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::Extract { .. } => "extract".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Substring { .. } => "substring".into(),
        Expr::Overlay { .. } => "overlay".into(),
        Expr::Trim { trim_where, .. } => match trim_where {
            Some(TrimWhereField::Leading) => "ltrim".into(),
            Some(TrimWhereField::Trailing) => "rtrim".into(),
            _ => "btrim".into(),
        },
        Expr::AtTimeZone { .. } => "timezone".into(),
        Expr::Array(_) => "array".into(),
        Expr::Collate { expr, .. } => pg_name(expr),
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(s) => match s.projection.first() {
                Some(SelectItem::UnnamedExpr(e)) => pg_name(e),
                Some(SelectItem::ExprWithAlias { alias, .. }) => ident_name(alias),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        _ => "?column?".into(),
    }
}

/// The column name of a cast to `dt`: the type's internal name (`x::integer` is `int4`).
fn type_name(dt: &DataType) -> String {
    match crate::pg_catalog::type_internal_name(dt) {
        Some(name) => name.into(),
        None => dt.to_string().to_lowercase(),
    }
}

/// Gives the items of a query whose output names do not matter (a sub-query read by
/// position) names that do not repeat.
pub fn alias_query_items(query: &mut Box<Query>) {
    let mut stmt = Statement::Query(query.clone());
    alias_select_items(&mut stmt);
    if let Statement::Query(q) = stmt {
        *query = q;
    }
}

/// Aliases the unnamed items of a top-level SELECT; returns internal alias → PostgreSQL name.
pub fn alias_select_items(stmt: &mut Statement) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let Statement::Query(q) = stmt else {
        return names;
    };
    let Query { body, .. } = q.as_mut();
    let SetExpr::Select(select) = body.as_mut() else {
        return names;
    };
    // PostgreSQL allows an output name twice (`SELECT id, id`, `x.id … x.id`); DataFusion
    // wants each expression once, so a repeat gets an alias that carries the same name.
    let mut seen = std::collections::HashSet::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        match item {
            SelectItem::UnnamedExpr(e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_))) => {
                if !seen.insert(pg_name(e)) {
                    *item = SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: named_alias(i, &pg_name(e)),
                    };
                }
                continue;
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let name = ident_name(alias);
                if !seen.insert(name.clone()) {
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias: named_alias(i, &name),
                    };
                }
                continue;
            }
            _ => {}
        }
        if let SelectItem::UnnamedExpr(e) = item {
            let alias = format!("{PREFIX}{i}");
            names.insert(alias.clone(), pg_name(e));
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::new(alias),
            };
        }
    }
    names
}

/// Marks an alias that carries the column's final name, for names DataFusion would reject as
/// duplicates (MySQL heads `SELECT 1, 1` with `1` twice): `__thunder_name<i>:<name>`.
const NAMED_PREFIX: &str = "__thunder_name";

/// An alias for select item `i` whose result column is named `name`, duplicates allowed.
pub(crate) fn named_alias(i: usize, name: &str) -> Ident {
    Ident::with_quote('"', format!("{NAMED_PREFIX}{i}:{name}"))
}

/// Renames the internal aliases in a result to their PostgreSQL names.
pub fn rename(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    names: &HashMap<String, String>,
) -> (SchemaRef, Vec<RecordBatch>) {
    let named = |n: &str| {
        n.strip_prefix(NAMED_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, name)| name.to_string())
    };
    if names.is_empty() && !schema.fields().iter().any(|f| named(f.name()).is_some()) {
        return (schema, batches);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(
            |f| match names.get(f.name()).cloned().or_else(|| named(f.name())) {
                Some(n) => f.as_ref().clone().with_name(n),
                None => f.as_ref().clone(),
            },
        )
        .collect();
    let renamed = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let batches = batches
        .into_iter()
        .map(|b| RecordBatch::try_new(renamed.clone(), b.columns().to_vec()).unwrap_or(b))
        .collect();
    (renamed, batches)
}
