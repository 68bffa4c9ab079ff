//! Rewrites the PostgreSQL-only syntax that catalog queries (psql's meta-commands, drivers)
//! use into SQL DataFusion plans:
//!
//! - `OPERATOR(pg_catalog.~)` → `~`; `COLLATE pg_catalog.default` → dropped;
//!   `pg_catalog.fn(…)` → `fn(…)`; bare `pg_class` → `pg_catalog.pg_class` (PostgreSQL searches
//!   `pg_catalog` first);
//! - casts to `regclass`, `regtype`, `regnamespace`, `regrole` → the lookup functions of
//!   [`super::functions`]; casts to `oid`, `name`, `pg_catalog.text` … → DataFusion types;
//! - `ARRAY(SELECT e …)` → `(SELECT array_agg(e) …)`, empty rather than NULL for no rows;
//! - a scalar sub-query `(SELECT e FROM … WHERE …)` → `(SELECT __thunder_single(e) …)`, which
//!   DataFusion can decorrelate, with the conjuncts that only test the outer row moved into a
//!   `CASE WHEN` around it (DataFusion cannot pull those above an aggregate);
//! - `FROM generate_series(…) s, t WHERE x = arr[s]` → `FROM t WHERE x = ANY(arr)`.

use super::subquery::{
    ExistsToCount, array_subquery, item_name, scalar_subquery, unnest_by_subscript,
};
use crate::sql::ident_name;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query,
    Select, SelectItem, SetExpr, Statement, TableFactor, Value, Visit, VisitMut, Visitor,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use std::collections::HashSet;
use std::ops::ControlFlow;

/// Rewrites `stmt` in place; statements without PostgreSQL-only syntax are left as they are.
pub fn rewrite(stmt: &mut Statement) {
    let ctes = cte_names(stmt);
    let named_by_caller = matches!(stmt, Statement::Query(_));
    let before = top_level_items(stmt).map(|items| {
        items
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) => Some((e.to_string(), item_name(e))),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    let _ = stmt.visit(&mut Rewriter {
        ctes,
        depth: 0,
        named_by_caller,
    });
    if let (Some(before), Some(items)) = (before, top_level_items(stmt)) {
        show_names(items);
        keep_names(items, before);
    }
}

/// `SELECT 'orders'::regclass` shows the name (after checking it exists), where a comparison
/// with `'orders'::regclass` uses the OID.
fn show_names(items: &mut [SelectItem]) {
    for item in items {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item
            && let Some(shown) = reg_display(e)
        {
            *e = shown;
        }
    }
}

/// The name a `reg*` value shows (`'t'::regclass` as text), or `None` for anything else.
fn reg_display(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else {
        return None;
    };
    let shown = match last_name(&f.name).as_str() {
        "__thunder_regclass" => format!("__thunder_regclass_name({e})"),
        "__thunder_regtype" => format!("format_type({e}, NULL)"),
        "__thunder_regnamespace" => format!("__thunder_regnamespace_name({e})"),
        "__thunder_regrole" => format!("pg_get_userbyid({e})"),
        _ => return None,
    };
    parse_expr(&shown)
}

/// The select list of a statement that is a plain SELECT.
fn top_level_items(stmt: &mut Statement) -> Option<&mut Vec<SelectItem>> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    match q.body.as_mut() {
        SetExpr::Select(s) => Some(&mut s.projection),
        _ => None,
    }
}

/// A select item the rewrite changed keeps the column name PostgreSQL gives the original
/// (`'t'::regclass` is `regclass`, not the name of the function it became), unless another
/// column already has that name (DataFusion wants them distinct).
fn keep_names(items: &mut [SelectItem], before: Vec<Option<(String, String)>>) {
    let renamed: Vec<Option<String>> = items
        .iter()
        .zip(&before)
        .map(|(item, was)| match (item, was) {
            (SelectItem::UnnamedExpr(e), Some((text, name))) if e.to_string() != *text => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect();
    let mut taken: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(ident_name(i)),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => p.last().map(ident_name),
            _ => None,
        })
        .collect();
    taken.extend(renamed.iter().flatten().cloned());
    for (item, name) in items.iter_mut().zip(renamed) {
        if let (SelectItem::UnnamedExpr(e), Some(name)) = (&*item, name)
            && taken.iter().filter(|t| **t == name).count() == 1
        {
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::with_quote('"', name),
            };
        }
    }
}

struct Rewriter {
    ctes: HashSet<String>,
    /// How many queries enclose the current one.
    depth: usize,
    /// Whether the statement's own SELECT list gets its names after this rewrite (a top-level
    /// query, see `naming`), so that its duplicate items are left to that.
    named_by_caller: bool,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        match q.body.as_mut() {
            SetExpr::Select(select) if !(self.depth == 0 && self.named_by_caller) => {
                dedupe_items(select)
            }
            SetExpr::SetOperation { .. } => for_each_select(&mut q.body, &mut dedupe_items),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
        if let [ObjectNamePart::Identifier(i)] = name.0.as_slice() {
            let n = ident_name(i);
            if super::tables::spec(&n).is_some() && !self.ctes.contains(&n) {
                name.0
                    .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        // A function returning one column names that column after its alias, as in PostgreSQL:
        // `FROM generate_series(1, 3) g` has a column `g`.
        if let TableFactor::Table {
            name,
            args: Some(_),
            alias: Some(alias),
            ..
        } = factor
            && alias.columns.is_empty()
            && last_name(name) == "generate_series"
        {
            alias.columns = vec![datafusion::sql::sqlparser::ast::TableAliasColumnDef {
                name: alias.name.clone(),
                data_type: None,
            }];
        }
        // Table functions (`pg_catalog.generate_series(…)`) are registered unqualified.
        if let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality,
            ..
        } = factor
        {
            strip_pg_catalog(name);
            // No table is partitioned: a relation's only "ancestor" is itself (depth 0).
            let depth = if *with_ordinality { ", 1 AS depth" } else { "" };
            if last_name(name) == "pg_partition_ancestors"
                && let [arg] = args.args.as_slice()
                && let Some(query) =
                    parse_query(&format!("SELECT __thunder_regclass({arg}) AS relid{depth}"))
            {
                let constant = !arg.to_string().contains('.');
                *factor = TableFactor::Derived {
                    lateral: !constant,
                    subquery: Box::new(query),
                    alias: alias.take().or_else(|| {
                        Some(datafusion::sql::sqlparser::ast::TableAlias {
                            explicit: true,
                            name: Ident::new("pg_partition_ancestors"),
                            columns: vec![],
                            at: None,
                        })
                    }),
                    sample: None,
                };
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        unnest_by_subscript(select);
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                let _ = VisitMut::visit(e, &mut ExistsToCount);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some(new) = rewrite_expr(expr) {
            *expr = new;
        }
        ControlFlow::Continue(())
    }
}

fn for_each_select(body: &mut SetExpr, f: &mut dyn FnMut(&mut Select)) {
    match body {
        SetExpr::Select(s) => f(s),
        SetExpr::SetOperation { left, right, .. } => {
            for_each_select(left, f);
            for_each_select(right, f);
        }
        _ => {}
    }
}

/// PostgreSQL allows `SELECT NULL, NULL`; DataFusion needs distinct names, so a repeated
/// unnamed item gets an alias (only its column name changes).
fn dedupe_items(select: &mut Select) {
    let mut seen = HashSet::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        match item {
            SelectItem::UnnamedExpr(e)
                if !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                    && !seen.insert(e.to_string()) =>
            {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', format!("?column?{}", i + 1)),
                };
            }
            SelectItem::ExprWithAlias { alias, .. } => {
                seen.insert(alias.value.clone());
            }
            _ => {}
        }
    }
}

/// A timestamp literal's text in a form Arrow reads (see `timestamp_for_arrow`).
fn fix_timestamp_literal(value: &mut Value, tz: &datafusion::sql::sqlparser::ast::TimezoneInfo) {
    use datafusion::sql::sqlparser::ast::TimezoneInfo;
    if let Value::SingleQuotedString(text) = value {
        let with_tz = !matches!(tz, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone);
        if let Some(fixed) = thunderdb_common::text_input::timestamp_for_arrow(text, with_tz) {
            *text = fixed;
        }
    }
}

/// Names of the CTEs anywhere in `stmt` (they shadow tables and views of the same name).
pub(crate) fn cte_names(stmt: &Statement) -> HashSet<String> {
    struct Ctes(HashSet<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    self.0.insert(ident_name(&cte.alias.name));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut c = Ctes(HashSet::new());
    let _ = stmt.visit(&mut c);
    c.0
}

pub(super) fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

pub(crate) fn parse_query(sql: &str) -> Option<Query> {
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    match stmts.pop()? {
        Statement::Query(q) => Some(*q),
        _ => None,
    }
}

fn parse_data_type(sql: &str) -> Option<DataType> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_data_type())
        .ok()
}

fn is_pg_catalog(part: &ObjectNamePart) -> bool {
    matches!(part, ObjectNamePart::Identifier(i) if ident_name(i) == "pg_catalog")
}

fn strip_pg_catalog(name: &mut ObjectName) {
    if name.0.len() == 2 && is_pg_catalog(&name.0[0]) {
        name.0.remove(0);
    }
}

/// The last part of a name, folded as PostgreSQL folds identifiers.
pub(super) fn last_name(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(i)) => ident_name(i),
        Some(other) => other.to_string().to_lowercase(),
        None => String::new(),
    }
}

fn rewrite_expr(expr: &mut Expr) -> Option<Expr> {
    match expr {
        // `'2024-01-01 10:00'::timestamp`: Arrow folds the cast and reads only some of
        // PostgreSQL's forms.
        Expr::Cast {
            expr: inner,
            data_type: DataType::Timestamp(_, tz),
            ..
        } => {
            if let Expr::Value(v) = inner.as_mut() {
                fix_timestamp_literal(&mut v.value, tz);
            }
            None
        }
        Expr::TypedString(ts) => {
            if let DataType::Timestamp(_, tz) = &ts.data_type {
                fix_timestamp_literal(&mut ts.value.value, tz);
            }
            None
        }
        Expr::BinaryOp { left, op, right } => {
            let BinaryOperator::PGCustomBinaryOperator(parts) = op else {
                return None;
            };
            let std_op = standard_operator(parts.last()?)?;
            Some(Expr::BinaryOp {
                left: left.clone(),
                op: std_op,
                right: right.clone(),
            })
        }
        Expr::Collate { expr, collation } => {
            let c = last_name(collation).to_lowercase();
            let plain = matches!(c.as_str(), "default" | "c" | "posix" | "ucs_basic");
            let qualified_ok = collation.0.len() == 1 || is_pg_catalog(&collation.0[0]);
            (plain && qualified_ok).then(|| (**expr).clone())
        }
        Expr::Function(f) => {
            if matches!(&f.args, FunctionArguments::Subquery(_))
                && last_name(&f.name) == "array"
                && f.name.0.len() == 1
            {
                let FunctionArguments::Subquery(q) = &f.args else {
                    return None;
                };
                return array_subquery(q);
            }
            if f.name.0.len() == 2 && is_pg_catalog(&f.name.0[0]) {
                f.name.0.remove(0);
            }
            // As a set-returning call in a select list: the relation itself (no partitions).
            if let Some(arg) = call_arg(expr, "pg_partition_ancestors") {
                return call("__thunder_regclass", &[arg]);
            }
            None
        }
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => rewrite_cast(inner, data_type),
        Expr::Subquery(q) => scalar_subquery(q),
        _ => None,
    }
}

fn standard_operator(op: &str) -> Option<BinaryOperator> {
    Some(match op {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "~~*" => BinaryOperator::PGILikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "!~~*" => BinaryOperator::PGNotILikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Multiply,
        "/" => BinaryOperator::Divide,
        "%" => BinaryOperator::Modulo,
        "||" => BinaryOperator::StringConcat,
        _ => return None,
    })
}

/// A string literal or a `$n` parameter (possibly cast to text): what `::regclass` looks up.
fn is_name_input(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(
            v.value,
            Value::SingleQuotedString(_)
                | Value::EscapedStringLiteral(_)
                | Value::DollarQuotedString(_)
                | Value::Placeholder(_)
        ),
        Expr::Cast {
            expr, data_type, ..
        } => {
            matches!(
                data_type,
                DataType::Text | DataType::Varchar(_) | DataType::Custom(..)
            ) && is_name_input(expr)
        }
        Expr::Nested(e) => is_name_input(e),
        _ => false,
    }
}

fn call(name: &str, args: &[&Expr]) -> Option<Expr> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    parse_expr(&format!("{name}({})", args.join(", ")))
}

/// The argument of a call of `name`, when `e` is one.
fn call_arg<'a>(e: &'a Expr, name: &str) -> Option<&'a Expr> {
    let Expr::Function(f) = e else { return None };
    if last_name(&f.name) != name {
        return None;
    }
    match &f.args {
        FunctionArguments::List(l) => match l.args.first()? {
            datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(e),
            ) => Some(e),
            _ => None,
        },
        _ => None,
    }
}

/// The type a custom type name (`oid`, `name`, `pg_catalog.int2` …) plans as, or the special
/// handling of the `reg*` types.
fn rewrite_cast(inner: &Expr, data_type: &DataType) -> Option<Expr> {
    // `'t'::regclass::text` is the name.
    if matches!(data_type, DataType::Text | DataType::Varchar(_))
        && let Some(shown) = reg_display(inner)
    {
        return Some(shown);
    }
    let custom = |t: &DataType| match t {
        DataType::Custom(name, modifiers) => Some((name.clone(), modifiers.clone())),
        DataType::Regclass => Some((ObjectName::from(vec![Ident::new("regclass")]), vec![])),
        _ => None,
    };
    let ((name, modifiers), array) = match data_type {
        DataType::Array(
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(elem, _)
            | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::AngleBracket(elem),
        ) => (custom(elem)?, true),
        other => (custom(other)?, false),
    };
    if name.0.len() > 2 || (name.0.len() == 2 && !is_pg_catalog(&name.0[0])) {
        return None;
    }
    let type_name = last_name(&name);
    if !array {
        match type_name.as_str() {
            "regclass" => {
                return if is_name_input(inner) {
                    call("__thunder_regclass", &[inner])
                } else {
                    call("__thunder_regclass_name", &[inner])
                };
            }
            "regtype" => {
                return if is_name_input(inner) {
                    call("__thunder_regtype", &[inner])
                } else {
                    parse_expr(&format!("format_type({inner}, NULL)"))
                };
            }
            "regnamespace" => {
                return if is_name_input(inner) {
                    call("__thunder_regnamespace", &[inner])
                } else {
                    call("__thunder_regnamespace_name", &[inner])
                };
            }
            "regrole" => {
                return if is_name_input(inner) {
                    call("__thunder_regrole", &[inner])
                } else {
                    call("pg_get_userbyid", &[inner])
                };
            }
            "oid" | "regproc" | "regprocedure" | "xid" | "cid" => {
                // `c.oid::regclass::oid` is the OID again, not the name.
                for f in [
                    "__thunder_regclass_name",
                    "format_type",
                    "__thunder_regnamespace_name",
                    "pg_get_userbyid",
                ] {
                    if let Some(arg) = call_arg(inner, f) {
                        return Some(arg.clone());
                    }
                }
            }
            _ => {}
        }
    }
    let mapped = match type_name.as_str() {
        "oid" | "xid" | "cid" | "regclass" | "regtype" | "regnamespace" | "regrole" => {
            DataType::BigInt(None)
        }
        "text" | "name" | "char" | "bpchar" | "unknown" | "regproc" | "regprocedure"
        | "pg_node_tree" => DataType::Text,
        "int2" | "int2vector" => DataType::SmallInt(None),
        "int4" => DataType::Int(None),
        "int8" | "oidvector" => DataType::BigInt(None),
        "float4" => DataType::Real,
        "float8" => DataType::DoublePrecision,
        "bool" => DataType::Boolean,
        other => {
            // A qualified built-in name: the unqualified spelling may be a type sqlparser knows.
            let mods = if modifiers.is_empty() {
                String::new()
            } else {
                format!("({})", modifiers.join(", "))
            };
            match parse_data_type(&format!("{other}{mods}"))? {
                DataType::Custom(..) => return None,
                t => t,
            }
        }
    };
    let mapped = if array {
        DataType::Array(
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                Box::new(mapped),
                None,
            ),
        )
    } else {
        mapped
    };
    Some(cast(inner, mapped))
}

fn cast(inner: &Expr, data_type: DataType) -> Expr {
    Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
        expr: Box::new(inner.clone()),
        data_type,
        array: false,
        format: None,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::parse_sql;

    fn rewritten(sql: &str) -> String {
        let mut stmts = parse_sql(sql).expect("parse");
        let mut stmt = stmts.pop().expect("one statement");
        rewrite(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn operators_collations_and_qualified_functions() {
        assert_eq!(
            rewritten(
                "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)"
            ),
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname ~ '^(orders)$' AND pg_table_is_visible(c.oid)"
        );
        assert_eq!(
            rewritten("SELECT a FROM t WHERE a OPERATOR(pg_catalog.!~~) 'x%'"),
            "SELECT a FROM t WHERE a !~~ 'x%'"
        );
    }

    #[test]
    fn bare_catalog_tables_are_qualified_unless_a_cte() {
        assert_eq!(
            rewritten("SELECT relname FROM pg_class"),
            "SELECT relname FROM pg_catalog.pg_class"
        );
        assert_eq!(
            rewritten("WITH pg_class AS (SELECT 1 AS relname) SELECT relname FROM pg_class"),
            "WITH pg_class AS (SELECT 1 AS relname) SELECT relname FROM pg_class"
        );
        assert_eq!(rewritten("SELECT * FROM orders"), "SELECT * FROM orders");
    }

    #[test]
    fn reg_casts() {
        assert_eq!(
            rewritten(
                "SELECT 'orders'::regclass AS r FROM pg_class c WHERE c.oid = 'orders'::regclass"
            ),
            "SELECT __thunder_regclass_name(__thunder_regclass('orders')) AS r FROM pg_catalog.pg_class c WHERE c.oid = __thunder_regclass('orders')"
        );
        assert_eq!(
            rewritten("SELECT 'orders'::regclass, c.oid::pg_catalog.regclass FROM pg_class c"),
            "SELECT __thunder_regclass_name(__thunder_regclass('orders')) AS \"regclass\", __thunder_regclass_name(c.oid) AS \"oid\" FROM pg_catalog.pg_class c"
        );
        assert_eq!(
            rewritten(
                "SELECT x::pg_catalog.regtype::pg_catalog.text, 'int4'::regtype, 'public'::regnamespace, n::regnamespace::text"
            ),
            "SELECT format_type(x, NULL)::TEXT AS \"x\", format_type(__thunder_regtype('int4'), NULL) AS \"regtype\", __thunder_regnamespace_name(__thunder_regnamespace('public')) AS \"regnamespace\", __thunder_regnamespace_name(n)::TEXT AS \"n\""
        );
        assert_eq!(
            rewritten(
                "SELECT a::oid, b::pg_catalog.int2[], c::name, 'orders'::regclass::oid, c.oid::regclass::oid"
            ),
            "SELECT a::BIGINT AS \"a\", b::SMALLINT[] AS \"b\", c::TEXT AS \"c\", __thunder_regclass('orders')::BIGINT, c.oid"
        );
        assert_eq!(
            rewritten("SELECT * FROM pg_attribute WHERE attrelid = $1::regclass"),
            "SELECT * FROM pg_catalog.pg_attribute WHERE attrelid = __thunder_regclass($1)"
        );
    }

    #[test]
    fn array_subqueries_aggregate() {
        assert_eq!(
            rewritten(
                "SELECT ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) as memberof FROM pg_catalog.pg_roles r"
            ),
            "SELECT __thunder_array_or_empty((SELECT array_agg(b.rolname) FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid)) AS memberof FROM pg_catalog.pg_roles r"
        );
        assert_eq!(
            rewritten(
                "SELECT array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles) order by 1) FROM pg_catalog.pg_policy pol"
            ),
            "SELECT __thunder_array_or_empty((SELECT array_agg(rolname ORDER BY rolname) FROM pg_catalog.pg_roles WHERE oid = ANY(pol.polroles))) AS \"array\" FROM pg_catalog.pg_policy pol"
        );
    }

    #[test]
    fn scalar_subqueries_become_decorrelatable() {
        // psql's \d column query: the outer-only `a.atthasdef` moves out of the sub-query.
        assert_eq!(
            rewritten(
                "SELECT (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef) FROM pg_catalog.pg_attribute a"
            ),
            "SELECT CASE WHEN (a.atthasdef) THEN (SELECT __thunder_single(pg_get_expr(d.adbin, d.adrelid, true)) AS \"pg_get_expr\" FROM pg_catalog.pg_attrdef d WHERE (d.adrelid = a.attrelid) AND (d.adnum = a.attnum)) END AS \"pg_get_expr\" FROM pg_catalog.pg_attribute a"
        );
        // The collation test reads the pinned pg_type row in its own sub-query.
        assert_eq!(
            rewritten(
                "SELECT (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation FROM pg_catalog.pg_attribute a"
            ),
            "SELECT CASE WHEN (a.attcollation <> (SELECT __thunder_single(t.typcollation) AS \"typcollation\" FROM pg_catalog.pg_type AS \"t\" WHERE (t.oid = a.atttypid))) THEN (SELECT __thunder_single(c.collname) AS \"collname\" FROM pg_catalog.pg_collation c, pg_catalog.pg_type t WHERE (c.oid = a.attcollation) AND (t.oid = a.atttypid)) END AS attcollation FROM pg_catalog.pg_attribute a"
        );
        // Aggregates are left alone.
        assert_eq!(
            rewritten("SELECT (SELECT count(*) FROM emp e WHERE e.dept_id = d.id) FROM dept d"),
            "SELECT (SELECT count(*) FROM emp e WHERE e.dept_id = d.id) FROM dept d"
        );
    }

    #[test]
    fn repeated_unnamed_items_get_aliases_in_set_operations() {
        assert_eq!(
            rewritten("SELECT a, NULL, NULL FROM t UNION SELECT b, NULL, NULL FROM u"),
            "SELECT a, NULL, NULL AS \"?column?3\" FROM t UNION SELECT b, NULL, NULL AS \"?column?3\" FROM u"
        );
        assert_eq!(rewritten("SELECT NULL, NULL"), "SELECT NULL, NULL");
    }

    #[test]
    fn exists_in_select_list_counts() {
        assert_eq!(
            rewritten(
                "SELECT (NOT i.indimmediate) AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = i.indrelid AND condeferrable) AS condeferrable FROM pg_catalog.pg_index i WHERE EXISTS (SELECT 1 FROM t WHERE t.a = i.indrelid)"
            ),
            "SELECT (NOT i.indimmediate) AND ((SELECT count(*) FROM pg_catalog.pg_constraint WHERE conrelid = i.indrelid AND condeferrable) > 0) AS condeferrable FROM pg_catalog.pg_index i WHERE EXISTS (SELECT 1 FROM t WHERE t.a = i.indrelid)"
        );
    }

    #[test]
    fn array_over_unnest_maps_elements() {
        assert_eq!(
            rewritten(
                "SELECT pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ') FROM pg_class c"
            ),
            "SELECT array_to_string(c.reloptions || __thunder_concat_elements('toast.', tc.reloptions, ''), ', ') AS \"array_to_string\" FROM pg_catalog.pg_class c"
        );
    }

    #[test]
    fn series_over_subscripts_becomes_any() {
        assert_eq!(
            rewritten(
                "SELECT (SELECT string_agg(attname, ', ') FROM pg_catalog.generate_series(0, pg_catalog.array_upper(pr.prattrs::pg_catalog.int2[], 1)) s, pg_catalog.pg_attribute WHERE attrelid = pr.prrelid AND attnum = prattrs[s]) FROM pg_catalog.pg_publication_rel pr"
            ),
            "SELECT (SELECT string_agg(attname, ', ') FROM pg_catalog.pg_attribute WHERE (attrelid = pr.prrelid) AND (attnum = ANY(prattrs))) AS \"string_agg\" FROM pg_catalog.pg_publication_rel pr"
        );
    }
}
