//! TLS on the PostgreSQL endpoint: with `tls_cert`/`tls_key`, psql connects with
//! `sslmode=require` and `sslmode=verify-full` (the certificate names 127.0.0.1); plain clients
//! are still served; without a certificate `sslmode=require` is refused as PostgreSQL refuses.

use std::process::Command;
use std::time::Duration;

use crate::harness::{
    Backend, PASSWORD, Run, ServerOptions, TestServer, USER, installed, run_child,
    self_signed_cert, skip,
};

fn psql(server: &TestServer, conninfo: &str, sql: &str) -> Run {
    let mut cmd = Command::new("psql");
    cmd.arg("-X")
        .arg(format!(
            "host=127.0.0.1 port={} user={USER} dbname=thunderdb {conninfo}",
            server.port()
        ))
        .args(["-A", "-t", "-c", sql])
        .env("PGPASSWORD", PASSWORD);
    run_child(&mut cmd, b"", Duration::from_secs(60), "psql")
}

#[test]
fn psql_over_tls() {
    const TEST: &str = "pgcompat::tls::psql_over_tls";
    if !installed("psql") || !crate::harness::openssl_installed() {
        skip(TEST, "psql or openssl is not installed");
        return;
    }
    if Backend::from_env() == Backend::Postgres {
        skip(
            TEST,
            "the stock PostgreSQL backend is started without a certificate",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed_cert(dir.path());
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("THUNDERDB_TLS_CERT".into(), cert.display().to_string()),
            ("THUNDERDB_TLS_KEY".into(), key.display().to_string()),
        ],
        ..Default::default()
    });
    let run = psql(&server, "sslmode=require", "\\conninfo");
    assert!(
        run.status.success() && run.stdout.contains("SSL connection (protocol: TLSv1.3"),
        "{}",
        run.describe()
    );
    let verified = psql(
        &server,
        &format!("sslmode=verify-full sslrootcert={}", cert.display()),
        "SELECT 1 + 1",
    );
    assert!(
        verified.status.success() && verified.stdout.trim() == "2",
        "{}",
        verified.describe()
    );
    let plain = psql(&server, "sslmode=disable", "\\conninfo");
    assert!(
        plain.status.success() && !plain.stdout.contains("SSL connection"),
        "{}",
        plain.describe()
    );

    // Without a certificate the server says no, and sslmode=require gives up.
    let bare = TestServer::start();
    let refused = psql(&bare, "sslmode=require", "SELECT 1");
    assert!(
        !refused.status.success() && refused.stderr.contains("server does not support SSL"),
        "{}",
        refused.describe()
    );
}
