//! Bad input over raw TCP, byte for byte: wrong commands get Redis's error lines and leave the
//! connection usable; a malformed packet gets `-ERR Protocol error: …` and only that
//! connection is closed; the server goes on serving everyone else. No client tool needed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::{Checks, RespServer};

/// A raw RESP2 connection: requests and replies as the exact bytes on the wire.
struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    fn connect(port: u16) -> RawConn {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to the RESP port {port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        let _ = stream.set_nodelay(true);
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to the server");
    }

    /// Sends `args` as a multi-bulk request and returns the reply's bytes as text.
    fn command(&mut self, args: &[&[u8]]) -> String {
        self.send(&encode(args));
        String::from_utf8_lossy(&self.reply()).into_owned()
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!(
                "the server closed the connection; unanswered bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "no complete reply within 10 s ({e}); received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Reads one complete reply (nested arrays included) and returns its bytes.
    fn reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = reply_end(&self.buf, 0) {
                return self.buf.drain(..end).collect();
            }
            self.fill();
        }
    }

    /// Everything the server sends until it closes the connection or `limit` passes;
    /// `true` when it closed.
    fn read_until_closed(&mut self, limit: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + limit;
        let mut all = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (all, false);
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut chunk) {
                Ok(0) => return (all, true),
                Ok(n) => all.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (all, true),
                Err(_) => return (all, false),
            }
        }
    }
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Where the RESP2 reply starting at `at` ends, if it is complete.
fn reply_end(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&buf[at + 1..line_end]).ok()?;
    let after = line_end + 2;
    match buf[at] {
        b'+' | b'-' | b':' => Some(after),
        b'$' => {
            let len: i64 = header.parse().ok()?;
            if len < 0 {
                return Some(after);
            }
            let end = after + len as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' => {
            let count: i64 = header.parse().ok()?;
            let mut pos = after;
            for _ in 0..count.max(0) {
                pos = reply_end(buf, pos)?;
            }
            Some(pos)
        }
        other => panic!(
            "not a RESP2 reply (type byte {:?}): {:?}",
            char::from(other),
            String::from_utf8_lossy(buf)
        ),
    }
}

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
const NOT_INTEGER: &str = "-ERR value is not an integer or out of range\r\n";

/// Wrong commands, arities and values: Redis 7.0's exact error lines, and the connection
/// keeps working after each.
#[test]
fn error_replies() {
    let Some(mut server) = RespServer::start("redis::bad_input::error_replies") else {
        return;
    };
    let mut conn = RawConn::connect(server.port());
    let cases: &[(&[&[u8]], &str)] = &[
        (
            &[b"NOSUCHCMD", b"a", b"b"],
            "-ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            &[b"nosuchcmd"],
            "-ERR unknown command 'nosuchcmd', with args beginning with: \r\n",
        ),
        (
            &[b"GET"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &[b"get", b"a", b"b"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &[b"SET", b"k"],
            "-ERR wrong number of arguments for 'set' command\r\n",
        ),
        (
            &[b"HSET", b"h", b"f"],
            "-ERR wrong number of arguments for 'hset' command\r\n",
        ),
        (
            &[b"ZADD", b"z", b"1"],
            "-ERR wrong number of arguments for 'zadd' command\r\n",
        ),
        (&[b"SET", b"s", b"abc"], "+OK\r\n"),
        (&[b"INCR", b"s"], NOT_INTEGER),
        (&[b"INCRBY", b"n", b"1.5"], NOT_INTEGER),
        (&[b"INCRBY", b"n", b"99999999999999999999"], NOT_INTEGER),
        (&[b"EXPIRE", b"s", b"soon"], NOT_INTEGER),
        (&[b"LRANGE", b"l", b"a", b"b"], NOT_INTEGER),
        (
            &[b"INCRBYFLOAT", b"s", b"1"],
            "-ERR value is not a valid float\r\n",
        ),
        (
            &[b"ZADD", b"z", b"x", b"m"],
            "-ERR value is not a valid float\r\n",
        ),
        (&[b"LPUSH", b"s", b"x"], WRONGTYPE),
        (&[b"HGET", b"s", b"f"], WRONGTYPE),
        (&[b"SET", b"k", b"v", b"BOGUS"], "-ERR syntax error\r\n"),
        (&[b"SELECT", b"16"], "-ERR DB index is out of range\r\n"),
        (&[b"GET", b"s"], "$3\r\nabc\r\n"),
        (&[b"SET", b"bin\r\nkey", b"\x00\xff\r\n"], "+OK\r\n"),
        (&[b"GET", b"bin\r\nkey"], "$4\r\n\x00\u{fffd}\r\n\r\n"),
        (&[b"PING"], "+PONG\r\n"),
    ];
    let mut checks = Checks::new();
    for (args, expected) in cases {
        let shown: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let reply = conn.command(args);
        checks.eq(
            &shown.join(" ").escape_debug().to_string(),
            &reply,
            expected,
        );
    }
    // Inline commands, as typed into telnet.
    conn.send(b"GET\r\n");
    checks.eq(
        "inline GET",
        &String::from_utf8_lossy(&conn.reply()),
        "-ERR wrong number of arguments for 'get' command\r\n",
    );
    conn.send(b"set  greeting \"hello world\"\r\nget greeting\r\n");
    checks.eq(
        "inline set",
        &String::from_utf8_lossy(&conn.reply()),
        "+OK\r\n",
    );
    checks.eq(
        "inline get",
        &String::from_utf8_lossy(&conn.reply()),
        "$11\r\nhello world\r\n",
    );
    server.assert_running("after the error replies");
    checks.finish("RESP error replies");
}

/// Malformed requests: each gets Redis's `-ERR Protocol error: …` line (after the replies to
/// the good requests before it) and its connection is closed; a client connected all along,
/// and new ones, are still served.
#[test]
fn malformed_packets_close_only_their_connection() {
    let Some(mut server) =
        RespServer::start("redis::bad_input::malformed_packets_close_only_their_connection")
    else {
        return;
    };
    let port = server.port();
    let mut bystander = RawConn::connect(port);
    assert_eq!(bystander.command(&[b"SET", b"k", b"kept"]), "+OK\r\n");

    let invalid_bulk = "-ERR Protocol error: invalid bulk length\r\n";
    let invalid_multibulk = "-ERR Protocol error: invalid multibulk length\r\n";
    let long_inline = vec![b'x'; 70 * 1024];
    let cases: &[(&str, &[u8], &str)] = &[
        ("bulk length not a number", b"*1\r\n$x\r\n", invalid_bulk),
        ("huge bulk length", b"*1\r\n$99999999999\r\n", invalid_bulk),
        (
            "bulk length over 512 MB",
            b"*1\r\n$536870913\r\n",
            invalid_bulk,
        ),
        ("negative bulk length", b"*1\r\n$-5\r\n", invalid_bulk),
        (
            "bulk length with a sign",
            b"*1\r\n$+4\r\nPING\r\n",
            invalid_bulk,
        ),
        (
            "huge multibulk length",
            b"*99999999999\r\n",
            invalid_multibulk,
        ),
        (
            "multibulk length not a number",
            b"*1x\r\n",
            invalid_multibulk,
        ),
        (
            "integer instead of a bulk string",
            b"*2\r\n$3\r\nGET\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            "unbalanced quotes",
            b"SET \"a b\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            "inline request without a newline past 64 KiB",
            &long_inline,
            "-ERR Protocol error: too big inline request\r\n",
        ),
        (
            "good request, then garbage",
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*x\r\n",
            "$4\r\nkept\r\n-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ];
    let mut checks = Checks::new();
    for (what, payload, expected) in cases {
        let mut conn = RawConn::connect(port);
        conn.send(payload);
        let (reply, closed) = conn.read_until_closed(Duration::from_secs(5));
        checks.eq(what, &String::from_utf8_lossy(&reply), expected);
        checks.check(
            &format!("{what}: the server closes the connection"),
            closed,
            "still open 5 s after the protocol error",
        );
    }

    // Clients that vanish mid-request, and a burst of garbage from many at once.
    for partial in [
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk"[..],
        b"*1\r\n$100\r\nabc",
        b"*5\r\n",
    ] {
        let mut conn = RawConn::connect(port);
        conn.send(partial);
        let _ = conn.stream.shutdown(Shutdown::Both);
    }
    let garbage: Vec<std::thread::JoinHandle<()>> = (0u8..20)
        .map(|i| {
            std::thread::spawn(move || {
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                    let noise: Vec<u8> = (0..4096u32)
                        .map(|j| (j as u8).wrapping_mul(i | 1))
                        .collect();
                    let _ = s.write_all(b"*2\r\n$");
                    let _ = s.write_all(&noise);
                }
            })
        })
        .collect();
    for g in garbage {
        let _ = g.join();
    }

    server.assert_running("after the malformed packets");
    checks.eq(
        "the bystander connection after all that",
        &bystander.command(&[b"GET", b"k"]),
        "$4\r\nkept\r\n",
    );
    let mut fresh = RawConn::connect(port);
    checks.eq(
        "PING on a new connection",
        &fresh.command(&[b"PING"]),
        "+PONG\r\n",
    );

    // Large and fragmented requests are fine: a 4 MiB value sent in pieces, 1000 pipelined
    // commands in one write.
    let value = vec![b'v'; 4 << 20];
    let request = encode(&[b"SET", b"big", &value]);
    for piece in request.chunks(1 << 20) {
        fresh.send(piece);
        std::thread::sleep(Duration::from_millis(20));
    }
    checks.eq(
        "SET of 4 MiB sent in pieces",
        &String::from_utf8_lossy(&fresh.reply()),
        "+OK\r\n",
    );
    checks.eq(
        "STRLEN big",
        &fresh.command(&[b"STRLEN", b"big"]),
        ":4194304\r\n",
    );
    let mut pipeline = Vec::new();
    for _ in 0..1000 {
        pipeline.extend(encode(&[b"INCR", b"pipelined"]));
    }
    pipeline.extend(encode(&[b"GET", b"pipelined"]));
    fresh.send(&pipeline);
    for i in 1..=1000 {
        let reply = String::from_utf8_lossy(&fresh.reply()).into_owned();
        if reply != format!(":{i}\r\n") {
            checks.eq(
                &format!("pipelined INCR #{i}"),
                &reply,
                &format!(":{i}\r\n"),
            );
            break;
        }
    }
    checks.eq(
        "GET after 1000 pipelined INCRs",
        &String::from_utf8_lossy(&fresh.reply()),
        "$4\r\n1000\r\n",
    );
    server.assert_running("after the large and pipelined requests");
    checks.finish("malformed RESP packets");
}

/// A subscriber that stops reading is disconnected once 32 MiB wait for it (Redis's
/// `client-output-buffer-limit pubsub`), instead of growing the server's memory; publishers and
/// other clients go on.
#[test]
fn a_subscriber_that_stops_reading_is_disconnected() {
    let Some(mut server) =
        RespServer::start("redis::bad_input::a_subscriber_that_stops_reading_is_disconnected")
    else {
        return;
    };
    let port = server.port();
    let mut subscriber = RawConn::connect(port);
    assert!(
        subscriber
            .command(&[b"SUBSCRIBE", b"firehose"])
            .contains("subscribe")
    );
    // From now on the subscriber reads nothing.
    let mut publisher = RawConn::connect(port);
    let message = vec![b'x'; 1 << 20];
    let started = Instant::now();
    let mut receivers = String::new();
    for _ in 0..200 {
        receivers = publisher.command(&[b"PUBLISH", b"firehose", &message]);
        if receivers == ":0\r\n" {
            break;
        }
    }
    assert_eq!(
        receivers, ":0\r\n",
        "the subscriber was still there after 200 MiB"
    );
    assert!(started.elapsed() < Duration::from_secs(300));
    assert_eq!(publisher.command(&[b"PING"]), "+PONG\r\n");
    server.assert_running("after a stuck subscriber");
}
