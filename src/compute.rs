//! `thunderdb compute`: a stateless SQL node. It serves the client frontends and reaches the
//! WAL group, the pageserver and object storage over the network; kill it at any time and
//! start another.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use thunderdb_common::config::{self, ComputeNodeConfig};
use thunderdb_compute::{Engine, EngineOptions};
use thunderdb_pageserver::{RemotePageService, RemoteStorage};
use thunderdb_walservice::{RemoteWalOptions, RemoteWalService};
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct ComputeNodeArgs {
    /// TOML config file; THUNDERDB_* environment variables override it, flags override both.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Local caches (segment files); nothing durable.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    frontends: crate::frontends::FrontendArgs,
    /// The WAL group's nodes: host:port,…
    #[arg(long)]
    wal_nodes: Option<String>,
    /// The pageserver: host:port.
    #[arg(long)]
    pageserver: Option<String>,
}

pub fn node_config(args: &ComputeNodeArgs) -> Result<ComputeNodeConfig> {
    let mut cfg: ComputeNodeConfig = config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    let f = &mut cfg.frontends;
    args.frontends.apply(
        &mut f.listen,
        [&mut f.pg_port, &mut f.mysql_port, &mut f.resp_port],
    );
    if let Some(w) = &args.wal_nodes {
        cfg.wal_nodes = w.clone();
    }
    if let Some(p) = &args.pageserver {
        cfg.pageserver = p.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

pub async fn run(cfg: ComputeNodeConfig) -> Result<()> {
    let wal_nodes = cfg.validate()?;
    let lock = crate::lock_data_dir(&cfg.data_dir)?;
    let cancel = CancellationToken::new();
    let wal = RemoteWalService::connect(RemoteWalOptions {
        nodes: wal_nodes,
        request_timeout: Duration::from_millis(cfg.wal_timeout_ms),
    })?;
    let storage = RemoteStorage::open(&cfg.storage, &cfg.data_dir.join("objects"))
        .context("opening object storage")?;
    let pages = RemotePageService::connect(
        &cfg.pageserver,
        storage,
        Duration::from_secs(60),
        cancel.clone(),
    )
    .await
    .context("connecting to the pageserver")?;
    let engine = Engine::new(
        wal,
        pages,
        EngineOptions {
            database: cfg.frontends.database.clone(),
            superuser: cfg.frontends.user.clone(),
            columnar: cfg.columnar.clone(),
            dir: Some(cfg.data_dir.clone()),
        },
    );
    crate::frontends::serve(&cfg.frontends, engine, cancel.clone()).await?;
    cancel.cancel();
    drop(lock);
    Ok(())
}
