//! MySQL SQL into the syntax tree the shared planner and DML paths take.
//!
//! Two passes. On tokens (textual order, before parsing): `?` placeholders become `$1 …`,
//! backtick identifiers become lower-case quoted identifiers (ThunderDB runs MySQL with
//! `lower_case_table_names = 1`: names are case-insensitive), `"text"` is a string,
//! `@@system` and `@user` variables and `DATABASE()`, `LAST_INSERT_ID()`, `VERSION()` …
//! become the session's values. On the tree: `LIMIT a, b`, `DIV`, `XOR`, names qualified by
//! the database, `ON DUPLICATE KEY UPDATE` / `INSERT IGNORE`, and MySQL column headers.
//! The result prints as SQL the PostgreSQL-dialect parser reads back (the DML paths re-plan
//! their sources from text).

use super::MySqlState;
use crate::error::{Result, user_error};
use crate::sql::function;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr, Ident, ObjectNamePart, Query, SelectItem, SetExpr, Statement,
    UnaryOperator, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::MySqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};
use std::ops::ControlFlow;
use thunderdb_common::SqlState;

fn syntax(message: impl std::fmt::Display) -> thunderdb_common::ThunderError {
    let m = message.to_string();
    user_error(
        SqlState::SYNTAX_ERROR,
        format!(
            "syntax error: {}",
            m.trim_start_matches("sql parser error: ")
        ),
    )
}

/// The statements of a request, each as its tokens (comments and whitespace kept), split at
/// top-level semicolons; empty statements are dropped.
pub(crate) fn split(sql: &str) -> Result<Vec<Vec<TokenWithSpan>>> {
    let tokens = Tokenizer::new(&MySqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(syntax)?;
    let mut statements = Vec::new();
    let mut current = Vec::new();
    for t in tokens {
        if t.token == Token::SemiColon {
            if current.iter().any(significant) {
                statements.push(std::mem::take(&mut current));
            } else {
                current.clear();
            }
        } else {
            current.push(t);
        }
    }
    if current.iter().any(significant) {
        statements.push(current);
    }
    Ok(statements)
}

fn significant(t: &TokenWithSpan) -> bool {
    !matches!(t.token, Token::Whitespace(_) | Token::EOF)
}

/// The words of a statement (lower case), strings included: for SHOW forms the parser keeps
/// only as bare words.
pub(crate) fn words(tokens: &[TokenWithSpan]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|t| match &t.token {
            Token::Word(w) => Some(w.value.to_lowercase()),
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(s.clone()),
            Token::Number(n, _) => Some(n.clone()),
            Token::Mul => Some("*".into()),
            _ => None,
        })
        .collect()
}

/// A string literal token.
fn string(s: impl Into<String>) -> Token {
    Token::SingleQuotedString(s.into())
}

fn quoted_word(value: String) -> Token {
    Token::Word(Word {
        value,
        quote_style: Some('"'),
        keyword: Keyword::NoKeyword,
    })
}

/// A variable's value as a literal token.
fn value_token(v: &datafusion::scalar::ScalarValue) -> Vec<Token> {
    use datafusion::scalar::ScalarValue as S;
    match v {
        _ if v.is_null() => vec![Token::make_keyword("NULL")],
        S::Int64(Some(n)) if *n < 0 => vec![
            Token::Minus,
            Token::Number(n.unsigned_abs().to_string(), false),
        ],
        S::Int64(Some(n)) => vec![Token::Number(n.to_string(), false)],
        S::Float64(Some(f)) if f.is_finite() => {
            let text = format!("{f:e}");
            if *f < 0.0 {
                vec![
                    Token::Minus,
                    Token::Number(text.trim_start_matches('-').into(), false),
                ]
            } else {
                vec![Token::Number(text, false)]
            }
        }
        S::Decimal128(Some(_), _, _) => {
            let text = v.to_string();
            match text.strip_prefix('-') {
                Some(abs) => vec![Token::Minus, Token::Number(abs.into(), false)],
                None => vec![Token::Number(text, false)],
            }
        }
        S::Boolean(Some(b)) => vec![Token::Number(u8::from(*b).to_string(), false)],
        other => vec![string(other.to_string())],
    }
}

/// Whether the statement is `SET …`.
fn is_set(tokens: &[TokenWithSpan]) -> bool {
    tokens
        .iter()
        .find(|t| significant(t))
        .is_some_and(|t| matches!(&t.token, Token::Word(w) if w.keyword == Keyword::SET))
}

/// What the token pass did.
#[derive(Default)]
pub(crate) struct TokenPass {
    /// `?` placeholders seen.
    pub placeholders: usize,
    /// Whether a session value (variable, DATABASE() …) was put in: a prepared statement
    /// must then be read again at each execution.
    pub substituted: bool,
}

/// The token pass. In SET statements variables are left as they are: SET evaluates its
/// values in order, each after the assignments before it.
pub(crate) fn transform_tokens(
    tokens: &[TokenWithSpan],
    state: &MySqlState,
    pass: &mut TokenPass,
) -> Result<Vec<TokenWithSpan>> {
    let set = is_set(tokens);
    let sig: Vec<usize> = (0..tokens.len())
        .filter(|&i| significant(&tokens[i]))
        .collect();
    // Position of each token among the significant ones.
    let mut rank = vec![usize::MAX; tokens.len()];
    for (r, &i) in sig.iter().enumerate() {
        rank[i] = r;
    }
    let nth = |i: usize, k: isize| -> Option<usize> {
        let r = rank.get(i).copied().filter(|&r| r != usize::MAX)?;
        let r = r.checked_add_signed(k)?;
        sig.get(r).copied()
    };
    let token_at = |i: Option<usize>| i.map(|i| &tokens[i].token);
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut skip_until = 0usize;
    for (i, t) in tokens.iter().enumerate() {
        if i < skip_until {
            continue;
        }
        let span = t.span;
        let mut push = |token: Token| out.push(TokenWithSpan { token, span });
        match &t.token {
            Token::Placeholder(p) if p == "?" => {
                pass.placeholders += 1;
                push(Token::Placeholder(format!("${}", pass.placeholders)));
            }
            Token::DoubleQuotedString(s) => push(string(s.clone())),
            Token::Word(w) if w.quote_style == Some('`') => {
                let after_as = matches!(token_at(nth(i, -1)), Some(Token::Word(p)) if p.keyword == Keyword::AS);
                let value = if after_as {
                    w.value.clone()
                } else {
                    w.value.to_lowercase()
                };
                push(quoted_word(value));
            }
            Token::Word(w) if set && w.quote_style.is_none() && w.value.starts_with('@') => {
                push(t.token.clone());
            }
            Token::Word(w) if w.quote_style.is_none() && w.value.starts_with("@@") => {
                let mut name = w.value[2..].to_lowercase();
                let mut last = i;
                if matches!(name.as_str(), "session" | "global" | "local")
                    && token_at(nth(i, 1)) == Some(&Token::Period)
                    && let Some(Token::Word(n)) = token_at(nth(i, 2))
                {
                    name = n.value.to_lowercase();
                    last = nth(i, 2).unwrap_or(i);
                }
                skip_until = last + 1;
                let value = state
                    .system_variable(&name)
                    .ok_or_else(|| unknown_variable(&name))?;
                pass.substituted = true;
                let span = span.union(&tokens[last].span);
                for token in value_token(&value) {
                    out.push(TokenWithSpan { token, span });
                }
            }
            Token::Word(w)
                if w.quote_style.is_none() && w.value.starts_with('@') && w.value.len() > 1 =>
            {
                let value = state.user_variable(&w.value[1..]);
                pass.substituted = true;
                for token in value_token(&value) {
                    out.push(TokenWithSpan { token, span });
                }
            }
            Token::Word(w)
                if w.quote_style.is_none()
                    && token_at(nth(i, 1)) == Some(&Token::LParen)
                    && token_at(nth(i, 2)) == Some(&Token::RParen)
                    && state.function_value(&w.value.to_lowercase()).is_some() =>
            {
                let value = state
                    .function_value(&w.value.to_lowercase())
                    .expect("checked in the guard");
                let close = nth(i, 2).unwrap_or(i);
                skip_until = close + 1;
                pass.substituted = true;
                let span = span.union(&tokens[close].span);
                for token in value_token(&value) {
                    out.push(TokenWithSpan { token, span });
                }
            }
            other => push(other.clone()),
        }
    }
    Ok(out)
}

pub(crate) fn unknown_variable(name: &str) -> thunderdb_common::ThunderError {
    user_error(
        SqlState::UNDEFINED_OBJECT,
        format!("Unknown system variable '{name}'"),
    )
}

/// Parses one statement's (transformed) tokens.
pub(crate) fn parse(tokens: Vec<TokenWithSpan>) -> Result<Statement> {
    let mut statements = Parser::new(&MySqlDialect {})
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(syntax)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(syntax("expected one statement")),
    }
}

/// The tree pass; `sql` is the text the statement's spans point into.
pub(crate) fn rewrite(stmt: &mut Statement, database: &str, sql: &str) -> Result<()> {
    struct R<'a> {
        database: &'a str,
    }
    impl VisitorMut for R<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) = &q.limit_clause {
                q.limit_clause = Some(ast::LimitClause::LimitOffset {
                    limit: Some(limit.clone()),
                    offset: Some(ast::Offset {
                        value: offset.clone(),
                        rows: ast::OffsetRows::None,
                    }),
                    limit_by: vec![],
                });
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_relation(&mut self, name: &mut ast::ObjectName) -> ControlFlow<()> {
            // `db.t` names the table `t` of the (only) database.
            if name.0.len() == 2
                && let ObjectNamePart::Identifier(first) = &name.0[0]
                && first.value.eq_ignore_ascii_case(self.database)
            {
                name.0[0] = ObjectNamePart::Identifier(Ident::new("public"));
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            match e {
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::MyIntegerDivide,
                    right,
                } => {
                    let div = Expr::BinaryOp {
                        left: Box::new(Expr::Nested(left.clone())),
                        op: BinaryOperator::Divide,
                        right: Box::new(Expr::Nested(right.clone())),
                    };
                    *e = Expr::Cast {
                        kind: ast::CastKind::Cast,
                        expr: Box::new(Expr::Function(function("trunc", vec![div]))),
                        data_type: ast::DataType::BigInt(None),
                        array: false,
                        format: None,
                    };
                }
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Xor,
                    right,
                } => {
                    let (l, r) = (Expr::Nested(left.clone()), Expr::Nested(right.clone()));
                    let either = Expr::BinaryOp {
                        left: Box::new(l.clone()),
                        op: BinaryOperator::Or,
                        right: Box::new(r.clone()),
                    };
                    let both = Expr::BinaryOp {
                        left: Box::new(l),
                        op: BinaryOperator::And,
                        right: Box::new(r),
                    };
                    *e = Expr::Nested(Box::new(Expr::BinaryOp {
                        left: Box::new(Expr::Nested(Box::new(either))),
                        op: BinaryOperator::And,
                        right: Box::new(Expr::UnaryOp {
                            op: UnaryOperator::Not,
                            expr: Box::new(Expr::Nested(Box::new(both))),
                        }),
                    }));
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut R { database });
    match stmt {
        Statement::Query(q) => {
            // MySQL's `FOR UPDATE` / `LOCK IN SHARE MODE`: every write is validated at commit
            // (first committer wins), so the lock adds nothing to correctness here.
            q.locks.clear();
            column_headers(q, sql);
        }
        Statement::Insert(ins) => insert(ins)?,
        _ => {}
    }
    Ok(())
}

/// MySQL names a result column as written: `SELECT Name` is headed `Name`, `AS Total` is
/// `Total` (the planner would fold both to lower case), `SELECT count(*), 'a', @@version` is
/// headed `count(*)`, `a`, `@@version`.
fn column_headers(q: &mut Query, sql: &str) {
    use datafusion::sql::sqlparser::ast::Spanned;
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    for (i, item) in select.projection.iter_mut().enumerate() {
        match item {
            SelectItem::ExprWithAlias { alias, .. } if alias.quote_style.is_none() => {
                alias.quote_style = Some('"');
            }
            SelectItem::UnnamedExpr(expr) => {
                let header = match &*expr {
                    Expr::Identifier(i) if i.quote_style.is_none() => {
                        Some(i.value.clone()).filter(|n| n.chars().any(char::is_uppercase))
                    }
                    Expr::CompoundIdentifier(parts) => parts
                        .last()
                        .filter(|i| i.quote_style.is_none())
                        .map(|i| i.value.clone())
                        .filter(|n| n.chars().any(char::is_uppercase)),
                    Expr::Identifier(_) => None,
                    // A string written as a literal is headed by its value; one put in for
                    // a variable or function by what was written.
                    Expr::Value(v) => match (&v.value, source_text(sql, expr.span())) {
                        (ast::Value::SingleQuotedString(s), Some(text))
                            if text.starts_with(['\'', '"']) =>
                        {
                            Some(s.clone())
                        }
                        (_, text) => text,
                    },
                    _ => source_text(sql, expr.span()),
                };
                if let Some(name) = header {
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias: crate::naming::named_alias(i, &name),
                    };
                }
            }
            _ => {}
        }
    }
}

/// How many parentheses `s` opens and does not close (quotes respected).
fn unclosed_parens(s: &str) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depth
}

/// The length of the parenthesized group `s` starts with (quotes respected).
fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The text of `sql` a span covers (lines and columns count from 1, columns in characters).
fn source_text(sql: &str, span: datafusion::sql::sqlparser::tokenizer::Span) -> Option<String> {
    let offset = |loc: datafusion::sql::sqlparser::tokenizer::Location| -> Option<usize> {
        if loc.line == 0 || loc.column == 0 {
            return None;
        }
        let line_start: usize = sql
            .split_inclusive('\n')
            .take(loc.line as usize - 1)
            .map(str::len)
            .sum();
        let line = sql.get(line_start..)?;
        let col = line
            .char_indices()
            .nth(loc.column as usize - 1)
            .map_or(line.len(), |(b, _)| b);
        Some(line_start + col)
    };
    let (start, mut end) = (offset(span.start)?, offset(span.end)?);
    // A function call's span may stop at its name or its last argument: take in the rest of
    // its parentheses.
    loop {
        let open = unclosed_parens(sql.get(start..end)?);
        let rest = sql.get(end..)?;
        if open > 0 {
            let close = rest.find(')')?;
            end += close + 1;
            continue;
        }
        let skipped = rest.len() - rest.trim_start().len();
        if !rest.trim_start().starts_with('(') {
            break;
        }
        end += skipped + matching_paren(&rest[skipped..])?;
    }
    let text = sql.get(start..end)?.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// `INSERT … SET a = 1`, `ON DUPLICATE KEY UPDATE` (with `VALUES(col)` and row aliases) and
/// `INSERT IGNORE` in the ON CONFLICT form the DML path runs. (`REPLACE` is the DML path's.)
fn insert(ins: &mut ast::Insert) -> Result<()> {
    if !ins.assignments.is_empty() && ins.source.is_none() {
        let assignments = std::mem::take(&mut ins.assignments);
        let mut row = Vec::new();
        for a in assignments {
            let ast::AssignmentTarget::ColumnName(name) = a.target else {
                return Err(syntax("INSERT … SET takes column names"));
            };
            ins.columns.push(name);
            row.push(a.value);
        }
        ins.source = Some(Box::new(values_query(row)));
    }
    let row_alias = ins
        .insert_alias
        .take()
        .map(|a| a.row_alias.to_string().to_lowercase());
    match ins.on.take() {
        Some(ast::OnInsert::DuplicateKeyUpdate(assignments)) => {
            let assignments = assignments
                .into_iter()
                .map(|mut a| {
                    a.value = excluded_values(a.value, row_alias.as_deref());
                    a
                })
                .collect();
            ins.on = Some(ast::OnInsert::OnConflict(ast::OnConflict {
                conflict_target: None,
                action: ast::OnConflictAction::DoUpdate(ast::DoUpdate {
                    assignments,
                    selection: None,
                }),
            }));
        }
        Some(other) => ins.on = Some(other),
        None if ins.ignore => {
            ins.on = Some(ast::OnInsert::OnConflict(ast::OnConflict {
                conflict_target: None,
                action: ast::OnConflictAction::DoNothing,
            }));
        }
        None => {}
    }
    ins.ignore = false;
    Ok(())
}

/// `VALUES (row)` as a query.
fn values_query(row: Vec<Expr>) -> Query {
    let mut p = Parser::new(&MySqlDialect {})
        .try_with_sql("VALUES (1)")
        .expect("tokenizes");
    let mut q = *p.parse_query().expect("a VALUES list parses");
    if let SetExpr::Values(values) = q.body.as_mut()
        && let Some(first) = values.rows.first_mut()
    {
        first.content = row;
    }
    q
}

/// `VALUES(col)` and `alias.col` (the row proposed for insertion) → `excluded.col`.
fn excluded_values(mut e: Expr, row_alias: Option<&str>) -> Expr {
    struct X<'a>(Option<&'a str>);
    impl VisitorMut for X<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            let column = match &*e {
                Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("values") => {
                    match &f.args {
                        ast::FunctionArguments::List(l) if l.args.len() == 1 => match &l.args[0] {
                            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                                Expr::Identifier(i),
                            )) => Some(i.clone()),
                            _ => None,
                        },
                        _ => None,
                    }
                }
                Expr::CompoundIdentifier(parts)
                    if parts.len() == 2
                        && self
                            .0
                            .is_some_and(|a| parts[0].value.eq_ignore_ascii_case(a)) =>
                {
                    Some(parts[1].clone())
                }
                _ => None,
            };
            if let Some(c) = column {
                *e = Expr::CompoundIdentifier(vec![Ident::new("excluded"), c]);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = e.visit(&mut X(row_alias));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sql: &str) -> String {
        let state = MySqlState::new(7, "root", "8.0.36-ThunderDB");
        let mut pass = TokenPass::default();
        let mut out = Vec::new();
        for tokens in split(sql).unwrap() {
            let tokens = transform_tokens(&tokens, &state, &mut pass).unwrap();
            let mut stmt = parse(tokens).unwrap();
            rewrite(&mut stmt, "thunderdb", sql).unwrap();
            out.push(stmt.to_string());
        }
        out.join("; ")
    }

    #[test]
    fn mysql_forms_become_shared_forms() {
        assert_eq!(
            run("SELECT `Id`, \"x\" FROM thunderdb.`T` WHERE a = ? AND b = ? LIMIT 5, 10"),
            "SELECT \"id\", 'x' AS \"__thunder_name1:x\" FROM public.\"t\" WHERE a = $1 AND b = $2 LIMIT 10 OFFSET 5"
        );
        assert_eq!(
            run("SELECT @@version_comment, @@session.autocommit AS ac"),
            "SELECT 'ThunderDB' AS \"__thunder_name0:@@version_comment\", 1 AS \"ac\""
        );
        assert_eq!(
            run("select connection_id(),\n  database()"),
            "SELECT 7 AS \"__thunder_name0:connection_id()\", NULL AS \"__thunder_name1:database()\""
        );
        assert_eq!(
            run("SELECT Name, n AS Total, count(*) FROM t"),
            "SELECT Name AS \"__thunder_name0:Name\", n AS \"Total\", count(*) AS \"__thunder_name2:count(*)\" FROM t"
        );
        assert_eq!(
            run("INSERT INTO t (a, b) VALUES (1, 2) ON DUPLICATE KEY UPDATE b = VALUES(b) + 1"),
            "INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT DO UPDATE SET b = excluded.b + 1"
        );
        assert_eq!(
            run("INSERT IGNORE INTO t VALUES (1)"),
            "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            run("INSERT INTO t SET a = 1, b = 'x'"),
            "INSERT INTO t (a, b) VALUES (1, 'x')"
        );
        assert_eq!(
            run("SET @x = 1; SELECT 1"),
            "SET @x = 1; SELECT 1 AS \"__thunder_name0:1\""
        );
        assert_eq!(run("SELECT a FROM t LIMIT 2"), "SELECT a FROM t LIMIT 2");
        assert!(split(" ; /* c */ ;").unwrap().is_empty());
    }
}
