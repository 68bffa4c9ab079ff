//! One client connection: simple and extended query protocol on top of its compute session.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::sink::{Sink, SinkExt};
use futures::stream;
use pgwire::api::query::{SimpleQueryHandler, send_query_response};
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult, SEVERITY_ERROR};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{ParameterStatus, SecretKey};
use thunderdb_compute::arrow::array::RecordBatch;
use thunderdb_compute::arrow::datatypes::SchemaRef;
use thunderdb_compute::{CommandTag, QueryOutput, TxnStatus};

use super::auth::{InitialParameters, TRACKED_PARAMETERS};
use super::backend::{Canceller, SqlSession};
use super::encode::{EncodeContext, data_rows};
use super::extended::StatementParser;
use super::server::Shared;
use super::text::utc_offset_of_zone;
use super::types::field_info;
use crate::error::Error;

/// Per-connection state, shared by pgwire's startup, query and extended query handlers.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    session: OnceLock<tokio::sync::Mutex<Box<dyn SqlSession>>>,
    sasl_started: AtomicBool,
    canceller: parking_lot::Mutex<Option<Canceller>>,
    cancel_key: parking_lot::Mutex<Option<(i32, Bytes)>>,
    /// Last value seen of each parameter in [`TRACKED_PARAMETERS`], to report changes.
    tracked: parking_lot::Mutex<HashMap<&'static str, Option<String>>>,
    pub(crate) parser: Arc<StatementParser>,
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
                Ok(QueryOutput::Rows {
                    schema,
                    batches,
                    command,
                }) => Response::Query(rows_response(
                    &schema,
                    batches,
                    |_| FieldFormat::Text,
                    ctx,
                    command,
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
