//! pgbench, unmodified: `pgbench -i` (CREATE TABLE … WITH (fillfactor), TRUNCATE, COPY FROM
//! STDIN, VACUUM, ALTER TABLE ADD PRIMARY KEY) and the built-in scripts in every query mode.
//! The books must balance afterwards: every delta pgbench applied is in the accounts, tellers,
//! branches and history alike.

use std::process::Command;
use std::time::Duration;

use crate::harness::{PASSWORD, Run, TestServer, USER, installed, run_child, skip};
use crate::sql::check;

/// The pgbench binary: Debian's wrapper on PATH needs a server package's real binary.
fn pgbench() -> Option<String> {
    ["/usr/lib/postgresql/15/bin/pgbench", "pgbench"]
        .into_iter()
        .find(|p| installed(p))
        .map(str::to_string)
}

fn run(bin: &str, server: &TestServer, args: &[&str]) -> Run {
    let mut cmd = Command::new(bin);
    cmd.args([
        "-h",
        server.host(),
        "-p",
        &server.port().to_string(),
        "-U",
        USER,
    ])
    .args(args)
    .arg("thunderdb")
    .env("PGPASSWORD", PASSWORD);
    let run = run_child(&mut cmd, b"", Duration::from_secs(240), "pgbench");
    assert!(
        run.status.success(),
        "pgbench {args:?} failed:\n{}",
        run.describe()
    );
    run
}

/// `number of failed transactions: N` from a run's report.
fn failed(run: &Run) -> u64 {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failure count in:\n{}", run.stdout))
}

#[tokio::test]
async fn pgbench_initializes_and_runs_every_builtin_script() {
    let Some(bin) = pgbench() else {
        skip(
            "pgcompat::pgbench::pgbench_initializes_and_runs_every_builtin_script",
            "pgbench is not installed (Debian postgresql-15)",
        );
        return;
    };
    let server = TestServer::start();
    let init = run(&bin, &server, &["-i", "-s", "1", "-q"]);
    assert!(
        init.stderr.contains("creating primary keys") && init.stderr.contains("done in"),
        "{}",
        init.describe()
    );
    let c = server.connect().await;
    check(
        &c,
        "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_tellers), \
         (SELECT count(*) FROM pgbench_branches), (SELECT count(*) FROM pgbench_history)",
        "100000|10|1|0",
    )
    .await;
    // The primary keys exist and are the tables' keys.
    check(
        &c,
        "SELECT conname FROM pg_catalog.pg_constraint WHERE contype = 'p' ORDER BY 1",
        "pgbench_accounts_pkey\npgbench_branches_pkey\npgbench_tellers_pkey",
    )
    .await;
    // Initializing again drops and rebuilds everything.
    run(&bin, &server, &["-i", "-s", "1", "-q"]);
    check(&c, "SELECT count(*) FROM pgbench_accounts", "100000").await;

    // A default run first vacuums and truncates the history, as pgbench does before measuring.
    run(&bin, &server, &["-b", "select-only", "-c", "1", "-t", "5"]);

    for mode in ["simple", "extended", "prepared"] {
        for (script, clients) in [
            ("select-only", "2"),
            ("simple-update", "2"),
            ("tpcb-like", "2"),
        ] {
            // Two clients on one branch conflict; pgbench retries a 40001 as it would a
            // serialization failure of PostgreSQL's.
            let r = run(
                &bin,
                &server,
                &[
                    "-n",
                    "-b",
                    script,
                    "-M",
                    mode,
                    "-c",
                    clients,
                    "-t",
                    "25",
                    "--max-tries",
                    "1000",
                ],
            );
            assert_eq!(failed(&r), 0, "{script} -M {mode}:\n{}", r.stdout);
            assert!(
                r.stdout
                    .contains("number of transactions actually processed: 50/50"),
                "{}",
                r.stdout
            );
        }
    }
    // Every transaction of tpcb-like and simple-update wrote one history row: 6 runs × 50.
    check(&c, "SELECT count(*) FROM pgbench_history", "300").await;
    check(
        &c,
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)",
        "t",
    )
    .await;
    // tpcb-like also moves tellers and branches (simple-update does not).
    check(
        &c,
        "SELECT (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)",
        "t",
    )
    .await;
}
