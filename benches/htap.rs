//! HTAP: transactions and analytics on one database at once. On ThunderDB and on a stock
//! PostgreSQL 15, in one run on the same machine and the same data: `pgbench -i -s
//! BENCH_PGBENCH_SCALE` (10) and the TPC-H tables at `BENCH_SCALE` (0.1, `tpchgen-cli`), then
//!
//! 1. pgbench `tpcb-like` alone (4 clients, `-M prepared`, read committed, `BENCH_SECS` = 30),
//! 2. TPC-H Q1 and Q6 in turn, in a loop, alone (each answer checked against DuckDB's),
//! 3. both at once,
//!
//! and prints the throughput of each alone and together, and together/alone (also to
//! `target/bench-htap.txt`); asserts nothing. Run: `cargo bench --bench htap` (tools as for
//! `cargo bench --bench tpch` and `--bench pgbench`).

#[path = "support/mod.rs"]
mod common;
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "support/pg.rs"]
mod pg;
#[path = "../tests/e2e/stock_postgres.rs"]
mod stock_postgres;
#[path = "../tests/e2e/tpch.rs"]
#[allow(dead_code, unused_imports)]
mod tpch;
#[path = "support/tpch_data.rs"]
mod tpch_data;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use common::{env_number, start_thunderdb, thunderdb_bin};
use pg::{Target, field, find_pgbench};

#[derive(Clone)]
struct Settings {
    secs: u64,
    pgbench_scale: u32,
    pgbench: &'static str,
}

/// Throughput of one system: pgbench transactions and analytic queries per second.
struct Figures {
    system: &'static str,
    tps_alone: f64,
    qps_alone: f64,
    tps_together: f64,
    qps_together: f64,
}

fn main() -> Result<()> {
    let scale: f64 = env_number("BENCH_SCALE", 0.1)?;
    let settings = Settings {
        secs: env_number("BENCH_SECS", 30u64)?,
        pgbench_scale: env_number("BENCH_PGBENCH_SCALE", 10u32)?,
        pgbench: find_pgbench()?,
    };
    let data = tpch_data::tpch_data(scale)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("build the tokio runtime")?;
    let mut figures = Vec::new();
    {
        let mut server = start_thunderdb(thunderdb_bin()?);
        let target = Target::thunderdb(&server);
        let measured = runtime.block_on(measure("thunderdb", &target, &data, &settings, true));
        if let Err(e) = server.terminate(Duration::from_secs(60)) {
            eprintln!("stopping thunderdb: {e}");
        }
        figures.push(measured?);
    }
    if let Some(mut pg) = common::postgres_peer("htap")? {
        let target = Target::postgres(&pg);
        let measured = runtime.block_on(measure("postgresql", &target, &data, &settings, false));
        pg.stop();
        figures.push(measured?);
    }
    common::write_report("bench-htap.txt", &render(scale, &settings, &figures));
    Ok(())
}

async fn measure(
    system: &'static str,
    target: &Target,
    data: &Path,
    settings: &Settings,
    checkpoint: bool,
) -> Result<Figures> {
    let client = target.connect(system).await?;
    tpch::load(&client, data).await;
    client.batch_execute("ANALYZE").await?;
    pgbench(
        settings,
        target,
        &["-i", "-q", "-s", &settings.pgbench_scale.to_string()],
    )?;
    if checkpoint {
        // Loaded and compacted, as a database in use would be.
        client.batch_execute("CHECKPOINT").await?;
    }
    println!("{system}: loaded");
    let tps_alone = tpcb(settings, target)?;
    println!("{system}: tpcb-like alone {tps_alone:.1} tps");
    let qps_alone = analytics(&client, data, settings.secs).await?;
    println!("{system}: Q1/Q6 alone {qps_alone:.3} queries/s");
    let (tps_together, qps_together) = {
        let (s, t) = (settings.clone(), target.clone());
        let oltp = tokio::task::spawn_blocking(move || tpcb(&s, &t));
        let qps = analytics(&client, data, settings.secs).await?;
        (oltp.await.context("pgbench thread")??, qps)
    };
    println!("{system}: together {tps_together:.1} tps, {qps_together:.3} queries/s");
    Ok(Figures {
        system,
        tps_alone,
        qps_alone,
        tps_together,
        qps_together,
    })
}

/// pgbench `tpcb-like` for `settings.secs`: its tps.
fn tpcb(settings: &Settings, target: &Target) -> Result<f64> {
    let report = pgbench(
        settings,
        target,
        &[
            "-n",
            "-b",
            "tpcb-like",
            "-M",
            "prepared",
            "-c",
            "4",
            "-j",
            "4",
            "-T",
            &settings.secs.to_string(),
            "--max-tries",
            "10",
        ],
    )?;
    field(&report, "tps = ")
        .and_then(|v| v.parse().ok())
        .context("no tps in pgbench's report")
}

/// pgbench under read committed, as PostgreSQL's default is.
fn pgbench(settings: &Settings, target: &Target, args: &[&str]) -> Result<String> {
    let options = "-c default_transaction_isolation=read\\ committed";
    pg::pgbench(settings.pgbench, target, args, Some(options))
}

/// TPC-H Q1 and Q6 in turn for `secs`: completed queries per second (each answer checked).
async fn analytics(client: &tokio_postgres::Client, data: &Path, secs: u64) -> Result<f64> {
    let queries = [
        tpch::query_and_answer(data, 1),
        tpch::query_and_answer(data, 6),
    ];
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let (sql, want) = &queries[(done % 2) as usize];
        let got = tpch::rows_of(client, sql)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !tpch::same_rows(&got, want) {
            bail!("an analytic query answered differently from DuckDB");
        }
        done += 1;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

fn render(scale: f64, settings: &Settings, figures: &[Figures]) -> String {
    let mut out = format!(
        "HTAP: pgbench tpcb-like (scale {}, 4 clients, -M prepared, read committed) and TPC-H \
         Q1/Q6 in a loop (scale {scale}), {} s each phase\n\n\
         | system | tpcb tps alone | tpcb tps together | together/alone | Q1/Q6 per s alone | \
         Q1/Q6 per s together | together/alone |\n|---|---|---|---|---|---|---|\n",
        settings.pgbench_scale, settings.secs
    );
    for f in figures {
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.2}× | {:.3} | {:.3} | {:.2}× |\n",
            f.system,
            f.tps_alone,
            f.tps_together,
            f.tps_together / f.tps_alone,
            f.qps_alone,
            f.qps_together,
            f.qps_together / f.qps_alone
        ));
    }
    out
}
