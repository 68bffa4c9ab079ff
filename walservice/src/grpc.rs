//! The gRPC transport of a WAL node: the server for both services (`RaftPeer` between the nodes
//! of the group, `Wal` for compute and pageservers), the Raft network that calls the peers, and
//! the conversions between the protobuf messages and the service's own types.

use crate::raft::{NodeId, TypeConfig};
use crate::{CommitOutcome, CommitRequest, LocalWalService, WalError, WalService};
use futures::StreamExt;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use thunderdb_common::proto::wal as pb;
use thunderdb_common::wal::{KeyWrite, WalRecord};
use thunderdb_common::{Lsn, TxnId};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

/// The largest message either side accepts: a commit carries a whole transaction's writes
/// (a COPY of a big table), and a Raft append carries batches of them.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;
/// Version byte in front of every bincode-encoded Raft payload.
const RAFT_PAYLOAD_VERSION: u8 = 1;
/// Metadata key of an UNAVAILABLE status that names the leader's address.
pub const LEADER_METADATA: &str = "thunderdb-leader";
/// Metadata key of an OUT_OF_RANGE status: the first LSN the node still holds.
pub const TRUNCATED_METADATA: &str = "thunderdb-truncated-before";
/// Metadata key every status the WAL service sends carries. A status without it was made by
/// the transport (a connection reset, an HTTP/2 GOAWAY from a node shutting down): the node
/// may or may not have acted on the request.
const ERROR_METADATA: &str = "thunderdb-wal-error";
/// Records per streamed message.
const RECORDS_PER_MESSAGE: usize = 256;

/// Serves `RaftPeer` and `Wal` for `node` on `listener` until `cancel`.
pub async fn serve(
    node: Arc<LocalWalService>,
    listener: TcpListener,
    cancel: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let peer = pb::raft_peer_server::RaftPeerServer::new(PeerHandler { node: node.clone() })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let wal = pb::wal_server::WalServer::new(WalHandler { node })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(peer)
        .add_service(wal)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            cancel.cancelled_owned(),
        )
        .await
}

/// A lazily connected channel to `address` (`host:port`).
pub fn channel(address: &str, connect_timeout: Duration) -> Result<Channel, WalError> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| WalError::Invalid(format!("bad node address {address:?}: {e}")))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(endpoint.connect_lazy())
}

fn encode_payload<T: Serialize>(value: &T) -> Result<pb::RaftPayload, Status> {
    let mut data = vec![RAFT_PAYLOAD_VERSION];
    bincode::serialize_into(&mut data, value)
        .map_err(|e| Status::internal(format!("encoding a raft message: {e}")))?;
    Ok(pb::RaftPayload { data })
}

fn decode_payload<T: DeserializeOwned>(payload: &pb::RaftPayload) -> Result<T, String> {
    match payload.data.split_first() {
        Some((&RAFT_PAYLOAD_VERSION, body)) => {
            bincode::deserialize(body).map_err(|e| format!("decoding a raft message: {e}"))
        }
        Some((v, _)) => Err(format!("raft message format version {v} is not supported")),
        None => Err("empty raft message".into()),
    }
}

struct PeerHandler {
    node: Arc<LocalWalService>,
}

#[tonic::async_trait]
impl pb::raft_peer_server::RaftPeer for PeerHandler {
    async fn append_entries(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> =
            decode_payload(request.get_ref()).map_err(|e| status_of(WalError::Invalid(e)))?;
        let result = self.node.raft().append_entries(rpc).await;
        encode_payload(&result).map(Response::new)
    }

    async fn vote(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: VoteRequest<NodeId> =
            decode_payload(request.get_ref()).map_err(|e| status_of(WalError::Invalid(e)))?;
        let result = self.node.raft().vote(rpc).await;
        encode_payload(&result).map(Response::new)
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> =
            decode_payload(request.get_ref()).map_err(|e| status_of(WalError::Invalid(e)))?;
        let result = self.node.raft().install_snapshot(rpc).await;
        encode_payload(&result).map(Response::new)
    }
}

/// The Raft network of a gRPC node: one lazily connected channel per peer address, shared by
/// every client openraft makes (it makes one per replication stream and per leadership check,
/// and a connection per check would cost a TCP and HTTP/2 handshake on every snapshot).
#[derive(Default)]
pub struct GrpcNetwork {
    channels: HashMap<String, Channel>,
}

/// A connection to one peer.
pub struct GrpcPeer {
    target: NodeId,
    client: Result<pb::raft_peer_client::RaftPeerClient<Channel>, String>,
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> GrpcPeer {
        let cached = match self.channels.get(&node.addr) {
            Some(c) => Ok(c.clone()),
            None => channel(&node.addr, Duration::from_millis(500)).inspect(|c| {
                self.channels.insert(node.addr.clone(), c.clone());
            }),
        };
        let client = cached
            .map(|c| {
                pb::raft_peer_client::RaftPeerClient::new(c)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES)
            })
            .map_err(|e| e.to_string());
        GrpcPeer { target, client }
    }
}

type PeerReply = Pin<Box<dyn Future<Output = Result<Response<pb::RaftPayload>, Status>> + Send>>;
/// One of the generated client's methods, as a plain function.
type PeerMethod =
    fn(pb::raft_peer_client::RaftPeerClient<Channel>, Request<pb::RaftPayload>) -> PeerReply;
type PeerResult<R, E> = Result<R, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl GrpcPeer {
    /// Sends one RPC; the peer answers with its Raft's `Result`, which comes back as the
    /// response or as a remote error.
    async fn call<Req, Resp, E>(
        &mut self,
        request: &Req,
        option: &RPCOption,
        method: PeerMethod,
    ) -> PeerResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let network = |m: String| RPCError::Network(NetworkError::new(&std::io::Error::other(m)));
        let client = self.client.clone().map_err(network)?;
        let payload = encode_payload(request).map_err(|s| network(s.message().to_string()))?;
        let mut request = Request::new(payload);
        request.set_timeout(option.hard_ttl());
        let reply = match method(client, request).await {
            Ok(r) => r.into_inner(),
            Err(status) => {
                let err = std::io::Error::other(format!("{}: {}", status.code(), status.message()));
                return Err(match status.code() {
                    tonic::Code::Unavailable => {
                        RPCError::Unreachable(openraft::error::Unreachable::new(&err))
                    }
                    _ => RPCError::Network(NetworkError::new(&err)),
                });
            }
        };
        let result: Result<Resp, RaftError<NodeId, E>> = decode_payload(&reply).map_err(network)?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for GrpcPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> PeerResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call(&rpc, &option, |mut c, r| {
            Box::pin(async move { c.append_entries(r).await })
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> PeerResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(&rpc, &option, |mut c, r| {
            Box::pin(async move { c.install_snapshot(r).await })
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> PeerResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(&rpc, &option, |mut c, r| {
            Box::pin(async move { c.vote(r).await })
        })
        .await
    }
}

/// A WAL error as a gRPC status, with the metadata a client acts on.
pub fn status_of(e: WalError) -> Status {
    let mut status = status_of_kind(e);
    status
        .metadata_mut()
        .insert(ERROR_METADATA, MetadataValue::from_static("1"));
    status
}

fn status_of_kind(e: WalError) -> Status {
    match e {
        WalError::NotLeader { leader } => {
            let mut status = Status::unavailable(
                WalError::NotLeader {
                    leader: leader.clone(),
                }
                .to_string(),
            );
            if let Some(value) = leader.and_then(|l| MetadataValue::try_from(l).ok()) {
                status.metadata_mut().insert(LEADER_METADATA, value);
            }
            status
        }
        WalError::Unavailable(m) => Status::unavailable(m),
        WalError::Truncated(lsn) => {
            let mut status = Status::out_of_range(WalError::Truncated(lsn).to_string());
            status
                .metadata_mut()
                .insert(TRUNCATED_METADATA, MetadataValue::from(lsn.0));
            status
        }
        WalError::ShuttingDown => Status::cancelled("WAL node is shutting down"),
        WalError::Invalid(m) => Status::invalid_argument(m),
        WalError::Storage(m) => Status::internal(m),
    }
}

/// A gRPC status from a WAL node as the error it stands for; one the transport made is
/// `Unavailable` (the request's outcome is unknown).
pub fn error_of(status: &Status) -> WalError {
    if !status.metadata().contains_key(ERROR_METADATA) {
        return WalError::Unavailable(match status.code() {
            tonic::Code::Unavailable => status.message().to_string(),
            code => format!("{code}: {}", status.message()),
        });
    }
    let meta = |key: &str| {
        status
            .metadata()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match status.code() {
        tonic::Code::Unavailable if status.message().starts_with("not the WAL leader") => {
            WalError::NotLeader {
                leader: meta(LEADER_METADATA),
            }
        }
        tonic::Code::OutOfRange => match meta(TRUNCATED_METADATA).and_then(|v| v.parse().ok()) {
            Some(lsn) => WalError::Truncated(Lsn(lsn)),
            None => WalError::Storage(status.message().to_string()),
        },
        tonic::Code::Cancelled => WalError::ShuttingDown,
        tonic::Code::InvalidArgument => WalError::Invalid(status.message().to_string()),
        tonic::Code::Internal => WalError::Storage(status.message().to_string()),
        tonic::Code::Unavailable => WalError::Unavailable(status.message().to_string()),
        _ => WalError::Unavailable(format!("{}: {}", status.code(), status.message())),
    }
}

pub(crate) fn commit_to_proto(r: &CommitRequest) -> pb::CommitRequest {
    pb::CommitRequest {
        txn_id: r.txn_id.0.to_le_bytes().to_vec(),
        snapshot_lsn: r.snapshot_lsn.0,
        writes: r
            .writes
            .iter()
            .map(|w| pb::KeyWrite {
                key: w.key.clone(),
                value: w.value.clone(),
            })
            .collect(),
        read_keys: r.read_keys.clone(),
        read_ranges: r
            .read_ranges
            .iter()
            .map(|(start, end)| pb::KeyRange {
                start: start.clone(),
                end: end.clone(),
            })
            .collect(),
    }
}

pub(crate) fn commit_from_proto(r: pb::CommitRequest) -> Result<CommitRequest, Status> {
    let txn: [u8; 16] = r
        .txn_id
        .as_slice()
        .try_into()
        .map_err(|_| status_of(WalError::Invalid("txn_id must be 16 bytes".into())))?;
    Ok(CommitRequest {
        txn_id: TxnId(u128::from_le_bytes(txn)),
        snapshot_lsn: Lsn(r.snapshot_lsn),
        writes: r
            .writes
            .into_iter()
            .map(|w| KeyWrite {
                key: w.key,
                value: w.value,
            })
            .collect(),
        read_keys: r.read_keys,
        read_ranges: r
            .read_ranges
            .into_iter()
            .map(|k| (k.start, k.end))
            .collect(),
    })
}

pub(crate) fn outcome_from_proto(r: pb::CommitReply) -> Result<CommitOutcome, WalError> {
    match r.outcome {
        Some(pb::commit_reply::Outcome::CommittedLsn(lsn)) => {
            Ok(CommitOutcome::Committed(Lsn(lsn)))
        }
        Some(pb::commit_reply::Outcome::Conflict(c)) => Ok(CommitOutcome::Conflict {
            key: c.key,
            committed_at: Lsn(c.committed_at),
        }),
        None => Err(WalError::Storage("commit reply without an outcome".into())),
    }
}

fn status_to_proto(s: crate::NodeStatus) -> pb::NodeStatus {
    let (leader_id, leader_address) = s.leader.unwrap_or_default();
    pb::NodeStatus {
        node_id: s.node_id,
        state: s.state.to_string(),
        term: s.term,
        leader_id,
        leader_address,
        last_log_index: s.last_log_index,
        applied_index: s.applied_index,
        applied_lsn: s.applied_lsn.0,
        members: s
            .members
            .into_iter()
            .map(|(id, address, voter)| pb::Member { id, address, voter })
            .collect(),
        millis_since_quorum_ack: s.millis_since_quorum_ack,
    }
}

struct WalHandler {
    node: Arc<LocalWalService>,
}

type RecordStream = Pin<Box<dyn futures::Stream<Item = Result<pb::RecordBatch, Status>> + Send>>;

#[tonic::async_trait]
impl pb::wal_server::Wal for WalHandler {
    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitReply>, Status> {
        let request = commit_from_proto(request.into_inner())?;
        let outcome = match self.node.commit(request).await.map_err(status_of)? {
            CommitOutcome::Committed(lsn) => pb::commit_reply::Outcome::CommittedLsn(lsn.0),
            CommitOutcome::Conflict { key, committed_at } => {
                pb::commit_reply::Outcome::Conflict(pb::Conflict {
                    key,
                    committed_at: committed_at.0,
                })
            }
        };
        Ok(Response::new(pb::CommitReply {
            outcome: Some(outcome),
        }))
    }

    async fn last_committed_lsn(
        &self,
        _request: Request<pb::LastCommittedLsnRequest>,
    ) -> Result<Response<pb::Lsn>, Status> {
        let lsn = self.node.linearizable_last_lsn().await.map_err(status_of)?;
        Ok(Response::new(pb::Lsn { lsn: lsn.0 }))
    }

    type SubscribeStream = RecordStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<RecordStream>, Status> {
        let records = self.node.subscribe(Lsn(request.get_ref().from));
        // Whatever is ready goes out in one message; an error ends the stream after the
        // records before it.
        let batches = records
            .ready_chunks(RECORDS_PER_MESSAGE)
            .flat_map(|chunk| {
                let mut out = Vec::new();
                let mut batch = pb::RecordBatch::default();
                for item in chunk {
                    match item {
                        Ok(rec) => batch.records.push(rec.encode()),
                        Err(e) => {
                            if !batch.records.is_empty() {
                                out.push(Ok(std::mem::take(&mut batch)));
                            }
                            out.push(Err(status_of(e)));
                            break;
                        }
                    }
                }
                if !batch.records.is_empty() {
                    out.push(Ok(batch));
                }
                futures::stream::iter(out)
            })
            .scan(false, |failed, item| {
                // Nothing after an error.
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            });
        Ok(Response::new(Box::pin(batches)))
    }

    async fn release_before(
        &self,
        request: Request<pb::Lsn>,
    ) -> Result<Response<pb::ReleaseBeforeReply>, Status> {
        self.node
            .release_before(Lsn(request.get_ref().lsn))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ReleaseBeforeReply {}))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        Ok(Response::new(status_to_proto(self.node.status())))
    }

    async fn change_membership(
        &self,
        request: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        let mut voters = BTreeMap::new();
        for m in request.into_inner().voters {
            if m.id == 0 {
                return Err(status_of(WalError::Invalid("node ids start at 1".into())));
            }
            if voters.insert(m.id, m.address).is_some() {
                return Err(status_of(WalError::Invalid(format!(
                    "node {} is listed twice",
                    m.id
                ))));
            }
        }
        let status = self
            .node
            .change_membership(voters)
            .await
            .map_err(status_of)?;
        Ok(Response::new(status_to_proto(status)))
    }
}

/// Decodes a streamed record, checking its checksum and format version.
pub(crate) fn record_of(bytes: &[u8]) -> Result<WalRecord, WalError> {
    WalRecord::decode(bytes).map_err(|e| WalError::Storage(e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_payloads_round_trip_and_refuse_other_versions() {
        let vote = VoteRequest::<NodeId>::new(openraft::Vote::new(3, 2), None);
        let payload = encode_payload(&vote).unwrap();
        let back: VoteRequest<NodeId> = decode_payload(&payload).unwrap();
        assert_eq!(back, vote);
        let mut other = payload.clone();
        other.data[0] = 9;
        assert!(decode_payload::<VoteRequest<NodeId>>(&other).is_err());
        assert!(decode_payload::<VoteRequest<NodeId>>(&pb::RaftPayload::default()).is_err());
        let err: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
            Err(RaftError::Fatal(openraft::error::Fatal::Stopped));
        let back: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
            decode_payload(&encode_payload(&err).unwrap()).unwrap();
        assert!(matches!(back, Err(RaftError::Fatal(_))));
    }

    #[test]
    fn errors_survive_the_status_round_trip() {
        for e in [
            WalError::NotLeader {
                leader: Some("127.0.0.1:7001".into()),
            },
            WalError::NotLeader { leader: None },
            WalError::Truncated(Lsn(42)),
            WalError::ShuttingDown,
            WalError::Invalid("bad".into()),
            WalError::Storage("disk".into()),
        ] {
            let back = error_of(&status_of(e.clone()));
            assert_eq!(back.to_string(), e.to_string());
        }
        assert!(matches!(
            error_of(&status_of(WalError::Unavailable("x".into()))),
            WalError::Unavailable(_)
        ));
        // A status the transport made (a node going away mid-request) is not the node's
        // verdict: the outcome is unknown.
        for transport in [
            Status::internal("h2 protocol error: http2 error"),
            Status::unknown("connection reset"),
            Status::cancelled("request cancelled"),
            Status::unavailable("tcp connect error"),
        ] {
            assert!(matches!(error_of(&transport), WalError::Unavailable(_)));
        }
    }

    #[test]
    fn commit_requests_round_trip() {
        let r = CommitRequest {
            txn_id: TxnId(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10),
            snapshot_lsn: Lsn(77),
            writes: vec![
                KeyWrite {
                    key: b"a".to_vec(),
                    value: Some(vec![]),
                },
                KeyWrite {
                    key: b"b".to_vec(),
                    value: None,
                },
            ],
            read_keys: vec![b"c".to_vec()],
            read_ranges: vec![(b"d".to_vec(), b"e".to_vec())],
        };
        assert_eq!(commit_from_proto(commit_to_proto(&r)).unwrap(), r);
        let mut bad = commit_to_proto(&r);
        bad.txn_id.pop();
        assert!(commit_from_proto(bad).is_err());
    }
}
