//! One MySQL client connection: the connection phase, then commands until COM_QUIT.

use super::Shared;
use super::auth::{self, CACHING_SHA2, NATIVE_PASSWORD};
use super::errors::MySqlError;
use super::packet::{MAX_ALLOWED_PACKET, PacketIo, ReadError, Reader};
use super::params::{BoundType, read_params};
use super::results::{self, ColumnDef, binary_row, eof_packet, err_packet, ok_packet, text_row};
use crate::credentials::Credential;
use crate::tls::MaybeTls;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use thunderdb_common::ThunderError;
use thunderdb_compute::arrow::array::RecordBatch;
use thunderdb_compute::arrow::datatypes::SchemaRef;
use thunderdb_compute::{MySqlStatus, PreparedStatement, QueryOutput, Session};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The client must finish the connection phase within this time (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Server status flags.
const SERVER_STATUS_IN_TRANS: u16 = 1;
const SERVER_STATUS_AUTOCOMMIT: u16 = 2;
const SERVER_MORE_RESULTS_EXISTS: u16 = 8;

/// A statement prepared with COM_STMT_PREPARE.
struct Prepared {
    statement: PreparedStatement,
    bound: Vec<BoundType>,
    long_data: HashMap<u16, Vec<u8>>,
    /// COM_STMT_SEND_LONG_DATA sent more than max_allowed_packet in all: the next execute
    /// fails.
    long_data_overflow: bool,
}

/// The most a client may send before it has logged in.
const MAX_HANDSHAKE_PACKET: usize = 64 << 10;

struct Connection {
    io: PacketIo<MaybeTls>,
    shared: Arc<Shared>,
    session: Session,
    capabilities: u32,
    prepared: HashMap<u32, Prepared>,
    next_statement: u32,
    multi_statements: bool,
    user: String,
}

/// Runs one connection until the client quits, breaks the protocol, or `cancel` fires.
pub async fn serve(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let id = shared.next_connection_id();
    let io = PacketIo::new(MaybeTls::Plain(stream));
    let handshake = tokio::time::timeout(CONNECT_TIMEOUT, handshake(io, &shared, id, peer));
    let Ok(result) = handshake.await else {
        return Ok(());
    };
    let (mut io, login) = result?;
    let Some((user, capabilities, database)) = login else {
        return io.flush().await;
    };
    let mut session = shared.engine.new_mysql_session(&user, id);
    session.set_mysql_ssl_cipher(io.stream.cipher());
    if let Some(db) = database
        && let Err(e) = session.use_database(&db)
    {
        let e = MySqlError::from_engine(&e, &db);
        io.write(&err_packet(e.code, e.sqlstate, &e.message));
        return io.flush().await;
    }
    let mut conn = Connection {
        io,
        shared,
        session,
        capabilities,
        prepared: HashMap::new(),
        next_statement: 1,
        multi_statements: capabilities & auth::CLIENT_MULTI_STATEMENTS != 0,
        user,
    };
    let ok = ok_packet(0, 0, 0, conn.status(), 0, "");
    conn.io.write(&ok);
    let result = conn.serve_commands(&cancel).await;
    // However the connection ended, its session ends too (temporary tables go).
    conn.session.close().await;
    result
}

impl Connection {
    async fn serve_commands(&mut self, cancel: &CancellationToken) -> std::io::Result<()> {
        let conn = self;
        conn.io.flush().await?;
        loop {
            let request = tokio::select! {
                r = conn.io.read() => r,
                _ = cancel.cancelled() => {
                    let e = MySqlError::new(1053, "08S01", "Server shutdown in progress");
                    conn.io.reset_seq();
                    conn.io.write(&err_packet(e.code, e.sqlstate, &e.message));
                    return conn.io.flush().await;
                }
            };
            let payload = match request {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(()),
                Err(ReadError::TooLarge) => {
                    let e = MySqlError::new(
                        1153,
                        "08S01",
                        format!(
                            "Got a packet bigger than 'max_allowed_packet' bytes ({MAX_ALLOWED_PACKET})"
                        ),
                    );
                    conn.error(&e);
                    return conn.io.flush().await;
                }
                Err(ReadError::Io(e)) => return Err(e),
            };
            if !conn.command(&payload).await {
                conn.io.flush().await?;
                return Ok(());
            }
            conn.io.flush().await?;
        }
    }
}

/// The user, the client's capabilities and the database it asked for, once logged in.
type Login = (String, u32, Option<String>);

/// The connection phase, on a stream that may switch to TLS on the way: the stream, and the
/// login (`None` after an error packet, queued for the caller to flush, or a client that left).
async fn handshake(
    mut io: PacketIo<MaybeTls>,
    shared: &Shared,
    id: u32,
    peer: std::net::SocketAddr,
) -> std::io::Result<(PacketIo<MaybeTls>, Option<Login>)> {
    let scramble = auth::scramble();
    io.write(&auth::greeting(
        &shared.server_version,
        id,
        &scramble,
        SERVER_STATUS_AUTOCOMMIT,
        shared.tls.is_some(),
    ));
    io.flush().await?;
    let Ok(Some(mut payload)) = io.read_limited(MAX_HANDSHAKE_PACKET).await else {
        return Ok((io, None));
    };
    if auth::is_ssl_request(&payload) {
        let Some(tls) = shared.tls.clone() else {
            // TLS is not offered in the greeting; a client that asks anyway gets a clean error.
            io.write(&err_packet(
                1043,
                "08S01",
                "Bad handshake: SSL is not enabled on this server",
            ));
            return Ok((io, None));
        };
        // SSLRequest: the TLS handshake, then the handshake response again, encrypted.
        let (stream, seq) = io.into_parts();
        io = PacketIo::from_parts(stream.accept(tls).await?, seq);
        payload = match io.read_limited(MAX_HANDSHAKE_PACKET).await {
            Ok(Some(p)) => p,
            _ => return Ok((io, None)),
        };
    }
    authenticate(io, shared, &scramble, &payload, peer).await
}

/// Checks the handshake response `payload` (asking the client again when it answered for
/// another plugin).
async fn authenticate(
    mut io: PacketIo<MaybeTls>,
    shared: &Shared,
    scramble: &[u8; 20],
    payload: &[u8],
    peer: std::net::SocketAddr,
) -> std::io::Result<(PacketIo<MaybeTls>, Option<Login>)> {
    let Ok(response) = auth::parse_response(payload) else {
        io.write(&err_packet(1043, "08S01", "Bad handshake"));
        return Ok((io, None));
    };
    let host = peer.ip().to_string();
    let credential =
        match crate::credentials::lookup(&shared.engine, &shared.users, &response.user).await {
            Ok(c) => c,
            Err(e) => {
                let e = MySqlError::from_engine(&e, "");
                io.write(&err_packet(e.code, e.sqlstate, &e.message));
                return Ok((io, None));
            }
        };
    let mut plugin = response.plugin.as_str();
    let mut answer = response.auth_response.clone();
    if plugin.is_empty() {
        plugin = NATIVE_PASSWORD;
    }
    if plugin != NATIVE_PASSWORD && plugin != CACHING_SHA2 {
        plugin = NATIVE_PASSWORD;
        answer.clear();
    }
    // A catalog role keeps only SHA1(SHA1(password)), which checks a mysql_native_password
    // answer but not a caching_sha2_password one: such a client is asked to switch.
    let native_hash = match &credential {
        Some(Credential::Role { native, .. }) => native.clone(),
        _ => None,
    };
    if native_hash.is_some() && plugin == CACHING_SHA2 {
        plugin = NATIVE_PASSWORD;
        answer.clear();
    }
    let password = match &credential {
        Some(Credential::Cleartext(p)) => Some(p.as_str()),
        _ => None,
    };
    // A client whose first answer was for another plugin than the greeting's sends nothing and
    // waits to be asked again (Protocol::AuthSwitchRequest) for its plugin's answer.
    let answer_len = if plugin == CACHING_SHA2 { 32 } else { 20 };
    let has_password = native_hash.is_some() || password.is_some_and(|p| !p.is_empty());
    if has_password && answer.len() != answer_len {
        let mut p = vec![0xFE];
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p.extend_from_slice(scramble);
        p.push(0);
        io.write(&p);
        io.flush().await?;
        let Ok(Some(switched)) = io.read_limited(MAX_HANDSHAKE_PACKET).await else {
            return Ok((io, None));
        };
        answer = switched;
    }
    // An empty password is answered with nothing (or a lone NUL).
    if !has_password && answer == [0] {
        answer.clear();
    }
    let accepted = match (&native_hash, password) {
        (Some(hash2), _) => auth::native_hash_matches(hash2, scramble, &answer),
        (None, Some(pw)) => auth::same(&answer, &auth::expected_response(plugin, pw, scramble)),
        (None, None) => false,
    };
    if !accepted {
        let e = MySqlError::access_denied(&response.user, &host, !answer.is_empty());
        io.write(&err_packet(e.code, e.sqlstate, &e.message));
        return Ok((io, None));
    }
    if plugin == CACHING_SHA2 && has_password {
        // fast_auth_success: the next packet is the OK.
        io.write(&[0x01, 0x03]);
    }
    let capabilities = response.capabilities & auth::SERVER_CAPABILITIES;
    Ok((io, Some((response.user, capabilities, response.database))))
}

impl Connection {
    fn deprecate_eof(&self) -> bool {
        self.capabilities & auth::CLIENT_DEPRECATE_EOF != 0
    }

    fn status(&self) -> u16 {
        status_flags(&self.session.mysql_status(), false)
    }

    fn error(&mut self, e: &MySqlError) {
        self.io.write(&err_packet(e.code, e.sqlstate, &e.message));
    }

    fn engine_error(&mut self, e: &ThunderError) {
        let db = self.session.mysql_status().database.unwrap_or_default();
        let e = MySqlError::from_engine(e, &db);
        self.error(&e);
    }

    fn ok(&mut self, affected: u64, more: bool) {
        let s = self.session.mysql_status();
        let status = status_flags(&s, more);
        self.io.write(&ok_packet(
            0,
            affected,
            s.last_insert_id,
            status,
            s.warnings,
            "",
        ));
    }

    /// Answers one command; `false` ends the connection.
    async fn command(&mut self, payload: &[u8]) -> bool {
        let Some((&code, body)) = payload.split_first() else {
            self.error(&MySqlError::malformed());
            return true;
        };
        match code {
            // COM_QUIT
            0x01 => return false,
            // COM_INIT_DB
            0x02 => {
                let db = String::from_utf8_lossy(body).into_owned();
                match self.session.use_database(&db) {
                    Ok(()) => self.ok(0, false),
                    Err(e) => self.engine_error(&e),
                }
            }
            // COM_QUERY
            0x03 => match std::str::from_utf8(body) {
                Ok(sql) => self.query(sql).await,
                Err(_) => self.error(&MySqlError::new(
                    1300,
                    "HY000",
                    "Invalid utf8mb4 character string in the query",
                )),
            },
            // COM_FIELD_LIST
            0x04 => self.field_list(body).await,
            // COM_STATISTICS: a plain string, no OK.
            0x09 => {
                let text = format!(
                    "Uptime: {}  Threads: {}  Questions: {}  Slow queries: 0  Opens: 0  Open tables: 0  Queries per second avg: 0.000",
                    self.shared.started.elapsed().as_secs(),
                    self.shared.connections(),
                    self.shared.questions(),
                );
                self.io.write(text.as_bytes());
            }
            // COM_PING
            0x0E => self.ok(0, false),
            // COM_STMT_PREPARE
            0x16 => match std::str::from_utf8(body) {
                Ok(sql) => self.prepare(sql).await,
                Err(_) => self.error(&MySqlError::malformed()),
            },
            // COM_STMT_EXECUTE
            0x17 => self.execute(body).await,
            // COM_STMT_SEND_LONG_DATA: no reply.
            0x18 => {
                let mut r = Reader::new(body);
                if let (Ok(id), Ok(param)) = (r.u32(), r.u16())
                    && let Some(p) = self.prepared.get_mut(&id)
                {
                    let chunk = r.rest();
                    let total: usize = p.long_data.values().map(Vec::len).sum();
                    if usize::from(param) >= p.statement.param_types.len()
                        || total + chunk.len() > MAX_ALLOWED_PACKET
                    {
                        p.long_data_overflow = true;
                    } else {
                        p.long_data
                            .entry(param)
                            .or_default()
                            .extend_from_slice(chunk);
                    }
                }
            }
            // COM_STMT_CLOSE: no reply.
            0x19 => {
                if let Ok(id) = Reader::new(body).u32() {
                    self.prepared.remove(&id);
                }
            }
            // COM_STMT_RESET
            0x1A => match Reader::new(body).u32() {
                Ok(id) => match self.prepared.get_mut(&id) {
                    Some(p) => {
                        p.long_data.clear();
                        p.long_data_overflow = false;
                        self.ok(0, false);
                    }
                    None => self.error(&MySqlError::unknown_statement(id, "mysqld_stmt_reset")),
                },
                Err(_) => self.error(&MySqlError::malformed()),
            },
            // COM_SET_OPTION: multi-statements on (0) or off (1); answered with EOF.
            0x1B => match Reader::new(body).u16() {
                Ok(option @ (0 | 1)) => {
                    self.multi_statements = option == 0;
                    let status = self.status();
                    self.io.write(&eof_packet(status, 0));
                }
                _ => self.error(&MySqlError::unknown_command()),
            },
            // COM_RESET_CONNECTION: a fresh session, same user and database.
            0x1F => {
                let db = self.session.mysql_status().database;
                self.session = self
                    .shared
                    .engine
                    .new_mysql_session(&self.user, self.session.mysql_status().connection_id);
                if let Some(db) = db {
                    let _ = self.session.use_database(&db);
                }
                self.session.set_mysql_ssl_cipher(self.io.stream.cipher());
                self.prepared.clear();
                self.ok(0, false);
            }
            _ => self.error(&MySqlError::unknown_command()),
        }
        true
    }

    async fn query(&mut self, sql: &str) {
        self.shared.count_question();
        if !self.multi_statements {
            match self.session.statement_count(sql) {
                Ok(n) if n > 1 => {
                    let e = ThunderError::new(
                        thunderdb_common::SqlState::SYNTAX_ERROR,
                        "multiple statements need the CLIENT_MULTI_STATEMENTS capability",
                    );
                    return self.engine_error(&e);
                }
                Ok(_) => {}
                Err(e) => return self.engine_error(&e),
            }
        }
        let results = self.session.execute_batch(sql).await;
        let count = results.len();
        for (i, result) in results.into_iter().enumerate() {
            let more = i + 1 < count;
            match result {
                Ok(output) => {
                    if let Err(e) = self.output(output, more, false) {
                        return self.error(&e);
                    }
                }
                Err(e) => return self.engine_error(&e),
            }
        }
    }

    /// Writes one statement's result.
    fn output(&mut self, output: QueryOutput, more: bool, binary: bool) -> Result<(), MySqlError> {
        match output {
            QueryOutput::Rows {
                schema, batches, ..
            } => self.result_set(&schema, &batches, more, binary),
            QueryOutput::Command(tag) => {
                self.ok(tag.rows.unwrap_or(0), more);
                Ok(())
            }
            QueryOutput::Empty => {
                self.ok(0, more);
                Ok(())
            }
            // COPY is PostgreSQL's; MySQL's dialect never produces it.
            QueryOutput::CopyOut { .. } | QueryOutput::CopyIn(_) => Err(MySqlError::new(
                1235,
                "42000",
                "This version of ThunderDB doesn't yet support 'COPY over the MySQL protocol'",
            )),
        }
    }

    fn column_defs(&mut self, schema: &SchemaRef) {
        let db = self.session.mysql_status().database.unwrap_or_default();
        for field in schema.fields() {
            let mut def = ColumnDef::of_field(field);
            def.schema.clone_from(&db);
            self.io.write(&def.encode(None));
        }
        if !self.deprecate_eof() {
            let status = self.status();
            self.io.write(&eof_packet(status, 0));
        }
    }

    fn result_set(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        more: bool,
        binary: bool,
    ) -> Result<(), MySqlError> {
        // Encode every row first: a value that cannot be sent must become an error packet,
        // not a result set cut short.
        let mut rows = Vec::new();
        let mut scratch = String::new();
        for batch in batches {
            let columns = results::normalize(batch).map_err(to_mysql)?;
            for row in 0..batch.num_rows() {
                let encoded = if binary {
                    binary_row(&columns, row, &mut scratch)
                } else {
                    text_row(&columns, row, &mut scratch)
                };
                rows.push(encoded.map_err(to_mysql)?);
            }
        }
        let mut count = Vec::new();
        super::packet::put_lenenc_int(&mut count, schema.fields().len() as u64);
        self.io.write(&count);
        self.column_defs(schema);
        for row in rows {
            self.io.write(&row);
        }
        let s = self.session.mysql_status();
        let status = status_flags(&s, more);
        if self.deprecate_eof() {
            self.io
                .write(&ok_packet(0xFE, 0, 0, status, s.warnings, ""));
        } else {
            self.io.write(&eof_packet(status, s.warnings));
        }
        Ok(())
    }

    async fn field_list(&mut self, body: &[u8]) {
        let mut r = Reader::new(body);
        let table = match r.cstr() {
            Ok(t) => String::from_utf8_lossy(t).into_owned(),
            Err(_) => String::from_utf8_lossy(body).into_owned(),
        };
        match self.session.field_list(&table).await {
            Ok(fields) => {
                let db = self.session.mysql_status().database.unwrap_or_default();
                for (field, default) in fields {
                    let mut def = ColumnDef::of_field(&field);
                    def.schema.clone_from(&db);
                    def.table.clone_from(&table);
                    self.io
                        .write(&def.encode(Some(default.as_deref().map(str::as_bytes))));
                }
                let status = self.status();
                if self.deprecate_eof() {
                    self.io.write(&ok_packet(0xFE, 0, 0, status, 0, ""));
                } else {
                    self.io.write(&eof_packet(status, 0));
                }
            }
            Err(e) => self.engine_error(&e),
        }
    }

    async fn prepare(&mut self, sql: &str) {
        // MySQL's max_prepared_stmt_count (per connection here).
        const MAX_PREPARED: usize = 16_382;
        if self.prepared.len() >= MAX_PREPARED {
            return self.error(&MySqlError::new(
                1461,
                "42000",
                format!("Can't create more than max_prepared_stmt_count statements (current value: {MAX_PREPARED})"),
            ));
        }
        let statement = match self.session.prepare_mysql(sql).await {
            Ok(s) => s,
            Err(e) => return self.engine_error(&e),
        };
        let id = self.next_statement;
        self.next_statement = self.next_statement.wrapping_add(1).max(1);
        let params = statement.param_types.len();
        let columns = statement
            .result_schema
            .as_ref()
            .map_or(0, |s| s.fields().len());
        if params > usize::from(u16::MAX) || columns > usize::from(u16::MAX) {
            return self.error(&MySqlError::new(
                1390,
                "HY000",
                "Prepared statement contains too many placeholders or columns",
            ));
        }
        let mut p = vec![0];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&(columns as u16).to_le_bytes());
        p.extend_from_slice(&(params as u16).to_le_bytes());
        p.push(0);
        p.extend_from_slice(&0u16.to_le_bytes());
        self.io.write(&p);
        if params > 0 {
            for _ in 0..params {
                self.io.write(&ColumnDef::param().encode(None));
            }
            if !self.deprecate_eof() {
                let status = self.status();
                self.io.write(&eof_packet(status, 0));
            }
        }
        if let Some(schema) = statement.result_schema.clone()
            && !schema.fields().is_empty()
        {
            self.column_defs(&schema);
        }
        self.prepared.insert(
            id,
            Prepared {
                statement,
                bound: Vec::new(),
                long_data: HashMap::new(),
                long_data_overflow: false,
            },
        );
    }

    async fn execute(&mut self, body: &[u8]) {
        self.shared.count_question();
        let mut r = Reader::new(body);
        let (Ok(id), Ok(_flags), Ok(_iterations)) = (r.u32(), r.u8(), r.u32()) else {
            return self.error(&MySqlError::malformed());
        };
        let Some(prepared) = self.prepared.get_mut(&id) else {
            return self.error(&MySqlError::unknown_statement(id, "mysqld_stmt_execute"));
        };
        if std::mem::take(&mut prepared.long_data_overflow) {
            prepared.long_data.clear();
            return self.error(&MySqlError::new(
                1153,
                "08S01",
                format!(
                    "Got a packet bigger than 'max_allowed_packet' bytes ({MAX_ALLOWED_PACKET})"
                ),
            ));
        }
        let count = prepared.statement.param_types.len();
        let values = match read_params(&mut r, count, &mut prepared.bound, &mut prepared.long_data)
        {
            Ok(v) => v,
            Err(_) => {
                return self.error(&MySqlError::new(
                    1210,
                    "HY000",
                    "Incorrect arguments to mysqld_stmt_execute",
                ));
            }
        };
        let statement = prepared.statement.clone();
        let mut params = Vec::with_capacity(values.len());
        for (value, ty) in values.into_iter().zip(&statement.param_types) {
            match value.cast_to(ty) {
                Ok(v) => params.push(v),
                Err(_) => {
                    return self.error(&MySqlError::new(
                        1210,
                        "HY000",
                        format!("Incorrect arguments to mysqld_stmt_execute: {value} is not a valid {ty}"),
                    ));
                }
            }
        }
        match self.session.execute_prepared(&statement, params).await {
            Ok(output) => {
                if let Err(e) = self.output(output, false, true) {
                    self.error(&e);
                }
            }
            Err(e) => self.engine_error(&e),
        }
    }
}

/// The server status flags of an OK or EOF packet; `more` when another result follows.
fn status_flags(s: &MySqlStatus, more: bool) -> u16 {
    let mut flags = 0;
    if s.in_transaction {
        flags |= SERVER_STATUS_IN_TRANS;
    }
    if s.autocommit {
        flags |= SERVER_STATUS_AUTOCOMMIT;
    }
    if more {
        flags |= SERVER_MORE_RESULTS_EXISTS;
    }
    flags
}

fn to_mysql(e: crate::error::Error) -> MySqlError {
    MySqlError::new(1105, "HY000", e.to_string())
}
