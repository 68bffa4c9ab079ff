//! Small helpers over the SQL syntax tree.

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;

/// An identifier as PostgreSQL resolves it: unquoted names fold to lower case.
pub fn ident_name(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The relation name of a possibly qualified name (`public.orders` → `orders`).
pub fn object_name(n: &ObjectName) -> String {
    match n.0.last() {
        Some(ObjectNamePart::Identifier(i)) => ident_name(i),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// The schema part of a qualified name, if any.
pub fn schema_of(n: &ObjectName) -> Option<String> {
    if n.0.len() < 2 {
        return None;
    }
    match &n.0[n.0.len() - 2] {
        ObjectNamePart::Identifier(i) => Some(ident_name(i)),
        other => Some(other.to_string()),
    }
}

/// A call of function `name` with positional `args`.
pub(crate) fn function(name: &str, args: Vec<Expr>) -> datafusion::sql::sqlparser::ast::Function {
    use datafusion::sql::sqlparser::ast;
    ast::Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    }
}

/// Qualifies bare references to `columns` with `table` (ON CONFLICT … DO UPDATE, where bare
/// names mean the target row and `excluded.x` the proposed one).
pub fn qualify_columns(e: &Expr, table: &str, columns: &[String]) -> Expr {
    struct Q<'a> {
        table: &'a str,
        columns: &'a [String],
    }
    impl VisitorMut for Q<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Identifier(i) = expr
                && self.columns.contains(&ident_name(i))
            {
                *expr =
                    Expr::CompoundIdentifier(vec![Ident::with_quote('"', self.table), i.clone()]);
            }
            ControlFlow::Continue(())
        }
    }
    let mut e = e.clone();
    let _ = e.visit(&mut Q { table, columns });
    e
}

/// Rewrites PostgreSQL literal forms DataFusion reads differently: `'\x00ff'::bytea` and
/// `bytea '\x00ff'` are bytea input syntax, not the text's raw bytes.
pub fn rewrite_literals(
    stmt: &mut datafusion::sql::sqlparser::ast::Statement,
) -> crate::error::Result<()> {
    use datafusion::sql::sqlparser::ast::{DataType, Value};
    struct L(Option<thunderdb_common::ThunderError>);
    fn string_literal(e: &Expr) -> Option<&str> {
        match e {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
    impl VisitorMut for L {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let text = match expr {
                Expr::Cast {
                    expr: inner,
                    data_type: DataType::Bytea,
                    ..
                } => string_literal(inner),
                Expr::TypedString(ts) if ts.data_type == DataType::Bytea => match &ts.value.value {
                    Value::SingleQuotedString(s) => Some(s.as_str()),
                    _ => None,
                },
                _ => None,
            };
            if let Some(text) = text {
                match thunderdb_common::text_input::parse_bytea(text) {
                    Ok(bytes) => {
                        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                        let sql = format!("decode('{hex}', 'hex')");
                        let parsed = datafusion::sql::sqlparser::parser::Parser::new(
                            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                        )
                        .try_with_sql(&sql)
                        .and_then(|mut p| p.parse_expr());
                        if let Ok(e) = parsed {
                            *expr = e;
                        }
                    }
                    Err(e) => {
                        self.0 = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut l = L(None);
    let _ = stmt.visit(&mut l);
    match l.0 {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Types integer literals as PostgreSQL does: a literal that fits `int4` is `int4` (DataFusion
/// reads every integer literal as `int8`), so `$1::int4 * 2` stays `int4` and
/// `2147483647 + 1` overflows. Positions where DataFusion needs the bare number (`LIMIT`,
/// `OFFSET`, `FETCH`, ordinals in `ORDER BY` / `GROUP BY`, table function arguments) keep it.
pub fn type_integer_literals(stmt: &mut datafusion::sql::sqlparser::ast::Statement) {
    use datafusion::sql::sqlparser::ast::{
        CastKind, DataType, ExactNumberInfo, FunctionArg, FunctionArgExpr, GroupByExpr,
        LimitClause, NamedWindowExpr, OrderByKind, Query, SetExpr, TableFactor, UnaryOperator,
        Value, WindowFrameBound, WindowSpec, WindowType,
    };
    fn int4(number: &str) -> Expr {
        Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(Expr::value(Value::Number(number.to_string(), false))),
            data_type: DataType::Int4(None),
            array: false,
            format: None,
        }
    }
    /// Undoes `int4` on an expression this rewrite typed, also under a unary minus.
    fn bare(e: &mut Expr) {
        if let Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } = e
        {
            bare(expr);
            return;
        }
        if let Expr::Cast {
            kind: CastKind::Cast,
            expr,
            data_type: DataType::Int4(None),
            format: None,
            ..
        } = e
            && matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::Number(..)))
        {
            *e = expr.as_ref().clone();
        }
    }
    fn bare_frame(spec: &mut WindowSpec) {
        if let Some(frame) = &mut spec.window_frame {
            for bound in std::iter::once(&mut frame.start_bound).chain(frame.end_bound.as_mut()) {
                if let WindowFrameBound::Preceding(Some(e)) | WindowFrameBound::Following(Some(e)) =
                    bound
                {
                    bare(e);
                }
            }
        }
    }
    fn bare_set_expr(body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => {
                if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
                    exprs.iter_mut().for_each(bare);
                }
                for named in &mut select.named_window {
                    if let NamedWindowExpr::WindowSpec(spec) = &mut named.1 {
                        bare_frame(spec);
                    }
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                bare_set_expr(left);
                bare_set_expr(right);
            }
            _ => {}
        }
    }
    /// A constant cast to unconstrained `numeric` keeps the scale it is written with
    /// (`'1.50'::numeric` is `1.50`, `0.1::numeric + 0.2` is `0.3`), where a cast to
    /// DataFusion's fixed-scale decimal would print ten decimals.
    fn exact_numeric(e: &Expr) -> Option<Expr> {
        let (inner, data_type) = match e {
            Expr::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr,
                data_type,
                format: None,
                ..
            } => (expr.as_ref(), data_type),
            Expr::TypedString(ts) => {
                let Value::SingleQuotedString(text) = &ts.value.value else {
                    return None;
                };
                return exact_numeric(&Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(Expr::value(Value::SingleQuotedString(text.clone()))),
                    data_type: ts.data_type.clone(),
                    array: false,
                    format: None,
                });
            }
            _ => return None,
        };
        if !matches!(
            data_type,
            DataType::Numeric(ExactNumberInfo::None) | DataType::Decimal(ExactNumberInfo::None)
        ) {
            return None;
        }
        let text = match inner {
            Expr::Value(v) => match &v.value {
                Value::Number(n, false) => n.clone(),
                Value::SingleQuotedString(s) => s.trim().to_string(),
                _ => return None,
            },
            Expr::Cast {
                expr,
                data_type: DataType::Int4(None),
                ..
            } => match expr.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, false) => n.clone(),
                    _ => return None,
                },
                _ => return None,
            },
            _ => return None,
        };
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(&text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        let precision = (whole.len() + fraction.len()).clamp(1, 38);
        if fraction.len() > precision {
            return None;
        }
        let number = Expr::value(Value::Number(digits.to_string(), false));
        let literal = if negative {
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: Box::new(number),
            }
        } else {
            number
        };
        Some(Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(literal),
            data_type: DataType::Numeric(ExactNumberInfo::PrecisionAndScale(
                precision as u64,
                fraction.len() as i64,
            )),
            array: false,
            format: None,
        })
    }
    struct T;
    impl VisitorMut for T {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Some(exact) = exact_numeric(expr) {
                *expr = exact;
                return ControlFlow::Continue(());
            }
            match expr {
                Expr::Value(v) => {
                    if let Value::Number(n, false) = &v.value
                        && n.parse::<i32>().is_ok()
                    {
                        *expr = int4(n);
                    }
                }
                // Window frame offsets (`2 PRECEDING`) must stay bare numbers for DataFusion.
                Expr::Function(f) => {
                    if let Some(WindowType::WindowSpec(spec)) = &mut f.over {
                        bare_frame(spec);
                    }
                }
                // `-2147483648` is an int4 too: the sign belongs to the literal.
                Expr::UnaryOp {
                    op: UnaryOperator::Minus,
                    expr: inner,
                } => {
                    if let Expr::Value(v) = inner.as_ref()
                        && let Value::Number(n, false) = &v.value
                        && format!("-{n}").parse::<i32>().is_ok()
                    {
                        *expr = int4(&format!("-{n}"));
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            match &mut q.limit_clause {
                Some(LimitClause::LimitOffset { limit, offset, .. }) => {
                    limit.iter_mut().for_each(bare);
                    offset.iter_mut().for_each(|o| bare(&mut o.value));
                }
                Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                    bare(offset);
                    bare(limit);
                }
                None => {}
            }
            if let Some(fetch) = &mut q.fetch {
                fetch.quantity.iter_mut().for_each(bare);
            }
            if let Some(order_by) = &mut q.order_by
                && let OrderByKind::Expressions(items) = &mut order_by.kind
            {
                items.iter_mut().for_each(|i| bare(&mut i.expr));
            }
            bare_set_expr(&mut q.body);
            ControlFlow::Continue(())
        }
        fn post_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            let args = match t {
                TableFactor::Table { args: Some(a), .. } => &mut a.args,
                TableFactor::Function { args, .. } => args,
                _ => return ControlFlow::Continue(()),
            };
            for arg in args {
                match arg {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                    | FunctionArg::Named {
                        arg: FunctionArgExpr::Expr(e),
                        ..
                    } => bare(e),
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut T);
}

/// Writes string literals that hold a quote or a backslash in the escape-string form
/// (`E'it\'s'`). The DML paths print parts of a statement back to SQL text and parse it
/// again, and the plain form would not read back the same: sqlparser prints a quote after a
/// backslash unescaped (`'x\'y'`), which the PostgreSQL dialect then ends the string at.
pub fn escape_string_literals(stmt: &mut datafusion::sql::sqlparser::ast::Statement) {
    use datafusion::sql::sqlparser::ast::{Value, ValueWithSpan};
    struct E;
    impl VisitorMut for E {
        type Break = ();
        fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
            if let Value::SingleQuotedString(s) = &mut v.value
                && s.contains(['\\', '\''])
            {
                v.value = Value::EscapedStringLiteral(std::mem::take(s));
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut E);
    // `LIKE … ESCAPE '\'` needs its one character in the plain form (DataFusion refuses the
    // escape form there), and one character cannot be misread.
    struct Escape;
    impl VisitorMut for Escape {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Like { escape_char, .. }
            | Expr::ILike { escape_char, .. }
            | Expr::SimilarTo { escape_char, .. } = e
                && let Some(v) = escape_char
                && let Value::EscapedStringLiteral(c) = &mut v.value
            {
                v.value = Value::SingleQuotedString(std::mem::take(c));
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Escape);
}

/// PostgreSQL's 0A000 for a sub-query where a stored or per-row expression must stand alone:
/// `what` is "DEFAULT expression", "check constraint" or "transform expression".
pub fn reject_subquery(e: &Expr, what: &str) -> crate::error::Result<()> {
    use datafusion::sql::sqlparser::ast::Visit;
    struct Finder;
    impl datafusion::sql::sqlparser::ast::Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    ControlFlow::Break(())
                }
                // `ARRAY(SELECT …)`.
                Expr::Function(f)
                    if matches!(
                        f.args,
                        datafusion::sql::sqlparser::ast::FunctionArguments::Subquery(_)
                    ) =>
                {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    if e.visit(&mut Finder).is_break() {
        return Err(crate::error::user_error(
            thunderdb_common::SqlState::FEATURE_NOT_SUPPORTED,
            format!("cannot use subquery in {what}"),
        ));
    }
    Ok(())
}
