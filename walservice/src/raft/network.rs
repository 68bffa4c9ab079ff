//! In-process Raft transport: nodes of one process reach each other through a router. The
//! distributed deployment uses the gRPC transport instead; both carry the same RPCs.

use super::{NodeId, Raft, TypeConfig};
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Routes RPCs between the Raft nodes of one process; links can be cut to simulate partitions.
#[derive(Clone, Default)]
pub struct InProcessRouter {
    nodes: Arc<RwLock<BTreeMap<NodeId, Raft>>>,
    cut: Arc<RwLock<HashSet<(NodeId, NodeId)>>>,
}

impl InProcessRouter {
    pub fn add(&self, id: NodeId, raft: Raft) {
        self.nodes.write().insert(id, raft);
    }

    pub fn remove(&self, id: NodeId) {
        self.nodes.write().remove(&id);
    }

    /// Drops every message between `a` and `b`, both ways, until [`heal`](Self::heal).
    pub fn partition(&self, a: NodeId, b: NodeId) {
        let mut cut = self.cut.write();
        cut.insert((a, b));
        cut.insert((b, a));
    }

    pub fn heal(&self) {
        self.cut.write().clear();
    }

    fn target(&self, from: NodeId, to: NodeId) -> Result<Raft, Unreachable> {
        if self.cut.read().contains(&(from, to)) {
            return Err(Unreachable::new(&std::io::Error::other(format!(
                "link {from} -> {to} is cut"
            ))));
        }
        self.nodes.read().get(&to).cloned().ok_or_else(|| {
            Unreachable::new(&std::io::Error::other(format!("node {to} is not running")))
        })
    }
}

/// The network factory of one node.
pub struct InProcessNetwork {
    pub router: InProcessRouter,
    pub from: NodeId,
}

/// A connection from one node to another.
pub struct InProcessConnection {
    router: InProcessRouter,
    from: NodeId,
    to: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for InProcessNetwork {
    type Network = InProcessConnection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        InProcessConnection {
            router: self.router.clone(),
            from: self.from,
            to: target,
        }
    }
}

impl RaftNetwork<TypeConfig> for InProcessConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.target(self.from, self.to)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self.router.target(self.from, self.to)?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.target(self.from, self.to)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }
}
