//! `thunderdb proxy`: the clients' entry point to a cluster. It routes each new session to the
//! healthy compute node with the fewest sessions and, on SIGTERM, stops accepting and lets the
//! open sessions finish.

use anyhow::{Context, Result, anyhow};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use thunderdb_common::config::{self, ProxyConfig};
use thunderdb_proxy::router::{ComputeAddresses, Protocol, Router, RouterOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct ProxyArgs {
    /// TOML config file; THUNDERDB_* environment variables override it, flags override both.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    frontends: crate::frontends::FrontendArgs,
    /// Compute nodes: host:pg_port[:mysql_port[:resp_port]],…
    #[arg(long)]
    computes: Option<String>,
}

pub fn proxy_config(args: &ProxyArgs) -> Result<ProxyConfig> {
    let mut cfg: ProxyConfig = config::load(args.config.as_deref(), std::env::vars())?;
    args.frontends.apply(
        &mut cfg.listen,
        [&mut cfg.pg_port, &mut cfg.mysql_port, &mut cfg.resp_port],
    );
    if let Some(c) = &args.computes {
        cfg.computes = c.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

pub async fn run(cfg: ProxyConfig) -> Result<()> {
    let computes = cfg
        .computes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(ComputeAddresses::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("invalid value for computes: {e}"))?;
    let router = Router::new(RouterOptions {
        computes,
        health_interval: Duration::from_millis(cfg.health_interval_ms),
        connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
    });
    let stop_accepting = CancellationToken::new();
    let checks = CancellationToken::new();
    tokio::spawn(router.clone().check_health(checks.clone()));
    let mut tasks = Vec::new();
    let mut lines = Vec::new();
    // PostgreSQL last: its line tells scripts that every port is up.
    for (protocol, port) in [
        (Protocol::Resp, cfg.resp_port),
        (Protocol::MySql, cfg.mysql_port),
        (Protocol::Postgres, cfg.pg_port),
    ] {
        let listener = TcpListener::bind((cfg.listen.as_str(), port))
            .await
            .with_context(|| format!("binding {}:{port}", cfg.listen))?;
        let name = match protocol {
            Protocol::Postgres => "postgres",
            Protocol::MySql => "mysql",
            Protocol::Resp => "resp",
        };
        lines.push(format!(
            "proxy {name} listening on {}",
            listener.local_addr()?
        ));
        tasks.push((
            name,
            tokio::spawn(
                router
                    .clone()
                    .serve(protocol, listener, stop_accepting.clone()),
            ),
        ));
    }
    for line in lines {
        println!("{line}");
    }
    crate::until_stopped(tasks).await?;
    stop_accepting.cancel();
    let open = router.open_sessions();
    if open > 0 {
        tracing::info!(
            sessions = open,
            "draining: waiting for open sessions to end"
        );
    }
    let left = router
        .drain(Duration::from_secs(cfg.drain_timeout_secs))
        .await;
    if left > 0 {
        tracing::warn!(
            sessions = left,
            "drain timed out; closing the remaining sessions"
        );
    }
    checks.cancel();
    Ok(())
}
