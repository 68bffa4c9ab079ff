//! Accepting PostgreSQL connections and running each one on its own task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use pgwire::api::auth::AuthDriver;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{ClientInfo, DefaultClient, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError, SEVERITY_FATAL};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::response::{ErrorResponse, GssEncResponse, SslResponse};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage, SslNegotiationMetaMessage};
use pgwire::tokio::server::{PgWireMessageServerCodec, process_error, process_message};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::auth::{AuthMethod, ReportedParameters, Users};
use super::backend::{Canceller, SessionFactory};
use super::extended::PgStatement;
use super::framing::CheckedStream;
use super::handler::Connection;
use crate::tls::MaybeTls;

/// A client must finish authenticating within this time, as with PostgreSQL's
/// `authentication_timeout`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// State shared by every connection of one listener.
pub(crate) struct Shared {
    pub(crate) factory: Arc<dyn SessionFactory>,
    pub(crate) server_version: String,
    pub(crate) users: Users,
    pub(crate) auth: AuthDriver<ReportedParameters>,
    /// The session canceller behind each (pid, secret key) handed out in `BackendKeyData`.
    pub(crate) cancels: parking_lot::Mutex<HashMap<(i32, Bytes), Canceller>>,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

impl Shared {
    pub(crate) fn new(
        factory: Arc<dyn SessionFactory>,
        users: &[(String, String)],
        auth_method: AuthMethod,
        server_version: String,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        Shared {
            factory,
            server_version,
            tls,
            users: Users::new(users, auth_method),
            auth: AuthDriver::new(ReportedParameters),
            cancels: parking_lot::Mutex::new(HashMap::new()),
        }
    }
}

/// Cancel requests arrive on their own connection and name the target by pid and secret key.
struct CancelRequests(Arc<Shared>);

#[async_trait]
impl CancelHandler for CancelRequests {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let canceller = self
            .0
            .cancels
            .lock()
            .get(&(request.pid, request.secret_key.to_bytes()))
            .cloned();
        match canceller {
            Some(cancel) => {
                tracing::debug!(pid = request.pid, "cancel request");
                cancel();
            }
            // PostgreSQL ignores requests with an unknown key silently, and so do we.
            None => tracing::debug!(pid = request.pid, "cancel request for unknown backend"),
        }
    }
}

/// Accepts connections until `cancel` fires, each served on its own task.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let cancel_requests = Arc::new(CancelRequests(shared.clone()));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a postgres connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let cancel_requests = cancel_requests.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            if let Err(e) = run_connection(socket, shared, cancel_requests, cancel).await {
                tracing::debug!(%peer, error = %e, "postgres connection ended with an I/O error");
            }
        });
    }
    // Connections watch the same token and close themselves; wait for them briefly.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
    Ok(())
}

type Socket = Framed<CheckedStream<MaybeTls>, PgWireMessageServerCodec<PgStatement>>;

async fn run_connection(
    tcp: TcpStream,
    shared: Arc<Shared>,
    cancel_requests: Arc<CancelRequests>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let connection = Arc::new(Connection::new(shared));
    let result = serve_connection(tcp, &connection, cancel_requests, cancel).await;
    // However the connection ended, its session ends too (temporary tables go).
    connection.close_session().await;
    result
}

async fn serve_connection(
    tcp: TcpStream,
    connection: &Arc<Connection>,
    cancel_requests: Arc<CancelRequests>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let peer = tcp.peer_addr()?;
    tcp.set_nodelay(true)?;
    let mut socket: Socket = Framed::new(
        CheckedStream::new(MaybeTls::Plain(tcp)),
        PgWireMessageServerCodec::new(DefaultClient::new(peer, false)),
    );
    let tls = connection.shared().tls.clone();
    let connection = connection.clone();
    let startup_deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_deadline);

    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingSslRequest
                | PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let message = tokio::select! {
            _ = cancel.cancelled() => {
                send_fatal(&mut socket, "57P01", "terminating connection due to administrator command").await;
                return Ok(());
            }
            _ = &mut startup_deadline, if starting => {
                tracing::debug!(%peer, "postgres client did not authenticate in time");
                return Ok(());
            }
            message = socket.next() => message,
        };
        let message = match message {
            None => return Ok(()),
            Some(Ok(message)) => message,
            Some(Err(PgWireError::IoError(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::info!(%peer, error = %e, "closing postgres connection after a malformed message");
                send_fatal(&mut socket, "08P01", &e.to_string()).await;
                return Ok(());
            }
            Some(Err(e)) => {
                tracing::debug!(%peer, error = %e, "postgres connection read failed");
                return Ok(());
            }
        };
        match message {
            // With a certificate: accept, and the rest of the connection is TLS. Without one,
            // refuse; the client continues in plain text if its sslmode allows.
            PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresSsl(_)) => {
                let Some(config) = tls.clone() else {
                    socket
                        .send(PgWireBackendMessage::SslResponse(SslResponse::Refuse))
                        .await?;
                    continue;
                };
                socket
                    .send(PgWireBackendMessage::SslResponse(SslResponse::Accept))
                    .await?;
                let parts = socket.into_parts();
                let unread = !parts.read_buf.is_empty();
                let Some(plain) = parts.io.into_unread_inner().filter(|_| !unread) else {
                    // Bytes after the SSLRequest, before the handshake: not a TLS client.
                    tracing::info!(%peer, "postgres client sent data before its TLS handshake");
                    return Ok(());
                };
                let handshake = tokio::time::timeout(STARTUP_TIMEOUT, plain.accept(config));
                let stream = tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    r = handshake => match r {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "postgres TLS handshake failed");
                            return Ok(());
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "postgres TLS handshake did not finish in time");
                            return Ok(());
                        }
                    },
                };
                let mut client = DefaultClient::new(peer, true);
                client.set_state(PgWireConnectionState::AwaitingStartup);
                socket = Framed::new(
                    CheckedStream::new(stream),
                    PgWireMessageServerCodec::new(client),
                );
                continue;
            }
            PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresGss(_)) => {
                socket
                    .send(PgWireBackendMessage::GssEncResponse(GssEncResponse::Refuse))
                    .await?;
                continue;
            }
            PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::None) => {
                socket.set_state(PgWireConnectionState::AwaitingStartup);
                continue;
            }
            PgWireFrontendMessage::Terminate(_) => return Ok(()),
            _ => {}
        }
        // CopyData/CopyDone/CopyFail belong to the protocol that started the COPY: after an
        // error in an extended-protocol COPY the client still sends Sync.
        let is_extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let is_cancel_request = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        let result = tokio::select! {
            // Shutdown interrupts a running statement; its uncommitted work is discarded with
            // the session, as when a client disconnects.
            _ = cancel.cancelled() => {
                send_fatal(&mut socket, "57P01", "terminating connection due to administrator command").await;
                return Ok(());
            }
            result = process_message(
                message,
                &mut socket,
                connection.clone(),
                connection.clone(),
                connection.clone(),
                connection.clone(),
                cancel_requests.clone(),
            ) => result,
        };
        if let Err(error) = result {
            let fatal = error.is_fatal();
            if fatal {
                tracing::info!(%peer, code = error.code(), error = %error, "postgres connection closed by error");
            } else {
                tracing::debug!(%peer, code = error.code(), error = %error, "postgres request failed");
            }
            process_error(&mut socket, error, is_extended).await?;
            if fatal {
                return Ok(());
            }
        }
        if !matches!(socket.state(), PgWireConnectionState::CopyInProgress(_)) {
            connection.discard_copy_in().await;
        }
        if is_cancel_request {
            return Ok(());
        }
    }
}

/// Best effort: the connection is closing either way.
async fn send_fatal(socket: &mut Socket, code: &str, message: &str) {
    let mut info = ErrorInfo::new(
        SEVERITY_FATAL.to_owned(),
        code.to_owned(),
        message.to_owned(),
    );
    info.severity_nonlocalized = Some(SEVERITY_FATAL.to_owned());
    let _ = socket
        .send(PgWireBackendMessage::ErrorResponse(ErrorResponse::from(
            info,
        )))
        .await;
}
