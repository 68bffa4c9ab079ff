//! Point reads without DataFusion: `SELECT columns FROM t WHERE k = v [AND …]` that names the
//! whole primary key with constants or parameters reads one key at the statement's snapshot
//! (through the transaction's writes) and builds the row directly. Planning such a query took
//! most of its time; anything else — or anything this module does not recognise exactly —
//! takes the general path, so the answer is always DataFusion's.

use crate::catalog::TableDef;
use crate::convert::build_array;
use crate::error::Result;
use crate::provider::StatementEnv;
use crate::session::QueryOutput;
use crate::sql::ident_name;
use crate::types::arrow_type;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr, GroupByExpr, SelectItem, SetExpr, Statement, TableFactor,
    UnaryOperator, Value,
};
use std::sync::Arc;
use thunderdb_common::{Datum, SqlType};

/// Where a key value comes from.
pub(crate) enum KeySource<'a> {
    Param(usize),
    Number(&'a str, bool),
    Text(&'a str),
}

/// The query's shape, before the catalog is consulted.
struct Shape<'a> {
    table: &'a ast::ObjectName,
    /// `None`: `SELECT *`.
    items: Option<Vec<(String, Option<String>)>>,
    equalities: Vec<(String, KeySource<'a>)>,
}

/// Runs `stmt` as a point read if it is one; `None` sends it down the general path.
pub(crate) async fn point_get(
    stmt: &Statement,
    params: &[ScalarValue],
    env: &Arc<StatementEnv>,
) -> Option<Result<QueryOutput>> {
    let shape = shape(stmt)?;
    if shape.table.0.len() != 1 {
        return None;
    }
    let name = ident_name(shape.table.0[0].as_ident()?);
    // An unqualified pg_* name may mean the system catalog: leave those to the general path.
    if name.starts_with("pg_") {
        return None;
    }
    let def = env.catalog.tables.get(&name)?;
    if def.primary_key.is_empty() || shape.equalities.len() != def.primary_key.len() {
        return None;
    }
    let mut row = vec![Datum::Null; def.columns.len()];
    let mut bound = vec![false; def.columns.len()];
    let mut impossible = false;
    for (column, source) in &shape.equalities {
        let pos = def.column_index(column)?;
        if !def.primary_key.contains(&pos) || bound[pos] {
            return None;
        }
        bound[pos] = true;
        match key_datum(source, &def.columns[pos].ty, params)? {
            // `k = NULL` holds for no row.
            Datum::Null => impossible = true,
            d => row[pos] = d,
        }
    }
    let columns: Vec<(usize, String)> = match &shape.items {
        None => def
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.name.clone()))
            .collect(),
        Some(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (column, alias) in items {
                let pos = def.column_index(column)?;
                // The MySQL rewrite's naming aliases are for the general path's renaming.
                if alias.as_deref().is_some_and(|a| a.starts_with("__thunder")) {
                    return None;
                }
                out.push((pos, alias.clone().unwrap_or_else(|| column.clone())));
            }
            out
        }
    };
    Some(read(env, def, &row, impossible, &columns).await)
}

async fn read(
    env: &Arc<StatementEnv>,
    def: &TableDef,
    key_row: &[Datum],
    impossible: bool,
    columns: &[(usize, String)],
) -> Result<QueryOutput> {
    let found = if impossible {
        None
    } else {
        env.view.get(&def.row_key(key_row, 0)).await?
    };
    let stored = match found {
        Some(bytes) => Some(def.decode_row(&bytes)?),
        None => None,
    };
    let fields: Vec<Field> = columns
        .iter()
        .map(|(pos, name)| {
            let c = &def.columns[*pos];
            Field::new(name, arrow_type(&c.ty), !c.not_null)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays = columns
        .iter()
        .map(|(pos, _)| {
            let values: &[Datum] = match &stored {
                Some(row) => std::slice::from_ref(&row[*pos]),
                None => &[],
            };
            build_array(&def.columns[*pos].ty, values)
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| thunderdb_common::ThunderError::internal(e.to_string()))?;
    Ok(QueryOutput::Rows {
        schema,
        batches: vec![batch],
        command: "SELECT",
    })
}

/// A key column's value, exactly of the column's type; `None` when the conversion is not
/// exact (the general path then decides what the comparison means).
fn key_datum(source: &KeySource, ty: &SqlType, params: &[ScalarValue]) -> Option<Datum> {
    let integer = |v: i64| -> Option<Datum> {
        match ty {
            SqlType::Int16 => i16::try_from(v).ok().map(Datum::Int16),
            SqlType::Int32 => i32::try_from(v).ok().map(Datum::Int32),
            SqlType::Int64 => Some(Datum::Int64(v)),
            _ => None,
        }
    };
    match source {
        KeySource::Number(text, negative) => {
            let v: i64 = text.parse().ok()?;
            integer(if *negative { v.checked_neg()? } else { v })
        }
        KeySource::Text(text) => match ty {
            SqlType::Text | SqlType::Varchar(_) => Some(Datum::Text(text.to_string())),
            _ => None,
        },
        KeySource::Param(i) => match params.get(*i)? {
            v if v.is_null() => Some(Datum::Null),
            ScalarValue::Int16(Some(v)) => integer(i64::from(*v)),
            ScalarValue::Int32(Some(v)) => integer(i64::from(*v)),
            ScalarValue::Int64(Some(v)) => integer(*v),
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => match ty {
                SqlType::Text | SqlType::Varchar(_) => Some(Datum::Text(s.clone())),
                _ => None,
            },
            _ => None,
        },
    }
}

fn shape(stmt: &Statement) -> Option<Shape<'_>> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    if q.with.is_some()
        || q.order_by.is_some()
        || q.limit_clause.is_some()
        || q.fetch.is_some()
        || !q.locks.is_empty()
        || q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some()
        || !q.pipe_operators.is_empty()
    {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let plain_select = s.distinct.is_none()
        && s.top.is_none()
        && s.into.is_none()
        && s.lateral_views.is_empty()
        && s.prewhere.is_none()
        && matches!(&s.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        && s.cluster_by.is_empty()
        && s.distribute_by.is_empty()
        && s.sort_by.is_empty()
        && s.having.is_none()
        && s.named_window.is_empty()
        && s.qualify.is_none()
        && s.connect_by.is_empty()
        && s.from.len() == 1
        && s.from[0].joins.is_empty();
    if !plain_select {
        return None;
    }
    let TableFactor::Table {
        name,
        alias,
        args: None,
        with_hints,
        version: None,
        partitions,
        with_ordinality: false,
        json_path: None,
        sample: None,
        index_hints,
    } = &s.from[0].relation
    else {
        return None;
    };
    if !with_hints.is_empty() || !partitions.is_empty() || !index_hints.is_empty() {
        return None;
    }
    let alias = match alias {
        Some(a) if !a.columns.is_empty() => return None,
        Some(a) => Some(ident_name(&a.name)),
        None => None,
    };
    let target = Target { name, alias };
    let column_of = |e: &Expr| target.column_of(e);
    let items = match s.projection.as_slice() {
        [SelectItem::Wildcard(opts)] if opts_plain(opts) => None,
        projection => {
            let mut items = Vec::with_capacity(projection.len());
            for item in projection {
                match item {
                    SelectItem::UnnamedExpr(e) => items.push((column_of(e)?, None)),
                    SelectItem::ExprWithAlias { expr, alias } => {
                        items.push((column_of(expr)?, Some(ident_name(alias))))
                    }
                    _ => return None,
                }
            }
            Some(items)
        }
    };
    let equalities = key_equalities(s.selection.as_ref()?, &target)?;
    Some(Shape {
        table: name,
        items,
        equalities,
    })
}

/// The table a statement reads or writes, and how its columns may be qualified.
struct Target<'a> {
    name: &'a ast::ObjectName,
    alias: Option<String>,
}

impl Target<'_> {
    /// The column `e` names (`c`, `t.c` or `alias.c`), if it is a plain column reference.
    fn column_of(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Identifier(i) => Some(ident_name(i)),
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let q = ident_name(&parts[0]);
                let qualified = match &self.alias {
                    Some(a) => q == *a,
                    None => self
                        .name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .is_some_and(|t| ident_name(t) == q),
                };
                qualified.then(|| ident_name(&parts[1]))
            }
            _ => None,
        }
    }
}

/// `c1 = v1 AND c2 = v2 …` with constant or parameter values; `None` for anything else.
fn key_equalities<'a>(
    selection: &'a Expr,
    target: &Target<'_>,
) -> Option<Vec<(String, KeySource<'a>)>> {
    let mut equalities = Vec::new();
    let all = conjuncts(selection, &mut |e| {
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = e
        else {
            return false;
        };
        let (column, value) = match (target.column_of(left), target.column_of(right)) {
            (Some(c), None) => (c, right.as_ref()),
            (None, Some(c)) => (c, left.as_ref()),
            _ => return false,
        };
        match key_source(value) {
            Some(source) => {
                equalities.push((column, source));
                true
            }
            None => false,
        }
    });
    all.then_some(equalities)
}

fn opts_plain(opts: &ast::WildcardAdditionalOptions) -> bool {
    opts.opt_ilike.is_none()
        && opts.opt_exclude.is_none()
        && opts.opt_except.is_none()
        && opts.opt_replace.is_none()
        && opts.opt_rename.is_none()
}

/// Calls `f` on each AND-ed term of `e`; false as soon as one is refused.
fn conjuncts<'a>(e: &'a Expr, f: &mut impl FnMut(&'a Expr) -> bool) -> bool {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => conjuncts(left, f) && conjuncts(right, f),
        Expr::Nested(inner) => conjuncts(inner, f),
        other => f(other),
    }
}

pub(crate) fn key_source(e: &Expr) -> Option<KeySource<'_>> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => Some(KeySource::Param(
                p.strip_prefix('$')?.parse::<usize>().ok()?.checked_sub(1)?,
            )),
            Value::Number(n, false) => Some(KeySource::Number(n, false)),
            Value::SingleQuotedString(s) => Some(KeySource::Text(s)),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, false) => Some(KeySource::Number(n, true)),
                _ => None,
            },
            _ => None,
        },
        Expr::Nested(inner) => key_source(inner),
        _ => None,
    }
}

/// An assignment the fast path computes itself: `c = v` or `c = other ± v` on integers.
struct Assignment<'a> {
    column: String,
    base: Option<(String, bool)>,
    value: KeySource<'a>,
}

/// `UPDATE t SET c = c + v … WHERE <whole primary key>` on integer columns outside every key
/// and index, in a table without CHECK constraints: read the row, compute, write it back.
/// `None` sends the statement down the general path.
pub(crate) async fn point_update(
    s: &mut crate::session::Session,
    up: &ast::Update,
    params: &[ScalarValue],
) -> Option<Result<QueryOutput>> {
    if s.is_mysql()
        || !up.table.joins.is_empty()
        || up.from.is_some()
        || up.returning.is_some()
        || up.output.is_some()
        || up.or.is_some()
        || !up.order_by.is_empty()
        || up.limit.is_some()
    {
        return None;
    }
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &up.table.relation
    else {
        return None;
    };
    if name.0.len() != 1 || alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
        return None;
    }
    let target = Target {
        name,
        alias: alias.as_ref().map(|a| ident_name(&a.name)),
    };
    let equalities = key_equalities(up.selection.as_ref()?, &target)?;
    let mut assignments = Vec::with_capacity(up.assignments.len());
    for a in &up.assignments {
        let ast::AssignmentTarget::ColumnName(col) = &a.target else {
            return None;
        };
        let column = ident_name(col.0.last()?.as_ident()?);
        let (base, value) = match &a.value {
            Expr::BinaryOp { left, op, right }
                if matches!(op, BinaryOperator::Plus | BinaryOperator::Minus) =>
            {
                let minus = *op == BinaryOperator::Minus;
                match (target.column_of(left), key_source(right)) {
                    (Some(c), Some(v)) => (Some((c, minus)), v),
                    _ if !minus => match (key_source(left), target.column_of(right)) {
                        (Some(v), Some(c)) => (Some((c, false)), v),
                        _ => return None,
                    },
                    _ => return None,
                }
            }
            other => (None, key_source(other)?),
        };
        if matches!(value, KeySource::Text(_)) {
            return None;
        }
        assignments.push(Assignment {
            column,
            base,
            value,
        });
    }
    let table = ident_name(name.0[0].as_ident()?);
    if table.starts_with("pg_") {
        return None;
    }
    let env = match s.statement_env(None).await {
        Ok((env, _)) => env,
        Err(e) => return Some(Err(e)),
    };
    let def = env.catalog.tables.get(&table)?.clone();
    if def.primary_key.is_empty()
        || equalities.len() != def.primary_key.len()
        || !def.checks.is_empty()
        || def.auto_increment.is_some()
        || !def.foreign_keys.is_empty()
        || crate::foreign_key::is_referenced(&env.catalog, &def.name)
    {
        return None;
    }
    let mut key_row = vec![Datum::Null; def.columns.len()];
    let mut impossible = false;
    for (column, source) in &equalities {
        let pos = def.column_index(column)?;
        if !def.primary_key.contains(&pos) || !key_row[pos].is_null() {
            return None;
        }
        match key_datum(source, &def.columns[pos].ty, params)? {
            Datum::Null => impossible = true,
            d => key_row[pos] = d,
        }
    }
    let indexed = |pos: usize| {
        def.primary_key.contains(&pos) || def.indexes.iter().any(|i| i.columns.contains(&pos))
    };
    let mut plan = Vec::with_capacity(assignments.len());
    for a in &assignments {
        let pos = def.column_index(&a.column)?;
        let base = match &a.base {
            Some((c, minus)) => Some((def.column_index(c)?, *minus)),
            None => None,
        };
        let integer = |p: usize| def.columns[p].ty.is_integer();
        if indexed(pos) || !integer(pos) || base.is_some_and(|(b, _)| !integer(b)) {
            return None;
        }
        if plan.iter().any(|(p, _, _)| *p == pos) {
            return None;
        }
        let operand = match &a.value {
            KeySource::Param(i) => match params.get(*i)? {
                v if v.is_null() => None,
                ScalarValue::Int16(Some(v)) => Some((i64::from(*v), SqlType::Int16)),
                ScalarValue::Int32(Some(v)) => Some((i64::from(*v), SqlType::Int32)),
                ScalarValue::Int64(Some(v)) => Some((*v, SqlType::Int64)),
                _ => return None,
            },
            KeySource::Number(text, negative) => {
                let v: i64 = text.parse().ok()?;
                let v = if *negative { v.checked_neg()? } else { v };
                let ty = if i32::try_from(v).is_ok() {
                    SqlType::Int32
                } else {
                    SqlType::Int64
                };
                Some((v, ty))
            }
            KeySource::Text(_) => return None,
        };
        plan.push((pos, base, operand));
    }
    env.view.depend_on_table(&def.name);
    s.use_env(&env);
    let result = async {
        if impossible {
            return Ok(QueryOutput::Command(crate::session::CommandTag::with_rows(
                "UPDATE", 0,
            )));
        }
        let key = def.row_key(&key_row, 0);
        let Some(bytes) = env.view.get(&key).await? else {
            return Ok(QueryOutput::Command(crate::session::CommandTag::with_rows(
                "UPDATE", 0,
            )));
        };
        let old = def.decode_row(&bytes)?;
        let mut new = old.clone();
        for (pos, base, operand) in &plan {
            new[*pos] = assigned(&def, &old, *pos, *base, operand.as_ref())?;
            if new[*pos].is_null() && def.columns[*pos].not_null {
                return Err(crate::error::user_error(
                    thunderdb_common::SqlState::NOT_NULL_VIOLATION,
                    format!(
                        "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                        def.columns[*pos].name, def.name
                    ),
                ));
            }
        }
        env.view.put(key, def.encode_row(&new));
        Ok(QueryOutput::Command(crate::session::CommandTag::with_rows(
            "UPDATE", 1,
        )))
    }
    .await;
    if result.is_ok() {
        s.note_write(env.view.snapshot);
    }
    Some(result)
}

/// The new value of column `pos`: the operand, or `base ± operand` computed in the wider of the
/// two types and stored in the column's, each step range-checked as PostgreSQL does (22003).
fn assigned(
    def: &TableDef,
    row: &[Datum],
    pos: usize,
    base: Option<(usize, bool)>,
    operand: Option<&(i64, SqlType)>,
) -> Result<Datum> {
    let Some((value, value_ty)) = operand else {
        return Ok(Datum::Null);
    };
    let result = match base {
        None => *value,
        Some((b, minus)) => {
            let current = match &row[b] {
                Datum::Int16(v) => i64::from(*v),
                Datum::Int32(v) => i64::from(*v),
                Datum::Int64(v) => *v,
                _ => return Ok(Datum::Null),
            };
            let ty = wider(&def.columns[b].ty, value_ty);
            let sum = if minus {
                current.checked_sub(*value)
            } else {
                current.checked_add(*value)
            };
            // Range-checked in the expression's own type first, as PostgreSQL computes it.
            match sum.filter(|v| fit(*v, &ty).is_some()) {
                Some(v) => v,
                None => return Err(out_of_range(&ty)),
            }
        }
    };
    let ty = &def.columns[pos].ty;
    fit(result, ty).ok_or_else(|| out_of_range(ty))
}

fn wider(a: &SqlType, b: &SqlType) -> SqlType {
    let rank = |t: &SqlType| match t {
        SqlType::Int16 => 0,
        SqlType::Int32 => 1,
        _ => 2,
    };
    if rank(a) >= rank(b) {
        a.clone()
    } else {
        b.clone()
    }
}

fn fit(v: i64, ty: &SqlType) -> Option<Datum> {
    match ty {
        SqlType::Int16 => i16::try_from(v).ok().map(Datum::Int16),
        SqlType::Int32 => i32::try_from(v).ok().map(Datum::Int32),
        SqlType::Int64 => Some(Datum::Int64(v)),
        _ => None,
    }
}

fn out_of_range(ty: &SqlType) -> thunderdb_common::ThunderError {
    let name = match ty {
        SqlType::Int16 => "smallint",
        SqlType::Int32 => "integer",
        _ => "bigint",
    };
    crate::error::user_error(
        thunderdb_common::SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{name} out of range"),
    )
}
