//! `SELECT … FOR UPDATE / FOR SHARE`. Transactions here are optimistic, so a row lock is a
//! commit-time claim on the rows the query returned: FOR UPDATE writes each row back unchanged
//! (a write intent: two transactions that lock or change the same row cannot both commit —
//! the second gets 40001), FOR SHARE makes the commit depend on each row staying as read.

use crate::catalog::KEY_COLUMN;
use crate::error::{Result, user_error};
use crate::provider::StatementEnv;
use crate::session::{QueryOutput, Session};
use crate::sql::ident_name;
use datafusion::arrow::array::{Array, BinaryArray};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, Ident, LockType, Query, SelectItem, SetExpr, Statement, TableFactor,
};
use std::sync::Arc;
use thunderdb_common::SqlState;

/// Runs a query that has locking clauses: the rows, then the claims on them.
pub(crate) async fn locking_query(
    s: &mut Session,
    mut query: Query,
    params: &[ScalarValue],
    env: &Arc<StatementEnv>,
) -> Result<QueryOutput> {
    let locks = std::mem::take(&mut query.locks);
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(not_allowed("UNION/INTERSECT/EXCEPT"));
    };
    if select.distinct.is_some() {
        return Err(not_allowed("DISTINCT clause"));
    }
    if !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        || select.having.is_some()
    {
        return Err(not_allowed("GROUP BY clause"));
    }
    // The tables of the FROM clause that are locked, with the name the query calls them by.
    let mut targets: Vec<(String, String, LockType)> = Vec::new();
    for twj in &select.from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            let TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = factor
            else {
                continue;
            };
            let Some(table) = name.0.last().and_then(|p| p.as_ident()).map(ident_name) else {
                continue;
            };
            let called = alias
                .as_ref()
                .map(|a| ident_name(&a.name))
                .unwrap_or_else(|| table.clone());
            for lock in &locks {
                let applies = match &lock.of {
                    None => true,
                    Some(of) => {
                        of.0.last()
                            .and_then(|p| p.as_ident())
                            .is_some_and(|i| ident_name(i) == called)
                    }
                };
                if applies && !targets.iter().any(|(c, _, _)| *c == called) {
                    targets.push((called.clone(), table.clone(), lock.lock_type));
                }
            }
        }
    }
    for lock in &locks {
        if let Some(of) = &lock.of {
            let named = of.to_string();
            let found = targets.iter().any(|(c, _, _)| {
                of.0.last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| ident_name(i) == *c)
            });
            if !found {
                return Err(user_error(
                    SqlState::UNDEFINED_TABLE,
                    format!("relation \"{named}\" in FOR UPDATE clause not found in FROM clause"),
                ));
            }
        }
    }
    let out = s
        .query(Statement::Query(Box::new(query.clone())), params)
        .await?;
    for (called, table, lock_type) in targets {
        let Some(def) = env.catalog.tables.get(&table).cloned() else {
            // A view or a system table: nothing of ours to claim.
            continue;
        };
        // The same query with the storage key of the locked table's rows as a last column
        // (the other items stay, for ORDER BY to name them).
        let mut keys_query = query.clone();
        if let SetExpr::Select(select) = keys_query.body.as_mut() {
            select
                .projection
                .push(SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![
                    Ident::with_quote('"', called.clone()),
                    Ident::new(KEY_COLUMN),
                ])));
        }
        let mut keys_stmt = Statement::Query(Box::new(keys_query));
        crate::pg_catalog::rewrite(&mut keys_stmt);
        let keyed = Arc::new(StatementEnv {
            catalog: env.catalog.clone(),
            view: env.view.clone(),
            key_table: Some(def.id),
        });
        s.use_env(&keyed);
        let plan = s.plan(keys_stmt, params).await;
        let result = match plan {
            Ok(plan) => s.collect(plan).await,
            Err(e) => Err(e),
        };
        s.use_env(env);
        let (_, batches) = result?;
        for batch in &batches {
            let last = batch.num_columns().saturating_sub(1);
            let Some(keys) = batch.column(last).as_any().downcast_ref::<BinaryArray>() else {
                continue;
            };
            for i in 0..keys.len() {
                if keys.is_null(i) {
                    continue;
                }
                let key = keys.value(i).to_vec();
                match lock_type {
                    LockType::Update => {
                        if let Some(value) = env.view.get(&key).await? {
                            env.view.put(key, value.to_vec());
                        }
                    }
                    LockType::Share => env.view.depend_on_key(key),
                }
            }
        }
        // Claims are validated from the snapshot they were read at (READ COMMITTED included).
        s.note_write(env.view.snapshot);
    }
    Ok(out)
}

fn not_allowed(what: &str) -> thunderdb_common::ThunderError {
    user_error(
        SqlState::FEATURE_NOT_SUPPORTED,
        format!("FOR UPDATE is not allowed with {what}"),
    )
}
