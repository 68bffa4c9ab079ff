//! MySQL mode of a compute session: the MySQL dialect (see [`rewrite`]), the statements only
//! MySQL has (USE, SHOW …, DESCRIBE, SET of system and user variables, see [`show`]), its
//! session state (selected database, autocommit, LAST_INSERT_ID, warnings), and its
//! transaction rules: a failed statement inside a transaction undoes only itself, and
//! `START TRANSACTION` or DDL in an open transaction commits it first.
//!
//! Tables are the same catalog PostgreSQL sessions use: MySQL's database is the engine's
//! database (its `public` schema), names are case-insensitive.

mod rewrite;
mod show;
mod vars;

use crate::error::{DfResultExt, Result, user_error};
use crate::session::{CommandTag, PreparedStatement, QueryOutput, Session};
use datafusion::arrow::datatypes::Field;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, Statement};
use std::collections::HashMap;
use thunderdb_common::SqlState;
pub use vars::SystemVariables;

/// The MySQL side of a session.
#[derive(Clone, Debug)]
pub struct MySqlState {
    pub connection_id: u32,
    user: String,
    version: String,
    database: Option<String>,
    last_insert_id: u64,
    /// The first AUTO_INCREMENT value the current statement generated (0: none), which its OK
    /// packet carries.
    statement_insert_id: u64,
    warnings: Vec<(String, u16, String)>,
    vars: SystemVariables,
    user_vars: HashMap<String, ScalarValue>,
    /// The TLS cipher suite of the connection (empty: not encrypted).
    ssl_cipher: String,
}

/// What the protocol layer reports in OK packets and status flags.
#[derive(Clone, Debug)]
pub struct MySqlStatus {
    pub in_transaction: bool,
    pub autocommit: bool,
    /// The AUTO_INCREMENT value the last statement generated (0: none).
    pub last_insert_id: u64,
    pub warnings: u16,
    pub database: Option<String>,
    pub connection_id: u32,
}

impl MySqlState {
    /// A system variable's value as the session sees it.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.vars.get(name)
    }

    pub fn new(connection_id: u32, user: &str, version: &str) -> Self {
        MySqlState {
            connection_id,
            user: user.to_string(),
            version: version.to_string(),
            database: None,
            last_insert_id: 0,
            statement_insert_id: 0,
            warnings: Vec::new(),
            vars: SystemVariables::new(version, 3306),
            user_vars: HashMap::new(),
            ssl_cipher: String::new(),
        }
    }

    fn autocommit(&self) -> bool {
        self.vars.get("autocommit") != Some("0")
    }

    /// `@@name` (without the `@@` and scope).
    fn system_variable(&self, name: &str) -> Option<ScalarValue> {
        match name {
            "last_insert_id" | "identity" => {
                return Some(ScalarValue::Int64(Some(self.last_insert_id as i64)));
            }
            "warning_count" => return Some(ScalarValue::Int64(Some(self.warnings.len() as i64))),
            "error_count" => return Some(ScalarValue::Int64(Some(0))),
            // No Unix socket: connectors that read it (mysql_async) stay on TCP.
            "socket" => return Some(ScalarValue::Utf8(None)),
            _ => {}
        }
        let value = self.vars.get(name)?;
        Some(match value.parse::<i64>() {
            Ok(n) if vars::is_integer(value) => ScalarValue::Int64(Some(n)),
            _ => ScalarValue::Utf8(Some(value.to_string())),
        })
    }

    /// `@name`: NULL until set.
    fn user_variable(&self, name: &str) -> ScalarValue {
        self.user_vars
            .get(&name.to_lowercase())
            .cloned()
            .unwrap_or(ScalarValue::Null)
    }

    /// The value of a session-information function called without arguments.
    fn function_value(&self, name: &str) -> Option<ScalarValue> {
        let text = |s: String| Some(ScalarValue::Utf8(Some(s)));
        match name {
            "database" | "schema" => Some(ScalarValue::Utf8(self.database.clone())),
            "last_insert_id" => Some(ScalarValue::Int64(Some(self.last_insert_id as i64))),
            "connection_id" => Some(ScalarValue::Int64(Some(self.connection_id.into()))),
            "version" => text(self.version.clone()),
            "user" | "session_user" | "system_user" => text(format!("{}@localhost", self.user)),
            "current_user" => text(format!("{}@%", self.user)),
            "found_rows" => Some(ScalarValue::Int64(Some(0))),
            "row_count" => Some(ScalarValue::Int64(Some(-1))),
            _ => None,
        }
    }

    /// Records a warning for SHOW WARNINGS.
    pub fn warn(&mut self, code: u16, message: impl Into<String>) {
        self.warnings.push(("Warning".into(), code, message.into()));
    }
}

impl crate::engine::Engine {
    /// A session for a MySQL client connection `connection_id` (no database selected).
    pub fn new_mysql_session(
        self: &std::sync::Arc<Self>,
        user: &str,
        connection_id: u32,
    ) -> Session {
        let mut s = Session::new(self.clone(), user, self.database());
        s.mysql = Some(Box::new(MySqlState::new(
            connection_id,
            user,
            crate::MYSQL_SERVER_VERSION,
        )));
        s
    }
}

/// How a MySQL-only statement was handled.
pub(crate) enum Handled {
    Done(Result<QueryOutput>),
    /// Not MySQL-only: run it on the shared path.
    Shared(Box<Statement>),
}

fn ok() -> Result<QueryOutput> {
    Ok(QueryOutput::Command(CommandTag::new("OK")))
}

impl Session {
    pub(crate) fn is_mysql(&self) -> bool {
        self.mysql.is_some()
    }

    fn my(&mut self) -> &mut MySqlState {
        self.mysql.as_mut().expect("a MySQL session")
    }

    /// Records the first AUTO_INCREMENT value an INSERT generated (`LAST_INSERT_ID()`).
    pub(crate) fn note_insert_id(&mut self, id: i64) {
        if let Some(m) = self.mysql.as_mut() {
            m.last_insert_id = id.max(0) as u64;
            m.statement_insert_id = m.last_insert_id;
        }
    }

    /// The state the protocol reports (`None` fields for a PostgreSQL session).
    pub fn mysql_status(&self) -> MySqlStatus {
        let m = self.mysql.as_deref();
        MySqlStatus {
            in_transaction: self.in_block(),
            autocommit: m.is_none_or(MySqlState::autocommit),
            last_insert_id: m.map_or(0, |m| m.statement_insert_id),
            warnings: m.map_or(0, |m| m.warnings.len().min(u16::MAX as usize) as u16),
            database: m.and_then(|m| m.database.clone()),
            connection_id: m.map_or(0, |m| m.connection_id),
        }
    }

    /// Records the connection's TLS cipher suite (SHOW STATUS `Ssl_cipher`).
    pub fn set_mysql_ssl_cipher(&mut self, cipher: Option<String>) {
        if let Some(m) = self.mysql.as_mut() {
            m.ssl_cipher = cipher.unwrap_or_default();
        }
    }

    /// `USE db` / COM_INIT_DB.
    pub fn use_database(&mut self, db: &str) -> Result<()> {
        if !db.eq_ignore_ascii_case(&self.database) {
            return Err(user_error(
                SqlState::INVALID_CATALOG_NAME,
                format!("database \"{db}\" does not exist"),
            ));
        }
        let name = self.database.clone();
        if let Some(m) = self.mysql.as_mut() {
            m.database = Some(name);
        }
        Ok(())
    }

    /// How many statements a request holds (clients without CLIENT_MULTI_STATEMENTS may send
    /// only one).
    pub fn statement_count(&self, sql: &str) -> Result<usize> {
        Ok(rewrite::split(sql)?.len())
    }

    /// COM_QUERY in MySQL mode: each statement is read, rewritten and run in turn (so `SET
    /// @x = 1; SELECT @x` sees the new value), stopping at the first error.
    pub(crate) async fn execute_mysql_batch(&mut self, sql: &str) -> Vec<Result<QueryOutput>> {
        let statements = match rewrite::split(sql) {
            Ok(s) => s,
            Err(e) => return vec![Err(e)],
        };
        if statements.is_empty() {
            return vec![Ok(QueryOutput::Empty)];
        }
        let mut out = Vec::with_capacity(statements.len());
        for tokens in statements {
            let result = self.run_mysql_tokens(sql, &tokens).await;
            let stop = result.is_err();
            out.push(result);
            if stop {
                break;
            }
        }
        out
    }

    async fn run_mysql_tokens(
        &mut self,
        sql: &str,
        tokens: &[datafusion::sql::sqlparser::tokenizer::TokenWithSpan],
    ) -> Result<QueryOutput> {
        let words = rewrite::words(tokens);
        let is_show_warnings = words.first().is_some_and(|w| w == "show")
            && words.iter().any(|w| w == "warnings" || w == "errors");
        if !is_show_warnings {
            self.my().warnings.clear();
        }
        self.my().statement_insert_id = 0;
        if let Some(out) = show::from_words(self, &words).await {
            return out;
        }
        let mut pass = rewrite::TokenPass::default();
        let state = self.mysql.as_deref().expect("a MySQL session");
        let tokens = rewrite::transform_tokens(tokens, state, &mut pass)?;
        if pass.placeholders > 0 {
            return Err(user_error(
                SqlState::SYNTAX_ERROR,
                "syntax error: '?' placeholders need a prepared statement",
            ));
        }
        let mut stmt = rewrite::parse(tokens)?;
        rewrite::rewrite(&mut stmt, &self.database, sql)?;
        self.run_mysql_statement(stmt, &[]).await
    }

    /// Runs a rewritten statement: MySQL's own statements here, the rest on the shared path.
    pub(crate) async fn run_mysql_statement(
        &mut self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        match Box::pin(self.mysql_statement(stmt)).await {
            Handled::Done(result) => result,
            Handled::Shared(stmt) => self.run_statement(*stmt, params).await,
        }
    }

    /// COM_STMT_PREPARE: one statement with `?` placeholders.
    pub async fn prepare_mysql(&mut self, sql: &str) -> Result<PreparedStatement> {
        let (stmt, pass) = self.read_one_mysql(sql)?;
        let mut prepared = self.prepare_statement(sql, stmt, pass.placeholders).await?;
        // Variables and DATABASE() … are read when the statement runs, not when prepared.
        prepared.reread = pass.substituted;
        Ok(prepared)
    }

    /// Reads, rewrites and parses a request of exactly one statement.
    fn read_one_mysql(&self, sql: &str) -> Result<(Statement, rewrite::TokenPass)> {
        let mut statements = rewrite::split(sql)?;
        if statements.len() != 1 {
            return Err(user_error(
                SqlState::SYNTAX_ERROR,
                "syntax error: a prepared statement holds exactly one statement",
            ));
        }
        let tokens = statements.pop().expect("one statement");
        let mut pass = rewrite::TokenPass::default();
        let state = self.mysql.as_deref().expect("a MySQL session");
        let tokens = rewrite::transform_tokens(&tokens, state, &mut pass)?;
        let mut stmt = rewrite::parse(tokens)?;
        rewrite::rewrite(&mut stmt, &self.database, sql)?;
        Ok((stmt, pass))
    }

    /// COM_STMT_EXECUTE: the statement (read again if it holds session values) with `params`.
    pub(crate) async fn execute_mysql_prepared(
        &mut self,
        prepared: &PreparedStatement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        self.my().warnings.clear();
        self.my().statement_insert_id = 0;
        let stmt = match (&prepared.statement, prepared.reread) {
            (_, true) => self.read_one_mysql(&prepared.sql)?.0,
            (Some(stmt), false) => stmt.clone(),
            (None, false) => return Ok(QueryOutput::Empty),
        };
        self.run_mysql_statement(stmt, params).await
    }

    /// COM_FIELD_LIST: a table's columns with their defaults.
    pub async fn field_list(&mut self, table: &str) -> Result<Vec<(Field, Option<String>)>> {
        let (env, _) = self.statement_env(None).await?;
        let def = env.catalog.table(&table.to_lowercase())?.clone();
        let schema = def.arrow_schema(false);
        Ok(def
            .columns
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| (f.as_ref().clone(), c.default.clone()))
            .collect())
    }

    /// Handles the statements only MySQL has; everything else goes back to the shared path.
    pub(crate) async fn mysql_statement(&mut self, stmt: Statement) -> Handled {
        use Handled::{Done, Shared};
        match stmt {
            Statement::Use(ast::Use::Object(name)) | Statement::Use(ast::Use::Database(name)) => {
                let db = crate::sql::object_name(&name);
                Done(self.use_database(&db).and_then(|()| ok()))
            }
            Statement::Set(set) => Done(self.mysql_set(set).await),
            Statement::StartTransaction { .. } if self.in_block() => {
                // MySQL commits the open transaction when a new one starts.
                if let Err(e) = self.commit_open_block().await {
                    return Done(Err(e));
                }
                Shared(Box::new(stmt))
            }
            Statement::CreateDatabase {
                db_name,
                if_not_exists,
                ..
            } => {
                let name = crate::sql::object_name(&db_name);
                Done(if name.eq_ignore_ascii_case(&self.database) {
                    if if_not_exists {
                        self.my().warn(
                            1007,
                            format!("Can't create database '{name}'; database exists"),
                        );
                        ok()
                    } else {
                        Err(user_error(
                            SqlState::DUPLICATE_OBJECT,
                            format!("Can't create database '{name}'; database exists"),
                        ))
                    }
                } else {
                    Err(user_error(
                        SqlState::FEATURE_NOT_SUPPORTED,
                        "CREATE DATABASE (one database per ThunderDB cluster for now)",
                    ))
                })
            }
            Statement::Drop {
                object_type: ast::ObjectType::Database | ast::ObjectType::Schema,
                ..
            } => Done(Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                "DROP DATABASE",
            ))),
            Statement::Flush { .. } | Statement::UnlockTables | Statement::LockTables { .. } => {
                Done(ok())
            }
            Statement::CreateTable(ct) => Done(self.mysql_create_table(ct).await),
            Statement::Drop { .. }
            | Statement::CreateIndex(_)
            | Statement::Truncate(_)
            | Statement::AlterTable(_)
                if self.in_block() =>
            {
                // DDL commits the open transaction first (an implicit commit).
                if let Err(e) = self.commit_open_block().await {
                    return Done(Err(e));
                }
                Shared(Box::new(stmt))
            }
            Statement::Kill { .. } => {
                Done(Err(user_error(SqlState::FEATURE_NOT_SUPPORTED, "KILL")))
            }
            other => match show::statement(self, other).await {
                Ok(result) => Done(result),
                Err(stmt) => Shared(Box::new(stmt)),
            },
        }
    }

    /// CREATE TABLE with MySQL's table options (ENGINE, CHARSET … are accepted and ignored),
    /// column options (COMMENT, CHARACTER SET, COLLATE, ON UPDATE), and inline KEY / INDEX.
    async fn mysql_create_table(&mut self, mut ct: ast::CreateTable) -> Result<QueryOutput> {
        if self.in_block() {
            self.commit_open_block().await?;
        }
        ct.table_options = ast::CreateTableOptions::None;
        for col in &mut ct.columns {
            // MySQL's FLOAT is single precision (PostgreSQL's is double).
            if let ast::DataType::Float(ast::ExactNumberInfo::None) = col.data_type {
                col.data_type = ast::DataType::Real;
            }
            col.options.retain(|o| {
                !matches!(
                    o.option,
                    ast::ColumnOption::Comment(_)
                        | ast::ColumnOption::CharacterSet(_)
                        | ast::ColumnOption::Collation(_)
                        | ast::ColumnOption::OnUpdate(_)
                )
            });
        }
        let table = ct.name.clone();
        let mut indexes = Vec::new();
        let mut constraints = Vec::new();
        for c in std::mem::take(&mut ct.constraints) {
            match c {
                ast::TableConstraint::Index(ix) => indexes.push(ix),
                ast::TableConstraint::Unique(mut u) => {
                    if u.name.is_none() {
                        u.name = u.index_name.take();
                    }
                    constraints.push(ast::TableConstraint::Unique(u));
                }
                ast::TableConstraint::FulltextOrSpatial(_) => {
                    return Err(user_error(
                        SqlState::FEATURE_NOT_SUPPORTED,
                        "FULLTEXT and SPATIAL indexes",
                    ));
                }
                other => constraints.push(other),
            }
        }
        ct.constraints = constraints;
        let existed = ct.if_not_exists && {
            let (env, _) = self.statement_env(None).await?;
            env.catalog.table(&crate::sql::object_name(&table)).is_ok()
        };
        if existed || indexes.is_empty() {
            return self.run_statement(Statement::CreateTable(ct), &[]).await;
        }
        // The table and its indexes in one transaction: all or nothing.
        self.begin_block()?;
        match self.create_with_indexes(ct, &table, indexes).await {
            Ok(out) => {
                self.commit_open_block().await?;
                Ok(out)
            }
            Err(e) => {
                self.rollback_block();
                Err(e)
            }
        }
    }

    async fn create_with_indexes(
        &mut self,
        ct: ast::CreateTable,
        table: &ast::ObjectName,
        indexes: Vec<ast::IndexConstraint>,
    ) -> Result<QueryOutput> {
        let out = self.run_statement(Statement::CreateTable(ct), &[]).await?;
        for (n, ix) in indexes.into_iter().enumerate() {
            // `KEY (name(191))` has a prefix length; the whole value is indexed.
            let columns: Vec<String> = ix
                .columns
                .iter()
                .map(|c| match &c.column.expr {
                    ast::Expr::Function(f) => f.name.to_string(),
                    other => other.to_string(),
                })
                .collect();
            let name = match &ix.name {
                Some(n) => crate::session::quote_ident(&n.value.to_lowercase()),
                None => crate::session::quote_ident(
                    &format!(
                        "{}_{}",
                        crate::sql::object_name(table),
                        if n == 0 {
                            columns.join("_")
                        } else {
                            format!("{}_{n}", columns.join("_"))
                        }
                    )
                    .replace('"', ""),
                ),
            };
            let sql = format!("CREATE INDEX {name} ON {table} ({})", columns.join(", "));
            let stmt = crate::session::parse_sql(&sql)?.pop().ok_or_else(|| {
                thunderdb_common::ThunderError::internal("generated CREATE INDEX")
            })?;
            self.run_statement(stmt, &[]).await?;
        }
        Ok(out)
    }

    /// SET of system variables (`autocommit`, `sql_mode`, `@@session.x` …), user variables
    /// (`@x := expr`), NAMES, and TRANSACTION ISOLATION LEVEL.
    async fn mysql_set(&mut self, set: ast::Set) -> Result<QueryOutput> {
        match set {
            ast::Set::SetNames { charset_name, .. } => {
                let cs = charset_name.value.to_lowercase();
                for v in [
                    "character_set_client",
                    "character_set_connection",
                    "character_set_results",
                ] {
                    let _ = self.my().vars.set(v, &cs);
                }
                ok()
            }
            ast::Set::SetNamesDefault {} => ok(),
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let value = values
                    .into_iter()
                    .next()
                    .unwrap_or(ast::Expr::Value(ast::Value::Null.with_empty_span()));
                self.assign(&variable, value).await?;
                ok()
            }
            ast::Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.assign(&a.name, a.value).await?;
                }
                ok()
            }
            ast::Set::SetTransaction { modes, .. } => {
                for m in modes {
                    if let ast::TransactionMode::IsolationLevel(level) = m {
                        let name = match level {
                            ast::TransactionIsolationLevel::ReadUncommitted => "READ-UNCOMMITTED",
                            ast::TransactionIsolationLevel::ReadCommitted => "READ-COMMITTED",
                            ast::TransactionIsolationLevel::Serializable => "SERIALIZABLE",
                            _ => "REPEATABLE-READ",
                        };
                        self.set_system("transaction_isolation", name).await?;
                    }
                }
                ok()
            }
            other => Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("{other}"),
            )),
        }
    }

    async fn assign(&mut self, variable: &ast::ObjectName, value: ast::Expr) -> Result<()> {
        let parts: Vec<String> = variable
            .0
            .iter()
            .map(|p| p.to_string().to_lowercase())
            .collect();
        let first = parts.first().cloned().unwrap_or_default();
        if let Some(user) = first
            .strip_prefix('@')
            .filter(|n| !n.starts_with('@') && parts.len() == 1)
        {
            let v = self.evaluate(&value).await?;
            self.my().user_vars.insert(user.to_string(), v);
            return Ok(());
        }
        let name = match (first.strip_prefix("@@"), parts.len()) {
            (Some("session" | "global" | "local"), 2) => parts[1].clone(),
            (Some(n), 1) => n.to_string(),
            (None, 1) => first,
            _ => return Err(rewrite::unknown_variable(&variable.to_string())),
        };
        let text = match &value {
            ast::Expr::Identifier(i) => i.value.clone(),
            ast::Expr::Value(v) if matches!(v.value, ast::Value::Null) => String::new(),
            _ => {
                let v = self.evaluate(&value).await?;
                if v.is_null() {
                    String::new()
                } else {
                    scalar_text(&v)
                }
            }
        };
        self.set_system(&name, &text).await
    }

    async fn set_system(&mut self, name: &str, value: &str) -> Result<()> {
        let was_autocommit = self.my().autocommit();
        let value = if value.eq_ignore_ascii_case("default") {
            vars::SystemVariables::new(crate::MYSQL_SERVER_VERSION, 3306)
                .get(name)
                .unwrap_or_default()
                .to_string()
        } else {
            value.to_string()
        };
        let stored = match self.my().vars.set(name, &value) {
            Ok(v) => v,
            Err(vars::SetError::Unknown) => return Err(rewrite::unknown_variable(name)),
            Err(vars::SetError::BadValue(v)) => {
                return Err(user_error(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("Variable '{name}' can't be set to the value of '{v}'"),
                ));
            }
        };
        match name.to_lowercase().as_str() {
            // Turning autocommit on commits the open transaction.
            "autocommit" if stored == "1" && !was_autocommit && self.in_block() => {
                self.commit_open_block().await?;
            }
            "transaction_isolation" | "tx_isolation" => {
                self.set_parameter("default_transaction_isolation", &stored.replace('-', " "))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The value of a constant expression (`SET @x = 1 + 2`).
    async fn evaluate(&mut self, e: &ast::Expr) -> Result<ScalarValue> {
        // Through the MySQL reading, so that its variables are read now (`SET @b = @a + 1`).
        let (stmt, _) = self.read_one_mysql(&format!("SELECT {e}"))?;
        let plan = self.plan(stmt, &[]).await?;
        let (_, batches) = self.collect(plan).await?;
        let batch = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .ok_or_else(|| thunderdb_common::ThunderError::internal("SET value produced no row"))?;
        ScalarValue::try_from_array(batch.column(0), 0).map_df()
    }

    /// Autocommit off: the statement opens a transaction if none is open.
    pub(crate) fn mysql_implicit_begin(&mut self, stmt: &Statement) -> Result<()> {
        let Some(m) = self.mysql.as_deref() else {
            return Ok(());
        };
        let transactional = matches!(
            stmt,
            Statement::Query(_)
                | Statement::Insert(_)
                | Statement::Update(_)
                | Statement::Delete(_)
                | Statement::Savepoint { .. }
        );
        if !m.autocommit() && !self.in_block() && transactional {
            self.begin_block()?;
        }
        Ok(())
    }
}

/// Seconds since the process started serving (SHOW STATUS `Uptime`).
pub(crate) fn uptime_secs() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs()
}

/// A variable value as SET stores it.
fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Boolean(Some(b)) => u8::from(*b).to_string(),
        other => other.to_string(),
    }
}
