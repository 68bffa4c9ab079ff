//! The pageserver: follows the WAL and materializes LSN-versioned rows, answering `get` and
//! `scan` at any LSN it holds (waiting until it has applied it).
//!
//! Recent versions live in an in-memory layer; older ones in immutable layer files (deltas
//! and images) in object storage, read through a local block cache. See `server.rs`.

pub mod grpc;
pub mod layer_file;
mod layers;
mod memory_layer;
pub mod remote;
mod server;

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use thunderdb_common::{Lsn, SqlState, ThunderError};

pub use grpc::RemotePageService;
pub use remote::{RemoteStorage, SegmentFile, SegmentMeta};
pub use server::{LocalPageServer, PageServerOptions};

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
    /// Object storage, a layer file or the block cache failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The layers for reads at this LSN have been collected.
    #[error("snapshot too old: LSN {lsn} is below the oldest readable LSN {oldest}")]
    SnapshotTooOld { lsn: Lsn, oldest: Lsn },
    /// A remote pageserver did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A request the pageserver refuses as malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<PageError> for ThunderError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::ShuttingDown => ThunderError::new(
                SqlState::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command",
            ),
            PageError::SnapshotTooOld { .. } => {
                ThunderError::new(SqlState::SNAPSHOT_TOO_OLD, "snapshot too old")
                    .with_detail(e.to_string())
            }
            PageError::Storage(_) => ThunderError::new(SqlState::IO_ERROR, e.to_string()),
            PageError::Invalid(_) => ThunderError::internal(e.to_string()),
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
    /// Writes everything applied so far to object storage; returns the LSN that is now safe
    /// there.
    async fn checkpoint(&self) -> Result<Lsn, PageError>;
    /// The layers held and how far object storage is behind, for the storage view.
    fn storage_report(&self) -> StorageReport;

    /// Every key in `[start, end)` whose newest version at or below `at` is newer than
    /// `since`, with that version (`None`: deleted), in key order, at most `limit`: what
    /// changed between two snapshots. Refused with `SnapshotTooOld` when `since` is below the
    /// oldest readable LSN, and as an error when `since` is after `at`.
    async fn changes(
        &self,
        start: &[u8],
        end: &[u8],
        since: Lsn,
        at: Lsn,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Option<Value>)>, PageError>;
    /// Per table id, the row writes (primary index keys) applied since this pageserver
    /// started: a count that moves when a table changes.
    fn row_writes(&self) -> HashMap<u32, u64>;
    /// Where segments and layers are stored.
    fn object_storage(&self) -> RemoteStorage;
    /// The newest columnar segment of each table that has one.
    fn segments(&self) -> Vec<Arc<SegmentMeta>>;
    /// Replaces tables' segments in one manifest write. Each change applies only when the
    /// table's segment is still the one at `previous` (none: no segment) and does not go back
    /// in LSN; returns, per change, whether it applied. The files of replaced segments are
    /// deleted once no scan can read them.
    async fn change_segments(&self, changes: Vec<SegmentChange>) -> Result<Vec<bool>, PageError>;
    /// Where compute reaches it, for the cluster view.
    fn address(&self) -> String {
        "in-process".into()
    }
    /// Whether it answers now (a remote pageserver's status stream is open).
    fn reachable(&self) -> bool {
        true
    }
}

/// A table's segment replaced by a newer one (or dropped, with its table).
#[derive(Clone, Debug)]
pub struct SegmentChange {
    pub table: u32,
    /// The LSN of the segment this one replaces, as the writer saw it.
    pub previous: Option<Lsn>,
    pub segment: Option<SegmentMeta>,
}

/// One layer, as the storage view lists it.
#[derive(Clone, Debug)]
pub struct LayerReport {
    /// `memory` (open), `frozen` (waiting to be written), `delta` or `image`.
    pub kind: &'static str,
    /// Object name of a file layer.
    pub name: String,
    pub lsn_start: Lsn,
    pub lsn_end: Lsn,
    pub bytes: u64,
    /// Versions in a file, keys in memory.
    pub entries: u64,
    /// First and last key of a file, hex.
    pub key_start: String,
    pub key_last: String,
}

/// The pageserver's storage: where it is, how far it is, and its layers.
#[derive(Clone, Debug)]
pub struct StorageReport {
    pub location: String,
    pub applied_lsn: Lsn,
    /// Object storage holds every record up to here.
    pub consistent_lsn: Lsn,
    pub min_readable_lsn: Lsn,
    pub layers: Vec<LayerReport>,
    pub segments: Vec<Arc<SegmentMeta>>,
}
