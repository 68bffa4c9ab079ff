//! What every benchmark harness needs: the thunderdb binary to measure and numeric knobs.

use anyhow::{Result, bail};
use std::path::PathBuf;

/// A numeric setting from the environment, `default` when unset.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={raw:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// `THUNDERDB_BIN`, else the binary cargo built for the bench (release), else
/// `target/release/thunderdb`.
pub fn thunderdb_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("THUNDERDB_BIN") {
        return Ok(PathBuf::from(path));
    }
    for candidate in [
        PathBuf::from(env!("CARGO_BIN_EXE_thunderdb")),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/thunderdb"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("no thunderdb binary: build it with `cargo build --release` or set THUNDERDB_BIN")
}

/// ThunderDB from `bin` for a benchmark: the release binary, no watchdog to speak of.
pub fn start_thunderdb(bin: PathBuf) -> crate::harness::TestServer {
    crate::harness::TestServer::start_with(crate::harness::ServerOptions {
        backend: crate::harness::Backend::ThunderDb,
        bin,
        deadline: std::time::Duration::from_secs(24 * 3600),
        env: Vec::new(),
    })
}

#[allow(dead_code)] // the MySQL and Redis benchmarks have other peers
/// The PostgreSQL 15 peer of a benchmark, on database `database` (fsync and
/// synchronous_commit on), or `None` — said on stdout — when it is not installed.
pub fn postgres_peer(database: &str) -> Result<Option<crate::stock_postgres::StockPostgres>> {
    use crate::stock_postgres::{StockPostgres, StockPostgresOptions};
    if !StockPostgres::is_installed() {
        println!(
            "PostgreSQL 15 not found in {}: run scripts/install-bench-deps; ThunderDB figures only",
            StockPostgres::bin_dir().display()
        );
        return Ok(None);
    }
    let pg = StockPostgres::init(StockPostgresOptions {
        database: database.into(),
        own_process_group: false,
        ..StockPostgresOptions::default()
    })
    .map_err(|e| anyhow::anyhow!("start PostgreSQL: {e:#}"))?;
    Ok(Some(pg))
}

/// Prints a benchmark's report and writes it to `target/<file>`.
pub fn write_report(file: &str, report: &str) {
    println!("\n{report}");
    let out = crate::harness::target_dir().join(file);
    match std::fs::write(&out, report.as_bytes()) {
        Ok(()) => println!("(also written to {})", out.display()),
        Err(e) => eprintln!("could not write {}: {e}", out.display()),
    }
}
