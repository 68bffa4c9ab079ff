//! The extended query protocol: Parse, Bind, Describe, Execute and Sync on top of the
//! engine's prepared statements.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::sink::{Sink, SinkExt};
use futures::stream::StreamExt;
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, send_query_response};
use pgwire::api::results::{FieldFormat, FieldInfo, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Describe, Execute, Parse, ParseComplete, PortalSuspended, Sync as PgSync,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::EmptyQueryResponse;
use thunderdb_compute::arrow::array::RecordBatch;
use thunderdb_compute::arrow::compute::cast;
use thunderdb_compute::arrow::datatypes::SchemaRef;
use thunderdb_compute::{PreparedStatement, QueryOutput, ScalarValue};

use super::handler::{
    Connection, Reply, Routed, command_complete_text, encode_context, is_empty_query,
    result_fields, rows_response, start_copy,
};
use super::params::{ParamContext, decode_parameter};
use super::types::{arrow_type_of_oid, parameter_oid};
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

fn shown_name(name: &str) -> &str {
    if name == DEFAULT_NAME { "" } else { name }
}

/// The columns a statement returns in the given result formats, or `None` if it returns no rows.
fn row_fields(stmt: &PgStatement, format: Option<&Format>) -> Option<Vec<FieldInfo>> {
    let schema = stmt.prepared.result_schema.as_ref()?;
    Some(result_fields(schema, |i| {
        format.map_or(FieldFormat::Text, |f| column_format(f, i))
    }))
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
        Ok(row_fields(stmt, format).unwrap_or_default())
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
            .collect::<Result<Vec<_>, _>>();
        let values = match values {
            Ok(v) => v,
            Err(err) => {
                // As in PostgreSQL, a Bind that fails inside a block aborts the transaction.
                self.session().await?.fail_transaction();
                return Err(err.into_pgwire());
            }
        };
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
                    row_fields(&stored.statement, None),
                ),
                Some(Entry::Empty) => (Some(Vec::new()), None),
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
                    row_fields(
                        &portal.statement.statement,
                        Some(&portal.result_column_format),
                    ),
                ),
                Some(Entry::Empty) => (None, None),
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
        // A statement that returns no rows is described with NoData, not an empty row list.
        if let Some(fields) = fields {
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
            let response = match self.execute_portal(&portal).await? {
                Reply::Pg(response) => response,
                copy => {
                    // A COPY runs once; its data (out) or the client's (in) follows now.
                    *state.lock().await = PortalExecutionState::Finished;
                    let status = client.transaction_status();
                    start_copy(client, copy, true, status).await?;
                    return Ok(());
                }
            };
            match response {
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
        match self.execute_portal(portal).await? {
            Reply::Pg(response) => Ok(response),
            _ => Err(
                Error::invalid("0A000", "COPY needs the connection's copy handling").into_pgwire(),
            ),
        }
    }
}

impl Connection {
    /// Runs a bound portal's statement once.
    async fn execute_portal(&self, portal: &Portal<PgStatement>) -> PgWireResult<Reply> {
        let statement = &portal.statement.statement;
        let params = statement.bound.as_deref().cloned().unwrap_or_default();
        let mut session = self.session().await?;
        let output = session
            .execute_prepared(&statement.prepared, params)
            .await
            .map_err(|e| Error::Sql(e).into_pgwire())?;
        let ctx = encode_context(session.as_ref());
        drop(session);
        let output = match self.copy_reply(output, ctx) {
            Routed::Copy(reply) => return Ok(reply),
            Routed::Other(output) => output,
        };
        Ok(Reply::Pg(match output {
            QueryOutput::Rows {
                schema,
                batches,
                command,
            } => {
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
                    command,
                ))
            }
            QueryOutput::Command(tag) => {
                Response::Execution(Tag::new(&command_complete_text(&tag)))
            }
            _ => Response::EmptyQuery,
        }))
    }
}
