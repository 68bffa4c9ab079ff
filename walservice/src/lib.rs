//! The WAL service: the Raft-replicated log that *is* the database.
//!
//! Compute sends `{snapshot LSN, write set, read set}`; the log validates it (first committer
//! wins on written keys, read-set validation for SERIALIZABLE), assigns the commit LSN once a
//! quorum has the entry on disk, and streams committed [`WalRecord`]s from any LSN to
//! pageservers and change streams.

mod client;
mod group_commit;
pub mod grpc;
pub mod raft;
mod service;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use thunderdb_common::wal::{KeyWrite, WalRecord};
use thunderdb_common::{Lsn, SqlState, ThunderError, TxnId};

pub use client::{RemoteWalOptions, RemoteWalService};
pub use service::{LocalWalService, NodeStatus, WalServiceOptions, WalTransport};

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

impl CommitRequest {
    /// How much longer than a small commit this one may take: a big commit (a COPY of a large
    /// table) takes longer to send, write, replicate and apply, so a second per 4 MiB.
    pub fn extra_time(&self) -> std::time::Duration {
        let bytes: usize = self
            .writes
            .iter()
            .map(|w| w.key.len() + w.value.as_ref().map_or(0, Vec::len))
            .sum();
        std::time::Duration::from_secs((bytes >> 22) as u64)
    }
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
    /// This node does not lead the group; `leader` is the leader's address when known. A commit
    /// refused this way was not applied.
    #[error("not the WAL leader (leader: {})", leader.as_deref().unwrap_or("unknown"))]
    NotLeader { leader: Option<String> },
    /// A request the service refuses as malformed (an admin command with a bad member list).
    #[error("{0}")]
    Invalid(String),
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
            e @ (WalError::Unavailable(_) | WalError::NotLeader { .. }) => {
                ThunderError::new(SqlState::UNAVAILABLE, e.to_string())
            }
            other => ThunderError::new(SqlState::IO_ERROR, other.to_string()),
        }
    }
}

impl WalError {
    /// The error of a failed commit as its client sees it: when the service did not answer,
    /// the transaction may or may not have committed, and the message says so.
    pub fn into_commit_error(self) -> ThunderError {
        match self {
            WalError::Unavailable(m) => ThunderError::new(
                SqlState::UNAVAILABLE,
                format!("commit outcome unknown: {m}"),
            ),
            other => other.into(),
        }
    }
}

/// One node of the WAL group as the cluster view shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalNodeView {
    pub id: u64,
    pub address: String,
    /// Whether it answered the last status request.
    pub reachable: bool,
    /// `leader`, `follower`, `candidate`, `learner`, `shutdown`, or `unknown` when unreachable.
    pub state: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub applied_lsn: Lsn,
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
    /// The group's nodes as last seen, for the cluster view; never waits.
    fn group_view(&self) -> Vec<WalNodeView>;
}
