//! Proxy: the protocol frontends of ThunderDB (PostgreSQL, RESP). Terminates client connections, authenticates
//! them and hands their statements to a compute session.

mod error;
mod pg;
mod resp;

pub use error::{Error, Result};
pub use pg::{PgFrontendOptions, serve_postgres};
pub use resp::{RespFrontendOptions, serve_resp};
