//! The RESP (Redis protocol) frontend: RESP2, and RESP3 after `HELLO 3`.
//!
//! Data commands go to the compute node's Redis engine, each one a transaction through the
//! WAL. This module owns what belongs to a connection: authentication, the selected database,
//! the MULTI queue and WATCHed keys, pub/sub subscriptions, client name and protocol version.

mod admin;
mod codec;
mod connection;
mod info;
mod pubsub;

use crate::resp::connection::Connection;
use bytes::BytesMut;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use thunderdb_compute::redis::{RedisEngine, Unblock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How the RESP frontend starts.
#[derive(Clone, Debug)]
pub struct RespFrontendOptions {
    /// Users and passwords `AUTH` accepts: the same as SQL's.
    pub users: Vec<(String, String)>,
    /// Whether commands need `AUTH` first (Redis's `requirepass`). When off, connections start
    /// as the `default` user, and `AUTH` still checks what it is given.
    pub require_auth: bool,
    /// The port reported by `INFO`.
    pub port: u16,
}

/// What all connections share.
pub(crate) struct Shared {
    pub engine: Arc<RedisEngine>,
    pub opts: RespFrontendOptions,
    pub broker: pubsub::Broker,
    pub config: admin::ConfigStore,
    pub stats: info::Stats,
    /// Every connected client, by id.
    pub clients: parking_lot::Mutex<std::collections::BTreeMap<u64, Arc<ClientEntry>>>,
    pub next_client_id: AtomicU64,
    pub started: std::time::Instant,
    pub connected: AtomicU64,
    pub commands_processed: AtomicU64,
}

/// What other connections can see of and do to a client (CLIENT LIST / KILL / UNBLOCK).
pub(crate) struct ClientEntry {
    /// Its CLIENT LIST line, as of its last command.
    pub line: parking_lot::Mutex<String>,
    /// Ends the connection.
    pub kill: CancellationToken,
    /// In a blocking command now.
    pub blocked: std::sync::atomic::AtomicBool,
    /// Ends its blocking command (CLIENT UNBLOCK).
    pub unblock: Arc<Unblock>,
}

/// Accepts RESP connections on `listener` until `cancel` fires.
pub async fn serve_resp(
    listener: TcpListener,
    engine: Arc<RedisEngine>,
    opts: RespFrontendOptions,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    engine.spawn_expiry(cancel.clone());
    let shared = Arc::new(Shared {
        engine,
        config: admin::ConfigStore::new(opts.port),
        stats: info::Stats::default(),
        clients: Default::default(),
        opts,
        broker: pubsub::Broker::default(),
        next_client_id: AtomicU64::new(1),
        started: std::time::Instant::now(),
        connected: AtomicU64::new(0),
        commands_processed: AtomicU64::new(0),
    });
    crate::accept::accept_loop(listener, &cancel, "resp", |stream, peer| {
        let shared = shared.clone();
        let cancel = cancel.clone();
        async move {
            shared.connected.fetch_add(1, Ordering::Relaxed);
            let served = serve_connection(stream, peer, shared.clone(), cancel).await;
            shared.connected.fetch_sub(1, Ordering::Relaxed);
            served
        }
    })
    .await
}

/// Whether the client closed its side: resolves `true` at end of stream or on an error, and
/// `false` as soon as it sends more (pipelined) bytes, which stay buffered for later.
async fn client_gone(stream: &TcpStream) -> bool {
    !matches!(stream.peek(&mut [0u8; 1]).await, Ok(n) if n > 0)
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let kill = cancel.child_token();
    let (inbox, mut pushed) = pubsub::inbox(kill.clone());
    let unblock = Arc::new(Unblock::default());
    let mut conn = Connection::new(id, peer, shared.clone(), inbox, unblock.clone());
    let entry = Arc::new(ClientEntry {
        line: parking_lot::Mutex::new(conn.client_line()),
        kill,
        blocked: Default::default(),
        unblock,
    });
    shared.clients.lock().insert(id, entry.clone());
    let result = serve_requests(&mut stream, &mut conn, &mut pushed, &shared, &entry).await;
    shared.clients.lock().remove(&id);
    conn.close();
    result
}

/// Pipelined replies are written once this much has piled up.
const FLUSH_AT: usize = 64 << 10;

/// Pushed messages are taken from the inbox into the write buffer up to this much at a time,
/// so the inbox's bound (not the buffer) holds what a slow subscriber has not read.
const DRAIN_LIMIT: usize = 256 << 10;

/// Writes `out` (then clears it) unless the connection is killed first: a client that stopped
/// reading must not keep its task, and CLIENT KILL or a full pub/sub inbox must reach it.
/// `Ok(false)` when killed.
async fn write_out(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    cancel: &CancellationToken,
) -> std::io::Result<bool> {
    if out.is_empty() {
        return Ok(true);
    }
    tokio::select! {
        written = stream.write_all(out) => {
            written?;
            out.clear();
            Ok(true)
        }
        _ = cancel.cancelled() => Ok(false),
    }
}

/// Reads, answers and writes until the client leaves, is killed, or the server stops.
async fn serve_requests(
    stream: &mut TcpStream,
    conn: &mut Connection,
    pushed: &mut pubsub::Pushed,
    shared: &Shared,
    entry: &ClientEntry,
) -> std::io::Result<()> {
    let cancel = &entry.kill;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut request = codec::RequestState::default();
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        // Answer every complete request already buffered (pipelining), then write once.
        loop {
            let (max_args, max_bulk) = conn.request_limits();
            match codec::parse_request(&mut buf, &mut request, max_args, max_bulk) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    shared.commands_processed.fetch_add(1, Ordering::Relaxed);
                    let started = std::time::Instant::now();
                    let name = String::from_utf8_lossy(&args[0]).to_lowercase();
                    let rejected = conn.rejects(&args);
                    let blocking = conn.would_block(&args);
                    entry.unblock.clear();
                    entry.blocked.store(blocking, Ordering::SeqCst);
                    // Replies to the commands before a blocking one go out before it waits; a
                    // long pipeline's replies go out as they pile up.
                    if (blocking || out.len() > FLUSH_AT)
                        && !write_out(stream, &mut out, cancel).await?
                    {
                        return Ok(());
                    }
                    let reply = {
                        let handled = conn.handle(args);
                        tokio::pin!(handled);
                        // Only a blocking command waits on the client: any other finishes even
                        // if the client half-closes, as Redis runs what it received.
                        let mut watch_client = blocking;
                        loop {
                            tokio::select! {
                                biased;
                                reply = &mut handled => break Some(reply),
                                // A blocked command (BLPOP …) ends when its client goes away.
                                gone = client_gone(stream), if watch_client => {
                                    if gone {
                                        break None;
                                    }
                                    // More pipelined bytes: they wait in the socket; keep
                                    // honouring KILL and UNBLOCK meanwhile.
                                    watch_client = false;
                                }
                                // CLIENT KILL or shutdown ends a blocked command too
                                // (CLIENT UNBLOCK is the engine's: it may be mid-pop).
                                _ = cancel.cancelled(), if blocking => break None,
                            }
                        }
                    };
                    entry.blocked.store(false, Ordering::SeqCst);
                    let Some(reply) = reply else {
                        return Ok(());
                    };
                    // Only known commands get a statistics entry: unknown names would grow the
                    // table without bound.
                    if conn.knows(&name) {
                        shared
                            .stats
                            .record(&name, started.elapsed(), &reply, rejected);
                    } else {
                        shared.stats.record_error(&reply);
                    }
                    *entry.line.lock() = conn.client_line();
                    // Pub/sub confirmations are pushes: CLIENT REPLY OFF does not silence them.
                    let allowed = conn.take_reply_allowed();
                    if allowed || matches!(reply, thunderdb_compute::redis::Reply::Push(_)) {
                        codec::encode(&mut out, &reply, conn.proto());
                    }
                    // Further confirmations of a (P)SUBSCRIBE of several channels follow their
                    // command's first one, before the next pipelined reply.
                    while out.len() < DRAIN_LIMIT
                        && let Some(more) = pushed.try_recv()
                    {
                        codec::encode(&mut out, &more, conn.proto());
                    }
                    if conn.closing() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let reply = thunderdb_compute::redis::Reply::Error(format!(
                        "ERR Protocol error: {}",
                        e.0
                    ));
                    codec::encode(&mut out, &reply, conn.proto());
                    write_out(stream, &mut out, cancel).await?;
                    return Ok(());
                }
            }
        }
        if !write_out(stream, &mut out, cancel).await? {
            break Ok(());
        }
        if conn.closing() {
            break Ok(());
        }
        tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) => break Ok(()),
                Ok(_) if buf.len() > codec::MAX_QUERY_BUFFER => {
                    // Redis's client-query-buffer-limit: the client is disconnected.
                    let reply = thunderdb_compute::redis::Reply::Error(
                        "ERR Protocol error: client query buffer limit reached".into(),
                    );
                    codec::encode(&mut out, &reply, conn.proto());
                    write_out(stream, &mut out, cancel).await?;
                    break Ok(());
                }
                Ok(_) => {}
                Err(e) => break Err(e),
            },
            Some(message) = pushed.recv() => {
                codec::encode(&mut out, &message, conn.proto());
                while out.len() < DRAIN_LIMIT
                    && let Some(more) = pushed.try_recv()
                {
                    codec::encode(&mut out, &more, conn.proto());
                }
            }
        }
    }
}
