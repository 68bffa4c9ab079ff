//! The end-to-end harness: one real `thunderdb dev` process per test, under its own temporary
//! data directory, serving PostgreSQL on a port the OS picked. (The SQL assertion helpers the
//! tests share are in `sql.rs`.)
//!
//! Environment knobs:
//! - `THUNDERDB_E2E_BACKEND=postgres` runs the suite against a stock PostgreSQL 15 instead
//!   (started the same way, set to REPEATABLE READ by default like ThunderDB), to check the
//!   tests themselves;
//! - `THUNDERDB_E2E_TIMEOUT_SECS` (default 600): a watchdog kills the server of a test that runs
//!   longer, so a hung server fails the test instead of hanging CI;
//! - `THUNDERDB_E2E_ECHO=1` copies the server's output to the test's stderr as it comes.
#![allow(dead_code)] // the benchmark includes this file too and uses only part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use crate::stock_postgres::{self, StockPostgres, StockPostgresOptions};

/// The superuser every test connects as.
pub const USER: &str = "thunder";
/// The superuser's password (the harness sets `THUNDERDB_PASSWORD` to it).
pub const PASSWORD: &str = "thunder";
/// The database created at first start.
pub const DATABASE: &str = "thunderdb";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_PREFIX: &str = "postgres listening on ";
/// Printed before `READY_PREFIX` with the RESP frontend's address.
const RESP_PREFIX: &str = "resp listening on ";
/// Printed before `READY_PREFIX` with the MySQL frontend's address.
const MYSQL_PREFIX: &str = "mysql listening on ";
/// The in-memory copy of the server's output keeps at most this much (the newest part).
const LOG_LIMIT: usize = 8 << 20;

/// Which server the tests talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    ThunderDb,
    /// A stock PostgreSQL 15, to validate the tests themselves.
    Postgres,
}

impl Backend {
    /// `THUNDERDB_E2E_BACKEND`: `thunderdb` (default) or `postgres`.
    pub fn from_env() -> Backend {
        match std::env::var("THUNDERDB_E2E_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("thunderdb") => Backend::ThunderDb,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => {
                panic!("THUNDERDB_E2E_BACKEND={other:?}: expected `thunderdb` or `postgres`")
            }
        }
    }
}

/// How a [`TestServer`] starts.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub backend: Backend,
    /// The `thunderdb` executable.
    pub bin: PathBuf,
    /// The watchdog kills the server once the test has run this long.
    pub deadline: Duration,
    /// Settings for the server (`THUNDERDB_*` variables).
    pub env: Vec<(String, String)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            backend: Backend::from_env(),
            bin: PathBuf::from(env!("CARGO_BIN_EXE_thunderdb")),
            deadline: env_secs("THUNDERDB_E2E_TIMEOUT_SECS").unwrap_or(Duration::from_secs(600)),
            env: Vec::new(),
        }
    }
}

/// Reads a number of seconds from the environment.
pub fn env_secs(name: &str) -> Option<Duration> {
    let raw = std::env::var(name).ok()?;
    let secs: f64 = raw
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name}={raw:?} is not a number of seconds"));
    Some(Duration::from_secs_f64(secs))
}

/// State shared with the output-draining threads and the watchdog.
struct Shared {
    log: Mutex<String>,
    /// Pid of the running server, 0 when none.
    pid: AtomicU32,
    /// Signal the whole process group `pid` (PostgreSQL backend).
    group: AtomicBool,
    finished: AtomicBool,
    watchdog_fired: AtomicBool,
}

impl Shared {
    fn append(&self, prefix: &str, line: &str) {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.len() > LOG_LIMIT {
            let mut cut = log.len() - LOG_LIMIT / 2;
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            log.replace_range(..cut, "");
        }
        log.push_str(prefix);
        log.push_str(line);
        log.push('\n');
    }

    fn text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// A server process owned by one test. Dropping it kills the process and removes its data.
pub struct TestServer {
    opts: ServerOptions,
    dir: tempfile::TempDir,
    child: Option<Child>,
    postgres: Option<StockPostgres>,
    host: String,
    port: u16,
    resp_port: u16,
    mysql_port: u16,
    shared: Arc<Shared>,
    starts: u32,
}

impl TestServer {
    /// Starts `thunderdb dev` on a fresh data directory with every port 0 and waits until it
    /// prints `postgres listening on ADDR` (at most 60 s; the output is shown on failure).
    pub fn start() -> TestServer {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(opts: ServerOptions) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("thunderdb-e2e-")
            .tempdir()
            .expect("create a temporary directory for the server's data");
        let shared = Arc::new(Shared {
            log: Mutex::new(String::new()),
            pid: AtomicU32::new(0),
            group: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            watchdog_fired: AtomicBool::new(false),
        });
        let mut server = TestServer {
            opts,
            dir,
            child: None,
            postgres: None,
            host: "127.0.0.1".into(),
            port: 0,
            resp_port: 0,
            mysql_port: 0,
            shared,
            starts: 0,
        };
        server.spawn_watchdog();
        match server.opts.backend {
            Backend::ThunderDb => server.launch(),
            Backend::Postgres => {
                let pg = StockPostgres::init(StockPostgresOptions {
                    user: USER.into(),
                    password: PASSWORD.into(),
                    database: DATABASE.into(),
                    settings: vec![(
                        "default_transaction_isolation".into(),
                        "repeatable read".into(),
                    )],
                    own_process_group: true,
                })
                .unwrap_or_else(|e| panic!("start the reference PostgreSQL: {e:#}"));
                server.port = pg.port();
                server.shared.group.store(true, Ordering::SeqCst);
                server
                    .shared
                    .pid
                    .store(pg.pid().unwrap_or(0), Ordering::SeqCst);
                server.starts = 1;
                server.postgres = Some(pg);
            }
        }
        server
    }

    /// The server's data directory (it survives restarts; removed when the server is dropped).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn backend(&self) -> Backend {
        self.opts.backend
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The RESP (Redis protocol) port of the current incarnation; 0 for stock PostgreSQL.
    pub fn resp_port(&self) -> u16 {
        self.resp_port
    }

    /// The MySQL port of the current incarnation; 0 for stock PostgreSQL.
    pub fn mysql_port(&self) -> u16 {
        self.mysql_port
    }

    /// The PostgreSQL port of the current incarnation (a restart picks a new one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A tokio-postgres / libpq key-value connection string for the superuser.
    pub fn conn_str(&self) -> String {
        format!(
            "host={} port={} user={USER} password={PASSWORD} dbname={DATABASE} connect_timeout=10",
            self.host, self.port
        )
    }

    /// `postgresql://thunder:thunder@HOST:PORT/thunderdb`, as psql takes it.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgresql://{USER}:{PASSWORD}@{host}:{}/{DATABASE}",
            self.port
        )
    }

    /// Connects as the superuser; panics (with the server's output) if that fails.
    pub async fn connect(&self) -> Client {
        match self.try_connect().await {
            Ok(client) => client,
            Err(e) => panic!(
                "connect to {}: {}\n---- server output (tail) ----\n{}",
                self.url(),
                describe(&e),
                self.log_tail(100)
            ),
        }
    }

    pub async fn try_connect(&self) -> Result<Client, tokio_postgres::Error> {
        connect_with(&self.conn_str()).await
    }

    /// Connects with explicit credentials (for authentication tests).
    pub async fn connect_as(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host(&self.host)
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(DATABASE)
            .connect_timeout(Duration::from_secs(10))
            .connect(NoTls)
            .await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// SIGKILL: the process gets no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(pg) = self.postgres.as_mut() {
            let status = pg.kill9();
            self.shared.pid.store(0, Ordering::SeqCst);
            self.note(&format!("SIGKILL; exit status {status:?}"));
            return;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // std sends SIGKILL on Unix
            let status = child.wait();
            self.shared.pid.store(0, Ordering::SeqCst);
            self.note(&format!("SIGKILL; exit status {status:?}"));
        }
    }

    /// Asks the server to shut down cleanly (SIGTERM; for the PostgreSQL backend SIGINT, its
    /// "fast" shutdown, because its SIGTERM waits for clients to leave) and waits up to
    /// `within`. On timeout the server is killed and the error carries its output.
    pub fn terminate(&mut self, within: Duration) -> Result<ExitStatus, String> {
        if let Some(pg) = self.postgres.as_mut() {
            pg.signal("INT");
            let status = pg.wait_exit(within);
            self.shared.pid.store(0, Ordering::SeqCst);
            return match status {
                Some(status) => Ok(status),
                None => {
                    pg.kill9();
                    Err(format!(
                        "postgres did not exit within {within:?}:\n{}",
                        self.log_tail(60)
                    ))
                }
            };
        }
        let Some(mut child) = self.child.take() else {
            return Err("the server is not running".into());
        };
        stock_postgres::signal(child.id(), "TERM", false);
        let deadline = Instant::now() + within;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.shared.pid.store(0, Ordering::SeqCst);
                    self.note(&format!("SIGTERM; exit status {status}"));
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.shared.pid.store(0, Ordering::SeqCst);
                    return Err(format!(
                        "thunderdb did not exit within {within:?} of SIGTERM (killed it)\n---- server output (tail) ----\n{}",
                        self.log_tail(100)
                    ));
                }
            }
        }
    }

    /// Starts the server again on the same data directory (killing it first if it still runs).
    /// The new incarnation listens on a new port: reconnect with [`connect`](Self::connect).
    pub fn restart_same_dir(&mut self) {
        if self.is_running() {
            self.note("restart requested while running: killing it first");
            self.kill9();
        }
        if let Some(pg) = self.postgres.as_mut() {
            pg.start()
                .unwrap_or_else(|e| panic!("restart the reference PostgreSQL: {e:#}"));
            self.port = pg.port();
            self.shared
                .pid
                .store(pg.pid().unwrap_or(0), Ordering::SeqCst);
            self.starts += 1;
            return;
        }
        self.launch();
    }

    /// Whether the server process is still alive.
    pub fn is_running(&mut self) -> bool {
        if let Some(pg) = self.postgres.as_mut() {
            return pg.is_running();
        }
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Panics with the exit status and output if the server process has died.
    pub fn assert_running(&mut self, context: &str) {
        if self.is_running() {
            return;
        }
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        let watchdog = if self.shared.watchdog_fired.load(Ordering::SeqCst) {
            " (killed by the e2e watchdog: THUNDERDB_E2E_TIMEOUT_SECS)"
        } else {
            ""
        };
        panic!(
            "{context}: the server is not running (exit status {status:?}){watchdog}\n---- server output (tail) ----\n{}",
            self.log_tail(200)
        );
    }

    /// Everything the server printed so far (the newest 8 MiB).
    pub fn logs(&self) -> String {
        let mut text = self.shared.text();
        if let Some(pg) = self.postgres.as_ref() {
            text.push_str(&pg.log_tail(2000));
        }
        text
    }

    pub fn log_tail(&self, lines: usize) -> String {
        stock_postgres::tail(&self.logs(), lines)
    }

    fn note(&self, line: &str) {
        self.shared.append("[harness] ", line);
    }

    fn spawn_watchdog(&self) {
        let shared = Arc::clone(&self.shared);
        let deadline = self.opts.deadline;
        std::thread::Builder::new()
            .name("e2e-watchdog".into())
            .spawn(move || {
                let started = Instant::now();
                while !shared.finished.load(Ordering::SeqCst) {
                    if started.elapsed() > deadline {
                        shared.watchdog_fired.store(true, Ordering::SeqCst);
                        let pid = shared.pid.load(Ordering::SeqCst);
                        if pid != 0 {
                            eprintln!(
                                "e2e watchdog: test still running after {deadline:?}; killing server pid {pid}"
                            );
                            stock_postgres::signal(pid, "KILL", shared.group.load(Ordering::SeqCst));
                        }
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .expect("spawn the watchdog thread");
    }

    /// Spawns `thunderdb dev` on this server's data directory and waits for the ready line.
    fn launch(&mut self) {
        let data_dir = self.data_dir();
        let mut cmd = Command::new(&self.opts.bin);
        cmd.arg("dev")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--pg-port", "0", "--mysql-port", "0", "--resp-port", "0"])
            .args(["--http-port", "0", "--grpc-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        hermetic(&mut cmd);
        cmd.env("THUNDERDB_PASSWORD", PASSWORD);
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.opts.bin.display()));
        self.starts += 1;
        self.note(&format!(
            "start #{} of {} dev --data-dir {} (pid {})",
            self.starts,
            self.opts.bin.display(),
            data_dir.display(),
            child.id()
        ));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        drain(
            stdout,
            "[stdout] ",
            Arc::clone(&self.shared),
            Some(ready_tx),
        );
        drain(stderr, "[stderr] ", Arc::clone(&self.shared), None);
        self.shared.pid.store(child.id(), Ordering::SeqCst);
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(addr) = line.trim().strip_prefix(RESP_PREFIX) {
                        self.resp_port = parse_listen_addr(addr.trim())
                            .unwrap_or_else(|| panic!("cannot parse the address in {line:?}"))
                            .1;
                    }
                    if let Some(addr) = line.trim().strip_prefix(MYSQL_PREFIX) {
                        self.mysql_port = parse_listen_addr(addr.trim())
                            .unwrap_or_else(|| panic!("cannot parse the address in {line:?}"))
                            .1;
                    }
                    if let Some(addr) = line.trim().strip_prefix(READY_PREFIX) {
                        let (host, port) = parse_listen_addr(addr.trim())
                            .unwrap_or_else(|| panic!("cannot parse the address in {line:?}"));
                        self.host = host;
                        self.port = port;
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.kill9();
                    panic!(
                        "thunderdb did not print `{READY_PREFIX}ADDR` within {READY_TIMEOUT:?}\n---- server output ----\n{}",
                        self.log_tail(200)
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process is exiting. Let stderr drain before reporting.
                    let status = self.child.take().map(|mut c| c.wait());
                    self.shared.pid.store(0, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(200));
                    panic!(
                        "thunderdb exited before it was ready (status {status:?})\n---- server output ----\n{}",
                        self.log_tail(200)
                    );
                }
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.finished.store(true, Ordering::SeqCst);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pg) = self.postgres.as_mut() {
            pg.kill9();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- server output (last 200 lines; data dir {}) ----\n{}\n---- end of server output ----",
                self.dir.path().display(),
                self.log_tail(200)
            );
        }
    }
}

/// Copies one output stream of the server into the shared log, line by line, so that the pipe
/// never fills up; stdout lines also go to `ready` (the start-up wait).
fn drain(
    stream: impl Read + Send + 'static,
    prefix: &'static str,
    shared: Arc<Shared>,
    ready: Option<mpsc::Sender<String>>,
) {
    let echo = std::env::var("THUNDERDB_E2E_ECHO").is_ok_and(|v| v != "0");
    std::thread::Builder::new()
        .name(format!("e2e-drain{}", prefix.trim()))
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        let line = text.trim_end_matches(['\n', '\r']);
                        shared.append(prefix, line);
                        if echo {
                            eprintln!("{prefix}{line}");
                        }
                        if let Some(tx) = &ready {
                            let _ = tx.send(line.to_string());
                        }
                    }
                }
            }
        })
        .expect("spawn an output-draining thread");
}

/// `127.0.0.1:5432`, `[::1]:5432` or `localhost:5432` → (host to dial, port). A wildcard
/// address is dialled on loopback.
fn parse_listen_addr(addr: &str) -> Option<(String, u16)> {
    if let Ok(sock) = addr.parse::<SocketAddr>() {
        let host = if sock.ip().is_unspecified() {
            if sock.is_ipv6() {
                "::1".to_string()
            } else {
                "127.0.0.1".to_string()
            }
        } else {
            sock.ip().to_string()
        };
        return Some((host, sock.port()));
    }
    let (host, port) = addr.rsplit_once(':')?;
    Some((
        host.trim_matches(['[', ']']).to_string(),
        port.parse().ok()?,
    ))
}

/// Makes a server process's environment hermetic: a developer's THUNDERDB_* settings (say
/// THUNDERDB_WAL_FSYNC=false) must not change what the tests check; THUNDERDB_LOG (the log
/// filter) passes through. The block cache's disk part is sized for a server, not for a
/// test: a hundred test servers at 2 GiB each could fill a CI disk (a test may set its own).
pub fn hermetic(cmd: &mut Command) {
    let inherited: Vec<std::ffi::OsString> = std::env::vars_os()
        .map(|(key, _)| key)
        .filter(|key| {
            let name = key.to_string_lossy();
            name.starts_with("THUNDERDB_") && name != "THUNDERDB_LOG"
        })
        .collect();
    for key in inherited {
        cmd.env_remove(key);
    }
    cmd.env(
        "THUNDERDB_PAGESERVER_CACHE_DISK_BYTES",
        (128u64 << 20).to_string(),
    );
}

/// Connects with a key-value connection string and drives the connection in the background.
pub async fn connect_with(conn_str: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn_str, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// An error as a person wants to read it: the server's message and SQLSTATE, or the client-side
/// cause (connection closed, I/O error …).
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; DETAIL: {detail}"));
        }
        return text;
    }
    match std::error::Error::source(err) {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

/// `<manifest dir>/../shared/compat` unless `THUNDERDB_COMPAT_DIR` says otherwise.
pub fn compat_dir() -> PathBuf {
    match std::env::var_os("THUNDERDB_COMPAT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat"),
    }
}

/// `<manifest dir>/target` (or `CARGO_TARGET_DIR`), where summaries are written.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// A self-signed certificate for `127.0.0.1` and `localhost` and its key, written into `dir`
/// with openssl: (certificate, key).
pub fn self_signed_cert(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// Whether the openssl command runs here (it takes `version`, not `--version`).
pub fn openssl_installed() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a program runs here (`--version` exits 0).
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Prints why a test does not run, on stdout and stderr (`scripts/test` collects the lines).
pub fn skip(test: &str, why: &str) {
    println!("skipped: {why} ({test})");
    eprintln!("skipped: {why} ({test})");
}

/// What a client process did.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "exit status {}\n---- stdout ----\n{}\n---- stderr ----\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with `stdin`, killing it after `limit` (a hung server must fail the test, not
/// hang it).
pub fn run_child(cmd: &mut Command, stdin: &[u8], limit: Duration, what: &str) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout =
                    String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
                let stderr =
                    String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
                panic!(
                    "{what} did not finish within {limit:?} (killed it)\n---- stdout ----\n{stdout}\n---- stderr ----\n{stderr}"
                );
            }
        }
    };
    let _ = writer.join();
    Run {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    }
}

/// The case runner the Python client scripts share (`cases.py`).
const PY_CASES: &str = include_str!("cases.py");

/// Runs the Python client script `script` as `file` in a fresh directory beside `prelude` (as
/// `prelude.py`) and the shared case runner, with `env`, and asserts that it printed `ok`
/// (every case passed); otherwise fails with each case's traceback.
pub fn run_python_cases(prelude: &str, file: &str, script: &str, env: &[(&str, String)]) {
    let dir = tempfile::Builder::new()
        .prefix("thunderdb-e2e-py-")
        .tempdir()
        .expect("create a directory for the script");
    for (name, text) in [
        ("cases.py", PY_CASES),
        ("prelude.py", prelude),
        (file, script),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write a script file");
    }
    let mut cmd = Command::new("python3");
    cmd.arg("-B")
        .arg(file)
        .current_dir(dir.path())
        .env("PYTHONUNBUFFERED", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = run_child(&mut cmd, b"", Duration::from_secs(300), file);
    assert!(
        run.status.success() && run.stdout.trim_end() == "ok",
        "Python script {file} failed (the cases and their tracebacks are below)\n{}",
        run.describe()
    );
}
