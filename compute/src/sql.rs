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
