//! OLTP benchmark: ThunderDB against a stock PostgreSQL 15 started by this harness in the same
//! run, same machine, same client code.
//!
//! Both get the same table, `bench(id bigint primary key, v bigint, pad text)` with 100k rows,
//! and the same two workloads through tokio-postgres prepared statements, 4 clients each:
//! - point SELECT by primary key;
//! - single-row INSERT transactions (autocommit, so one durable commit each: PostgreSQL runs with
//!   `fsync=on`, `synchronous_commit=on`; ThunderDB acknowledges after its WAL fsync).
//!
//! Prints ops/s, p50 and p99 latency per system and the ThunderDB/PostgreSQL ratio; asserts
//! nothing. Run: `cargo bench --bench oltp` (PostgreSQL from `scripts/install-bench-deps`).
//! Knobs: `BENCH_SECS` (20 per workload), `BENCH_WARMUP_SECS` (2), `BENCH_CLIENTS` (4),
//! `BENCH_ROWS` (100000), `THUNDERDB_BIN` (default: the release binary cargo built).

#[path = "support/mod.rs"]
mod common;
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/stock_postgres.rs"]
mod stock_postgres;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;

use common::{env_number, start_thunderdb, thunderdb_bin};
use harness::{connect_with, describe};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    PointSelect,
    Insert,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::PointSelect => "point-select",
            Workload::Insert => "insert",
        }
    }
}

#[derive(Clone, Debug)]
struct Settings {
    secs: Duration,
    warmup: Duration,
    clients: usize,
    rows: i64,
}

#[derive(Clone, Debug)]
struct Figures {
    system: &'static str,
    workload: Workload,
    ops: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

impl Figures {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let settings = Settings {
        secs: Duration::from_secs_f64(env_number("BENCH_SECS", 20.0)?),
        warmup: Duration::from_secs_f64(env_number("BENCH_WARMUP_SECS", 2.0)?),
        clients: env_number("BENCH_CLIENTS", 4usize)?.max(1),
        rows: env_number("BENCH_ROWS", 100_000i64)?.max(1),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("build the tokio runtime")?;
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> Result<()> {
    let bin = thunderdb_bin()?;
    println!(
        "OLTP benchmark: {} clients, {:?} per workload after {:?} warm-up, {} rows",
        settings.clients, settings.secs, settings.warmup, settings.rows
    );
    println!("thunderdb binary: {}", bin.display());
    if bin.components().any(|c| c.as_os_str() == "debug") {
        println!(
            "warning: this looks like a debug build; figures will be far from release performance"
        );
    }
    let mut figures = Vec::new();

    {
        let mut server = start_thunderdb(bin);
        let conn_str = server.conn_str();
        let measured = measure_system("thunderdb", &conn_str, &settings, false).await;
        if let Err(e) = server.terminate(Duration::from_secs(30)) {
            eprintln!("stopping thunderdb: {e}");
        }
        figures.extend(measured?);
    }

    if let Some(mut pg) = common::postgres_peer("bench")? {
        let measured = measure_system("postgresql", &pg.conn_str(), &settings, true).await;
        pg.stop();
        figures.extend(measured?);
    }
    common::write_report("bench-oltp.txt", &render_report(&figures));
    Ok(())
}

async fn measure_system(
    system: &'static str,
    conn_str: &str,
    settings: &Settings,
    analyze: bool,
) -> Result<Vec<Figures>> {
    let started = Instant::now();
    load(conn_str, settings.rows, analyze)
        .await
        .with_context(|| format!("load {system}"))?;
    println!(
        "{system}: loaded {} rows in {:.1?}",
        settings.rows,
        started.elapsed()
    );
    let mut figures = Vec::new();
    for workload in [Workload::PointSelect, Workload::Insert] {
        let f = measure(system, conn_str, workload, settings)
            .await
            .with_context(|| format!("{system} {}", workload.name()))?;
        println!(
            "{system:<11} {:<13} {:>10.0} ops/s  p50 {:>8.3} ms  p99 {:>8.3} ms{}",
            workload.name(),
            f.ops_per_sec(),
            ms(f.p50),
            ms(f.p99),
            if f.errors > 0 {
                format!("  ({} errors)", f.errors)
            } else {
                String::new()
            }
        );
        figures.push(f);
    }
    Ok(figures)
}

async fn load(conn_str: &str, rows: i64, analyze: bool) -> Result<()> {
    let client = connect_with(conn_str)
        .await
        .map_err(|e| anyhow::anyhow!("connect: {}", describe(&e)))?;
    client
        .batch_execute(
            "CREATE TABLE bench (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, pad TEXT NOT NULL)",
        )
        .await
        .map_err(|e| anyhow::anyhow!("create table: {}", describe(&e)))?;
    let pad = "x".repeat(100);
    let mut next = 1i64;
    while next <= rows {
        let last = (next + 999).min(rows);
        let values: Vec<String> = (next..=last)
            .map(|id| format!("({id}, {}, '{pad}')", id * 7))
            .collect();
        client
            .batch_execute(&format!(
                "INSERT INTO bench (id, v, pad) VALUES {}",
                values.join(", ")
            ))
            .await
            .map_err(|e| anyhow::anyhow!("insert rows {next}..={last}: {}", describe(&e)))?;
        next = last + 1;
    }
    if analyze {
        client
            .batch_execute("ANALYZE bench")
            .await
            .map_err(|e| anyhow::anyhow!("analyze: {}", describe(&e)))?;
    }
    Ok(())
}

async fn measure(
    system: &'static str,
    conn_str: &str,
    workload: Workload,
    settings: &Settings,
) -> Result<Figures> {
    let mut clients = Vec::new();
    for _ in 0..settings.clients {
        clients.push(
            connect_with(conn_str)
                .await
                .map_err(|e| anyhow::anyhow!("connect: {}", describe(&e)))?,
        );
    }
    let warmup_until = Instant::now() + settings.warmup;
    let measure_until = warmup_until + settings.secs;
    let mut tasks = Vec::new();
    for (index, client) in clients.into_iter().enumerate() {
        let rows = settings.rows;
        tasks.push(tokio::spawn(async move {
            client_run(client, index, workload, rows, warmup_until, measure_until).await
        }));
    }
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut lat, errs) = task.await.context("benchmark client panicked")??;
        latencies.append(&mut lat);
        errors += errs;
    }
    latencies.sort_unstable();
    let pick = |q: usize| {
        if latencies.is_empty() {
            Duration::ZERO
        } else {
            Duration::from_micros(
                latencies[(latencies.len() * q / 100).min(latencies.len() - 1)] as u64,
            )
        }
    };
    Ok(Figures {
        system,
        workload,
        ops: latencies.len() as u64,
        elapsed: settings.secs,
        p50: pick(50),
        p99: pick(99),
        errors,
    })
}

/// One client: runs the workload until `measure_until`, recording latencies (µs) of the
/// operations that started after the warm-up.
async fn client_run(
    client: Client,
    index: usize,
    workload: Workload,
    rows: i64,
    warmup_until: Instant,
    measure_until: Instant,
) -> Result<(Vec<u32>, u64)> {
    let mut rng = StdRng::seed_from_u64(index as u64 + 1);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    let statement = match workload {
        Workload::PointSelect => {
            client
                .prepare("SELECT v, pad FROM bench WHERE id = $1")
                .await
        }
        Workload::Insert => {
            client
                .prepare("INSERT INTO bench (id, v, pad) VALUES ($1, $2, $3)")
                .await
        }
    }
    .map_err(|e| anyhow::anyhow!("prepare: {}", describe(&e)))?;
    // Insert keys: disjoint per client and above the loaded rows.
    let mut next_key = 1_000_000_000i64 * (index as i64 + 1);
    let pad = "y".repeat(100);
    loop {
        let start = Instant::now();
        if start >= measure_until {
            break;
        }
        let outcome = match workload {
            Workload::PointSelect => {
                let id: i64 = rng.gen_range(1..=rows);
                client.query_one(&statement, &[&id]).await.map(|_| ())
            }
            Workload::Insert => {
                next_key += 1;
                client
                    .execute(&statement, &[&next_key, &(next_key % 1000), &pad])
                    .await
                    .map(|_| ())
            }
        };
        match outcome {
            Ok(()) if start >= warmup_until => {
                latencies.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            Ok(()) => {}
            Err(e) if e.as_db_error().is_some() => {
                errors += 1;
                if errors == 1 {
                    eprintln!("client {index}: {}", describe(&e));
                }
            }
            Err(e) => bail!("client {index}: {}", describe(&e)),
        }
    }
    Ok((latencies, errors))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn render_report(figures: &[Figures]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<14} {:<12} {:>12} {:>10} {:>10}\n",
        "workload", "system", "ops/s", "p50 ms", "p99 ms"
    ));
    for f in figures {
        out.push_str(&format!(
            "{:<14} {:<12} {:>12.0} {:>10.3} {:>10.3}{}\n",
            f.workload.name(),
            f.system,
            f.ops_per_sec(),
            ms(f.p50),
            ms(f.p99),
            if f.errors > 0 {
                format!("  ({} errors)", f.errors)
            } else {
                String::new()
            }
        ));
    }
    for workload in [Workload::PointSelect, Workload::Insert] {
        let find = |system: &str| {
            figures
                .iter()
                .find(|f| f.system == system && f.workload == workload)
        };
        if let (Some(t), Some(p)) = (find("thunderdb"), find("postgresql")) {
            out.push_str(&format!(
                "ratio thunderdb/postgresql {:<13} throughput {:.3}x, p50 latency {:.2}x, p99 latency {:.2}x\n",
                workload.name(),
                t.ops_per_sec() / p.ops_per_sec().max(1e-9),
                ms(t.p50) / ms(p.p50).max(1e-9),
                ms(t.p99) / ms(p.p99).max(1e-9)
            ));
        }
    }
    out
}
