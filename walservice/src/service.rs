//! `LocalWalService`: one Raft node of the WAL group, served in-process.

use crate::group_commit::{self, Reply};
use crate::raft::{
    InProcessNetwork, InProcessRouter, LogStore, NodeId, Raft, SharedLog, StateMachine,
};
use crate::{CommitOutcome, CommitRequest, WalError, WalService, WalStream};
use async_trait::async_trait;
use openraft::BasicNode;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thunderdb_common::Lsn;
use thunderdb_common::wal::WalRecord;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How one WAL node starts.
#[derive(Clone)]
pub struct WalServiceOptions {
    pub node_id: NodeId,
    pub data_dir: PathBuf,
    pub fsync: bool,
    pub group_commit_max: usize,
    /// Voters of a brand-new group, by id and address; this node initializes the group when its
    /// log is empty and it is the lowest id.
    pub initial_members: BTreeMap<NodeId, String>,
    pub router: InProcessRouter,
    /// How long a commit may wait for a quorum before it is reported as unavailable.
    pub commit_timeout: Duration,
}

impl WalServiceOptions {
    /// A one-node group under `data_dir` (the `dev` default).
    pub fn single(data_dir: PathBuf, fsync: bool, group_commit_max: usize) -> Self {
        WalServiceOptions {
            node_id: 1,
            data_dir,
            fsync,
            group_commit_max,
            initial_members: BTreeMap::from([(1, "local".to_string())]),
            router: InProcessRouter::default(),
            commit_timeout: Duration::from_secs(10),
        }
    }
}

/// One WAL node: Raft, its disk log, the state machine and the group committer.
pub struct LocalWalService {
    node_id: NodeId,
    raft: Raft,
    log: SharedLog,
    commits: mpsc::Sender<(CommitRequest, Reply)>,
    cancel: CancellationToken,
    commit_timeout: Duration,
    router: InProcessRouter,
}

impl LocalWalService {
    /// Opens the log, starts Raft and waits until the group has a leader and this node has
    /// re-applied its log.
    pub async fn start(opts: WalServiceOptions) -> Result<Arc<LocalWalService>, WalError> {
        let storage = |e: std::io::Error| WalError::Storage(e.to_string());
        let log_store = LogStore::open(&opts.data_dir.join("raft"), opts.fsync).map_err(storage)?;
        let pristine = log_store.is_pristine();
        let (state_machine, log) = StateMachine::new();
        let config = openraft::Config {
            cluster_name: "thunderdb-wal".into(),
            heartbeat_interval: 50,
            election_timeout_min: 150,
            election_timeout_max: 300,
            snapshot_policy: openraft::SnapshotPolicy::Never,
            ..Default::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| WalError::Storage(e.to_string()))?,
        );
        let network = InProcessNetwork {
            router: opts.router.clone(),
            from: opts.node_id,
        };
        let raft = Raft::new(opts.node_id, config, network, log_store, state_machine)
            .await
            .map_err(|e| WalError::Storage(e.to_string()))?;
        opts.router.add(opts.node_id, raft.clone());
        let lowest = opts.initial_members.keys().next().copied();
        if pristine && lowest == Some(opts.node_id) {
            let members: BTreeMap<NodeId, BasicNode> = opts
                .initial_members
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                tracing::info!(error = %e, "raft group already initialized");
            }
        }
        let (tx, rx) = mpsc::channel(4096);
        let cancel = CancellationToken::new();
        tokio::spawn(group_commit::run(
            raft.clone(),
            rx,
            opts.group_commit_max,
            cancel.clone(),
        ));
        let svc = Arc::new(LocalWalService {
            node_id: opts.node_id,
            raft,
            log,
            commits: tx,
            cancel,
            commit_timeout: opts.commit_timeout,
            router: opts.router,
        });
        Ok(svc)
    }

    /// Waits until the group has a leader and this node has applied everything in its log.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), WalError> {
        self.raft
            .wait(Some(timeout))
            .metrics(
                |m| {
                    m.current_leader.is_some()
                        && m.last_applied.map(|l| l.index) >= m.last_log_index
                },
                "leader elected and log applied",
            )
            .await
            .map(|_| ())
            .map_err(|e| WalError::Unavailable(e.to_string()))
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Stops the group committer and Raft.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.router.remove(self.node_id);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

#[async_trait]
impl WalService for LocalWalService {
    async fn commit(&self, request: CommitRequest) -> Result<CommitOutcome, WalError> {
        let (tx, rx) = oneshot::channel();
        self.commits
            .send((request, tx))
            .await
            .map_err(|_| WalError::ShuttingDown)?;
        match tokio::time::timeout(self.commit_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(WalError::ShuttingDown),
            Err(_) => Err(WalError::Unavailable(format!(
                "no quorum within {:?}",
                self.commit_timeout
            ))),
        }
    }

    async fn last_committed_lsn(&self) -> Result<Lsn, WalError> {
        Ok(self.log.state.read().last_lsn())
    }

    fn subscribe(&self, from: Lsn) -> WalStream {
        struct Cursor {
            log: SharedLog,
            next: Lsn,
            buffer: VecDeque<Arc<WalRecord>>,
            cancel: CancellationToken,
        }
        let cursor = Cursor {
            log: self.log.clone(),
            next: from.max(Lsn(1)),
            buffer: VecDeque::new(),
            cancel: self.cancel.clone(),
        };
        Box::pin(futures::stream::unfold(cursor, |mut c| async move {
            loop {
                if let Some(rec) = c.buffer.pop_front() {
                    c.next = rec.lsn.next();
                    return Some((Ok(rec), c));
                }
                c.log.committed.borrow_and_update();
                {
                    let state = c.log.state.read();
                    if c.next < state.first_lsn() {
                        let first = state.first_lsn();
                        drop(state);
                        c.next = Lsn(u64::MAX);
                        return Some((Err(WalError::Truncated(first)), c));
                    }
                    c.buffer.extend(state.records_from(c.next, 1024));
                }
                if c.buffer.is_empty() {
                    tokio::select! {
                        _ = c.cancel.cancelled() => return None,
                        changed = c.log.committed.changed() => if changed.is_err() { return None },
                    }
                }
            }
        }))
    }
}
