//! `thunderdb pageserver`: follows a WAL group, materializes its rows and serves reads and
//! segments over gRPC. Its local disk is a cache: object storage holds the layers.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use thunderdb_common::config::{self, PageNodeConfig};
use thunderdb_pageserver::{LocalPageServer, PageServerOptions};
use thunderdb_walservice::{RemoteWalOptions, RemoteWalService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct PageNodeArgs {
    /// TOML config file; THUNDERDB_* environment variables override it, flags override both.
    #[arg(long)]
    config: Option<PathBuf>,
    /// host:port the gRPC server listens on.
    #[arg(long)]
    listen: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The WAL group's nodes: host:port,…
    #[arg(long)]
    wal_nodes: Option<String>,
}

pub fn node_config(args: &PageNodeArgs) -> Result<PageNodeConfig> {
    let mut cfg: PageNodeConfig = config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(l) = &args.listen {
        cfg.listen = l.clone();
    }
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(w) = &args.wal_nodes {
        cfg.wal_nodes = w.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

pub async fn run(cfg: PageNodeConfig) -> Result<()> {
    let wal_nodes = cfg.validate()?;
    let lock = crate::lock_data_dir(&cfg.data_dir)?;
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let wal = RemoteWalService::connect(RemoteWalOptions {
        nodes: wal_nodes,
        request_timeout: Duration::from_secs(10),
    })?;
    let cancel = CancellationToken::new();
    // The WAL group may still be electing its first leader: keep asking for a while.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let pages = loop {
        let started = LocalPageServer::start(
            wal.clone(),
            PageServerOptions {
                wait_timeout: Duration::from_secs(cfg.wait_timeout_secs),
                config: cfg.pageserver.clone(),
                storage: cfg.storage.clone(),
                dir: cfg.data_dir.clone(),
            },
            cancel.clone(),
        )
        .await;
        match started {
            Ok(p) => break p,
            Err(thunderdb_pageserver::PageError::Wal(e))
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::info!(error = %e, "waiting for the WAL group");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("starting the pageserver"),
        }
    };
    let server = tokio::spawn(thunderdb_pageserver::grpc::serve(
        pages.clone(),
        listener,
        cancel.clone(),
    ));
    println!("pageserver listening on {addr}");
    crate::until_stopped(vec![("gRPC server", server)]).await?;
    cancel.cancel();
    drop(lock);
    Ok(())
}
