//! `thunderdb walservice`: one node of a Raft WAL group, served over gRPC; and `thunderdb
//! walctl`, the admin commands of a group (status, membership).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use thunderdb_common::config::{self, WalNodeConfig};
use thunderdb_walservice::{
    LocalWalService, RemoteWalOptions, RemoteWalService, WalServiceOptions, WalTransport,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct WalNodeArgs {
    /// TOML config file; THUNDERDB_* environment variables override it, flags override both.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Raft node id (1, 2, …).
    #[arg(long)]
    node_id: Option<u64>,
    /// host:port the gRPC server listens on.
    #[arg(long)]
    listen: Option<String>,
    /// host:port the other nodes and clients reach this one at (default: --listen).
    #[arg(long)]
    advertise: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Voters of a new group: id=host:port,… (empty: wait to be added to a group).
    #[arg(long)]
    members: Option<String>,
}

pub fn node_config(args: &WalNodeArgs) -> Result<WalNodeConfig> {
    let mut cfg: WalNodeConfig = config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(id) = args.node_id {
        cfg.wal.node_id = id;
    }
    if let Some(l) = &args.listen {
        cfg.listen = l.clone();
    }
    if let Some(a) = &args.advertise {
        cfg.advertise = a.clone();
    }
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(m) = &args.members {
        cfg.members = m.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

pub async fn run_node(cfg: WalNodeConfig) -> Result<()> {
    let members = cfg.validate()?;
    let lock = crate::lock_data_dir(&cfg.data_dir)?;
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let node = LocalWalService::start(WalServiceOptions {
        node_id: cfg.wal.node_id,
        data_dir: cfg.data_dir.clone(),
        fsync: cfg.wal.fsync,
        group_commit_max: cfg.wal.group_commit_max,
        initial_members: members,
        transport: WalTransport::Grpc,
        commit_timeout: Duration::from_millis(cfg.commit_timeout_ms),
        snapshot_after_entries: cfg.wal.snapshot_after_entries,
    })
    .await
    .context("starting the WAL node")?;
    let cancel = CancellationToken::new();
    let server = tokio::spawn(thunderdb_walservice::grpc::serve(
        node.clone(),
        listener,
        cancel.clone(),
    ));
    tracing::info!(node = cfg.wal.node_id, %addr, "walservice node serving");
    // Scripts and tests wait for this line.
    println!("walservice {} listening on {addr}", cfg.wal.node_id);
    crate::until_stopped(vec![("gRPC server", server)]).await?;
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), node.shutdown()).await;
    drop(lock);
    Ok(())
}

#[derive(Args)]
pub struct WalctlArgs {
    /// Addresses of the group's nodes: host:port,…
    #[arg(long)]
    nodes: String,
    #[command(subcommand)]
    command: WalctlCommand,
}

#[derive(Subcommand)]
enum WalctlCommand {
    /// Each node's view: state, term, leader, log and applied positions, members.
    Status,
    /// Sets the group's voters, id=host:port,… (adds new nodes, removes the ones left out).
    Members { voters: String },
}

pub async fn walctl(args: WalctlArgs) -> Result<()> {
    let nodes = config::parse_addresses("--nodes", &args.nodes)?;
    let client = RemoteWalService::connect(RemoteWalOptions {
        nodes,
        request_timeout: Duration::from_secs(10),
    })?;
    match args.command {
        WalctlCommand::Status => {
            println!(
                "{:<22} {:>4} {:<10} {:>6} {:>6} {:>10} {:>10} {:>10}  members",
                "address", "id", "state", "term", "leader", "last_log", "applied", "lsn"
            );
            let mut answered = 0;
            for (address, status) in client.statuses().await {
                match status {
                    Ok(s) => {
                        answered += 1;
                        let members: Vec<String> = s
                            .members
                            .iter()
                            .map(|m| {
                                let role = if m.voter { "" } else { " (learner)" };
                                format!("{}={}{role}", m.id, m.address)
                            })
                            .collect();
                        println!(
                            "{:<22} {:>4} {:<10} {:>6} {:>6} {:>10} {:>10} {:>10}  {}",
                            address,
                            s.node_id,
                            s.state,
                            s.term,
                            s.leader_id,
                            s.last_log_index,
                            s.applied_index,
                            s.applied_lsn,
                            members.join(",")
                        );
                    }
                    Err(e) => println!("{address:<22} unreachable: {e}"),
                }
            }
            if answered == 0 {
                bail!("no WAL node answered");
            }
        }
        WalctlCommand::Members { voters } => {
            let voters = config::parse_members("voters", &voters)?;
            let s = client
                .change_membership(voters.into_iter().collect())
                .await
                .context("changing membership")?;
            let members: Vec<String> = s
                .members
                .iter()
                .map(|m| format!("{}={}", m.id, m.address))
                .collect();
            println!("voters: {}", members.join(","));
        }
    }
    Ok(())
}
