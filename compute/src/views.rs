//! Views: CREATE [OR REPLACE] VIEW stores the query's SQL with the columns it yields; a query
//! that names a view reads it as a sub-query in its place (expanded before planning, views
//! within views too). Views are read-only here.

use crate::catalog::{self, Catalog, ViewDef};
use crate::error::{Result, user_error};
use crate::session::{CommandTag, QueryOutput, Session};
use crate::sql::{ident_name, object_name};
use datafusion::sql::sqlparser::ast::{
    self, Ident, Statement, TableAlias, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut,
};
use std::collections::HashSet;
use std::ops::ControlFlow;
use thunderdb_common::SqlState;

/// More expansions than this in one statement are taken for views that name each other.
const MAX_EXPANSIONS: usize = 256;

/// `CREATE [OR REPLACE] VIEW name [(columns)] AS query`.
pub(crate) async fn create_view(s: &mut Session, cv: ast::CreateView) -> Result<QueryOutput> {
    if cv.temporary {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "CREATE TEMPORARY VIEW is not supported yet",
        ));
    }
    if cv.materialized {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "CREATE MATERIALIZED VIEW is not supported yet",
        ));
    }
    crate::ddl::check_schema(&cv.name)?;
    let name = object_name(&cv.name);
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let existing = env.catalog.views.get(&name).cloned();
    if existing.is_none() && env.catalog.relation_exists(&name)
        || existing.is_some() && !cv.or_replace
    {
        if cv.if_not_exists {
            return Ok(done());
        }
        return Err(user_error(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    // Plan the query now: it must be valid, and its output names the view's columns.
    let query = *cv.query;
    let out = s
        .query(Statement::Query(Box::new(query.clone())), &[])
        .await?;
    let QueryOutput::Rows { schema, .. } = out else {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "a view must be defined by a query",
        ));
    };
    let renamed: Vec<String> = cv.columns.iter().map(|c| ident_name(&c.name)).collect();
    if renamed.len() > schema.fields().len() {
        return Err(user_error(
            SqlState::SYNTAX_ERROR,
            "CREATE VIEW specifies more column names than columns",
        ));
    }
    let columns: Vec<(String, i64)> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                renamed.get(i).cloned().unwrap_or_else(|| f.name().clone()),
                crate::pg_catalog::arrow_type_oid(f.data_type()),
            )
        })
        .collect();
    let mut seen = HashSet::new();
    if let Some((dup, _)) = columns.iter().find(|(c, _)| !seen.insert(c.clone())) {
        return Err(user_error(
            SqlState::DUPLICATE_COLUMN,
            format!("column \"{dup}\" specified more than once"),
        ));
    }
    if let Some(old) = &existing {
        // PostgreSQL's OR REPLACE keeps the columns and may only add new ones at the end.
        let keeps = old.columns.len() <= columns.len()
            && old.columns.iter().zip(&columns).all(|(a, b)| a == b);
        if !keeps {
            return Err(user_error(
                SqlState("42P16"),
                "cannot change name or type of view column",
            ));
        }
    }
    let (env, _) = s.statement_env(None).await?;
    let id = match &existing {
        Some(old) => old.id,
        None => catalog::allocate_table_id(&env.view).await?,
    };
    let def = ViewDef {
        id,
        name,
        query: query.to_string(),
        columns,
    };
    // A replaced view must not come to read itself through others.
    let mut with_new = env.catalog.as_ref().clone();
    with_new
        .views
        .insert(def.name.clone(), std::sync::Arc::new(def.clone()));
    if let Some(mut probe) = crate::utility::parse_sql(&format!(
        "SELECT * FROM {}",
        crate::session::quote_ident(&def.name)
    ))?
    .pop()
    {
        expand(&mut probe, &with_new)?;
    }
    catalog::put_view(&env.view, &def)?;
    if existing.is_none() {
        crate::privileges::set_owner(s, &env.view, &env.catalog, &def.name)?;
    }
    s.note_write(env.view.snapshot);
    Ok(done())
}

fn done() -> QueryOutput {
    QueryOutput::Command(CommandTag::new("CREATE VIEW"))
}

/// `DROP VIEW name`.
pub(crate) fn drop_view(
    view: &crate::txn::ReadView,
    catalog: &Catalog,
    name: &str,
    if_exists: bool,
) -> Result<()> {
    if catalog.views.contains_key(name) {
        catalog::delete_view(view, name);
        return Ok(());
    }
    if if_exists {
        return Ok(());
    }
    if catalog.relation_exists(name) {
        return Err(user_error(
            SqlState::WRONG_OBJECT_TYPE,
            format!("\"{name}\" is not a view"),
        ));
    }
    Err(user_error(
        SqlState::UNDEFINED_TABLE,
        format!("view \"{name}\" does not exist"),
    ))
}

/// Replaces every reference to a view in `stmt` by the view's query (views within views
/// too: the visitor goes on into what it just put in).
pub(crate) fn expand(stmt: &mut Statement, catalog: &Catalog) -> Result<()> {
    if catalog.views.is_empty() {
        return Ok(());
    }
    let mut expander = Expander {
        catalog,
        ctes: crate::pg_catalog::cte_names(stmt),
        error: None,
        expansions: 0,
    };
    let _ = stmt.visit(&mut expander);
    match expander.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Expander<'a> {
    catalog: &'a Catalog,
    ctes: HashSet<String>,
    error: Option<thunderdb_common::ThunderError>,
    expansions: usize,
}

impl VisitorMut for Expander<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let qualified_public = name.0.len() == 2
            && name.0[0]
                .as_ident()
                .is_some_and(|i| ident_name(i) == "public");
        if !(name.0.len() == 1 || qualified_public) {
            return ControlFlow::Continue(());
        }
        let Some(last) = name.0.last().and_then(|p| p.as_ident()) else {
            return ControlFlow::Continue(());
        };
        let view_name = ident_name(last);
        if name.0.len() == 1 && self.ctes.contains(&view_name) {
            return ControlFlow::Continue(());
        }
        let Some(view) = self.catalog.views.get(&view_name).cloned() else {
            return ControlFlow::Continue(());
        };
        let query = match crate::pg_catalog::parse_query(&view.query) {
            Some(q) => q,
            None => {
                self.error = Some(thunderdb_common::ThunderError::internal(format!(
                    "stored query of view {view_name} does not parse"
                )));
                return ControlFlow::Break(());
            }
        };
        let mut alias = alias.take().unwrap_or(TableAlias {
            explicit: true,
            name: Ident::with_quote('"', view_name.clone()),
            columns: vec![],
            at: None,
        });
        if alias.columns.is_empty() {
            alias.columns = view
                .columns
                .iter()
                .map(|(c, _)| TableAliasColumnDef {
                    name: Ident::with_quote('"', c.clone()),
                    data_type: None,
                })
                .collect();
        }
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(query),
            alias: Some(alias),
            sample: None,
        };
        self.expansions += 1;
        if self.expansions > MAX_EXPANSIONS {
            self.error = Some(user_error(
                SqlState("42P17"),
                format!("infinite recursion detected in rules for relation \"{view_name}\""),
            ));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}
