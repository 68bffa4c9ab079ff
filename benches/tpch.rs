//! TPC-H on ThunderDB, DuckDB and a stock PostgreSQL 15 in one run on the same machine and the
//! same data (`tpchgen-cli` CSV at scale `BENCH_SCALE`, default 1): each system loads the files
//! (ThunderDB and PostgreSQL with COPY), then runs the 22 queries once each (DuckDB's TPC-H
//! extension supplies the texts and the answers ThunderDB's rows are checked against).
//!
//! Prints per-query seconds, totals and the ThunderDB/DuckDB and PostgreSQL/ThunderDB ratios
//! (also to `target/bench-tpch.txt`); asserts nothing. Run: `cargo bench --bench tpch` (PyPI
//! `tpchgen-cli`, `duckdb` 1.5 and `duckdb-extension-tpch` as `scripts/test` installs them;
//! PostgreSQL from `scripts/install-bench-deps`). `BENCH_SCALE`, `THUNDERDB_BIN`, and
//! `BENCH_QUERY_TIMEOUT_SECS` (600) for PostgreSQL's slowest queries.

#[path = "support/mod.rs"]
mod common;
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/stock_postgres.rs"]
mod stock_postgres;
// The e2e test's pieces; its test function and what only it uses are not built here.
#[path = "support/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../tests/e2e/tpch.rs"]
#[allow(dead_code, unused_imports)]
mod tpch;
#[path = "support/tpch_data.rs"]
mod tpch_data;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio_postgres::{Client, NoTls};

use common::{env_number, start_thunderdb, thunderdb_bin};
use pg::Target;

struct Timings {
    load_secs: f64,
    /// Seconds per query; `None` for an error, a timeout or a wrong answer (said on stderr).
    queries: Vec<Option<f64>>,
}

fn main() -> Result<()> {
    let scale: f64 = env_number("BENCH_SCALE", 1.0)?;
    let timeout = Duration::from_secs(env_number("BENCH_QUERY_TIMEOUT_SECS", 600u64)?);
    let data = tpch_data::tpch_data(scale)?;
    let duckdb: Vec<Option<f64>> = (1..=22)
        .map(|n| {
            std::fs::read_to_string(data.join(format!("q{n}.secs")))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("build the tokio runtime")?;

    let bin = thunderdb_bin()?;
    println!("thunderdb binary: {}", bin.display());
    let thunder = {
        let mut server = start_thunderdb(bin);
        let target = Target::thunderdb(&server);
        let timings = runtime.block_on(measure("thunderdb", &target, &data, timeout, true));
        if let Err(e) = server.terminate(Duration::from_secs(60)) {
            eprintln!("stopping thunderdb: {e}");
        }
        timings?
    };
    let postgres = match common::postgres_peer("tpch")? {
        Some(mut pg) => {
            let target = Target::postgres(&pg);
            let timings = runtime.block_on(measure("postgresql", &target, &data, timeout, false));
            pg.stop();
            Some(timings?)
        }
        None => None,
    };
    common::write_report(
        "bench-tpch.txt",
        &render(scale, &thunder, &duckdb, postgres.as_ref()),
    );
    Ok(())
}

async fn measure(
    system: &str,
    target: &Target,
    data: &Path,
    timeout: Duration,
    checkpoint: bool,
) -> Result<Timings> {
    let client = target.connect(system).await?;
    let started = Instant::now();
    tpch::load(&client, data).await;
    client.batch_execute("ANALYZE").await?;
    if checkpoint {
        // Loaded data in object storage, as a loaded database would be.
        client.batch_execute("CHECKPOINT").await?;
    }
    let load_secs = started.elapsed().as_secs_f64();
    println!("{system}: loaded in {load_secs:.1} s");
    let mut queries = Vec::new();
    for n in 1..=22 {
        queries.push(time_query(system, &client, data, n, timeout).await);
    }
    Ok(Timings { load_secs, queries })
}

async fn time_query(
    system: &str,
    c: &Client,
    data: &Path,
    n: u32,
    timeout: Duration,
) -> Option<f64> {
    let (sql, want) = tpch::query_and_answer(data, n);
    let started = Instant::now();
    let got = tokio::time::timeout(timeout, tpch::rows_of(c, &sql)).await;
    let secs = started.elapsed().as_secs_f64();
    match got {
        Err(_) => {
            eprintln!("{system}: Q{n} did not finish in {timeout:?}; cancelling it");
            if let Err(e) = c.cancel_token().cancel_query(NoTls).await {
                eprintln!("{system}: cancelling Q{n}: {e}");
            }
            None
        }
        Ok(Err(e)) => {
            eprintln!("{system}: Q{n} failed: {e}");
            None
        }
        Ok(Ok(rows)) if !tpch::same_rows(&rows, &want) => {
            eprintln!("{system}: Q{n} answered differently from DuckDB");
            None
        }
        Ok(Ok(_)) => {
            println!("{system}: Q{n} {secs:.3} s");
            Some(secs)
        }
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or("—".into(), |s| format!("{s:.3}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

fn render(
    scale: f64,
    thunder: &Timings,
    duckdb: &[Option<f64>],
    postgres: Option<&Timings>,
) -> String {
    let mut out = format!(
        "TPC-H scale {scale}: seconds per query (one run each, after loading)\n\n\
         | query | ThunderDB | DuckDB | PostgreSQL 15 | ThunderDB/DuckDB | PostgreSQL/ThunderDB |\n\
         |---|---|---|---|---|---|\n"
    );
    let pg = |i: usize| postgres.and_then(|p| p.queries[i]);
    for (i, (&t, &d)) in thunder.queries.iter().zip(duckdb).enumerate() {
        out.push_str(&format!(
            "| Q{} | {} | {} | {} | {} | {} |\n",
            i + 1,
            cell(t),
            cell(d),
            cell(pg(i)),
            ratio(t, d),
            ratio(pg(i), t)
        ));
    }
    let total = |v: &[Option<f64>]| -> Option<f64> { v.iter().copied().sum() };
    let t = total(&thunder.queries);
    let d = total(duckdb);
    let p = postgres.and_then(|p| total(&p.queries));
    out.push_str(&format!(
        "| total | {} | {} | {} | {} | {} |\n\nload (COPY): ThunderDB {:.1} s, PostgreSQL {}\n",
        cell(t),
        cell(d),
        cell(p),
        ratio(t, d),
        ratio(p, t),
        thunder.load_secs,
        postgres.map_or("—".into(), |p| format!("{:.1} s", p.load_secs)),
    ));
    out
}
