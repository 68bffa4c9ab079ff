//! PostgreSQL's grammar for the statements sqlparser's PostgreSQL dialect reads differently:
//! `VACUUM`, `ANALYZE` and `COPY` (whose options take `on`/`off`, the pre-9.0 forms psql's
//! `\copy` passes through, and `FORCE_QUOTE *`). Everything else goes to sqlparser as is.

use crate::error::{Result, user_error};
use datafusion::sql::sqlparser::ast::{
    Analyze, CopyOption, CopySource, CopyTarget, Ident, ObjectName, SequenceOptions, Statement,
    VacuumStatement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{IsOptional, Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use thunderdb_common::SqlState;

/// Parses a query string into statements, PostgreSQL's way.
pub(crate) fn parse_sql(sql: &str) -> Result<Vec<Statement>> {
    parse_all(sql).map_err(|e| {
        let msg = e.to_string();
        user_error(
            SqlState::SYNTAX_ERROR,
            format!(
                "syntax error: {}",
                msg.trim_start_matches("sql parser error: ")
            ),
        )
    })
}

fn parse_all(sql: &str) -> std::result::Result<Vec<Statement>, ParserError> {
    let dialect = PostgreSqlDialect {};
    let sql = weaker_locks_as_strong(sql, &dialect)?;
    let mut parser = Parser::new(&dialect).try_with_sql(&sql)?;
    let mut out = Vec::new();
    let mut expecting_end = false;
    loop {
        while parser.consume_token(&Token::SemiColon) {
            expecting_end = false;
        }
        let next = parser.peek_token();
        let keyword = match &next.token {
            Token::EOF => break,
            _ if expecting_end => return parser.expected("end of statement", next),
            Token::Word(w) => w.keyword,
            _ => Keyword::NoKeyword,
        };
        let creates_sequence = keyword == Keyword::CREATE
            && (1..=2).any(|n| {
                matches!(&parser.peek_nth_token(n).token, Token::Word(w) if w.keyword == Keyword::SEQUENCE)
            });
        let checkpoint = matches!(&next.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("checkpoint"));
        let on_user = matches!(&parser.peek_nth_token(1).token, Token::Word(w) if w.keyword == Keyword::USER)
            && !matches!(&parser.peek_nth_token(2).token, Token::Word(w) if w.value.eq_ignore_ascii_case("mapping"));
        match keyword {
            // PostgreSQL's CREATE USER is CREATE ROLE with LOGIN; sqlparser reads Snowflake's.
            Keyword::CREATE if on_user => {
                parser.next_token();
                parser.next_token();
                let mut role = parser.parse_create_role()?;
                role.login.get_or_insert(true);
                out.push(Statement::CreateRole(role));
            }
            Keyword::ALTER if on_user => {
                parser.next_token();
                parser.next_token();
                out.push(parser.parse_alter_role()?);
            }
            Keyword::CREATE if creates_sequence => out.push(parse_create_sequence(&mut parser)?),
            Keyword::VACUUM | Keyword::ANALYZE => out.extend(parse_maintenance(&mut parser)?),
            Keyword::COPY => out.push(parse_copy(&mut parser)?),
            _ if checkpoint => {
                parser.next_token();
                out.push(checkpoint_statement());
            }
            _ => out.push(parser.parse_statement()?),
        }
        expecting_end = true;
    }
    Ok(out)
}

/// PostgreSQL's `CHECKPOINT`, which sqlparser does not know, carried as a `FLUSH` that no
/// text parses to (FLUSH names a channel only for relay logs).
fn checkpoint_statement() -> Statement {
    Statement::Flush {
        object_type: datafusion::sql::sqlparser::ast::FlushType::Tables,
        location: None,
        channel: Some(CHECKPOINT_CHANNEL.into()),
        read_lock: false,
        export: false,
        tables: Vec::new(),
    }
}

const CHECKPOINT_CHANNEL: &str = "\0checkpoint";

/// Whether `stmt` is `CHECKPOINT`.
pub(crate) fn is_checkpoint(stmt: &Statement) -> bool {
    matches!(stmt, Statement::Flush { channel: Some(c), .. } if c == CHECKPOINT_CHANNEL)
}

/// `FOR NO KEY UPDATE` and `FOR KEY SHARE`, which sqlparser does not know, as `FOR UPDATE` and
/// `FOR SHARE` (the claims ThunderDB makes for them are the same). The rest of the text is kept
/// byte for byte.
fn weaker_locks_as_strong<'a>(
    sql: &'a str,
    dialect: &PostgreSqlDialect,
) -> std::result::Result<std::borrow::Cow<'a, str>, ParserError> {
    use datafusion::sql::sqlparser::tokenizer::{Location, Tokenizer};
    if !sql.to_ascii_lowercase().contains("key") {
        return Ok(std::borrow::Cow::Borrowed(sql));
    }
    let tokens: Vec<_> = Tokenizer::new(dialect, sql)
        .tokenize_with_location()?
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // Byte offset of a 1-based line/column location.
    let offset = |l: Location| -> Option<usize> {
        let start = *line_starts.get((l.line as usize).checked_sub(1)?)?;
        let column = (l.column as usize).checked_sub(1)?;
        Some(
            sql[start..]
                .char_indices()
                .nth(column)
                .map_or(sql.len(), |(i, _)| start + i),
        )
    };
    let word = |i: usize, k: Keyword| matches!(tokens.get(i).map(|t| &t.token), Some(Token::Word(w)) if w.keyword == k);
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for i in 0..tokens.len() {
        let (len, strong) = if word(i, Keyword::FOR)
            && word(i + 1, Keyword::NO)
            && word(i + 2, Keyword::KEY)
            && word(i + 3, Keyword::UPDATE)
        {
            (4, "FOR UPDATE")
        } else if word(i, Keyword::FOR) && word(i + 1, Keyword::KEY) && word(i + 2, Keyword::SHARE)
        {
            (3, "FOR SHARE")
        } else {
            continue;
        };
        let (Some(from), Some(to)) = (
            offset(tokens[i].span.start),
            offset(tokens[i + len - 1].span.end),
        ) else {
            continue;
        };
        if from < copied || to < from {
            continue;
        }
        out.push_str(&sql[copied..from]);
        out.push_str(strong);
        copied = to;
    }
    if copied == 0 {
        return Ok(std::borrow::Cow::Borrowed(sql));
    }
    out.push_str(&sql[copied..]);
    Ok(std::borrow::Cow::Owned(out))
}

/// `CREATE [TEMP] SEQUENCE [IF NOT EXISTS] name [AS type]` and its options in any order (as
/// PostgreSQL takes them; sqlparser wants one order).
fn parse_create_sequence(p: &mut Parser) -> std::result::Result<Statement, ParserError> {
    p.expect_keyword_is(Keyword::CREATE)?;
    let temporary = p
        .parse_one_of_keywords(&[Keyword::TEMP, Keyword::TEMPORARY])
        .is_some();
    p.expect_keyword_is(Keyword::SEQUENCE)?;
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = p.parse_object_name(false)?;
    let data_type = if p.parse_keyword(Keyword::AS) {
        Some(p.parse_data_type()?)
    } else {
        None
    };
    let mut options = Vec::new();
    let mut owned_by = None;
    loop {
        if p.parse_keyword(Keyword::INCREMENT) {
            let by = p.parse_keyword(Keyword::BY);
            options.push(SequenceOptions::IncrementBy(signed_number(p)?, by));
        } else if p.parse_keyword(Keyword::MINVALUE) {
            options.push(SequenceOptions::MinValue(Some(signed_number(p)?)));
        } else if p.parse_keyword(Keyword::MAXVALUE) {
            options.push(SequenceOptions::MaxValue(Some(signed_number(p)?)));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::MINVALUE]) {
            options.push(SequenceOptions::MinValue(None));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::MAXVALUE]) {
            options.push(SequenceOptions::MaxValue(None));
        } else if p.parse_keyword(Keyword::START) {
            let with = p.parse_keyword(Keyword::WITH);
            options.push(SequenceOptions::StartWith(signed_number(p)?, with));
        } else if p.parse_keyword(Keyword::CACHE) {
            options.push(SequenceOptions::Cache(signed_number(p)?));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::CYCLE]) {
            // sqlparser's convention: `Cycle(true)` is NO CYCLE.
            options.push(SequenceOptions::Cycle(true));
        } else if p.parse_keyword(Keyword::CYCLE) {
            options.push(SequenceOptions::Cycle(false));
        } else if p.parse_keywords(&[Keyword::OWNED, Keyword::BY]) {
            owned_by = Some(p.parse_object_name(false)?);
        } else {
            break;
        }
    }
    Ok(Statement::CreateSequence {
        temporary,
        if_not_exists,
        name,
        data_type,
        sequence_options: options,
        owned_by,
    })
}

/// An integer literal, possibly negative.
fn signed_number(
    p: &mut Parser,
) -> std::result::Result<datafusion::sql::sqlparser::ast::Expr, ParserError> {
    use datafusion::sql::sqlparser::ast::{Expr, UnaryOperator};
    if p.consume_token(&Token::Minus) {
        let n = p.parse_number()?;
        return Ok(Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: Box::new(n),
        });
    }
    let _ = p.consume_token(&Token::Plus);
    p.parse_number()
}

/// `VACUUM [(options)] [FULL] [FREEZE] [VERBOSE] [ANALYZE] [table [(columns)], …]` and
/// `ANALYZE [(options)] [VERBOSE] [table [(columns)], …]`: one statement per table named (a
/// bare form is one statement without a table).
fn parse_maintenance(p: &mut Parser) -> std::result::Result<Vec<Statement>, ParserError> {
    let vacuum = p.parse_keyword(Keyword::VACUUM);
    if !vacuum {
        p.expect_keyword_is(Keyword::ANALYZE)?;
    }
    let mut full = false;
    // VACUUM's ANALYZE option: an ANALYZE of each table follows its VACUUM.
    let mut and_analyze = false;
    if p.consume_token(&Token::LParen) {
        loop {
            let option = p.parse_identifier()?.value.to_lowercase();
            // An option may carry a value (`FULL false`, `INDEX_CLEANUP auto`, `PARALLEL 2`).
            let value = match p.peek_token().token {
                Token::Comma | Token::RParen => None,
                _ => Some(p.next_token().token.to_string().to_lowercase()),
            };
            let known: &[&str] = if vacuum {
                &[
                    "full",
                    "freeze",
                    "verbose",
                    "analyze",
                    "disable_page_skipping",
                    "skip_locked",
                    "index_cleanup",
                    "process_toast",
                    "truncate",
                    "parallel",
                ]
            } else {
                &["verbose", "skip_locked"]
            };
            if !known.contains(&option.as_str()) {
                let what = if vacuum { "VACUUM" } else { "ANALYZE" };
                return Err(ParserError::ParserError(format!(
                    "unrecognized {what} option \"{option}\""
                )));
            }
            let on = !matches!(value.as_deref(), Some("false" | "off" | "0"));
            match option.as_str() {
                "full" => full = on,
                "analyze" if vacuum => and_analyze = on,
                _ => {}
            }
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen)?;
    } else if vacuum {
        full = p.parse_keyword(Keyword::FULL);
        let _ = p.parse_keyword(Keyword::FREEZE);
        let _ = p.parse_keyword(Keyword::VERBOSE);
        and_analyze = p.parse_keyword(Keyword::ANALYZE);
    } else {
        let _ = p.parse_keyword(Keyword::VERBOSE);
    }
    let mut tables: Vec<(Option<ObjectName>, Vec<Ident>)> = Vec::new();
    if !matches!(p.peek_token().token, Token::SemiColon | Token::EOF) {
        loop {
            let name = p.parse_object_name(false)?;
            let columns = p.parse_parenthesized_column_list(IsOptional::Optional, false)?;
            tables.push((Some(name), columns));
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
    }
    if tables.is_empty() {
        tables.push((None, vec![]));
    }
    Ok(tables
        .into_iter()
        .map(|(table_name, columns)| {
            if !vacuum || and_analyze {
                // `compute_statistics` (Spark's word, unused by PostgreSQL's syntax) marks the
                // ANALYZE of a VACUUM: it runs as VACUUM does, outside a transaction block,
                // and answers VACUUM.
                Statement::Analyze(Analyze {
                    table_name,
                    partitions: None,
                    for_columns: false,
                    columns,
                    cache_metadata: false,
                    noscan: false,
                    compute_statistics: vacuum,
                    has_table_keyword: false,
                })
            } else {
                // Column lists only matter to ANALYZE; the table is what VACUUM checks.
                Statement::Vacuum(VacuumStatement {
                    full,
                    sort_only: false,
                    delete_only: false,
                    reindex: false,
                    recluster: false,
                    table_name,
                    threshold: None,
                    boost: false,
                })
            }
        })
        .collect())
}

/// `COPY table [(columns)] FROM STDIN | COPY {table [(columns)] | (query)} TO STDOUT` with
/// `[WITH] (option …)` or the pre-9.0 option words; legacy options become their modern form.
fn parse_copy(p: &mut Parser) -> std::result::Result<Statement, ParserError> {
    p.expect_keyword_is(Keyword::COPY)?;
    let source = if p.consume_token(&Token::LParen) {
        let query = p.parse_query()?;
        p.expect_token(&Token::RParen)?;
        CopySource::Query(query)
    } else {
        let table_name = p.parse_object_name(false)?;
        let columns = p.parse_parenthesized_column_list(IsOptional::Optional, false)?;
        CopySource::Table {
            table_name,
            columns,
        }
    };
    let to = match p.parse_one_of_keywords(&[Keyword::FROM, Keyword::TO]) {
        Some(Keyword::TO) => true,
        Some(_) => false,
        None => return p.expected("FROM or TO", p.peek_token()),
    };
    if !to && matches!(source, CopySource::Query(_)) {
        return Err(ParserError::ParserError(
            "COPY FROM does not take a query; name a table".into(),
        ));
    }
    let target = if p.parse_keyword(Keyword::STDIN) {
        CopyTarget::Stdin
    } else if p.parse_keyword(Keyword::STDOUT) {
        CopyTarget::Stdout
    } else if p.parse_keyword(Keyword::PROGRAM) {
        CopyTarget::Program {
            command: p.parse_literal_string()?,
        }
    } else {
        CopyTarget::File {
            filename: p.parse_literal_string()?,
        }
    };
    let _ = p.parse_keyword(Keyword::WITH);
    let mut options = Vec::new();
    if p.consume_token(&Token::LParen) {
        options = p.parse_comma_separated(parse_copy_option)?;
        p.expect_token(&Token::RParen)?;
    } else {
        parse_legacy_copy_options(p, &mut options)?;
    }
    if p.parse_keyword(Keyword::WHERE) {
        return Err(ParserError::ParserError(
            "COPY … WHERE is not supported".into(),
        ));
    }
    Ok(Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options: vec![],
        values: vec![],
    })
}

/// A boolean option value: absent means true; PostgreSQL also takes on/off/1/0.
fn copy_bool(p: &mut Parser) -> std::result::Result<bool, ParserError> {
    let next = p.peek_token();
    let word = match &next.token {
        Token::Comma | Token::RParen => return Ok(true),
        Token::Word(w) => w.value.to_lowercase(),
        Token::Number(n, _) => n.clone(),
        Token::SingleQuotedString(s) => s.to_lowercase(),
        _ => return p.expected("a boolean", next),
    };
    let value = match word.as_str() {
        "true" | "on" | "1" | "yes" => true,
        "false" | "off" | "0" | "no" => false,
        _ => return p.expected("a boolean", next),
    };
    p.next_token();
    Ok(value)
}

fn copy_char(p: &mut Parser, option: &str) -> std::result::Result<char, ParserError> {
    let s = p.parse_literal_string()?;
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => Ok(c),
        _ => Err(ParserError::ParserError(format!(
            "COPY {option} must be a single one-byte character"
        ))),
    }
}

/// `FORCE_QUOTE (a, b)` / `FORCE_QUOTE *` (written as the column `*`).
fn copy_columns(p: &mut Parser, star: bool) -> std::result::Result<Vec<Ident>, ParserError> {
    if star && p.consume_token(&Token::Mul) {
        return Ok(vec![Ident::new("*")]);
    }
    if p.peek_token().token == Token::LParen {
        p.parse_parenthesized_column_list(IsOptional::Mandatory, false)
    } else {
        p.parse_comma_separated(|p| p.parse_identifier())
    }
}

fn parse_copy_option(p: &mut Parser) -> std::result::Result<CopyOption, ParserError> {
    let name = p.parse_identifier()?.value.to_lowercase();
    Ok(match name.as_str() {
        "format" => CopyOption::Format(p.parse_identifier()?),
        "freeze" => CopyOption::Freeze(copy_bool(p)?),
        "delimiter" => CopyOption::Delimiter(copy_char(p, "delimiter")?),
        "null" => CopyOption::Null(p.parse_literal_string()?),
        "header" => {
            if p.peek_token()
                .token
                .to_string()
                .eq_ignore_ascii_case("match")
            {
                return Err(ParserError::ParserError(
                    "COPY HEADER MATCH is not supported".into(),
                ));
            }
            CopyOption::Header(copy_bool(p)?)
        }
        "quote" => CopyOption::Quote(copy_char(p, "quote")?),
        "escape" => CopyOption::Escape(copy_char(p, "escape")?),
        "force_quote" => CopyOption::ForceQuote(copy_columns(p, true)?),
        "force_not_null" => CopyOption::ForceNotNull(copy_columns(p, false)?),
        "force_null" => CopyOption::ForceNull(copy_columns(p, false)?),
        "encoding" => CopyOption::Encoding(p.parse_literal_string()?),
        other => {
            return Err(ParserError::ParserError(format!(
                "option \"{other}\" not recognized"
            )));
        }
    })
}

/// `[BINARY] [DELIMITER [AS] 'c'] [NULL [AS] 's'] [CSV [HEADER] [QUOTE [AS] 'q']
/// [ESCAPE [AS] 'e'] [FORCE QUOTE cols | *] [FORCE NOT NULL cols]]`, in any order.
fn parse_legacy_copy_options(
    p: &mut Parser,
    options: &mut Vec<CopyOption>,
) -> std::result::Result<(), ParserError> {
    loop {
        let Token::Word(w) = p.peek_token().token else {
            return Ok(());
        };
        let word = w.value.to_lowercase();
        let option = match word.as_str() {
            "binary" => {
                p.next_token();
                CopyOption::Format(Ident::new("binary"))
            }
            "csv" => {
                p.next_token();
                CopyOption::Format(Ident::new("csv"))
            }
            "header" => {
                p.next_token();
                CopyOption::Header(true)
            }
            "delimiter" | "null" | "quote" | "escape" => {
                p.next_token();
                let _ = p.parse_keyword(Keyword::AS);
                match word.as_str() {
                    "delimiter" => CopyOption::Delimiter(copy_char(p, "delimiter")?),
                    "null" => CopyOption::Null(p.parse_literal_string()?),
                    "quote" => CopyOption::Quote(copy_char(p, "quote")?),
                    _ => CopyOption::Escape(copy_char(p, "escape")?),
                }
            }
            "force" => {
                p.next_token();
                if p.parse_keyword(Keyword::QUOTE) {
                    CopyOption::ForceQuote(copy_columns(p, true)?)
                } else if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
                    CopyOption::ForceNotNull(copy_columns(p, false)?)
                } else {
                    return p.expected("QUOTE or NOT NULL", p.peek_token());
                }
            }
            "encoding" => {
                p.next_token();
                CopyOption::Encoding(p.parse_literal_string()?)
            }
            _ => return Ok(()),
        };
        options.push(option);
    }
}

/// What `COPY … FROM STDIN` / `TO STDOUT` reads or writes, from its options.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyFormat {
    pub csv: bool,
    pub delimiter: u8,
    /// The text standing for NULL (`\N` in text, empty in CSV).
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
    /// Columns (positions in the COPY's column list) always quoted in CSV output.
    pub force_quote: Vec<usize>,
    /// Columns whose null string is read as an empty string, not NULL (CSV input).
    pub force_not_null: Vec<usize>,
    /// Columns whose quoted null string is read as NULL too (CSV input).
    pub force_null: Vec<usize>,
}

impl CopyFormat {
    /// Checks `options` as PostgreSQL does and resolves column names against `columns`.
    pub(crate) fn from_options(
        options: &[CopyOption],
        columns: &[String],
        to: bool,
    ) -> Result<CopyFormat> {
        let invalid = |m: String| user_error(SqlState::FEATURE_NOT_SUPPORTED, m);
        let syntax = |m: &str| user_error(SqlState::SYNTAX_ERROR, m.to_string());
        let mut csv = false;
        let mut delimiter = None;
        let mut null = None;
        let mut header = false;
        let mut quote = None;
        let mut escape = None;
        let (mut force_quote, mut force_not_null, mut force_null) = (vec![], vec![], vec![]);
        let mut seen = std::collections::HashSet::new();
        for o in options {
            let key = std::mem::discriminant(o);
            if !seen.insert(key) {
                return Err(syntax("conflicting or redundant options"));
            }
            match o {
                CopyOption::Format(f) => match f.value.to_lowercase().as_str() {
                    "text" => csv = false,
                    "csv" => csv = true,
                    "binary" => {
                        return Err(invalid("COPY format \"binary\" is not supported".into()));
                    }
                    other => {
                        return Err(user_error(
                            SqlState::INVALID_PARAMETER_VALUE,
                            format!("COPY format \"{other}\" not recognized"),
                        ));
                    }
                },
                CopyOption::Freeze(_) => {}
                CopyOption::Delimiter(c) => delimiter = Some(*c as u8),
                CopyOption::Null(s) => null = Some(s.clone()),
                CopyOption::Header(h) => header = *h,
                CopyOption::Quote(c) => quote = Some(*c as u8),
                CopyOption::Escape(c) => escape = Some(*c as u8),
                CopyOption::ForceQuote(cols) => {
                    force_quote = resolve(cols, columns, true, "FORCE_QUOTE")?
                }
                CopyOption::ForceNotNull(cols) => {
                    force_not_null = resolve(cols, columns, false, "FORCE_NOT_NULL")?
                }
                CopyOption::ForceNull(cols) => {
                    force_null = resolve(cols, columns, false, "FORCE_NULL")?
                }
                CopyOption::Encoding(e) => {
                    let e = e.to_lowercase().replace(['-', '_'], "");
                    if e != "utf8" && e != "unicode" {
                        return Err(invalid(format!(
                            "COPY encoding \"{e}\" is not supported (UTF8 only)"
                        )));
                    }
                }
            }
        }
        let param = |m: &str| user_error(SqlState::INVALID_PARAMETER_VALUE, m.to_string());
        if !csv {
            if quote.is_some() {
                return Err(param("COPY quote available only in CSV mode"));
            }
            if escape.is_some() {
                return Err(param("COPY escape available only in CSV mode"));
            }
            if !force_quote.is_empty() {
                return Err(param("COPY force quote available only in CSV mode"));
            }
            if !force_not_null.is_empty() || !force_null.is_empty() {
                return Err(param("COPY force not null available only in CSV mode"));
            }
        }
        if to && (!force_not_null.is_empty() || !force_null.is_empty()) {
            return Err(invalid(
                "COPY force not null and force null only available using COPY FROM".into(),
            ));
        }
        if !to && !force_quote.is_empty() {
            return Err(invalid(
                "COPY force quote only available using COPY TO".into(),
            ));
        }
        let delimiter = delimiter.unwrap_or(if csv { b',' } else { b'\t' });
        let quote = quote.unwrap_or(b'"');
        let null = null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
        if matches!(delimiter, b'\r' | b'\n') {
            return Err(param("COPY delimiter cannot be newline or carriage return"));
        }
        if null.contains(['\r', '\n']) {
            return Err(param(
                "COPY null representation cannot use newline or carriage return",
            ));
        }
        if !csv && b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&delimiter) {
            return Err(param(&format!(
                "COPY delimiter cannot be \"{}\"",
                delimiter as char
            )));
        }
        if csv && delimiter == quote {
            return Err(param("COPY delimiter and quote must be different"));
        }
        if csv && null.as_bytes().contains(&quote) {
            return Err(param(
                "CSV quote character must not appear in the NULL specification",
            ));
        }
        if null.as_bytes().contains(&delimiter) {
            return Err(param(
                "COPY delimiter must not appear in the NULL specification",
            ));
        }
        Ok(CopyFormat {
            csv,
            delimiter,
            null,
            header,
            quote,
            escape: escape.unwrap_or(quote),
            force_quote,
            force_not_null,
            force_null,
        })
    }
}

/// Positions of `cols` in `columns` (`*` = all when allowed).
fn resolve(cols: &[Ident], columns: &[String], star: bool, option: &str) -> Result<Vec<usize>> {
    if star && cols.len() == 1 && cols[0].value == "*" && cols[0].quote_style.is_none() {
        return Ok((0..columns.len()).collect());
    }
    cols.iter()
        .map(|c| {
            let name = crate::sql::ident_name(c);
            columns.iter().position(|n| *n == name).ok_or_else(|| {
                user_error(
                    SqlState("42P10"),
                    format!("{option} column \"{name}\" not referenced by COPY"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        let mut v = parse_sql(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        assert_eq!(v.len(), 1, "{sql}");
        v.pop().expect("one")
    }

    #[test]
    fn weaker_row_locks_read_as_stronger_ones() {
        let sql = "SELECT 'for no key update', x FROM t WHERE s = 'it''s' FOR NO KEY UPDATE OF t";
        let out = weaker_locks_as_strong(sql, &PostgreSqlDialect {}).expect("tokenizes");
        assert_eq!(
            out,
            "SELECT 'for no key update', x FROM t WHERE s = 'it''s' FOR UPDATE OF t"
        );
        let sql = "SELECT 1 FROM t FOR KEY SHARE";
        assert_eq!(
            weaker_locks_as_strong(sql, &PostgreSqlDialect {}).expect("tokenizes"),
            "SELECT 1 FROM t FOR SHARE"
        );
    }

    #[test]
    fn vacuum_and_analyze_forms() {
        for sql in [
            "vacuum analyze pgbench_branches",
            "VACUUM",
            "VACUUM (VERBOSE, ANALYZE) t",
            "vacuum full freeze verbose analyze t (a, b)",
            "ANALYZE t (a)",
            "analyze verbose t",
        ] {
            let s = one(sql);
            assert!(
                matches!(s, Statement::Vacuum(_) | Statement::Analyze(_)),
                "{sql}"
            );
        }
        assert_eq!(parse_sql("VACUUM a, b; SELECT 1").expect("parses").len(), 3);
        assert!(parse_sql("VACUUM (bogus) t").is_err());
        assert!(parse_sql("VACUUM t u").is_err());
    }

    #[test]
    fn copy_forms() {
        let s = one("copy pgbench_accounts from stdin with (freeze on)");
        let Statement::Copy { options, to, .. } = s else {
            panic!()
        };
        assert!(!to);
        assert_eq!(options, vec![CopyOption::Freeze(true)]);
        let s = one("COPY t (a, b) FROM STDIN WITH CSV HEADER DELIMITER AS ';' NULL 'x'");
        let Statement::Copy { options, .. } = s else {
            panic!()
        };
        assert_eq!(options.len(), 4);
        let s = one("COPY (SELECT 1) TO STDOUT (FORMAT csv, FORCE_QUOTE *)");
        let Statement::Copy { source, .. } = s else {
            panic!()
        };
        assert!(matches!(source, CopySource::Query(_)));
        assert!(parse_sql("COPY (SELECT 1) FROM STDIN").is_err());
        assert!(parse_sql("COPY t FROM STDIN (bogus 1)").is_err());
    }

    #[test]
    fn copy_format_rules() {
        let cols = vec!["a".to_string(), "b".to_string()];
        let f = CopyFormat::from_options(&[], &cols, false).expect("text");
        assert_eq!((f.delimiter, f.null.as_str(), f.csv), (b'\t', "\\N", false));
        let f = CopyFormat::from_options(
            &[
                CopyOption::Format(Ident::new("csv")),
                CopyOption::ForceQuote(vec![Ident::new("*")]),
            ],
            &cols,
            true,
        )
        .expect("csv");
        assert_eq!(
            (f.delimiter, f.null.as_str(), f.force_quote),
            (b',', "", vec![0, 1])
        );
        assert!(CopyFormat::from_options(&[CopyOption::Quote('\'')], &cols, true).is_err());
        assert!(
            CopyFormat::from_options(
                &[CopyOption::Freeze(true), CopyOption::Freeze(false)],
                &cols,
                false
            )
            .is_err()
        );
    }
}
