//! `LocalWalService`: one Raft node of the WAL group, served in-process.

use crate::group_commit::{self, Reply};
use crate::grpc::GrpcNetwork;
use crate::raft::{
    InProcessNetwork, InProcessRouter, LogStore, NodeId, Raft, SharedLog, StateMachine,
};
use crate::{CommitOutcome, CommitRequest, WalError, WalService, WalStream};
use async_trait::async_trait;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ServerState};
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
    pub transport: WalTransport,
    /// How long a commit may wait for a quorum before it is reported as unavailable.
    pub commit_timeout: Duration,
    /// A snapshot of the state machine is taken after this many log entries, and the log it
    /// covers is purged.
    pub snapshot_after_entries: u64,
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
            transport: WalTransport::InProcess(InProcessRouter::default()),
            commit_timeout: Duration::from_secs(10),
            snapshot_after_entries: 100_000,
        }
    }
}

/// How the nodes of a group reach each other.
#[derive(Clone)]
pub enum WalTransport {
    /// Nodes of one process, through a router (dev and tests).
    InProcess(InProcessRouter),
    /// gRPC to each member's address (the distributed deployment).
    Grpc,
}

/// One node's view of its group, for status views and admin commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: NodeId,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: &'static str,
    pub term: u64,
    pub leader: Option<(NodeId, String)>,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub applied_lsn: Lsn,
    /// Every member: id, address, voter (else learner).
    pub members: Vec<(NodeId, String, bool)>,
    /// Leader only: milliseconds since a quorum acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
}

/// One WAL node: Raft, its disk log, the state machine and the group committer.
pub struct LocalWalService {
    node_id: NodeId,
    raft: Raft,
    log: SharedLog,
    commits: mpsc::Sender<(CommitRequest, Reply)>,
    cancel: CancellationToken,
    commit_timeout: Duration,
    transport: WalTransport,
}

impl LocalWalService {
    /// Opens the log, starts Raft and waits until the group has a leader and this node has
    /// re-applied its log.
    pub async fn start(opts: WalServiceOptions) -> Result<Arc<LocalWalService>, WalError> {
        let storage = |e: std::io::Error| WalError::Storage(e.to_string());
        let log_store = LogStore::open(&opts.data_dir.join("raft"), opts.fsync).map_err(storage)?;
        let pristine = log_store.is_pristine();
        let raft_dir = opts.data_dir.join("raft");
        let (state_machine, log) = StateMachine::open(&raft_dir).map_err(storage)?;
        let config = openraft::Config {
            cluster_name: "thunderdb-wal".into(),
            heartbeat_interval: 50,
            election_timeout_min: 150,
            election_timeout_max: 300,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(
                opts.snapshot_after_entries.max(1),
            ),
            // Keep some log after a snapshot, so a follower a little behind catches up from
            // the log rather than by a snapshot transfer.
            max_in_snapshot_log_to_keep: opts.snapshot_after_entries.clamp(1, 1000),
            ..Default::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| WalError::Storage(e.to_string()))?,
        );
        let raft = match &opts.transport {
            WalTransport::InProcess(router) => {
                let network = InProcessNetwork {
                    router: router.clone(),
                    from: opts.node_id,
                };
                let raft = Raft::new(opts.node_id, config, network, log_store, state_machine)
                    .await
                    .map_err(|e| WalError::Storage(e.to_string()))?;
                router.add(opts.node_id, raft.clone());
                raft
            }
            WalTransport::Grpc => Raft::new(
                opts.node_id,
                config,
                GrpcNetwork::default(),
                log_store,
                state_machine,
            )
            .await
            .map_err(|e| WalError::Storage(e.to_string()))?,
        };
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
            transport: opts.transport,
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

    /// The newest committed LSN, after confirming with a quorum that this node still leads:
    /// a snapshot taken at it sees every commit acknowledged by any leader before the call.
    pub async fn linearizable_last_lsn(&self) -> Result<Lsn, WalError> {
        let confirm = tokio::time::timeout(self.commit_timeout, self.raft.ensure_linearizable());
        match confirm.await {
            Ok(Ok(_)) => Ok(self.log.state.read().last_lsn()),
            Ok(Err(RaftError::APIError(e))) => Err(match e {
                openraft::error::CheckIsLeaderError::ForwardToLeader(f) => WalError::NotLeader {
                    leader: f.leader_node.map(|n| n.addr),
                },
                openraft::error::CheckIsLeaderError::QuorumNotEnough(q) => {
                    let voters = self.status().members.iter().filter(|m| m.2).count();
                    WalError::Unavailable(format!(
                        "no quorum: {} of {voters} WAL voters reachable",
                        q.got.len()
                    ))
                }
            }),
            Ok(Err(RaftError::Fatal(_))) => Err(WalError::ShuttingDown),
            Err(_) => Err(WalError::Unavailable(format!(
                "leadership not confirmed by a quorum within {:?}",
                self.commit_timeout
            ))),
        }
    }

    /// This node's view of the group.
    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let members: Vec<(NodeId, String, bool)> = membership
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone(), voters.contains(id)))
            .collect();
        let leader = m.current_leader.map(|id| {
            let addr = membership
                .get_node(&id)
                .map(|n| n.addr.clone())
                .unwrap_or_default();
            (id, addr)
        });
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        NodeStatus {
            node_id: self.node_id,
            state,
            term: m.current_term,
            leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            applied_lsn: self.log.state.read().last_lsn(),
            members,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }

    /// Makes `voters` the group's voters: members not in it yet join as learners and catch up
    /// first; members left out leave the group. Only the leader changes membership.
    pub async fn change_membership(
        &self,
        voters: BTreeMap<NodeId, String>,
    ) -> Result<NodeStatus, WalError> {
        if voters.is_empty() {
            return Err(WalError::Invalid("a group needs at least one voter".into()));
        }
        let current = self.status();
        for (id, addr) in &voters {
            let known = current.members.iter().find(|(m, _, _)| m == id);
            if let Some((_, known_addr, _)) = known {
                if known_addr != addr {
                    return Err(WalError::Invalid(format!(
                        "node {id} is a member at {known_addr}, not {addr}; remove it first"
                    )));
                }
                continue;
            }
            self.raft
                .add_learner(*id, BasicNode::new(addr), true)
                .await
                .map_err(membership_error)?;
        }
        let ids: std::collections::BTreeSet<NodeId> = voters.keys().copied().collect();
        self.raft
            .change_membership(ids, false)
            .await
            .map_err(membership_error)?;
        Ok(self.status())
    }

    /// Stops the group committer and Raft.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        if let WalTransport::InProcess(router) = &self.transport {
            router.remove(self.node_id);
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

fn membership_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> WalError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => WalError::NotLeader {
            leader: f.leader_node.map(|n| n.addr),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(p),
        )) => WalError::Unavailable(format!("a membership change is in progress: {p}")),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(other)) => {
            WalError::Invalid(other.to_string())
        }
        RaftError::Fatal(_) => WalError::ShuttingDown,
    }
}

#[async_trait]
impl WalService for LocalWalService {
    async fn commit(&self, request: CommitRequest) -> Result<CommitOutcome, WalError> {
        let timeout = self.commit_timeout + request.extra_time();
        let (tx, rx) = oneshot::channel();
        self.commits
            .send((request, tx))
            .await
            .map_err(|_| WalError::ShuttingDown)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(WalError::ShuttingDown),
            Err(_) => Err(WalError::Unavailable(format!(
                "no quorum within {timeout:?}"
            ))),
        }
    }

    async fn last_committed_lsn(&self) -> Result<Lsn, WalError> {
        Ok(self.log.state.read().last_lsn())
    }

    async fn release_before(&self, lsn: Lsn) -> Result<(), WalError> {
        self.log.state.write().release_before(lsn);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use thunderdb_common::TxnId;
    use thunderdb_common::wal::KeyWrite;

    fn commit(snapshot: u64, key: &[u8]) -> CommitRequest {
        CommitRequest {
            txn_id: TxnId::random(),
            snapshot_lsn: Lsn(snapshot),
            writes: vec![KeyWrite {
                key: key.to_vec(),
                value: Some(vec![1]),
            }],
            read_keys: vec![],
            read_ranges: vec![],
        }
    }

    async fn start(dir: &std::path::Path) -> Arc<LocalWalService> {
        let wal = LocalWalService::start(WalServiceOptions {
            snapshot_after_entries: 10,
            ..WalServiceOptions::single(dir.to_owned(), false, 1)
        })
        .await
        .unwrap();
        wal.wait_ready(Duration::from_secs(10)).await.unwrap();
        wal
    }

    /// Released records are gone from subscriptions; a snapshot purges the log, and a restart
    /// from the snapshot keeps the LSNs, the retained records and the conflict index.
    #[tokio::test]
    async fn released_records_go_and_snapshots_survive_restart() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = start(dir.path()).await;
            for i in 0..50u64 {
                let key = format!("k{}", i % 7);
                assert!(matches!(
                    wal.commit(commit(i, key.as_bytes())).await.unwrap(),
                    CommitOutcome::Committed(_)
                ));
            }
            wal.release_before(Lsn(40)).await.unwrap();
            let mut old = wal.subscribe(Lsn(1));
            assert!(matches!(
                old.next().await,
                Some(Err(WalError::Truncated(Lsn(40))))
            ));
            // A snapshot of everything applied (one may be under way already: ask again).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                wal.raft().trigger().snapshot().await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                let m = wal.raft().metrics().borrow().clone();
                if m.snapshot.is_some() && m.snapshot == m.last_applied {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "no snapshot: {m:?}");
            }
            wal.shutdown().await;
        }
        let size = std::fs::metadata(dir.path().join("raft/raft.log"))
            .unwrap()
            .len();
        assert!(dir.path().join("raft/snapshot.bin").is_file());
        let wal = start(dir.path()).await;
        assert_eq!(wal.last_committed_lsn().await.unwrap(), Lsn(50));
        let mut old = wal.subscribe(Lsn(39));
        assert!(matches!(
            old.next().await,
            Some(Err(WalError::Truncated(_)))
        ));
        let mut kept = wal.subscribe(Lsn(40));
        for lsn in 40..=50 {
            assert_eq!(kept.next().await.unwrap().unwrap().lsn, Lsn(lsn));
        }
        // k0 was last written at LSN 50 (i = 49): a snapshot before it still conflicts.
        assert!(matches!(
            wal.commit(commit(49, b"k0")).await.unwrap(),
            CommitOutcome::Conflict { .. }
        ));
        assert_eq!(
            wal.commit(commit(50, b"k0")).await.unwrap(),
            CommitOutcome::Committed(Lsn(51))
        );
        // The purged log was rewritten without the entries the snapshot covers.
        assert!(size < 50 * 60, "raft.log is {size} bytes");
        wal.shutdown().await;
    }
}
