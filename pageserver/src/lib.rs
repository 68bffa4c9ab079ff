//! The pageserver: follows the WAL and materializes LSN-versioned rows, answering `get` and
//! `scan` at any LSN it has applied (waiting until it has).
//!
//! Today all versions live in an in-memory layer rebuilt from the log at start; layer files in
//! object storage come with the storage issue.

mod memory_layer;

use async_trait::async_trait;
use std::sync::Arc;
use thunderdb_common::{Lsn, SqlState, ThunderError};

pub use memory_layer::{LocalPageServer, PageServerOptions};

/// A row value as stored: shared so reads never copy it.
pub type Value = Arc<[u8]>;

/// Errors of the page service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PageError {
    #[error("timed out waiting for LSN {wanted} (applied {applied})")]
    LsnTimeout { wanted: Lsn, applied: Lsn },
    #[error("pageserver is shutting down")]
    ShuttingDown,
    #[error("WAL stream failed: {0}")]
    Wal(String),
}

impl From<PageError> for ThunderError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::ShuttingDown => ThunderError::new(
                SqlState::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command",
            ),
            other => ThunderError::new(SqlState::UNAVAILABLE, other.to_string()),
        }
    }
}

/// Reads of materialized data at an LSN, as compute sees them (in-process or over gRPC).
#[async_trait]
pub trait PageService: Send + Sync + 'static {
    /// The value of `key` as of `lsn`.
    async fn get(&self, key: &[u8], lsn: Lsn) -> Result<Option<Value>, PageError>;
    /// Live keys in `[start, end)` as of `lsn`, in key order; at most `limit` when given.
    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        lsn: Lsn,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Value)>, PageError>;
    /// The LSN of the newest write at or below `lsn` to a key starting with one of `prefixes`
    /// (index prefixes of the catalog table, as `keys::index_prefix(TableId::CATALOG, …)`
    /// makes them); `Lsn::ZERO` when there is none. Keys under those prefixes are the same at
    /// every LSN from that one on, so compute shares the catalog it decodes across snapshots.
    /// A pageserver that does not hold the whole history must answer with the oldest LSN it
    /// can vouch for rather than `Lsn::ZERO`.
    async fn newest_write(&self, prefixes: &[[u8; 8]], lsn: Lsn) -> Result<Lsn, PageError>;
    /// The LSN of the newest write (a deletion too) of `key` at or below `lsn`; `Lsn::ZERO`
    /// when there is none. Waits until `lsn` is applied, like `get`.
    async fn version_lsn(&self, key: &[u8], lsn: Lsn) -> Result<Lsn, PageError>;
    /// The newest LSN applied.
    fn applied_lsn(&self) -> Lsn;
}
