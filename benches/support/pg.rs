//! What the benchmarks that speak PostgreSQL's protocol share: where a system is and how to
//! reach it, and pgbench. Included by `pgbench.rs`, `tpch.rs` and `htap.rs`, each of which
//! uses part of it.

use std::process::Command;

use anyhow::{Context, Result, bail};
use tokio_postgres::{Client, NoTls};

use crate::harness::{self, TestServer};
use crate::stock_postgres::StockPostgres;

/// Where to reach one system.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
}

impl Target {
    pub fn thunderdb(server: &TestServer) -> Target {
        Target {
            host: server.host().to_string(),
            port: server.port(),
            user: harness::USER.into(),
            password: harness::PASSWORD.into(),
            database: "thunderdb".into(),
        }
    }

    pub fn postgres(pg: &StockPostgres) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: pg.port(),
            user: pg.user().into(),
            password: pg.password().into(),
            database: pg.database().into(),
        }
    }

    /// A tokio-postgres client of `system`, its connection driven in the background.
    pub async fn connect(&self, system: &str) -> Result<Client> {
        let (client, connection) = tokio_postgres::Config::new()
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname(&self.database)
            .connect(NoTls)
            .await
            .with_context(|| format!("connect to {system}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

/// PostgreSQL 15's pgbench, or one on the `PATH`.
pub fn find_pgbench() -> Result<&'static str> {
    ["/usr/lib/postgresql/15/bin/pgbench", "pgbench"]
        .into_iter()
        .find(|p| harness::installed(p))
        .context("pgbench not found: run scripts/install-bench-deps")
}

/// Runs pgbench against `target` with `args` (and `PGOPTIONS`); its report.
pub fn pgbench(
    pgbench: &str,
    target: &Target,
    args: &[&str],
    options: Option<&str>,
) -> Result<String> {
    let mut command = Command::new(pgbench);
    if let Some(options) = options {
        command.env("PGOPTIONS", options);
    }
    let output = command
        .args(["-h", &target.host, "-p", &target.port.to_string()])
        .args(["-U", &target.user])
        .args(args)
        .arg(&target.database)
        .env("PGPASSWORD", &target.password)
        .output()
        .context("run pgbench")?;
    if !output.status.success() {
        bail!(
            "pgbench {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The first word after `prefix` on a line of pgbench's report.
pub fn field<'a>(report: &'a str, prefix: &str) -> Option<&'a str> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
}
