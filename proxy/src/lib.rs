//! Proxy: the protocol frontends of ThunderDB (PostgreSQL, MySQL, RESP). Terminates client connections, authenticates
//! them and hands their statements to a compute session.

mod accept;
mod credentials;
mod error;
mod mysql;
mod pg;
mod resp;
pub mod router;
mod tls;

pub use error::{Error, Result};
pub use mysql::{MySqlFrontendOptions, serve_mysql};
pub use pg::{AuthMethod as PgAuthMethod, PgFrontendOptions, serve_postgres};
pub use resp::{RespFrontendOptions, serve_resp};
pub use tls::server_config as tls_server_config;
