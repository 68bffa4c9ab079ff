//! INSERT, UPDATE and DELETE. Each runs a DataFusion query that computes the affected rows
//! (for UPDATE and DELETE with their storage keys), then checks constraints and buffers row and
//! index writes in the transaction.

use crate::catalog::{KEY_COLUMN, TableDef};
use crate::convert::{build_array, cast_to, datum_at, datum_text};
use crate::error::{DfResultExt, Result, user_error};
use crate::session::{CommandTag, QueryOutput, Session, quote_ident};
use crate::sql::{ident_name, object_name, qualify_columns};
use crate::txn::ReadView;
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, RecordBatch, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, AssignmentTarget, ConflictTarget, OnConflictAction, OnInsert, SelectItem, TableFactor,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use thunderdb_common::{Datum, SqlState, SqlType};

type Row = Vec<Datum>;

/// Row ids for tables without a primary key: increasing within a process and seeded from the
/// clock so a restarted node continues above what it handed out before.
fn next_row_id() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
        << 8;
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
            Some((p + 1).max(now))
        })
        .unwrap_or(0);
    (prev + 1).max(now)
}

/// Converts query output columns into rows typed like the table's columns.
fn typed_rows(def: &TableDef, batches: &[RecordBatch], first_col: usize) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns = &batch.columns()[first_col..];
        rows.extend(typed_columns(def, columns, batch.num_rows())?);
    }
    Ok(rows)
}

/// `count` rows from one array per table column, each cast to its column's type.
fn typed_columns(def: &TableDef, columns: &[ArrayRef], count: usize) -> Result<Vec<Row>> {
    let cols: Vec<ArrayRef> = def
        .columns
        .iter()
        .zip(columns)
        .map(|(c, a)| cast_to(a, &c.ty, &c.name))
        .collect::<Result<_>>()?;
    (0..count)
        .map(|r| {
            def.columns
                .iter()
                .zip(&cols)
                .map(|(c, a)| datum_at(a, r, &c.ty))
                .collect::<Result<Row>>()
        })
        .collect()
}

fn batch_of(def: &TableDef, rows: &[Row]) -> Result<RecordBatch> {
    let schema = def.arrow_schema(false);
    let arrays: Vec<ArrayRef> = def
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            build_array(
                &c.ty,
                &rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
            )
        })
        .collect();
    RecordBatch::try_new_with_options(
        schema,
        arrays,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_df()
}

/// NOT NULL and CHECK constraints of new row images.
async fn validate(s: &Session, def: &TableDef, rows: &[Row]) -> Result<()> {
    for row in rows {
        for (i, c) in def.columns.iter().enumerate() {
            if row[i].is_null() && (c.not_null || def.primary_key.contains(&i)) {
                return Err(user_error(
                    SqlState::NOT_NULL_VIOLATION,
                    format!(
                        "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                        c.name, def.name
                    ),
                ));
            }
        }
    }
    if def.checks.is_empty() || rows.is_empty() {
        return Ok(());
    }
    let table = s.scratch_table(
        "__check",
        def.arrow_schema(false),
        vec![batch_of(def, rows)?],
    )?;
    let exprs: Vec<String> = def
        .checks
        .iter()
        .map(|c| format!("(({}) IS NOT FALSE)", c.expr))
        .collect();
    let sql = format!(
        "SELECT {} FROM {table} AS {}",
        exprs.join(", "),
        quote_ident(&def.name)
    );
    let result = async {
        let plan = s.plan_sql(&sql, &[]).await?;
        s.collect(plan).await
    }
    .await;
    s.drop_scratch("__check");
    let (_, batches) = result?;
    for batch in &batches {
        for (i, check) in def.checks.iter().enumerate() {
            let ok = batch
                .column(i)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| {
                    user_error(
                        SqlState::DATATYPE_MISMATCH,
                        format!("argument of CHECK must be type boolean ({})", check.name),
                    )
                })?;
            if ok.iter().any(|v| v == Some(false)) {
                return Err(user_error(
                    SqlState::CHECK_VIOLATION,
                    format!(
                        "new row for relation \"{}\" violates check constraint \"{}\"",
                        def.name, check.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn duplicate(
    def: &TableDef,
    constraint: &str,
    cols: &[usize],
    row: &Row,
) -> thunderdb_common::ThunderError {
    let names: Vec<&str> = cols.iter().map(|&i| def.columns[i].name.as_str()).collect();
    let values: Vec<String> = cols.iter().map(|&i| datum_text(&row[i])).collect();
    user_error(
        SqlState::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{}\"",
            crate::catalog::split_relation_key(constraint).1
        ),
    )
    .with_detail(format!(
        "Key ({})=({}) already exists.",
        names.join(", "),
        values.join(", ")
    ))
}

/// The storage key of an existing row that `row` collides with on the primary key or any
/// unique index, with the violated constraint.
pub(crate) async fn find_conflict(
    view: &ReadView,
    def: &TableDef,
    row: &Row,
    pk: &[u8],
    only: Option<&str>,
) -> Result<Option<(Vec<u8>, String, Vec<usize>)>> {
    if !def.primary_key.is_empty() {
        let name = def
            .pk_name
            .clone()
            .unwrap_or_else(|| format!("{}_pkey", def.name));
        if only.is_none_or(|o| o == name) && view.get(pk).await?.is_some() {
            return Ok(Some((pk.to_vec(), name, def.primary_key.clone())));
        }
    }
    for idx in def
        .indexes
        .iter()
        .filter(|i| i.unique && only.is_none_or(|o| o == i.name))
    {
        if idx.columns.iter().any(|&c| row[c].is_null()) {
            continue;
        }
        if let Some(existing) = view.get(&def.index_key(idx, row, pk)).await?
            && existing.as_ref() != pk
        {
            return Ok(Some((
                existing.to_vec(),
                idx.name.clone(),
                idx.columns.clone(),
            )));
        }
    }
    Ok(None)
}

pub(crate) fn put_row(view: &ReadView, def: &TableDef, pk: &[u8], row: &Row) {
    view.put(pk.to_vec(), def.encode_row(row));
    for idx in &def.indexes {
        view.put(def.index_key(idx, row, pk), pk.to_vec());
    }
}

pub(crate) fn delete_row(view: &ReadView, def: &TableDef, pk: &[u8], row: &Row) {
    view.delete(pk.to_vec());
    for idx in &def.indexes {
        view.delete(def.index_key(idx, row, pk));
    }
}

async fn insert_new(view: &ReadView, def: &TableDef, row: &Row) -> Result<()> {
    let pk = def.row_key(row, next_row_id());
    if let Some((_, name, cols)) = find_conflict(view, def, row, &pk, None).await? {
        return Err(duplicate(def, &name, &cols, row));
    }
    put_row(view, def, &pk, row);
    Ok(())
}

/// Replaces the row at `pk` (old image `old`) with `new`, moving it when the key changes.
async fn replace_row(
    view: &ReadView,
    def: &TableDef,
    pk: &[u8],
    old: &Row,
    new: &Row,
) -> Result<()> {
    let new_pk = if def.primary_key.is_empty() {
        pk.to_vec()
    } else {
        def.row_key(new, 0)
    };
    delete_row(view, def, pk, old);
    if let Some((_, name, cols)) = find_conflict(view, def, new, &new_pk, None).await? {
        return Err(duplicate(def, &name, &cols, new));
    }
    put_row(view, def, &new_pk, new);
    Ok(())
}

/// The table a DML statement writes; the read-only `redis` views refuse writes as
/// PostgreSQL refuses them for a view it cannot update (`verb`: "insert into", "update" …).
fn table_of(name: &ast::ObjectName, verb: &str) -> Result<String> {
    let table = object_name(name);
    if crate::sql::schema_of(name).as_deref() == Some(crate::redis::sql::SCHEMA) {
        return Err(
            user_error(SqlState("55000"), format!("cannot {verb} view \"{table}\"")).with_detail(
                "The redis schema shows Redis data read-only; write it through the RESP protocol.",
            ),
        );
    }
    Ok(table)
}

/// RETURNING: evaluates `items` over the affected row images.
async fn returning(
    s: &Session,
    def: &TableDef,
    alias: &str,
    rows: &[Row],
    items: &[SelectItem],
    params: &[ScalarValue],
    command: &'static str,
) -> Result<QueryOutput> {
    let table = s.scratch_table(
        "__returning",
        def.arrow_schema(false),
        vec![batch_of(def, rows)?],
    )?;
    let list: Vec<String> = items.iter().map(|i| i.to_string()).collect();
    let sql = format!(
        "SELECT {} FROM {table} AS {}",
        list.join(", "),
        quote_ident(alias)
    );
    let result = async {
        let plan = s.plan_sql(&sql, params).await?;
        s.collect(plan).await
    }
    .await;
    s.drop_scratch("__returning");
    let (schema, batches) = result?;
    Ok(QueryOutput::Rows {
        schema,
        batches,
        command,
    })
}

fn command(tag: &str, n: usize) -> QueryOutput {
    QueryOutput::Command(CommandTag::with_rows(tag, n as u64))
}

pub async fn insert(
    s: &mut Session,
    mut ins: ast::Insert,
    params: &[ScalarValue],
) -> Result<QueryOutput> {
    let ast::TableObject::TableName(name) = &ins.table else {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "INSERT into a table function is not supported",
        ));
    };
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let def = env.catalog.table(&table_of(name, "insert into")?)?.clone();
    env.view.depend_on_table(&def.name);
    if ins.replace_into {
        // MySQL's REPLACE: a row that collides on a unique key replaces the old one.
        ins.replace_into = false;
        ins.on = Some(OnInsert::OnConflict(ast::OnConflict {
            conflict_target: None,
            action: OnConflictAction::DoUpdate(ast::DoUpdate {
                assignments: def
                    .columns
                    .iter()
                    .map(|c| ast::Assignment {
                        target: ast::AssignmentTarget::ColumnName(ast::ObjectName::from(vec![
                            ast::Ident::with_quote('"', c.name.clone()),
                        ])),
                        value: ast::Expr::CompoundIdentifier(vec![
                            ast::Ident::new("excluded"),
                            ast::Ident::with_quote('"', c.name.clone()),
                        ]),
                    })
                    .collect(),
                selection: None,
            }),
        }));
    }
    let alias = ins
        .table_alias
        .as_ref()
        .map(|a| a.alias.value.clone())
        .unwrap_or_else(|| def.name.clone());
    // The source's columns go by position: `SELECT i, i` must not trip over the repeated
    // name when it becomes a sub-query.
    if let Some(source) = ins.source.as_mut() {
        crate::naming::alias_query_items(source);
    }
    let mut targets: Vec<usize> = if ins.columns.is_empty() {
        // Without a column list, a shorter source fills the leading columns (PostgreSQL).
        let width = match ins.source.as_deref() {
            Some(source) => match plan_width(source) {
                Some(w) => w,
                None => s
                    .plan_sql(&format!("SELECT * FROM ({source}) AS __src"), params)
                    .await?
                    .schema()
                    .fields()
                    .len(),
            },
            None => 0,
        };
        if width > def.columns.len() {
            return Err(user_error(
                SqlState::SYNTAX_ERROR,
                "INSERT has more expressions than target columns",
            ));
        }
        (0..width).collect()
    } else {
        ins.columns
            .iter()
            .map(|c| {
                let n = object_name(c);
                def.column_index(&n).ok_or_else(|| {
                    user_error(
                        SqlState::UNDEFINED_COLUMN,
                        format!("column \"{n}\" of relation \"{}\" does not exist", def.name),
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    let mut seen = HashSet::new();
    if let Some(dup) = targets.iter().find(|t| !seen.insert(**t)) {
        return Err(user_error(
            SqlState::DUPLICATE_COLUMN,
            format!(
                "column \"{}\" specified more than once",
                def.columns[*dup].name
            ),
        ));
    }
    if let Some(source) = ins.source.as_mut() {
        untarget_defaults(source, &mut targets);
    }
    check_identity_always(&env.catalog, &def, &targets, ins.source.as_deref())?;
    if let Some(source) = ins.source.as_mut() {
        replace_default_keyword(source, &def, &targets)?;
        let types: Vec<&SqlType> = targets.iter().map(|t| &def.columns[*t].ty).collect();
        crate::arrays::type_values_literals(source, &types);
    }
    let literal = ins
        .source
        .as_deref()
        .and_then(|source| literal_values(s, &def, &targets, source, params));
    let mut rows = match literal {
        Some(rows) => rows?,
        None => planned_rows(s, &def, &targets, ins.source.as_deref(), params).await?,
    };
    fill_auto_increment(s, &def, &mut rows).await?;
    validate(s, &def, &rows).await?;
    let view = env.view.clone();
    // MySQL counts a row that ON DUPLICATE KEY UPDATE (or REPLACE) changed as two.
    let mut updated_rows = 0;
    let mut affected: Vec<Row> = Vec::with_capacity(rows.len());
    match &ins.on {
        None => {
            for row in rows {
                insert_new(&view, &def, &row).await?;
                affected.push(row);
            }
        }
        Some(OnInsert::OnConflict(oc)) => {
            let arbiter = arbiter(&def, oc.conflict_target.as_ref())?;
            let do_update = match &oc.action {
                OnConflictAction::DoUpdate(du) => Some(du),
                OnConflictAction::DoNothing => None,
            };
            // MySQL applies the rows one after another, each seeing what the ones before it
            // did; PostgreSQL decides every row's conflict up front and updates in one pass.
            let in_order = s.is_mysql();
            let mut conflicts: Vec<(Vec<u8>, Row, Row)> = Vec::new();
            for row in rows {
                let pk = def.row_key(&row, next_row_id());
                let existing =
                    match find_conflict(&view, &def, &row, &pk, arbiter.as_deref()).await? {
                        None => None,
                        Some((existing_pk, _, _)) => match view.get(&existing_pk).await? {
                            Some(bytes) => Some((existing_pk, def.decode_row(&bytes)?)),
                            None => None,
                        },
                    };
                match existing {
                    None => {
                        insert_new(&view, &def, &row).await?;
                        affected.push(row);
                    }
                    Some((existing_pk, old)) => {
                        if do_update.is_some()
                            && conflicts.iter().any(|(k, _, _)| *k == existing_pk)
                        {
                            return Err(user_error(SqlState("21000"), "ON CONFLICT DO UPDATE command cannot affect row a second time")
                                .with_detail("Ensure that no rows proposed for insertion within the same command have duplicate constrained values."));
                        }
                        conflicts.push((existing_pk, old, row));
                        if in_order && let Some(du) = do_update {
                            let one = std::mem::take(&mut conflicts);
                            updated_rows += apply_conflict_updates(
                                s,
                                &def,
                                &alias,
                                &one,
                                du,
                                params,
                                &view,
                                &mut affected,
                            )
                            .await?;
                        }
                    }
                }
            }
            if let Some(du) = do_update
                && !conflicts.is_empty()
            {
                updated_rows += apply_conflict_updates(
                    s,
                    &def,
                    &alias,
                    &conflicts,
                    du,
                    params,
                    &view,
                    &mut affected,
                )
                .await?;
            }
        }
        Some(_) => {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                "ON DUPLICATE KEY UPDATE is not supported on the PostgreSQL endpoint",
            ));
        }
    }
    // After the writes, as PostgreSQL checks: a row may reference itself or an earlier row
    // of the same statement.
    crate::foreign_key::check_references(&view, &env.catalog, &def, &affected).await?;
    s.note_write(env.view.snapshot);
    match &ins.returning {
        Some(items) => returning(s, &def, &alias, &affected, items, params, "INSERT 0").await,
        None if s.is_mysql() => Ok(command("INSERT", affected.len() + updated_rows)),
        None => Ok(command("INSERT", affected.len())),
    }
}

/// The rows an INSERT's source produces, typed like the table, with the defaults of the columns
/// it does not name: planned and run as a DataFusion query.
async fn planned_rows(
    s: &Session,
    def: &TableDef,
    targets: &[usize],
    source: Option<&ast::Query>,
    params: &[ScalarValue],
) -> Result<Vec<Row>> {
    let projection: Vec<String> = def
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| match targets.iter().position(|t| *t == i) {
            Some(j) => format!("__src.\"c{j}\" AS \"__v{i}\""),
            None => format!(
                "{} AS \"__v{i}\"",
                c.default
                    .as_ref()
                    .map(|d| format!("({d})"))
                    .unwrap_or_else(|| "NULL".into())
            ),
        })
        .collect();
    let sql = match source {
        Some(source) => {
            let aliases: Vec<String> = (0..targets.len()).map(|j| format!("\"c{j}\"")).collect();
            format!(
                "SELECT {} FROM ({source}) AS __src({})",
                projection.join(", "),
                aliases.join(", ")
            )
        }
        None => format!("SELECT {}", projection.join(", ")),
    };
    let plan = s.plan_sql(&sql, params).await.map_err(|e| {
        if e.message.contains("__src") {
            too_many_expressions()
        } else {
            e
        }
    })?;
    if let Some(source) = source
        && plan_width(source) > Some(targets.len())
    {
        return Err(too_many_expressions());
    }
    let (_, batches) = s.collect(plan).await?;
    typed_rows(def, &batches, 0)
}

fn too_many_expressions() -> thunderdb_common::ThunderError {
    user_error(
        SqlState::SYNTAX_ERROR,
        "INSERT has more expressions than target columns",
    )
}

/// The rows of a VALUES source whose every item is a parameter, a literal or `now()` (what
/// ORMs and pgbench send), built without planning a query and converted by the same casts as
/// the planned path. `None` sends the INSERT down the planned path, which also gives the
/// errors of anything unusual (rows of other widths, rows whose items differ in type).
fn literal_values(
    s: &Session,
    def: &TableDef,
    targets: &[usize],
    source: &ast::Query,
    params: &[ScalarValue],
) -> Option<Result<Vec<Row>>> {
    if source.with.is_some()
        || source.order_by.is_some()
        || source.limit_clause.is_some()
        || source.fetch.is_some()
        || !source.locks.is_empty()
    {
        return None;
    }
    let ast::SetExpr::Values(values) = source.body.as_ref() else {
        return None;
    };
    // A column left out takes its default: only an absent one (NULL) is known here.
    let defaulted = def
        .columns
        .iter()
        .enumerate()
        .any(|(i, c)| c.default.is_some() && !targets.contains(&i));
    if defaulted {
        return None;
    }
    let mut columns: Vec<Vec<ScalarValue>> =
        vec![Vec::with_capacity(values.rows.len()); targets.len()];
    for row in &values.rows {
        if row.len() != targets.len() {
            return None;
        }
        for (j, e) in row.iter().enumerate() {
            let v = literal_value(s, e, params)?;
            if columns[j]
                .first()
                .is_some_and(|f| f.data_type() != v.data_type())
            {
                return None;
            }
            columns[j].push(v);
        }
    }
    let count = values.rows.len();
    let arrays = (0..def.columns.len())
        .map(|i| match targets.iter().position(|t| *t == i) {
            Some(j) => ScalarValue::iter_to_array(std::mem::take(&mut columns[j])).map_df(),
            None => Ok(datafusion::arrow::array::new_null_array(
                &DataType::Null,
                count,
            )),
        })
        .collect::<Result<Vec<_>>>();
    Some(arrays.and_then(|a| typed_columns(def, &a, count)))
}

/// The value DataFusion would give `e` as a VALUES item, when `e` is a parameter, an integer,
/// string, boolean or NULL literal, or `now()`/`CURRENT_TIMESTAMP`.
fn literal_value(s: &Session, e: &ast::Expr, params: &[ScalarValue]) -> Option<ScalarValue> {
    use crate::fastpath::{KeySource, key_source};
    use ast::{Expr, FunctionArguments, Value};
    if let Some(source) = key_source(e) {
        return match source {
            KeySource::Param(i) => params.get(i).cloned(),
            // PostgreSQL's integer literals are int4 where the digits fit (the planned path's
            // `type_integer_literals`), MySQL's BIGINT.
            KeySource::Number(n, negative) => {
                let signed = if negative {
                    format!("-{n}")
                } else {
                    n.to_string()
                };
                let v = signed.parse::<i64>().ok()?;
                let int4 = !s.is_mysql() && n.parse::<i32>().is_ok();
                Some(match i32::try_from(v) {
                    Ok(v) if int4 => ScalarValue::Int32(Some(v)),
                    _ => ScalarValue::Int64(Some(v)),
                })
            }
            KeySource::Text(t) => Some(ScalarValue::Utf8(Some(t.to_string()))),
        };
    }
    match e {
        Expr::Value(v) => match &v.value {
            Value::Boolean(b) => Some(ScalarValue::Boolean(Some(*b))),
            Value::Null => Some(ScalarValue::Null),
            _ => None,
        },
        Expr::Nested(inner) => literal_value(s, inner, params),
        Expr::Function(f)
            if f.filter.is_none()
                && f.over.is_none()
                && f.within_group.is_empty()
                && matches!(f.parameters, FunctionArguments::None)
                && f.name.0.len() == 1 =>
        {
            let name = f.name.0[0].as_ident()?;
            let niladic = match &f.args {
                FunctionArguments::None => name.value.eq_ignore_ascii_case("current_timestamp"),
                FunctionArguments::List(l) if l.args.is_empty() && l.clauses.is_empty() => {
                    name.quote_style.is_none() && name.value.eq_ignore_ascii_case("now")
                }
                _ => false,
            };
            if niladic { s.now_value() } else { None }
        }
        _ => None,
    }
}

/// Runs DO UPDATE for `conflicts` and writes the new rows; how many rows it updated.
#[allow(clippy::too_many_arguments)]
async fn apply_conflict_updates(
    s: &Session,
    def: &TableDef,
    alias: &str,
    conflicts: &[(Vec<u8>, Row, Row)],
    du: &ast::DoUpdate,
    params: &[ScalarValue],
    view: &ReadView,
    affected: &mut Vec<Row>,
) -> Result<usize> {
    let updated = conflict_updates(s, def, alias, conflicts, du, params).await?;
    validate(
        s,
        def,
        &updated
            .iter()
            .map(|(_, _, n)| n.clone())
            .collect::<Vec<_>>(),
    )
    .await?;
    let n = updated.len();
    for (pk, old, new) in updated {
        replace_row(view, def, &pk, &old, &new).await?;
        affected.push(new);
    }
    Ok(n)
}

/// Gives rows without a value for the table's AUTO_INCREMENT column (NULL, or 0 as MySQL
/// reads it) the next values of its counter, keeps the counter above explicit values, and
/// records the first generated value for `LAST_INSERT_ID()`.
async fn fill_auto_increment(s: &mut Session, def: &TableDef, rows: &mut [Row]) -> Result<()> {
    let Some(pos) = def
        .auto_increment
        .and_then(|id| def.columns.iter().position(|c| c.id == id))
    else {
        return Ok(());
    };
    let value = |d: &Datum| match d {
        Datum::Int16(v) => Some(i64::from(*v)),
        Datum::Int32(v) => Some(i64::from(*v)),
        Datum::Int64(v) => Some(*v),
        _ => None,
    };
    let missing = rows
        .iter()
        .filter(|r| r[pos].is_null() || value(&r[pos]) == Some(0))
        .count() as u64;
    let explicit_max = rows
        .iter()
        .filter_map(|r| value(&r[pos]))
        .max()
        .unwrap_or(0);
    let counter = crate::sequence::auto_increment_counter(def.id);
    let at_least = explicit_max.saturating_add(1);
    let first = crate::sequence::allocate(&s.engine, &counter, missing, at_least).await?;
    if missing == 0 {
        return Ok(());
    }
    let ty = def.columns[pos].ty.clone();
    let mut next = first;
    for row in rows.iter_mut() {
        if row[pos].is_null() || value(&row[pos]) == Some(0) {
            row[pos] = match ty {
                SqlType::Int16 => i16::try_from(next).map(Datum::Int16).ok(),
                SqlType::Int32 => i32::try_from(next).map(Datum::Int32).ok(),
                _ => Some(Datum::Int64(next)),
            }
            .ok_or_else(|| {
                user_error(
                    SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!(
                        "AUTO_INCREMENT value {next} is out of range for column \"{}\"",
                        def.columns[pos].name
                    ),
                )
            })?;
            next += 1;
        }
    }
    s.note_insert_id(first);
    Ok(())
}

/// `DEFAULT` in a VALUES row (sqlparser reads it as an identifier).
fn is_default_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// A column that every row of a VALUES list sets to DEFAULT is left out of the insert's
/// targets, so its default is computed with the row rather than inside VALUES (which
/// DataFusion folds at plan time: a `nextval` there could not run).
fn untarget_defaults(source: &mut ast::Query, targets: &mut Vec<usize>) {
    let ast::SetExpr::Values(values) = source.body.as_mut() else {
        return;
    };
    let mut j = targets.len();
    while j > 0 {
        j -= 1;
        // Keep one column: `VALUES ()` is no query.
        if targets.len() == 1 {
            break;
        }
        if !values.rows.is_empty()
            && values
                .rows
                .iter()
                .all(|row| row.get(j).is_some_and(is_default_keyword))
        {
            for row in values.rows.iter_mut() {
                row.remove(j);
            }
            targets.remove(j);
        }
    }
}

/// A GENERATED ALWAYS identity column takes only DEFAULT (PostgreSQL's 428C9).
fn check_identity_always(
    catalog: &crate::catalog::Catalog,
    def: &TableDef,
    targets: &[usize],
    source: Option<&ast::Query>,
) -> Result<()> {
    for (j, &t) in targets.iter().enumerate() {
        let column = &def.columns[t].name;
        let always = catalog
            .owned_sequences(&def.name)
            .any(|s| s.identity_always && s.owned_by.as_ref().is_some_and(|(_, c)| c == column));
        if !always {
            continue;
        }
        let all_default = match source.map(|q| q.body.as_ref()) {
            Some(ast::SetExpr::Values(values)) => values
                .rows
                .iter()
                .all(|row| row.get(j).is_some_and(is_default_keyword)),
            _ => false,
        };
        if !all_default {
            return Err(user_error(
                SqlState("428C9"),
                format!("cannot insert a non-DEFAULT value into column \"{column}\""),
            )
            .with_detail(format!(
                "Column \"{column}\" is an identity column defined as GENERATED ALWAYS."
            )));
        }
    }
    Ok(())
}

/// `VALUES (1, DEFAULT)`: puts each column's default expression (or NULL) where DEFAULT stands.
fn replace_default_keyword(
    source: &mut ast::Query,
    def: &TableDef,
    targets: &[usize],
) -> Result<()> {
    let ast::SetExpr::Values(values) = source.body.as_mut() else {
        return Ok(());
    };
    for row in values.rows.iter_mut() {
        for (j, e) in row.iter_mut().enumerate() {
            if !is_default_keyword(e) {
                continue;
            }
            let Some(col) = targets.get(j).map(|&t| &def.columns[t]) else {
                continue;
            };
            let text = col.default.clone().unwrap_or_else(|| "NULL".into());
            let parsed = datafusion::sql::sqlparser::parser::Parser::new(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            )
            .try_with_sql(&text)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| {
                user_error(
                    SqlState::INTERNAL_ERROR,
                    format!(
                        "stored default of column \"{}\" does not parse: {e}",
                        col.name
                    ),
                )
            })?;
            *e = ast::Expr::Nested(Box::new(parsed));
        }
    }
    Ok(())
}

/// The column an `UPDATE … SET col = …` assignment writes.
fn assignment_column(def: &TableDef, a: &ast::Assignment) -> Result<usize> {
    let AssignmentTarget::ColumnName(target) = &a.target else {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "multiple-column assignment is not supported",
        ));
    };
    let name = object_name(target);
    def.column_index(&name).ok_or_else(|| {
        user_error(
            SqlState::UNDEFINED_COLUMN,
            format!(
                "column \"{name}\" of relation \"{}\" does not exist",
                def.name
            ),
        )
    })
}

/// The number of columns a VALUES source produces, when it is plain VALUES.
fn plan_width(source: &ast::Query) -> Option<usize> {
    match source.body.as_ref() {
        ast::SetExpr::Values(v) => v.rows.iter().map(|r| r.len()).max(),
        _ => None,
    }
}

/// The constraint an ON CONFLICT clause names, or `None` for "any unique constraint".
fn arbiter(def: &TableDef, target: Option<&ConflictTarget>) -> Result<Option<String>> {
    let Some(target) = target else {
        return Ok(None);
    };
    match target {
        ConflictTarget::OnConstraint(name) => Ok(Some(object_name(name))),
        ConflictTarget::Columns(cols) => {
            let mut wanted: Vec<usize> = cols
                .iter()
                .map(|c| {
                    def.column_index(&ident_name(c)).ok_or_else(|| {
                        user_error(
                            SqlState::UNDEFINED_COLUMN,
                            format!("column \"{}\" does not exist", ident_name(c)),
                        )
                    })
                })
                .collect::<Result<_>>()?;
            wanted.sort();
            let mut pk = def.primary_key.clone();
            pk.sort();
            if !pk.is_empty() && pk == wanted {
                return Ok(Some(
                    def.pk_name
                        .clone()
                        .unwrap_or_else(|| format!("{}_pkey", def.name)),
                ));
            }
            for idx in def.indexes.iter().filter(|i| i.unique) {
                let mut cols = idx.columns.clone();
                cols.sort();
                if cols == wanted {
                    return Ok(Some(idx.name.clone()));
                }
            }
            Err(user_error(
                SqlState("42P10"),
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ))
        }
    }
}

/// Evaluates DO UPDATE SET … WHERE … for each conflicting (existing, proposed) pair.
async fn conflict_updates(
    s: &Session,
    def: &TableDef,
    alias: &str,
    conflicts: &[(Vec<u8>, Row, Row)],
    du: &ast::DoUpdate,
    params: &[ScalarValue],
) -> Result<Vec<(Vec<u8>, Row, Row)>> {
    let with_rn = |rows: Vec<Row>| -> Result<(Arc<Schema>, RecordBatch)> {
        let base = batch_of(def, &rows)?;
        let mut fields: Vec<Field> = base
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("__rn", DataType::UInt64, false));
        let schema = Arc::new(Schema::new(fields));
        let mut cols = base.columns().to_vec();
        cols.push(Arc::new(UInt64Array::from_iter_values(
            0..rows.len() as u64,
        )));
        Ok((schema.clone(), RecordBatch::try_new(schema, cols).map_df()?))
    };
    let (es, eb) = with_rn(conflicts.iter().map(|(_, o, _)| o.clone()).collect())?;
    let (xs, xb) = with_rn(conflicts.iter().map(|(_, _, n)| n.clone()).collect())?;
    let existing = s.scratch_table("__existing", es, vec![eb])?;
    let excluded = s.scratch_table("__excluded", xs, vec![xb])?;
    let q = quote_ident(alias);
    let columns: Vec<String> = def.columns.iter().map(|c| c.name.clone()).collect();
    let mut new_exprs: Vec<String> = columns
        .iter()
        .map(|c| format!("{q}.{}", quote_ident(c)))
        .collect();
    for a in &du.assignments {
        let i = assignment_column(def, a)?;
        new_exprs[i] = qualify_columns(&a.value, alias, &columns).to_string();
    }
    let cond = du
        .selection
        .as_ref()
        .map(|e| qualify_columns(e, alias, &columns).to_string())
        .unwrap_or_else(|| "TRUE".into());
    let new_exprs: Vec<String> = new_exprs
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS \"__n{i}\""))
        .collect();
    let sql = format!(
        "SELECT {}, ({cond}) IS TRUE AS __ok, {q}.__rn FROM {existing} AS {q} JOIN {excluded} AS excluded ON {q}.__rn = excluded.__rn ORDER BY {q}.__rn",
        new_exprs.join(", ")
    );
    let result = async {
        let plan = s.plan_sql(&sql, params).await?;
        s.collect(plan).await
    }
    .await;
    s.drop_scratch("__existing");
    s.drop_scratch("__excluded");
    let (_, batches) = result?;
    let new_rows = typed_rows(def, &batches, 0)?;
    let mut oks = Vec::new();
    let mut rns = Vec::new();
    for b in &batches {
        let ok = b
            .column(def.columns.len())
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| {
                crate::error::user_error(SqlState::INTERNAL_ERROR, "bad ON CONFLICT condition")
            })?;
        let rn = b
            .column(def.columns.len() + 1)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| crate::error::user_error(SqlState::INTERNAL_ERROR, "bad row number"))?;
        oks.extend(ok.iter().map(|v| v == Some(true)));
        rns.extend(rn.values().iter().copied());
    }
    Ok(new_rows
        .into_iter()
        .zip(oks)
        .zip(rns)
        .filter(|((_, ok), _)| *ok)
        .map(|((new, _), rn)| {
            let (pk, old, _) = &conflicts[rn as usize];
            (pk.clone(), old.clone(), new)
        })
        .collect())
}

/// The target table and the name its columns are qualified with.
fn target_of(relation: &TableFactor, verb: &str) -> Result<(String, String)> {
    match relation {
        TableFactor::Table { name, alias, .. } => {
            let table = table_of(name, verb)?;
            let alias = alias
                .as_ref()
                .map(|a| ident_name(&a.name))
                .unwrap_or_else(|| table.clone());
            Ok((table, alias))
        }
        _ => Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "UPDATE/DELETE target must be a table",
        )),
    }
}

/// A row an UPDATE or DELETE affects: its storage key, its image, and (UPDATE) the new image.
struct TargetRow {
    key: Vec<u8>,
    old: Row,
    new: Option<Row>,
}

/// Reads `key, old columns [, new columns]` result batches, once per key: UPDATE … FROM and
/// DELETE … USING may join a row more than once, and PostgreSQL changes it once.
fn target_rows(def: &TableDef, batches: &[RecordBatch], with_new: bool) -> Result<Vec<TargetRow>> {
    let n = def.columns.len();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for batch in batches {
        let keys = batch
            .column(0)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| user_error(SqlState::INTERNAL_ERROR, "storage key column missing"))?;
        let olds = typed_rows(def, std::slice::from_ref(batch), 1)?;
        let mut news = if with_new {
            Some(typed_rows(def, std::slice::from_ref(batch), 1 + n)?.into_iter())
        } else {
            None
        };
        for (r, old) in olds.into_iter().enumerate() {
            let new = news.as_mut().and_then(|it| it.next());
            let key = keys.value(r).to_vec();
            if seen.insert(key.clone()) {
                out.push(TargetRow { key, old, new });
            }
        }
    }
    Ok(out)
}

/// Resolves the UPDATE/DELETE target and installs an environment whose scans of it carry
/// storage keys.
async fn target_env(
    s: &mut Session,
    table: &str,
) -> Result<(Arc<TableDef>, ReadView, Arc<crate::catalog::Catalog>)> {
    let (probe, _) = s.statement_env(None).await?;
    let def = probe.catalog.table(table)?.clone();
    probe.view.depend_on_table(&def.name);
    let env = Arc::new(crate::provider::StatementEnv {
        catalog: probe.catalog.clone(),
        view: probe.view.clone(),
        key_table: Some(def.id),
    });
    s.use_env(&env);
    Ok((def, env.view.clone(), probe.catalog.clone()))
}

pub async fn update(
    s: &mut Session,
    up: ast::Update,
    params: &[ScalarValue],
) -> Result<QueryOutput> {
    if !up.table.joins.is_empty() {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "UPDATE with JOIN in the target is not supported; use FROM",
        ));
    }
    let (table, alias) = target_of(&up.table.relation, "update")?;
    let (def, view, catalog) = target_env(s, &table).await?;
    let q = quote_ident(&alias);
    let mut new_exprs: Vec<String> = def
        .columns
        .iter()
        .map(|c| format!("{q}.{}", quote_ident(&c.name)))
        .collect();
    for a in &up.assignments {
        let i = assignment_column(&def, a)?;
        new_exprs[i] = a.value.to_string();
    }
    let old_cols: Vec<String> = def
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{q}.{} AS \"__o{i}\"", quote_ident(&c.name)))
        .collect();
    let new_exprs: Vec<String> = new_exprs
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS \"__n{i}\""))
        .collect();
    let mut from = up.table.to_string();
    if let Some(ast::UpdateTableFromKind::BeforeSet(t) | ast::UpdateTableFromKind::AfterSet(t)) =
        &up.from
    {
        for twj in t {
            from.push_str(", ");
            from.push_str(&twj.to_string());
        }
    }
    let selection = up
        .selection
        .as_ref()
        .map(|w| format!(" WHERE {w}"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {q}.{KEY_COLUMN}, {}, {} FROM {from}{selection}",
        old_cols.join(", "),
        new_exprs.join(", ")
    );
    let plan = s.plan_sql(&sql, params).await?;
    let (_, batches) = s.collect(plan).await?;
    let targets = target_rows(&def, &batches, true)?;
    let news: Vec<Row> = targets.iter().filter_map(|t| t.new.clone()).collect();
    validate(s, &def, &news).await?;
    let changes: Vec<(Row, Option<Row>)> = targets
        .iter()
        .zip(&news)
        .map(|(t, new)| (t.old.clone(), Some(new.clone())))
        .collect();
    for (t, new) in targets.iter().zip(&news) {
        replace_row(&view, &def, &t.key, &t.old, new).await?;
    }
    crate::foreign_key::on_parent_change(&view, &catalog, &def, &changes, 0).await?;
    crate::foreign_key::check_references(&view, &catalog, &def, &news).await?;
    s.note_write(view.snapshot);
    match &up.returning {
        Some(items) => returning(s, &def, &alias, &news, items, params, "UPDATE").await,
        None => Ok(command("UPDATE", news.len())),
    }
}

pub async fn delete(
    s: &mut Session,
    del: ast::Delete,
    params: &[ScalarValue],
) -> Result<QueryOutput> {
    let tables = match &del.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    let Some(target) = tables.first() else {
        return Err(user_error(SqlState::SYNTAX_ERROR, "DELETE needs a table"));
    };
    if tables.len() > 1 || !target.joins.is_empty() {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "DELETE from several tables is not supported; use USING",
        ));
    }
    let (table, alias) = target_of(&target.relation, "delete from")?;
    let (def, view, catalog) = target_env(s, &table).await?;
    let q = quote_ident(&alias);
    let cols: Vec<String> = def
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{q}.{} AS \"__o{i}\"", quote_ident(&c.name)))
        .collect();
    let mut from = target.to_string();
    if let Some(using) = &del.using {
        for twj in using {
            from.push_str(", ");
            from.push_str(&twj.to_string());
        }
    }
    let selection = del
        .selection
        .as_ref()
        .map(|w| format!(" WHERE {w}"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {q}.{KEY_COLUMN}, {} FROM {from}{selection}",
        cols.join(", ")
    );
    let plan = s.plan_sql(&sql, params).await?;
    let (_, batches) = s.collect(plan).await?;
    let mut deleted = Vec::new();
    let targets = target_rows(&def, &batches, false)?;
    let changes: Vec<(Row, Option<Row>)> = targets.iter().map(|t| (t.old.clone(), None)).collect();
    for t in targets {
        delete_row(&view, &def, &t.key, &t.old);
        deleted.push(t.old);
    }
    crate::foreign_key::on_parent_change(&view, &catalog, &def, &changes, 0).await?;
    s.note_write(view.snapshot);
    match &del.returning {
        Some(items) => returning(s, &def, &alias, &deleted, items, params, "DELETE").await,
        None => Ok(command("DELETE", deleted.len())),
    }
}
