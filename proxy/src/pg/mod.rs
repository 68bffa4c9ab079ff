//! The PostgreSQL wire protocol frontend, on pgwire.

mod auth;
mod backend;
mod binary;
mod copy;
mod encode;
mod extended;
mod framing;
mod handler;
mod input;
mod params;
mod recv;
mod server;
pub(crate) mod text;
pub(crate) mod types;
pub(crate) mod values;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use auth::AuthMethod;

use thunderdb_compute::Engine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Settings of the PostgreSQL frontend.
#[derive(Clone, Debug)]
pub struct PgFrontendOptions {
    /// Users allowed to log in besides the catalog's roles, as (user, password).
    pub users: Vec<(String, String)>,
    /// How clients prove their password.
    pub auth_method: AuthMethod,
    /// Reported as `server_version`, e.g. "15.0"; drivers pick features by it.
    pub server_version: String,
    /// With a TLS configuration an SSLRequest is accepted (`sslmode=require`/`verify-full`);
    /// without one it is refused and the client goes on in plain text (or gives up).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Accepts connections on `listener` until `cancel` fires; each connection gets its own compute
/// session.
pub async fn serve_postgres(
    listener: TcpListener,
    engine: Arc<Engine>,
    opts: PgFrontendOptions,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let factory: Arc<dyn backend::SessionFactory> = Arc::new(engine);
    serve_with(listener, factory, opts, cancel).await
}

async fn serve_with(
    listener: TcpListener,
    factory: Arc<dyn backend::SessionFactory>,
    opts: PgFrontendOptions,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    // Deriving SCRAM verifiers costs a few milliseconds per user; keep it off the runtime.
    let shared = tokio::task::spawn_blocking(move || {
        server::Shared::new(
            factory,
            &opts.users,
            opts.auth_method,
            opts.server_version,
            opts.tls,
        )
    })
    .await
    .map_err(std::io::Error::other)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "postgres frontend listening");
    }
    server::serve(listener, Arc::new(shared), cancel).await
}
