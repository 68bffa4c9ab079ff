//! Correlated aggregate subqueries in the select list whose correlation is not an equality,
//! e.g. `(SELECT count(*) FROM t1 AS x WHERE x.c > t1.c)`, which DataFusion cannot run.
//!
//! The subquery is evaluated once per distinct value of the outer columns it reads, by a join
//! and a GROUP BY, and joined back (`IS NOT DISTINCT FROM`, so NULLs match):
//! `… FROM t1 LEFT JOIN (SELECT __d.__k0, agg AS __v FROM (SELECT DISTINCT c AS __k0 FROM t1)
//! __d LEFT JOIN (SELECT *, 1 AS __m FROM t1) x ON x.c > __d.__k0 GROUP BY __d.__k0) __sq0 ON
//! t1.c IS NOT DISTINCT FROM __sq0.__k0`. `count(*)` counts the marker `__m` so that an outer
//! row without matches gets 0, not 1.

use crate::sql::ident_name;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArguments, Ident, Query, Select, SelectItem, SetExpr, Statement, TableFactor,
    Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use std::collections::HashMap;
use std::ops::ControlFlow;

/// The relation name and alias of a plain `FROM table [AS alias]`.
fn single_table(select: &Select) -> Option<(String, String)> {
    if select.from.len() != 1 || !select.from[0].joins.is_empty() {
        return None;
    }
    match &select.from[0].relation {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let table = name.to_string();
            let alias = alias
                .as_ref()
                .map(|a| ident_name(&a.name))
                .unwrap_or_else(|| crate::sql::object_name(name));
            Some((table, alias))
        }
        _ => None,
    }
}

fn is_aggregate_call(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => {
            let name = f.name.to_string().to_lowercase();
            matches!(name.as_str(), "count" | "sum" | "avg" | "min" | "max") && f.over.is_none()
        }
        Expr::Nested(inner) => is_aggregate_call(inner),
        _ => false,
    }
}

/// A subquery this module can rewrite, pulled apart.
struct Plan {
    inner_from: String,
    inner_alias: String,
    aggregate: Expr,
    predicate: Expr,
    outer_columns: Vec<String>,
}

fn analyze(q: &Query, outer_alias: &str) -> Option<Plan> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    if q.order_by.is_some()
        || q.limit_clause.is_some()
        || q.with.is_some()
        || select.having.is_some()
        || select.distinct.is_some()
    {
        return None;
    }
    if !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(v, m) if v.is_empty() && m.is_empty())
    {
        return None;
    }
    let (inner_table, inner_alias) = single_table(select)?;
    if inner_alias == outer_alias {
        return None;
    }
    let [
        SelectItem::UnnamedExpr(aggregate)
        | SelectItem::ExprWithAlias {
            expr: aggregate, ..
        },
    ] = select.projection.as_slice()
    else {
        return None;
    };
    if !is_aggregate_call(aggregate) {
        return None;
    }
    let predicate = select.selection.clone()?;
    // Outer references: `outer_alias.col` in the predicate; none may appear in the aggregate.
    struct Refs<'a>(&'a str, Vec<String>);
    impl Visitor for Refs<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::CompoundIdentifier(p) if p.len() == 2 && ident_name(&p[0]) == self.0 => {
                    let c = ident_name(&p[1]);
                    if !self.1.contains(&c) {
                        self.1.push(c);
                    }
                }
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    return ControlFlow::Break(());
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut refs = Refs(outer_alias, Vec::new());
    if predicate.visit(&mut refs).is_break() || refs.1.is_empty() {
        return None;
    }
    let mut agg_refs = Refs(outer_alias, Vec::new());
    if aggregate.visit(&mut agg_refs).is_break() || !agg_refs.1.is_empty() {
        return None;
    }
    Some(Plan {
        inner_from: inner_table,
        inner_alias,
        aggregate: aggregate.clone(),
        predicate,
        outer_columns: refs.1,
    })
}

fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .ok()?
        .parse_expr()
        .ok()
}

/// Rewrites `stmt` when it has such subqueries; returns the output names of the items it
/// aliased (as `naming` does), or `None` when nothing changed.
pub fn rewrite(stmt: &mut Statement) -> Option<HashMap<String, String>> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    let (outer_table, outer_alias) = single_table(select)?;
    if select.projection.iter().any(|p| {
        matches!(
            p,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return None;
    }
    struct Collect<'a> {
        outer_alias: &'a str,
        outer_table: &'a str,
        joins: Vec<String>,
    }
    impl VisitorMut for Collect<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            let Expr::Subquery(q) = e else {
                return ControlFlow::Continue(());
            };
            let Some(plan) = analyze(q, self.outer_alias) else {
                return ControlFlow::Continue(());
            };
            let k = self.joins.len();
            let name = format!("__sq{k}");
            let keys: Vec<String> = (0..plan.outer_columns.len())
                .map(|i| format!("__k{i}"))
                .collect();
            // Outer references now read the distinct outer values.
            struct Outer<'a>(&'a str, &'a [String]);
            impl VisitorMut for Outer<'_> {
                type Break = ();
                fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                    if let Expr::CompoundIdentifier(p) = e
                        && p.len() == 2
                        && ident_name(&p[0]) == self.0
                        && let Some(i) = self.1.iter().position(|c| *c == ident_name(&p[1]))
                    {
                        *e = Expr::CompoundIdentifier(vec![
                            Ident::new("__d"),
                            Ident::new(format!("__k{i}")),
                        ]);
                    }
                    ControlFlow::Continue(())
                }
            }
            let mut predicate = plan.predicate.clone();
            let _ = VisitMut::visit(
                &mut predicate,
                &mut Outer(self.outer_alias, &plan.outer_columns),
            );
            let mut aggregate = plan.aggregate.clone();
            if let Expr::Function(f) = &mut aggregate
                && f.name.to_string().eq_ignore_ascii_case("count")
                && matches!(&f.args, FunctionArguments::List(l) if l.args.iter().any(|a| a.to_string() == "*"))
                && let Some(Expr::Function(marker)) = parse_expr(&format!(
                    "count({}.__m)",
                    crate::session::quote_ident(&plan.inner_alias)
                ))
            {
                f.args = marker.args;
            }
            let distinct: Vec<String> = plan
                .outer_columns
                .iter()
                .zip(&keys)
                .map(|(c, k)| format!("{} AS {k}", crate::session::quote_ident(c)))
                .collect();
            let group: Vec<String> = keys.iter().map(|k| format!("__d.{k}")).collect();
            let on: Vec<String> = plan
                .outer_columns
                .iter()
                .zip(&keys)
                .map(|(c, k)| {
                    format!(
                        "({}.{} IS NOT DISTINCT FROM {name}.{k})",
                        crate::session::quote_ident(self.outer_alias),
                        crate::session::quote_ident(c)
                    )
                })
                .collect();
            self.joins.push(format!(
                " LEFT JOIN (SELECT {g}, {aggregate} AS __v FROM (SELECT DISTINCT {d} FROM {outer}) AS __d LEFT JOIN (SELECT *, 1 AS __m FROM {inner}) AS {ia} ON {predicate} GROUP BY {g}) AS {name} ON {on}",
                g = group.join(", "),
                d = distinct.join(", "),
                outer = self.outer_table,
                inner = plan.inner_from,
                ia = crate::session::quote_ident(&plan.inner_alias),
                on = on.join(" AND "),
            ));
            *e = Expr::CompoundIdentifier(vec![Ident::new(name), Ident::new("__v")]);
            ControlFlow::Continue(())
        }
    }
    let mut collect = Collect {
        outer_alias: &outer_alias,
        outer_table: &outer_table,
        joins: Vec::new(),
    };
    let mut names = HashMap::new();
    for item in select.projection.iter_mut() {
        let before = collect.joins.len();
        let name = match item {
            SelectItem::UnnamedExpr(e) => Some(crate::naming::pg_name(e)),
            _ => None,
        };
        let _ = VisitMut::visit(item, &mut collect);
        // Keep the column name the original item had (`count`, not `__v`).
        if collect.joins.len() > before
            && let (Some(name), SelectItem::UnnamedExpr(e)) = (name, &*item)
        {
            let alias = format!("{}_sq{}", crate::naming::PREFIX, names.len());
            names.insert(alias.clone(), name);
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::new(alias),
            };
        }
    }
    if collect.joins.is_empty() {
        return None;
    }
    let from = format!("SELECT 1 FROM {}{}", select.from[0], collect.joins.join(""));
    let mut parsed = Parser::parse_sql(&PostgreSqlDialect {}, &from).ok()?;
    let Some(Statement::Query(pq)) = parsed.pop() else {
        return None;
    };
    let SetExpr::Select(ps) = *pq.body else {
        return None;
    };
    select.from = ps.from;
    Some(names)
}
