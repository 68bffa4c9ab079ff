//! `sysbench oltp_read_write` (Debian sysbench, its MySQL driver = libmysqlclient with
//! server-side prepared statements) unmodified: prepare, run, cleanup.

use super::{installed, server};
use crate::harness::{PASSWORD, Run, USER, run_child, skip};
use std::process::Command;
use std::time::Duration;

fn sysbench(port: u16, args: &[&str]) -> Run {
    let mut cmd = Command::new("sysbench");
    cmd.arg("oltp_read_write")
        .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
        .arg(format!("--mysql-port={port}"))
        .arg(format!("--mysql-user={USER}"))
        .arg(format!("--mysql-password={PASSWORD}"))
        .args(["--mysql-db=thunderdb", "--tables=2", "--table-size=500"])
        .args(args);
    run_child(&mut cmd, b"", Duration::from_secs(300), "sysbench")
}

#[test]
fn oltp_read_write_prepare_run_cleanup() {
    const TEST: &str = "mysql::sysbench::oltp_read_write_prepare_run_cleanup";
    if !installed("sysbench") {
        skip(TEST, "sysbench is not installed (Debian sysbench)");
        return;
    }
    let Some(mut server) = server(TEST) else {
        return;
    };
    let port = server.mysql_port();
    let prepare = sysbench(port, &["prepare"]);
    assert!(prepare.status.success(), "prepare:\n{}", prepare.describe());
    assert!(
        prepare
            .stdout
            .contains("Creating a secondary index on 'sbtest2'"),
        "{}",
        prepare.stdout
    );
    let run = sysbench(port, &["--threads=4", "--time=10", "run"]);
    assert!(run.status.success(), "run:\n{}", run.describe());
    assert!(!run.stdout.contains("FATAL"), "{}", run.stdout);
    let transactions: u64 = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("transactions:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no transaction count in:\n{}", run.stdout));
    assert!(transactions > 0, "{}", run.stdout);
    // Each transaction deletes and re-inserts one row: the tables keep their size.
    let check = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pg = server.connect().await;
        let a: i64 = pg
            .query_one("SELECT count(*) FROM sbtest1", &[])
            .await
            .unwrap()
            .get(0);
        let b: i64 = pg
            .query_one("SELECT count(*) FROM sbtest2", &[])
            .await
            .unwrap()
            .get(0);
        (a, b)
    });
    assert_eq!(check, (500, 500));
    let cleanup = sysbench(port, &["cleanup"]);
    assert!(cleanup.status.success(), "cleanup:\n{}", cleanup.describe());
    server.assert_running("after sysbench");
}
