//! The state machine: validates each commit in log order (so every replica reaches the same
//! verdict and the first committer wins), assigns LSNs, and keeps the committed WAL records that
//! subscribers stream.
//!
//! Its state is derived from the Raft log: at start it loads its newest snapshot and openraft
//! re-applies the log after it up to the committed marker. A snapshot serializes the whole
//! state (the conflict index, the recent outcomes and the records not yet released) into
//! `snapshot.bin`; openraft then purges the log it covers, and sends it to followers that fell
//! behind the purged log.

use super::{Entry, LogId, NodeId, StorageError, TypeConfig};
use crate::{CommitOutcome, CommitRequest};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thunderdb_common::wal::WalRecord;
use thunderdb_common::{Lsn, TxnId};
use tokio::sync::watch;

/// One Raft entry's worth of commits (group commit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitBatch {
    /// Leader's clock when the batch was formed; becomes each record's commit time.
    pub commit_time_micros: i64,
    pub requests: Vec<CommitRequest>,
}

impl std::fmt::Display for CommitBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommitBatch({} commits)", self.requests.len())
    }
}

/// How many recent commit outcomes are remembered for retried commits.
const REMEMBERED_OUTCOMES: usize = 100_000;

/// The committed log and the conflict index, shared with readers.
#[derive(Default, Serialize, Deserialize)]
pub struct LogState {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    /// `records[i]` has LSN `first_lsn + i`.
    first_lsn: u64,
    records: VecDeque<Arc<WalRecord>>,
    /// Every key ever written and the LSN of its latest write.
    last_write: BTreeMap<Vec<u8>, Lsn>,
    outcomes: HashMap<TxnId, CommitOutcome>,
    outcome_order: VecDeque<TxnId>,
}

impl LogState {
    pub fn last_lsn(&self) -> Lsn {
        Lsn((self.first_lsn + self.records.len() as u64).saturating_sub(1))
    }

    /// Records with LSN >= `from`, at most `max`.
    pub fn records_from(&self, from: Lsn, max: usize) -> Vec<Arc<WalRecord>> {
        let start = from.0.saturating_sub(self.first_lsn) as usize;
        self.records.iter().skip(start).take(max).cloned().collect()
    }

    pub fn first_lsn(&self) -> Lsn {
        Lsn(self.first_lsn)
    }

    /// Drops the records below `lsn` (they are safe elsewhere); the conflict index keeps
    /// every key, so validation is unchanged.
    pub fn release_before(&mut self, lsn: Lsn) {
        let upto = lsn.0.min(self.last_lsn().0 + 1);
        while self.first_lsn < upto && self.records.pop_front().is_some() {
            self.first_lsn += 1;
        }
    }

    fn validate(&self, req: &CommitRequest) -> Option<CommitOutcome> {
        let newer = |key: &[u8]| {
            self.last_write
                .get(key)
                .filter(|&&lsn| lsn > req.snapshot_lsn)
                .copied()
        };
        for w in &req.writes {
            if let Some(lsn) = newer(&w.key) {
                return Some(CommitOutcome::Conflict {
                    key: w.key.clone(),
                    committed_at: lsn,
                });
            }
        }
        for k in &req.read_keys {
            if let Some(lsn) = newer(k) {
                return Some(CommitOutcome::Conflict {
                    key: k.clone(),
                    committed_at: lsn,
                });
            }
        }
        for (start, end) in &req.read_ranges {
            if start >= end {
                continue;
            }
            let hit = self
                .last_write
                .range(start.clone()..end.clone())
                .find(|(_, lsn)| **lsn > req.snapshot_lsn);
            if let Some((k, lsn)) = hit {
                return Some(CommitOutcome::Conflict {
                    key: k.clone(),
                    committed_at: *lsn,
                });
            }
        }
        None
    }

    fn apply_commit(&mut self, req: CommitRequest, commit_time_micros: i64) -> CommitOutcome {
        if let Some(previous) = self.outcomes.get(&req.txn_id) {
            return previous.clone();
        }
        let outcome = match self.validate(&req) {
            Some(conflict) => conflict,
            None => {
                let lsn = self.last_lsn().next();
                for w in &req.writes {
                    self.last_write.insert(w.key.clone(), lsn);
                }
                self.records.push_back(Arc::new(WalRecord {
                    lsn,
                    txn_id: req.txn_id,
                    commit_time_micros,
                    writes: req.writes,
                }));
                CommitOutcome::Committed(lsn)
            }
        };
        self.outcomes.insert(req.txn_id, outcome.clone());
        self.outcome_order.push_back(req.txn_id);
        if self.outcome_order.len() > REMEMBERED_OUTCOMES
            && let Some(old) = self.outcome_order.pop_front()
        {
            self.outcomes.remove(&old);
        }
        outcome
    }
}

/// Read access to the committed log for the service and its subscribers.
#[derive(Clone)]
pub struct SharedLog {
    pub state: Arc<RwLock<LogState>>,
    /// The newest committed LSN, for waiters.
    pub committed: watch::Receiver<Lsn>,
}

type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// The newest snapshot, on disk as `snapshot.bin` and in memory for followers that ask.
struct SnapshotStore {
    path: PathBuf,
    current: parking_lot::Mutex<Option<(Meta, Arc<Vec<u8>>)>>,
    /// One save at a time; `current` is held only to compare and to swap.
    saving: parking_lot::Mutex<()>,
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"TWSN";
const SNAPSHOT_VERSION: u16 = 1;

impl SnapshotStore {
    /// `magic | version u16 | len u64 | crc32c u32 | bincode((meta, state bytes))`, written to
    /// a temporary file, fsynced and renamed over the old one.
    /// Saves `meta`'s snapshot unless a newer one is saved already (a build and an install can
    /// race; the older must not replace the newer the log was purged for).
    fn save(&self, meta: &Meta, bytes: Arc<Vec<u8>>) -> std::io::Result<()> {
        use std::io::Write;
        let _one_at_a_time = self.saving.lock();
        let newer_saved = |current: &Option<(Meta, Arc<Vec<u8>>)>| {
            current
                .as_ref()
                .is_some_and(|(saved, _)| saved.last_log_id >= meta.last_log_id)
        };
        if newer_saved(&self.current.lock()) {
            return Ok(());
        }
        let body = bincode::serialize(&(meta, bytes.as_slice())).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(SNAPSHOT_MAGIC)?;
        f.write_all(&SNAPSHOT_VERSION.to_le_bytes())?;
        f.write_all(&(body.len() as u64).to_le_bytes())?;
        f.write_all(&crc32c::crc32c(&body).to_le_bytes())?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        *self.current.lock() = Some((meta.clone(), bytes));
        Ok(())
    }

    fn load(path: &Path) -> std::io::Result<Option<(Meta, Vec<u8>)>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bad = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {what}", path.display()),
            )
        };
        if bytes.len() < 18 || &bytes[..4] != SNAPSHOT_MAGIC {
            return Err(bad("not a ThunderDB WAL snapshot"));
        }
        if bytes[4..6] != SNAPSHOT_VERSION.to_le_bytes() {
            return Err(bad("unsupported snapshot version"));
        }
        let len = u64::from_le_bytes(bytes[6..14].try_into().expect("8 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[14..18].try_into().expect("4 bytes"));
        let body = 18usize
            .checked_add(len)
            .and_then(|end| bytes.get(18..end))
            .ok_or_else(|| bad("truncated"))?;
        if crc32c::crc32c(body) != crc {
            return Err(bad("checksum mismatch"));
        }
        let (meta, state): (Meta, Vec<u8>) =
            bincode::deserialize(body).map_err(|e| bad(&e.to_string()))?;
        Ok(Some((meta, state)))
    }
}

/// The Raft state machine of the WAL group.
pub struct StateMachine {
    state: Arc<RwLock<LogState>>,
    committed: watch::Sender<Lsn>,
    snapshots: Arc<SnapshotStore>,
}

// openraft's StorageError is what the trait methods return; boxing it here would only be
// unboxed at every caller.
#[allow(clippy::result_large_err)]
fn decode_state(meta: &Meta, bytes: &[u8]) -> Result<LogState, StorageError> {
    let mut state: LogState = bincode::deserialize(bytes)
        .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
    state.last_applied = meta.last_log_id;
    state.membership = meta.last_membership.clone();
    Ok(state)
}

impl StateMachine {
    /// The state machine of the node whose files are in `dir`, from its newest snapshot.
    pub fn open(dir: &Path) -> std::io::Result<(StateMachine, SharedLog)> {
        let path = dir.join("snapshot.bin");
        let loaded = SnapshotStore::load(&path)?;
        let mut current = None;
        let state = match loaded {
            Some((meta, bytes)) => {
                let state = decode_state(&meta, &bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                current = Some((meta, Arc::new(bytes)));
                state
            }
            None => LogState {
                first_lsn: 1,
                ..Default::default()
            },
        };
        let last = state.last_lsn();
        let state = Arc::new(RwLock::new(state));
        let (tx, rx) = watch::channel(last);
        Ok((
            StateMachine {
                state: state.clone(),
                committed: tx,
                snapshots: Arc::new(SnapshotStore {
                    path,
                    current: parking_lot::Mutex::new(current),
                    saving: parking_lot::Mutex::new(()),
                }),
            },
            SharedLog {
                state,
                committed: rx,
            },
        ))
    }
}

/// Builds a snapshot of the state and saves it.
pub struct SnapshotBuilder {
    state: Arc<RwLock<LogState>>,
    snapshots: Arc<SnapshotStore>,
}

fn snapshot_id(last: &Option<LogId>) -> String {
    match last {
        Some(l) => format!("{}-{}", l.leader_id, l.index),
        None => "empty".into(),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (bytes, meta) = {
            let g = self.state.read();
            let bytes =
                bincode::serialize(&*g).map_err(|e| StorageIOError::read_state_machine(&e))?;
            let meta = SnapshotMeta {
                last_log_id: g.last_applied,
                last_membership: g.membership.clone(),
                snapshot_id: snapshot_id(&g.last_applied),
            };
            (Arc::new(bytes), meta)
        };
        let store = self.snapshots.clone();
        let (saved_meta, saved) = (meta.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || store.save(&saved_meta, saved))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes.as_ref().clone())),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, openraft::BasicNode>), StorageError> {
        let g = self.state.read();
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<CommitOutcome>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        let last_lsn = {
            let mut g = self.state.write();
            for entry in entries {
                g.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => responses.push(Vec::new()),
                    EntryPayload::Membership(m) => {
                        g.membership = StoredMembership::new(Some(entry.log_id), m);
                        responses.push(Vec::new());
                    }
                    EntryPayload::Normal(batch) => {
                        let t = batch.commit_time_micros;
                        responses.push(
                            batch
                                .requests
                                .into_iter()
                                .map(|r| g.apply_commit(r, t))
                                .collect(),
                        );
                    }
                }
            }
            g.last_lsn()
        };
        self.committed.send_replace(last_lsn);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let new_state = decode_state(meta, &bytes)?;
        let last = new_state.last_lsn();
        let store = self.snapshots.clone();
        let saved_meta = meta.clone();
        tokio::task::spawn_blocking(move || store.save(&saved_meta, Arc::new(bytes)))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *self.state.write() = new_state;
        self.committed.send_replace(last);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self
            .snapshots
            .current
            .lock()
            .as_ref()
            .map(|(meta, bytes)| Snapshot {
                meta: meta.clone(),
                snapshot: Box::new(Cursor::new(bytes.as_ref().clone())),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thunderdb_common::wal::KeyWrite;

    fn req(id: u128, snapshot: u64, keys: &[&[u8]]) -> CommitRequest {
        CommitRequest {
            txn_id: TxnId(id),
            snapshot_lsn: Lsn(snapshot),
            writes: keys
                .iter()
                .map(|k| KeyWrite {
                    key: k.to_vec(),
                    value: Some(vec![1]),
                })
                .collect(),
            read_keys: vec![],
            read_ranges: vec![],
        }
    }

    #[test]
    fn first_committer_wins_and_retries_are_idempotent() {
        let mut s = LogState {
            first_lsn: 1,
            ..Default::default()
        };
        assert_eq!(
            s.apply_commit(req(1, 0, &[b"a"]), 0),
            CommitOutcome::Committed(Lsn(1))
        );
        // Same snapshot, same key: loses.
        assert!(matches!(
            s.apply_commit(req(2, 0, &[b"a"]), 0),
            CommitOutcome::Conflict { .. }
        ));
        // Snapshot after the first commit: wins.
        assert_eq!(
            s.apply_commit(req(3, 1, &[b"a", b"b"]), 0),
            CommitOutcome::Committed(Lsn(2))
        );
        // A retry of txn 1 answers as the first time, without a new record.
        assert_eq!(
            s.apply_commit(req(1, 0, &[b"a"]), 0),
            CommitOutcome::Committed(Lsn(1))
        );
        assert_eq!(s.last_lsn(), Lsn(2));
        assert_eq!(s.records_from(Lsn(2), 10).len(), 1);
    }

    #[test]
    fn read_ranges_conflict_with_later_writes() {
        let mut s = LogState {
            first_lsn: 1,
            ..Default::default()
        };
        s.apply_commit(req(1, 0, &[b"k5"]), 0);
        let mut r = req(2, 0, &[b"z"]);
        r.read_ranges = vec![(b"k0".to_vec(), b"k9".to_vec())];
        assert!(matches!(
            s.apply_commit(r, 0),
            CommitOutcome::Conflict { .. }
        ));
        let mut r = req(3, 1, &[b"z"]);
        r.read_ranges = vec![(b"k0".to_vec(), b"k9".to_vec())];
        assert_eq!(s.apply_commit(r, 0), CommitOutcome::Committed(Lsn(2)));
    }
}
