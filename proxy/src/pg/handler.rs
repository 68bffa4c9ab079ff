//! One client connection: simple and extended query protocol on top of its compute session.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::sink::{Sink, SinkExt};
use futures::stream;
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{SimpleQueryHandler, send_query_response};
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult, SEVERITY_ERROR};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{ParameterStatus, SecretKey};
use thunderdb_compute::arrow::array::RecordBatch;
use thunderdb_compute::arrow::datatypes::SchemaRef;
use thunderdb_compute::{CommandTag, QueryOutput, TxnStatus};

use super::auth::{InitialParameters, TRACKED_PARAMETERS};
use super::backend::{Canceller, SqlSession};
use super::copy::{CopyIn, CopyOut, send_copy_in_response};
use super::encode::{EncodeContext, data_rows};
use super::extended::StatementParser;
use super::params::ParamContext;
use super::server::Shared;
use super::text::utc_offset_of_zone;
use super::types::field_info;
use crate::error::Error;

/// Per-connection state, shared by pgwire's startup, query and extended query handlers.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    session: OnceLock<tokio::sync::Mutex<Box<dyn SqlSession>>>,
    sasl_started: AtomicBool,
    /// Whether the login runs SCRAM (else MD5), and whether its role may log in.
    expects_sasl: AtomicBool,
    login_allowed: AtomicBool,
    canceller: parking_lot::Mutex<Option<Canceller>>,
    cancel_key: parking_lot::Mutex<Option<(i32, Bytes)>>,
    /// Last value seen of each parameter in [`TRACKED_PARAMETERS`], to report changes.
    tracked: parking_lot::Mutex<HashMap<&'static str, Option<String>>>,
    pub(crate) parser: Arc<StatementParser>,
    /// The `COPY … FROM STDIN` whose data is arriving.
    copy_in: parking_lot::Mutex<Option<CopyIn>>,
}

/// What one statement answers: a pgwire response, or the start of a COPY.
pub(crate) enum Reply {
    Pg(Response),
    CopyOut(CopyOut),
    /// CopyInResponse with this many columns; the connection now holds the COPY's state.
    CopyIn(usize),
}

/// A statement's output sorted by how it is sent.
pub(crate) enum Routed {
    Copy(Reply),
    Other(QueryOutput),
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Connection {
            shared,
            session: OnceLock::new(),
            sasl_started: AtomicBool::new(false),
            expects_sasl: AtomicBool::new(true),
            login_allowed: AtomicBool::new(false),
            canceller: parking_lot::Mutex::new(None),
            cancel_key: parking_lot::Mutex::new(None),
            tracked: parking_lot::Mutex::new(HashMap::new()),
            parser: Arc::new(StatementParser),
            copy_in: parking_lot::Mutex::new(None),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Ends the compute session, if one was opened.
    pub(crate) async fn close_session(&self) {
        if let Some(session) = self.session.get() {
            session.lock().await.close().await;
        }
    }

    pub(crate) fn sasl_started(&self) -> bool {
        self.sasl_started.load(Ordering::Relaxed)
    }

    pub(crate) fn set_sasl_started(&self) {
        self.sasl_started.store(true, Ordering::Relaxed);
    }

    /// Notes the login being authenticated: which mechanism checks it, and whether its role
    /// has LOGIN (an unknown user never gets that far).
    pub(crate) fn set_login(&self, login: Option<super::auth::Login>, sasl: bool) {
        self.expects_sasl.store(sasl, Ordering::Relaxed);
        self.login_allowed
            .store(login.is_some_and(|l| l.can_login), Ordering::Relaxed);
    }

    pub(crate) fn expects_sasl(&self) -> bool {
        self.expects_sasl.load(Ordering::Relaxed)
    }

    pub(crate) fn login_allowed(&self) -> bool {
        self.login_allowed.load(Ordering::Relaxed)
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

    pub(crate) async fn session(
        &self,
    ) -> PgWireResult<tokio::sync::MutexGuard<'_, Box<dyn SqlSession>>> {
        match self.session.get() {
            Some(session) => Ok(session.lock().await),
            None => {
                Err(Error::protocol("query before authentication completed").into_pgwire_fatal())
            }
        }
    }

    /// A COPY output as its reply; any other output is given back.
    pub(crate) fn copy_reply(&self, output: QueryOutput, ctx: EncodeContext) -> Routed {
        match output {
            QueryOutput::CopyOut {
                schema,
                batches,
                format,
            } => Routed::Copy(match CopyOut::encode(&schema, &batches, &format, ctx) {
                Ok(out) => Reply::CopyOut(out),
                Err(e) => Reply::Pg(Response::Error(Box::new(e.to_error_info(SEVERITY_ERROR)))),
            }),
            QueryOutput::CopyIn(target) => {
                let columns = target.schema.fields().len();
                let params = ParamContext {
                    utc_offset_secs: ctx.utc_offset_secs,
                };
                *self.copy_in.lock() = Some(CopyIn::new(target, params));
                Routed::Copy(Reply::CopyIn(columns))
            }
            other => Routed::Other(other),
        }
    }

    /// Abandons a COPY FROM STDIN that pgwire ended without telling the copy handler (an
    /// unexpected message during COPY): its rows are dropped and an open block fails.
    pub(crate) async fn discard_copy_in(&self) {
        let abandoned = self.copy_in.lock().take();
        if abandoned.is_some()
            && let Some(session) = self.session.get()
        {
            session.lock().await.fail_transaction();
        }
    }

    /// The transaction state ReadyForQuery reports.
    async fn transaction_status(&self) -> TransactionStatus {
        match self.session.get() {
            Some(session) => status_of(session.lock().await.txn_status()),
            None => TransactionStatus::Idle,
        }
    }

    /// `ParameterStatus` for each tracked setting the session changed, then `ReadyForQuery`
    /// with the session's transaction state: PostgreSQL reports changed settings just before
    /// `ReadyForQuery`, and `psql` shows the transaction state in its prompt.
    pub(crate) async fn ready_for_query<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut status = TransactionStatus::Idle;
        let mut changed = Vec::new();
        if let Some(session) = self.session.get() {
            let session = session.lock().await;
            status = status_of(session.txn_status());
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

fn status_of(status: TxnStatus) -> TransactionStatus {
    match status {
        TxnStatus::Idle => TransactionStatus::Idle,
        TxnStatus::InBlock => TransactionStatus::Transaction,
        TxnStatus::Failed => TransactionStatus::Error,
    }
}

/// Sends the start of a COPY a statement began; `Ok(true)` when the client now sends data.
pub(crate) async fn start_copy<C>(
    client: &mut C,
    reply: Reply,
    extended: bool,
    status: TransactionStatus,
) -> PgWireResult<bool>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match reply {
        Reply::CopyOut(out) => out.send(client).await.map(|_| false),
        Reply::CopyIn(columns) => {
            // pgwire sends the ReadyForQuery that follows the data with this status.
            client.set_transaction_status(status);
            send_copy_in_response(client, columns).await?;
            client.set_state(PgWireConnectionState::CopyInProgress(extended));
            Ok(true)
        }
        Reply::Pg(_) => Ok(false),
    }
}

pub(crate) fn encode_context(session: &dyn SqlSession) -> EncodeContext {
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

pub(crate) fn result_fields(
    schema: &SchemaRef,
    format: impl Fn(usize) -> FieldFormat,
) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| field_info(f, format(i)))
        .collect()
}

pub(crate) fn rows_response(
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

/// Only `;` and white space: PostgreSQL answers such a query with `EmptyQueryResponse`.
pub(crate) fn is_empty_query(sql: &str) -> bool {
    sql.chars().all(|c| c == ';' || c.is_whitespace())
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
        let replies = if is_empty_query(&query.query) {
            vec![Reply::Pg(Response::EmptyQuery)]
        } else {
            self.run_simple(&query.query).await?
        };
        for reply in replies {
            let response = match reply {
                Reply::Pg(response) => response,
                copy => {
                    let status = self.transaction_status().await;
                    if start_copy(client, copy, false, status).await? {
                        // The data follows; pgwire sends ReadyForQuery after CopyDone.
                        return Ok(());
                    }
                    continue;
                }
            };
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

    /// The trait's entry point; `on_query` runs [`Connection::run_simple`] itself, since a
    /// COPY needs more than a pgwire response.
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(self
            .run_simple(query)
            .await?
            .into_iter()
            .map(|reply| match reply {
                Reply::Pg(response) => response,
                _ => Response::Error(Box::new(
                    Error::invalid("0A000", "COPY needs the connection's copy handling")
                        .to_error_info(SEVERITY_ERROR),
                )),
            })
            .collect())
    }
}

impl Connection {
    /// Runs every statement of `query`; each result, or the error that stopped the batch,
    /// becomes one reply.
    async fn run_simple(&self, query: &str) -> PgWireResult<Vec<Reply>> {
        let mut session = self.session().await?;
        let results = session.execute_batch(query).await;
        let ctx = encode_context(session.as_ref());
        drop(session);
        Ok(results
            .into_iter()
            .map(|result| match result {
                Ok(output) => match self.copy_reply(output, ctx) {
                    Routed::Copy(reply) => reply,
                    Routed::Other(QueryOutput::Rows {
                        schema,
                        batches,
                        command,
                    }) => Reply::Pg(Response::Query(rows_response(
                        &schema,
                        batches,
                        |_| FieldFormat::Text,
                        ctx,
                        command,
                    ))),
                    Routed::Other(QueryOutput::Command(tag)) => {
                        Reply::Pg(Response::Execution(Tag::new(&command_complete_text(&tag))))
                    }
                    Routed::Other(_) => Reply::Pg(Response::EmptyQuery),
                },
                Err(e) => Reply::Pg(Response::Error(Box::new(
                    Error::Sql(e).to_error_info(SEVERITY_ERROR),
                ))),
            })
            .collect())
    }
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let failed = {
            let mut copy = self.copy_in.lock();
            match copy.as_mut().map(|c| c.feed(&data.data)) {
                Some(Err(e)) => {
                    *copy = None;
                    Some(e)
                }
                _ => None,
            }
        };
        match failed {
            Some(e) => {
                self.session().await?.fail_transaction();
                Err(e.into_pgwire())
            }
            None => Ok(()),
        }
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(copy) = self.copy_in.lock().take() else {
            return Ok(());
        };
        let mut session = self.session().await?;
        let result = match copy.finish() {
            Ok((target, batches)) => session
                .copy_in(&target, batches)
                .await
                .map_err(|e| Error::Sql(e).into_pgwire()),
            Err(e) => {
                session.fail_transaction();
                Err(e.into_pgwire())
            }
        };
        let status = status_of(session.txn_status());
        drop(session);
        client.set_transaction_status(status);
        let rows = result?;
        client
            .feed(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.discard_copy_in().await;
        if let Some(session) = self.session.get() {
            session.lock().await.fail_transaction();
        }
        Error::invalid("57014", format!("COPY from stdin failed: {}", fail.message)).into_pgwire()
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
}
