//! A client session: its DataFusion context, settings and transaction state, and the dispatch
//! of each statement to the query, DML, DDL or transaction-control path.

use crate::catalog::{self, Catalog};
use crate::engine::Engine;
use crate::error::{DfResultExt, Result, user_error};
use crate::provider::{DatabaseCatalog, PublicSchema, SCRATCH_SCHEMA, StatementEnv};
use crate::txn::{Isolation, ReadView, TxnWrites, UndoMark};
use crate::{ddl, dml, params, pg_catalog};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::memory::MemorySchemaProvider;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, Statement};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use thunderdb_common::wal::KeyWrite;
use thunderdb_common::{Lsn, SqlState, ThunderError, TxnId};
use thunderdb_walservice::{CommitOutcome, CommitRequest, WalError};
use tokio::sync::Notify;

/// What a statement returns.
#[derive(Debug)]
pub enum QueryOutput {
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        /// The CommandComplete verb: `SELECT`, `SHOW`, or for RETURNING `INSERT 0`, `UPDATE`,
        /// `DELETE` (the row count follows it).
        command: &'static str,
    },
    Command(CommandTag),
    Empty,
    /// `COPY … TO STDOUT`: the rows, for the frontend to write in the COPY format.
    CopyOut {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        format: crate::utility::CopyFormat,
    },
    /// `COPY … FROM STDIN`: the frontend reads the data and hands the rows to
    /// [`Session::copy_in`].
    CopyIn(Arc<crate::copy::CopyInTarget>),
}

/// The command tag of a statement that returns no rows (`INSERT` with 3 rows → `INSERT 0 3`).
#[derive(Clone, Debug, PartialEq)]
pub struct CommandTag {
    pub command: String,
    pub rows: Option<u64>,
}

impl CommandTag {
    pub fn new(command: &str) -> CommandTag {
        CommandTag {
            command: command.into(),
            rows: None,
        }
    }

    pub fn with_rows(command: &str, rows: u64) -> CommandTag {
        CommandTag {
            command: command.into(),
            rows: Some(rows),
        }
    }
}

/// Transaction status as ReadyForQuery reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    Idle,
    InBlock,
    Failed,
}

/// Cancels the statement a session is running (CancelRequest).
#[derive(Clone, Default)]
pub struct CancelHandle(Arc<Notify>);

impl CancelHandle {
    pub fn cancel(&self) {
        // Wakes only a running statement: a cancel that arrives between statements is a no-op.
        self.0.notify_waiters();
    }
}

/// A parsed, described statement for the extended protocol.
#[derive(Clone, Debug)]
pub struct PreparedStatement {
    pub sql: String,
    /// One type per `$n`, inferred where the client did not declare it.
    pub param_types: Vec<DataType>,
    /// Columns returned, or `None` for statements that return no rows.
    pub result_schema: Option<SchemaRef>,
    pub(crate) statement: Option<Statement>,
    /// Read the SQL again at each execution (it holds session values, MySQL).
    pub(crate) reread: bool,
}

/// An open transaction.
pub(crate) struct Txn {
    pub isolation: Isolation,
    pub snapshot: Option<Lsn>,
    pub writes: Arc<Mutex<TxnWrites>>,
    /// The oldest snapshot any write of this transaction was based on.
    pub write_snapshot: Option<Lsn>,
    /// The oldest snapshot a write of the running statement was based on.
    statement_write_snapshot: Option<Lsn>,
    /// Row locks taken by READ COMMITTED writes (see `row_locks`).
    locks: Option<crate::row_locks::HeldLocks>,
    /// Open savepoints, oldest first (a name may repeat; the newest wins).
    /// Each with how many row locks the transaction held when it was set.
    savepoints: Vec<(String, UndoMark, usize)>,
}

impl Txn {
    /// How many row locks the transaction holds.
    fn locks_held(&self) -> usize {
        self.locks.as_ref().map_or(0, |l| l.held())
    }

    /// Releases the row locks taken after the first `kept`.
    fn release_locks_after(&mut self, kept: usize) {
        if let Some(locks) = self.locks.as_mut() {
            locks.release_after(kept);
        }
    }

    fn new(isolation: Isolation) -> Txn {
        let writes = TxnWrites {
            track_reads: isolation == Isolation::Serializable,
            ..Default::default()
        };
        Txn {
            isolation,
            snapshot: None,
            writes: Arc::new(Mutex::new(writes)),
            write_snapshot: None,
            statement_write_snapshot: None,
            locks: None,
            savepoints: Vec::new(),
        }
    }
}

/// One client session.
pub struct Session {
    pub(crate) engine: Arc<Engine>,
    /// The session context's state, taken once: cloning it (every function registry) per statement
    /// was the largest cost of a short query. Nothing registers into the context afterwards.
    state: Arc<datafusion::execution::SessionState>,
    task: Arc<datafusion::execution::TaskContext>,
    public: Arc<PublicSchema>,
    pub(crate) scratch: Arc<MemorySchemaProvider>,
    txn: Option<Txn>,
    in_block: bool,
    failed: bool,
    vars: BTreeMap<String, String>,
    default_isolation: Isolation,
    /// Isolation requested by `SET TRANSACTION` for the current block.
    cancel: CancelHandle,
    pub(crate) database: String,
    /// The role the session runs as.
    pub(crate) user: String,
    /// The schema of this session's temporary tables (`pg_temp_…`), made with the first.
    temp_schema: String,
    /// Whether the session has made temporary tables (then names resolve through them).
    has_temp: bool,
    /// Temporary tables with ON COMMIT DELETE ROWS, by key, emptied at every commit.
    temp_on_commit: Vec<(String, ast::OnCommit)>,
    /// ON COMMIT actions of temporary tables made in the current transaction; they take
    /// effect at its commit and are forgotten if it ends otherwise.
    temp_pending: Vec<(String, ast::OnCommit)>,
    /// Statements prepared with SQL `PREPARE`, by name.
    sql_prepared: std::collections::HashMap<String, PreparedStatement>,
    /// The MySQL side of a session opened by the MySQL frontend.
    pub(crate) mysql: Option<Box<crate::mysql::MySqlState>>,
}

/// Settings every session starts with, by lower-case name.
fn default_vars() -> BTreeMap<String, String> {
    [
        ("application_name", ""),
        ("client_encoding", "UTF8"),
        ("client_min_messages", "notice"),
        ("datestyle", "ISO, MDY"),
        ("default_transaction_isolation", "repeatable read"),
        ("extra_float_digits", "1"),
        ("integer_datetimes", "on"),
        ("intervalstyle", "postgres"),
        ("is_superuser", "on"),
        ("lc_messages", "C"),
        ("max_identifier_length", "63"),
        ("password_encryption", "scram-sha-256"),
        ("search_path", "\"$user\", public"),
        ("server_encoding", "UTF8"),
        ("server_version", crate::pg_catalog::SERVER_VERSION),
        ("server_version_num", crate::pg_catalog::SERVER_VERSION_NUM),
        ("standard_conforming_strings", "on"),
        ("lock_timeout", "0"),
        ("statement_timeout", "0"),
        ("timezone", "UTC"),
        ("transaction_isolation", "repeatable read"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// 40001: another transaction committed a change to what this one wrote.
fn concurrent_update() -> ThunderError {
    user_error(
        SqlState::SERIALIZATION_FAILURE,
        "could not serialize access due to concurrent update",
    )
    .with_detail("another transaction committed a conflicting change first; retry the transaction")
}

/// Settings a client cannot change (PostgreSQL's `internal` context), which RESET ALL keeps.
fn is_read_only(name: &str) -> bool {
    matches!(
        name,
        "integer_datetimes"
            | "is_superuser"
            | "max_identifier_length"
            | "server_encoding"
            | "server_version"
            | "server_version_num"
    )
}

/// Display names of settings whose PostgreSQL spelling is not lower case.
fn display_name(name: &str) -> &str {
    match name {
        "datestyle" => "DateStyle",
        "timezone" => "TimeZone",
        "intervalstyle" => "IntervalStyle",
        other => other,
    }
}

pub(crate) use crate::utility::parse_sql;

impl Session {
    pub(crate) fn new(engine: Arc<Engine>, user: &str, database: &str) -> Session {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(database, "public")
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false)
            .with_target_partitions(2);
        config.options_mut().sql_parser.map_string_types_to_utf8view = false;
        config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        config
            .options_mut()
            .execution
            .parquet
            .schema_force_view_types = false;
        // PostgreSQL reads `1.5` as numeric, not float.
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        config.options_mut().execution.time_zone = Some(crate::types::UTC.into());
        let ctx = SessionContext::new_with_config(config);
        // PostgreSQL's arithmetic checks run after DataFusion's type coercion.
        let mut rules: Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> =
            datafusion::optimizer::Analyzer::new().rules;
        rules.push(Arc::new(crate::pg_arith::PgArithmetic::default()));
        // DataFusion 55's physical filter pushdown moves a filter on the outer side of a
        // swapped outer join into the other input with the wrong column binding (found by
        // the differential test: `a RIGHT JOIN b … WHERE COALESCE(a.k, 0) > 12` filtered
        // on `b.k`). Filters are pushed into scans by the logical optimizer already.
        let physical_rules: Vec<_> = ctx
            .state()
            .physical_optimizers()
            .iter()
            .filter(|r| r.name() != "FilterPushdown")
            .cloned()
            .collect();
        // Array literals are read before DataFusion's own array operators see them.
        let planners = std::iter::once(crate::arrays::literal_planner())
            .chain(ctx.state().expr_planners().iter().cloned())
            .collect();
        let state = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
            .with_expr_planners(planners)
            .with_analyzer_rules(rules)
            .with_physical_optimizer_rules(physical_rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::columnar::register_store(&ctx, engine.segment_store.clone());
        let public = Arc::new(PublicSchema::default());
        let scratch = Arc::new(MemorySchemaProvider::new());
        let pg = pg_catalog::schema(engine.clone(), public.clone(), user);
        let catalog = DatabaseCatalog {
            public: public.clone(),
            information_schema: pg_catalog::information_schema(&pg),
            pg_catalog: pg,
            redis: Arc::new(crate::redis::sql::RedisSchema::new(public.clone())),
            scratch: scratch.clone(),
        };
        ctx.register_catalog(database, Arc::new(catalog));
        pg_catalog::register_functions(&ctx, user, database);
        crate::scalar_fns::register(&ctx);
        crate::arrays::register(&ctx);
        crate::json::register(&ctx);
        crate::enums::register(&ctx);
        crate::temporal::register_functions(&ctx);
        crate::sequence_sql::register(
            &ctx,
            engine.clone(),
            public.clone(),
            Arc::new(Mutex::new(Default::default())),
            user,
        );
        {
            let planner = Arc::new(crate::temporal::TemporalPlanner::new(&ctx));
            let state = ctx.state_ref();
            // Cannot fail: registering a planner only appends it.
            let _ = datafusion::execution::FunctionRegistry::register_expr_planner(
                &mut *state.write(),
                planner,
            );
        }
        let temp_schema = format!("pg_temp_{:08x}", rand::random::<u32>());
        public.set_search_path(
            std::iter::once(temp_schema.clone())
                .chain(crate::schemas::search_path("\"$user\", public", user))
                .collect(),
        );
        let state = Arc::new(ctx.state());
        let task = state.task_ctx();
        Session {
            engine,
            state,
            task,
            public,
            scratch,
            txn: None,
            in_block: false,
            failed: false,
            vars: default_vars(),
            default_isolation: Isolation::RepeatableRead,
            cancel: CancelHandle::default(),
            database: database.to_string(),
            user: user.to_string(),
            temp_schema,
            has_temp: false,
            temp_on_commit: Vec::new(),
            temp_pending: Vec::new(),
            sql_prepared: Default::default(),
            mysql: None,
        }
    }

    pub fn txn_status(&self) -> TxnStatus {
        match (self.in_block, self.failed) {
            (false, _) => TxnStatus::Idle,
            (true, false) => TxnStatus::InBlock,
            (true, true) => TxnStatus::Failed,
        }
    }

    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// A session setting by name (case-insensitive), e.g. `TimeZone`.
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.vars.get(&name.to_lowercase()).cloned()
    }

    /// Simple query protocol: runs the statements in order, stopping after the first error.
    pub async fn execute_batch(&mut self, sql: &str) -> Vec<Result<QueryOutput>> {
        if self.mysql.is_some() {
            return self.execute_mysql_batch(sql).await;
        }
        let statements = match parse_sql(sql) {
            Ok(s) => s,
            Err(e) => {
                if self.in_block {
                    self.failed = true;
                }
                return vec![Err(e)];
            }
        };
        if statements.is_empty() {
            return vec![Ok(QueryOutput::Empty)];
        }
        let copy_in = |s: &Statement| matches!(s, Statement::Copy { to: false, .. });
        if statements[..statements.len() - 1].iter().any(copy_in) {
            // Its data arrives after the query string: nothing may follow it there.
            self.fail_transaction();
            return vec![Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                "COPY FROM STDIN must be the last statement of a query string",
            ))];
        }
        let mut out = Vec::with_capacity(statements.len());
        for stmt in statements {
            let r = self.run_cancellable(stmt, &[]).await;
            let stop = r.is_err();
            out.push(r);
            if stop {
                break;
            }
        }
        out
    }

    /// Parse + Describe for the extended protocol.
    pub async fn prepare(
        &mut self,
        sql: &str,
        declared: &[Option<DataType>],
    ) -> Result<PreparedStatement> {
        if self.failed && !ends_failed_block(sql) {
            return Err(failed_block_error());
        }
        let result = self.prepare_inner(sql, declared).await;
        if result.is_err() {
            self.fail_transaction();
        }
        result
    }

    /// Marks an open transaction block failed (an error the frontend raised, e.g. a Bind whose
    /// parameter does not parse): PostgreSQL then ignores commands until ROLLBACK.
    pub fn fail_transaction(&mut self) {
        if self.in_block {
            self.failed = true;
        }
    }

    /// Applies a setting sent in the startup packet (application_name, TimeZone, DateStyle …).
    pub fn set_parameter(&mut self, name: &str, value: &str) -> Result<()> {
        self.set_var(name, value.to_string()).map(|_| ())
    }

    async fn prepare_inner(
        &mut self,
        sql: &str,
        declared: &[Option<DataType>],
    ) -> Result<PreparedStatement> {
        let mut statements = parse_sql(sql)?;
        if statements.len() > 1 {
            return Err(user_error(
                SqlState::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let Some(mut statement) = statements.pop() else {
            return Ok(PreparedStatement {
                sql: sql.into(),
                param_types: vec![],
                result_schema: None,
                statement: None,
                reread: false,
            });
        };
        // Names resolve through search_path at Parse too (drivers prepare every statement).
        if self.mysql.is_none() && !self.failed {
            self.qualify_names(&mut statement).await?;
        }
        let count = params::placeholder_count(&statement).max(declared.len());
        self.describe_statement(sql, statement, count, declared)
            .await
    }

    /// A statement parsed by a frontend's own dialect, with `count` placeholders.
    pub(crate) async fn prepare_statement(
        &mut self,
        sql: &str,
        statement: Statement,
        count: usize,
    ) -> Result<PreparedStatement> {
        let count = params::placeholder_count(&statement).max(count);
        self.describe_statement(sql, statement, count, &[]).await
    }

    async fn describe_statement(
        &mut self,
        sql: &str,
        statement: Statement,
        count: usize,
        declared: &[Option<DataType>],
    ) -> Result<PreparedStatement> {
        let (env, _) = self.statement_env(None).await?;
        self.public.set_env(Some(env.clone()));
        let described = params::describe(self, &statement, &env.catalog, count).await;
        self.public.set_env(None);
        let (mut inferred, mut result_schema) = described?;
        if matches!(statement, Statement::Explain { .. }) && self.mysql.is_none() {
            result_schema = Some(crate::explain::query_plan_schema());
        }
        for (i, d) in declared.iter().enumerate() {
            if let Some(d) = d {
                inferred[i] = Some(d.clone());
            }
        }
        let param_types = inferred
            .into_iter()
            .map(|t| t.unwrap_or(DataType::Utf8))
            .collect();
        Ok(PreparedStatement {
            sql: sql.into(),
            param_types,
            result_schema,
            statement: Some(statement),
            reread: false,
        })
    }

    /// Bind + Execute for the extended protocol.
    pub async fn execute_prepared(
        &mut self,
        stmt: &PreparedStatement,
        params: Vec<ScalarValue>,
    ) -> Result<QueryOutput> {
        let Some(statement) = stmt.statement.clone() else {
            return Ok(QueryOutput::Empty);
        };
        if params.len() != stmt.param_types.len() {
            return Err(user_error(
                SqlState::PROTOCOL_VIOLATION,
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    params.len(),
                    stmt.param_types.len()
                ),
            ));
        }
        if self.mysql.is_some() {
            return self.execute_mysql_prepared(stmt, &params).await;
        }
        self.run_cancellable(statement, &params).await
    }

    async fn run_cancellable(
        &mut self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        if !self.in_block || self.mysql.is_some() {
            // PostgreSQL's now() is the start of the transaction (here: of the statement's
            // own); MySQL's NOW() the start of each statement.
            self.mark_transaction_start();
        }
        let cancel = self.cancel.0.clone();
        let cancelled = cancel.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        let result = {
            let run = self.run(stmt, params);
            tokio::pin!(run);
            tokio::select! {
                r = &mut run => Some(r),
                _ = &mut cancelled => None,
            }
        };
        match result {
            Some(r) => r,
            None => {
                // The statement's future was dropped mid-way: its partial writes must not survive.
                self.abort_after_error();
                Err(user_error(
                    SqlState::QUERY_CANCELED,
                    "canceling statement due to user request",
                ))
            }
        }
    }

    fn abort_after_error(&mut self) {
        self.public.set_env(None);
        if self.in_block {
            self.failed = true;
            // The failed part can no longer commit: its row locks go now, as PostgreSQL's do —
            // all of them, or those taken since the newest savepoint, which ROLLBACK TO may
            // return to.
            if let Some(txn) = self.txn.as_mut() {
                let kept = txn.savepoints.last().map_or(0, |s| s.2);
                txn.release_locks_after(kept);
            }
        } else {
            self.txn = None;
        }
    }

    /// Runs one parsed statement (a frontend's own dialect already rewritten).
    pub(crate) async fn run_statement(
        &mut self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        self.run_cancellable(stmt, params).await
    }

    pub(crate) fn in_block(&self) -> bool {
        self.in_block
    }

    /// Commits (or, if failed, ends) the open transaction block.
    pub(crate) async fn commit_open_block(&mut self) -> Result<()> {
        if self.in_block {
            self.commit_block().await?;
        }
        Ok(())
    }

    pub(crate) fn begin_block(&mut self) -> Result<()> {
        self.begin(&[]).map(|_| ())
    }

    /// Ends the open transaction block without committing.
    pub(crate) fn rollback_block(&mut self) {
        self.txn = None;
        self.in_block = false;
        self.failed = false;
    }

    async fn run(&mut self, mut stmt: Statement, params: &[ScalarValue]) -> Result<QueryOutput> {
        if self.mysql.is_some() {
            self.mysql_implicit_begin(&stmt)?;
        }
        match &stmt {
            Statement::StartTransaction { modes, .. } => return self.begin(modes),
            Statement::Commit { .. } => return self.commit_block().await,
            Statement::Savepoint { name } => {
                let result = self.savepoint(name);
                return self.fail_block_on(result);
            }
            Statement::ReleaseSavepoint { name } => {
                let result = self.release_savepoint(name);
                return self.fail_block_on(result);
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                let result = self.rollback_to_savepoint(name);
                return self.fail_block_on(result);
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.txn = None;
                self.in_block = false;
                self.failed = false;
                return Ok(QueryOutput::Command(CommandTag::new("ROLLBACK")));
            }
            _ => {}
        }
        if self.failed {
            return Err(failed_block_error());
        }
        crate::sql::rewrite_literals(&mut stmt)?;
        if let Some(out) = self.settings(&stmt)? {
            return Ok(out);
        }
        if self.mysql.is_none() {
            self.qualify_names(&mut stmt).await?;
        }
        if matches!(stmt, Statement::Copy { .. }) {
            crate::privileges::check(self, &stmt).await?;
        }
        match stmt {
            Statement::Prepare {
                name,
                data_types,
                statement,
            } => return self.sql_prepare(name, data_types, *statement).await,
            Statement::Execute {
                name: Some(name),
                parameters,
                ..
            } => return Box::pin(self.sql_execute(name, parameters)).await,
            Statement::Deallocate { name, .. } => return self.sql_deallocate(name),
            Statement::Copy {
                source,
                to,
                target,
                options,
                ..
            } => return crate::copy::copy(self, source, to, target, options).await,
            Statement::Vacuum(v) => return ddl::vacuum(self, v).await,
            Statement::Analyze(mut a) if a.compute_statistics => {
                // VACUUM (ANALYZE): VACUUM's checks, then an ANALYZE of its own.
                ddl::vacuum_checks(self, a.table_name.as_ref()).await?;
                a.compute_statistics = false;
                self.run_in_block(Statement::Analyze(a), params).await?;
                return Ok(QueryOutput::Command(CommandTag::new("VACUUM")));
            }
            ref s if crate::utility::is_checkpoint(s) => return ddl::checkpoint(self).await,
            _ => {}
        }
        self.run_in_block(stmt, params).await
    }

    /// Rewrites the relation names of `stmt` to catalog keys through `search_path` (see
    /// `schemas`); statements that name no user schema under the default path skip it.
    pub(crate) async fn qualify_names(&mut self, stmt: &mut Statement) -> Result<()> {
        let path = crate::schemas::search_path(
            self.vars
                .get("search_path")
                .map_or("public", String::as_str),
            &self.user,
        );
        let creates_temp = matches!(stmt, Statement::CreateTable(ct) if ct.temporary);
        if !self.has_temp
            && !creates_temp
            && !crate::schemas::needs_qualify(stmt, &path, &self.user)
        {
            return Ok(());
        }
        let (env, _) = self.statement_env(None).await?;
        let mut resolver = crate::schemas::Resolver::new(&env.catalog, &path, &self.temp_schema);
        crate::schemas::qualify(stmt, &mut resolver)
    }

    /// The catalog of the statement being run (empty between statements).
    pub(crate) fn current_catalog(&self) -> Arc<Catalog> {
        self.public
            .env()
            .map(|e| e.catalog.clone())
            .unwrap_or_default()
    }

    /// The schemas of `search_path` (the temporary schema first), existing or not.
    pub(crate) fn search_path(&self) -> Vec<String> {
        self.public.search_path()
    }

    /// Notes a temporary table made in the current transaction.
    pub(crate) fn note_temp_table(&mut self, key: &str, on_commit: Option<ast::OnCommit>) {
        self.has_temp = true;
        if let Some(action @ (ast::OnCommit::Drop | ast::OnCommit::DeleteRows)) = on_commit {
            self.temp_pending.push((key.to_string(), action));
        }
    }

    /// A new transaction: ON COMMIT actions of one that did not commit are void.
    /// Whether `key` names a temporary relation of another session.
    pub(crate) fn is_other_sessions_temp(&self, key: &str) -> bool {
        let (schema, _) = catalog::split_relation_key(key);
        schema.starts_with("pg_temp_") && schema != self.temp_schema
    }

    fn new_txn(&mut self, isolation: Isolation) -> Txn {
        self.temp_pending.clear();
        Txn::new(isolation)
    }

    /// ON COMMIT DROP and DELETE ROWS, as writes of the committing transaction.
    async fn temp_commit_actions(&mut self) -> Result<()> {
        let (env, _) = self.statement_env(None).await?;
        let mut kept = Vec::new();
        let pending = std::mem::take(&mut self.temp_pending);
        for (key, action) in std::mem::take(&mut self.temp_on_commit)
            .into_iter()
            .chain(pending)
        {
            let Some(def) = env.catalog.tables.get(&key) else {
                continue;
            };
            match action {
                ast::OnCommit::Drop => {
                    catalog::drop_table(&env.view, def);
                    for seq in env.catalog.owned_sequences(&key) {
                        catalog::delete_sequence(&env.view, &seq.name);
                    }
                }
                _ => {
                    let mut emptied = def.as_ref().clone();
                    catalog::delete_stats(&env.view, def.id);
                    emptied.id = catalog::allocate_table_id(&env.view).await?;
                    catalog::put_table(&env.view, &emptied)?;
                    kept.push((key, action));
                }
            }
        }
        self.temp_on_commit = kept;
        Ok(())
    }

    /// Drops every temporary schema in the catalog: at start-up of the single-process server
    /// none is live, so these are what sessions of an earlier run left behind.
    pub async fn drop_leftover_temp_schemas(&mut self) -> Result<usize> {
        let (env, _) = self.statement_env(None).await?;
        let names: Vec<String> = env
            .catalog
            .schemas
            .keys()
            .filter(|n| n.starts_with("pg_temp_"))
            .cloned()
            .collect();
        let mut dropped = 0;
        for name in &names {
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(name));
            match self.execute_batch(&sql).await.pop() {
                Some(Err(e)) => {
                    tracing::warn!(schema = %name, error = %e.message, "dropping a leftover temporary schema");
                }
                _ => dropped += 1,
            }
        }
        Ok(dropped)
    }

    /// Ends the session: its temporary tables go (PostgreSQL drops them at disconnect).
    pub async fn close(&mut self) {
        if !self.has_temp {
            return;
        }
        self.rollback_block();
        let drop = format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quote_ident(&self.temp_schema)
        );
        for result in self.execute_batch(&drop).await {
            if let Err(e) = result {
                tracing::warn!(schema = %self.temp_schema, error = %e.message, "dropping temporary tables");
            }
        }
    }

    /// Runs a statement inside the open block, or in its own implicit transaction.
    pub(crate) async fn run_in_block(
        &mut self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        if !self.in_block {
            return self.run_autocommit(stmt, params).await;
        }
        // MySQL undoes only the failed statement of a transaction: record what it changes.
        let undoable = self.mysql.is_some();
        if undoable && let Some(txn) = &self.txn {
            txn.writes.lock().begin_statement();
        }
        let result = self.run_in_txn_locking(stmt, params).await;
        self.public.set_env(None);
        if undoable && let Some(txn) = &self.txn {
            let mut writes = txn.writes.lock();
            match &result {
                Ok(_) => writes.end_statement(),
                Err(_) => writes.undo_statement(),
            }
        }
        match result {
            Ok(out) => Ok(out),
            // A MySQL deadlock / serialization failure rolls the whole transaction back.
            Err(e) if undoable && e.state == SqlState::SERIALIZATION_FAILURE => {
                self.txn = None;
                self.in_block = false;
                self.failed = false;
                Err(e)
            }
            Err(e) if undoable => Err(e),
            Err(e) => {
                self.abort_after_error();
                Err(e)
            }
        }
    }

    /// A statement outside a transaction block, in a transaction of its own. A write waits for
    /// a conflicting writer and then applies to the row as committed, as MySQL's row locks and
    /// PostgreSQL's READ COMMITTED make it: it runs as a READ COMMITTED locking statement
    /// (`run_read_committed`), which for a transaction of one statement is REPEATABLE READ
    /// begun a little later (SERIALIZABLE stays optimistic). Its commit can still lose to a
    /// writer that takes no lock here (a transaction block under snapshot isolation, another
    /// compute node): then it runs again on a newer snapshot. Nothing was returned yet, so
    /// either is invisible to the client, but for the time it took.
    async fn run_autocommit(
        &mut self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        const ATTEMPTS: u32 = 32;
        let locking = self.default_isolation != Isolation::Serializable
            && matches!(
                stmt,
                Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
            );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = if locking {
                self.txn = Some(self.new_txn(Isolation::ReadCommitted));
                self.run_read_committed(stmt.clone(), params).await
            } else {
                self.txn = Some(self.new_txn(self.default_isolation));
                self.run_in_txn(stmt.clone(), params).await
            };
            self.public.set_env(None);
            let out = match result {
                Ok(out) => out,
                Err(e) => {
                    self.abort_after_error();
                    return Err(e);
                }
            };
            match self.commit().await {
                Ok(()) => return Ok(out),
                Err(e) if e.state == SqlState::SERIALIZATION_FAILURE && attempt < ATTEMPTS => {
                    // Back off a little, more with each loss, so the winners get through.
                    let pause = rand::random::<u64>() % (200 * u64::from(attempt)) + 50;
                    tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                }
                Err(e) => {
                    // The transaction is over whatever failed: its row locks go now.
                    self.txn = None;
                    return Err(e);
                }
            }
        }
    }

    async fn sql_prepare(
        &mut self,
        name: ast::Ident,
        data_types: Vec<ast::DataType>,
        statement: Statement,
    ) -> Result<QueryOutput> {
        let name = crate::sql::ident_name(&name);
        if self.sql_prepared.contains_key(&name) {
            return Err(user_error(
                SqlState("42P05"),
                format!("prepared statement \"{name}\" already exists"),
            ));
        }
        let declared: Vec<Option<DataType>> = data_types
            .iter()
            .map(|t| crate::types::sql_type(t).map(|t| Some(crate::types::arrow_type(&t))))
            .collect::<Result<_>>()?;
        let prepared = self
            .prepare_inner(&statement.to_string(), &declared)
            .await?;
        self.sql_prepared.insert(name, prepared);
        Ok(QueryOutput::Command(CommandTag::new("PREPARE")))
    }

    async fn sql_execute(
        &mut self,
        name: ast::ObjectName,
        parameters: Vec<ast::Expr>,
    ) -> Result<QueryOutput> {
        let name = crate::sql::object_name(&name);
        let prepared = self.sql_prepared.get(&name).cloned().ok_or_else(|| {
            user_error(
                SqlState("26000"),
                format!("prepared statement \"{name}\" does not exist"),
            )
        })?;
        if parameters.len() != prepared.param_types.len() {
            return Err(user_error(
                SqlState::SYNTAX_ERROR,
                format!("wrong number of parameters for prepared statement \"{name}\"").to_string(),
            )
            .with_detail(format!(
                "Expected {} parameters but got {}.",
                prepared.param_types.len(),
                parameters.len()
            )));
        }
        // Each argument is a constant expression evaluated once, then cast to the declared type.
        let mut values = Vec::with_capacity(parameters.len());
        for (expr, ty) in parameters.iter().zip(&prepared.param_types) {
            let plan = self.plan_sql(&format!("SELECT {expr}"), &[]).await?;
            let (_, batches) = self.collect(plan).await?;
            let array = batches
                .first()
                .map(|b| b.column(0).clone())
                .ok_or_else(|| ThunderError::internal("EXECUTE argument produced no row"))?;
            let array = crate::convert::cast_array(&array, ty)?;
            values.push(ScalarValue::try_from_array(&array, 0).map_df()?);
        }
        let Some(statement) = prepared.statement.clone() else {
            return Ok(QueryOutput::Empty);
        };
        Box::pin(self.run_in_block(statement, &values)).await
    }

    fn sql_deallocate(&mut self, name: ast::Ident) -> Result<QueryOutput> {
        if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
            self.sql_prepared.clear();
        } else {
            let name = crate::sql::ident_name(&name);
            if self.sql_prepared.remove(&name).is_none() {
                return Err(user_error(
                    SqlState("26000"),
                    format!("prepared statement \"{name}\" does not exist"),
                ));
            }
        }
        Ok(QueryOutput::Command(CommandTag::new("DEALLOCATE")))
    }

    /// The environment a statement runs in: its snapshot and catalog. `key_table` makes that
    /// table's scans return storage keys (DML).
    pub(crate) async fn statement_env(
        &mut self,
        key_table: Option<thunderdb_common::TableId>,
    ) -> Result<(Arc<StatementEnv>, bool)> {
        let wal = self.engine.wal.clone();
        let (snapshot, writes) = match &mut self.txn {
            Some(txn) => {
                let snapshot = match (txn.isolation, txn.snapshot) {
                    (Isolation::ReadCommitted, _) | (_, None) => wal.last_committed_lsn().await?,
                    (_, Some(s)) => s,
                };
                txn.snapshot = Some(snapshot);
                (snapshot, txn.writes.clone())
            }
            None => (
                wal.last_committed_lsn().await?,
                Arc::new(Mutex::new(TxnWrites::default())),
            ),
        };
        let view = ReadView {
            pages: self.engine.pages.clone(),
            snapshot,
            txn: writes,
        };
        let catalog = Catalog::at(&view, &self.engine.catalogs).await?;
        Ok((
            Arc::new(StatementEnv {
                catalog,
                view,
                key_table,
            }),
            self.txn.is_some(),
        ))
    }

    /// Installs `env` as what table names resolve to for the statement being run.
    pub(crate) fn use_env(&self, env: &Arc<StatementEnv>) {
        self.public.set_env(Some(env.clone()));
    }

    /// Notes that the current statement wrote at `snapshot` (for write-write validation).
    pub(crate) fn note_write(&mut self, snapshot: Lsn) {
        if let Some(txn) = &mut self.txn {
            txn.write_snapshot = Some(txn.write_snapshot.map_or(snapshot, |s| s.min(snapshot)));
            txn.statement_write_snapshot = Some(
                txn.statement_write_snapshot
                    .map_or(snapshot, |s| s.min(snapshot)),
            );
        }
    }

    /// Whether no commit up to `now` changed what the transaction wrote (and the table
    /// definitions it wrote under) after `since`; the keys of `fresh` that the running statement
    /// wrote first were checked against its own snapshot already. `false` when that cannot be
    /// told cheaply: a DDL statement's range reads, or a write set larger than an OLTP
    /// transaction's (each statement would check it all again); such a transaction keeps its
    /// oldest write snapshot, as REPEATABLE READ does.
    async fn writes_unchanged(
        &self,
        writes: &Arc<Mutex<TxnWrites>>,
        fresh: &[(Vec<u8>, bool)],
        since: Lsn,
        now: Lsn,
    ) -> Result<bool> {
        const MAX_CHECKED: usize = 256;
        let keys: Vec<Vec<u8>> = {
            let w = writes.lock();
            if !w.schema_ranges.is_empty() || w.writes.len() > MAX_CHECKED {
                return Ok(false);
            }
            let first_here = |k: &Vec<u8>| {
                fresh
                    .binary_search_by(|(f, _)| f.cmp(k))
                    .is_ok_and(|i| !fresh[i].1)
            };
            w.writes
                .keys()
                .filter(|k| !first_here(k))
                .chain(w.schema_keys.iter())
                .cloned()
                .collect()
        };
        Ok(!self.written_after(&keys, since, now).await?)
    }

    /// Whether a commit in `(since, now]` wrote one of `keys`.
    async fn written_after(&self, keys: &[Vec<u8>], since: Lsn, now: Lsn) -> Result<bool> {
        for key in keys {
            if self.engine.pages.version_lsn(key, now).await? > since {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Runs a statement; a READ COMMITTED write (INSERT, UPDATE, DELETE, SELECT … FOR UPDATE)
    /// goes through [`Session::run_read_committed`].
    async fn run_in_txn_locking(
        &mut self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        let writes = match &stmt {
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => true,
            // NOWAIT and SKIP LOCKED never wait: they keep the optimistic claims.
            Statement::Query(q) => {
                !q.locks.is_empty() && self.in_block && q.locks.iter().all(|l| l.nonblock.is_none())
            }
            _ => false,
        };
        let read_committed = self
            .txn
            .as_ref()
            .is_some_and(|t| t.isolation == Isolation::ReadCommitted);
        if writes && read_committed && self.mysql.is_none() {
            self.run_read_committed(stmt, params).await
        } else {
            self.run_in_txn(stmt, params).await
        }
    }

    /// A READ COMMITTED write, as PostgreSQL runs it: the rows it writes are locked until the
    /// transaction ends, waiting for transactions that hold them; when a row it wrote was
    /// changed by a commit after the statement's snapshot (the holder it waited for, say), its
    /// writes are taken back and it runs again on a newer snapshot, so it applies to the row as
    /// committed instead of failing with 40001 at COMMIT.
    ///
    /// Before running again, the transaction's earlier writes are checked unchanged up to the
    /// new snapshot, which then becomes the transaction's write snapshot; the commit-time
    /// validation covers what comes after it. Statements writing more than `MAX_LOCKED` keys
    /// take no locks and stay optimistic.
    async fn run_read_committed(
        &mut self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        const MAX_LOCKED: usize = 10_000;
        const ATTEMPTS: usize = 100;
        let timeout = match &self.mysql {
            // MySQL's bound is innodb_lock_wait_timeout, in seconds (50 unless set).
            Some(m) => m
                .variable("innodb_lock_wait_timeout")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|secs| std::time::Duration::from_secs(secs.max(1))),
            None => self
                .vars
                .get("lock_timeout")
                .and_then(|v| crate::row_locks::parse_timeout(v))
                .flatten(),
        };
        // Locks taken from here on are the statement's (over all its attempts).
        let locks_before = self.txn.as_ref().map_or(0, Txn::locks_held);
        for _ in 0..ATTEMPTS {
            let (writes, earlier_snapshot) = {
                let txn = self.txn.as_mut().expect("a transaction is open");
                txn.statement_write_snapshot = None;
                (txn.writes.clone(), txn.write_snapshot)
            };
            let mark = writes.lock().mark();
            let out = match self.run_in_txn(stmt.clone(), params).await {
                Ok(out) => out,
                Err(e) => {
                    writes.lock().release(mark);
                    if let Some(txn) = self.txn.as_mut() {
                        txn.release_locks_after(locks_before);
                    }
                    return Err(e);
                }
            };
            let keys = writes.lock().keys_since(mark);
            let Some(txn) = self
                .txn
                .as_mut()
                .filter(|_| !keys.is_empty() && keys.len() <= MAX_LOCKED)
            else {
                writes.lock().release(mark);
                if let Some(txn) = self.txn.as_mut() {
                    txn.release_locks_after(locks_before);
                }
                return Ok(out);
            };
            let read_at = txn
                .statement_write_snapshot
                .or(txn.snapshot)
                .unwrap_or(Lsn::ZERO);
            let locks = txn
                .locks
                .get_or_insert_with(|| crate::row_locks::HeldLocks::new(&self.engine.row_locks));
            let locked: Vec<Vec<u8>> = keys.iter().map(|(k, _)| k.clone()).collect();
            // A discarded attempt's locks on rows this one does not write go before it waits
            // for any: it must not block their writers meanwhile.
            locks.release_unlisted_after(locks_before, &locked);
            if let Err(e) = locks.acquire(&locked, timeout).await {
                writes.lock().take_back(mark);
                locks.release_after(locks_before);
                return Err(e);
            }
            let now = self.engine.wal.last_committed_lsn().await?;
            let changed = self.written_after(&locked, read_at, now).await?;
            if !changed {
                writes.lock().release(mark);
                // Every write so far is unchanged up to `now`: later commits are what the
                // commit's validation needs to look at, so a row another transaction committed
                // before this statement read it is no conflict.
                let earlier = earlier_snapshot.unwrap_or(read_at);
                if self.writes_unchanged(&writes, &keys, earlier, now).await? {
                    let txn = self.txn.as_mut().expect("a transaction is open");
                    txn.write_snapshot = Some(now);
                }
                return Ok(out);
            }
            writes.lock().take_back(mark);
            if let Some(earlier) = earlier_snapshot
                && !self.writes_unchanged(&writes, &[], earlier, now).await?
            {
                return Err(concurrent_update());
            }
            let txn = self.txn.as_mut().expect("a transaction is open");
            txn.write_snapshot = earlier_snapshot.map(|_| now);
            // The next attempt runs holding this one's locks, as PostgreSQL re-checks a row it
            // has locked: no other locking writer can change those rows meanwhile, so waiters
            // queue instead of all running again after each commit and racing for the rows.
        }
        if let Some(txn) = self.txn.as_mut() {
            txn.release_locks_after(locks_before);
        }
        Err(concurrent_update())
    }

    async fn run_in_txn(
        &mut self,
        mut stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        crate::privileges::check(self, &stmt).await?;
        if matches!(
            stmt,
            Statement::Insert(_)
                | Statement::Update(_)
                | Statement::Delete(_)
                | Statement::CreateTable(_)
        ) {
            crate::sql::escape_string_literals(&mut stmt);
        }
        match stmt {
            Statement::Query(_) | Statement::Explain { .. } => {
                let (env, _) = self.statement_env(None).await?;
                self.use_env(&env);
                if let Some(out) = crate::fastpath::point_get(&stmt, params, &env).await {
                    return out;
                }
                match stmt {
                    Statement::Explain { .. } if self.mysql.is_none() => {
                        crate::explain::explain(self, stmt, params).await
                    }
                    // Outside a block the "lock" would end with the statement: nothing to claim.
                    Statement::Query(q) if !q.locks.is_empty() && self.in_block => {
                        crate::locking::locking_query(self, *q, params, &env).await
                    }
                    Statement::Query(mut q) if !q.locks.is_empty() => {
                        q.locks.clear();
                        self.query(Statement::Query(q), params).await
                    }
                    stmt => self.query(stmt, params).await,
                }
            }
            Statement::Insert(insert) => dml::insert(self, insert, params).await,
            Statement::Update(update) => {
                if let Some(out) = crate::fastpath::point_update(self, &update, params).await {
                    return out;
                }
                dml::update(self, update, params).await
            }
            Statement::Delete(delete) => dml::delete(self, delete, params).await,
            Statement::Analyze(a) => ddl::analyze(self, a).await,
            Statement::CreateTable(ct) => ddl::create_table(self, ct).await,
            Statement::CreateIndex(ci) => ddl::create_index(self, ci).await,
            Statement::Truncate(t) => ddl::truncate(self, t).await,
            Statement::AlterTable(alter) => crate::alter::alter_table(self, alter).await,
            Statement::CreateView(cv) => crate::views::create_view(self, cv).await,
            Statement::CreateSequence {
                temporary: false,
                if_not_exists,
                name,
                data_type,
                sequence_options,
                owned_by,
            } => {
                crate::sequence_sql::create_sequence(
                    self,
                    if_not_exists,
                    &name,
                    data_type.as_ref(),
                    &sequence_options,
                    owned_by.as_ref(),
                )
                .await
            }
            Statement::CreateRole(cr) => crate::roles::create_role(self, cr).await,
            stmt @ (Statement::Grant(_) | Statement::Revoke(_)) => {
                crate::privileges::grant_or_revoke(self, stmt).await
            }
            Statement::CreateType {
                name,
                representation,
            } => crate::enums::create_type(self, &name, representation).await,
            Statement::AlterType(alter) => crate::enums::alter_type(self, alter).await,
            Statement::Drop {
                object_type: ast::ObjectType::Type,
                if_exists,
                names,
                cascade,
                ..
            } => crate::enums::drop_types(self, &names, if_exists, cascade).await,
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => crate::schemas::create_schema(self, &schema_name, if_not_exists).await,
            Statement::Drop {
                object_type: ast::ObjectType::Schema,
                if_exists,
                names,
                cascade,
                ..
            } => crate::schemas::drop_schemas(self, &names, if_exists, cascade).await,
            Statement::AlterRole { name, operation } => {
                crate::roles::alter_role(self, &name, operation).await
            }
            Statement::Drop {
                object_type: ast::ObjectType::Role | ast::ObjectType::User,
                if_exists,
                names,
                ..
            } => crate::roles::drop_roles(self, if_exists, &names).await,
            Statement::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => ddl::drop(self, object_type, if_exists, names).await,
            other => Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "statement not supported: {}",
                    first_words(&other.to_string())
                ),
            )),
        }
    }

    /// Plans a statement with DataFusion and binds `params`.
    pub(crate) async fn plan(
        &self,
        mut stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<LogicalPlan> {
        if let Some(env) = self.public.env() {
            crate::views::expand(&mut stmt, &env.catalog)?;
        }
        crate::json::rewrite_casts(&mut stmt);
        crate::arrays::rewrite(&mut stmt);
        if let Some(env) = self.public.env() {
            crate::enums::rewrite_casts(&mut stmt, &env.catalog, &self.search_path());
        }
        // MySQL integer literals are BIGINT; PostgreSQL's are int4 where they fit.
        if self.mysql.is_none() {
            crate::sql::type_integer_literals(&mut stmt);
        }
        let plan = self
            .state
            .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
            .await
            .and_then(crate::arrays::type_any_parameters)
            .map_df()?;
        if params.is_empty() {
            Ok(plan)
        } else {
            plan.with_param_values(ParamValues::from(params.to_vec()))
                .map_df()
        }
    }

    /// Plans SQL text this crate generated (DML sub-queries).
    pub(crate) async fn plan_sql(&self, sql: &str, params: &[ScalarValue]) -> Result<LogicalPlan> {
        let mut statements = parse_sql(sql)?;
        let mut stmt = statements
            .pop()
            .ok_or_else(|| ThunderError::internal("empty generated query"))?;
        if let Some(env) = self.public.env() {
            crate::views::expand(&mut stmt, &env.catalog)?;
        }
        // Stored defaults may hold `'seq'::regclass` (SERIAL) and other catalog idioms.
        pg_catalog::rewrite(&mut stmt);
        self.plan(stmt, params).await
    }

    pub(crate) async fn collect(&self, plan: LogicalPlan) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        let physical = self.state.create_physical_plan(&plan).await.map_df()?;
        let batches = datafusion::physical_plan::collect(physical, self.task.clone())
            .await
            .map_df()?;
        Ok((schema, batches))
    }

    pub(crate) async fn query(
        &mut self,
        mut stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<QueryOutput> {
        // Views first: their bodies need the catalog rewrites and decorrelation too.
        if let Some(env) = self.public.env() {
            crate::views::expand(&mut stmt, &env.catalog)?;
        }
        match self.query_once(stmt.clone(), params).await {
            // DataFusion cannot run correlated subqueries whose correlation is not an
            // equality; rewrite those as joins and try again.
            Err(e)
                if e.message
                    .contains("does not support logical expression ScalarSubquery") =>
            {
                let mut rewritten = stmt;
                match crate::decorrelate::rewrite(&mut rewritten) {
                    Some(names) => self.query_once_named(rewritten, params, names).await,
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn query_once(&mut self, stmt: Statement, params: &[ScalarValue]) -> Result<QueryOutput> {
        self.query_once_named(stmt, params, Default::default())
            .await
    }

    /// Runs a query; `known` names output columns an earlier rewrite aliased.
    async fn query_once_named(
        &mut self,
        mut stmt: Statement,
        params: &[ScalarValue],
        known: std::collections::HashMap<String, String>,
    ) -> Result<QueryOutput> {
        pg_catalog::rewrite(&mut stmt);
        let mut names = crate::naming::alias_select_items(&mut stmt);
        names.extend(known);
        let plan = self.plan(stmt, params).await?;
        let (schema, batches) = self.collect(plan).await?;
        let (schema, batches) = crate::naming::rename(schema, batches, &names);
        Ok(QueryOutput::Rows {
            schema,
            batches,
            command: "SELECT",
        })
    }

    /// What now() and CURRENT_TIMESTAMP answer in the current transaction, as DataFusion's
    /// `now` gives it (`None` before a transaction has started).
    pub(crate) fn now_value(&self) -> Option<ScalarValue> {
        let start = self.state.execution_props().query_execution_start_time?;
        let zone = self.state.config_options().execution.time_zone.as_deref();
        Some(ScalarValue::TimestampNanosecond(
            Some(start.timestamp_nanos_opt()?),
            zone.map(Arc::from),
        ))
    }

    /// Fixes what now(), current_timestamp … return until the next transaction starts.
    fn mark_transaction_start(&mut self) {
        Arc::make_mut(&mut self.state).mark_start_execution();
    }

    fn begin(&mut self, modes: &[ast::TransactionMode]) -> Result<QueryOutput> {
        if self.in_block {
            // PostgreSQL warns and carries on.
            return Ok(QueryOutput::Command(CommandTag::new("BEGIN")));
        }
        self.mark_transaction_start();
        let mut isolation = self.default_isolation;
        for m in modes {
            if let ast::TransactionMode::IsolationLevel(level) = m {
                isolation = isolation_of(level);
            }
        }
        self.txn = Some(self.new_txn(isolation));
        self.in_block = true;
        self.failed = false;
        self.vars
            .insert("transaction_isolation".into(), isolation.name().into());
        Ok(QueryOutput::Command(CommandTag::new("BEGIN")))
    }

    /// `SAVEPOINT name`: a point of the open block that `ROLLBACK TO` can return to.
    fn savepoint(&mut self, name: &ast::Ident) -> Result<QueryOutput> {
        if self.mysql.is_some() && !self.in_block {
            // MySQL accepts it in autocommit mode; the statement's own transaction ends at once.
            return Ok(QueryOutput::Command(CommandTag::new("SAVEPOINT")));
        }
        let failed = self.failed;
        let txn = self.block_for_savepoint("SAVEPOINT", name)?;
        if failed {
            return Err(failed_block_error());
        }
        let mark = txn.writes.lock().mark();
        let locks = txn.locks_held();
        txn.savepoints
            .push((crate::sql::ident_name(name), mark, locks));
        Ok(QueryOutput::Command(CommandTag::new("SAVEPOINT")))
    }

    /// `RELEASE [SAVEPOINT] name`: forgets the savepoint and every later one, keeping the writes.
    fn release_savepoint(&mut self, name: &ast::Ident) -> Result<QueryOutput> {
        let failed = self.failed;
        let txn = self.block_for_savepoint("RELEASE SAVEPOINT", name)?;
        if failed {
            return Err(failed_block_error());
        }
        let at = find_savepoint(txn, name)?;
        let mut writes = txn.writes.lock();
        for (_, mark, _) in txn.savepoints.drain(at..).rev() {
            writes.release(mark);
        }
        Ok(QueryOutput::Command(CommandTag::new("RELEASE")))
    }

    /// `ROLLBACK TO [SAVEPOINT] name`: takes back every write since the savepoint, which stays
    /// open, and clears a failure of the block.
    fn rollback_to_savepoint(&mut self, name: &ast::Ident) -> Result<QueryOutput> {
        let txn = self.block_for_savepoint("ROLLBACK TO SAVEPOINT", name)?;
        let at = find_savepoint(txn, name)?;
        let mut writes = txn.writes.lock();
        for (_, mark, _) in txn.savepoints.drain(at + 1..).rev() {
            writes.release(mark);
        }
        writes.undo_to(txn.savepoints[at].1);
        drop(writes);
        // The row locks taken since the savepoint go with the writes they guarded.
        let kept = txn.savepoints[at].2;
        txn.release_locks_after(kept);
        self.failed = false;
        Ok(QueryOutput::Command(CommandTag::new("ROLLBACK")))
    }

    /// A PostgreSQL block fails with any error of its statements (MySQL's carries on).
    fn fail_block_on(&mut self, result: Result<QueryOutput>) -> Result<QueryOutput> {
        if result.is_err() && self.in_block && self.mysql.is_none() {
            self.failed = true;
        }
        result
    }

    /// The open block's transaction, or PostgreSQL's error for `what` outside a block.
    fn block_for_savepoint(&mut self, what: &str, name: &ast::Ident) -> Result<&mut Txn> {
        match self.txn.as_mut() {
            Some(txn) if self.in_block => Ok(txn),
            // MySQL: outside a transaction no savepoint exists.
            _ if self.mysql.is_some() => Err(no_savepoint(name)),
            _ => Err(user_error(
                SqlState::NO_ACTIVE_SQL_TRANSACTION,
                format!("{what} can only be used in transaction blocks"),
            )),
        }
    }

    async fn commit_block(&mut self) -> Result<QueryOutput> {
        if !self.in_block {
            return Ok(QueryOutput::Command(CommandTag::new("COMMIT")));
        }
        self.in_block = false;
        self.vars.insert(
            "transaction_isolation".into(),
            self.default_isolation.name().into(),
        );
        if self.failed {
            self.failed = false;
            self.txn = None;
            return Ok(QueryOutput::Command(CommandTag::new("ROLLBACK")));
        }
        if let Err(e) = self.commit().await {
            // Whatever failed, the transaction is over (and its row locks with it).
            self.txn = None;
            return Err(e);
        }
        Ok(QueryOutput::Command(CommandTag::new("COMMIT")))
    }

    /// Sends the transaction's writes to the WAL service; read-only transactions commit locally.
    async fn commit(&mut self) -> Result<()> {
        if (!self.temp_on_commit.is_empty() || !self.temp_pending.is_empty()) && self.txn.is_some()
        {
            self.temp_commit_actions().await?;
        }
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let state = std::mem::take(&mut *txn.writes.lock());
        if state.writes.is_empty() {
            return Ok(());
        }
        let serializable = txn.isolation == Isolation::Serializable;
        let snapshot_lsn = if serializable {
            txn.snapshot
        } else {
            txn.write_snapshot.or(txn.snapshot)
        }
        .unwrap_or(Lsn::ZERO);
        let request = CommitRequest {
            txn_id: TxnId::random(),
            snapshot_lsn,
            writes: state
                .writes
                .into_iter()
                .map(|(key, value)| KeyWrite {
                    key,
                    value: value.map(|v| v.to_vec()),
                })
                .collect(),
            read_keys: {
                let mut keys: Vec<Vec<u8>> = state.schema_keys.into_iter().collect();
                if serializable {
                    keys.extend(state.read_keys);
                }
                keys
            },
            read_ranges: {
                let mut ranges = state.schema_ranges;
                if serializable {
                    ranges.extend(state.read_ranges);
                }
                ranges
            },
        };
        match self
            .engine
            .wal
            .commit(request)
            .await
            .map_err(WalError::into_commit_error)?
        {
            CommitOutcome::Committed(_) => Ok(()),
            CommitOutcome::Conflict { key, committed_at } => Err({
                tracing::debug!(
                    key = %key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                    committed_at = committed_at.0,
                    snapshot = snapshot_lsn.0,
                    "commit conflict"
                );
                concurrent_update()
            }),
        }
    }

    /// SET / SHOW / RESET; `None` when `stmt` is not a settings statement.
    fn set_var(&mut self, name: &str, value: String) -> Result<Option<QueryOutput>> {
        let name = name.to_lowercase();
        match name.as_str() {
            "transaction_isolation" | "default_transaction_isolation" => {
                let iso = Isolation::parse(&value).ok_or_else(|| {
                    user_error(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("invalid value for parameter \"{name}\": \"{value}\""),
                    )
                })?;
                if name == "default_transaction_isolation" {
                    self.default_isolation = iso;
                } else if let Some(txn) = &mut self.txn {
                    txn.isolation = iso;
                    txn.writes.lock().track_reads = iso == Isolation::Serializable;
                }
                self.vars.insert(name, iso.name().into());
            }
            "lock_timeout" => {
                if crate::row_locks::parse_timeout(&value).is_none() {
                    return Err(user_error(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("invalid value for parameter \"{name}\": \"{value}\""),
                    ));
                }
                self.vars.insert(name, value);
            }
            "password_encryption" => {
                let Some(e) = thunderdb_common::password::Encryption::parse(&value) else {
                    return Err(user_error(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("invalid value for parameter \"{name}\": \"{value}\""),
                    ));
                };
                let canonical = match e {
                    thunderdb_common::password::Encryption::Md5 => "md5",
                    thunderdb_common::password::Encryption::ScramSha256 => "scram-sha-256",
                };
                self.vars.insert(name, canonical.into());
            }
            "search_path" => {
                let path = crate::schemas::search_path(&value, &self.user);
                self.public.set_search_path(
                    std::iter::once(self.temp_schema.clone())
                        .chain(path)
                        .collect(),
                );
                self.vars.insert(name, value);
            }
            "timezone" => {
                let tz = normalize_timezone(&value)?;
                self.vars.insert(name, tz);
            }
            _ => {
                self.vars.insert(name, value);
            }
        }
        Ok(Some(QueryOutput::Command(CommandTag::new("SET"))))
    }

    fn settings(&mut self, stmt: &Statement) -> Result<Option<QueryOutput>> {
        match stmt {
            Statement::Set(ast::Set::SingleAssignment {
                variable, values, ..
            }) => {
                let name = variable.to_string();
                let value = values
                    .iter()
                    .map(setting_value)
                    .collect::<Vec<_>>()
                    .join(", ");
                if value.eq_ignore_ascii_case("default") {
                    let d = default_vars()
                        .get(&name.to_lowercase())
                        .cloned()
                        .unwrap_or_default();
                    return self.set_var(&name, d);
                }
                self.set_var(&name, value)
            }
            Statement::Reset(r) => {
                let names: Vec<String> = match &r.reset {
                    ast::Reset::ALL => self.vars.keys().cloned().collect(),
                    ast::Reset::ConfigurationParameter(n) => vec![n.to_string().to_lowercase()],
                };
                let defaults = default_vars();
                for name in names {
                    let all = matches!(r.reset, ast::Reset::ALL);
                    match defaults.get(&name) {
                        // Read-only settings keep their value; RESET ALL leaves the running
                        // transaction's isolation alone (PostgreSQL's GUC_NO_RESET_ALL).
                        Some(_) if is_read_only(&name) => {}
                        Some(_) if all && name == "transaction_isolation" => {}
                        Some(d) => {
                            self.set_var(&name, d.clone())?;
                        }
                        None if self.vars.remove(&name).is_some() => {}
                        None => {
                            return Err(user_error(
                                SqlState::UNDEFINED_OBJECT,
                                format!("unrecognized configuration parameter \"{name}\""),
                            ));
                        }
                    }
                }
                Ok(Some(QueryOutput::Command(CommandTag::new("RESET"))))
            }
            Statement::Set(ast::Set::SetTimeZone { value, .. }) => {
                self.set_var("timezone", setting_value(value))
            }
            Statement::Set(ast::Set::SetNames { charset_name, .. }) => {
                self.set_var("client_encoding", charset_name.value.clone())
            }
            Statement::Set(ast::Set::SetTransaction { modes, session, .. }) => {
                for m in modes {
                    if let ast::TransactionMode::IsolationLevel(level) = m {
                        let name = if *session {
                            "default_transaction_isolation"
                        } else {
                            "transaction_isolation"
                        };
                        self.set_var(name, isolation_of(level).name().into())?;
                    }
                }
                Ok(Some(QueryOutput::Command(CommandTag::new("SET"))))
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.clone())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase();
                if name == "all" {
                    let names: Vec<&str> = self.vars.keys().map(|k| display_name(k)).collect();
                    let values: Vec<&str> = self.vars.values().map(|v| v.as_str()).collect();
                    let schema = Arc::new(Schema::new(vec![
                        Field::new("name", DataType::Utf8, false),
                        Field::new("setting", DataType::Utf8, false),
                    ]));
                    let batch = RecordBatch::try_new(
                        schema.clone(),
                        vec![
                            Arc::new(StringArray::from(names)),
                            Arc::new(StringArray::from(values)),
                        ],
                    )
                    .map_df()?;
                    return Ok(Some(QueryOutput::Rows {
                        schema,
                        batches: vec![batch],
                        command: "SHOW",
                    }));
                }
                let name = match name.as_str() {
                    "transaction isolation level" => "transaction_isolation".to_string(),
                    "time zone" => "timezone".to_string(),
                    _ => name,
                };
                let value = self.vars.get(&name).cloned().ok_or_else(|| {
                    user_error(
                        SqlState::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                })?;
                let schema = Arc::new(Schema::new(vec![Field::new(
                    display_name(&name),
                    DataType::Utf8,
                    false,
                )]));
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(StringArray::from(vec![value]))],
                )
                .map_df()?;
                Ok(Some(QueryOutput::Rows {
                    schema,
                    batches: vec![batch],
                    command: "SHOW",
                }))
            }
            _ => Ok(None),
        }
    }

    /// Registers a statement-scoped in-memory table in the scratch schema; returns its
    /// qualified name.
    pub(crate) fn scratch_table(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<String> {
        use datafusion::catalog::SchemaProvider;
        let table = datafusion::datasource::MemTable::try_new(schema, vec![batches]).map_df()?;
        self.scratch.deregister_table(name).map_df()?;
        self.scratch
            .register_table(name.to_string(), Arc::new(table))
            .map_df()?;
        Ok(format!(
            "{}.{SCRATCH_SCHEMA}.{name}",
            quote_ident(&self.database)
        ))
    }

    pub(crate) fn drop_scratch(&self, name: &str) {
        use datafusion::catalog::SchemaProvider;
        let _ = self.scratch.deregister_table(name);
    }
}

/// COMMIT, ROLLBACK and ROLLBACK TO: what a failed block still takes (PostgreSQL parses and
/// runs them there, also through the extended protocol).
fn ends_failed_block(sql: &str) -> bool {
    matches!(
        parse_sql(sql).as_deref(),
        Ok([Statement::Commit { .. } | Statement::Rollback { .. }])
    )
}

fn failed_block_error() -> thunderdb_common::ThunderError {
    user_error(
        SqlState::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// The position of the newest savepoint called `name`.
fn find_savepoint(txn: &Txn, name: &ast::Ident) -> Result<usize> {
    let name = crate::sql::ident_name(name);
    txn.savepoints
        .iter()
        .rposition(|(n, _, _)| *n == name)
        .ok_or_else(|| no_savepoint(&ast::Ident::new(name)))
}

fn no_savepoint(name: &ast::Ident) -> thunderdb_common::ThunderError {
    user_error(
        SqlState::INVALID_SAVEPOINT_SPECIFICATION,
        format!(
            "savepoint \"{}\" does not exist",
            crate::sql::ident_name(name)
        ),
    )
}

fn isolation_of(level: &ast::TransactionIsolationLevel) -> Isolation {
    match level {
        ast::TransactionIsolationLevel::ReadUncommitted
        | ast::TransactionIsolationLevel::ReadCommitted => Isolation::ReadCommitted,
        ast::TransactionIsolationLevel::Serializable => Isolation::Serializable,
        _ => Isolation::RepeatableRead,
    }
}

fn setting_value(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        ast::Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Accepts the zone names and offsets the proxy can render; named zones other than UTC need a
/// time zone database, which is not built in yet.
fn normalize_timezone(v: &str) -> Result<String> {
    let t = v.trim();
    if t.eq_ignore_ascii_case("utc")
        || t.eq_ignore_ascii_case("gmt")
        || t.eq_ignore_ascii_case("z")
        || t.eq_ignore_ascii_case("local")
        || t.eq_ignore_ascii_case("default")
    {
        return Ok("UTC".into());
    }
    // Other names of UTC (a JVM sends `Etc/UTC`): kept as PostgreSQL spells them.
    if let Some(name) = thunderdb_common::text_input::UTC_ZONE_NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(t))
    {
        return Ok((*name).to_string());
    }
    let valid_offset = t.starts_with(['+', '-'])
        && t[1..]
            .split(':')
            .all(|p| !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()));
    if valid_offset || t.parse::<i32>().is_ok() {
        return Ok(t.to_string());
    }
    Err(user_error(
        SqlState::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"TimeZone\": \"{v}\""),
    ))
}

pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
