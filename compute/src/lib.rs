//! Compute: stateless SQL over the WAL service and the pageserver.
//!
//! A [`Session`] parses a statement, binds it against the catalog as of the transaction's
//! snapshot LSN, and runs it on DataFusion. Reads go to the pageserver at the snapshot LSN with
//! the transaction's own buffered writes laid over them; `COMMIT` sends the write set (and, for
//! SERIALIZABLE, the read set) to the WAL service. Nothing here is durable: kill a compute node
//! and nothing acknowledged is lost.

mod alter;
mod arrays;
mod catalog;
mod columnar;
mod convert;
mod copy;
mod ddl;
mod decorrelate;
mod dml;
mod engine;
mod enums;
mod error;
mod explain;
mod fastpath;
mod foreign_key;
mod json;
mod locking;
mod mysql;
mod naming;
mod params;
mod pg_arith;
mod pg_catalog;
mod privileges;
mod provider;
pub mod redis;
pub mod roles;
mod row_locks;
mod scalar_fns;
mod schemas;
mod segment_cache;
mod sequence;
mod sequence_sql;
mod session;
mod sql;
mod temporal;
mod txn;
mod types;
mod utility;
mod views;

pub use catalog::RoleDef;
pub use copy::CopyInTarget;
pub use engine::{Engine, EngineOptions};
pub use mysql::MySqlStatus;

/// The version MySQL clients see in the greeting and `@@version` (MySQL 8.0 protocol and
/// variables).
pub const MYSQL_SERVER_VERSION: &str = "8.0.36-ThunderDB";
pub use pg_catalog::SERVER_VERSION;
pub use session::{CancelHandle, CommandTag, PreparedStatement, QueryOutput, Session, TxnStatus};
pub use types::arrow_type;
pub use utility::CopyFormat;

/// Arrow and DataFusion types the proxy needs to encode results and decode parameters.
pub use datafusion::arrow;
pub use datafusion::scalar::ScalarValue;

#[cfg(test)]
mod tests;
