//! The client frontends of a process that runs compute (`dev`, `compute`): PostgreSQL, MySQL
//! and RESP listeners over one engine, until a signal or a frontend stops.

use anyhow::{Context, Result};
use std::sync::Arc;
use thunderdb_common::config::Frontends;
use thunderdb_compute::Engine;
use thunderdb_proxy::{
    MySqlFrontendOptions, PgFrontendOptions, RespFrontendOptions, serve_mysql, serve_postgres,
    serve_resp,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The frontend flags of `dev` and `compute`.
#[derive(clap::Args)]
pub struct FrontendArgs {
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
}

impl FrontendArgs {
    /// Overrides the configured address and ports (PostgreSQL, MySQL, RESP) with the flags given.
    pub fn apply(&self, listen: &mut String, ports: [&mut u16; 3]) {
        if let Some(l) = &self.listen {
            *listen = l.clone();
        }
        for (slot, flag) in ports
            .into_iter()
            .zip([self.pg_port, self.mysql_port, self.resp_port])
        {
            if let Some(p) = flag {
                *slot = p;
            }
        }
    }
}

/// Serves every frontend until SIGTERM, an interrupt, or a frontend's end; the caller then
/// cancels `cancel` and shuts the storage down.
pub async fn serve(f: &Frontends, engine: Arc<Engine>, cancel: CancellationToken) -> Result<()> {
    let listener = TcpListener::bind((f.listen.as_str(), f.pg_port))
        .await
        .with_context(|| format!("binding {}:{}", f.listen, f.pg_port))?;
    let addr = listener.local_addr()?;
    let tls = if f.tls_cert.is_empty() {
        None
    } else {
        Some(
            thunderdb_proxy::tls_server_config(
                std::path::Path::new(&f.tls_cert),
                std::path::Path::new(&f.tls_key),
            )
            .map_err(|e| anyhow::anyhow!("tls_cert / tls_key: {e}"))?,
        )
    };
    let opts = PgFrontendOptions {
        users: vec![(f.user.clone(), f.password.clone())],
        auth_method: thunderdb_proxy::PgAuthMethod::parse(&f.pg_auth_method).unwrap_or_default(),
        server_version: thunderdb_compute::SERVER_VERSION.to_string(),
        tls: tls.clone(),
    };
    let pg = tokio::spawn(serve_postgres(
        listener,
        Arc::clone(&engine),
        opts,
        cancel.clone(),
    ));

    let resp_listener = TcpListener::bind((f.listen.as_str(), f.resp_port))
        .await
        .with_context(|| format!("binding {}:{}", f.listen, f.resp_port))?;
    let resp_addr = resp_listener.local_addr()?;
    let resp = tokio::spawn(serve_resp(
        resp_listener,
        thunderdb_compute::redis::RedisEngine::new(Arc::clone(&engine)),
        RespFrontendOptions {
            users: vec![(f.user.clone(), f.password.clone())],
            require_auth: f.resp_require_auth,
            port: resp_addr.port(),
        },
        cancel.clone(),
    ));
    println!("resp listening on {resp_addr}");

    let mysql_listener = TcpListener::bind((f.listen.as_str(), f.mysql_port))
        .await
        .with_context(|| format!("binding {}:{}", f.listen, f.mysql_port))?;
    let mysql_addr = mysql_listener.local_addr()?;
    let mysql = tokio::spawn(serve_mysql(
        mysql_listener,
        Arc::clone(&engine),
        MySqlFrontendOptions {
            users: vec![(f.user.clone(), f.password.clone())],
            server_version: thunderdb_compute::MYSQL_SERVER_VERSION.to_string(),
            tls,
        },
        cancel.clone(),
    ));
    println!("mysql listening on {mysql_addr}");
    // Printed last: scripts and tests wait for this line as the sign that every frontend is up.
    println!("postgres listening on {addr}");

    crate::until_stopped(vec![("postgres", pg), ("mysql", mysql), ("resp", resp)]).await
}
