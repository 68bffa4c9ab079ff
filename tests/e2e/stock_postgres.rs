//! A stock PostgreSQL 15 started by the test process under a temporary directory, on a free port.
//!
//! Two users: the benchmark (`benches/oltp.rs`, the peer ThunderDB is measured against) and the
//! end-to-end harness when `THUNDERDB_E2E_BACKEND=postgres`, which runs the whole suite against
//! PostgreSQL itself to prove that a failing test is ThunderDB's fault, not the test's.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI) the server runs as the
//! Debian `postgres` user, which owns the temporary directory.
#![allow(dead_code)] // the benchmark includes this file too and uses only part of it

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How to set up the stock server.
#[derive(Clone, Debug)]
pub struct StockPostgresOptions {
    pub user: String,
    pub password: String,
    pub database: String,
    /// Extra `-c name=value` settings (fsync and synchronous_commit are always on).
    pub settings: Vec<(String, String)>,
    /// Start the postmaster in its own process group so that `kill9` can take down the
    /// postmaster and every backend at once, as a machine crash would.
    pub own_process_group: bool,
}

impl Default for StockPostgresOptions {
    fn default() -> Self {
        StockPostgresOptions {
            user: "thunder".into(),
            password: "thunder".into(),
            database: "thunderdb".into(),
            settings: Vec::new(),
            own_process_group: false,
        }
    }
}

/// One PostgreSQL cluster: `initdb` once, then start/stop/kill as often as needed.
pub struct StockPostgres {
    opts: StockPostgresOptions,
    root: tempfile::TempDir,
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    port: u16,
}

impl StockPostgres {
    /// Where the PostgreSQL 15 server binaries live (`THUNDERDB_PG_BIN_DIR` overrides).
    pub fn bin_dir() -> PathBuf {
        match std::env::var_os("THUNDERDB_PG_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from("/usr/lib/postgresql/15/bin"),
        }
    }

    /// Whether `initdb` and `postgres` are installed (Debian package `postgresql`).
    pub fn is_installed() -> bool {
        let dir = Self::bin_dir();
        dir.join("initdb").is_file() && dir.join("postgres").is_file()
    }

    /// Creates a fresh cluster, starts it and creates the database.
    pub fn init(opts: StockPostgresOptions) -> Result<StockPostgres> {
        let bin_dir = Self::bin_dir();
        if !Self::is_installed() {
            bail!(
                "PostgreSQL server binaries not found in {} (install Debian `postgresql`: scripts/install-bench-deps)",
                bin_dir.display()
            );
        }
        let root = tempfile::Builder::new()
            .prefix("thunderdb-stock-pg-")
            .tempdir()
            .context("create a temporary directory for PostgreSQL")?;
        let run_as = postgres_account_if_root()?;
        let pwfile = root.path().join("pwfile");
        fs::write(&pwfile, format!("{}\n", opts.password)).context("write the password file")?;
        if let Some((uid, gid)) = run_as {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{uid}:{gid}"))
                .arg(root.path())
                .status()
                .context("run chown")?;
            if !status.success() {
                bail!(
                    "chown {} to the postgres user failed",
                    root.path().display()
                );
            }
        }

        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(root.path().join("pgdata"))
            .arg("-U")
            .arg(&opts.user)
            // md5 as ThunderDB's default `pg_auth_method`: SCRAM for SCRAM verifiers, an MD5
            // challenge for MD5 hashes.
            .arg("--auth=md5")
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--no-locale", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null());
        if let Some((uid, gid)) = run_as {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb.output().context("run initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let mut pg = StockPostgres {
            opts,
            root,
            bin_dir,
            run_as,
            child: None,
            port: 0,
        };
        pg.start()?;
        if pg.opts.database != "postgres" {
            let out = Command::new(pg.bin_dir.join("createdb"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    pg.port.to_string().as_str(),
                    "-U",
                    pg.opts.user.as_str(),
                ])
                .arg(&pg.opts.database)
                .env("PGPASSWORD", &pg.opts.password)
                .stdin(Stdio::null())
                .output()
                .context("run createdb")?;
            if !out.status.success() {
                bail!("createdb failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        Ok(pg)
    }

    /// Starts the postmaster on a fresh free port and waits until it accepts connections.
    pub fn start(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("PostgreSQL is already running");
        }
        let port = free_port()?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("open the PostgreSQL log file")?;
        let mut cmd = Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(port.to_string())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.root.path().display()
            ))
            .args(["-c", "fsync=on", "-c", "synchronous_commit=on"])
            // `initdb --auth=md5` also made MD5 the stored form; new passwords are SCRAM as in
            // a default PostgreSQL (and ThunderDB).
            .args(["-c", "password_encryption=scram-sha-256"]);
        for (name, value) in &self.opts.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(
                log.try_clone().context("clone the log file handle")?,
            ))
            .stderr(Stdio::from(log));
        if self.opts.own_process_group {
            cmd.process_group(0);
        }
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().context("spawn postgres")?;
        self.child = Some(child);
        self.port = port;
        self.wait_ready(Duration::from_secs(60))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("poll postgres")?
            {
                self.child = None;
                bail!(
                    "postgres exited during start-up ({status}):\n{}",
                    self.log_tail(40)
                );
            }
            let ready = Command::new(self.bin_dir.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    self.port.to_string().as_str(),
                    "-t",
                    "1",
                ])
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres not ready after {timeout:?}:\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit), bounded by 30 s
    /// after which the postmaster is killed. Returns the exit status if it was running.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let pid = self.pid()?;
        signal(pid, "INT", false);
        if let Some(status) = self.wait_exit(Duration::from_secs(30)) {
            return Some(status);
        }
        self.kill9()
    }

    /// Sends `signal` (e.g. "TERM") to the postmaster without waiting.
    pub fn signal(&self, name: &str) {
        if let Some(pid) = self.pid() {
            signal(pid, name, false);
        }
    }

    /// Kills the postmaster (and, with `own_process_group`, every backend) with SIGKILL.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        let pid = self.pid()?;
        if self.opts.own_process_group {
            signal(pid, "KILL", true);
        } else if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
        let status = self.wait_exit(Duration::from_secs(30));
        if self.opts.own_process_group {
            // Backends notice the postmaster's death on their own; wait until the group is gone
            // so that a restart does not find their shared memory still attached.
            let deadline = Instant::now() + Duration::from_secs(30);
            while group_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        status
    }

    /// Waits up to `timeout` for the postmaster to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => return None,
                Err(_) => {
                    self.child = None;
                    return None;
                }
            }
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The postmaster's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.opts.user
    }

    pub fn password(&self) -> &str {
        &self.opts.password
    }

    pub fn database(&self) -> &str {
        &self.opts.database
    }

    /// A tokio-postgres / libpq key-value connection string.
    pub fn conn_str(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={} password={} dbname={} connect_timeout=10",
            self.port, self.opts.user, self.opts.password, self.opts.database
        )
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("pgdata")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("postgres.log")
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(
            &fs::read_to_string(self.log_path()).unwrap_or_default(),
            lines,
        )
    }
}

impl Drop for StockPostgres {
    fn drop(&mut self) {
        if self.is_running() {
            self.stop();
        }
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr().context("local address")?.port())
}

/// Sends a signal by pid (or to the process group `pid` when `group`) with the `kill` command.
pub fn signal(pid: u32, name: &str, group: bool) {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg("--")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether any process of the process group `pgid` still exists.
fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", format!("-{pgid}").as_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The uid/gid of the `postgres` account when this process runs as root, since PostgreSQL
/// refuses to run as root.
fn postgres_account_if_root() -> Result<Option<(u32, u32)>> {
    if id(&["-u"])? != 0 {
        return Ok(None);
    }
    let uid = id(&["-u", "postgres"]).context("running as root needs a `postgres` account")?;
    let gid = id(&["-g", "postgres"])?;
    Ok(Some((uid, gid)))
}

fn id(args: &[&str]) -> Result<u32> {
    let out = Command::new("id").args(args).output().context("run id")?;
    if !out.status.success() {
        bail!(
            "id {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("parse the output of id")
}
