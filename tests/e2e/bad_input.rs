//! Bad input gets a clear error with the right SQLSTATE — never a crash, a hang or a dropped
//! neighbour: wrong SQL, constraint violations, a wrong password, and garbage or oversized
//! protocol messages on a raw TCP socket.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use crate::harness::{DATABASE, PASSWORD, TestServer, USER, connect_with, describe};
use crate::sql::{assert_usable, check, exec, exec_count, expect_error, expect_error_extended};

#[tokio::test]
async fn sql_errors_carry_their_sqlstate() {
    let server = TestServer::start();
    let c = server.connect().await;
    // A second session that must be unaffected by everything below.
    let bystander = server.connect().await;
    exec(
        &c,
        "CREATE TABLE t (id INT PRIMARY KEY, name TEXT NOT NULL, a INT, b INT)",
    )
    .await;
    exec_count(
        &c,
        "INSERT INTO t VALUES (1, 'x', 10, 2), (2, 'y', 5, 0)",
        2,
    )
    .await;

    let cases: &[(&str, SqlState)] = &[
        // 42P01 undefined table
        ("SELECT * FROM no_such_table", SqlState::UNDEFINED_TABLE),
        (
            "SELECT * FROM t JOIN no_such_table ON true",
            SqlState::UNDEFINED_TABLE,
        ),
        (
            "INSERT INTO no_such_table VALUES (1)",
            SqlState::UNDEFINED_TABLE,
        ),
        ("UPDATE no_such_table SET a = 1", SqlState::UNDEFINED_TABLE),
        ("DELETE FROM no_such_table", SqlState::UNDEFINED_TABLE),
        ("DROP TABLE no_such_table", SqlState::UNDEFINED_TABLE),
        // 42703 undefined column
        ("SELECT no_such_column FROM t", SqlState::UNDEFINED_COLUMN),
        ("SELECT t.no_such_column FROM t", SqlState::UNDEFINED_COLUMN),
        (
            "SELECT * FROM t WHERE no_such_column = 1",
            SqlState::UNDEFINED_COLUMN,
        ),
        (
            "SELECT * FROM t ORDER BY no_such_column",
            SqlState::UNDEFINED_COLUMN,
        ),
        (
            "INSERT INTO t (id, no_such_column) VALUES (3, 1)",
            SqlState::UNDEFINED_COLUMN,
        ),
        (
            "UPDATE t SET no_such_column = 1",
            SqlState::UNDEFINED_COLUMN,
        ),
        // 42601 syntax error
        ("SELEC 1", SqlState::SYNTAX_ERROR),
        ("SELECT * FROM", SqlState::SYNTAX_ERROR),
        ("SELECT (1", SqlState::SYNTAX_ERROR),
        ("INSERT INTO t VALUES (1,", SqlState::SYNTAX_ERROR),
        ("CREATE TABLE (id INT)", SqlState::SYNTAX_ERROR),
        ("SELECT 'unterminated", SqlState::SYNTAX_ERROR),
        // 23505 unique violation, 23502 not-null violation
        (
            "INSERT INTO t VALUES (1, 'dup', 0, 0)",
            SqlState::UNIQUE_VIOLATION,
        ),
        (
            "UPDATE t SET id = 1 WHERE id = 2",
            SqlState::UNIQUE_VIOLATION,
        ),
        (
            "INSERT INTO t VALUES (3, NULL, 0, 0)",
            SqlState::NOT_NULL_VIOLATION,
        ),
        (
            "INSERT INTO t (id) VALUES (3)",
            SqlState::NOT_NULL_VIOLATION,
        ),
        (
            "INSERT INTO t VALUES (NULL, 'z', 0, 0)",
            SqlState::NOT_NULL_VIOLATION,
        ),
        ("UPDATE t SET name = NULL", SqlState::NOT_NULL_VIOLATION),
        // 22012 division by zero
        ("SELECT 1 / 0", SqlState::DIVISION_BY_ZERO),
        ("SELECT 1 % 0", SqlState::DIVISION_BY_ZERO),
        ("SELECT 1.5 / 0", SqlState::DIVISION_BY_ZERO),
        ("SELECT 1.5::float8 / 0", SqlState::DIVISION_BY_ZERO),
        ("SELECT a / b FROM t", SqlState::DIVISION_BY_ZERO),
        ("UPDATE t SET a = a / b", SqlState::DIVISION_BY_ZERO),
        // a few more a PostgreSQL user meets daily
        (
            "CREATE TABLE t (id INT PRIMARY KEY)",
            SqlState::DUPLICATE_TABLE,
        ),
        ("SELECT 'abc'::int", SqlState::INVALID_TEXT_REPRESENTATION),
        (
            "SELECT 2147483647::int + 1",
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        ),
    ];
    for (sql, code) in cases {
        let message = expect_error(&c, sql, code).await;
        assert!(
            !message.trim().is_empty(),
            "{sql}: the error has no message"
        );
        assert_usable(&c, sql).await;
    }

    // The same errors through the extended protocol (Parse/Bind/Execute).
    expect_error_extended(
        &c,
        "SELECT * FROM no_such_table",
        &SqlState::UNDEFINED_TABLE,
    )
    .await;
    expect_error_extended(
        &c,
        "SELECT no_such_column FROM t",
        &SqlState::UNDEFINED_COLUMN,
    )
    .await;
    expect_error_extended(&c, "SELEC 1", &SqlState::SYNTAX_ERROR).await;
    expect_error_extended(&c, "SELECT a / b FROM t", &SqlState::DIVISION_BY_ZERO).await;
    expect_error_extended(
        &c,
        "INSERT INTO t VALUES (1, 'dup', 0, 0)",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    expect_error_extended(
        &c,
        "INSERT INTO t VALUES (3, NULL, 0, 0)",
        &SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    match c
        .query("SELECT * FROM t WHERE id = $1", &[&"not an int"])
        .await
    {
        Ok(rows) => panic!(
            "a text parameter for an int column was accepted ({} rows)",
            rows.len()
        ),
        Err(err) => eprintln!("text parameter for int: {}", describe(&err)),
    }
    assert_usable(&c, "a mistyped parameter").await;

    // Nothing above changed the table, and the other session never noticed.
    check(
        &c,
        "SELECT id, name, a, b FROM t ORDER BY id",
        "1|x|10|2\n2|y|5|0",
    )
    .await;
    check(&bystander, "SELECT count(*) FROM t", "2").await;
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let server = TestServer::start();
    let err = match server.connect_as(USER, "wrong-password").await {
        Ok(_) => panic!("connected with a wrong password"),
        Err(e) => e,
    };
    assert_eq!(
        err.code(),
        Some(&SqlState::INVALID_PASSWORD),
        "wrong password: {}",
        describe(&err)
    );

    let err = match server.connect_as("nobody", PASSWORD).await {
        Ok(_) => panic!("connected as a user that does not exist"),
        Err(e) => e,
    };
    assert!(
        matches!(err.code(), Some(code) if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "unknown user: {}",
        describe(&err)
    );

    // The right password still works, as the superuser and with the default database.
    let c = server
        .connect_as(USER, PASSWORD)
        .await
        .unwrap_or_else(|e| panic!("right password: {}", describe(&e)));
    check(&c, "SELECT 1", "1").await;
}

/// What a connection did after we sent it something bad.
struct Verdict {
    closed: bool,
    received: Vec<u8>,
}

impl Verdict {
    /// Refused: closed by the server, or answered with an ErrorResponse ('E').
    fn refused(&self) -> bool {
        self.closed || self.received.first() == Some(&b'E')
    }
}

/// Reads until the server closes the connection (EOF or reset) or `limit` passes.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Verdict {
    let mut received = Vec::new();
    let outcome = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    Verdict {
        closed: outcome.is_ok(),
        received,
    }
}

/// Opens a raw connection, sends `payload` and checks that the server refuses it within 10 s.
async fn send_raw_expect_refusal(server: &TestServer, what: &str, payload: &[u8]) {
    let mut stream = TcpStream::connect((server.host(), server.port()))
        .await
        .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    // The server may hang up before it has read everything: that is fine.
    let _ = stream.write_all(payload).await;
    let _ = stream.flush().await;
    let verdict = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        verdict.refused(),
        "{what}: within 10 s the server neither answered with an ErrorResponse nor closed the connection \
         (received {} bytes: {:?})",
        verdict.received.len(),
        String::from_utf8_lossy(&verdict.received[..verdict.received.len().min(200)])
    );
}

/// A protocol 3.0 StartupMessage.
fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // 3 << 16
    for (key, value) in [("user", user), ("database", database)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend(body);
    packet
}

/// A TCP relay in front of the server through which a real client authenticates, and which can
/// then inject raw bytes into the client→server stream.
struct Relay {
    port: u16,
    injector: mpsc::UnboundedSender<(Vec<u8>, oneshot::Sender<()>)>,
}

impl Relay {
    async fn start(host: &str, port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let relay_port = listener.local_addr().expect("relay address").port();
        let (injector, mut injected) = mpsc::unbounded_channel::<(Vec<u8>, oneshot::Sender<()>)>();
        let upstream_addr = (host.to_string(), port);
        tokio::spawn(async move {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(upstream) = TcpStream::connect(upstream_addr).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut upstream_read, mut upstream_write) = upstream.into_split();
            let up = async move {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    tokio::select! {
                        read = client_read.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => if upstream_write.write_all(&buf[..n]).await.is_err() { break },
                        },
                        Some((bytes, done)) = injected.recv() => {
                            let written = upstream_write.write_all(&bytes).await;
                            let _ = done.send(());
                            if written.is_err() { break }
                        }
                    }
                }
            };
            let down = async move {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match upstream_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client_write.shutdown().await;
            };
            tokio::join!(up, down);
        });
        Relay {
            port: relay_port,
            injector,
        }
    }

    /// Sends raw bytes to the server, returning once they have been written.
    async fn inject(&self, bytes: Vec<u8>) {
        let (done, written) = oneshot::channel();
        self.injector
            .send((bytes, done))
            .expect("the relay is running");
        written.await.expect("the relay wrote the injected bytes");
    }
}

#[tokio::test]
async fn garbage_and_oversized_protocol_messages() {
    let mut server = TestServer::start();
    let bystander = server.connect().await;
    exec(&bystander, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    exec_count(&bystander, "INSERT INTO t VALUES (1)", 1).await;

    // (a) Garbage instead of a startup packet.
    let mut http = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    http.extend(std::iter::repeat_n(b'x', 64));
    send_raw_expect_refusal(&server, "an HTTP request", &http).await;
    let mut rng = StdRng::seed_from_u64(20_240_521);
    let mut noise = [0u8; 4096];
    rng.fill(&mut noise[..]);
    noise[0] = 0xff; // a length no startup packet can have
    send_raw_expect_refusal(&server, "4 KiB of random bytes", &noise).await;
    let mut bad_version = 8u32.to_be_bytes().to_vec();
    bad_version.extend(0x1234_5678u32.to_be_bytes());
    send_raw_expect_refusal(
        &server,
        "a startup packet with protocol version 4660.22136",
        &bad_version,
    )
    .await;
    let mut no_terminator = 20u32.to_be_bytes().to_vec();
    no_terminator.extend(196_608u32.to_be_bytes());
    no_terminator.extend(b"user\0thunder");
    send_raw_expect_refusal(
        &server,
        "a startup packet without terminators",
        &no_terminator,
    )
    .await;
    send_raw_expect_refusal(
        &server,
        "a startup packet shorter than its header",
        &[0, 0, 0, 2, 0, 3, 0, 0],
    )
    .await;

    // (b) A startup packet claiming 2 GiB (and one claiming 2 GiB - 1).
    let mut huge = 0x8000_0000u32.to_be_bytes().to_vec();
    huge.extend(196_608u32.to_be_bytes());
    huge.extend(b"user\0thunder\0\0");
    send_raw_expect_refusal(&server, "a startup packet claiming 2 GiB", &huge).await;
    let mut huge = 0x7fff_ffffu32.to_be_bytes().to_vec();
    huge.extend(196_608u32.to_be_bytes());
    send_raw_expect_refusal(&server, "a startup packet claiming 2 GiB - 1", &huge).await;

    // (c) A valid startup, then a password message claiming 2 GiB during authentication.
    let mut stream = TcpStream::connect((server.host(), server.port()))
        .await
        .expect("connect");
    stream
        .write_all(&startup_message(USER, DATABASE))
        .await
        .expect("send startup");
    let mut header = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut header))
        .await
        .expect("no answer to a valid startup message within 10 s")
        .expect("read the answer to a valid startup message");
    assert_eq!(
        header[0], b'R',
        "a valid startup message must be answered with an authentication request"
    );
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    assert!(
        (4..10_000).contains(&length),
        "authentication request length {length}"
    );
    let mut body = vec![0u8; length - 4];
    stream
        .read_exact(&mut body)
        .await
        .expect("read the authentication request");
    let mut oversized = vec![b'p'];
    oversized.extend(0x7fff_fff0u32.to_be_bytes());
    oversized.extend(b"SCRAM-SHA-256\0\0\0\0\x10n,,n=thunder,r=abc");
    let _ = stream.write_all(&oversized).await;
    let verdict = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        verdict.refused(),
        "a 2 GiB message during authentication was neither refused nor the connection closed within 10 s \
         (received {} bytes)",
        verdict.received.len()
    );

    // (c') An authenticated session, then a Query message claiming 2 GiB.
    let relay = Relay::start(server.host(), server.port()).await;
    let through_relay = format!(
        "host=127.0.0.1 port={} user={USER} password={PASSWORD} dbname={DATABASE} connect_timeout=10",
        relay.port
    );
    let victim = connect_with(&through_relay)
        .await
        .unwrap_or_else(|e| panic!("connect through the relay: {}", describe(&e)));
    check(&victim, "SELECT count(*) FROM t", "1").await;
    let mut oversized = vec![b'Q'];
    oversized.extend(0x7fff_fff0u32.to_be_bytes());
    oversized.extend(b"SELECT 1\0");
    relay.inject(oversized).await;
    match tokio::time::timeout(Duration::from_secs(10), victim.simple_query("SELECT 2")).await {
        Err(_) => panic!(
            "after a Query message claiming 2 GiB the server neither refused it nor closed the session within 10 s"
        ),
        Ok(Ok(messages)) => panic!(
            "the server went on as if a Query message claiming 2 GiB were fine ({} messages)",
            messages.len()
        ),
        Ok(Err(e)) => eprintln!("oversized Query message: {}", describe(&e)),
    }

    // (d) An SSLRequest, as psql sends first, gets a one-byte answer ('N' without TLS).
    let mut stream = TcpStream::connect((server.host(), server.port()))
        .await
        .expect("connect");
    stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .expect("send SSLRequest");
    let mut answer = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut answer))
        .await
        .expect("no answer to SSLRequest within 10 s")
        .expect("read the answer to SSLRequest");
    assert!(
        matches!(answer[0], b'N' | b'S'),
        "SSLRequest answered with {:?}",
        answer[0] as char
    );
    drop(stream);

    // Large but legal input is fine: a 1 MiB string literal.
    let big = "y".repeat(1 << 20);
    check(&bystander, &format!("SELECT length('{big}')"), "1048576").await;

    // Through all of it the server kept serving: the old session and a new one.
    server.assert_running("after the bad protocol input");
    check(&bystander, "SELECT id FROM t", "1").await;
    let fresh = server.connect().await;
    check(&fresh, "SELECT count(*) FROM t", "1").await;
    exec_count(&fresh, "INSERT INTO t VALUES (2)", 1).await;
    check(&bystander, "SELECT count(*) FROM t", "2").await;
}
