//! The pageserver over gRPC: the server that exposes a [`PageService`], and
//! [`RemotePageService`], the client compute uses in a cluster.
//!
//! Reads are calls. What compute asks without waiting (the applied LSN, the segments, the
//! per-table write counts, the storage report) comes from a status stream the server pushes
//! whenever it changes, which the client keeps in memory.

use crate::{
    LayerReport, PageError, PageService, RemoteStorage, SegmentChange, SegmentFile, SegmentMeta,
    StorageReport, Value,
};
use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::RwLock;
use prost::Message;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use thunderdb_common::Lsn;
use thunderdb_common::proto::page as pb;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

/// The largest message either side accepts.
const MAX_MESSAGE_BYTES: usize = 1 << 30;
/// A streamed scan or change list is cut into messages of about this size.
const MESSAGE_BYTES: usize = 1 << 20;
/// Metadata key of a snapshot-too-old status: the oldest readable LSN.
const OLDEST_METADATA: &str = "thunderdb-oldest-lsn";
/// Metadata key every status the page service sends carries; one without it was made by the
/// transport.
const ERROR_METADATA: &str = "thunderdb-page-error";
/// How often the server looks for a changed status to push.
const STATUS_INTERVAL: Duration = Duration::from_millis(50);
/// Names the layer kinds the storage report uses (they are `&'static str` there).
const LAYER_KINDS: [&str; 4] = ["memory", "frozen", "delta", "image"];

/// Serves `pages` on `listener` until `cancel`.
pub async fn serve(
    pages: Arc<dyn PageService>,
    listener: TcpListener,
    cancel: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let service = pb::page_server::PageServer::new(PageHandler {
        pages,
        cancel: cancel.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            cancel.cancelled_owned(),
        )
        .await
}

fn status_of(e: PageError) -> Status {
    let mut status = status_of_kind(e);
    status
        .metadata_mut()
        .insert(ERROR_METADATA, MetadataValue::from_static("1"));
    status
}

fn status_of_kind(e: PageError) -> Status {
    match e {
        PageError::LsnTimeout { .. } => Status::deadline_exceeded(e.to_string()),
        PageError::SnapshotTooOld { oldest, .. } => {
            let mut s = Status::failed_precondition(e.to_string());
            s.metadata_mut()
                .insert(OLDEST_METADATA, MetadataValue::from(oldest.0));
            s
        }
        PageError::ShuttingDown => Status::cancelled(e.to_string()),
        PageError::Storage(m) => Status::internal(m),
        PageError::Wal(m) => Status::unavailable(format!("WAL stream failed: {m}")),
        PageError::Unavailable(m) => Status::unavailable(m),
        PageError::Invalid(m) => Status::invalid_argument(m),
    }
}

fn error_of(s: &Status, lsn: Lsn) -> PageError {
    if !s.metadata().contains_key(ERROR_METADATA) {
        return PageError::Unavailable(format!("pageserver unreachable: {}", s.message()));
    }
    match s.code() {
        tonic::Code::DeadlineExceeded => PageError::LsnTimeout {
            wanted: lsn,
            applied: Lsn::ZERO,
        },
        tonic::Code::FailedPrecondition => {
            let oldest = s
                .metadata()
                .get(OLDEST_METADATA)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            PageError::SnapshotTooOld {
                lsn,
                oldest: Lsn(oldest),
            }
        }
        tonic::Code::Cancelled => PageError::ShuttingDown,
        tonic::Code::Internal => PageError::Storage(s.message().to_string()),
        tonic::Code::InvalidArgument => PageError::Invalid(s.message().to_string()),
        _ => PageError::Unavailable(format!("pageserver: {}", s.message())),
    }
}

fn segment_to_proto(s: &SegmentMeta) -> pb::Segment {
    pb::Segment {
        table: s.table,
        lsn: s.lsn.0,
        exact_from: s.exact_from.map(|l| l.0),
        schema: s.schema.clone(),
        rows: s.rows,
        files: s
            .files
            .iter()
            .map(|f| pb::SegmentFile {
                name: f.name.clone(),
                size: f.size,
                rows: f.rows,
            })
            .collect(),
        checked_micros: s.checked_micros,
    }
}

fn segment_of(s: pb::Segment) -> SegmentMeta {
    SegmentMeta {
        table: s.table,
        lsn: Lsn(s.lsn),
        exact_from: s.exact_from.map(Lsn),
        schema: s.schema,
        rows: s.rows,
        files: s
            .files
            .into_iter()
            .map(|f| SegmentFile {
                name: f.name,
                size: f.size,
                rows: f.rows,
            })
            .collect(),
        checked_micros: s.checked_micros,
    }
}

fn status_message(pages: &dyn PageService) -> pb::PageStatus {
    let r = pages.storage_report();
    pb::PageStatus {
        applied_lsn: pages.applied_lsn().0,
        consistent_lsn: r.consistent_lsn.0,
        min_readable_lsn: r.min_readable_lsn.0,
        location: r.location,
        layers: r
            .layers
            .into_iter()
            .map(|l| pb::Layer {
                kind: l.kind.to_string(),
                name: l.name,
                lsn_start: l.lsn_start.0,
                lsn_end: l.lsn_end.0,
                bytes: l.bytes,
                entries: l.entries,
                key_start: l.key_start,
                key_last: l.key_last,
            })
            .collect(),
        segments: pages
            .segments()
            .iter()
            .map(|s| segment_to_proto(s))
            .collect(),
        row_writes: pages.row_writes().into_iter().collect(),
    }
}

/// Cuts `items` into messages of about [`MESSAGE_BYTES`].
fn chunked<T, M: Send + 'static>(
    items: Vec<T>,
    size: impl Fn(&T) -> usize + Send + 'static,
    wrap: impl Fn(Vec<T>) -> M + Send + 'static,
) -> impl futures::Stream<Item = Result<M, Status>> + Send + 'static
where
    T: Send + 'static,
{
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for item in items {
        bytes += size(&item);
        batch.push(item);
        if bytes >= MESSAGE_BYTES {
            batches.push(wrap(std::mem::take(&mut batch)));
            bytes = 0;
        }
    }
    if !batch.is_empty() || batches.is_empty() {
        batches.push(wrap(batch));
    }
    futures::stream::iter(batches.into_iter().map(Ok))
}

struct PageHandler {
    pages: Arc<dyn PageService>,
    cancel: CancellationToken,
}

type ItemStream<M> = Pin<Box<dyn futures::Stream<Item = Result<M, Status>> + Send>>;

#[tonic::async_trait]
impl pb::page_server::Page for PageHandler {
    async fn get(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::GetReply>, Status> {
        let r = r.into_inner();
        let value = self
            .pages
            .get(&r.key, Lsn(r.lsn))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::GetReply {
            value: value.map(|v| v.to_vec()),
        }))
    }

    type ScanStream = ItemStream<pb::KeyValues>;

    async fn scan(
        &self,
        r: Request<pb::ScanRequest>,
    ) -> Result<Response<Self::ScanStream>, Status> {
        let r = r.into_inner();
        let rows = self
            .pages
            .scan(
                &r.start,
                &r.end,
                Lsn(r.lsn),
                r.limit.map(|l| l.min(usize::MAX as u64) as usize),
            )
            .await
            .map_err(status_of)?;
        let stream = chunked(
            rows,
            |(k, v)| k.len() + v.len() + 8,
            |items| pb::KeyValues {
                items: items
                    .into_iter()
                    .map(|(key, value)| pb::KeyValue {
                        key,
                        value: value.to_vec(),
                    })
                    .collect(),
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn newest_write(
        &self,
        r: Request<pb::NewestWriteRequest>,
    ) -> Result<Response<pb::Lsn>, Status> {
        let r = r.into_inner();
        let prefixes = r
            .prefixes
            .iter()
            .map(|p| <[u8; 8]>::try_from(p.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| status_of(PageError::Invalid("prefixes are 8 bytes".into())))?;
        let lsn = self
            .pages
            .newest_write(&prefixes, Lsn(r.lsn))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::Lsn { lsn: lsn.0 }))
    }

    async fn version_lsn(
        &self,
        r: Request<pb::VersionLsnRequest>,
    ) -> Result<Response<pb::Lsn>, Status> {
        let r = r.into_inner();
        let lsn = self
            .pages
            .version_lsn(&r.key, Lsn(r.lsn))
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::Lsn { lsn: lsn.0 }))
    }

    async fn checkpoint(
        &self,
        _r: Request<pb::CheckpointRequest>,
    ) -> Result<Response<pb::Lsn>, Status> {
        let lsn = self.pages.checkpoint().await.map_err(status_of)?;
        Ok(Response::new(pb::Lsn { lsn: lsn.0 }))
    }

    type ChangesStream = ItemStream<pb::KeyChanges>;

    async fn changes(
        &self,
        r: Request<pb::ChangesRequest>,
    ) -> Result<Response<Self::ChangesStream>, Status> {
        let r = r.into_inner();
        let changes = self
            .pages
            .changes(
                &r.start,
                &r.end,
                Lsn(r.since),
                Lsn(r.at),
                r.limit.map(|l| l.min(usize::MAX as u64) as usize),
            )
            .await
            .map_err(status_of)?;
        let stream = chunked(
            changes,
            |(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 8,
            |items| pb::KeyChanges {
                items: items
                    .into_iter()
                    .map(|(key, value)| pb::KeyChange {
                        key,
                        value: value.map(|v| v.to_vec()),
                    })
                    .collect(),
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn change_segments(
        &self,
        r: Request<pb::ChangeSegmentsRequest>,
    ) -> Result<Response<pb::ChangeSegmentsReply>, Status> {
        let changes = r
            .into_inner()
            .changes
            .into_iter()
            .map(|c| SegmentChange {
                table: c.table,
                previous: c.previous.map(Lsn),
                segment: c.segment.map(segment_of),
            })
            .collect();
        let applied = self
            .pages
            .change_segments(changes)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ChangeSegmentsReply { applied }))
    }

    type WatchStream = ItemStream<pb::PageStatus>;

    async fn watch(
        &self,
        _r: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let pages = self.pages.clone();
        let cancel = self.cancel.clone();
        // The first status at once, then each change, looked for every STATUS_INTERVAL.
        let stream = futures::stream::unfold(
            (pages, cancel, Vec::new(), true),
            |(pages, cancel, last, first)| async move {
                loop {
                    if !first {
                        tokio::select! {
                            _ = cancel.cancelled() => return None,
                            _ = tokio::time::sleep(STATUS_INTERVAL) => {}
                        }
                    }
                    let status = status_message(pages.as_ref());
                    let encoded = status.encode_to_vec();
                    if first || encoded != last {
                        return Some((Ok(status), (pages, cancel, encoded, false)));
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

/// What the client knows of the pageserver without asking.
#[derive(Default)]
struct Known {
    /// The status stream is open.
    connected: bool,
    applied_lsn: Lsn,
    report: Option<StorageReport>,
    segments: Vec<Arc<SegmentMeta>>,
    row_writes: HashMap<u32, u64>,
}

/// A pageserver reached over gRPC.
pub struct RemotePageService {
    client: pb::page_client::PageClient<Channel>,
    known: Arc<RwLock<Known>>,
    storage: RemoteStorage,
    address: String,
}

impl RemotePageService {
    /// Connects to the pageserver at `address` (`host:port`) and waits (up to `timeout`) for
    /// its first status. `storage` is the object storage the pageserver writes segments to,
    /// which compute reads directly.
    pub async fn connect(
        address: &str,
        storage: RemoteStorage,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> Result<Arc<RemotePageService>, PageError> {
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| PageError::Invalid(format!("bad pageserver address {address:?}: {e}")))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        let client = pb::page_client::PageClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let known = Arc::new(RwLock::new(Known::default()));
        let (first_tx, mut first) = watch::channel(false);
        tokio::spawn(follow_status(
            client.clone(),
            known.clone(),
            first_tx,
            address.to_string(),
            cancel,
        ));
        tokio::time::timeout(timeout, first.wait_for(|seen| *seen))
            .await
            .map_err(|_| PageError::Unavailable(format!("pageserver at {address} did not answer")))?
            .map_err(|_| PageError::ShuttingDown)?;
        Ok(Arc::new(RemotePageService {
            client,
            known,
            storage,
            address: address.to_string(),
        }))
    }
}

/// Keeps `known` up to date from the pageserver's status stream, reconnecting when it breaks.
async fn follow_status(
    mut client: pb::page_client::PageClient<Channel>,
    known: Arc<RwLock<Known>>,
    first: watch::Sender<bool>,
    address: String,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            s = client.watch(pb::WatchRequest {}) => s,
        };
        match stream {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    let next = tokio::select! {
                        _ = cancel.cancelled() => return,
                        n = stream.next() => n,
                    };
                    match next {
                        Some(Ok(status)) => {
                            failures = 0;
                            *known.write() = known_of(status);
                            first.send_replace(true);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(pageserver = %address, error = %e, "status stream failed");
                            break;
                        }
                        None => break,
                    }
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(100) {
                    tracing::warn!(pageserver = %address, error = %e, "pageserver unreachable");
                }
            }
        }
        known.write().connected = false;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

fn known_of(s: pb::PageStatus) -> Known {
    let segments: Vec<Arc<SegmentMeta>> = s
        .segments
        .into_iter()
        .map(|s| Arc::new(segment_of(s)))
        .collect();
    let layers = s
        .layers
        .into_iter()
        .map(|l| LayerReport {
            kind: LAYER_KINDS
                .iter()
                .find(|k| **k == l.kind)
                .copied()
                .unwrap_or("unknown"),
            name: l.name,
            lsn_start: Lsn(l.lsn_start),
            lsn_end: Lsn(l.lsn_end),
            bytes: l.bytes,
            entries: l.entries,
            key_start: l.key_start,
            key_last: l.key_last,
        })
        .collect();
    Known {
        connected: true,
        applied_lsn: Lsn(s.applied_lsn),
        report: Some(StorageReport {
            location: s.location,
            applied_lsn: Lsn(s.applied_lsn),
            consistent_lsn: Lsn(s.consistent_lsn),
            min_readable_lsn: Lsn(s.min_readable_lsn),
            layers,
            segments: segments.clone(),
        }),
        segments,
        row_writes: s.row_writes.into_iter().collect(),
    }
}

/// Collects a streamed reply.
async fn collect<M, T>(
    reply: Result<Response<tonic::Streaming<M>>, Status>,
    lsn: Lsn,
    items: impl Fn(M) -> Vec<T>,
) -> Result<Vec<T>, PageError> {
    let mut stream = reply.map_err(|s| error_of(&s, lsn))?.into_inner();
    let mut out = Vec::new();
    while let Some(message) = stream.next().await {
        out.extend(items(message.map_err(|s| error_of(&s, lsn))?));
    }
    Ok(out)
}

#[async_trait]
impl PageService for RemotePageService {
    async fn get(&self, key: &[u8], lsn: Lsn) -> Result<Option<Value>, PageError> {
        let reply = self
            .client
            .clone()
            .get(pb::GetRequest {
                key: key.to_vec(),
                lsn: lsn.0,
            })
            .await
            .map_err(|s| error_of(&s, lsn))?;
        Ok(reply.into_inner().value.map(Value::from))
    }

    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        lsn: Lsn,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Value)>, PageError> {
        let reply = self
            .client
            .clone()
            .scan(pb::ScanRequest {
                start: start.to_vec(),
                end: end.to_vec(),
                lsn: lsn.0,
                limit: limit.map(|l| l as u64),
            })
            .await;
        collect(reply, lsn, |m: pb::KeyValues| {
            m.items
                .into_iter()
                .map(|kv| (kv.key, Value::from(kv.value)))
                .collect()
        })
        .await
    }

    async fn newest_write(&self, prefixes: &[[u8; 8]], lsn: Lsn) -> Result<Lsn, PageError> {
        let reply = self
            .client
            .clone()
            .newest_write(pb::NewestWriteRequest {
                prefixes: prefixes.iter().map(|p| p.to_vec()).collect(),
                lsn: lsn.0,
            })
            .await
            .map_err(|s| error_of(&s, lsn))?;
        Ok(Lsn(reply.into_inner().lsn))
    }

    async fn version_lsn(&self, key: &[u8], lsn: Lsn) -> Result<Lsn, PageError> {
        let reply = self
            .client
            .clone()
            .version_lsn(pb::VersionLsnRequest {
                key: key.to_vec(),
                lsn: lsn.0,
            })
            .await
            .map_err(|s| error_of(&s, lsn))?;
        Ok(Lsn(reply.into_inner().lsn))
    }

    fn applied_lsn(&self) -> Lsn {
        self.known.read().applied_lsn
    }

    async fn checkpoint(&self) -> Result<Lsn, PageError> {
        let reply = self
            .client
            .clone()
            .checkpoint(pb::CheckpointRequest {})
            .await
            .map_err(|s| error_of(&s, Lsn::ZERO))?;
        Ok(Lsn(reply.into_inner().lsn))
    }

    fn storage_report(&self) -> StorageReport {
        let known = self.known.read();
        known.report.clone().unwrap_or_else(|| StorageReport {
            location: self.storage.description.clone(),
            applied_lsn: known.applied_lsn,
            consistent_lsn: Lsn::ZERO,
            min_readable_lsn: Lsn::ZERO,
            layers: Vec::new(),
            segments: Vec::new(),
        })
    }

    async fn changes(
        &self,
        start: &[u8],
        end: &[u8],
        since: Lsn,
        at: Lsn,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Option<Value>)>, PageError> {
        let reply = self
            .client
            .clone()
            .changes(pb::ChangesRequest {
                start: start.to_vec(),
                end: end.to_vec(),
                since: since.0,
                at: at.0,
                limit: limit.map(|l| l as u64),
            })
            .await;
        collect(reply, since, |m: pb::KeyChanges| {
            m.items
                .into_iter()
                .map(|c| (c.key, c.value.map(Value::from)))
                .collect()
        })
        .await
    }

    fn row_writes(&self) -> HashMap<u32, u64> {
        self.known.read().row_writes.clone()
    }

    fn object_storage(&self) -> RemoteStorage {
        self.storage.clone()
    }

    fn segments(&self) -> Vec<Arc<SegmentMeta>> {
        self.known.read().segments.clone()
    }

    fn address(&self) -> String {
        self.address.clone()
    }

    fn reachable(&self) -> bool {
        self.known.read().connected
    }

    async fn change_segments(&self, changes: Vec<SegmentChange>) -> Result<Vec<bool>, PageError> {
        let request = pb::ChangeSegmentsRequest {
            changes: changes
                .iter()
                .map(|c| pb::SegmentChange {
                    table: c.table,
                    previous: c.previous.map(|l| l.0),
                    segment: c.segment.as_ref().map(segment_to_proto),
                })
                .collect(),
        };
        let reply = self
            .client
            .clone()
            .change_segments(request)
            .await
            .map_err(|s| error_of(&s, Lsn::ZERO))?;
        let applied = reply.into_inner().applied;
        // Seen at once by this compute, before the next status arrives.
        let mut known = self.known.write();
        for (change, ok) in changes.into_iter().zip(&applied) {
            if *ok {
                known.segments.retain(|s| s.table != change.table);
                known.segments.extend(change.segment.map(Arc::new));
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        let s = SegmentMeta {
            table: 7,
            lsn: Lsn(90),
            exact_from: Some(Lsn(80)),
            schema: "v1-abc".into(),
            rows: 3,
            files: vec![SegmentFile {
                name: "segments/t7/x.parquet".into(),
                size: 1234,
                rows: 3,
            }],
            checked_micros: -5,
        };
        assert_eq!(segment_of(segment_to_proto(&s)), s);
        let none = SegmentMeta {
            exact_from: None,
            ..s
        };
        assert_eq!(segment_of(segment_to_proto(&none)), none);
    }

    #[test]
    fn errors_keep_their_kind_over_the_wire() {
        let too_old = status_of(PageError::SnapshotTooOld {
            lsn: Lsn(5),
            oldest: Lsn(9),
        });
        assert!(matches!(
            error_of(&too_old, Lsn(5)),
            PageError::SnapshotTooOld {
                lsn: Lsn(5),
                oldest: Lsn(9)
            }
        ));
        assert!(matches!(
            error_of(&status_of(PageError::ShuttingDown), Lsn(1)),
            PageError::ShuttingDown
        ));
        assert!(matches!(
            error_of(&status_of(PageError::Storage("x".into())), Lsn(1)),
            PageError::Storage(_)
        ));
        assert!(matches!(
            error_of(&Status::unavailable("connection refused"), Lsn(1)),
            PageError::Unavailable(_)
        ));
        assert!(matches!(
            error_of(&Status::internal("h2 protocol error"), Lsn(1)),
            PageError::Unavailable(_)
        ));
    }

    #[test]
    fn chunks_cover_every_item_once() {
        let items: Vec<Vec<u8>> = (0..300u32).map(|i| vec![i as u8; 10_000]).collect();
        let chunks: Vec<Vec<Vec<u8>>> = futures::executor::block_on(
            chunked(items.clone(), Vec::len, |b| b)
                .map(Result::unwrap)
                .collect(),
        );
        assert!(chunks.len() >= 2);
        assert_eq!(chunks.concat(), items);
        let empty: Vec<Vec<Vec<u8>>> = futures::executor::block_on(
            chunked(Vec::<Vec<u8>>::new(), Vec::len, |b| b)
                .map(Result::unwrap)
                .collect(),
        );
        assert_eq!(empty, vec![Vec::<Vec<u8>>::new()]);
    }
}
