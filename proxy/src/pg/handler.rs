//! One client connection: simple and extended query protocol on top of its compute session.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::sink::{Sink, SinkExt};
use futures::stream::{self, StreamExt};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_query_response};
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{PgWireError, PgWireResult, SEVERITY_ERROR};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Describe, Execute, Parse, ParseComplete, PortalSuspended, Sync as PgSync,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{ParameterStatus, SecretKey};
use thunderdb_compute::arrow::array::RecordBatch;
use thunderdb_compute::arrow::compute::cast;
use thunderdb_compute::arrow::datatypes::SchemaRef;
use thunderdb_compute::{CommandTag, PreparedStatement, QueryOutput, ScalarValue, TxnStatus};

use super::auth::{InitialParameters, TRACKED_PARAMETERS};
use super::backend::{Canceller, SqlSession};
use super::encode::{EncodeContext, data_rows};
use super::params::{ParamContext, decode_parameter};
use super::server::Shared;
use super::text::utc_offset_of_zone;
use super::types::{arrow_type_of_oid, field_info, parameter_oid};
use crate::error::Error;

/// A statement prepared by the engine, as stored in the connection's portal store. A portal
/// holds a copy with its decoded parameters in `bound`.
#[derive(Clone, Debug)]
pub(crate) struct PgStatement {
    prepared: Arc<PreparedStatement>,
    /// The OID each `$n` is described with and its binary values are decoded by.
    param_oids: Arc<Vec<u32>>,
    bound: Option<Arc<Vec<ScalarValue>>>,
}

/// Per-connection state, shared by pgwire's startup, query and extended query handlers.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    session: OnceLock<tokio::sync::Mutex<Box<dyn SqlSession>>>,
    sasl_started: AtomicBool,
    canceller: parking_lot::Mutex<Option<Canceller>>,
    cancel_key: parking_lot::Mutex<Option<(i32, Bytes)>>,
    /// Last value seen of each parameter in [`TRACKED_PARAMETERS`], to report changes.
    tracked: parking_lot::Mutex<HashMap<&'static str, Option<String>>>,
    parser: Arc<StatementParser>,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Connection {
            shared,
            session: OnceLock::new(),
            sasl_started: AtomicBool::new(false),
            canceller: parking_lot::Mutex::new(None),
            cancel_key: parking_lot::Mutex::new(None),
            tracked: parking_lot::Mutex::new(HashMap::new()),
            parser: Arc::new(StatementParser),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn sasl_started(&self) -> bool {
        self.sasl_started.load(Ordering::Relaxed)
    }

    pub(crate) fn set_sasl_started(&self) {
        self.sasl_started.store(true, Ordering::Relaxed);
    }

    /// Installs the authenticated session and returns the parameters to report at startup.
    pub(crate) fn open_session(
        &self,
        session: Box<dyn SqlSession>,
        user: &str,
        startup_app_name: Option<String>,
    ) -> InitialParameters {
        let setting = |name: &str, default: &str| {
            session
                .parameter(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let app_name = startup_app_name.unwrap_or_else(|| setting("application_name", ""));
        let params = vec![
            ("server_version", self.shared.server_version.clone()),
            ("server_encoding", "UTF8".to_owned()),
            ("client_encoding", setting("client_encoding", "UTF8")),
            ("DateStyle", setting("DateStyle", "ISO, MDY")),
            ("TimeZone", setting("TimeZone", "UTC")),
            ("IntervalStyle", setting("IntervalStyle", "postgres")),
            ("integer_datetimes", "on".to_owned()),
            (
                "standard_conforming_strings",
                setting("standard_conforming_strings", "on"),
            ),
            ("is_superuser", "on".to_owned()),
            ("session_authorization", user.to_owned()),
            ("application_name", app_name),
            ("default_transaction_read_only", "off".to_owned()),
            ("in_hot_standby", "off".to_owned()),
        ];
        *self.tracked.lock() = TRACKED_PARAMETERS
            .iter()
            .map(|name| (*name, session.parameter(name)))
            .collect();
        *self.canceller.lock() = Some(session.canceller());
        // Startup runs once per connection, so the cell is always empty here.
        let _ = self.session.set(tokio::sync::Mutex::new(session));
        InitialParameters(params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// Makes a CancelRequest carrying this `pid` and `secret_key` cancel this session's statement.
    pub(crate) fn register_cancel(&self, pid: i32, secret_key: SecretKey) {
        let Some(canceller) = self.canceller.lock().clone() else {
            return;
        };
        let key = (pid, secret_key.to_bytes());
        self.shared.cancels.lock().insert(key.clone(), canceller);
        *self.cancel_key.lock() = Some(key);
    }

    async fn session(&self) -> PgWireResult<tokio::sync::MutexGuard<'_, Box<dyn SqlSession>>> {
        match self.session.get() {
            Some(session) => Ok(session.lock().await),
            None => {
                Err(Error::protocol("query before authentication completed").into_pgwire_fatal())
            }
        }
    }

    /// `ParameterStatus` for each tracked setting the session changed, then `ReadyForQuery`
    /// with the session's transaction state: PostgreSQL reports changed settings just before
    /// `ReadyForQuery`, and `psql` shows the transaction state in its prompt.
    async fn ready_for_query<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut status = TransactionStatus::Idle;
        let mut changed = Vec::new();
        if let Some(session) = self.session.get() {
            let session = session.lock().await;
            status = match session.txn_status() {
                TxnStatus::Idle => TransactionStatus::Idle,
                TxnStatus::InBlock => TransactionStatus::Transaction,
                TxnStatus::Failed => TransactionStatus::Error,
            };
            let mut tracked = self.tracked.lock();
            for name in TRACKED_PARAMETERS {
                let now = session.parameter(name);
                let last = tracked.entry(name).or_default();
                if *last != now {
                    last.clone_from(&now);
                    if let Some(value) = now {
                        changed.push(ParameterStatus::new(name.to_owned(), value));
                    }
                }
            }
        }
        for status in changed {
            client
                .feed(PgWireBackendMessage::ParameterStatus(status))
                .await?;
        }
        client.set_transaction_status(status);
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        Ok(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(key) = self.cancel_key.lock().take() {
            self.shared.cancels.lock().remove(&key);
        }
    }
}

fn encode_context(session: &dyn SqlSession) -> EncodeContext {
    // A named zone we cannot resolve without a tz database shows in UTC.
    let utc_offset_secs = session
        .parameter("TimeZone")
        .and_then(|z| utc_offset_of_zone(&z))
        .unwrap_or(0);
    EncodeContext { utc_offset_secs }
}

/// `INSERT 0 3`, `UPDATE 1`, `CREATE TABLE`: the CommandComplete text PostgreSQL sends.
pub(crate) fn command_complete_text(tag: &CommandTag) -> String {
    match (tag.command.as_str(), tag.rows) {
        // The middle number is the inserted row's OID, always 0 since tables have no OIDs.
        ("INSERT", rows) => format!("INSERT 0 {}", rows.unwrap_or(0)),
        (command, Some(rows)) => format!("{command} {rows}"),
        (command, None) => command.to_owned(),
    }
}

/// The CommandComplete verb for a statement returning rows: `INSERT ... RETURNING` completes
/// as `INSERT 0 n`, not `SELECT n`.
fn rows_command(sql: &str) -> &'static str {
    let word: String = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    match word.to_ascii_uppercase().as_str() {
        "INSERT" => "INSERT 0",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        "MERGE" => "MERGE",
        _ => "SELECT",
    }
}

/// The format of result column `i`; out-of-range columns fall back to text.
fn column_format(format: &Format, i: usize) -> FieldFormat {
    match format {
        Format::UnifiedText => FieldFormat::Text,
        Format::UnifiedBinary => FieldFormat::Binary,
        Format::Individual(codes) => codes
            .get(i)
            .map(|c| FieldFormat::from(*c))
            .unwrap_or(FieldFormat::Text),
    }
}

fn result_fields(schema: &SchemaRef, format: impl Fn(usize) -> FieldFormat) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| field_info(f, format(i)))
        .collect()
}

fn rows_response(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    format: impl Fn(usize) -> FieldFormat,
    ctx: EncodeContext,
    command: &str,
) -> QueryResponse {
    let fields = Arc::new(result_fields(schema, format));
    let rows = data_rows(batches, fields.clone(), ctx);
    let mut response = QueryResponse::new(fields, stream::iter(rows));
    response.set_command_tag(command);
    response
}

/// Casts result columns to the types `Describe` announced when execution produced others, so
/// binary values match the OIDs the client was told.
fn conform(batches: Vec<RecordBatch>, described: &SchemaRef) -> PgWireResult<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|batch| {
            let schema = batch.schema();
            if schema.fields().len() != described.fields().len()
                || schema
                    .fields()
                    .iter()
                    .zip(described.fields())
                    .all(|(a, b)| a.data_type() == b.data_type())
            {
                return Ok(batch);
            }
            let columns = batch
                .columns()
                .iter()
                .zip(described.fields())
                .map(|(c, f)| cast(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::invalid("XX000", e.to_string()).into_pgwire())?;
            RecordBatch::try_new(described.clone(), columns)
                .map_err(|e| Error::invalid("XX000", e.to_string()).into_pgwire())
        })
        .collect()
}

/// Only `;` and white space: PostgreSQL answers such a query with `EmptyQueryResponse`.
fn is_empty_query(sql: &str) -> bool {
    sql.chars().all(|c| c == ';' || c.is_whitespace())
}

fn shown_name(name: &str) -> &str {
    if name == DEFAULT_NAME { "" } else { name }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let responses = if is_empty_query(&query.query) {
            vec![Response::EmptyQuery]
        } else {
            SimpleQueryHandler::do_query(self, client, &query.query).await?
        };
        for response in responses {
            match response {
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                }
                Response::Query(rows) => send_query_response(client, rows, true).await?,
                Response::Execution(tag) => {
                    client
                        .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                        .await?
                }
                Response::Error(info) => {
                    client
                        .feed(PgWireBackendMessage::ErrorResponse((*info).into()))
                        .await?
                }
                _ => {}
            }
        }
        self.ready_for_query(client).await
    }

    /// Runs every statement of `query`; each result, or the error that stopped the batch,
    /// becomes one response.
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session().await?;
        let results = session.execute_batch(query).await;
        let ctx = encode_context(session.as_ref());
        drop(session);
        Ok(results
            .into_iter()
            .map(|result| match result {
                // The engine does not say which statement produced rows, so all are `SELECT n`.
                Ok(QueryOutput::Rows { schema, batches }) => Response::Query(rows_response(
                    &schema,
                    batches,
                    |_| FieldFormat::Text,
                    ctx,
                    "SELECT",
                )),
                Ok(QueryOutput::Command(tag)) => {
                    Response::Execution(Tag::new(&command_complete_text(&tag)))
                }
                Ok(QueryOutput::Empty) => Response::EmptyQuery,
                Err(e) => Response::Error(Box::new(Error::Sql(e).to_error_info(SEVERITY_ERROR))),
            })
            .collect())
    }
}

/// pgwire asks for a parser; statements are prepared by [`Connection::on_parse`] instead, so
/// only its schema accessors are used.
#[derive(Debug)]
pub(crate) struct StatementParser;

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = PgStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        _sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<PgStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        Err(PgWireError::ApiError(
            "statements are prepared by the connection handler".into(),
        ))
    }

    fn get_parameter_types(&self, stmt: &PgStatement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_oids
            .iter()
            .map(|o| Type::from_oid(*o).unwrap_or(Type::UNKNOWN))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &PgStatement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(match &stmt.prepared.result_schema {
            Some(schema) => result_fields(schema, |i| {
                format.map_or(FieldFormat::Text, |f| column_format(f, i))
            }),
            None => Vec::new(),
        })
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = PgStatement;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        if name != DEFAULT_NAME && client.portal_store().get_statement(&name).is_some() {
            return Err(Error::invalid(
                "42P05",
                format!("prepared statement \"{name}\" already exists"),
            )
            .into_pgwire());
        }
        if is_empty_query(&message.query) {
            client.portal_store().put_empty_statement(&name);
        } else {
            let declared: Vec<_> = message
                .type_oids
                .iter()
                .map(|oid| arrow_type_of_oid(*oid))
                .collect();
            let prepared = self
                .session()
                .await?
                .prepare(&message.query, &declared)
                .await
                .map_err(|e| Error::Sql(e).into_pgwire())?;
            let param_oids = prepared
                .param_types
                .iter()
                .enumerate()
                .map(|(i, inferred)| parameter_oid(message.type_oids.get(i).copied(), inferred))
                .collect();
            let statement = PgStatement {
                prepared: Arc::new(prepared),
                param_oids: Arc::new(param_oids),
                bound: None,
            };
            let declared_types = message
                .type_oids
                .iter()
                .map(|oid| Type::from_oid(*oid))
                .collect();
            client
                .portal_store()
                .put_statement(Arc::new(StoredStatement::new(
                    name,
                    statement,
                    declared_types,
                )));
        }
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let protocol = |m: String| Error::protocol(m).into_pgwire();
        let stored = match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(stored)) => stored,
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(protocol(format!(
                        "bind message supplies {} parameters, but prepared statement \"{}\" requires 0",
                        message.parameters.len(),
                        shown_name(statement_name)
                    )));
                }
                let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
                client.portal_store().put_empty_portal(portal_name);
                client
                    .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
                    .await?;
                return Ok(());
            }
            None => {
                return Err(Error::invalid(
                    "26000",
                    format!(
                        "prepared statement \"{}\" does not exist",
                        shown_name(statement_name)
                    ),
                )
                .into_pgwire());
            }
        };
        let statement = &stored.statement;
        let expected = statement.param_oids.len();
        if message.parameters.len() != expected {
            return Err(protocol(format!(
                "bind message supplies {} parameters, but prepared statement \"{}\" requires {expected}",
                message.parameters.len(),
                shown_name(statement_name)
            )));
        }
        let formats = &message.parameter_format_codes;
        if formats.len() > 1 && formats.len() != expected {
            return Err(protocol(format!(
                "bind message has {} parameter formats but {expected} parameters",
                formats.len()
            )));
        }
        let columns = statement
            .prepared
            .result_schema
            .as_ref()
            .map_or(0, |s| s.fields().len());
        let result_formats = &message.result_column_format_codes;
        if result_formats.len() > 1 && result_formats.len() != columns {
            return Err(protocol(format!(
                "bind message has {} result formats but query has {columns} columns",
                result_formats.len()
            )));
        }
        if let Some(code) = formats
            .iter()
            .chain(result_formats)
            .find(|c| **c != 0 && **c != 1)
        {
            return Err(
                Error::invalid("22023", format!("unsupported format code: {code}")).into_pgwire(),
            );
        }
        let ctx = {
            let session = self.session().await?;
            ParamContext {
                utc_offset_secs: encode_context(session.as_ref()).utc_offset_secs,
            }
        };
        let values = message
            .parameters
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let code = if formats.len() == 1 {
                    formats[0]
                } else {
                    formats.get(i).copied().unwrap_or(0)
                };
                decode_parameter(
                    i + 1,
                    value.as_deref(),
                    FieldFormat::from(code),
                    statement.param_oids[i],
                    &statement.prepared.param_types[i],
                    ctx,
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::into_pgwire)?;
        let bound = PgStatement {
            bound: Some(Arc::new(values)),
            ..statement.clone()
        };
        let bound = Arc::new(StoredStatement::new(
            stored.id.clone(),
            bound,
            stored.parameter_types.clone(),
        ));
        client
            .portal_store()
            .put_portal(Arc::new(Portal::try_new(&message, bound)?));
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let (params, fields) = match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                // Before Bind the formats are unknown; PostgreSQL describes every column as text.
                Some(Entry::Value(stored)) => (
                    Some(stored.statement.param_oids.as_ref().clone()),
                    self.parser.get_result_schema(&stored.statement, None)?,
                ),
                Some(Entry::Empty) => (Some(Vec::new()), Vec::new()),
                None => {
                    return Err(Error::invalid(
                        "26000",
                        format!("prepared statement \"{}\" does not exist", shown_name(name)),
                    )
                    .into_pgwire());
                }
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(Entry::Value(portal)) => (
                    None,
                    self.parser.get_result_schema(
                        &portal.statement.statement,
                        Some(&portal.result_column_format),
                    )?,
                ),
                Some(Entry::Empty) => (None, Vec::new()),
                None => {
                    return Err(Error::invalid(
                        "34000",
                        format!("portal \"{}\" does not exist", shown_name(name)),
                    )
                    .into_pgwire());
                }
            },
            other => {
                return Err(
                    Error::protocol(format!("invalid DESCRIBE message subtype {other}"))
                        .into_pgwire(),
                );
            }
        };
        if let Some(params) = params {
            client
                .feed(PgWireBackendMessage::ParameterDescription(
                    ParameterDescription::new(params),
                ))
                .await?;
        }
        let has_rows = match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                client.portal_store().get_statement(name).is_some_and(|s| {
                    s.value()
                        .is_some_and(|s| s.statement.prepared.result_schema.is_some())
                })
            }
            _ => client.portal_store().get_portal(name).is_some_and(|p| {
                p.value()
                    .is_some_and(|p| p.statement.statement.prepared.result_schema.is_some())
            }),
        };
        if has_rows {
            let description = RowDescription::new(fields.iter().map(Into::into).collect());
            client
                .feed(PgWireBackendMessage::RowDescription(description))
                .await?;
        } else {
            client
                .feed(PgWireBackendMessage::NoData(NoData::new()))
                .await?;
        }
        Ok(())
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let portal = match client.portal_store().get_portal(portal_name) {
            Some(Entry::Value(portal)) => portal,
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                return Ok(());
            }
            None => {
                return Err(Error::invalid(
                    "34000",
                    format!("portal \"{}\" does not exist", shown_name(portal_name)),
                )
                .into_pgwire());
            }
        };
        let state = portal.state();
        let initial = matches!(*state.lock().await, PortalExecutionState::Initial);
        if initial {
            match ExtendedQueryHandler::do_query(self, client, &portal, max_rows).await? {
                // Without a row limit, stream straight from the result instead of buffering it
                // in the portal.
                Response::Query(rows) if max_rows == 0 => {
                    *state.lock().await = PortalExecutionState::Finished;
                    return send_query_response(client, rows, false).await;
                }
                Response::Query(rows) => portal.start(rows).await,
                other => {
                    // A command runs once even if the client executes its portal again.
                    *state.lock().await = PortalExecutionState::Finished;
                    match other {
                        Response::Execution(tag) => {
                            client
                                .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                                .await?
                        }
                        _ => {
                            client
                                .feed(PgWireBackendMessage::EmptyQueryResponse(
                                    EmptyQueryResponse::new(),
                                ))
                                .await?
                        }
                    }
                    return Ok(());
                }
            }
        }
        let fetched = portal.fetch(max_rows).await?;
        let mut response = fetched.response;
        let command = response.command_tag().to_owned();
        let mut rows = 0;
        while let Some(row) = response.data_rows().next().await {
            client.feed(PgWireBackendMessage::DataRow(row?)).await?;
            rows += 1;
        }
        if fetched.suspended {
            client
                .feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
                .await?;
        } else {
            client
                .feed(PgWireBackendMessage::CommandComplete(
                    Tag::new(&command).with_rows(rows).into(),
                ))
                .await?;
        }
        Ok(())
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        self.ready_for_query(client).await
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<PgStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = &portal.statement.statement;
        let params = statement.bound.as_deref().cloned().unwrap_or_default();
        let mut session = self.session().await?;
        let output = session
            .execute_prepared(&statement.prepared, params)
            .await
            .map_err(|e| Error::Sql(e).into_pgwire())?;
        let ctx = encode_context(session.as_ref());
        drop(session);
        Ok(match output {
            QueryOutput::Rows { schema, batches } => {
                let (schema, batches) = match &statement.prepared.result_schema {
                    Some(described) => (described.clone(), conform(batches, described)?),
                    None => (schema, batches),
                };
                let format = &portal.result_column_format;
                Response::Query(rows_response(
                    &schema,
                    batches,
                    |i| column_format(format, i),
                    ctx,
                    rows_command(&statement.prepared.sql),
                ))
            }
            QueryOutput::Command(tag) => {
                Response::Execution(Tag::new(&command_complete_text(&tag)))
            }
            QueryOutput::Empty => Response::EmptyQuery,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tags_match_postgres() {
        let tag = |command: &str, rows| {
            command_complete_text(&CommandTag {
                command: command.into(),
                rows,
            })
        };
        assert_eq!(tag("INSERT", Some(3)), "INSERT 0 3");
        assert_eq!(tag("UPDATE", Some(1)), "UPDATE 1");
        assert_eq!(tag("DELETE", Some(2)), "DELETE 2");
        assert_eq!(tag("SELECT", Some(5)), "SELECT 5");
        assert_eq!(tag("BEGIN", None), "BEGIN");
        assert_eq!(tag("CREATE TABLE", None), "CREATE TABLE");
    }

    #[test]
    fn returning_statements_complete_with_their_verb() {
        assert_eq!(
            rows_command("insert into t values (1) returning id"),
            "INSERT 0"
        );
        assert_eq!(rows_command("  (select 1)"), "SELECT");
        assert_eq!(
            rows_command("WITH x AS (SELECT 1) SELECT * FROM x"),
            "SELECT"
        );
        assert_eq!(rows_command("delete from t returning *"), "DELETE");
    }
}
