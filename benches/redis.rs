//! Redis benchmark: `redis-benchmark` against ThunderDB's RESP frontend and against a stock
//! `redis-server` 7 started by this harness, in the same run, on the same machine.
//!
//! Workloads: `-t set,get,incr,lpush,hset -c 50 -n N`, without pipelining and with `-P 16`.
//! redis-server runs with its default persistence turned off (`--save '' --appendonly no`), as
//! a cache; every ThunderDB write is a WAL commit fsynced before the reply (group commit makes
//! the 50 clients share fsyncs). Prints requests/s per system and the ratio; asserts nothing.
//!
//! Run: `cargo bench --bench redis` (Debian `redis-server` and `redis-tools`; `scripts/install-bench-deps`).
//! Knobs: `BENCH_REQUESTS` (N, default 200000), `BENCH_REDIS_CLIENTS` (50), `THUNDERDB_BIN`.

#[path = "support/mod.rs"]
mod common;
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/stock_postgres.rs"]
mod stock_postgres;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{env_number, start_thunderdb, thunderdb_bin};

const TESTS: &str = "set,get,incr,lpush,hset";

/// Requests per second of each test, from `redis-benchmark --csv`.
fn run_benchmark(
    port: u16,
    requests: u64,
    clients: u64,
    pipeline: u64,
) -> Result<Vec<(String, f64)>> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-t",
            TESTS,
            "-c",
            &clients.to_string(),
            "-n",
            &requests.to_string(),
        ])
        .args(["-P", &pipeline.to_string(), "--csv"])
        .output()
        .context("run redis-benchmark (Debian redis-tools)")?;
    if !out.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // "test","rps","avg_latency_ms",…
    let mut figures = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
        if let (Some(test), Some(rps)) = (fields.first(), fields.get(1))
            && let Ok(rps) = rps.parse::<f64>()
        {
            figures.push((test.to_string(), rps));
        }
    }
    Ok(figures)
}

/// A stock redis-server on a free port, stopped by pid on drop.
struct StockRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl StockRedis {
    fn start() -> Result<StockRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start redis-server (Debian redis-server)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(StockRedis {
            child,
            port,
            _dir: dir,
        })
    }
}

impl Drop for StockRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> Result<()> {
    let requests = env_number("BENCH_REQUESTS", 200_000)?;
    let clients = env_number("BENCH_REDIS_CLIENTS", 50)?;
    let bin = thunderdb_bin()?;
    println!(
        "Redis benchmark: redis-benchmark -t {TESTS} -c {clients} -n {requests}, without and with -P 16"
    );
    println!("thunderdb binary: {}", bin.display());
    let mut server = start_thunderdb(bin);
    let stock = StockRedis::start()?;
    let mut report = String::new();
    for pipeline in [1, 16] {
        let ours = run_benchmark(server.resp_port(), requests, clients, pipeline)?;
        let theirs = run_benchmark(stock.port, requests, clients, pipeline)?;
        report.push_str(&format!(
            "\n-P {pipeline}\n{:<8} {:>14} {:>14} {:>8}\n",
            "test", "thunderdb rps", "redis rps", "ratio"
        ));
        for (test, rps) in &ours {
            let peer = theirs
                .iter()
                .find(|(t, _)| t == test)
                .map_or(f64::NAN, |(_, r)| *r);
            report.push_str(&format!(
                "{test:<8} {rps:>14.0} {peer:>14.0} {:>7.3}x\n",
                rps / peer
            ));
        }
    }
    common::write_report("bench-redis.txt", &report);
    drop(stock);
    if let Err(e) = server.terminate(Duration::from_secs(30)) {
        eprintln!("stopping thunderdb: {e}");
    }
    Ok(())
}
