//! The `thunderdb` binary: one subcommand per role; `dev` runs every role in one process.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thunderdb_common::config::{self, DevConfig};
use thunderdb_compute::{Engine, EngineOptions};
use thunderdb_pageserver::{LocalPageServer, PageServerOptions};
use thunderdb_proxy::{
    MySqlFrontendOptions, PgFrontendOptions, RespFrontendOptions, serve_mysql, serve_postgres,
    serve_resp,
};
use thunderdb_walservice::{LocalWalService, WalServiceOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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
}

#[derive(Args)]
struct DevArgs {
    /// TOML config file; THUNDERDB_* environment variables override it, flags override both.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address every frontend listens on.
    #[arg(long)]
    listen: Option<String>,
    /// PostgreSQL port (0 picks a free one).
    #[arg(long)]
    pg_port: Option<u16>,
    /// MySQL port.
    #[arg(long)]
    mysql_port: Option<u16>,
    /// RESP (Redis protocol) port.
    #[arg(long)]
    resp_port: Option<u16>,
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
    if let Some(l) = &args.listen {
        cfg.listen = l.clone();
    }
    let ports = [
        (&mut cfg.pg_port, args.pg_port),
        (&mut cfg.mysql_port, args.mysql_port),
        (&mut cfg.resp_port, args.resp_port),
        (&mut cfg.http_port, args.http_port),
        (&mut cfg.grpc_port, args.grpc_port),
    ];
    for (slot, flag) in ports {
        if let Some(p) = flag {
            *slot = p;
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

async fn run_dev(cfg: DevConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    let lock = std::fs::File::create(cfg.data_dir.join("LOCK"))
        .context("creating the data directory lock")?;
    if lock.try_lock().is_err() {
        bail!(
            "data directory {} is in use by another thunderdb process",
            cfg.data_dir.display()
        );
    }
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

    let listener = TcpListener::bind((cfg.listen.as_str(), cfg.pg_port))
        .await
        .with_context(|| format!("binding {}:{}", cfg.listen, cfg.pg_port))?;
    let addr = listener.local_addr()?;
    let tls = if cfg.tls_cert.is_empty() {
        None
    } else {
        Some(
            thunderdb_proxy::tls_server_config(
                std::path::Path::new(&cfg.tls_cert),
                std::path::Path::new(&cfg.tls_key),
            )
            .map_err(|e| anyhow::anyhow!("tls_cert / tls_key: {e}"))?,
        )
    };
    let opts = PgFrontendOptions {
        users: vec![(cfg.user.clone(), cfg.password.clone())],
        auth_method: thunderdb_proxy::PgAuthMethod::parse(&cfg.pg_auth_method).unwrap_or_default(),
        server_version: thunderdb_compute::SERVER_VERSION.to_string(),
        tls: tls.clone(),
    };
    let pg = tokio::spawn(serve_postgres(
        listener,
        Arc::clone(&engine),
        opts,
        cancel.clone(),
    ));

    let resp_listener = TcpListener::bind((cfg.listen.as_str(), cfg.resp_port))
        .await
        .with_context(|| format!("binding {}:{}", cfg.listen, cfg.resp_port))?;
    let resp_addr = resp_listener.local_addr()?;
    let resp = tokio::spawn(serve_resp(
        resp_listener,
        thunderdb_compute::redis::RedisEngine::new(Arc::clone(&engine)),
        RespFrontendOptions {
            users: vec![(cfg.user.clone(), cfg.password.clone())],
            require_auth: cfg.resp_require_auth,
            port: resp_addr.port(),
        },
        cancel.clone(),
    ));
    println!("resp listening on {resp_addr}");

    let mysql_listener = TcpListener::bind((cfg.listen.as_str(), cfg.mysql_port))
        .await
        .with_context(|| format!("binding {}:{}", cfg.listen, cfg.mysql_port))?;
    let mysql_addr = mysql_listener.local_addr()?;
    let mysql = tokio::spawn(serve_mysql(
        mysql_listener,
        Arc::clone(&engine),
        MySqlFrontendOptions {
            users: vec![(cfg.user.clone(), cfg.password.clone())],
            server_version: thunderdb_compute::MYSQL_SERVER_VERSION.to_string(),
            tls,
        },
        cancel.clone(),
    ));
    println!("mysql listening on {mysql_addr}");
    // Printed last: scripts and tests wait for this line as the sign that every frontend is up.
    println!("postgres listening on {addr}");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
        r = pg => match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "postgres frontend stopped"),
            Err(e) => tracing::error!(error = %e, "postgres frontend panicked"),
        },
        r = mysql => match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "mysql frontend stopped"),
            Err(e) => tracing::error!(error = %e, "mysql frontend panicked"),
        },
        r = resp => match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "resp frontend stopped"),
            Err(e) => tracing::error!(error = %e, "resp frontend panicked"),
        },
    }
    cancel.cancel();
    // Commits already acknowledged are durable; give in-flight ones a moment, then stop Raft.
    let _ = tokio::time::timeout(Duration::from_secs(5), wal.shutdown()).await;
    drop(lock);
    Ok(())
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
            // DataFusion plans recursively; deep queries need more than the default 2 MiB stack.
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.thread_stack_size(16 << 20).enable_all();
            if cfg.worker_threads > 0 {
                builder.worker_threads(cfg.worker_threads);
            }
            let runtime = builder.build()?;
            runtime.block_on(run_dev(cfg))?;
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
    Ok(())
}
