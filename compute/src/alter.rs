//! ALTER TABLE: each action changes the table's definition in the transaction, and where
//! stored rows must change too (a new primary key is a new storage key; a new column with a
//! default gets its value) they are rewritten in the same transaction.

use crate::catalog::{self, CheckDef, ColumnDef, IndexDef, TableDef};
use crate::ddl::{backfill_index, check_name, check_schema, index_columns, names, not_unique};
use crate::error::{Result, user_error};
use crate::session::{CommandTag, QueryOutput, Session, quote_ident};
use crate::sql::{ident_name, object_name};
use crate::txn::ReadView;
use datafusion::sql::sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, Expr, Ident, TableConstraint,
};
use std::ops::ControlFlow;
use std::sync::Arc;
use thunderdb_common::keys::index_prefix;
use thunderdb_common::{IndexId, SqlState};

pub async fn alter_table(s: &mut Session, alter: ast::AlterTable) -> Result<QueryOutput> {
    check_schema(&alter.name)?;
    let name = object_name(&alter.name);
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    // `ALTER TABLE … OWNER TO` also names views and sequences (pg_dump writes it so).
    if !env.catalog.tables.contains_key(&name)
        && crate::privileges::kind(&env.catalog, &name).is_some()
        && !alter.operations.is_empty()
        && alter
            .operations
            .iter()
            .all(|op| matches!(op, AlterTableOperation::OwnerTo { .. }))
    {
        for op in &alter.operations {
            if let AlterTableOperation::OwnerTo { new_owner } = op {
                crate::privileges::set_owner_to(s, &env.view, &env.catalog, &name, new_owner)
                    .await?;
            }
        }
        s.note_write(env.view.snapshot);
        return Ok(done());
    }
    let Some(found) = env.catalog.tables.get(&name) else {
        if alter.if_exists {
            return Ok(done());
        }
        return Err(user_error(
            SqlState::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ));
    };
    let mut def = found.as_ref().clone();
    let view = env.view.clone();
    for op in alter.operations {
        let before = def.name.clone();
        apply(s, &view, &mut def, op).await?;
        if def.name != before {
            let acl = catalog::get_acl(&view, &before).await?;
            catalog::delete_table(&view, &before);
            if let Some(mut acl) = acl {
                acl.relation = def.name.clone();
                catalog::put_acl(&view, &acl)?;
            }
        }
        catalog::put_table(&view, &def)?;
    }
    s.note_write(view.snapshot);
    Ok(done())
}

fn done() -> QueryOutput {
    QueryOutput::Command(CommandTag::new("ALTER TABLE"))
}

fn unsupported(what: impl std::fmt::Display) -> thunderdb_common::ThunderError {
    user_error(
        SqlState::FEATURE_NOT_SUPPORTED,
        format!("ALTER TABLE {what} is not supported yet"),
    )
}

fn no_column(def: &TableDef, column: &str) -> thunderdb_common::ThunderError {
    user_error(
        SqlState::UNDEFINED_COLUMN,
        format!(
            "column \"{column}\" of relation \"{}\" does not exist",
            def.name
        ),
    )
}

fn column_position(def: &TableDef, column: &Ident) -> Result<usize> {
    let name = ident_name(column);
    def.column_index(&name).ok_or_else(|| no_column(def, &name))
}

async fn apply(
    s: &mut Session,
    view: &ReadView,
    def: &mut TableDef,
    op: AlterTableOperation,
) -> Result<()> {
    match op {
        AlterTableOperation::AddConstraint { constraint, .. } => {
            add_constraint(s, view, def, constraint).await
        }
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            column_position: None,
            ..
        } => add_column(s, view, def, column_def, if_not_exists).await,
        AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            ..
        } => {
            let catalog = catalog::Catalog::load(view).await?;
            for column in column_names {
                let name = ident_name(&column);
                // The table's own foreign keys as they are now, others' from the catalog.
                let own = def.foreign_keys.iter().filter(|f| f.ref_table == def.name);
                let others = referencing(&catalog, &def.name)
                    .filter(|(t, _)| t.name != def.name)
                    .map(|(_, f)| f);
                if let Some(child) = own
                    .chain(others)
                    .find(|f| f.ref_columns.contains(&name) && !f.columns.is_empty())
                    .map(|f| f.name.clone())
                {
                    return Err(user_error(
                        SqlState("2BP01"),
                        format!(
                            "cannot drop column {name} of table {} because other objects depend on it",
                            def.name
                        ),
                    )
                    .with_detail(format!(
                        "constraint {child} depends on column {name} of table {}",
                        def.name
                    )));
                }
                drop_column(def, &column, if_exists)?;
                // Its SERIAL or identity sequence goes with it.
                for seq in catalog.owned_sequences(&def.name) {
                    if seq.owned_by.as_ref().is_some_and(|(_, c)| *c == name) {
                        catalog::delete_sequence(view, &seq.name);
                    }
                }
            }
            Ok(())
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let (old, new) = (ident_name(&old_column_name), ident_name(&new_column_name));
            rename_column(def, &old_column_name, &new_column_name)?;
            // A SERIAL or identity sequence stays the column's.
            let catalog = catalog::Catalog::load(view).await?;
            for seq in catalog.owned_sequences(&def.name) {
                if seq.owned_by.as_ref().is_some_and(|(_, c)| *c == old) {
                    let mut seq = seq.as_ref().clone();
                    seq.owned_by = Some((def.name.clone(), new.clone()));
                    catalog::put_sequence(view, &seq)?;
                }
            }
            // Foreign keys that reference the column follow it.
            let table = def.name.clone();
            retarget_references(view, def, |f| {
                if f.ref_table == table {
                    for c in &mut f.ref_columns {
                        if *c == old {
                            c.clone_from(&new);
                        }
                    }
                }
            })
            .await
        }
        AlterTableOperation::RenameTable { table_name } => {
            let new = match table_name {
                ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => n,
            };
            check_schema(&new)?;
            let new = object_name(&new);
            let catalog = catalog::Catalog::load(view).await?;
            if catalog.relation_exists(&new) {
                return Err(user_error(
                    SqlState::DUPLICATE_TABLE,
                    format!("relation \"{new}\" already exists"),
                ));
            }
            let old = def.name.clone();
            retarget_references(view, def, |f| {
                if f.ref_table == old {
                    f.ref_table.clone_from(&new);
                }
            })
            .await?;
            for seq in catalog.owned_sequences(&def.name) {
                let mut seq = seq.as_ref().clone();
                if let Some((table, _)) = seq.owned_by.as_mut() {
                    table.clone_from(&new);
                }
                catalog::put_sequence(view, &seq)?;
            }
            def.name = new;
            Ok(())
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let pos = column_position(def, &column_name)?;
            alter_column(s, view, def, pos, op).await
        }
        AlterTableOperation::DropConstraint {
            if_exists, name, ..
        } => {
            let name = ident_name(&name);
            if let Some(index) = def.indexes.iter().find(|i| i.unique && i.name == name) {
                let catalog = catalog::Catalog::load(view).await?;
                crate::foreign_key::check_key_unreferenced(
                    &catalog,
                    def,
                    &index.columns,
                    &format!("constraint {name} on table {}", def.name),
                )?;
            }
            drop_constraint(def, &name, if_exists)
        }
        AlterTableOperation::OwnerTo { new_owner } => {
            let catalog = catalog::Catalog::load(view).await?;
            crate::privileges::set_owner_to(s, view, &catalog, &def.name, &new_owner).await
        }
        other => Err(unsupported(other)),
    }
}

/// The foreign keys (with their tables) that reference `table`.
fn referencing<'a>(
    catalog: &'a catalog::Catalog,
    table: &'a str,
) -> impl Iterator<Item = (&'a TableDef, &'a catalog::ForeignKeyDef)> {
    catalog.tables.values().flat_map(move |t| {
        t.foreign_keys
            .iter()
            .filter(move |f| f.ref_table == table)
            .map(move |f| (t.as_ref(), f))
    })
}

/// Applies `change` to every foreign key of every table (the altered one, `def`, included) and
/// writes back the tables it changed.
async fn retarget_references(
    view: &ReadView,
    def: &mut TableDef,
    change: impl Fn(&mut catalog::ForeignKeyDef),
) -> Result<()> {
    def.foreign_keys.iter_mut().for_each(&change);
    let catalog = catalog::Catalog::load(view).await?;
    for t in catalog.tables.values().filter(|t| t.name != def.name) {
        let mut t = t.as_ref().clone();
        let before = t.foreign_keys.clone();
        t.foreign_keys.iter_mut().for_each(&change);
        if t.foreign_keys != before {
            catalog::put_table(view, &t)?;
        }
    }
    Ok(())
}

async fn add_constraint(
    s: &mut Session,
    view: &ReadView,
    def: &mut TableDef,
    constraint: TableConstraint,
) -> Result<()> {
    match constraint {
        TableConstraint::PrimaryKey(pk) => {
            if !def.primary_key.is_empty() {
                return Err(user_error(
                    SqlState("42P16"),
                    format!(
                        "multiple primary keys for table \"{}\" are not allowed",
                        def.name
                    ),
                ));
            }
            let cols = index_columns(def, &pk.columns)?;
            let pk_name = pk
                .name
                .as_ref()
                .map(ident_name)
                .unwrap_or_else(|| format!("{}_pkey", def.name));
            check_relation_free(view, &pk_name).await?;
            let mut new = def.clone();
            new.primary_key = cols.clone();
            new.pk_name = Some(pk_name.clone());
            for &c in &cols {
                new.columns[c].not_null = true;
            }
            // The primary key is the storage key: every row moves to its new key.
            new.id = catalog::allocate_table_id(view).await?;
            catalog::move_stats(view, def.id, new.id).await?;
            rewrite(view, def, &new, &pk_name).await?;
            if def.auto_increment.is_some() {
                // The AUTO_INCREMENT counter belongs to the storage id: carry it over.
                let old = crate::sequence::auto_increment_counter(def.id);
                let next = crate::sequence::counter_next(&s.engine, &old).await?;
                let new_counter = crate::sequence::auto_increment_counter(new.id);
                crate::sequence::allocate(&s.engine, &new_counter, 0, next).await?;
            }
            *def = new;
            Ok(())
        }
        TableConstraint::Unique(u) => {
            let cols = index_columns(def, &u.columns)?;
            let index_name = u
                .name
                .as_ref()
                .map(ident_name)
                .unwrap_or_else(|| format!("{}_{}_key", def.name, names(def, &cols)));
            check_relation_free(view, &index_name).await?;
            let index = IndexDef {
                id: IndexId(def.next_index_id),
                name: index_name,
                columns: cols,
                unique: true,
            };
            def.next_index_id += 1;
            backfill_index(view, def, &index).await?;
            def.indexes.push(index);
            Ok(())
        }
        TableConstraint::Check(ch) => {
            crate::sql::reject_subquery(&ch.expr, "check constraint")?;
            let check = CheckDef {
                name: match &ch.name {
                    Some(n) => ident_name(n),
                    None => check_name(def, &ch.expr),
                },
                expr: ch.expr.to_string(),
            };
            if def.checks.iter().any(|c| c.name == check.name) {
                return Err(user_error(
                    SqlState::DUPLICATE_OBJECT,
                    format!(
                        "constraint \"{}\" for relation \"{}\" already exists",
                        check.name, def.name
                    ),
                ));
            }
            view.depend_on_rows(def);
            refresh_env(s, view, def).await?;
            let violated = count(
                s,
                &format!(
                    "SELECT count(*) FROM {} WHERE (({}) IS FALSE)",
                    quote_ident(&def.name),
                    check.expr
                ),
            )
            .await?;
            if violated > 0 {
                return Err(user_error(
                    SqlState::CHECK_VIOLATION,
                    format!(
                        "check constraint \"{}\" of relation \"{}\" is violated by some row",
                        check.name, def.name
                    ),
                ));
            }
            def.checks.push(check);
            Ok(())
        }
        TableConstraint::ForeignKey(fk) => {
            let cols = fk
                .columns
                .iter()
                .map(|c| column_position(def, c))
                .collect::<Result<Vec<_>>>()?;
            let catalog = catalog::Catalog::load(view).await?;
            let defined = crate::foreign_key::define(&catalog, def, &cols, &fk)?;
            crate::foreign_key::touch_parent(view, &catalog, &defined, &def.name)?;
            if def.foreign_keys.iter().any(|f| f.name == defined.name) {
                return Err(user_error(
                    SqlState::DUPLICATE_OBJECT,
                    format!(
                        "constraint \"{}\" for relation \"{}\" already exists",
                        defined.name, def.name
                    ),
                ));
            }
            def.foreign_keys.push(defined);
            // The rows already there must satisfy it.
            let (start, end) = def.row_range();
            view.depend_on_rows(def);
            let rows = view
                .scan(&start, &end, None)
                .await?
                .into_iter()
                .map(|(_, v)| def.decode_row(&v))
                .collect::<Result<Vec<_>>>()?;
            let only = TableDef {
                foreign_keys: vec![def.foreign_keys.last().expect("just pushed").clone()],
                ..def.clone()
            };
            crate::foreign_key::check_references(view, &catalog, &only, &rows).await
        }
        other => Err(unsupported(format!("ADD {other}"))),
    }
}

/// A relation name (table, key or index) must be free in the schema.
async fn check_relation_free(view: &ReadView, name: &str) -> Result<()> {
    let catalog = catalog::Catalog::load(view).await?;
    if catalog.relation_exists(name) {
        return Err(user_error(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    Ok(())
}

/// Copies every row of `old` into `new` (a fresh storage id and maybe a new primary key),
/// writing `new`'s index entries; a duplicate on the new key is PostgreSQL's "could not create
/// unique index" and a NULL in it a not-null error.
async fn rewrite(view: &ReadView, old: &TableDef, new: &TableDef, key_name: &str) -> Result<()> {
    let (start, end) = old.row_range();
    view.depend_on_rows(old);
    let prefix_len = index_prefix(old.id, IndexId::PRIMARY).len();
    for (key, value) in view.scan(&start, &end, None).await? {
        let row = old.decode_row(&value)?;
        for &c in &new.primary_key {
            if row[c].is_null() {
                return Err(contains_nulls(new, c));
            }
        }
        let pk = if new.primary_key.is_empty() {
            let mut pk = index_prefix(new.id, IndexId::PRIMARY);
            pk.extend_from_slice(&key[prefix_len..]);
            pk
        } else {
            new.row_key(&row, 0)
        };
        if !new.primary_key.is_empty() && view.get(&pk).await?.is_some() {
            return Err(not_unique(new, key_name, &new.primary_key, &row));
        }
        if let Some((_, name, cols)) = crate::dml::find_conflict(view, new, &row, &pk, None).await?
        {
            return Err(not_unique(new, &name, &cols, &row));
        }
        crate::dml::put_row(view, new, &pk, &row);
    }
    Ok(())
}

/// Every row of `def` has a value in column `pos` (for NOT NULL).
async fn check_no_nulls(view: &ReadView, def: &TableDef, pos: usize) -> Result<()> {
    let (start, end) = def.row_range();
    view.depend_on_rows(def);
    for (_, value) in view.scan(&start, &end, None).await? {
        if def.decode_row(&value)?[pos].is_null() {
            return Err(contains_nulls(def, pos));
        }
    }
    Ok(())
}

fn contains_nulls(def: &TableDef, column: usize) -> thunderdb_common::ThunderError {
    user_error(
        SqlState::NOT_NULL_VIOLATION,
        format!(
            "column \"{}\" of relation \"{}\" contains null values",
            def.columns[column].name, def.name
        ),
    )
}

/// Puts `def` in the transaction and resolves table names through the same view, so that a
/// query this statement runs next sees the definition as it now is.
async fn refresh_env(s: &mut Session, view: &ReadView, def: &TableDef) -> Result<()> {
    catalog::put_table(view, def)?;
    let env = Arc::new(crate::provider::StatementEnv {
        catalog: Arc::new(catalog::Catalog::load(view).await?),
        view: view.clone(),
        key_table: None,
    });
    s.use_env(&env);
    Ok(())
}

async fn count(s: &mut Session, sql: &str) -> Result<i64> {
    let plan = s.plan_sql(sql, &[]).await?;
    let (_, batches) = s.collect(plan).await?;
    Ok(batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0))
}

async fn add_column(
    s: &mut Session,
    view: &ReadView,
    def: &mut TableDef,
    column: ast::ColumnDef,
    if_not_exists: bool,
) -> Result<()> {
    let name = ident_name(&column.name);
    if def.column_index(&name).is_some() {
        if if_not_exists {
            return Ok(());
        }
        return Err(user_error(
            SqlState::DUPLICATE_COLUMN,
            format!(
                "column \"{name}\" of relation \"{}\" already exists",
                def.name
            ),
        ));
    }
    let mut new = ColumnDef {
        id: def.next_column_id,
        name: name.clone(),
        ty: crate::enums::column_type(s, &s.current_catalog(), &column.data_type)?,
        not_null: false,
        default: None,
    };
    if let Some(ty) = crate::sequence_sql::serial_type(&column.data_type) {
        let catalog = catalog::Catalog::load(view).await?;
        let seq = crate::sequence_sql::column_sequence(
            view,
            &catalog,
            &def.name,
            &name,
            ty.clone(),
            &[],
            false,
        )
        .await?;
        // The sequence belongs to whoever owns the table.
        if let Some(mut acl) = catalog::get_acl(view, &def.name).await? {
            acl.relation = seq.name.clone();
            acl.grants = None;
            catalog::put_acl(view, &acl)?;
        }
        new.ty = ty;
        new.default = Some(crate::sequence_sql::nextval_default(&seq));
        new.not_null = true;
    }
    let mut unique = false;
    let mut checks = Vec::new();
    for opt in &column.options {
        match &opt.option {
            ColumnOption::NotNull => new.not_null = true,
            ColumnOption::Null => {}
            ColumnOption::Default(e) => {
                crate::sql::reject_subquery(e, "DEFAULT expression")?;
                new.default = Some(e.to_string())
            }
            ColumnOption::Unique(_) => unique = true,
            ColumnOption::Check(c) => checks.push(TableConstraint::Check(c.clone())),
            other => return Err(unsupported(format!("ADD COLUMN … {other}"))),
        }
    }
    if let Some(d) = &new.default {
        s.plan_sql(&format!("SELECT ({d})"), &[]).await?;
    }
    def.next_column_id += 1;
    def.schema_version += 1;
    let not_null = std::mem::take(&mut new.not_null);
    let default = new.default.clone();
    def.columns.push(new);
    let pos = def.columns.len() - 1;
    // Existing rows get the default (evaluated per row, as PostgreSQL does for a volatile
    // one); the definition must be in place for the UPDATE to see the column.
    if let Some(default) = default {
        view.depend_on_rows(def);
        catalog::put_table(view, def)?;
        let sql = format!(
            "UPDATE {} SET {} = {default}",
            quote_ident(&def.name),
            quote_ident(&name)
        );
        let stmt = crate::utility::parse_sql(&sql)?
            .pop()
            .expect("one statement");
        let ast::Statement::Update(update) = stmt else {
            unreachable!("an UPDATE parses as one")
        };
        crate::dml::update(s, update, &[]).await?;
    }
    if not_null {
        check_no_nulls(view, def, pos).await?;
        def.columns[pos].not_null = true;
    }
    for c in checks {
        add_constraint(s, view, def, c).await?;
    }
    if unique {
        let u = TableConstraint::Unique(ast::UniqueConstraint {
            name: None,
            index_name: None,
            index_type_display: ast::KeyOrIndexDisplay::None,
            index_type: None,
            columns: vec![ast::IndexColumn {
                column: ast::OrderByExpr {
                    expr: Expr::Identifier(column.name.clone()),
                    options: ast::OrderByOptions {
                        asc: None,
                        nulls_first: None,
                    },
                    with_fill: None,
                },
                operator_class: None,
            }],
            index_options: vec![],
            characteristics: None,
            nulls_distinct: ast::NullsDistinctOption::None,
        });
        add_constraint(s, view, def, u).await?;
    }
    Ok(())
}

fn drop_column(def: &mut TableDef, column: &Ident, if_exists: bool) -> Result<()> {
    let name = ident_name(column);
    let Some(pos) = def.column_index(&name) else {
        if if_exists {
            return Ok(());
        }
        return Err(no_column(def, &name));
    };
    if def.primary_key.contains(&pos) {
        return Err(unsupported(
            "DROP COLUMN of a primary key column (drop or change the key first)",
        ));
    }
    if def.columns.len() == 1 {
        // PostgreSQL allows a table without columns; our row encoding needs one.
        return Err(unsupported("DROP COLUMN of the last column"));
    }
    let id = def.columns[pos].id;
    def.columns.remove(pos);
    // Indexes and checks on the column go with it, as in PostgreSQL.
    def.indexes.retain(|i| !i.columns.contains(&pos));
    let shift = |c: &mut usize| {
        if *c > pos {
            *c -= 1;
        }
    };
    def.foreign_keys.retain(|f| !f.columns.contains(&pos));
    def.primary_key.iter_mut().for_each(shift);
    for i in &mut def.indexes {
        i.columns.iter_mut().for_each(shift);
    }
    for f in &mut def.foreign_keys {
        f.columns.iter_mut().for_each(shift);
    }
    def.checks
        .retain(|c| !expr_mentions(&c.expr, &name).unwrap_or(true));
    if def.auto_increment == Some(id) {
        def.auto_increment = None;
    }
    def.schema_version += 1;
    Ok(())
}

fn rename_column(def: &mut TableDef, old: &Ident, new: &Ident) -> Result<()> {
    let pos = column_position(def, old)?;
    let (old, new) = (ident_name(old), ident_name(new));
    if def.column_index(&new).is_some() {
        return Err(user_error(
            SqlState::DUPLICATE_COLUMN,
            format!(
                "column \"{new}\" of relation \"{}\" already exists",
                def.name
            ),
        ));
    }
    def.columns[pos].name = new.clone();
    for check in &mut def.checks {
        check.expr = rename_in_expr(&check.expr, &old, &new)?;
    }
    Ok(())
}

async fn alter_column(
    s: &mut Session,
    view: &ReadView,
    def: &mut TableDef,
    pos: usize,
    op: AlterColumnOperation,
) -> Result<()> {
    match op {
        AlterColumnOperation::SetNotNull => {
            check_no_nulls(view, def, pos).await?;
            def.columns[pos].not_null = true;
        }
        AlterColumnOperation::DropNotNull => {
            if def.primary_key.contains(&pos) {
                return Err(user_error(
                    SqlState("42P16"),
                    format!("column \"{}\" is in a primary key", def.columns[pos].name),
                ));
            }
            def.columns[pos].not_null = false;
        }
        AlterColumnOperation::SetDefault { value } => {
            crate::sql::reject_subquery(&value, "DEFAULT expression")?;
            let text = value.to_string();
            s.plan_sql(&format!("SELECT ({text})"), &[]).await?;
            def.columns[pos].default = Some(text);
        }
        AlterColumnOperation::DropDefault => def.columns[pos].default = None,
        AlterColumnOperation::SetDataType {
            data_type, using, ..
        } => set_data_type(s, view, def, pos, &data_type, using.as_ref()).await?,
        other => return Err(unsupported(format!("ALTER COLUMN … {other}"))),
    }
    Ok(())
}

/// `ALTER COLUMN c TYPE t [USING expr]`: every row's value converted in the transaction.
/// The converted values go to a new column id (filled by an UPDATE from the old one, so the
/// conversion is SQL's cast, or the USING expression, with its errors), which then takes the
/// column's place; a key or index over the column is rebuilt with the rows.
async fn set_data_type(
    s: &mut Session,
    view: &ReadView,
    def: &mut TableDef,
    pos: usize,
    data_type: &ast::DataType,
    using: Option<&Expr>,
) -> Result<()> {
    if let Some(e) = using {
        crate::sql::reject_subquery(e, "transform expression")?;
    }
    let catalog = s.current_catalog();
    let ty = crate::enums::column_type(s, &catalog, data_type)?;
    if ty == def.columns[pos].ty && using.is_none() {
        return Ok(());
    }
    let name = def.columns[pos].name.clone();
    let in_foreign_key = def.foreign_keys.iter().any(|fk| fk.columns.contains(&pos))
        || catalog.tables.values().any(|t| {
            t.foreign_keys
                .iter()
                .any(|fk| fk.ref_table == def.name && fk.ref_columns.contains(&name))
        });
    if in_foreign_key {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!(
                "cannot alter type of column \"{name}\": it is used by a foreign key constraint"
            ),
        ));
    }
    if let Some(d) = &def.columns[pos].default {
        // The default must still make a value of the new type.
        s.plan_sql(&format!("SELECT CAST(({d}) AS {data_type})"), &[])
            .await
            .map_err(|_| {
                user_error(
                    SqlState::DATATYPE_MISMATCH,
                    format!("default for column \"{name}\" cannot be cast automatically to type {data_type}"),
                )
            })?;
    }
    let staging = format!("__thunder_retype_{}", def.next_column_id);
    let staged = ColumnDef {
        id: def.next_column_id,
        name: staging.clone(),
        ty: ty.clone(),
        not_null: false,
        default: None,
    };
    def.next_column_id += 1;
    def.schema_version += 1;
    def.columns.push(staged);
    view.depend_on_rows(def);
    catalog::put_table(view, def)?;
    let value = match using {
        Some(e) => e.to_string(),
        None => format!("CAST({} AS {data_type})", quote_ident(&name)),
    };
    let sql = format!(
        "UPDATE {} SET {} = {value}",
        quote_ident(&def.name),
        quote_ident(&staging)
    );
    let Some(ast::Statement::Update(update)) = crate::utility::parse_sql(&sql)?.pop() else {
        unreachable!("an UPDATE parses as one")
    };
    let type_name = ty.pg_name();
    crate::dml::update(s, update, &[]).await.map_err(|mut e| {
        let automatic = using.is_none();
        if automatic && (e.state == SqlState::DATATYPE_MISMATCH || e.message.contains("cast")) {
            user_error(
                SqlState::DATATYPE_MISMATCH,
                format!("column \"{name}\" cannot be cast automatically to type {type_name}"),
            )
            .with_detail(format!(
                "You might need to specify \"USING {name}::{type_name}\"."
            ))
        } else {
            // Errors about the staged column are about the column.
            e.message = e.message.replace(&staging, &name);
            e.detail = e.detail.map(|d| d.replace(&staging, &name));
            e
        }
    })?;
    // The staged column takes the old one's place, name and constraints.
    let staged = def.columns.pop().expect("the staged column");
    let before = def.clone();
    if def.auto_increment == Some(def.columns[pos].id) {
        def.auto_increment = Some(staged.id);
    }
    def.columns[pos].id = staged.id;
    def.columns[pos].ty = ty;
    def.schema_version += 1;
    let keyed =
        def.primary_key.contains(&pos) || def.indexes.iter().any(|i| i.columns.contains(&pos));
    if keyed {
        // Keys and index entries encode the value: move every row to a fresh storage id.
        let mut moved = def.clone();
        moved.id = catalog::allocate_table_id(view).await?;
        catalog::move_stats(view, def.id, moved.id).await?;
        let mut staged_before = before.clone();
        staged_before.columns[pos].id = staged.id;
        staged_before.columns[pos].ty = staged.ty.clone();
        staged_before.auto_increment = def.auto_increment;
        let key_name = def
            .pk_name
            .clone()
            .unwrap_or_else(|| format!("{}_pkey", def.name));
        rewrite(view, &staged_before, &moved, &key_name).await?;
        if def.auto_increment.is_some() {
            // The AUTO_INCREMENT counter belongs to the storage id: carry it over.
            let old = crate::sequence::auto_increment_counter(def.id);
            let next = crate::sequence::counter_next(&s.engine, &old).await?;
            let new_counter = crate::sequence::auto_increment_counter(moved.id);
            crate::sequence::allocate(&s.engine, &new_counter, 0, next).await?;
        }
        *def = moved;
    }
    if def.columns[pos].not_null {
        check_no_nulls(view, def, pos).await?;
    }
    // CHECK constraints over the column hold for the converted values too.
    refresh_env(s, view, def).await?;
    for check in def.checks.clone() {
        if !expr_mentions(&check.expr, &name)? {
            continue;
        }
        let sql = format!(
            "SELECT count(*) FROM {} WHERE NOT ({})",
            quote_ident(&def.name),
            check.expr
        );
        if count(s, &sql).await? > 0 {
            return Err(user_error(
                SqlState::CHECK_VIOLATION,
                format!(
                    "check constraint \"{}\" of relation \"{}\" is violated by some row",
                    check.name,
                    catalog::split_relation_key(&def.name).1
                ),
            ));
        }
    }
    Ok(())
}

fn drop_constraint(def: &mut TableDef, name: &str, if_exists: bool) -> Result<()> {
    let checks = def.checks.len();
    def.checks.retain(|c| c.name != name);
    if def.checks.len() != checks {
        return Ok(());
    }
    let fks = def.foreign_keys.len();
    def.foreign_keys.retain(|f| f.name != name);
    if def.foreign_keys.len() != fks {
        return Ok(());
    }
    if let Some(i) = def.indexes.iter().position(|i| i.unique && i.name == name) {
        def.indexes.remove(i);
        return Ok(());
    }
    if def.pk_name.as_deref() == Some(name) {
        return Err(unsupported("DROP CONSTRAINT of the primary key"));
    }
    if if_exists {
        return Ok(());
    }
    Err(user_error(
        SqlState::UNDEFINED_OBJECT,
        format!(
            "constraint \"{name}\" of relation \"{}\" does not exist",
            def.name
        ),
    ))
}

fn parse_expr(text: &str) -> Result<Expr> {
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| thunderdb_common::ThunderError::internal(format!("stored expression: {e}")))
}

/// Whether the stored expression `text` names column `column`.
fn expr_mentions(text: &str, column: &str) -> Result<bool> {
    use datafusion::sql::sqlparser::ast::Visit;
    struct Finder<'a>(&'a str);
    impl datafusion::sql::sqlparser::ast::Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(i) if ident_name(i) == self.0 => ControlFlow::Break(()),
                Expr::CompoundIdentifier(parts)
                    if parts.last().is_some_and(|i| ident_name(i) == self.0) =>
                {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    Ok(parse_expr(text)?.visit(&mut Finder(column)).is_break())
}

/// The stored expression `text` with column `old` called `new`.
fn rename_in_expr(text: &str, old: &str, new: &str) -> Result<String> {
    use datafusion::sql::sqlparser::ast::VisitMut;
    struct Renamer<'a>(&'a str, &'a str);
    impl datafusion::sql::sqlparser::ast::VisitorMut for Renamer<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            let ident = match e {
                Expr::Identifier(i) => Some(i),
                Expr::CompoundIdentifier(parts) => parts.last_mut(),
                _ => None,
            };
            if let Some(i) = ident
                && ident_name(i) == self.0
            {
                *i = Ident::with_quote('"', self.1);
            }
            ControlFlow::Continue(())
        }
    }
    let mut expr = parse_expr(text)?;
    let _ = expr.visit(&mut Renamer(old, new));
    Ok(expr.to_string())
}
