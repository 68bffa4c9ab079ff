//! MySQL benchmark: `sysbench oltp_read_write` and `oltp_point_select` (Debian sysbench, its
//! MySQL driver with server-side prepared statements) against ThunderDB's MySQL frontend and
//! against a stock MariaDB 10.11 (Debian `mariadb-server`) started by this harness on a free
//! port under a temporary directory, in the same run, on the same data shape.
//!
//! MariaDB keeps its defaults (InnoDB, `innodb_flush_log_at_trx_commit=1`: a commit is fsynced);
//! every ThunderDB commit is a WAL commit fsynced before the reply. Prints transactions/s and
//! queries/s per system and the ratios; asserts nothing.
//!
//! Run: `cargo bench --bench mysql` (`scripts/install-bench-deps`). Knobs: `BENCH_SECONDS`
//! (per workload, default 30), `BENCH_THREADS` (4), `BENCH_TABLES` (4), `BENCH_TABLE_SIZE`
//! (10000), `THUNDERDB_BIN`.

#[path = "support/mod.rs"]
mod common;
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/stock_postgres.rs"]
mod stock_postgres;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{env_number, start_thunderdb, thunderdb_bin};

const USER: &str = "thunder";
const PASSWORD: &str = "thunder";
const DATABASE: &str = "thunderdb";

/// The sysbench settings both systems get.
struct Shape {
    tables: u64,
    table_size: u64,
    threads: u64,
    seconds: u64,
}

/// Runs one sysbench step against `port`; its output.
fn sysbench(port: u16, shape: &Shape, workload: &str, step: &[&str]) -> Result<String> {
    let out = Command::new("sysbench")
        .arg(workload)
        .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
        .arg(format!("--mysql-port={port}"))
        .arg(format!("--mysql-user={USER}"))
        .arg(format!("--mysql-password={PASSWORD}"))
        .arg(format!("--mysql-db={DATABASE}"))
        .arg(format!("--tables={}", shape.tables))
        .arg(format!("--table-size={}", shape.table_size))
        .arg(format!("--threads={}", shape.threads))
        .arg(format!("--time={}", shape.seconds))
        .args(step)
        .output()
        .context("run sysbench (Debian sysbench)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "sysbench {workload} {step:?} failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

/// (transactions/s, queries/s, ignored errors/s) from a sysbench run's summary.
fn rates(text: &str) -> (f64, f64, f64) {
    let per_sec = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split('(').nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (
        per_sec("transactions:"),
        per_sec("queries:"),
        per_sec("ignored errors:"),
    )
}

/// A stock MariaDB server on a free port, stopped by pid on drop.
struct StockMariaDb {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl StockMariaDb {
    fn start() -> Result<StockMariaDb> {
        let dir = tempfile::Builder::new()
            .prefix("bench-mariadb-")
            .tempdir()?;
        let data = dir.path().join("data");
        let socket = dir.path().join("mysqld.sock");
        let status = Command::new("mariadb-install-db")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg("--user=root")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("run mariadb-install-db (Debian mariadb-server)")?;
        if !status.success() {
            bail!("mariadb-install-db failed");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("mariadbd")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--user=root", "--skip-log-bin"])
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start mariadbd")?;
        let server = StockMariaDb {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !socket.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("mariadbd did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        server.as_root(
            &socket,
            &format!(
                "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
                 CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'; \
                 GRANT ALL ON *.* TO '{USER}'@'%'; GRANT ALL ON *.* TO '{USER}'@'localhost'; \
                 CREATE DATABASE {DATABASE};"
            ),
        )?;
        Ok(server)
    }

    fn as_root(&self, socket: &Path, sql: &str) -> Result<()> {
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", socket.display()))
            .args(["-uroot", "-e", sql])
            .output()
            .context("run the mariadb client")?;
        if !out.status.success() {
            bail!("{sql}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

impl Drop for StockMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> Result<()> {
    let shape = Shape {
        tables: env_number("BENCH_TABLES", 4)?,
        table_size: env_number("BENCH_TABLE_SIZE", 10_000)?,
        threads: env_number("BENCH_THREADS", 4)?,
        seconds: env_number("BENCH_SECONDS", 30)?,
    };
    let bin = thunderdb_bin()?;
    println!(
        "MySQL benchmark: sysbench --tables={} --table-size={} --threads={} --time={}",
        shape.tables, shape.table_size, shape.threads, shape.seconds
    );
    println!("thunderdb binary: {}", bin.display());
    let mut server = start_thunderdb(bin);
    let stock = StockMariaDb::start()?;
    let systems = [("thunderdb", server.mysql_port()), ("mariadb", stock.port)];
    for (name, port) in systems {
        let started = Instant::now();
        sysbench(port, &shape, "oltp_read_write", &["prepare"])?;
        println!(
            "{name}: prepared in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let mut report = format!(
        "\n{:<18} {:>14} {:>14} {:>14} {:>14} {:>8}\n",
        "workload", "thunderdb tps", "mariadb tps", "thunderdb qps", "mariadb qps", "ratio"
    );
    for workload in ["oltp_point_select", "oltp_read_write"] {
        let mut figures = Vec::new();
        for (_, port) in systems {
            figures.push(rates(&sysbench(port, &shape, workload, &["run"])?));
        }
        let (ours, theirs) = (figures[0], figures[1]);
        report.push_str(&format!(
            "{workload:<18} {:>14.1} {:>14.1} {:>14.1} {:>14.1} {:>7.3}x   (ignored errors/s: {:.1} vs {:.1})\n",
            ours.0,
            theirs.0,
            ours.1,
            theirs.1,
            ours.0 / theirs.0,
            ours.2,
            theirs.2
        ));
    }
    common::write_report("bench-mysql.txt", &report);
    for (_, port) in systems {
        let _ = sysbench(port, &shape, "oltp_read_write", &["cleanup"]);
    }
    drop(stock);
    if let Err(e) = server.terminate(Duration::from_secs(30)) {
        eprintln!("stopping thunderdb: {e}");
    }
    Ok(())
}
