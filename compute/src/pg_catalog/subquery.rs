//! Sub-queries in the shapes DataFusion can plan: a scalar sub-query aggregated to its single
//! row (with tests of the outer row moved out of it), `ARRAY(SELECT …)` as `array_agg`,
//! `EXISTS` in a select list as a count, and the two idioms psql uses to walk an array of the
//! outer row (`unnest(arr) x`, `generate_series(…) s … arr[s]`).

use super::planner::SINGLE;
use super::rewrite::{last_name, parse_expr};
use crate::sql::ident_name;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, GroupByExpr, Ident, ObjectName,
    OrderByKind, Query, Select, SelectItem, SetExpr, Subscript, TableFactor, Value, Visit,
    VisitMut, Visitor, VisitorMut,
};
use std::collections::HashSet;
use std::ops::ControlFlow;

/// `EXISTS (SELECT … FROM … WHERE …)` in a select list → `(SELECT count(*) FROM … WHERE …) > 0`:
/// DataFusion decorrelates EXISTS only in WHERE, but a counting sub-query anywhere.
pub(super) struct ExistsToCount;

impl VisitorMut for ExistsToCount {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Exists { subquery, negated } = e
            && single_item_select(subquery).is_some()
            && subquery.order_by.is_none()
        {
            let mut q = subquery.as_ref().clone();
            if let SetExpr::Select(select) = q.body.as_mut()
                && let Some(count) = parse_expr("count(*)")
            {
                select.projection = vec![SelectItem::UnnamedExpr(count)];
                let test = if *negated { "=" } else { ">" };
                if let Some(new) = parse_expr(&format!("(({q}) {test} 0)")) {
                    *e = new;
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The only select item of a plain `SELECT e FROM …` (no grouping, DISTINCT, LIMIT, set ops).
fn single_item_select(q: &Query) -> Option<&Select> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let plain = q.with.is_none()
        && q.limit_clause.is_none()
        && q.fetch.is_none()
        && select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
        && select.projection.len() == 1
        && !select.from.is_empty();
    plain.then_some(select.as_ref())
}

fn item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

/// Whether `e` computes an aggregate or window value (then the sub-query already returns one
/// row, or is not ours to touch).
fn has_aggregate(e: &Expr) -> bool {
    const AGGREGATES: &[&str] = &[
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "every",
        "json_agg",
        "jsonb_agg",
        "json_object_agg",
        "jsonb_object_agg",
        "stddev",
        "stddev_pop",
        "stddev_samp",
        "variance",
        "var_pop",
        "var_samp",
        "bit_and",
        "bit_or",
        "bit_xor",
        "first_value",
        "last_value",
        "median",
        "approx_distinct",
        "corr",
        "covar_pop",
        "covar_samp",
        "percentile_cont",
        "percentile_disc",
        "mode",
        "xmlagg",
        SINGLE,
    ];
    /// Whether an aggregate was found, and how many sub-queries deep the visit is: what sits
    /// in a nested sub-query is that sub-query's business.
    struct A(bool, usize);
    impl Visitor for A {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e
                && self.1 == 0
                && (f.over.is_some()
                    || f.filter.is_some()
                    || AGGREGATES.contains(&last_name(&f.name).as_str()))
            {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut a = A(false, 0);
    let _ = e.visit(&mut a);
    a.0
}

/// The alias (or table name) each relation in a FROM list is known by, with the table's name
/// for plain tables.
fn from_aliases(select: &Select) -> Vec<(String, Option<ObjectName>)> {
    let mut out = Vec::new();
    let mut add = |f: &TableFactor| match f {
        TableFactor::Table {
            name, alias, args, ..
        } => {
            let known_as = alias
                .as_ref()
                .map(|a| ident_name(&a.name))
                .unwrap_or_else(|| last_name(name));
            out.push((known_as, args.is_none().then(|| name.clone())));
        }
        TableFactor::Derived {
            alias: Some(alias), ..
        }
        | TableFactor::Function {
            alias: Some(alias), ..
        }
        | TableFactor::UNNEST {
            alias: Some(alias), ..
        } => out.push((ident_name(&alias.name), None)),
        _ => {}
    };
    for twj in &select.from {
        add(&twj.relation);
        for j in &twj.joins {
            add(&j.relation);
        }
    }
    out
}

fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(inner, out)
        }
        other => out.push(other.clone()),
    }
}

fn conjunction(parts: &[Expr]) -> Option<Expr> {
    if parts.is_empty() {
        return None;
    }
    let text: Vec<String> = parts.iter().map(|p| format!("({p})")).collect();
    parse_expr(&text.join(" AND "))
}

/// The qualifiers a conjunct's column references use; `None` when it has an unqualified
/// column or a nested sub-query (then which query it belongs to is not clear from the text).
fn qualifiers(e: &Expr) -> Option<HashSet<String>> {
    struct Q {
        names: HashSet<String>,
        unclear: bool,
    }
    impl Visitor for Q {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(_) => self.unclear = true,
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    self.names.insert(ident_name(&parts[parts.len() - 2]));
                }
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    self.unclear = true
                }
                _ => {}
            }
            if self.unclear {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    let mut q = Q {
        names: HashSet::new(),
        unclear: false,
    };
    let _ = e.visit(&mut q);
    (!q.unclear).then_some(q.names)
}

/// `t.k = outer` or `outer = t.k`: the inner column and the outer expression.
fn pin<'a>(e: &'a Expr, inner: &HashSet<String>) -> Option<(String, &'a Expr, &'a Expr)> {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = e
    else {
        return None;
    };
    let column_of = |x: &Expr| match x {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
            let q = ident_name(&parts[0]);
            inner.contains(&q).then_some(q)
        }
        _ => None,
    };
    let outer_only = |x: &Expr| qualifiers(x).is_some_and(|q| q.is_disjoint(inner));
    if let Some(q) = column_of(left)
        && outer_only(right)
    {
        return Some((q, left, right));
    }
    if let Some(q) = column_of(right)
        && outer_only(left)
    {
        return Some((q, right, left));
    }
    None
}

/// Replaces each `t.x` of `pinned` tables in `e` by `(SELECT t.x FROM table t WHERE t.k = o)`.
fn substitute_pinned(e: &Expr, pinned: &[(String, ObjectName, String)]) -> Option<Expr> {
    struct S<'a> {
        pinned: &'a [(String, ObjectName, String)],
        failed: bool,
    }
    impl VisitorMut for S<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = e
                && parts.len() == 2
                && let Some((alias, table, condition)) = self
                    .pinned
                    .iter()
                    .find(|(a, _, _)| *a == ident_name(&parts[0]))
            {
                let sql = format!(
                    "(SELECT {e} FROM {table} AS {} WHERE {condition})",
                    Ident::with_quote('"', alias)
                );
                match parse_expr(&sql) {
                    Some(mut sub) => {
                        if let Expr::Subquery(q) = &sub
                            && let Some(wrapped) = scalar_subquery(q)
                        {
                            sub = wrapped;
                        }
                        *e = sub;
                    }
                    None => self.failed = true,
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut e = e.clone();
    let mut s = S {
        pinned,
        failed: false,
    };
    let _ = VisitMut::visit(&mut e, &mut s);
    (!s.failed).then_some(e)
}

/// The PostgreSQL name of an unaliased select item (what the sub-query's column is called).
pub(super) fn item_name(e: &Expr) -> String {
    figure_name(e).0
}

/// PostgreSQL's FigureColname: the name and how strongly the expression determines it (a
/// cast names its column after the type only when what it casts has no better name).
fn figure_name(e: &Expr) -> (String, u8) {
    match e {
        Expr::Identifier(i) => (ident_name(i), 2),
        Expr::CompoundIdentifier(parts) => (parts.last().map(ident_name).unwrap_or_default(), 2),
        Expr::Function(f) => (last_name(&f.name), 2),
        Expr::Nested(inner) => figure_name(inner),
        Expr::Cast {
            expr, data_type, ..
        } => match figure_name(expr) {
            (name, 2) => (name, 2),
            _ => {
                let ty = match data_type {
                    datafusion::sql::sqlparser::ast::DataType::Custom(name, _) => last_name(name),
                    other => other.to_string().to_lowercase(),
                };
                (ty, 1)
            }
        },
        Expr::Case { .. } => ("case".into(), 2),
        Expr::Exists { .. } => ("exists".into(), 2),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(s) => match s.projection.first() {
                Some(SelectItem::UnnamedExpr(e)) => figure_name(e),
                Some(SelectItem::ExprWithAlias { alias, .. }) => (ident_name(alias), 2),
                _ => ("?column?".into(), 0),
            },
            _ => ("?column?".into(), 0),
        },
        _ => ("?column?".into(), 0),
    }
}

/// A scalar sub-query as DataFusion can decorrelate it (see the module comment).
pub(super) fn scalar_subquery(q: &Query) -> Option<Expr> {
    let select = single_item_select(q)?;
    let item = &select.projection[0];
    let e = item_expr(item)?;
    if has_aggregate(e) {
        return None;
    }
    let name = match item {
        SelectItem::ExprWithAlias { alias, .. } => ident_name(alias),
        _ => item_name(e),
    };
    let aliases = from_aliases(select);
    let inner: HashSet<String> = aliases.iter().map(|(a, _)| a.clone()).collect();

    let mut parts = Vec::new();
    if let Some(w) = &select.selection {
        conjuncts(w, &mut parts);
    }
    let mut kept = Vec::new();
    let mut hoisted = Vec::new();
    for (k, c) in parts.iter().enumerate() {
        let Some(quals) = qualifiers(c) else {
            kept.push(c.clone());
            continue;
        };
        if !quals.is_empty() && quals.is_disjoint(&inner) {
            hoisted.push(c.clone());
            continue;
        }
        let inner_used: Vec<&String> = quals.intersection(&inner).collect();
        let mixed = inner_used.len() < quals.len();
        if !mixed || pin(c, &inner).is_some() {
            kept.push(c.clone());
            continue;
        }
        // A mixed test such as `a.x <> t.y`: if each inner table it reads is pinned to one
        // row by an equality on the outer row, read that row's value in its own sub-query.
        let pinned: Option<Vec<(String, ObjectName, String)>> = inner_used
            .iter()
            .map(|t| {
                let table = aliases.iter().find(|(a, _)| a == *t)?.1.clone()?;
                let (_, col, outer) = parts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .find_map(|(_, p)| pin(p, &inner).filter(|(q, _, _)| q == *t))?;
                Some(((*t).clone(), table, format!("{col} = {outer}")))
            })
            .collect();
        match pinned.and_then(|p| substitute_pinned(c, &p)) {
            Some(outer_only) => hoisted.push(outer_only),
            None => kept.push(c.clone()),
        }
    }

    let mut q = q.clone();
    let SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    select.selection = conjunction(&kept);
    let single = parse_expr(&format!("{SINGLE}({e})"))?;
    select.projection[0] = SelectItem::ExprWithAlias {
        expr: single,
        alias: Ident::with_quote('"', name),
    };
    let sub = Expr::Subquery(Box::new(q));
    match conjunction(&hoisted) {
        None => Some(sub),
        Some(guard) => parse_expr(&format!("CASE WHEN {guard} THEN {sub} END")),
    }
}

/// `ARRAY(SELECT e FROM … [ORDER BY …])` → `__thunder_array_or_empty((SELECT array_agg(e ORDER
/// BY …) FROM …))`.
pub(super) fn array_subquery(q: &Query) -> Option<Expr> {
    if let Some(mapped) = array_over_unnest(q) {
        return Some(mapped);
    }
    let mut bare = q.clone();
    let order = bare.order_by.take();
    let select = single_item_select(&bare)?;
    let e = item_expr(&select.projection[0])?.clone();
    if has_aggregate(&e) {
        return None;
    }
    let order_sql = match order.map(|o| o.kind) {
        None => String::new(),
        Some(OrderByKind::Expressions(items)) => {
            let items: Vec<String> = items
                .into_iter()
                .map(|mut item| {
                    // `ORDER BY 1` names the select item.
                    if let Expr::Value(v) = &item.expr
                        && let Value::Number(n, _) = &v.value
                        && n == "1"
                    {
                        item.expr = e.clone();
                    }
                    item.to_string()
                })
                .collect();
            format!(" ORDER BY {}", items.join(", "))
        }
        Some(OrderByKind::All(_)) => return None,
    };
    let SetExpr::Select(select) = bare.body.as_mut() else {
        return None;
    };
    select.projection[0] =
        SelectItem::UnnamedExpr(parse_expr(&format!("array_agg({e}{order_sql})"))?);
    parse_expr(&format!("__thunder_array_or_empty(({bare}))"))
}

/// `ARRAY(SELECT 'p' || x FROM unnest(arr) x)` (psql's `\d+` toast options) →
/// `__thunder_concat_elements('p', arr, '')`: DataFusion cannot unnest a column of the outer row
/// in a sub-query.
fn array_over_unnest(q: &Query) -> Option<Expr> {
    let select = single_item_select(q)?;
    if q.order_by.is_some() || select.selection.is_some() || select.from.len() != 1 {
        return None;
    }
    let twj = &select.from[0];
    let TableFactor::Table {
        name,
        args: Some(args),
        alias: Some(alias),
        ..
    } = &twj.relation
    else {
        return None;
    };
    if !twj.joins.is_empty() || last_name(name) != "unnest" || args.args.len() != 1 {
        return None;
    }
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(arr)) = &args.args[0] else {
        return None;
    };
    let var = ident_name(&alias.name);
    let is_var = |e: &Expr| matches!(e, Expr::Identifier(i) if ident_name(i) == var);
    let is_text_literal =
        |e: &Expr| matches!(e, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)));
    let (prefix, suffix) = match item_expr(&select.projection[0])? {
        e if is_var(e) => ("''".to_string(), "''".to_string()),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } if is_text_literal(left) && is_var(right) => (left.to_string(), "''".to_string()),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } if is_var(left) && is_text_literal(right) => ("''".to_string(), right.to_string()),
        _ => return None,
    };
    parse_expr(&format!(
        "__thunder_concat_elements({prefix}, {arr}, {suffix})"
    ))
}

/// `FROM generate_series(lo, hi) s, t WHERE x = arr[s]` → `FROM t WHERE x = ANY(arr)`: the
/// subscripts walk the whole array, and DataFusion cannot run a table function whose bounds
/// come from the outer row.
pub(super) fn unnest_by_subscript(select: &mut Select) {
    let Some(pos) = select.from.iter().position(|twj| {
        twj.joins.is_empty()
            && matches!(&twj.relation, TableFactor::Table { name, args: Some(_), alias: Some(_), .. }
                if last_name(name) == "generate_series")
    }) else {
        return;
    };
    if select.from.len() < 2 {
        return;
    }
    let TableFactor::Table {
        alias: Some(alias), ..
    } = &select.from[pos].relation
    else {
        return;
    };
    let var = ident_name(&alias.name);
    let Some(selection) = &select.selection else {
        return;
    };
    let mut parts = Vec::new();
    conjuncts(selection, &mut parts);
    let subscripted = |e: &Expr| -> Option<Expr> {
        let Expr::CompoundFieldAccess { root, access_chain } = e else {
            return None;
        };
        match access_chain.as_slice() {
            [
                AccessExpr::Subscript(Subscript::Index {
                    index: Expr::Identifier(i),
                }),
            ] if ident_name(i) == var => Some((**root).clone()),
            _ => None,
        }
    };
    let mut found = false;
    let rewritten: Vec<Expr> = parts
        .into_iter()
        .map(|c| {
            if let Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } = &c
            {
                let pair = match (subscripted(left), subscripted(right)) {
                    (None, Some(arr)) => Some((left.as_ref().clone(), arr)),
                    (Some(arr), None) => Some((right.as_ref().clone(), arr)),
                    _ => None,
                };
                if let Some((x, arr)) = pair
                    && let Some(any) = parse_expr(&format!("{x} = ANY({arr})"))
                {
                    found = true;
                    return any;
                }
            }
            c
        })
        .collect();
    if !found {
        return;
    }
    // The series variable must not be used anywhere else.
    let mut probe = select.clone();
    probe.from.remove(pos);
    probe.selection = conjunction(&rewritten);
    let uses_var = {
        struct U<'a>(&'a str, bool);
        impl Visitor for U<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                if let Expr::Identifier(i) = e
                    && ident_name(i) == self.0
                {
                    self.1 = true;
                }
                ControlFlow::Continue(())
            }
        }
        let mut u = U(&var, false);
        let _ = probe.visit(&mut u);
        u.1
    };
    if !uses_var {
        *select = probe;
    }
}
