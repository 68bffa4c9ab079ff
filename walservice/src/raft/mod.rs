//! The openraft pieces: type config, the on-disk log store, the state machine, the network.

mod log_store;
mod network;
mod state_machine;

pub use log_store::LogStore;
pub use network::{InProcessNetwork, InProcessRouter};
pub use state_machine::{CommitBatch, SharedLog, StateMachine};

use crate::CommitOutcome;
use std::io::Cursor;

openraft::declare_raft_types!(
    /// Raft types of the WAL group.
    pub TypeConfig:
        D = CommitBatch,
        R = Vec<CommitOutcome>,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
