//! `RemoteWalService`: the WAL service of a gRPC group, as compute and pageservers use it.
//!
//! It finds the leader (a follower's refusal names it), follows it when it moves, and retries a
//! commit whose outcome is unknown (the leader died or lost its quorum mid-commit) with the same
//! transaction id: the log remembers outcomes by id, so a commit is never applied twice.

use crate::grpc::{self, MAX_MESSAGE_BYTES};
use crate::{CommitOutcome, CommitRequest, WalError, WalNodeView, WalService, WalStream};
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use thunderdb_common::Lsn;
use thunderdb_common::proto::wal as pb;
use tonic::transport::Channel;

/// How a client reaches a WAL group.
#[derive(Clone, Debug)]
pub struct RemoteWalOptions {
    /// `host:port` of the group's nodes (any of them; the leader is found from there).
    pub nodes: Vec<String>,
    /// How long a commit or a snapshot request keeps trying before it reports the group
    /// unavailable.
    pub request_timeout: Duration,
}

/// A client of a WAL group over gRPC.
pub struct RemoteWalService {
    nodes: Vec<Node>,
    /// Index in `nodes` of the node believed to lead.
    leader: AtomicUsize,
    /// Where the next subscription starts looking.
    next_subscriber: AtomicUsize,
    request_timeout: Duration,
    /// The nodes' statuses, refreshed every [`VIEW_REFRESH`] while the client lives.
    view: parking_lot::RwLock<Vec<WalNodeView>>,
}

struct Node {
    address: String,
    client: pb::wal_client::WalClient<Channel>,
}

/// Pause between rounds over the nodes while no leader answers (an election takes 150-300 ms).
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How often the group view is refreshed.
const VIEW_REFRESH: Duration = Duration::from_secs(1);

impl RemoteWalService {
    pub fn connect(opts: RemoteWalOptions) -> Result<Arc<RemoteWalService>, WalError> {
        if opts.nodes.is_empty() {
            return Err(WalError::Invalid("no WAL node addresses given".into()));
        }
        let mut nodes = Vec::new();
        for address in &opts.nodes {
            let channel = grpc::channel(address, Duration::from_millis(500))?;
            nodes.push(Node {
                address: address.clone(),
                client: pb::wal_client::WalClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            });
        }
        let service = Arc::new(RemoteWalService {
            view: parking_lot::RwLock::new(
                nodes
                    .iter()
                    .map(|n| WalNodeView {
                        id: 0,
                        address: n.address.clone(),
                        reachable: false,
                        state: "unknown".into(),
                        term: 0,
                        leader_id: None,
                        applied_lsn: Lsn::ZERO,
                    })
                    .collect(),
            ),
            nodes,
            leader: AtomicUsize::new(0),
            next_subscriber: AtomicUsize::new(0),
            request_timeout: opts.request_timeout,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(refresh_view(Arc::downgrade(&service)));
        }
        Ok(service)
    }

    /// Each node's status; `Err` for a node that did not answer.
    pub async fn statuses(&self) -> Vec<(String, Result<pb::NodeStatus, WalError>)> {
        let asks = self.nodes.iter().map(|n| async move {
            let mut client = n.client.clone();
            let mut request = tonic::Request::new(pb::StatusRequest {});
            request.set_timeout(Duration::from_secs(2));
            let status = client
                .status(request)
                .await
                .map(|r| r.into_inner())
                .map_err(|s| grpc::error_of(&s));
            (n.address.clone(), status)
        });
        futures::future::join_all(asks).await
    }

    /// Sets the group's voters through its leader (see `LocalWalService::change_membership`).
    pub async fn change_membership(
        &self,
        voters: Vec<(u64, String)>,
    ) -> Result<pb::NodeStatus, WalError> {
        let request = pb::ChangeMembershipRequest {
            voters: voters
                .into_iter()
                .map(|(id, address)| pb::Member {
                    id,
                    address,
                    voter: true,
                })
                .collect(),
        };
        // Catching up a new node can take a while: allow a minute beyond the usual timeout.
        self.on_leader(self.request_timeout + Duration::from_secs(60), |mut c| {
            let request = request.clone();
            async move { c.change_membership(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// Runs `call` on the leader, following refusals to the leader they name and trying the
    /// other nodes while none is known, until `budget` is spent. A call that fails without an
    /// answer may have taken effect: only idempotent calls come here.
    async fn on_leader<T, F, Fut>(&self, budget: Duration, call: F) -> Result<T, WalError>
    where
        F: Fn(pb::wal_client::WalClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = Instant::now() + budget;
        let mut index = self.leader.load(Ordering::Relaxed) % self.nodes.len();
        let mut tried_in_round = 0;
        let mut last_error: Option<WalError> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let last = match last_error {
                    Some(WalError::Unavailable(m)) => m,
                    Some(e) => e.to_string(),
                    None => "none".into(),
                };
                return Err(WalError::Unavailable(format!(
                    "no WAL leader answered within {budget:?} (last error: {last})"
                )));
            }
            let node = &self.nodes[index];
            let result = tokio::time::timeout(left, call(node.client.clone())).await;
            let error = match result {
                Ok(Ok(value)) => {
                    self.leader.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Ok(Err(status)) => grpc::error_of(&status),
                Err(_) => WalError::Unavailable(format!("{} did not answer in time", node.address)),
            };
            match &error {
                WalError::Invalid(_) | WalError::Storage(_) | WalError::Truncated(_) => {
                    return Err(error);
                }
                WalError::NotLeader {
                    leader: Some(address),
                } => {
                    if let Some(i) = self.nodes.iter().position(|n| &n.address == address)
                        && i != index
                    {
                        index = i;
                        last_error = Some(error);
                        continue;
                    }
                }
                _ => {}
            }
            // A node that answered says more than one that could not be reached.
            let unreachable = |e: &WalError| matches!(e, WalError::Unavailable(m) if m.contains("tcp connect error"));
            if !unreachable(&error) || last_error.as_ref().is_none_or(unreachable) {
                last_error = Some(error);
            }
            index = (index + 1) % self.nodes.len();
            tried_in_round += 1;
            if tried_in_round >= self.nodes.len() {
                tried_in_round = 0;
                tokio::time::sleep(RETRY_PAUSE.min(left)).await;
            }
        }
    }
}

/// Refreshes the group view until the client is dropped.
async fn refresh_view(service: std::sync::Weak<RemoteWalService>) {
    loop {
        let Some(svc) = service.upgrade() else { return };
        let statuses = svc.statuses().await;
        // An unreachable node's id, from the member lists of the others.
        let ids: std::collections::HashMap<String, u64> = statuses
            .iter()
            .filter_map(|(_, s)| s.as_ref().ok())
            .flat_map(|s| s.members.iter().map(|m| (m.address.clone(), m.id)))
            .collect();
        let view = statuses
            .into_iter()
            .map(|(address, status)| match status {
                Ok(s) => WalNodeView {
                    id: s.node_id,
                    address,
                    reachable: true,
                    state: s.state,
                    term: s.term,
                    leader_id: (s.leader_id != 0).then_some(s.leader_id),
                    applied_lsn: Lsn(s.applied_lsn),
                },
                Err(_) => WalNodeView {
                    id: ids.get(&address).copied().unwrap_or(0),
                    address,
                    reachable: false,
                    state: "unknown".into(),
                    term: 0,
                    leader_id: None,
                    applied_lsn: Lsn::ZERO,
                },
            })
            .collect();
        *svc.view.write() = view;
        drop(svc);
        tokio::time::sleep(VIEW_REFRESH).await;
    }
}

#[async_trait]
impl WalService for RemoteWalService {
    async fn commit(&self, request: CommitRequest) -> Result<CommitOutcome, WalError> {
        let budget = self.request_timeout + request.extra_time();
        let message = grpc::commit_to_proto(&request);
        let reply = self
            .on_leader(budget, |mut c| {
                let message = message.clone();
                async move { c.commit(message).await.map(|r| r.into_inner()) }
            })
            .await?;
        grpc::outcome_from_proto(reply)
    }

    async fn last_committed_lsn(&self) -> Result<Lsn, WalError> {
        let reply = self
            .on_leader(self.request_timeout, |mut c| async move {
                c.last_committed_lsn(pb::LastCommittedLsnRequest {})
                    .await
                    .map(|r| r.into_inner())
            })
            .await?;
        Ok(Lsn(reply.lsn))
    }

    /// Streams from one node, taking the nodes in turn on each call: a subscriber whose node
    /// failed subscribes again and lands on the next. Every node serves only committed records.
    fn subscribe(&self, from: Lsn) -> WalStream {
        let index = self.next_subscriber.fetch_add(1, Ordering::Relaxed) % self.nodes.len();
        let mut client = self.nodes[index].client.clone();
        let address = self.nodes[index].address.clone();
        let stream = async move {
            match client
                .subscribe(pb::SubscribeRequest { from: from.0 })
                .await
            {
                Ok(response) => response
                    .into_inner()
                    .flat_map(|batch| {
                        let items: Vec<_> = match batch {
                            Ok(b) => b
                                .records
                                .iter()
                                .map(|r| grpc::record_of(r).map(Arc::new))
                                .collect(),
                            Err(status) => vec![Err(grpc::error_of(&status))],
                        };
                        futures::stream::iter(items)
                    })
                    .boxed(),
                Err(status) => {
                    let error = match grpc::error_of(&status) {
                        WalError::Unavailable(m) => {
                            WalError::Unavailable(format!("subscribing at {address}: {m}"))
                        }
                        other => other,
                    };
                    futures::stream::iter([Err(error)]).boxed()
                }
            }
        };
        stream.flatten_stream().boxed()
    }

    fn group_view(&self) -> Vec<WalNodeView> {
        self.view.read().clone()
    }

    /// Tells every node; a node that does not answer keeps its records a little longer.
    async fn release_before(&self, lsn: Lsn) -> Result<(), WalError> {
        let calls = self.nodes.iter().map(|n| {
            let mut client = n.client.clone();
            async move {
                let mut request = tonic::Request::new(pb::Lsn { lsn: lsn.0 });
                request.set_timeout(Duration::from_secs(2));
                if let Err(s) = client.release_before(request).await {
                    tracing::debug!(node = %n.address, error = %s, "release_before");
                }
            }
        });
        futures::future::join_all(calls).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalWalService, WalServiceOptions, WalTransport};
    use std::collections::BTreeMap;
    use thunderdb_common::TxnId;
    use thunderdb_common::wal::KeyWrite;
    use tokio_util::sync::CancellationToken;

    struct TestNode {
        wal: Arc<LocalWalService>,
        server: CancellationToken,
    }

    impl TestNode {
        async fn stop(&self) {
            self.server.cancel();
            self.wal.shutdown().await;
        }
    }

    async fn group(dir: &std::path::Path, n: u64) -> (Vec<TestNode>, Vec<String>) {
        let mut listeners = Vec::new();
        let mut members = BTreeMap::new();
        for id in 1..=n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            members.insert(id, l.local_addr().unwrap().to_string());
            listeners.push(l);
        }
        let mut nodes = Vec::new();
        for (id, listener) in (1..=n).zip(listeners) {
            let wal = LocalWalService::start(WalServiceOptions {
                node_id: id,
                initial_members: members.clone(),
                transport: WalTransport::Grpc,
                commit_timeout: Duration::from_secs(2),
                ..WalServiceOptions::single(dir.join(format!("n{id}")), false, 16)
            })
            .await
            .unwrap();
            let server = CancellationToken::new();
            tokio::spawn(crate::grpc::serve(wal.clone(), listener, server.clone()));
            nodes.push(TestNode { wal, server });
        }
        (nodes, members.into_values().collect())
    }

    fn write(key: &str) -> CommitRequest {
        CommitRequest {
            txn_id: TxnId::random(),
            snapshot_lsn: Lsn(0),
            writes: vec![KeyWrite {
                key: key.as_bytes().to_vec(),
                value: Some(b"v".to_vec()),
            }],
            read_keys: vec![],
            read_ranges: vec![],
        }
    }

    /// Three nodes over gRPC: commits go to the leader whichever node the client knows first;
    /// a retried commit is applied once; when the leader stops, commits resume at the new
    /// one; with two of three stopped, a commit fails with Unavailable in bounded time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_fail_over_and_never_apply_a_commit_twice() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let (nodes, addresses) = group(dir.path(), 3).await;
        // The client lists the nodes backwards, so it starts at a follower.
        let client = RemoteWalService::connect(RemoteWalOptions {
            nodes: addresses.iter().rev().cloned().collect(),
            request_timeout: Duration::from_secs(3),
        })
        .unwrap();
        let first = write("a");
        let CommitOutcome::Committed(lsn) = client.commit(first.clone()).await.unwrap() else {
            panic!("conflict")
        };
        // The same transaction again: the first outcome, no new record.
        assert_eq!(
            client.commit(first).await.unwrap(),
            CommitOutcome::Committed(lsn)
        );
        assert_eq!(client.last_committed_lsn().await.unwrap(), lsn);
        // First committer wins across the wire too.
        let mut stale = write("a");
        stale.snapshot_lsn = Lsn(lsn.0 - 1);
        assert!(matches!(
            client.commit(stale).await.unwrap(),
            CommitOutcome::Conflict { .. }
        ));

        let statuses = client.statuses().await;
        let leader_id = statuses[0].1.as_ref().unwrap().leader_id;
        assert!(
            statuses
                .iter()
                .all(|(_, s)| s.as_ref().unwrap().leader_id == leader_id)
        );
        nodes[leader_id as usize - 1].stop().await;
        let stopped = std::time::Instant::now();
        let CommitOutcome::Committed(after) = client.commit(write("b")).await.unwrap() else {
            panic!("conflict")
        };
        assert!(after > lsn);
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "fail-over took {:?}",
            stopped.elapsed()
        );
        // Every record, in order, from whichever node a subscription lands on.
        for _ in 0..2 {
            let mut records = client.subscribe(Lsn(1));
            let mut seen = Vec::new();
            while seen.len() < after.0 as usize {
                match tokio::time::timeout(Duration::from_secs(5), records.next()).await {
                    Ok(Some(Ok(r))) => seen.push(r.lsn.0),
                    // The stopped node: the next subscription goes elsewhere.
                    Ok(Some(Err(WalError::Unavailable(_)))) => break,
                    other => panic!(
                        "unexpected {:?}",
                        other.map(|o| o.map(|r| r.map(|r| r.lsn)))
                    ),
                }
            }
            if !seen.is_empty() {
                assert_eq!(seen, (1..=after.0).collect::<Vec<_>>());
            }
        }

        let survivor = nodes
            .iter()
            .position(|n| n.wal.node_id() != leader_id && n.wal.status().state == "leader")
            .unwrap();
        nodes[survivor].stop().await;
        let started = std::time::Instant::now();
        let err = client.commit(write("c")).await.unwrap_err();
        assert!(matches!(err, WalError::Unavailable(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        for n in &nodes {
            n.stop().await;
        }
    }
}
