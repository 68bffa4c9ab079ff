//! The WAL service: the Raft-replicated log that *is* the database.
//!
//! Compute sends `{snapshot LSN, write set, read set}`; the log validates it (first committer
//! wins on written keys, read-set validation for SERIALIZABLE), assigns the commit LSN once a
//! quorum has the entry on disk, and streams committed [`WalRecord`]s from any LSN to
//! pageservers and change streams.

mod group_commit;
pub mod raft;
mod service;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use thunderdb_common::wal::{KeyWrite, WalRecord};
use thunderdb_common::{Lsn, SqlState, ThunderError, TxnId};

pub use service::{LocalWalService, WalServiceOptions};

/// A transaction's request to commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRequest {
    /// Idempotency key: a retried commit with the same id gets the first outcome.
    pub txn_id: TxnId,
    /// The snapshot the transaction read at; any write to its keys after it is a conflict.
    pub snapshot_lsn: Lsn,
    pub writes: Vec<KeyWrite>,
    /// Keys read (SERIALIZABLE only): a later write to any of them is a conflict.
    pub read_keys: Vec<Vec<u8>>,
    /// Key ranges scanned, `[start, end)` (SERIALIZABLE only).
    pub read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What became of a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitOutcome {
    Committed(Lsn),
    /// Another transaction committed a conflicting write after the snapshot.
    Conflict {
        key: Vec<u8>,
        committed_at: Lsn,
    },
}

/// Errors of the WAL service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// No quorum or no leader right now; the commit's outcome is unknown and may be retried
    /// with the same transaction id.
    #[error("WAL service unavailable: {0}")]
    Unavailable(String),
    /// The requested LSN is no longer held by the log.
    #[error("WAL before {0} has been truncated")]
    Truncated(Lsn),
    #[error("WAL service is shutting down")]
    ShuttingDown,
    #[error("WAL storage failure: {0}")]
    Storage(String),
}

impl From<WalError> for ThunderError {
    fn from(e: WalError) -> Self {
        match e {
            WalError::ShuttingDown => ThunderError::new(
                SqlState::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command",
            ),
            WalError::Unavailable(m) => ThunderError::new(
                SqlState::UNAVAILABLE,
                format!("commit outcome unknown: {m}"),
            ),
            other => ThunderError::new(SqlState::IO_ERROR, other.to_string()),
        }
    }
}

/// A stream of committed records in LSN order.
pub type WalStream = BoxStream<'static, Result<Arc<WalRecord>, WalError>>;

/// The WAL service as compute and pageservers see it (in-process or over gRPC).
#[async_trait]
pub trait WalService: Send + Sync + 'static {
    /// Validates and commits a transaction; returns once a quorum has it durable.
    async fn commit(&self, request: CommitRequest) -> Result<CommitOutcome, WalError>;
    /// The newest committed LSN: a snapshot taken at it sees every acknowledged commit.
    async fn last_committed_lsn(&self) -> Result<Lsn, WalError>;
    /// Committed records with LSN >= `from`, then new ones as they commit.
    fn subscribe(&self, from: Lsn) -> WalStream;
    /// Records below `lsn` are safe elsewhere (in object storage): the log may drop them, and
    /// a later subscription from below it gets [`WalError::Truncated`]. The log's own files
    /// shrink at its next snapshot.
    async fn release_before(&self, lsn: Lsn) -> Result<(), WalError>;
}
