//! Proxy: the protocol frontends of ThunderDB. Terminates client connections, authenticates
//! them and hands their statements to a compute session.

mod error;
mod pg;

pub use error::{Error, Result};
pub use pg::{PgFrontendOptions, serve_postgres};
