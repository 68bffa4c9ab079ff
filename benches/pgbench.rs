//! pgbench against ThunderDB and a stock PostgreSQL 15 started by this harness, in one run on
//! the same machine: `pgbench -i -s SCALE` on each, then the built-in `select-only` and
//! `tpcb-like` scripts with `-M prepared`, CLIENTS clients for SECS seconds each, once under
//! READ COMMITTED (PostgreSQL's default) and once under REPEATABLE READ (ThunderDB's), set by
//! `PGOPTIONS=-c default_transaction_isolation=…` on both systems.
//!
//! Prints TPS per system and script, failed transactions (ThunderDB's optimistic transactions
//! answer a lost write-write race with 40001, which pgbench retries up to `--max-tries`), and
//! the ThunderDB/PostgreSQL ratio; asserts nothing. Run: `cargo bench --bench pgbench`
//! (PostgreSQL and pgbench from `scripts/install-bench-deps`).
//! Knobs: `BENCH_SCALE` (10), `BENCH_SECS` (30), `BENCH_CLIENTS` (4), `BENCH_MAX_TRIES` (100),
//! `THUNDERDB_BIN` (default: the release binary cargo built).

#[path = "support/mod.rs"]
mod common;
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "support/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../tests/e2e/stock_postgres.rs"]
mod stock_postgres;

use std::time::Duration;

use anyhow::{Context, Result};

use common::{env_number, start_thunderdb, thunderdb_bin};
use pg::{Target, field, find_pgbench};

const SCRIPTS: [&str; 2] = ["select-only", "tpcb-like"];
/// Isolation levels, as `default_transaction_isolation` spells them in `options`.
const ISOLATIONS: [(&str, &str); 2] = [
    ("read committed", r"read\ committed"),
    ("repeatable read", r"repeatable\ read"),
];

struct Settings {
    scale: u32,
    secs: u32,
    clients: u32,
    max_tries: u32,
}

struct Figures {
    system: &'static str,
    script: &'static str,
    isolation: &'static str,
    tps: f64,
    failed: u64,
    load_secs: f64,
}

fn main() -> Result<()> {
    let settings = Settings {
        scale: env_number("BENCH_SCALE", 10u32)?.max(1),
        secs: env_number("BENCH_SECS", 30u32)?.max(1),
        clients: env_number("BENCH_CLIENTS", 4u32)?.max(1),
        max_tries: env_number("BENCH_MAX_TRIES", 100u32)?.max(1),
    };
    let pgbench = find_pgbench()?;
    let bin = thunderdb_bin()?;
    println!(
        "pgbench benchmark: scale {}, {} clients, {} s per script, -M prepared",
        settings.scale, settings.clients, settings.secs
    );
    println!("thunderdb binary: {}", bin.display());
    let mut figures = Vec::new();
    {
        let mut server = start_thunderdb(bin);
        let target = Target::thunderdb(&server);
        let measured = measure("thunderdb", pgbench, &target, &settings);
        if let Err(e) = server.terminate(Duration::from_secs(30)) {
            eprintln!("stopping thunderdb: {e}");
        }
        figures.extend(measured?);
    }
    if let Some(mut pg) = common::postgres_peer("bench")? {
        let target = Target::postgres(&pg);
        let measured = measure("postgresql", pgbench, &target, &settings);
        pg.stop();
        figures.extend(measured?);
    }
    common::write_report("bench-pgbench.txt", &render(&figures));
    Ok(())
}

fn measure(
    system: &'static str,
    pgbench: &str,
    target: &Target,
    settings: &Settings,
) -> Result<Vec<Figures>> {
    let started = std::time::Instant::now();
    pg::pgbench(
        pgbench,
        target,
        &["-i", "-q", "-s", &settings.scale.to_string()],
        None,
    )?;
    let load_secs = started.elapsed().as_secs_f64();
    println!(
        "{system}: pgbench -i -s {} took {load_secs:.1} s",
        settings.scale
    );
    let mut out = Vec::new();
    for (script, (isolation, option)) in SCRIPTS
        .into_iter()
        .flat_map(|s| ISOLATIONS.into_iter().map(move |i| (s, i)))
    {
        let options = format!("-c default_transaction_isolation={option}");
        let report = pg::pgbench(
            pgbench,
            target,
            &[
                "-b",
                script,
                "-M",
                "prepared",
                "-c",
                &settings.clients.to_string(),
                "-j",
                &settings.clients.to_string(),
                "-T",
                &settings.secs.to_string(),
                "--max-tries",
                &settings.max_tries.to_string(),
            ],
            Some(&options),
        )?;
        let tps = field(&report, "tps = ")
            .and_then(|v| v.parse().ok())
            .context("no tps in pgbench's report")?;
        let failed = field(&report, "number of failed transactions: ")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        println!("{system} {script} ({isolation}): {tps:.1} tps, {failed} failed");
        out.push(Figures {
            system,
            script,
            isolation,
            tps,
            failed,
            load_secs,
        });
    }
    Ok(out)
}

fn render(figures: &[Figures]) -> String {
    let mut out = String::from(
        "system      script        isolation        tps        failed  load (pgbench -i)\n",
    );
    for f in figures {
        out.push_str(&format!(
            "{:<11} {:<13} {:<15} {:>10.1} {:>7}  {:.1} s\n",
            f.system, f.script, f.isolation, f.tps, f.failed, f.load_secs
        ));
    }
    for script in SCRIPTS {
        for (isolation, _) in ISOLATIONS {
            let find = |system| {
                figures
                    .iter()
                    .find(|f| f.system == system && f.script == script && f.isolation == isolation)
            };
            if let (Some(t), Some(p)) = (find("thunderdb"), find("postgresql")) {
                out.push_str(&format!(
                    "ratio thunderdb/postgresql {script:<13} {isolation:<15} {:.3}x\n",
                    t.tps / p.tps.max(1e-9)
                ));
            }
        }
    }
    out
}
