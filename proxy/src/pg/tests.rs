//! The frontend end to end: a real engine over a local WAL service and pageserver, served on
//! a local port, driven by tokio-postgres and by hand-made bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thunderdb_compute::{Engine, EngineOptions};
use thunderdb_pageserver::{LocalPageServer, PageServerOptions};
use thunderdb_walservice::{LocalWalService, WalServiceOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_util::sync::CancellationToken;

use super::{PgFrontendOptions, serve_postgres};

const USER: &str = "alice";
const PASSWORD: &str = "pencil";
const DATABASE: &str = "db";

struct TestServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// An engine over a WAL and a pageserver in `dir`, stopped by `cancel`.
async fn engine_in(dir: &std::path::Path, cancel: &CancellationToken) -> Arc<Engine> {
    let wal = LocalWalService::start(WalServiceOptions::single(dir.to_owned(), false, 64))
        .await
        .expect("wal");
    wal.wait_ready(Duration::from_secs(10))
        .await
        .expect("leader");
    let pages = LocalPageServer::start(
        wal.clone(),
        PageServerOptions::new(dir.to_owned()),
        cancel.clone(),
    )
    .await
    .expect("pageserver");
    Engine::new(
        wal,
        pages,
        EngineOptions {
            database: DATABASE.into(),
            superuser: USER.into(),
            columnar: Default::default(),
            dir: None,
        },
    )
}

async fn start() -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let cancel = CancellationToken::new();
    let engine = engine_in(dir.path(), &cancel).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let opts = PgFrontendOptions {
        users: vec![(USER.into(), PASSWORD.into())],
        auth_method: Default::default(),
        server_version: "15.0".into(),
        tls: None,
    };
    tokio::spawn(serve_postgres(listener, engine, opts, cancel.clone()));
    TestServer {
        addr,
        cancel,
        _dir: dir,
    }
}

async fn connect_as(
    addr: SocketAddr,
    user: &str,
    password: &str,
    db: &str,
) -> Result<Client, tokio_postgres::Error> {
    let config = format!(
        "host={} port={} user={user} password={password} dbname={db} connect_timeout=10",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn connect(addr: SocketAddr) -> Client {
    connect_as(addr, USER, PASSWORD, DATABASE)
        .await
        .expect("connect")
}

/// Runs a test on a runtime whose threads have the stack DataFusion's planner needs in
/// unoptimized builds.
fn big_stack(f: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(32 << 20)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .expect("spawn")
        .join()
        .expect("test thread panicked")
}

/// Every row of every result of `sql`, as `a|b|c` with NULL shown as `NULL`.
async fn rows(client: &Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

#[test]
fn authentication() {
    big_stack(async {
        let server = start().await;
        let client = connect(server.addr).await;
        assert_eq!(rows(&client, "select 1").await, ["1"]);

        let e = connect_as(server.addr, USER, "wrong", DATABASE)
            .await
            .expect_err("bad password accepted");
        assert_eq!(code(&e), "28P01");
        let db_error = e.as_db_error().expect("server error");
        assert_eq!(
            db_error.message(),
            "password authentication failed for user \"alice\""
        );
        assert_eq!(db_error.severity(), "FATAL");

        let e = connect_as(server.addr, "mallory", PASSWORD, DATABASE)
            .await
            .expect_err("unknown user accepted");
        assert_eq!(
            e.as_db_error().map(|d| d.message()),
            Some("password authentication failed for user \"mallory\"")
        );

        let e = connect_as(server.addr, USER, PASSWORD, "nope")
            .await
            .expect_err("unknown database accepted");
        assert_eq!(code(&e), "3D000");
        assert_eq!(
            e.as_db_error().map(|d| d.message()),
            Some("database \"nope\" does not exist")
        );
    });
}

#[test]
fn queries_in_both_protocols() {
    big_stack(async {
        let server = start().await;
        let client = connect(server.addr).await;
        client
            .batch_execute(
                "create table t (id int primary key, name text, score numeric(10,2), ok boolean)",
            )
            .await
            .expect("create");
        let inserted = client
            .simple_query("insert into t values (1, 'a', 5.5, true), (2, 'b b', null, false)")
            .await
            .expect("insert");
        assert!(matches!(
            inserted.last(),
            Some(SimpleQueryMessage::CommandComplete(2))
        ));
        assert_eq!(
            rows(&client, "select id, name, score, ok from t order by id").await,
            ["1|a|5.50|t", "2|b b|NULL|f"]
        );

        // Extended protocol: typed parameters and results, both in binary.
        let row = client
            .query_one("select id, name, ok from t where id = $1", &[&1i32])
            .await
            .expect("select");
        assert_eq!(row.get::<_, i32>(0), 1);
        assert_eq!(row.get::<_, &str>(1), "a");
        assert!(row.get::<_, bool>(2));
        let updated = client
            .execute("update t set name = $1 where id = $2", &[&"z", &2i32])
            .await
            .expect("update");
        assert_eq!(updated, 1);
        let row = client
            .query_one("select name from t where id = $1", &[&2i32])
            .await
            .expect("select");
        assert_eq!(row.get::<_, &str>(0), "z");

        // A prepared statement runs again with other parameters.
        let stmt = client
            .prepare("select count(*) from t where id >= $1")
            .await
            .expect("prepare");
        assert_eq!(stmt.params(), &[tokio_postgres::types::Type::INT4]);
        assert_eq!(
            client
                .query_one(&stmt, &[&1i32])
                .await
                .unwrap()
                .get::<_, i64>(0),
            2
        );
        assert_eq!(
            client
                .query_one(&stmt, &[&2i32])
                .await
                .unwrap()
                .get::<_, i64>(0),
            1
        );

        // An empty query and a statement error keep the connection usable.
        assert!(matches!(
            client.simple_query("").await.expect("empty").as_slice(),
            [] | [SimpleQueryMessage::CommandComplete(0)]
        ));
        let e = client
            .simple_query("select * from missing")
            .await
            .expect_err("missing table");
        assert_eq!(e.code(), Some(&SqlState::UNDEFINED_TABLE));
        let e = client
            .query("select * from missing where x = $1", &[&1i32])
            .await
            .expect_err("missing table");
        assert_eq!(e.code(), Some(&SqlState::UNDEFINED_TABLE));
        assert_eq!(rows(&client, "select 2").await, ["2"]);
    });
}

#[test]
fn failed_transaction_blocks_until_rollback() {
    big_stack(async {
        let server = start().await;
        let client = connect(server.addr).await;
        client.batch_execute("begin").await.expect("begin");
        client
            .simple_query("select * from missing")
            .await
            .expect_err("missing table");
        let e = client
            .simple_query("select 1")
            .await
            .expect_err("statement in failed transaction");
        assert_eq!(e.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        client.batch_execute("rollback").await.expect("rollback");
        assert_eq!(rows(&client, "select 1").await, ["1"]);
    });
}

/// Reads until the server closes the connection, returning what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "server kept the connection open");
    out
}

fn startup_packet(user: &str) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", DATABASE)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

#[test]
fn garbage_closes_only_its_own_connection() {
    big_stack(async {
        let server = start().await;
        let client = connect(server.addr).await;

        // Not PostgreSQL at all.
        let mut http = TcpStream::connect(server.addr).await.unwrap();
        http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_to_close(&mut http).await;

        // A message claiming a length beyond the 1 GiB limit, right after the startup packet.
        let mut huge = TcpStream::connect(server.addr).await.unwrap();
        huge.write_all(&startup_packet(USER)).await.unwrap();
        huge.write_all(b"p\x7f\xff\xff\xff").await.unwrap();
        let reply = read_to_close(&mut huge).await;
        assert!(
            reply.windows(6).any(|w| w == b"C08P01"),
            "no 08P01 error in {reply:?}"
        );

        // A truncated Bind would make pgwire's decoder read past the message.
        let mut short = TcpStream::connect(server.addr).await.unwrap();
        short.write_all(&startup_packet(USER)).await.unwrap();
        short
            .write_all(b"B\0\0\0\x0a\0\0\0\x05\0\0S\0\0\0\x04")
            .await
            .unwrap();
        read_to_close(&mut short).await;

        // SSL is refused with 'N', then the client may go on in plain text.
        let mut ssl = TcpStream::connect(server.addr).await.unwrap();
        ssl.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).await.unwrap();
        let mut answer = [0u8; 1];
        ssl.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"N");

        assert_eq!(rows(&client, "select 3").await, ["3"]);
        let other = connect(server.addr).await;
        assert_eq!(rows(&other, "select 4").await, ["4"]);
    });
}

#[test]
fn cancel_request_stops_the_running_statement() {
    big_stack(async {
        let server = start().await;
        let client = Arc::new(connect(server.addr).await);
        let token = client.cancel_token();
        let mut running = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .simple_query("select count(*) from generate_series(1, 10000000000)")
                    .await
            })
        };
        // A cancel that arrives before the statement runs (a slow machine still planning it)
        // cancels nothing, as in PostgreSQL: ask again until the statement has ended.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let result = loop {
            token.cancel_query(NoTls).await.expect("cancel request");
            match tokio::time::timeout(Duration::from_millis(300), &mut running).await {
                Ok(done) => break done.unwrap(),
                Err(_) => assert!(tokio::time::Instant::now() < deadline, "not cancelled"),
            }
        };
        assert_eq!(
            result.expect_err("finished anyway").code(),
            Some(&SqlState::QUERY_CANCELED)
        );
        assert_eq!(rows(&client, "select 5").await, ["5"]);
    });
}

/// Serves on `THUNDERDB_PG_TEST_PORT` (default 55433) for `THUNDERDB_PG_TEST_SECS` seconds so
/// that psql, JDBC or psycopg can be pointed at the frontend by hand:
/// `cargo test -p thunderdb-proxy serve_for_manual_clients -- --ignored --nocapture`.
#[test]
#[ignore]
fn serve_for_manual_clients() {
    big_stack(async {
        let env = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let cancel = CancellationToken::new();
        let engine = engine_in(dir.path(), &cancel).await;
        let port = env("THUNDERDB_PG_TEST_PORT", 55_433);
        let listener = TcpListener::bind(("127.0.0.1", port as u16))
            .await
            .expect("bind");
        let opts = PgFrontendOptions {
            users: vec![(USER.into(), PASSWORD.into())],
            auth_method: Default::default(),
            server_version: "15.0".into(),
            tls: None,
        };
        eprintln!(
            "serving user {USER} password {PASSWORD} database {DATABASE} on 127.0.0.1:{port}"
        );
        let server = tokio::spawn(serve_postgres(listener, engine, opts, cancel.clone()));
        tokio::time::sleep(Duration::from_secs(env("THUNDERDB_PG_TEST_SECS", 600))).await;
        cancel.cancel();
        let _ = server.await;
    });
}
