//! Parameter type inference and result description for the extended protocol.

use crate::catalog::Catalog;
use crate::error::{DfResultExt, Result};
use crate::session::{Session, quote_ident};
use crate::sql::object_name;
use crate::types::arrow_type;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{
    self, AssignmentTarget, Expr, SetExpr, Statement, Value, Visit, Visitor,
};
use std::ops::ControlFlow;
use std::sync::Arc;

/// The position (0-based) of a `$n` placeholder.
fn placeholder_index(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.strip_prefix('$')?.parse::<usize>().ok()?.checked_sub(1),
            _ => None,
        },
        Expr::Cast { expr, .. } | Expr::Nested(expr) => placeholder_index(expr),
        _ => None,
    }
}

/// The highest `$n` in a statement.
pub fn placeholder_count(stmt: &Statement) -> usize {
    struct Max(usize);
    impl Visitor for Max {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = e
                && let Value::Placeholder(_) = &v.value
                && let Some(i) = placeholder_index(e)
            {
                self.0 = self.0.max(i + 1);
            }
            ControlFlow::Continue(())
        }
    }
    let mut m = Max(0);
    let _ = stmt.visit(&mut m);
    m.0
}

fn merge(
    into: &mut [Option<DataType>],
    plan_types: std::collections::HashMap<String, Option<DataType>>,
) {
    for (name, ty) in plan_types {
        if let Some(i) = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            && i < into.len()
            && into[i].is_none()
        {
            into[i] = ty;
        }
    }
}

async fn plan_types(s: &Session, sql: &str, types: &mut [Option<DataType>]) {
    // Inference is best effort: a statement that cannot be planned without values reports
    // its error at execution.
    if let Ok(plan) = s.plan_sql(sql, &[]).await
        && let Ok(found) = plan.get_parameter_types()
    {
        merge(types, found);
    }
}

async fn returning_schema(
    s: &Session,
    table: &str,
    alias: &str,
    items: &Option<Vec<ast::SelectItem>>,
) -> Result<Option<SchemaRef>> {
    let Some(items) = items else { return Ok(None) };
    let list: Vec<String> = items.iter().map(|i| i.to_string()).collect();
    let sql = format!(
        "SELECT {} FROM {} AS {} WHERE false",
        list.join(", "),
        quote_ident(table),
        quote_ident(alias)
    );
    let plan = s.plan_sql(&sql, &[]).await?;
    Ok(Some(Arc::new(plan.schema().as_arrow().clone())))
}

/// Parameter types (by position, `None` when unknown) and the result columns of `stmt`.
/// Types the statement states for its placeholders with casts: `$1::int8`, `CAST($2 AS text)`.
fn cast_types(stmt: &Statement, types: &mut [Option<DataType>]) {
    struct Casts<'a>(&'a mut [Option<DataType>]);
    impl Visitor for Casts<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Cast {
                expr, data_type, ..
            } = e
                && let Some(i) = placeholder_index(expr)
                && i < self.0.len()
                && self.0[i].is_none()
                && let Ok(t) = crate::types::sql_type(data_type)
            {
                self.0[i] = Some(arrow_type(&t));
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Casts(types));
}

pub async fn describe(
    s: &Session,
    stmt: &Statement,
    catalog: &Catalog,
    count: usize,
) -> Result<(Vec<Option<DataType>>, Option<SchemaRef>)> {
    let mut types: Vec<Option<DataType>> = vec![None; count];
    cast_types(stmt, &mut types);
    let schema = match stmt {
        Statement::Query(_) | Statement::Explain { .. } => {
            let mut stmt = stmt.clone();
            crate::pg_catalog::rewrite(&mut stmt);
            let names = crate::naming::alias_select_items(&mut stmt);
            let plan = s.plan(stmt, &[]).await?;
            merge(&mut types, plan.get_parameter_types().map_df()?);
            let (schema, _) =
                crate::naming::rename(Arc::new(plan.schema().as_arrow().clone()), vec![], &names);
            Some(schema)
        }
        Statement::Insert(ins) => {
            let ast::TableObject::TableName(name) = &ins.table else {
                return Ok((types, None));
            };
            let def = catalog.table(&object_name(name))?;
            let targets: Vec<usize> = if ins.columns.is_empty() {
                (0..def.columns.len()).collect()
            } else {
                ins.columns
                    .iter()
                    .filter_map(|c| def.column_index(&object_name(c)))
                    .collect()
            };
            if let Some(source) = &ins.source {
                if let SetExpr::Values(values) = source.body.as_ref() {
                    for row in &values.rows {
                        for (j, e) in row.iter().enumerate() {
                            if let (Some(i), Some(&col)) = (placeholder_index(e), targets.get(j))
                                && i < types.len()
                                && types[i].is_none()
                            {
                                types[i] = Some(arrow_type(&def.columns[col].ty));
                            }
                        }
                    }
                }
                plan_types(s, &format!("SELECT * FROM ({source}) AS __src"), &mut types).await;
            }
            let alias = ins
                .table_alias
                .as_ref()
                .map(|a| a.alias.value.clone())
                .unwrap_or_else(|| def.name.clone());
            returning_schema(s, &def.name, &alias, &ins.returning).await?
        }
        Statement::Update(up) => {
            let ast::TableFactor::Table { name, alias, .. } = &up.table.relation else {
                return Ok((types, None));
            };
            let def = catalog.table(&object_name(name))?;
            for a in &up.assignments {
                if let (AssignmentTarget::ColumnName(c), Some(i)) =
                    (&a.target, placeholder_index(&a.value))
                    && let Some(col) = def.column_index(&object_name(c))
                    && i < types.len()
                    && types[i].is_none()
                {
                    types[i] = Some(arrow_type(&def.columns[col].ty));
                }
            }
            let sets: Vec<String> = up.assignments.iter().map(|a| a.value.to_string()).collect();
            let selection = up
                .selection
                .as_ref()
                .map(|w| format!(" WHERE {w}"))
                .unwrap_or_default();
            plan_types(
                s,
                &format!(
                    "SELECT {} FROM {}{selection}",
                    if sets.is_empty() {
                        "1".into()
                    } else {
                        sets.join(", ")
                    },
                    up.table
                ),
                &mut types,
            )
            .await;
            let alias = alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| def.name.clone());
            returning_schema(s, &def.name, &alias, &up.returning).await?
        }
        Statement::Delete(del) => {
            let tables = match &del.from {
                ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
            };
            let Some(target) = tables.first() else {
                return Ok((types, None));
            };
            let selection = del
                .selection
                .as_ref()
                .map(|w| format!(" WHERE {w}"))
                .unwrap_or_default();
            plan_types(s, &format!("SELECT 1 FROM {target}{selection}"), &mut types).await;
            match &target.relation {
                ast::TableFactor::Table { name, alias, .. } => {
                    let def = catalog.table(&object_name(name))?;
                    let alias = alias
                        .as_ref()
                        .map(|a| a.name.value.clone())
                        .unwrap_or_else(|| def.name.clone());
                    returning_schema(s, &def.name, &alias, &del.returning).await?
                }
                _ => None,
            }
        }
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.clone())
                .collect::<Vec<_>>()
                .join("_");
            Some(Arc::new(Schema::new(vec![Field::new(
                name,
                DataType::Utf8,
                false,
            )])))
        }
        _ => None,
    };
    Ok((types, schema))
}
