//! The `thunderdb` binary: one subcommand per role; `dev` runs every role in one process.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use thunderdb_common::config::{self, DevConfig};
use thunderdb_compute::{Engine, EngineOptions};
use thunderdb_pageserver::{LocalPageServer, PageServerOptions};
use thunderdb_walservice::{LocalWalService, WalServiceOptions};
use tokio_util::sync::CancellationToken;

mod compute;
mod frontends;
mod pageserver;
mod proxy;
mod walservice;

#[derive(Parser)]
#[command(
    name = "thunderdb",
    version,
    about = "ThunderDB: a storage/compute-disaggregated HTAP database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process with an embedded single-node WAL (the default for a laptop).
    Dev(DevArgs),
    /// Run one node of a Raft WAL group, served over gRPC.
    Walservice(walservice::WalNodeArgs),
    /// Admin commands of a WAL group: status, membership changes.
    Walctl(walservice::WalctlArgs),
    /// Run a pageserver that follows a WAL group and serves reads over gRPC.
    Pageserver(pageserver::PageNodeArgs),
    /// Run a stateless compute node: the SQL, MySQL and RESP frontends over a WAL group and a
    /// pageserver.
    Compute(compute::ComputeNodeArgs),
    /// Run the session router: clients connect here and each session goes to the healthy
    /// compute node with the fewest sessions.
    Proxy(proxy::ProxyArgs),
}

#[derive(Args)]
struct DevArgs {
    /// TOML config file; THUNDERDB_* environment variables override it, flags override both.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    frontends: frontends::FrontendArgs,
    /// HTTP port (not built yet).
    #[arg(long)]
    http_port: Option<u16>,
    /// gRPC port (not built yet).
    #[arg(long)]
    grpc_port: Option<u16>,
}

fn dev_config(args: &DevArgs) -> Result<DevConfig> {
    let mut cfg: DevConfig = config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    args.frontends.apply(
        &mut cfg.listen,
        [&mut cfg.pg_port, &mut cfg.mysql_port, &mut cfg.resp_port],
    );
    for (slot, flag) in [
        (&mut cfg.http_port, args.http_port),
        (&mut cfg.grpc_port, args.grpc_port),
    ] {
        if let Some(p) = flag {
            *slot = p;
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

async fn run_dev(cfg: DevConfig) -> Result<()> {
    let lock = lock_data_dir(&cfg.data_dir)?;
    let cancel = CancellationToken::new();
    let wal = LocalWalService::start(WalServiceOptions {
        snapshot_after_entries: cfg.wal.snapshot_after_entries,
        ..WalServiceOptions::single(
            cfg.data_dir.join("wal"),
            cfg.wal.fsync,
            cfg.wal.group_commit_max,
        )
    })
    .await
    .context("starting the WAL service")?;
    wal.wait_ready(Duration::from_secs(60))
        .await
        .context("waiting for the WAL service to elect a leader")?;
    let mut storage = cfg.storage.clone();
    if storage.kind == "local" && storage.path.is_empty() {
        storage.path = cfg.data_dir.join("objects").display().to_string();
    }
    let pages = LocalPageServer::start(
        wal.clone(),
        PageServerOptions {
            wait_timeout: Duration::from_secs(30),
            config: cfg.pageserver.clone(),
            storage,
            dir: cfg.data_dir.join("pageserver"),
        },
        cancel.clone(),
    )
    .await
    .context("starting the pageserver")?;
    let engine = Engine::new(
        wal.clone(),
        pages,
        EngineOptions {
            database: cfg.database.clone(),
            superuser: cfg.user.clone(),
            columnar: cfg.columnar.clone(),
            dir: Some(cfg.data_dir.join("compute")),
        },
    );
    // Temporary tables of sessions that ended with an earlier run of the process.
    match engine.new_session(&cfg.user, &cfg.database) {
        Ok(mut s) => match s.drop_leftover_temp_schemas().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(schemas = n, "dropped temporary schemas of an earlier run"),
            Err(e) => tracing::warn!(error = %e.message, "dropping leftover temporary schemas"),
        },
        Err(e) => tracing::warn!(error = %e.message, "dropping leftover temporary schemas"),
    }

    frontends::serve(&cfg.frontends(), engine, cancel.clone()).await?;
    cancel.cancel();
    // Commits already acknowledged are durable; give in-flight ones a moment, then stop Raft.
    let _ = tokio::time::timeout(Duration::from_secs(5), wal.shutdown()).await;
    drop(lock);
    Ok(())
}

/// Creates `dir` and takes its lock file, so two processes never share a data directory.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let lock =
        std::fs::File::create(dir.join("LOCK")).context("creating the data directory lock")?;
    if lock.try_lock().is_err() {
        bail!(
            "data directory {} is in use by another thunderdb process",
            dir.display()
        );
    }
    Ok(lock)
}

/// Waits for SIGTERM, an interrupt, or the end of any of `tasks` (logged by name).
async fn until_stopped<E: std::fmt::Display>(
    tasks: Vec<(&'static str, tokio::task::JoinHandle<Result<(), E>>)>,
) -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ended = futures::future::select_all(
        tasks
            .into_iter()
            .map(|(name, task)| Box::pin(async move { (name, task.await) })),
    );
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
        ((name, r), _, _) = ended => match r {
            Ok(Ok(())) => tracing::info!("{name} stopped"),
            Ok(Err(e)) => tracing::error!(error = %e, "{name} stopped"),
            Err(e) => tracing::error!(error = %e, "{name} panicked"),
        },
    }
    Ok(())
}

/// Runs a role on a multi-threaded runtime (`worker_threads` 0: one per core).
fn block_on(worker_threads: usize, role: impl Future<Output = Result<()>>) -> Result<()> {
    // DataFusion plans recursively; deep queries need more than the default 2 MiB stack.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.thread_stack_size(16 << 20).enable_all();
    if worker_threads > 0 {
        builder.worker_threads(worker_threads);
    }
    let runtime = builder.build()?;
    let result = runtime.block_on(role);
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("THUNDERDB_LOG")
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => {
            let cfg = dev_config(&args)?;
            block_on(cfg.worker_threads, run_dev(cfg))?;
        }
        Command::Walservice(args) => {
            let cfg = walservice::node_config(&args)?;
            block_on(0, walservice::run_node(cfg))?;
        }
        Command::Pageserver(args) => {
            let cfg = pageserver::node_config(&args)?;
            block_on(0, pageserver::run(cfg))?;
        }
        Command::Compute(args) => {
            let cfg = compute::node_config(&args)?;
            block_on(cfg.worker_threads, compute::run(cfg))?;
        }
        Command::Proxy(args) => {
            let cfg = proxy::proxy_config(&args)?;
            block_on(0, proxy::run(cfg))?;
        }
        Command::Walctl(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(walservice::walctl(args))?;
        }
    }
    Ok(())
}
