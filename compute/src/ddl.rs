//! CREATE/DROP TABLE, CREATE/DROP INDEX, TRUNCATE, VACUUM and ANALYZE: catalog changes written in the transaction like any
//! other key, so DDL is transactional and versioned by LSN.

use crate::catalog::{self, CheckDef, ColumnDef, IndexDef, TableDef};
use crate::convert::datum_text;
use crate::error::DfResultExt;
use crate::error::{Result, user_error};
use crate::session::quote_ident;
use crate::session::{CommandTag, QueryOutput, Session};
use crate::sql::{ident_name, object_name, schema_of};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, Expr, ObjectName, ObjectType, TableConstraint,
};
use std::collections::HashSet;
use std::sync::Arc;
use thunderdb_common::ThunderError;
use thunderdb_common::{IndexId, SqlState};

pub(crate) fn check_schema(name: &ObjectName) -> Result<()> {
    match schema_of(name) {
        None => Ok(()),
        Some(s) if s == "public" => Ok(()),
        Some(s) => Err(user_error(
            SqlState::INVALID_SCHEMA_NAME,
            format!("schema \"{s}\" does not exist"),
        )),
    }
}

pub(crate) fn index_columns(def: &TableDef, cols: &[ast::IndexColumn]) -> Result<Vec<usize>> {
    cols.iter()
        .map(|c| match &c.column.expr {
            Expr::Identifier(i) => {
                let n = ident_name(i);
                def.column_index(&n).ok_or_else(|| {
                    user_error(
                        SqlState::UNDEFINED_COLUMN,
                        format!("column \"{n}\" does not exist"),
                    )
                })
            }
            other => Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("index on expression {other} is not supported"),
            )),
        })
        .collect()
}

pub(crate) fn names(def: &TableDef, cols: &[usize]) -> String {
    cols.iter()
        .map(|&i| def.columns[i].name.as_str())
        .collect::<Vec<_>>()
        .join("_")
}

/// PostgreSQL's name for an unnamed table CHECK: `<table>_<first column it reads>_check`, or
/// `<table>_check`, numbered when taken.
pub(crate) fn check_name(def: &TableDef, expr: &Expr) -> String {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    use std::ops::ControlFlow;
    struct First<'a>(&'a TableDef, Option<String>);
    impl Visitor for First<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Identifier(i) = e
                && self.0.column_index(&ident_name(i)).is_some()
            {
                self.1 = Some(ident_name(i));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut first = First(def, None);
    let _ = expr.visit(&mut first);
    let base = match first.1 {
        Some(col) => format!("{}_{col}_check", def.name),
        None => format!("{}_check", def.name),
    };
    let taken = |n: &str| def.checks.iter().any(|c| c.name == n);
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !taken(n))
        .expect("an unused name exists")
}

pub async fn create_table(s: &mut Session, mut ct: ast::CreateTable) -> Result<QueryOutput> {
    let done = || Ok(QueryOutput::Command(CommandTag::new("CREATE TABLE")));
    if ct.or_replace {
        return Err(user_error(
            SqlState::SYNTAX_ERROR,
            "syntax error at or near \"TABLE\"",
        ));
    }
    let name = object_name(&ct.name);
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    if let Some(query) = ct.query.take() {
        if env.catalog.relation_exists(&name) && ct.if_not_exists {
            return done();
        }
        return create_table_as(s, ct, *query).await;
    }
    if env.catalog.relation_exists(&name) {
        if ct.if_not_exists {
            return done();
        }
        return Err(user_error(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    if ct.temporary {
        crate::schemas::prepare_temp_table(s, &env, &name).await?;
    } else if ct.on_commit.is_some() {
        return Err(user_error(
            SqlState("42P16"),
            "ON COMMIT can only be used on temporary tables",
        ));
    }
    let table_id = catalog::allocate_table_id(&env.view).await?;
    if ct.temporary {
        s.note_temp_table(&name, ct.on_commit);
    }
    // The sequences of SERIAL and identity columns made along.
    let mut sequences: Vec<String> = Vec::new();
    let mut def = TableDef {
        id: table_id,
        name: name.clone(),
        columns: Vec::new(),
        primary_key: Vec::new(),
        pk_name: None,
        indexes: Vec::new(),
        checks: Vec::new(),
        schema_version: 1,
        next_column_id: 1,
        next_index_id: 1,
        auto_increment: None,
        foreign_keys: Vec::new(),
    };
    // Foreign keys are defined once every column and key of the table is known (a table may
    // reference itself).
    let mut foreign: Vec<(Vec<usize>, ast::ForeignKeyConstraint)> = Vec::new();
    let mut uniques: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    let mut seen = HashSet::new();
    for (pos, col) in ct.columns.iter().enumerate() {
        let cname = ident_name(&col.name);
        if !seen.insert(cname.clone()) {
            return Err(user_error(
                SqlState::DUPLICATE_COLUMN,
                format!("column \"{cname}\" specified more than once"),
            ));
        }
        let mut column = ColumnDef {
            id: def.next_column_id,
            name: cname.clone(),
            ty: crate::enums::column_type(s, &env.catalog, &col.data_type)?,
            not_null: false,
            default: None,
        };
        def.next_column_id += 1;
        // SERIAL: an integer column whose default is its own sequence's nextval.
        if let Some(ty) = crate::sequence_sql::serial_type(&col.data_type) {
            column.ty = ty.clone();
            let seq = crate::sequence_sql::column_sequence(
                &env.view,
                &env.catalog,
                &name,
                &cname,
                ty,
                &[],
                false,
            )
            .await?;
            column.default = Some(crate::sequence_sql::nextval_default(&seq));
            column.not_null = true;
            sequences.push(seq.name);
        }
        for opt in &col.options {
            if let ColumnOption::Generated {
                generated_as: generated @ (ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault),
                sequence_options,
                generation_expr: None,
                ..
            } = &opt.option
            {
                let always = *generated == ast::GeneratedAs::Always;
                let options = sequence_options.clone().unwrap_or_default();
                if !column.ty.is_integer() {
                    return Err(user_error(
                        SqlState::DATATYPE_MISMATCH,
                        "identity column type must be smallint, integer, or bigint",
                    ));
                }
                let seq = crate::sequence_sql::column_sequence(
                    &env.view,
                    &env.catalog,
                    &name,
                    &cname,
                    column.ty.clone(),
                    &options,
                    always,
                )
                .await?;
                column.default = Some(crate::sequence_sql::nextval_default(&seq));
                column.not_null = true;
                sequences.push(seq.name);
                continue;
            }
            match &opt.option {
                ColumnOption::NotNull => column.not_null = true,
                ColumnOption::Null => {}
                ColumnOption::Default(e) => {
                    crate::sql::reject_subquery(e, "DEFAULT expression")?;
                    column.default = Some(e.to_string())
                }
                ColumnOption::PrimaryKey(_) => {
                    if !def.primary_key.is_empty() {
                        return Err(user_error(
                            SqlState("42P16"),
                            format!("multiple primary keys for table \"{name}\" are not allowed"),
                        ));
                    }
                    def.primary_key = vec![pos];
                    column.not_null = true;
                }
                ColumnOption::Unique(_) => {
                    uniques.push((opt.name.as_ref().map(ident_name), vec![pos]))
                }
                ColumnOption::ForeignKey(fk) => {
                    let mut fk = fk.clone();
                    if fk.name.is_none() {
                        fk.name = opt.name.clone();
                    }
                    foreign.push((vec![pos], fk))
                }
                // MySQL's AUTO_INCREMENT: values come from the table's counter.
                ColumnOption::DialectSpecific(tokens)
                    if tokens.len() == 1
                        && tokens[0].to_string().eq_ignore_ascii_case("auto_increment") =>
                {
                    if def.auto_increment.is_some() {
                        return Err(user_error(
                            SqlState::INVALID_PARAMETER_VALUE,
                            "Incorrect table definition; there can be only one auto column",
                        ));
                    }
                    if !column.ty.is_integer() {
                        return Err(user_error(
                            SqlState::DATATYPE_MISMATCH,
                            format!("Incorrect column specifier for column '{cname}'"),
                        ));
                    }
                    def.auto_increment = Some(column.id);
                    column.not_null = true;
                }
                ColumnOption::Check(c) => {
                    crate::sql::reject_subquery(&c.expr, "check constraint")?;
                    def.checks.push(CheckDef {
                        name: c
                            .name
                            .as_ref()
                            .or(opt.name.as_ref())
                            .map(ident_name)
                            .unwrap_or_else(|| format!("{name}_{cname}_check")),
                        expr: c.expr.to_string(),
                    })
                }
                other => {
                    return Err(user_error(
                        SqlState::FEATURE_NOT_SUPPORTED,
                        format!("column option {other} is not supported yet"),
                    ));
                }
            }
        }
        def.columns.push(column);
    }
    for c in &ct.constraints {
        match c {
            TableConstraint::PrimaryKey(pk) => {
                if !def.primary_key.is_empty() {
                    return Err(user_error(
                        SqlState("42P16"),
                        format!("multiple primary keys for table \"{name}\" are not allowed"),
                    ));
                }
                def.primary_key = index_columns(&def, &pk.columns)?;
                def.pk_name = pk.name.as_ref().map(ident_name);
                for &i in &def.primary_key.clone() {
                    def.columns[i].not_null = true;
                }
            }
            TableConstraint::Unique(u) => uniques.push((
                u.name.as_ref().map(ident_name),
                index_columns(&def, &u.columns)?,
            )),
            TableConstraint::ForeignKey(fk) => {
                let cols = fk
                    .columns
                    .iter()
                    .map(|c| {
                        let n = ident_name(c);
                        def.column_index(&n).ok_or_else(|| {
                            user_error(
                                SqlState::UNDEFINED_COLUMN,
                                format!("column \"{n}\" referenced in foreign key constraint does not exist"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                foreign.push((cols, fk.clone()));
            }
            TableConstraint::Check(ch) => {
                crate::sql::reject_subquery(&ch.expr, "check constraint")?;
                let cname = match &ch.name {
                    Some(n) => ident_name(n),
                    None => check_name(&def, &ch.expr),
                };
                def.checks.push(CheckDef {
                    name: cname,
                    expr: ch.expr.to_string(),
                })
            }
            other => {
                return Err(user_error(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    format!("constraint {other} is not supported yet"),
                ));
            }
        }
    }
    if !def.primary_key.is_empty() && def.pk_name.is_none() {
        def.pk_name = Some(format!("{name}_pkey"));
    }
    for (uname, cols) in uniques {
        let id = IndexId(def.next_index_id);
        def.next_index_id += 1;
        let iname = uname.unwrap_or_else(|| format!("{name}_{}_key", names(&def, &cols)));
        def.indexes.push(IndexDef {
            id,
            name: iname,
            columns: cols,
            unique: true,
        });
    }
    for (cols, fk) in foreign {
        let defined = crate::foreign_key::define(&env.catalog, &def, &cols, &fk)?;
        crate::foreign_key::touch_parent(&env.view, &env.catalog, &defined, &def.name)?;
        def.foreign_keys.push(defined);
    }
    // Reject defaults and checks that do not even plan, now rather than at the first INSERT.
    for c in def.columns.iter().filter_map(|c| c.default.as_ref()) {
        s.plan_sql(&format!("SELECT ({c})"), &[]).await?;
    }
    catalog::put_table(&env.view, &def)?;
    // The creator owns the table and its SERIAL and identity sequences.
    for relation in std::iter::once(&def.name).chain(&sequences) {
        crate::privileges::set_owner(s, &env.view, &env.catalog, relation)?;
    }
    s.note_write(env.view.snapshot);
    done()
}

pub async fn create_index(s: &mut Session, ci: ast::CreateIndex) -> Result<QueryOutput> {
    let done = || Ok(QueryOutput::Command(CommandTag::new("CREATE INDEX")));
    if ci.predicate.is_some() || !ci.include.is_empty() {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "partial and covering indexes are not supported yet",
        ));
    }
    if let Some(using) = &ci.using
        && !using.to_string().eq_ignore_ascii_case("btree")
    {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("index method \"{using}\" is not supported yet"),
        ));
    }
    check_schema(&ci.table_name)?;
    let table = object_name(&ci.table_name);
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let mut def = env.catalog.table(&table)?.as_ref().clone();
    let cols = index_columns(&def, &ci.columns)?;
    let name = ci
        .name
        .as_ref()
        .map(object_name)
        .unwrap_or_else(|| format!("{table}_{}_idx", names(&def, &cols)));
    if env.catalog.relation_exists(&name) {
        if ci.if_not_exists {
            return done();
        }
        return Err(user_error(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    let index = IndexDef {
        id: IndexId(def.next_index_id),
        name: name.clone(),
        columns: cols.clone(),
        unique: ci.unique,
    };
    def.next_index_id += 1;
    backfill_index(&env.view, &def, &index).await?;
    def.indexes.push(index);
    catalog::put_table(&env.view, &def)?;
    s.note_write(env.view.snapshot);
    done()
}

/// Writes the entries of a new index for every row visible to the transaction, checking
/// uniqueness as PostgreSQL's CREATE UNIQUE INDEX does.
pub(crate) async fn backfill_index(
    view: &crate::txn::ReadView,
    def: &TableDef,
    index: &IndexDef,
) -> Result<()> {
    let (start, end) = def.row_range();
    view.depend_on_rows(def);
    for (pk, value) in view.scan(&start, &end, None).await? {
        let row = def.decode_row(&value)?;
        let key = def.index_key(index, &row, &pk);
        if index.unique
            && let Some(other) = view.get(&key).await?
            && other.as_ref() != pk.as_slice()
        {
            return Err(not_unique(def, &index.name, &index.columns, &row));
        }
        view.put(key, pk);
    }
    Ok(())
}

/// PostgreSQL's error when existing rows break a unique index being built.
pub(crate) fn not_unique(
    def: &TableDef,
    name: &str,
    cols: &[usize],
    row: &[thunderdb_common::Datum],
) -> thunderdb_common::ThunderError {
    let values: Vec<String> = cols.iter().map(|&i| datum_text(&row[i])).collect();
    let columns: Vec<&str> = cols.iter().map(|&i| def.columns[i].name.as_str()).collect();
    user_error(
        SqlState::UNIQUE_VIOLATION,
        format!("could not create unique index \"{name}\""),
    )
    .with_detail(format!(
        "Key ({})=({}) is duplicated.",
        columns.join(", "),
        values.join(", ")
    ))
}

pub async fn drop(
    s: &mut Session,
    object_type: ObjectType,
    if_exists: bool,
    names: Vec<ObjectName>,
) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let tag = match object_type {
        ObjectType::Table => "DROP TABLE",
        ObjectType::Index => "DROP INDEX",
        ObjectType::Sequence => "DROP SEQUENCE",
        ObjectType::View => "DROP VIEW",
        other => {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("DROP {other} is not supported yet"),
            ));
        }
    };
    for n in &names {
        check_schema(n)?;
        let name = object_name(n);
        match object_type {
            ObjectType::Sequence => {
                crate::sequence_sql::drop_sequence(&env.view, &env.catalog, &name, if_exists)?
            }
            ObjectType::View => crate::views::drop_view(&env.view, &env.catalog, &name, if_exists)?,
            ObjectType::Table => match env.catalog.tables.get(&name) {
                // Rows and index entries of a dropped table are unreachable: its id is never
                // reused. Compaction (storage issue) reclaims the space. Its SERIAL and
                // identity sequences go with it.
                Some(def) => {
                    if let Some(child) = env.catalog.tables.values().find(|t| {
                        t.name != name
                            && !names.iter().any(|n| object_name(n) == t.name)
                            && t.foreign_keys.iter().any(|fk| fk.ref_table == name)
                    }) {
                        return Err(user_error(
                            SqlState("2BP01"),
                            format!("cannot drop table {name} because other objects depend on it"),
                        )
                        .with_detail(format!(
                            "a foreign key constraint on table {} depends on table {name}",
                            child.name
                        )));
                    }
                    catalog::drop_table(&env.view, def);
                    for seq in env.catalog.owned_sequences(&name) {
                        catalog::delete_sequence(&env.view, &seq.name);
                    }
                }
                None if if_exists => {}
                None => {
                    return Err(user_error(
                        SqlState::UNDEFINED_TABLE,
                        format!("table \"{name}\" does not exist"),
                    ));
                }
            },
            _ => {
                let owner = env
                    .catalog
                    .tables
                    .values()
                    .find(|t| t.indexes.iter().any(|i| i.name == name));
                match owner {
                    Some(t) => {
                        if let Some(index) = t.indexes.iter().find(|i| i.unique && i.name == name) {
                            crate::foreign_key::check_key_unreferenced(
                                &env.catalog,
                                t,
                                &index.columns,
                                &format!("index {name}"),
                            )?;
                        }
                        let mut def = t.as_ref().clone();
                        def.indexes.retain(|i| i.name != name);
                        catalog::put_table(&env.view, &def)?;
                    }
                    None if env.catalog.relation_owner(&name).is_some() => {
                        return Err(user_error(
                            SqlState("2BP01"),
                            format!(
                                "cannot drop index {name} because constraint {name} on its table requires it"
                            ),
                        ));
                    }
                    None if if_exists => {}
                    None => {
                        return Err(user_error(
                            SqlState::UNDEFINED_OBJECT,
                            format!("index \"{name}\" does not exist"),
                        ));
                    }
                }
            }
        }
    }
    s.note_write(env.view.snapshot);
    Ok(QueryOutput::Command(CommandTag::new(tag)))
}

/// `TRUNCATE t, …`: each table gets a fresh storage id, so its rows and index entries are left
/// behind at once (as PostgreSQL gives the table a new file); transactional like any DDL, and a
/// concurrent writer to the table fails its commit (its writes depend on the old definition).
/// `CREATE TABLE name [(columns)] AS query`: a table with the query's columns, filled with
/// its rows; the tag is `SELECT n` as PostgreSQL's.
async fn create_table_as(
    s: &mut Session,
    mut ct: ast::CreateTable,
    query: ast::Query,
) -> Result<QueryOutput> {
    let plan = s
        .plan(ast::Statement::Query(Box::new(query.clone())), &[])
        .await?;
    let names: Vec<String> = ct.columns.iter().map(|c| ident_name(&c.name)).collect();
    let fields = plan.schema().fields().clone();
    if names.len() > fields.len() {
        return Err(user_error(
            SqlState::SYNTAX_ERROR,
            "CREATE TABLE AS specifies too many column names",
        ));
    }
    let mut columns = Vec::with_capacity(fields.len());
    for (i, f) in fields.iter().enumerate() {
        let ty = crate::types::sql_type_of_field(f).ok_or_else(|| {
            user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "column \"{}\" has type {} which a table cannot store yet",
                    f.name(),
                    f.data_type()
                ),
            )
        })?;
        let data_type = crate::types::parse_data_type(&ty.pg_name())?;
        let name = names.get(i).cloned().unwrap_or_else(|| f.name().clone());
        columns.push(ast::ColumnDef {
            name: ast::Ident::with_quote('"', name),
            data_type,
            options: vec![],
        });
    }
    ct.columns = columns;
    let target = ct.name.clone();
    Box::pin(create_table(s, ct)).await?;
    let insert = ast::Statement::Query(Box::new(query)).to_string();
    let mut statements = crate::session::parse_sql(&format!("INSERT INTO {target} {insert}"))?;
    let Some(ast::Statement::Insert(insert)) = statements.pop() else {
        return Err(thunderdb_common::ThunderError::internal(
            "CREATE TABLE AS insert",
        ));
    };
    let out = Box::pin(crate::dml::insert(s, insert, &[])).await?;
    let rows = match out {
        QueryOutput::Command(tag) => tag.rows.unwrap_or(0),
        _ => 0,
    };
    Ok(QueryOutput::Command(CommandTag::with_rows("SELECT", rows)))
}

pub async fn truncate(s: &mut Session, t: ast::Truncate) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let mut defs = Vec::new();
    for target in &t.table_names {
        check_schema(&target.name)?;
        let name = object_name(&target.name);
        let def = env.catalog.table(&name)?;
        if !defs.iter().any(|d: &TableDef| d.name == name) {
            defs.push(def.as_ref().clone());
        }
    }
    for d in &defs {
        if let Some(child) = env.catalog.tables.values().find(|c| {
            !defs.iter().any(|x| x.name == c.name)
                && c.foreign_keys.iter().any(|fk| fk.ref_table == d.name)
        }) {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                "cannot truncate a table referenced in a foreign key constraint",
            )
            .with_detail(format!(
                "Table \"{}\" references \"{}\".",
                child.name, d.name
            )));
        }
    }
    let restart = matches!(t.identity, Some(ast::TruncateIdentityOption::Restart));
    for mut def in defs {
        if restart {
            // Unlike PostgreSQL's, the restart is not undone if the TRUNCATE rolls back: the
            // sequence's state lives outside transactions (sequence.rs).
            for seq in env.catalog.owned_sequences(&def.name) {
                crate::sequence::restart(&s.engine, seq).await?;
            }
        }
        // The emptied table is a new one: no statistics until it is analyzed again.
        catalog::delete_stats(&env.view, def.id);
        def.id = catalog::allocate_table_id(&env.view).await?;
        catalog::put_table(&env.view, &def)?;
    }
    s.note_write(env.view.snapshot);
    Ok(QueryOutput::Command(CommandTag::new("TRUNCATE TABLE")))
}

/// `VACUUM [table]`: checks its target. Old row versions live in the pageserver's layers and
/// are reclaimed by its compaction, not by this statement.
pub async fn vacuum(s: &mut Session, v: ast::VacuumStatement) -> Result<QueryOutput> {
    vacuum_checks(s, v.table_name.as_ref()).await?;
    Ok(QueryOutput::Command(CommandTag::new("VACUUM")))
}

/// What VACUUM refuses: a transaction block, a table that is not there.
pub async fn vacuum_checks(s: &mut Session, table: Option<&ObjectName>) -> Result<()> {
    if s.in_block() {
        return Err(user_error(
            SqlState::ACTIVE_SQL_TRANSACTION,
            "VACUUM cannot run inside a transaction block",
        ));
    }
    if let Some(name) = table {
        maintained_table(s, name, &[]).await?;
    }
    Ok(())
}

/// `CHECKPOINT`: writes everything committed so far into layer files in object storage, so
/// a pageserver started on an empty disk restores it from there, and brings every changed
/// table's columnar segment up to date. Superusers only, as in PostgreSQL 15.
pub async fn checkpoint(s: &mut Session) -> Result<QueryOutput> {
    if s.user != s.engine.superuser() {
        let (env, _) = s.statement_env(None).await?;
        let role = crate::privileges::session_role(s, &env.catalog)?;
        if !role.superuser {
            return Err(user_error(
                SqlState::INSUFFICIENT_PRIVILEGE,
                "must be superuser or have privileges of pg_checkpoint to do CHECKPOINT",
            ));
        }
    }
    s.engine.pages.checkpoint().await?;
    s.engine.compactor.run(true).await?;
    Ok(QueryOutput::Command(CommandTag::new("CHECKPOINT")))
}

/// `ANALYZE [table [(columns)]]`: reads each table once (through the columnar segment where
/// it has one) and stores in the catalog, as a write of the transaction, its row count and
/// per column the fraction of NULLs, the average width and the number of distinct values
/// (a HyperLogLog estimate, exact for one-column unique keys). `pg_class.reltuples`,
/// `pg_stats` and the planner's column statistics read them. Without a table it analyzes
/// every table the role owns (all of them for a superuser), as PostgreSQL does, skipping
/// the others; a column list measures those columns and keeps the others' statistics.
pub async fn analyze(s: &mut Session, a: ast::Analyze) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let targets: Vec<(Arc<TableDef>, Vec<usize>)> = match &a.table_name {
        Some(name) => {
            maintained_table(s, name, &a.columns).await?;
            let table = object_name(name);
            let def = env.catalog.table(&table)?.clone();
            let role = crate::privileges::session_role(s, &env.catalog)?;
            if !crate::privileges::owns(&env.catalog, &def.name, &role) {
                // PostgreSQL warns ("only table or database owner can analyze it") and goes
                // on; ThunderDB sends no warnings yet, so it only skips the table.
                return Ok(QueryOutput::Command(CommandTag::new("ANALYZE")));
            }
            let columns = if a.columns.is_empty() {
                (0..def.columns.len()).collect()
            } else {
                a.columns
                    .iter()
                    .filter_map(|c| def.column_index(&ident_name(c)))
                    .collect()
            };
            vec![(def, columns)]
        }
        None => {
            let role = crate::privileges::session_role(s, &env.catalog)?;
            env.catalog
                .tables
                .values()
                .filter(|def| crate::privileges::owns(&env.catalog, &def.name, &role))
                .filter(|def| !s.is_other_sessions_temp(&def.name))
                .map(|def| (def.clone(), (0..def.columns.len()).collect()))
                .collect()
        }
    };
    // What ANALYZE reads does not make a SERIALIZABLE transaction depend on it: statistics
    // only guide plans, and PostgreSQL's ANALYZE never fails for serialization.
    let tracked = env.view.pause_read_tracking();
    let mut measured = Vec::with_capacity(targets.len());
    for (def, columns) in &targets {
        match measure(s, def, columns, env.catalog.stats_of(def)).await {
            Ok(stats) => measured.push(stats),
            Err(e) => {
                env.view.resume_read_tracking(tracked);
                return Err(e);
            }
        }
    }
    env.view.resume_read_tracking(tracked);
    for stats in &measured {
        catalog::put_stats(&env.view, stats)?;
    }
    s.note_write(env.view.snapshot);
    Ok(QueryOutput::Command(CommandTag::new("ANALYZE")))
}

/// Measures `columns` of `def` with one aggregate query; the other columns keep what
/// `previous` says of them.
async fn measure(
    s: &mut Session,
    def: &TableDef,
    columns: &[usize],
    previous: Option<&Arc<catalog::TableStats>>,
) -> Result<catalog::TableStats> {
    use datafusion::arrow::datatypes::DataType as A;
    let mut items = vec!["count(*)".to_string()];
    for &pos in columns {
        let c = &def.columns[pos];
        let name = quote_ident(&c.name);
        let arrow = crate::types::arrow_type(&c.ty);
        // approx_distinct takes integers, decimals, dates and times, strings, binaries and
        // lists; anything else (floats, json …) is counted through its text.
        let direct = matches!(
            arrow,
            A::Boolean
                | A::Int8
                | A::Int16
                | A::Int32
                | A::Int64
                | A::UInt8
                | A::UInt16
                | A::UInt32
                | A::UInt64
                | A::Decimal128(..)
                | A::Date32
                | A::Time64(_)
                | A::Timestamp(..)
                | A::Utf8
                | A::LargeUtf8
                | A::Binary
                | A::FixedSizeBinary(_)
                | A::List(_)
        );
        let distinct = if direct {
            format!("approx_distinct({name})")
        } else {
            format!("approx_distinct(CAST({name} AS VARCHAR))")
        };
        let width = match arrow {
            _ if crate::pg_catalog::fixed_width(&c.ty).is_some() => "NULL".to_string(),
            A::Binary | A::FixedSizeBinary(_) => format!("avg(octet_length({name}))"),
            _ => format!("avg(octet_length(CAST({name} AS VARCHAR)))"),
        };
        items.push(format!("count({name})"));
        items.push(distinct);
        items.push(format!("CAST({width} AS DOUBLE)"));
    }
    let items: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(k, item)| format!("{item} AS m{k}"))
        .collect();
    let sql = format!(
        "SELECT {} FROM {}",
        items.join(", "),
        quote_ident(&def.name)
    );
    let plan = s.plan_sql(&sql, &[]).await?;
    let (_, batches) = s.collect(plan).await?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| ThunderError::internal("ANALYZE's aggregate returned no row"))?;
    let value = |i: usize| -> Result<f64> {
        let v = ScalarValue::try_from_array(batch.column(i), 0).map_df()?;
        Ok(match v {
            ScalarValue::Int64(Some(n)) => n as f64,
            ScalarValue::UInt64(Some(n)) => n as f64,
            ScalarValue::Float64(Some(f)) => f,
            _ => 0.0,
        })
    };
    let rows = value(0)? as u64;
    let single_unique: Vec<usize> = def
        .indexes
        .iter()
        .filter(|i| i.unique && i.columns.len() == 1)
        .map(|i| i.columns[0])
        .chain((def.primary_key.len() == 1).then(|| def.primary_key[0]))
        .collect();
    let mut measured = Vec::with_capacity(columns.len());
    for (k, &pos) in columns.iter().enumerate() {
        let c = &def.columns[pos];
        let non_null = value(1 + 3 * k)? as u64;
        let unique = single_unique.contains(&pos);
        let distinct = if unique {
            non_null
        } else {
            // The estimate can overshoot a little; there are never more than the values.
            (value(2 + 3 * k)? as u64).min(non_null)
        };
        let avg_width = match crate::pg_catalog::fixed_width(&c.ty) {
            Some(w) => w,
            // PostgreSQL counts a short value's one-byte header.
            None => (value(3 + 3 * k)? + 1.0).round() as u32,
        };
        measured.push(catalog::ColumnStats {
            column: c.id,
            null_frac: if rows == 0 {
                0.0
            } else {
                (rows - non_null.min(rows)) as f64 / rows as f64
            },
            avg_width,
            distinct,
            unique,
        });
    }
    // Columns not measured this time keep their earlier statistics, if the column is still
    // there.
    if let Some(prev) = previous.filter(|p| p.table == def.id) {
        for old in &prev.columns {
            if !measured.iter().any(|m| m.column == old.column)
                && def.columns.iter().any(|c| c.id == old.column)
            {
                measured.push(old.clone());
            }
        }
    }
    measured.sort_by_key(|m| {
        def.columns
            .iter()
            .position(|c| c.id == m.column)
            .unwrap_or(usize::MAX)
    });
    // Each row's stored size: the widths of its values plus a tuple header, as
    // PostgreSQL's relpages would count them.
    let row_width: f64 = 24.0
        + measured
            .iter()
            .map(|m| f64::from(m.avg_width) * (1.0 - m.null_frac))
            .sum::<f64>();
    Ok(catalog::TableStats {
        table: def.id,
        rows,
        bytes: (row_width * rows as f64) as u64,
        columns: measured,
    })
}

async fn maintained_table(
    s: &mut Session,
    name: &ObjectName,
    columns: &[ast::Ident],
) -> Result<()> {
    check_schema(name)?;
    let (env, _) = s.statement_env(None).await?;
    let table = object_name(name);
    let def = env.catalog.table(&table)?;
    for c in columns {
        let column = ident_name(c);
        if def.column_index(&column).is_none() {
            return Err(user_error(
                SqlState::UNDEFINED_COLUMN,
                format!("column \"{column}\" of relation \"{table}\" does not exist"),
            ));
        }
    }
    Ok(())
}
