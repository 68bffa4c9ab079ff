//! The MySQL frontend: the MySQL client/server protocol (text and binary), written here
//! rather than taken from `opensrv-mysql` 0.7, which answers a wrong password with error 1698
//! instead of 1045, acknowledges unknown or malformed commands with OK, fakes COM_FIELD_LIST,
//! drops the connection on an unknown statement id, and brings a second rustls and
//! `mysql_common` into the build.
//!
//! Statements run in a compute session in MySQL mode (`Engine::new_mysql_session`): the
//! MySQL dialect, SHOW/DESCRIBE/USE, session variables, AUTO_INCREMENT, over the same tables
//! PostgreSQL clients see.

mod auth;
mod connection;
mod errors;
mod packet;
mod params;
mod results;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use thunderdb_compute::Engine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Settings of the MySQL frontend.
#[derive(Clone, Debug)]
pub struct MySqlFrontendOptions {
    /// Users allowed to log in, as (user, password): the same as SQL's.
    pub users: Vec<(String, String)>,
    /// The version in the greeting and `@@version`, e.g. `8.0.36-ThunderDB`.
    pub server_version: String,
    /// Offered to clients (CLIENT_SSL) when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What all connections share.
pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    pub server_version: String,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) users: Vec<(String, String)>,
    next_id: AtomicU32,
    connected: AtomicU64,
    questions: AtomicU64,
    pub started: std::time::Instant,
}

impl Shared {
    fn next_connection_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn connections(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }

    fn questions(&self) -> u64 {
        self.questions.load(Ordering::Relaxed)
    }

    fn count_question(&self) {
        self.questions.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts MySQL connections on `listener` until `cancel` fires.
pub async fn serve_mysql(
    listener: TcpListener,
    engine: Arc<Engine>,
    opts: MySqlFrontendOptions,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        engine,
        server_version: opts.server_version,
        tls: opts.tls,
        users: opts.users,
        next_id: AtomicU32::new(1),
        connected: AtomicU64::new(0),
        questions: AtomicU64::new(0),
        started: std::time::Instant::now(),
    });
    crate::accept::accept_loop(listener, &cancel, "mysql", |stream, peer| {
        let shared = shared.clone();
        let cancel = cancel.clone();
        async move {
            shared.connected.fetch_add(1, Ordering::Relaxed);
            let served = connection::serve(stream, peer, shared.clone(), cancel).await;
            shared.connected.fetch_sub(1, Ordering::Relaxed);
            served
        }
    })
    .await
}
