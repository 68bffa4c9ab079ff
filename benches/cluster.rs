//! Commit latency and throughput of the three-node cluster, against a stock PostgreSQL 15 with
//! `synchronous_commit=on` (and the single-process `thunderdb dev`, to show what replication
//! costs), in the same run on the same machine.
//!
//! The cluster is `scripts/cluster.sh` (three `thunderdb walservice` nodes on loopback, a
//! pageserver, compute nodes); clients connect to compute node 1 directly. Each client runs
//! single-row INSERT transactions (autocommit: one durable commit each) through a
//! tokio-postgres prepared statement, at 1, 8 and 32 clients. Prints commits/s, p50 and p99 per
//! system and client count and the ratios to PostgreSQL; asserts nothing.
//! Run: `cargo bench --bench cluster`. Knobs: `BENCH_SECS` (10 per point), `BENCH_WARMUP_SECS`
//! (1), `BENCH_CLIENT_COUNTS` (`1,8,32`), `BENCH_CLUSTER_BASE_PORT` (25000), `THUNDERDB_BIN`.

#[path = "support/mod.rs"]
mod common;
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/stock_postgres.rs"]
mod stock_postgres;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use common::{env_number, postgres_peer, start_thunderdb, thunderdb_bin, write_report};
use harness::{connect_with, describe};

struct Settings {
    secs: Duration,
    warmup: Duration,
    client_counts: Vec<usize>,
}

struct Point {
    system: &'static str,
    clients: usize,
    commits: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Point {
    fn per_sec(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The cluster `scripts/cluster.sh` runs, stopped (by PID, through the script) when dropped.
struct ScriptCluster {
    script: PathBuf,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl ScriptCluster {
    fn start(bin: &Path, base_port: u16) -> Result<ScriptCluster> {
        let dir = tempfile::Builder::new()
            .prefix("thunderdb-bench-cluster-")
            .tempdir()?;
        let cluster = ScriptCluster {
            script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh"),
            env: vec![
                ("THUNDERDB_BIN".into(), bin.display().to_string()),
                (
                    "THUNDERDB_CLUSTER_DIR".into(),
                    dir.path().display().to_string(),
                ),
                ("THUNDERDB_CLUSTER_BASE_PORT".into(), base_port.to_string()),
            ],
            _dir: dir,
        };
        for node in ["wal-1", "wal-2", "wal-3", "pageserver", "compute-1"] {
            cluster.run(&["start", node])?;
        }
        Ok(cluster)
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        let status = Command::new("bash")
            .arg(&self.script)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status()
            .with_context(|| format!("run {}", self.script.display()))?;
        if !status.success() {
            bail!("cluster.sh {args:?}: {status}");
        }
        Ok(())
    }
}

impl Drop for ScriptCluster {
    fn drop(&mut self) {
        if let Err(e) = self.run(&["stop"]) {
            eprintln!("stopping the cluster: {e:#}");
        }
    }
}

fn main() -> Result<()> {
    let counts = std::env::var("BENCH_CLIENT_COUNTS").unwrap_or_else(|_| "1,8,32".into());
    let settings = Settings {
        secs: Duration::from_secs_f64(env_number("BENCH_SECS", 10.0)?),
        warmup: Duration::from_secs_f64(env_number("BENCH_WARMUP_SECS", 1.0)?),
        client_counts: counts
            .split(',')
            .map(|c| c.trim().parse::<usize>().map(|n| n.max(1)))
            .collect::<Result<_, _>>()
            .with_context(|| format!("BENCH_CLIENT_COUNTS={counts:?}"))?,
    };
    let base_port: u16 = env_number("BENCH_CLUSTER_BASE_PORT", 25_000u16)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(settings, base_port))
}

async fn run(settings: Settings, base_port: u16) -> Result<()> {
    let bin = thunderdb_bin()?;
    println!(
        "commit latency: clients {:?}, {:?} per point after {:?} warm-up; binary {}",
        settings.client_counts,
        settings.secs,
        settings.warmup,
        bin.display()
    );
    let mut points = Vec::new();
    {
        let _cluster = ScriptCluster::start(&bin, base_port)?;
        let conn = format!(
            "host=127.0.0.1 port={} user=thunder password=thunder dbname=thunderdb",
            base_port + 211
        );
        points.extend(measure_system("cluster (3 WAL nodes)", &conn, &settings).await?);
    }
    {
        let mut server = start_thunderdb(bin.clone());
        let measured = measure_system("thunderdb dev", &server.conn_str(), &settings).await;
        if let Err(e) = server.terminate(Duration::from_secs(30)) {
            eprintln!("stopping thunderdb dev: {e}");
        }
        points.extend(measured?);
    }
    if let Some(mut pg) = postgres_peer("bench")? {
        let measured = measure_system("postgresql 15", &pg.conn_str(), &settings).await;
        pg.stop();
        points.extend(measured?);
    }
    write_report("bench-cluster.txt", &render(&points));
    Ok(())
}

async fn measure_system(
    system: &'static str,
    conn_str: &str,
    settings: &Settings,
) -> Result<Vec<Point>> {
    let client = connect_with(conn_str)
        .await
        .map_err(|e| anyhow::anyhow!("{system}: connect: {}", describe(&e)))?;
    client
        .batch_execute("CREATE TABLE commits (id BIGINT PRIMARY KEY, client INT, v BIGINT)")
        .await
        .map_err(|e| anyhow::anyhow!("{system}: create table: {}", describe(&e)))?;
    let mut points = Vec::new();
    for (round, &clients) in settings.client_counts.iter().enumerate() {
        let p = measure(system, conn_str, clients, round, settings).await?;
        println!(
            "{system:<22} {clients:>3} clients {:>9.0} commits/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            p.per_sec(),
            ms(p.p50),
            ms(p.p99)
        );
        points.push(p);
    }
    Ok(points)
}

async fn measure(
    system: &'static str,
    conn_str: &str,
    clients: usize,
    round: usize,
    settings: &Settings,
) -> Result<Point> {
    let warm_until = Instant::now() + settings.warmup;
    let until = warm_until + settings.secs;
    let mut tasks = Vec::new();
    for index in 0..clients {
        let client = connect_with(conn_str)
            .await
            .map_err(|e| anyhow::anyhow!("{system}: connect: {}", describe(&e)))?;
        // Keys disjoint per round and client: no conflicts, only commits.
        let mut key = ((round * 1000 + index) as i64) << 32;
        tasks.push(tokio::spawn(async move {
            let insert = client
                .prepare("INSERT INTO commits (id, client, v) VALUES ($1, $2, $3)")
                .await
                .map_err(|e| anyhow::anyhow!("prepare: {}", describe(&e)))?;
            let mut latencies = Vec::new();
            loop {
                let start = Instant::now();
                if start >= until {
                    break;
                }
                key += 1;
                client
                    .execute(&insert, &[&key, &(index as i32), &key])
                    .await
                    .map_err(|e| anyhow::anyhow!("insert: {}", describe(&e)))?;
                if start >= warm_until {
                    latencies.push(start.elapsed().as_micros() as u64);
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("client task")??);
    }
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |us| Duration::from_micros(*us))
    };
    Ok(Point {
        system,
        clients,
        commits: all.len(),
        elapsed: settings.secs,
        p50: pick(0.50),
        p99: pick(0.99),
    })
}

fn render(points: &[Point]) -> String {
    let mut out = String::from(
        "system                 clients  commits/s   p50 ms   p99 ms   vs PostgreSQL (commits/s, p50)\n",
    );
    for p in points {
        let pg = points
            .iter()
            .find(|q| q.system.starts_with("postgresql") && q.clients == p.clients);
        let ratio = pg.map_or(String::new(), |q| {
            format!(
                "{:.2}x, {:.2}x",
                p.per_sec() / q.per_sec().max(1e-9),
                ms(p.p50) / ms(q.p50).max(1e-9)
            )
        });
        out.push_str(&format!(
            "{:<22} {:>7} {:>10.0} {:>8.2} {:>8.2}   {ratio}\n",
            p.system,
            p.clients,
            p.per_sec(),
            ms(p.p50),
            ms(p.p99)
        ));
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
