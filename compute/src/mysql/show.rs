//! MySQL's SHOW statements and DESCRIBE, answered from the catalog and the session.

use super::MySqlState;
use crate::catalog::TableDef;
use crate::error::{DfResultExt, Result, user_error};
use crate::session::{QueryOutput, Session};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{self, Statement};
use std::sync::Arc;
use thunderdb_common::{SqlState, SqlType};

/// A result column: text, or an integer column.
#[derive(Clone, Copy)]
enum Col {
    Text(&'static str),
    Int(&'static str),
}

/// A result set of the given columns; integer cells that do not parse are NULL.
fn rows(columns: &[Col], rows: Vec<Vec<Option<String>>>) -> Result<QueryOutput> {
    rows_named(
        columns
            .iter()
            .map(|c| match c {
                Col::Text(n) => (n.to_string(), false),
                Col::Int(n) => (n.to_string(), true),
            })
            .collect(),
        rows,
    )
}

fn rows_named(columns: Vec<(String, bool)>, rows: Vec<Vec<Option<String>>>) -> Result<QueryOutput> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, int)| {
            Field::new(
                n,
                if *int {
                    DataType::Int64
                } else {
                    DataType::Utf8
                },
                true,
            )
        })
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, int))| -> ArrayRef {
            if *int {
                Arc::new(Int64Array::from(
                    rows.iter()
                        .map(|r| r[i].as_deref().and_then(|v| v.parse::<i64>().ok()))
                        .collect::<Vec<_>>(),
                ))
            } else {
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
                ))
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_df()?;
    Ok(QueryOutput::Rows {
        schema,
        batches: vec![batch],
        command: "SHOW",
    })
}

fn some(s: impl Into<String>) -> Option<String> {
    Some(s.into())
}

/// MySQL's LIKE on names: `%` any run, `_` one character, `\` escapes, case-insensitive.
/// Iterative, remembering the last `%` (linear space, O(pattern × text) time).
pub(crate) fn like(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut p = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        p.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(chars.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(P::Any) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(P::One) => {
                pi += 1;
                ti += 1;
            }
            Some(P::Char(c)) if c.to_lowercase().eq(t[ti].to_lowercase()) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|x| *x == P::Any)
}

/// Keeps the rows whose first column matches a LIKE filter, or that a WHERE filter keeps.
async fn filtered(
    s: &mut Session,
    out: Result<QueryOutput>,
    filter: Option<&ast::ShowStatementFilter>,
) -> Result<QueryOutput> {
    let out = out?;
    let QueryOutput::Rows {
        schema,
        batches,
        command,
    } = out
    else {
        return Ok(out);
    };
    match filter {
        None => Ok(QueryOutput::Rows {
            schema,
            batches,
            command,
        }),
        Some(ast::ShowStatementFilter::Like(p) | ast::ShowStatementFilter::ILike(p)) => {
            let mut kept = Vec::new();
            for b in &batches {
                let names = b.column(0).as_any().downcast_ref::<StringArray>();
                let mask: datafusion::arrow::array::BooleanArray = (0..b.num_rows())
                    .map(|i| Some(names.is_some_and(|n| like(p, n.value(i)))))
                    .collect();
                kept.push(datafusion::arrow::compute::filter_record_batch(b, &mask).map_df()?);
            }
            Ok(QueryOutput::Rows {
                schema,
                batches: kept,
                command,
            })
        }
        Some(ast::ShowStatementFilter::Where(expr)) => {
            // The rows become a scratch table (lower-case column names, as unquoted names in
            // the filter resolve) and the filter runs over it.
            let lower = Arc::new(Schema::new(
                schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_name(f.name().to_lowercase()))
                    .collect::<Vec<_>>(),
            ));
            let batches = batches
                .into_iter()
                .map(|b| RecordBatch::try_new(lower.clone(), b.columns().to_vec()).map_df())
                .collect::<Result<Vec<_>>>()?;
            let table = s.scratch_table("__show", lower, batches)?;
            let plan = s
                .plan_sql(&format!("SELECT * FROM {table} WHERE {expr}"), &[])
                .await;
            let result = match plan {
                Ok(plan) => s.collect(plan).await,
                Err(e) => Err(e),
            };
            s.drop_scratch("__show");
            let (_, batches) = result?;
            let batches = batches
                .into_iter()
                .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).map_df())
                .collect::<Result<Vec<_>>>()?;
            Ok(QueryOutput::Rows {
                schema,
                batches,
                command,
            })
        }
        Some(ast::ShowStatementFilter::NoKeyword(p)) => {
            Box::pin(filtered(
                s,
                Ok(QueryOutput::Rows {
                    schema,
                    batches,
                    command,
                }),
                Some(&ast::ShowStatementFilter::Like(p.clone())),
            ))
            .await
        }
    }
}

/// The MySQL spelling of a column type.
pub(crate) fn mysql_type_name(ty: &SqlType) -> String {
    match ty {
        SqlType::Bool => "tinyint(1)".into(),
        SqlType::Int16 => "smallint".into(),
        SqlType::Int32 => "int".into(),
        SqlType::Int64 => "bigint".into(),
        SqlType::Float32 => "float".into(),
        SqlType::Float64 => "double".into(),
        SqlType::Numeric { precision, scale } => format!("decimal({precision},{scale})"),
        // Arrays have no MySQL type; their values are sent in PostgreSQL's text form.
        SqlType::Text | SqlType::Varchar(None) | SqlType::Array(_) => "longtext".into(),
        SqlType::Varchar(Some(n)) => format!("varchar({n})"),
        SqlType::Char(n) => format!("char({n})"),
        SqlType::Bytea => "longblob".into(),
        SqlType::Date => "date".into(),
        SqlType::Time => "time(6)".into(),
        SqlType::Timestamp => "datetime(6)".into(),
        SqlType::TimestampTz => "timestamp(6)".into(),
        SqlType::Interval => "varchar(64)".into(),
        SqlType::Uuid => "char(36)".into(),
        SqlType::Json | SqlType::JsonText => "json".into(),
        SqlType::Enum { labels, .. } => format!(
            "enum({})",
            labels
                .iter()
                .map(|l| format!("'{}'", l.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A column default as MySQL shows it in DESCRIBE (no quotes) and SHOW CREATE (quoted
/// literals).
fn default_shown(default: &str, quoted: bool) -> String {
    let d = default.trim();
    let unquoted = d
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .map(|x| x.replace("''", "'"));
    let is_number = d.parse::<f64>().is_ok();
    match (unquoted, quoted) {
        (Some(text), false) => text,
        (Some(_), true) => d.to_string(),
        (None, true) if is_number => format!("'{d}'"),
        (None, _) if d.eq_ignore_ascii_case("now()") => "CURRENT_TIMESTAMP".into(),
        (None, _) => d.to_string(),
    }
}

fn key_of(def: &TableDef, pos: usize) -> &'static str {
    if def.primary_key.contains(&pos) {
        "PRI"
    } else if def
        .indexes
        .iter()
        .any(|i| i.unique && i.columns.len() == 1 && i.columns[0] == pos)
    {
        "UNI"
    } else if def.indexes.iter().any(|i| i.columns.first() == Some(&pos)) {
        "MUL"
    } else {
        ""
    }
}

fn is_auto_increment(def: &TableDef, pos: usize) -> bool {
    def.auto_increment == Some(def.columns[pos].id)
}

async fn table_def(s: &mut Session, name: &ast::ObjectName) -> Result<Arc<TableDef>> {
    let table = crate::sql::object_name(name).to_lowercase();
    let (env, _) = s.statement_env(None).await?;
    env.catalog.table(&table).cloned()
}

async fn describe(s: &mut Session, name: &ast::ObjectName, full: bool) -> Result<QueryOutput> {
    let def = table_def(s, name).await?;
    let mut columns = vec![Col::Text("Field"), Col::Text("Type")];
    if full {
        columns.push(Col::Text("Collation"));
    }
    columns.extend([
        Col::Text("Null"),
        Col::Text("Key"),
        Col::Text("Default"),
        Col::Text("Extra"),
    ]);
    if full {
        columns.extend([Col::Text("Privileges"), Col::Text("Comment")]);
    }
    let out = def
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let textual = matches!(c.ty, SqlType::Text | SqlType::Varchar(_) | SqlType::Char(_));
            let mut row = vec![some(&c.name), some(mysql_type_name(&c.ty))];
            if full {
                row.push(textual.then(|| "utf8mb4_general_ci".to_string()));
            }
            let nullable = !(c.not_null || def.primary_key.contains(&i));
            row.extend([
                some(if nullable { "YES" } else { "NO" }),
                some(key_of(&def, i)),
                c.default.as_deref().map(|d| default_shown(d, false)),
                some(if is_auto_increment(&def, i) {
                    "auto_increment"
                } else {
                    ""
                }),
            ]);
            if full {
                row.extend([some("select,insert,update,references"), some("")]);
            }
            row
        })
        .collect();
    rows(&columns, out)
}

fn create_table_text(def: &TableDef) -> String {
    let q = |n: &str| format!("`{}`", n.replace('`', "``"));
    let mut lines = Vec::new();
    for (i, c) in def.columns.iter().enumerate() {
        let mut line = format!("  {} {}", q(&c.name), mysql_type_name(&c.ty));
        if c.not_null || def.primary_key.contains(&i) {
            line.push_str(" NOT NULL");
        }
        if is_auto_increment(def, i) {
            line.push_str(" AUTO_INCREMENT");
        } else if let Some(d) = &c.default {
            line.push_str(&format!(" DEFAULT {}", default_shown(d, true)));
        } else if !(c.not_null || def.primary_key.contains(&i)) {
            line.push_str(" DEFAULT NULL");
        }
        lines.push(line);
    }
    let cols = |cs: &[usize]| {
        cs.iter()
            .map(|&i| q(&def.columns[i].name))
            .collect::<Vec<_>>()
            .join(",")
    };
    if !def.primary_key.is_empty() {
        lines.push(format!("  PRIMARY KEY ({})", cols(&def.primary_key)));
    }
    for ix in &def.indexes {
        let kind = if ix.unique { "UNIQUE KEY" } else { "KEY" };
        lines.push(format!("  {kind} {} ({})", q(&ix.name), cols(&ix.columns)));
    }
    for ch in &def.checks {
        lines.push(format!("  CONSTRAINT {} CHECK ({})", q(&ch.name), ch.expr));
    }
    format!(
        "CREATE TABLE {} (\n{}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
        q(&def.name),
        lines.join(",\n")
    )
}

async fn show_index(s: &mut Session, table: &str) -> Result<QueryOutput> {
    let name = ast::ObjectName(vec![ast::ObjectNamePart::Identifier(
        ast::Ident::with_quote('"', table.to_lowercase()),
    )]);
    let def = table_def(s, &name).await?;
    let mut out = Vec::new();
    let mut add = |key: &str, unique: bool, cols: &[usize]| {
        for (seq, &c) in cols.iter().enumerate() {
            let nullable = !(def.columns[c].not_null || def.primary_key.contains(&c));
            out.push(vec![
                some(&def.name),
                some(if unique { "0" } else { "1" }),
                some(key),
                some((seq + 1).to_string()),
                some(&def.columns[c].name),
                some("A"),
                None,
                None,
                None,
                some(if nullable { "YES" } else { "" }),
                some("BTREE"),
                some(""),
                some(""),
                some("YES"),
                None,
            ]);
        }
    };
    if !def.primary_key.is_empty() {
        add("PRIMARY", true, &def.primary_key);
    }
    for ix in &def.indexes {
        add(&ix.name, ix.unique, &ix.columns);
    }
    rows(
        &[
            Col::Text("Table"),
            Col::Int("Non_unique"),
            Col::Text("Key_name"),
            Col::Int("Seq_in_index"),
            Col::Text("Column_name"),
            Col::Text("Collation"),
            Col::Int("Cardinality"),
            Col::Int("Sub_part"),
            Col::Text("Packed"),
            Col::Text("Null"),
            Col::Text("Index_type"),
            Col::Text("Comment"),
            Col::Text("Index_comment"),
            Col::Text("Visible"),
            Col::Text("Expression"),
        ],
        out,
    )
}

async fn table_names(s: &mut Session) -> Result<Vec<String>> {
    let (env, _) = s.statement_env(None).await?;
    Ok(env.catalog.tables.keys().cloned().collect())
}

fn check_db(s: &Session, db: Option<&str>) -> Result<String> {
    match db {
        Some(d) if !d.eq_ignore_ascii_case(&s.database) => Err(user_error(
            SqlState::INVALID_CATALOG_NAME,
            format!("database \"{d}\" does not exist"),
        )),
        Some(_) => Ok(s.database.clone()),
        None => s
            .mysql
            .as_deref()
            .and_then(|m| m.database.clone())
            .ok_or_else(|| user_error(SqlState("3D000"), "No database selected")),
    }
}

/// SHOW forms the parser keeps only as bare words (WARNINGS, INDEX, TABLE STATUS, ENGINES,
/// CREATE DATABASE, GRANTS); `None` for everything else.
pub(crate) async fn from_words(s: &mut Session, words: &[String]) -> Option<Result<QueryOutput>> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    if w.first() != Some(&"show") {
        return None;
    }
    let state: &MySqlState = s.mysql.as_deref()?;
    Some(match &w[1..] {
        ["warnings", ..] | ["errors", ..] => {
            let errors_only = w[1] == "errors";
            let list = state
                .warnings
                .iter()
                .filter(|(level, _, _)| !errors_only || level == "Error")
                .map(|(l, c, m)| vec![some(l), some(c.to_string()), some(m)])
                .collect();
            rows(
                &[Col::Text("Level"), Col::Int("Code"), Col::Text("Message")],
                list,
            )
        }
        ["count", "*", kind @ ("warnings" | "errors")] => {
            let n = if *kind == "errors" {
                0
            } else {
                state.warnings.len()
            };
            rows_named(
                vec![(
                    format!("@@session.{}_count", kind.trim_end_matches('s')),
                    true,
                )],
                vec![vec![some(n.to_string())]],
            )
        }
        [
            "index" | "indexes" | "keys",
            "from" | "in",
            first,
            rest @ ..,
        ] => {
            // `FROM t [FROM db]`, or `FROM db.t` (the words drop the dot).
            let (db, table) = match rest {
                ["from" | "in", db, ..] => (Some(*db), first),
                [table, ..] => (Some(*first), table),
                [] => (None, first),
            };
            match check_db(s, db) {
                Ok(_) => show_index(s, table).await,
                Err(e) => Err(e),
            }
        }
        ["engines"] | ["storage", "engines"] => rows(
            &[
                Col::Text("Engine"),
                Col::Text("Support"),
                Col::Text("Comment"),
                Col::Text("Transactions"),
                Col::Text("XA"),
                Col::Text("Savepoints"),
            ],
            vec![vec![
                some("InnoDB"),
                some("DEFAULT"),
                some("ThunderDB transactional storage (replicated WAL and pages)"),
                some("YES"),
                some("NO"),
                some("NO"),
            ]],
        ),
        ["table", "status", rest @ ..] => {
            let (db, pattern) = match rest {
                ["from" | "in", db, "like", p] => (Some(*db), Some(*p)),
                ["from" | "in", db] => (Some(*db), None),
                ["like", p] => (None, Some(*p)),
                _ => (None, None),
            };
            if let Err(e) = check_db(s, db) {
                return Some(Err(e));
            }
            let names = match table_names(s).await {
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            };
            let list = names
                .into_iter()
                .filter(|n| pattern.is_none_or(|p| like(p, n)))
                .map(|n| {
                    let mut r = vec![some(n), some("InnoDB"), some("10"), some("Dynamic")];
                    r.extend([None, None, None, None, None, None, None, None, None, None]);
                    r.extend([some("utf8mb4_general_ci"), None, some(""), some("")]);
                    r
                })
                .collect();
            rows(
                &[
                    Col::Text("Name"),
                    Col::Text("Engine"),
                    Col::Int("Version"),
                    Col::Text("Row_format"),
                    Col::Int("Rows"),
                    Col::Int("Avg_row_length"),
                    Col::Int("Data_length"),
                    Col::Int("Max_data_length"),
                    Col::Int("Index_length"),
                    Col::Int("Data_free"),
                    Col::Int("Auto_increment"),
                    Col::Text("Create_time"),
                    Col::Text("Update_time"),
                    Col::Text("Check_time"),
                    Col::Text("Collation"),
                    Col::Int("Checksum"),
                    Col::Text("Create_options"),
                    Col::Text("Comment"),
                ],
                list,
            )
        }
        ["create", "database" | "schema", .., db] => match check_db(s, Some(db)) {
            Ok(name) => rows(
                &[Col::Text("Database"), Col::Text("Create Database")],
                vec![vec![
                    some(&name),
                    some(format!(
                        "CREATE DATABASE `{name}` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */"
                    )),
                ]],
            ),
            Err(e) => Err(e),
        },
        ["grants", ..] => {
            let user = state.user.clone();
            rows_named(
                vec![(format!("Grants for {user}@%"), false)],
                vec![vec![some(format!(
                    "GRANT ALL PRIVILEGES ON *.* TO `{user}`@`%` WITH GRANT OPTION"
                ))]],
            )
        }
        ["plugins"] => rows(
            &[
                Col::Text("Name"),
                Col::Text("Status"),
                Col::Text("Type"),
                Col::Text("Library"),
                Col::Text("License"),
            ],
            vec![vec![
                some("mysql_native_password"),
                some("ACTIVE"),
                some("AUTHENTICATION"),
                None,
                some("GPL"),
            ]],
        ),
        ["index" | "indexes" | "keys", ..] => Err(user_error(
            SqlState::SYNTAX_ERROR,
            "syntax error: SHOW INDEX FROM table",
        )),
        _ => return None,
    })
}

/// The SHOW forms the parser understands, and DESCRIBE; hands back any other statement.
pub(crate) async fn statement(
    s: &mut Session,
    stmt: Statement,
) -> std::result::Result<Result<QueryOutput>, Statement> {
    Ok(match stmt {
        Statement::ShowDatabases { show_options, .. }
        | Statement::ShowSchemas { show_options, .. } => {
            let out = rows(
                &[Col::Text("Database")],
                vec![
                    vec![some("information_schema")],
                    vec![some(s.database.clone())],
                ],
            );
            filtered(s, out, show_filter(&show_options)).await
        }
        Statement::ShowTables {
            full, show_options, ..
        } => {
            let db = show_options
                .show_in
                .as_ref()
                .and_then(|i| i.parent_name.as_ref())
                .map(crate::sql::object_name);
            let result = async {
                let db = check_db(s, db.as_deref())?;
                let names = table_names(s).await?;
                let mut header = format!("Tables_in_{db}");
                if let Some(ast::ShowStatementFilter::Like(p)) = show_filter(&show_options) {
                    header.push_str(&format!(" ({p})"));
                }
                let mut columns = vec![(header, false)];
                if full {
                    columns.push(("Table_type".to_string(), false));
                }
                let list = names
                    .into_iter()
                    .map(|n| {
                        let mut r = vec![some(n)];
                        if full {
                            r.push(some("BASE TABLE"));
                        }
                        r
                    })
                    .collect();
                let out = rows_named(columns, list)?;
                filtered(s, Ok(out), show_filter(&show_options)).await
            };
            result.await
        }
        Statement::ShowColumns {
            full, show_options, ..
        } => {
            let result = async {
                let name = show_options
                    .show_in
                    .as_ref()
                    .and_then(|i| i.parent_name.clone())
                    .ok_or_else(|| {
                        user_error(
                            SqlState::SYNTAX_ERROR,
                            "syntax error: SHOW COLUMNS FROM table",
                        )
                    })?;
                if name.0.len() == 2 {
                    check_db(s, Some(&name.0[0].to_string()))?;
                }
                let out = describe(s, &name, full).await?;
                filtered(s, Ok(out), show_filter(&show_options)).await
            };
            result.await
        }
        Statement::ExplainTable { table_name, .. } => describe(s, &table_name, false).await,
        Statement::ShowCreate {
            obj_type: ast::ShowCreateObject::Table,
            obj_name,
        } => match table_def(s, &obj_name).await {
            Ok(def) => rows(
                &[Col::Text("Table"), Col::Text("Create Table")],
                vec![vec![some(&def.name), some(create_table_text(&def))]],
            ),
            Err(e) => Err(e),
        },
        Statement::ShowVariables { filter, .. } => {
            let state = s.mysql.as_deref().expect("a MySQL session");
            let mut list: Vec<Vec<Option<String>>> = state
                .vars
                .shown()
                .map(|(k, v)| vec![some(k), some(v)])
                .collect();
            list.push(vec![
                some("last_insert_id"),
                some(state.last_insert_id.to_string()),
            ]);
            list.sort();
            filtered(
                s,
                rows(&[Col::Text("Variable_name"), Col::Text("Value")], list),
                filter.as_ref(),
            )
            .await
        }
        Statement::ShowStatus { filter, .. } => {
            // "TLSv1_3 TLS13_AES_256_GCM_SHA384" → ("TLSv1.3", "TLS13_AES_256_GCM_SHA384").
            let tls = s
                .mysql
                .as_deref()
                .map(|m| m.ssl_cipher.clone())
                .unwrap_or_default();
            let cipher = match tls.split_once(' ') {
                Some((version, suite)) => (version.replace('_', "."), suite.to_string()),
                None => (String::new(), String::new()),
            };
            let list = vec![
                vec![some("Com_commit"), some("0")],
                vec![some("Ssl_cipher"), some(cipher.1)],
                vec![some("Ssl_version"), some(cipher.0)],
                vec![some("Threads_connected"), some("1")],
                vec![
                    some("Uptime"),
                    some(crate::mysql::uptime_secs().to_string()),
                ],
            ];
            filtered(
                s,
                rows(&[Col::Text("Variable_name"), Col::Text("Value")], list),
                filter.as_ref(),
            )
            .await
        }
        Statement::ShowCollation { filter } => {
            let list = vec![
                vec![
                    some("binary"),
                    some("binary"),
                    some("63"),
                    some("Yes"),
                    some("Yes"),
                    some("1"),
                    some("NO PAD"),
                ],
                vec![
                    some("utf8mb4_bin"),
                    some("utf8mb4"),
                    some("46"),
                    some(""),
                    some("Yes"),
                    some("1"),
                    some("PAD SPACE"),
                ],
                vec![
                    some("utf8mb4_general_ci"),
                    some("utf8mb4"),
                    some("45"),
                    some("Yes"),
                    some("Yes"),
                    some("1"),
                    some("PAD SPACE"),
                ],
            ];
            let out = rows(
                &[
                    Col::Text("Collation"),
                    Col::Text("Charset"),
                    Col::Int("Id"),
                    Col::Text("Default"),
                    Col::Text("Compiled"),
                    Col::Int("Sortlen"),
                    Col::Text("Pad_attribute"),
                ],
                list,
            );
            filtered(s, out, filter.as_ref()).await
        }
        Statement::ShowCharset(cs) => {
            let list = vec![
                vec![
                    some("binary"),
                    some("Binary pseudo charset"),
                    some("binary"),
                    some("1"),
                ],
                vec![
                    some("utf8mb4"),
                    some("UTF-8 Unicode"),
                    some("utf8mb4_general_ci"),
                    some("4"),
                ],
            ];
            let out = rows(
                &[
                    Col::Text("Charset"),
                    Col::Text("Description"),
                    Col::Text("Default collation"),
                    Col::Int("Maxlen"),
                ],
                list,
            );
            filtered(s, out, cs.filter.as_ref()).await
        }
        Statement::ShowProcessList { .. } => {
            let state = s.mysql.as_deref().expect("a MySQL session");
            rows(
                &[
                    Col::Int("Id"),
                    Col::Text("User"),
                    Col::Text("Host"),
                    Col::Text("db"),
                    Col::Text("Command"),
                    Col::Int("Time"),
                    Col::Text("State"),
                    Col::Text("Info"),
                ],
                vec![vec![
                    some(state.connection_id.to_string()),
                    some(&state.user),
                    some("localhost"),
                    state.database.clone(),
                    some("Query"),
                    some("0"),
                    some("executing"),
                    some("SHOW PROCESSLIST"),
                ]],
            )
        }
        other => return Err(other),
    })
}

fn show_filter(o: &ast::ShowStatementOptions) -> Option<&ast::ShowStatementFilter> {
    match &o.filter_position {
        Some(
            ast::ShowStatementFilterPosition::Suffix(f)
            | ast::ShowStatementFilterPosition::Infix(f),
        ) => Some(f),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_mysql_patterns() {
        assert!(like("max%", "max_allowed_packet"));
        assert!(like("MAX\\_ALLOWED%", "max_allowed_packet"));
        assert!(!like("max\\_x%", "max_allowed_packet"));
        assert!(like("t_", "t1"));
        assert!(!like("t_", "t12"));
        assert!(like("%a%b", "xxaxxb"));
        assert!(!like("%a%b", "xxaxx"));
        // Long patterns neither overflow the stack nor take exponential time.
        let pattern = "%".repeat(100_000) + "z";
        assert!(!like(&pattern, &"a".repeat(200)));
    }

    #[test]
    fn defaults_show_as_mysql_prints_them() {
        assert_eq!(default_shown("0", false), "0");
        assert_eq!(default_shown("0", true), "'0'");
        assert_eq!(default_shown("'it''s'", false), "it's");
        assert_eq!(default_shown("now()", true), "CURRENT_TIMESTAMP");
    }
}
