//! The session router of `thunderdb proxy`: clients connect to the proxy's PostgreSQL, MySQL
//! and RESP ports, and each new session goes to the healthy compute node with the fewest open
//! sessions, whose frontend then speaks the protocol (TLS and authentication included) over the
//! connection the proxy relays byte for byte.
//!
//! A compute node is healthy while it answers a PostgreSQL SSLRequest; one that stops is taken
//! out of rotation at the next check (or at once, when a connection to it fails) and back in
//! when it answers again. A PostgreSQL CancelRequest names a session by its key, not its node:
//! it goes to every healthy node, and the one that owns the session acts on it. When no node
//! is available, the client gets its protocol's error (SQLSTATE 08006, MySQL 1053, RESP -ERR).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The protocols the router relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Postgres,
    MySql,
    Resp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Postgres => "postgres",
            Protocol::MySql => "mysql",
            Protocol::Resp => "resp",
        }
    }
}

/// A compute node's frontend addresses (`None`: it does not serve that protocol).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputeAddresses {
    pub postgres: String,
    pub mysql: Option<String>,
    pub resp: Option<String>,
}

impl ComputeAddresses {
    /// Parses `host:pg_port[:mysql_port[:resp_port]]` (a port 0 or left out: not served).
    pub fn parse(text: &str) -> Result<ComputeAddresses, String> {
        let bad = || format!("{text:?} is not host:pg_port[:mysql_port[:resp_port]]");
        let mut parts = text.trim().split(':');
        let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let mut ports = Vec::new();
        for p in parts {
            ports.push(p.parse::<u16>().map_err(|_| bad())?);
        }
        if ports.is_empty() || ports.len() > 3 || ports[0] == 0 {
            return Err(bad());
        }
        let at = |i: usize| {
            ports
                .get(i)
                .filter(|p| **p != 0)
                .map(|p| format!("{host}:{p}"))
        };
        Ok(ComputeAddresses {
            postgres: format!("{host}:{}", ports[0]),
            mysql: at(1),
            resp: at(2),
        })
    }

    fn of(&self, protocol: Protocol) -> Option<&str> {
        match protocol {
            Protocol::Postgres => Some(&self.postgres),
            Protocol::MySql => self.mysql.as_deref(),
            Protocol::Resp => self.resp.as_deref(),
        }
    }
}

/// How the router runs.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    pub computes: Vec<ComputeAddresses>,
    /// How often each node is checked.
    pub health_interval: Duration,
    /// How long a connection to a node may take.
    pub connect_timeout: Duration,
}

/// One compute node as the router tracks it.
#[derive(Debug)]
pub struct ComputeNode {
    pub addresses: ComputeAddresses,
    healthy: AtomicBool,
    sessions: AtomicUsize,
    routed: AtomicUsize,
}

impl ComputeNode {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Sessions open through the router now.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }

    /// Sessions routed here since the router started.
    pub fn routed(&self) -> usize {
        self.routed.load(Ordering::SeqCst)
    }
}

/// The router's state: the nodes, and the sessions it relays.
pub struct Router {
    nodes: Vec<Arc<ComputeNode>>,
    opts: RouterOptions,
    /// Sessions open across every node.
    open: AtomicUsize,
    /// Picks among equally loaded nodes in turn.
    next: AtomicUsize,
}

/// Counts a session against its node while it lives.
struct SessionGuard<'a> {
    router: &'a Router,
    node: Arc<ComputeNode>,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.node.sessions.fetch_sub(1, Ordering::SeqCst);
        self.router.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Router {
    pub fn new(opts: RouterOptions) -> Arc<Router> {
        let nodes = opts
            .computes
            .iter()
            .map(|a| {
                Arc::new(ComputeNode {
                    addresses: a.clone(),
                    // Optimistic until the first check says otherwise: a node that fails is
                    // marked down on the first connection to it.
                    healthy: AtomicBool::new(true),
                    sessions: AtomicUsize::new(0),
                    routed: AtomicUsize::new(0),
                })
            })
            .collect();
        Arc::new(Router {
            nodes,
            opts,
            open: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        })
    }

    pub fn nodes(&self) -> &[Arc<ComputeNode>] {
        &self.nodes
    }

    /// Sessions open across every node.
    pub fn open_sessions(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Checks every node every `health_interval` until `cancel`.
    pub async fn check_health(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let checks = self.nodes.iter().map(|node| {
                let timeout = self.opts.connect_timeout;
                async move {
                    let up = answers_ssl_request(&node.addresses.postgres, timeout).await;
                    let was = node.healthy.swap(up, Ordering::SeqCst);
                    if was != up {
                        let state = if up { "up" } else { "down" };
                        tracing::info!(node = %node.addresses.postgres, "compute node {state}");
                    }
                }
            });
            futures::future::join_all(checks).await;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.opts.health_interval) => {}
            }
        }
    }

    /// Healthy nodes serving `protocol`, fewest sessions first (ties in turn).
    fn candidates(&self, protocol: Protocol) -> Vec<Arc<ComputeNode>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.nodes.len();
        let mut nodes: Vec<(usize, Arc<ComputeNode>)> = (0..n)
            .map(|i| (i, self.nodes[(start + i) % n].clone()))
            .filter(|(_, node)| node.is_healthy() && node.addresses.of(protocol).is_some())
            .collect();
        nodes.sort_by_key(|(turn, node)| (node.sessions(), *turn));
        nodes.into_iter().map(|(_, node)| node).collect()
    }

    /// Connects a new session to the least loaded node that accepts it.
    async fn connect(&self, protocol: Protocol) -> Option<(TcpStream, SessionGuard<'_>)> {
        for node in self.candidates(protocol) {
            let address = node
                .addresses
                .of(protocol)
                .expect("filtered on the protocol");
            // Counted before the connection, so concurrent sessions spread.
            node.sessions.fetch_add(1, Ordering::SeqCst);
            self.open.fetch_add(1, Ordering::SeqCst);
            let guard = SessionGuard {
                router: self,
                node: node.clone(),
            };
            match tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(address)).await
            {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    node.routed.fetch_add(1, Ordering::SeqCst);
                    return Some((stream, guard));
                }
                Ok(Err(e)) => {
                    tracing::warn!(node = %address, error = %e, "compute node unreachable; marked down");
                }
                Err(_) => {
                    tracing::warn!(node = %address, "compute node did not accept in time; marked down");
                }
            }
            node.healthy.store(false, Ordering::SeqCst);
        }
        None
    }

    /// Relays one client connection.
    async fn relay(&self, protocol: Protocol, mut client: TcpStream) -> std::io::Result<()> {
        let _ = client.set_nodelay(true);
        // The PostgreSQL client speaks first; a CancelRequest is not a session.
        let mut first = Vec::new();
        if protocol == Protocol::Postgres {
            let mut header = [0u8; 8];
            client.read_exact(&mut header).await?;
            let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let code = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            first.extend_from_slice(&header);
            if length == 16 && code == CANCEL_REQUEST_CODE {
                let mut key = [0u8; 8];
                client.read_exact(&mut key).await?;
                first.extend_from_slice(&key);
                self.broadcast_cancel(&first).await;
                return Ok(());
            }
        }
        let Some((mut server, _guard)) = self.connect(protocol).await else {
            tracing::warn!(protocol = protocol.name(), "no compute node available");
            client.write_all(&no_node_error(protocol)).await?;
            let _ = client.shutdown().await;
            return Ok(());
        };
        server.write_all(&first).await?;
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        Ok(())
    }

    async fn broadcast_cancel(&self, request: &[u8]) {
        let sends = self
            .nodes
            .iter()
            .filter(|n| n.is_healthy())
            .map(|n| async move {
                let connect = TcpStream::connect(&n.addresses.postgres);
                if let Ok(Ok(mut s)) =
                    tokio::time::timeout(self.opts.connect_timeout, connect).await
                {
                    let _ = s.write_all(request).await;
                    let _ = s.shutdown().await;
                }
            });
        futures::future::join_all(sends).await;
    }

    /// Accepts clients of `protocol` on `listener` until `stop`; relays each to a node.
    pub async fn serve(
        self: Arc<Self>,
        protocol: Protocol,
        listener: TcpListener,
        stop: CancellationToken,
    ) -> std::io::Result<()> {
        let router = self.clone();
        crate::accept::accept_loop(listener, &stop, protocol.name(), move |stream, _peer| {
            let router = router.clone();
            async move { router.relay(protocol, stream).await }
        })
        .await
    }

    /// Waits until every relayed session has ended, at most `within`; returns how many are
    /// still open.
    pub async fn drain(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        while self.open_sessions() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.open_sessions()
    }
}

const CANCEL_REQUEST_CODE: u32 = 80_877_102;
const SSL_REQUEST_CODE: u32 = 80_877_103;

/// Whether a PostgreSQL frontend answers an SSLRequest with `S` or `N` in time.
async fn answers_ssl_request(address: &str, timeout: Duration) -> bool {
    let check = async {
        let mut s = TcpStream::connect(address).await?;
        let mut request = 8u32.to_be_bytes().to_vec();
        request.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        s.write_all(&request).await?;
        let mut answer = [0u8; 1];
        s.read_exact(&mut answer).await?;
        Ok::<bool, std::io::Error>(matches!(answer[0], b'S' | b'N'))
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Ok(true)))
}

const NO_NODE: &str = "no compute node is available";

/// The protocol's own error for a session that cannot be placed.
fn no_node_error(protocol: Protocol) -> Vec<u8> {
    match protocol {
        Protocol::Postgres => {
            // ErrorResponse: severity, SQLSTATE 08006 (connection failure), message.
            let mut body = Vec::new();
            for (field, value) in [
                (b'S', "FATAL"),
                (b'V', "FATAL"),
                (b'C', "08006"),
                (b'M', NO_NODE),
            ] {
                body.push(field);
                body.extend_from_slice(value.as_bytes());
                body.push(0);
            }
            body.push(0);
            let mut out = vec![b'E'];
            out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
            out.extend_from_slice(&body);
            out
        }
        Protocol::MySql => {
            // The server speaks first: an ERR packet in place of the handshake, as MySQL does
            // for "Too many connections". 1053: ER_SERVER_SHUTDOWN, SQLSTATE 08S01.
            let mut payload = vec![0xff];
            payload.extend_from_slice(&1053u16.to_le_bytes());
            payload.extend_from_slice(b"#08S01");
            payload.extend_from_slice(NO_NODE.as_bytes());
            let len = payload.len() as u32;
            let mut out = len.to_le_bytes()[..3].to_vec();
            out.push(0);
            out.extend_from_slice(&payload);
            out
        }
        Protocol::Resp => format!("-ERR {NO_NODE}\r\n").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_addresses_parse() {
        let a = ComputeAddresses::parse("127.0.0.1:5433:3307:6380").unwrap();
        assert_eq!(a.postgres, "127.0.0.1:5433");
        assert_eq!(a.mysql.as_deref(), Some("127.0.0.1:3307"));
        assert_eq!(a.resp.as_deref(), Some("127.0.0.1:6380"));
        let pg_only = ComputeAddresses::parse("db1:5432").unwrap();
        assert_eq!(pg_only.mysql, None);
        let no_mysql = ComputeAddresses::parse("db1:5432:0:6379").unwrap();
        assert_eq!(no_mysql.mysql, None);
        assert!(no_mysql.resp.is_some());
        for bad in ["", "db1", "db1:0", ":5432", "db1:x", "db1:1:2:3:4"] {
            assert!(ComputeAddresses::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_are_well_formed_protocol_messages() {
        let pg = no_node_error(Protocol::Postgres);
        assert_eq!(pg[0], b'E');
        let len = u32::from_be_bytes([pg[1], pg[2], pg[3], pg[4]]) as usize;
        assert_eq!(len + 1, pg.len());
        assert!(pg.windows(5).any(|w| w == b"08006"));
        let my = no_node_error(Protocol::MySql);
        let len = u32::from_le_bytes([my[0], my[1], my[2], 0]) as usize;
        assert_eq!(len + 4, my.len());
        assert_eq!(my[4], 0xff);
        assert_eq!(u16::from_le_bytes([my[5], my[6]]), 1053);
        assert_eq!(
            no_node_error(Protocol::Resp),
            b"-ERR no compute node is available\r\n"
        );
    }

    /// Sessions go to the node with the fewest; a node that stops answering is skipped.
    #[tokio::test]
    async fn least_sessions_first_and_dead_nodes_skipped() {
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let router = Router::new(RouterOptions {
            computes: [
                a.local_addr().unwrap().to_string(),
                b.local_addr().unwrap().to_string(),
                dead_addr,
            ]
            .iter()
            .map(|addr| ComputeAddresses {
                postgres: addr.clone(),
                mysql: None,
                resp: None,
            })
            .collect(),
            health_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        });
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(router.connect(Protocol::Postgres).await.unwrap());
        }
        let sessions: Vec<usize> = router.nodes().iter().map(|n| n.sessions()).collect();
        assert_eq!(sessions, [2, 2, 0]);
        assert!(!router.nodes()[2].is_healthy());
        assert!(router.connect(Protocol::MySql).await.is_none());
        // Ending sessions on `a` makes it the least loaded.
        held.retain(|(_, g)| !Arc::ptr_eq(&g.node, &router.nodes()[0]));
        assert_eq!(router.open_sessions(), 2);
        let (_, guard) = router.connect(Protocol::Postgres).await.unwrap();
        assert!(Arc::ptr_eq(&guard.node, &router.nodes()[0]));
        drop(guard);
        drop(held);
        assert_eq!(router.drain(Duration::from_millis(10)).await, 0);
    }
}
