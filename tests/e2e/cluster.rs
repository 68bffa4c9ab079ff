//! The multi-process cluster: three `thunderdb walservice` nodes (a Raft group over gRPC), a
//! `thunderdb pageserver` and stateless `thunderdb compute` nodes, each its own process on
//! 127.0.0.1, killed and restarted by the tests with real signals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use thunderdb_walservice::{RemoteWalOptions, RemoteWalService};
use tokio_postgres::Client;

use crate::bank;
use crate::harness::{DATABASE, PASSWORD, USER, connect_with, describe};
use crate::sql::{exec, query_lines};

/// One process of the cluster. Dropping it kills the process.
struct Node {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// Lines containing "listening on" in the log before the current start.
    ready_lines: usize,
    /// What the last start printed it listens on, by the word before "listening"
    /// (`postgres`, `mysql`, `resp`; `walservice …`, `pageserver`).
    listening: std::collections::HashMap<String, String>,
}

impl Node {
    fn new(name: &str, args: Vec<String>, dir: &Path) -> Node {
        Node {
            name: name.to_string(),
            args,
            env: Vec::new(),
            log: dir.join(format!("{name}.log")),
            child: None,
            ready_lines: 0,
            listening: Default::default(),
        }
    }

    /// Starts the process and waits (up to 60 s) until it prints that it is listening: for a
    /// compute node or the proxy, the PostgreSQL line, which they print last.
    fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the node's log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_thunderdb"));
        crate::harness::hermetic(&mut cmd);
        let child = cmd
            .args(&self.args)
            .env("THUNDERDB_LOG", "info,openraft=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        self.child = Some(child);
        let want = if matches!(self.args[0].as_str(), "compute" | "proxy") {
            "postgres listening on "
        } else {
            "listening on "
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| l.contains(want)).collect();
            if lines.len() > self.ready_lines {
                self.ready_lines = lines.len();
                // This start's lines are the last ones of each kind.
                for line in text.lines() {
                    if let Some((what, addr)) = line.split_once(" listening on ") {
                        let what = what.rsplit(' ').next().unwrap_or(what);
                        self.listening
                            .insert(what.to_string(), addr.trim().to_string());
                    }
                }
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within 60 s:\n{}",
                self.name,
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- {} (log tail) ----\n{}", self.name, self.tail());
        }
    }
}

fn pg_conn_str(addr: &str) -> String {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    format!(
        "host={host} port={port} user={USER} password={PASSWORD} dbname={DATABASE} connect_timeout=10"
    )
}

/// Object storage, shared by the pageserver (layers, segments) and compute (segments).
fn storage_env(dir: &Path) -> Vec<(String, String)> {
    vec![(
        "THUNDERDB_STORAGE_PATH".into(),
        dir.join("objects").display().to_string(),
    )]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Three WAL nodes, a pageserver and `computes` compute nodes, with data under one temporary
/// directory and object storage in a local directory they share.
struct Cluster {
    dir: tempfile::TempDir,
    wal: Vec<Node>,
    wal_addresses: Vec<String>,
    pageserver: Node,
    pageserver_address: String,
    computes: Vec<Node>,
}

impl Cluster {
    fn start(computes: usize) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("thunderdb-cluster-")
            .tempdir()
            .expect("a temporary directory");
        let wal_addresses: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let members: Vec<String> = wal_addresses
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect();
        let mut wal: Vec<Node> = wal_addresses
            .iter()
            .enumerate()
            .map(|(i, address)| {
                let id = i + 1;
                Node::new(
                    &format!("walservice-{id}"),
                    vec![
                        "walservice".into(),
                        "--node-id".into(),
                        id.to_string(),
                        "--listen".into(),
                        address.clone(),
                        "--members".into(),
                        members.join(","),
                        "--data-dir".into(),
                        dir.path().join(format!("wal-{id}")).display().to_string(),
                    ],
                    dir.path(),
                )
            })
            .collect();
        for node in &mut wal {
            node.start();
        }
        let pageserver_address = format!("127.0.0.1:{}", free_port());
        let mut pageserver = Node::new(
            "pageserver",
            vec![
                "pageserver".into(),
                "--listen".into(),
                pageserver_address.clone(),
                "--wal-nodes".into(),
                wal_addresses.join(","),
                "--data-dir".into(),
                dir.path().join("pageserver").display().to_string(),
            ],
            dir.path(),
        );
        pageserver.env = storage_env(dir.path());
        pageserver.start();
        let mut cluster = Cluster {
            dir,
            wal,
            wal_addresses,
            pageserver,
            pageserver_address,
            computes: Vec::new(),
        };
        for _ in 0..computes {
            cluster.add_compute();
        }
        cluster
    }

    /// Starts one more compute node (fresh data directory, frontends on free ports); returns
    /// its index and how long it took to serve a query.
    fn add_compute(&mut self) -> (usize, Duration) {
        let index = self.computes.len();
        let mut node = Node::new(
            &format!("compute-{index}"),
            vec![
                "compute".into(),
                // Fixed ports, so a restarted node is where the proxy expects it.
                "--pg-port".into(),
                free_port().to_string(),
                "--mysql-port".into(),
                free_port().to_string(),
                "--resp-port".into(),
                free_port().to_string(),
                "--wal-nodes".into(),
                self.wal_addresses.join(","),
                "--pageserver".into(),
                self.pageserver_address.clone(),
                "--data-dir".into(),
                self.dir
                    .path()
                    .join(format!("compute-{index}"))
                    .display()
                    .to_string(),
            ],
            self.dir.path(),
        );
        node.env = storage_env(self.dir.path());
        let started = Instant::now();
        node.start();
        self.computes.push(node);
        (index, started.elapsed())
    }

    fn conn_str(&self, compute: usize) -> String {
        pg_conn_str(&self.computes[compute].listening["postgres"])
    }

    async fn connect(&self, compute: usize) -> Client {
        connect_with(&self.conn_str(compute))
            .await
            .unwrap_or_else(|e| panic!("connect to compute {compute}: {}", describe(&e)))
    }

    fn wal_client(&self) -> Arc<RemoteWalService> {
        RemoteWalService::connect(RemoteWalOptions {
            nodes: self.wal_addresses.clone(),
            request_timeout: Duration::from_secs(5),
        })
        .expect("a WAL client")
    }

    /// The index (0-based) of the WAL node that leads, once the live nodes agree on one.
    async fn wal_leader(&self) -> usize {
        let client = self.wal_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for (i, (_, status)) in client.statuses().await.into_iter().enumerate() {
                if status.is_ok_and(|s| s.state == "leader") {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no WAL leader within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every WAL node answers and has applied the same LSN.
    async fn wal_caught_up(&self) -> u64 {
        let client = self.wal_client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let lsns: Vec<Option<u64>> = client
                .statuses()
                .await
                .into_iter()
                .map(|(_, s)| s.ok().map(|s| s.applied_lsn))
                .collect();
            if lsns.iter().all(|l| l.is_some() && *l == lsns[0]) {
                return lsns[0].unwrap_or(0);
            }
            assert!(
                Instant::now() < deadline,
                "WAL nodes did not converge: {lsns:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What `compute_and_pageserver_are_replaceable` asks before and after the pageserver restart.
async fn item_answers(client: &Client) -> (Vec<String>, Vec<String>) {
    (
        query_lines(client, "SELECT count(*), sum(qty), max(name) FROM items").await,
        query_lines(client, "SELECT name FROM items WHERE id = 1234").await,
    )
}

/// 8 clients move money through one compute node while the WAL leader is SIGKILLed: the
/// group elects another and commits resume; afterwards the balances are exactly the initial
/// ones plus every acknowledged transfer (no client saw an error), and the killed node, back,
/// catches up with the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wal_leader_killed_during_bank_transfers_loses_nothing() {
    let mut cluster = Cluster::start(1);
    let client = cluster.connect(0).await;
    bank::create_accounts(&client).await;
    let committed = Arc::new(AtomicU64::new(0));
    let workload = bank::Workload {
        clients: 8,
        duration: Duration::from_secs(12),
        seed: bank::seed(),
        crash_expected: false,
    };
    let run = tokio::spawn(bank::run(cluster.conn_str(0), workload, committed.clone()));
    // Let the workload get going.
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed.load(Ordering::SeqCst) < 50 {
        assert!(Instant::now() < deadline, "the workload did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = cluster.wal_leader().await;
    let before = committed.load(Ordering::SeqCst);
    let killed_at = Instant::now();
    cluster.wal[leader].kill9();
    while committed.load(Ordering::SeqCst) == before {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "no commit within 30 s of killing the WAL leader"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "commits resumed {} ms after SIGKILL of WAL leader {} ({before} transfers before it)",
        killed_at.elapsed().as_millis(),
        leader + 1
    );
    let reports = run
        .await
        .expect("the workload task")
        .unwrap_or_else(|failures| panic!("bank clients failed:\n{failures}"));
    let acknowledged = bank::committed(&reports);
    assert!(
        acknowledged.len() as u64 > before,
        "transfers committed after the kill"
    );
    let actual = bank::balances(&client).await;
    bank::audit(&actual, &bank::initial_balances(), &acknowledged, &[])
        .unwrap_or_else(|problems| panic!("after the fail-over:\n{problems}"));
    eprintln!(
        "{} transfers acknowledged, {} retried conflicts; balances exact",
        acknowledged.len(),
        bank::conflicts(&reports)
    );
    // The old leader comes back as a follower and catches up.
    cluster.wal[leader].start();
    let lsn = cluster.wal_caught_up().await;
    assert!(lsn > 0);
}

/// One follower down: commits go on. Two of three down: a commit fails with SQLSTATE 08006 in
/// bounded time while an open transaction still reads at its snapshot. The nodes back: commits
/// work again. Then every process is SIGKILLed and restarted: all acknowledged data is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quorum_loss_fails_in_bounded_time_and_a_full_restart_keeps_everything() {
    let mut cluster = Cluster::start(1);
    let client = cluster.connect(0).await;
    exec(&client, "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)").await;
    exec(
        &client,
        "INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 100) g",
    )
    .await;
    let leader = cluster.wal_leader().await;
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

    // The cluster view: every node, one WAL leader, and the follower once it is killed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let nodes = loop {
        // Refreshed every second: wait for a view with the leader in it.
        let nodes = query_lines(
            &client,
            "SELECT node, role, state, raft_leader FROM thunder_cluster_nodes ORDER BY role, node",
        )
        .await;
        if nodes.iter().any(|n| n.ends_with("|leader|t")) || Instant::now() > deadline {
            break nodes;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(nodes.len(), 5, "{nodes:?}");
    assert!(
        nodes[0].starts_with("compute-") && nodes[0].ends_with("|compute|up|NULL"),
        "{nodes:?}"
    );
    assert_eq!(nodes[1], "pageserver|pageserver|up|NULL");
    assert_eq!(
        nodes.iter().filter(|n| n.ends_with("|leader|t")).count(),
        1,
        "{nodes:?}"
    );
    assert_eq!(
        nodes[2 + leader],
        format!("wal-{}|walservice|leader|t", leader + 1),
        "{nodes:?}"
    );
    cluster.wal[followers[0]].kill9();
    let down = format!("wal-{}|unreachable", followers[0] + 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = query_lines(
            &client,
            "SELECT node, state FROM thunder_cluster_nodes WHERE role = 'walservice' ORDER BY node",
        )
        .await;
        if rows.contains(&down) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed node is not shown: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    for k in 101..=120 {
        exec(&client, &format!("INSERT INTO kv VALUES ({k}, 'one down')")).await;
    }
    eprintln!(
        "20 commits with one follower down: {} ms",
        started.elapsed().as_millis()
    );

    let reader = cluster.connect(0).await;
    exec(&reader, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    assert_eq!(
        query_lines(&reader, "SELECT count(*) FROM kv").await,
        ["120"]
    );

    cluster.wal[followers[1]].kill9();
    let started = Instant::now();
    let failed = tokio::time::timeout(
        Duration::from_secs(120),
        client.simple_query("INSERT INTO kv VALUES (1000, 'no quorum')"),
    )
    .await
    .expect("a commit without a quorum must fail, not hang");
    let err = failed.expect_err("a commit without a quorum must fail");
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("an error from the server: {err:?}"));
    assert_eq!(db.code().code(), "08006", "{}", db.message());
    // The statement fails when it asks for its snapshot, or when it commits (then the
    // outcome is unknown); either way the message says what is missing.
    assert!(
        db.message().contains("no quorum") || db.message().contains("commit outcome unknown"),
        "{}",
        db.message()
    );
    eprintln!(
        "commit without a quorum failed after {} ms: {}",
        started.elapsed().as_millis(),
        db.message()
    );
    // The open transaction still reads at its snapshot.
    assert_eq!(
        query_lines(&reader, "SELECT count(*), max(k) FROM kv").await,
        ["120|120"]
    );
    assert_eq!(
        query_lines(&reader, "SELECT v FROM kv WHERE k = 7").await,
        ["v7"]
    );
    exec(&reader, "COMMIT").await;

    for i in &followers {
        cluster.wal[*i].start();
    }
    // The failed INSERT's outcome was unknown: the leader may still commit it once it has a
    // quorum again. Whichever it is, it is there exactly once or not at all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client
            .simple_query("INSERT INTO kv VALUES (121, 'back')")
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "commits did not come back: {}",
                    describe(&e)
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let unknown = query_lines(&client, "SELECT count(*) FROM kv WHERE k = 1000").await;
    assert!(unknown == ["0"] || unknown == ["1"], "{unknown:?}");
    let expected_rows = 121 + unknown[0].parse::<i64>().unwrap();

    // Every process dies at once and comes back.
    drop(client);
    drop(reader);
    for n in cluster.computes.iter_mut() {
        n.kill9();
    }
    cluster.pageserver.kill9();
    for n in cluster.wal.iter_mut() {
        n.kill9();
    }
    for n in cluster.wal.iter_mut() {
        n.start();
    }
    cluster.pageserver.start();
    cluster.computes[0].start();
    let client = cluster.connect(0).await;
    assert_eq!(
        query_lines(
            &client,
            "SELECT count(*), sum(k) FILTER (WHERE k <= 121) FROM kv"
        )
        .await,
        [format!("{expected_rows}|{}", 121 * 122 / 2)]
    );
    assert_eq!(
        query_lines(
            &client,
            "SELECT v FROM kv WHERE k IN (7, 110, 121) ORDER BY k"
        )
        .await,
        ["v7", "one down", "back"]
    );
    exec(&client, "INSERT INTO kv VALUES (122, 'after restart')").await;
}

/// Compute holds nothing durable: two compute nodes see each other's commits at once; one is
/// SIGKILLed (its sessions get a connection error, the other's go on) and a new one, on an
/// empty directory, serves the same data. The pageserver is SIGKILLed and its directory
/// deleted: restarted, it rebuilds from object storage and the WAL, and every query answers
/// as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compute_and_pageserver_are_replaceable() {
    let mut cluster = Cluster::start(2);
    let a = cluster.connect(0).await;
    let b = cluster.connect(1).await;
    exec(
        &a,
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, qty INT)",
    )
    .await;
    exec(
        &a,
        "INSERT INTO items SELECT g, 'item ' || g, g % 10 FROM generate_series(1, 2000) g",
    )
    .await;
    // A commit on one compute node is visible on the other at once.
    assert_eq!(
        query_lines(&b, "SELECT count(*), sum(qty) FROM items").await,
        ["2000|9000"]
    );
    exec(&b, "UPDATE items SET qty = qty + 1 WHERE id <= 100").await;
    assert_eq!(
        query_lines(&a, "SELECT sum(qty) FROM items").await,
        ["9100"]
    );
    // Write-write conflicts across compute nodes are decided by the WAL: first committer wins.
    exec(&a, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    exec(&b, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    exec(&a, "UPDATE items SET qty = 0 WHERE id = 1").await;
    exec(&b, "UPDATE items SET qty = 99 WHERE id = 1").await;
    exec(&a, "COMMIT").await;
    let err = b
        .simple_query("COMMIT")
        .await
        .expect_err("the second committer");
    assert_eq!(
        err.as_db_error().map(|d| d.code().code()),
        Some("40001"),
        "{}",
        describe(&err)
    );

    cluster.computes[0].kill9();
    let err = a
        .simple_query("SELECT 1")
        .await
        .expect_err("the killed compute's session");
    assert!(err.as_db_error().is_none(), "{}", describe(&err));
    assert_eq!(
        query_lines(&b, "SELECT qty FROM items WHERE id = 1").await,
        ["0"]
    );
    let (c, startup) = cluster.add_compute();
    let c = {
        let client = cluster.connect(c).await;
        eprintln!(
            "a new compute node served a query {} ms after it was started",
            startup.as_millis()
        );
        client
    };
    assert_eq!(
        query_lines(&c, "SELECT count(*), sum(qty) FROM items").await,
        ["2000|9098"]
    );

    let before = item_answers(&c).await;
    cluster.pageserver.kill9();
    let pageserver_dir = cluster.dir.path().join("pageserver");
    std::fs::remove_dir_all(&pageserver_dir).expect("delete the pageserver's directory");
    cluster.pageserver.start();
    // The compute node reconnects to the new pageserver on its own.
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        match c.simple_query("SELECT 1").await {
            Ok(_) => break item_answers(&c).await,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no answer after the pageserver restart: {}",
                    describe(&e)
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(after, before);
    exec(&c, "INSERT INTO items VALUES (2001, 'new', 1)").await;
    assert_eq!(
        query_lines(&b, "SELECT name FROM items WHERE id = 2001").await,
        ["new"]
    );
}

/// The proxy, in front of the cluster's compute nodes.
fn start_proxy(cluster: &Cluster) -> Node {
    let computes: Vec<String> = cluster
        .computes
        .iter()
        .map(|c| {
            let port = |what: &str| {
                c.listening[what]
                    .rsplit_once(':')
                    .expect("host:port")
                    .1
                    .to_string()
            };
            format!(
                "127.0.0.1:{}:{}:{}",
                port("postgres"),
                port("mysql"),
                port("resp")
            )
        })
        .collect();
    let mut proxy = Node::new(
        "proxy",
        vec![
            "proxy".into(),
            "--pg-port".into(),
            "0".into(),
            "--mysql-port".into(),
            "0".into(),
            "--resp-port".into(),
            "0".into(),
            "--computes".into(),
            computes.join(","),
        ],
        cluster.dir.path(),
    );
    proxy.env = vec![
        ("THUNDERDB_HEALTH_INTERVAL_MS".into(), "200".into()),
        ("THUNDERDB_DRAIN_TIMEOUT_SECS".into(), "60".into()),
    ];
    proxy.start();
    proxy
}

async fn backend_pid(client: &Client) -> String {
    query_lines(client, "SELECT pg_backend_pid()")
        .await
        .remove(0)
}

/// The proxy spreads sessions over two compute nodes by least connections for PostgreSQL,
/// MySQL and RESP clients; cancels reach the right node; a killed node's sessions fail and new
/// ones go to the survivor; with no node left a client gets 08006; a restarted node is used
/// again; on SIGTERM the proxy refuses new sessions and exits once the open one ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_routes_sessions_by_least_connections_and_drains_on_sigterm() {
    let mut cluster = Cluster::start(2);
    let mut proxy = start_proxy(&cluster);
    let via_proxy = pg_conn_str(&proxy.listening["postgres"]);
    let mut sessions = Vec::new();
    for _ in 0..6 {
        sessions.push(
            connect_with(&via_proxy)
                .await
                .expect("connect through the proxy"),
        );
    }
    let mut pids = Vec::new();
    for s in &sessions {
        pids.push(backend_pid(s).await);
    }
    let mut distinct = pids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "sessions on two nodes: {pids:?}");
    assert_eq!(
        pids.iter().filter(|p| **p == distinct[0]).count(),
        3,
        "least connections splits 6 sessions 3/3: {pids:?}"
    );
    exec(&sessions[0], "CREATE TABLE routed (id INT PRIMARY KEY)").await;
    exec(&sessions[1], "INSERT INTO routed VALUES (1), (2)").await;
    for s in &sessions {
        assert_eq!(query_lines(s, "SELECT count(*) FROM routed").await, ["2"]);
    }

    // MySQL and RESP sessions go through it too.
    let mysql_addr = &proxy.listening["mysql"];
    let url = format!("mysql://{USER}:{PASSWORD}@{mysql_addr}/{DATABASE}");
    let mut my = mysql_async::Conn::from_url(url)
        .await
        .expect("MySQL through the proxy");
    use mysql_async::prelude::Queryable;
    let n: Option<i64> = my
        .query_first("SELECT count(*) FROM routed")
        .await
        .expect("a MySQL query");
    assert_eq!(n, Some(2));
    drop(my);
    let mut resp = tokio::net::TcpStream::connect(&proxy.listening["resp"])
        .await
        .expect("RESP through the proxy");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    resp.write_all(b"SET routed-key hello\r\nGET routed-key\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    while !reply.ends_with(b"hello\r\n") {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(30), resp.read(&mut buf))
            .await
            .expect("a RESP reply in time")
            .unwrap();
        assert!(n > 0, "RESP connection closed: {reply:?}");
        reply.extend_from_slice(&buf[..n]);
    }
    assert_eq!(reply, b"+OK\r\n$5\r\nhello\r\n");
    drop(resp);

    // A cancel through the proxy reaches the node running the statement.
    let long = connect_with(&via_proxy).await.unwrap();
    let token = long.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..60 {
            let _ = token.cancel_query(tokio_postgres::NoTls).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let err = long
        .simple_query(
            "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
        )
        .await
        .expect_err("the statement is cancelled");
    canceller.abort();
    assert_eq!(
        err.as_db_error().map(|d| d.code().code()),
        Some("57014"),
        "{}",
        describe(&err)
    );

    // One node dies: its sessions fail, new sessions go to the other one.
    let killed_pid = pids[0].clone();
    let killed = cluster
        .computes
        .iter()
        .position(|c| {
            c.child
                .as_ref()
                .is_some_and(|ch| ch.id().to_string() == killed_pid)
        })
        .expect("the node of the first session");
    cluster.computes[killed].kill9();
    assert!(sessions[0].simple_query("SELECT 1").await.is_err());
    for _ in 0..4 {
        let s = connect_with(&via_proxy)
            .await
            .expect("a session on the survivor");
        assert_ne!(backend_pid(&s).await, killed_pid);
    }
    // None left: the client gets a PostgreSQL error, not a hang or a reset.
    let survivor = 1 - killed;
    cluster.computes[survivor].kill9();
    let err = connect_with(&via_proxy).await.expect_err("no compute node");
    assert_eq!(
        err.as_db_error().map(|d| d.code().code()),
        Some("08006"),
        "{}",
        describe(&err)
    );
    // Back: the proxy finds it at its next health check.
    cluster.computes[killed].start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let back = loop {
        match connect_with(&via_proxy).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the restarted node is not used: {}",
                    describe(&e)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(
        query_lines(&back, "SELECT count(*) FROM routed").await,
        ["2"]
    );

    // SIGTERM: no new sessions; the open one goes on; the proxy exits when it ends.
    let pid = proxy.child.as_ref().expect("the proxy runs").id();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while connect_with(&via_proxy).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the proxy still accepts after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        query_lines(&back, "SELECT count(*) FROM routed").await,
        ["2"]
    );
    let child = proxy.child.as_mut().unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the proxy waits for the open session"
    );
    drop(back);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = proxy.child.as_mut().unwrap().try_wait().unwrap() {
            assert!(status.success(), "proxy exit: {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not exit after its last session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.child = None;
}

/// `thunderdb walctl members` replaces a dead WAL node with a new, empty one: the new node
/// catches up and votes, so the group survives losing another of the original nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn walctl_replaces_a_dead_wal_node() {
    let mut cluster = Cluster::start(1);
    let client = cluster.connect(0).await;
    exec(&client, "CREATE TABLE m (k INT PRIMARY KEY)").await;
    exec(
        &client,
        "INSERT INTO m SELECT g FROM generate_series(1, 50) g",
    )
    .await;
    cluster.wal[2].kill9();
    let address = format!("127.0.0.1:{}", free_port());
    let mut fourth = Node::new(
        "walservice-4",
        vec![
            "walservice".into(),
            "--node-id".into(),
            "4".into(),
            "--listen".into(),
            address.clone(),
            "--data-dir".into(),
            cluster.dir.path().join("wal-4").display().to_string(),
        ],
        cluster.dir.path(),
    );
    fourth.start();
    let voters = format!(
        "1={},2={},4={address}",
        cluster.wal_addresses[0], cluster.wal_addresses[1]
    );
    let walctl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_thunderdb"))
            .arg("walctl")
            .arg("--nodes")
            .arg(cluster.wal_addresses[..2].join(","))
            .args(args)
            .output()
            .expect("run walctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = walctl(&["members", &voters]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("4={address}")), "{out}");
    // A bad member list is refused with the reason.
    let (ok, out) = walctl(&["members", "1=nowhere"]);
    assert!(!ok && out.contains("is not host:port"), "{out}");
    exec(&client, "INSERT INTO m VALUES (51)").await;
    // Without node 1 (or 2), nodes 2 (or 1) and 4 are a quorum of the new group.
    // Kill whichever of nodes 1 and 2 does not lead (node 4 may lead by now).
    let group = RemoteWalService::connect(RemoteWalOptions {
        nodes: vec![
            cluster.wal_addresses[0].clone(),
            cluster.wal_addresses[1].clone(),
            address.clone(),
        ],
        request_timeout: Duration::from_secs(5),
    })
    .expect("a WAL client");
    let first_leads = group.statuses().await[0]
        .1
        .as_ref()
        .is_ok_and(|s| s.state == "leader");
    cluster.wal[if first_leads { 1 } else { 0 }].kill9();
    exec(&client, "INSERT INTO m VALUES (52)").await;
    assert_eq!(query_lines(&client, "SELECT count(*) FROM m").await, ["52"]);
    let (ok, out) = walctl(&["status"]);
    assert!(ok, "{out}");
    assert!(out.contains("leader"), "{out}");
}
