//! `LocalWalService`: one Raft node of the WAL group, served in-process.

use crate::group_commit::{self, Reply};
use crate::grpc::GrpcNetwork;
use crate::raft::{
    InProcessNetwork, InProcessRouter, LogStore, NodeId, Raft, SharedLog, StateMachine,
};
use crate::{CommitOutcome, CommitRequest, WalError, WalNodeView, WalService, WalStream};
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

    /// This node only: in process, the other members are reached through their own services.
    fn group_view(&self) -> Vec<WalNodeView> {
        let s = self.status();
        let address = s
            .members
            .iter()
            .find(|m| m.0 == s.node_id)
            .map_or_else(String::new, |m| m.1.clone());
        vec![WalNodeView {
            id: s.node_id,
            address,
            reachable: true,
            state: s.state.to_string(),
            term: s.term,
            leader_id: s.leader.map(|l| l.0),
            applied_lsn: s.applied_lsn,
        }]
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
            // One more commit (LSN 51), so the snapshot waited for below is one taken after
            // the release (an automatic one may have covered LSN 50 before it).
            assert!(matches!(
                wal.commit(commit(50, b"z")).await.unwrap(),
                CommitOutcome::Committed(Lsn(51))
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
        assert_eq!(wal.last_committed_lsn().await.unwrap(), Lsn(51));
        let mut old = wal.subscribe(Lsn(39));
        assert!(matches!(
            old.next().await,
            Some(Err(WalError::Truncated(_)))
        ));
        let mut kept = wal.subscribe(Lsn(40));
        for lsn in 40..=51 {
            assert_eq!(kept.next().await.unwrap().unwrap().lsn, Lsn(lsn));
        }
        // k0 was last written at LSN 50 (i = 49): a snapshot before it still conflicts.
        assert!(matches!(
            wal.commit(commit(49, b"k0")).await.unwrap(),
            CommitOutcome::Conflict { .. }
        ));
        assert_eq!(
            wal.commit(commit(50, b"k0")).await.unwrap(),
            CommitOutcome::Committed(Lsn(52))
        );
        // The purged log was rewritten without the entries the snapshot covers.
        assert!(size < 50 * 60, "raft.log is {size} bytes");
        wal.shutdown().await;
    }

    /// A leader cut off from both followers commits nothing: its commit times out (outcome
    /// unknown to the client) and is never applied anywhere. The majority elects a new leader
    /// and goes on; healed, the old leader follows, and every node holds the same records,
    /// every acknowledged commit among them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_isolated_leader_commits_nothing_and_the_majority_goes_on() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let router = InProcessRouter::default();
        let members: BTreeMap<NodeId, String> =
            (1..=3).map(|id| (id, format!("node-{id}"))).collect();
        let mut nodes = Vec::new();
        for id in 1..=3u64 {
            nodes.push(
                LocalWalService::start(WalServiceOptions {
                    node_id: id,
                    initial_members: members.clone(),
                    transport: WalTransport::InProcess(router.clone()),
                    commit_timeout: Duration::from_secs(1),
                    ..WalServiceOptions::single(dir.path().join(format!("n{id}")), false, 8)
                })
                .await
                .unwrap(),
            );
        }
        let leader_of = |nodes: &[Arc<LocalWalService>], not: Option<NodeId>| {
            nodes
                .iter()
                .find(|n| n.status().state == "leader" && Some(n.node_id()) != not)
                .cloned()
        };
        let wait_leader = |not: Option<NodeId>| {
            let nodes = nodes.clone();
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                loop {
                    if let Some(l) = leader_of(&nodes, not) {
                        return l;
                    }
                    assert!(std::time::Instant::now() < deadline, "no leader");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let old = wait_leader(None).await;
        let mut acknowledged = Vec::new();
        for i in 0..5 {
            let r = commit(0, format!("before-{i}").as_bytes());
            assert!(matches!(
                old.commit(r.clone()).await.unwrap(),
                CommitOutcome::Committed(_)
            ));
            acknowledged.push(r.txn_id);
        }
        for other in nodes.iter().filter(|n| n.node_id() != old.node_id()) {
            router.partition(old.node_id(), other.node_id());
        }
        let lost = commit(0, b"isolated");
        let err = old.commit(lost.clone()).await.unwrap_err();
        assert!(matches!(err, WalError::Unavailable(_)), "{err}");
        assert!(old.linearizable_last_lsn().await.is_err());
        let new = wait_leader(Some(old.node_id())).await;
        for i in 0..5 {
            let r = commit(0, format!("after-{i}").as_bytes());
            assert!(matches!(
                new.commit(r.clone()).await.unwrap(),
                CommitOutcome::Committed(_)
            ));
            acknowledged.push(r.txn_id);
        }
        router.heal();
        // Everyone converges on the majority's history.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let last = new.last_committed_lsn().await.unwrap();
        loop {
            let lsns: Vec<Lsn> = nodes.iter().map(|n| n.status().applied_lsn).collect();
            if lsns.iter().all(|l| *l == last) && old.status().state == "follower" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no convergence: {lsns:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for node in &nodes {
            let records: Vec<_> = node
                .subscribe(Lsn(1))
                .take(last.0 as usize)
                .map(|r| r.unwrap())
                .collect()
                .await;
            let txns: Vec<TxnId> = records.iter().map(|r| r.txn_id).collect();
            assert_eq!(txns, acknowledged, "node {}", node.node_id());
            assert!(!txns.contains(&lost.txn_id));
        }
        for node in &nodes {
            node.shutdown().await;
        }
    }
}
