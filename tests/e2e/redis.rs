//! The Redis frontend (RESP2/RESP3) as Redis users see it: the real `redis-cli` (Debian
//! redis-tools) and redis-py (PyPI `redis` >= 5) against `thunderdb dev`, Redis data as SQL
//! rows, SIGKILL durability, and bad input on raw sockets.
//!
//! - `cli`: redis-cli single commands, a piped script, output modes (`--no-raw`, `-3`, `-x`,
//!   `-n`, `--scan`, `--bigkeys`), `--pipe` mass insertion;
//! - `py`: one redis-py script per area (`redis/py/*.py`, with `prelude.py`); each case
//!   asserts Redis 7.0's replies and the script prints `ok`;
//! - `sql`: RESP writes seen at once by SQL (`redis.strings`, `redis.hashes` …), surviving
//!   SIGKILL; active expiry;
//! - `bad_input`: error lines and malformed packets over raw TCP.
//!
//! Tests whose client is missing print `skipped: … not installed` and pass (`scripts/test`
//! installs both). `THUNDERDB_E2E_REDIS_REFERENCE=1` runs the client tests against a stock
//! `redis-server` (7.0, started here with the `thunder` ACL user) instead, to check the tests
//! themselves; the scripts also run by hand: `cd tests/e2e/redis/py && REDIS_PORT=6379
//! REDIS_REFERENCE=1 python3 strings.py`.

mod bad_input;
mod cli;
mod py;
mod sql;
mod suite;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Backend, TestServer};
pub(crate) use crate::harness::{Run, run_child, skip};

/// Whether the client tests run against a stock redis-server (`THUNDERDB_E2E_REDIS_REFERENCE`).
fn reference_mode() -> bool {
    std::env::var("THUNDERDB_E2E_REDIS_REFERENCE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The server a Redis test talks to: ThunderDB, or the reference redis-server.
pub struct RespServer {
    thunderdb: Option<TestServer>,
    reference: Option<ReferenceRedis>,
}

impl RespServer {
    /// Starts the server for `test`; `None` (with a message) when it cannot run here.
    pub fn start(test: &str) -> Option<RespServer> {
        Self::start_with(test, Vec::new())
    }

    /// Like [`RespServer::start`], with settings (`THUNDERDB_*`) for a ThunderDB server.
    pub fn start_with(test: &str, env: Vec<(String, String)>) -> Option<RespServer> {
        if reference_mode() {
            return Some(RespServer {
                thunderdb: None,
                reference: Some(ReferenceRedis::start()),
            });
        }
        thunderdb_with(test, env).map(|server| RespServer {
            thunderdb: Some(server),
            reference: None,
        })
    }

    pub fn port(&self) -> u16 {
        match (&self.thunderdb, &self.reference) {
            (Some(server), _) => server.resp_port(),
            (None, Some(reference)) => reference.port,
            (None, None) => unreachable!("a RespServer runs one of the two"),
        }
    }

    pub fn is_reference(&self) -> bool {
        self.reference.is_some()
    }

    /// Panics if ThunderDB's process has died (a reference server is not checked).
    pub fn assert_running(&mut self, context: &str) {
        if let Some(server) = self.thunderdb.as_mut() {
            server.assert_running(context);
        }
    }
}

/// Starts ThunderDB for a test that needs it (SQL, SIGKILL); `None` (with a message) under the
/// PostgreSQL backend or the redis-server reference, which have no such thing.
fn thunderdb(test: &str) -> Option<TestServer> {
    thunderdb_with(test, Vec::new())
}

fn thunderdb_with(test: &str, env: Vec<(String, String)>) -> Option<TestServer> {
    if reference_mode() {
        skip(test, "needs ThunderDB, not the reference redis-server");
        return None;
    }
    if Backend::from_env() == Backend::Postgres {
        skip(test, "the PostgreSQL backend has no RESP frontend");
        return None;
    }
    let server = TestServer::start_with(crate::harness::ServerOptions {
        env,
        ..Default::default()
    });
    assert_ne!(
        server.resp_port(),
        0,
        "thunderdb did not print `resp listening on ADDR`:\n{}",
        server.log_tail(60)
    );
    Some(server)
}

/// A stock redis-server under a temporary directory, with ThunderDB's user and password as an
/// ACL user, so that the same tests can check themselves against Redis.
struct ReferenceRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl ReferenceRedis {
    fn start() -> ReferenceRedis {
        let dir = tempfile::Builder::new()
            .prefix("thunderdb-e2e-redis-")
            .tempdir()
            .expect("create a temporary directory for redis-server");
        // redis-server cannot take port 0; a port the OS just handed out is free enough.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("pick a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--user", "thunder", "on", ">thunder", "~*", "&*", "+@all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (THUNDERDB_E2E_REDIS_REFERENCE needs it on PATH)");
        let reference = ReferenceRedis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut reply = [0u8; 7];
                if conn.write_all(b"PING\r\n").is_ok()
                    && conn.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return reference;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not answer PING on port {port} within 10 s");
    }
}

impl Drop for ReferenceRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `redis-cli` runs here; prints the skip line for `test` when it does not.
fn redis_cli_available(test: &str) -> bool {
    let found = Command::new("redis-cli")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip(test, "redis-cli not installed");
    }
    found
}

/// Runs `redis-cli -h 127.0.0.1 -p PORT ARGS…` with `stdin`; its stdout is a pipe, so
/// replies print raw (`--no-raw` asks for the `(integer) 1` form).
fn redis_cli(port: u16, args: &[&str], stdin: &str) -> Run {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .env_remove("REDISCLI_AUTH")
        .env("REDISCLI_HISTFILE", "/dev/null")
        .env("LC_ALL", "C");
    run_child(
        &mut cmd,
        stdin.as_bytes(),
        // `--pipe` sends thousands of writes, each synced to the WAL: a slow disk needs time.
        Duration::from_secs(300),
        &format!("redis-cli {}", args.join(" ")),
    )
}

/// Collects every mismatch of a test before failing, so that one run lists all the wrong
/// replies of its area rather than the first.
pub struct Checks {
    failures: Vec<String>,
}

impl Checks {
    pub fn new() -> Checks {
        Checks {
            failures: Vec::new(),
        }
    }

    pub fn eq(&mut self, what: &str, actual: &str, expected: &str) {
        if actual != expected {
            self.failures.push(format!(
                "{what}\n    expected: {expected:?}\n    actual:   {actual:?}"
            ));
        }
    }

    pub fn check(&mut self, what: &str, ok: bool, detail: &str) {
        if !ok {
            self.failures.push(format!("{what}\n    {detail}"));
        }
    }

    /// Panics with every mismatch, if any.
    pub fn finish(self, area: &str) {
        assert!(
            self.failures.is_empty(),
            "{area}: {} wrong replies\n  {}",
            self.failures.len(),
            self.failures.join("\n  ")
        );
    }
}
