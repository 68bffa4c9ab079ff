//! Durability: what was acknowledged survives SIGKILL, what was not never appears, and SIGTERM
//! shuts the server down promptly and cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use crate::bank;
use crate::harness::{TestServer, describe};
use crate::sql::{check, exec, exec_count, expect_error};

/// Committed rows (autocommit and explicit transactions, DDL and secondary indexes included)
/// survive two SIGKILL/restart cycles; rolled-back and never-committed writes do not.
#[tokio::test]
async fn committed_rows_survive_sigkill() {
    let mut server = TestServer::start();
    {
        let c = server.connect().await;
        exec(
            &c,
            "CREATE TABLE kept (id BIGINT PRIMARY KEY, note TEXT NOT NULL, amount NUMERIC(10,2))",
        )
        .await;
        exec(&c, "CREATE INDEX kept_note ON kept (note)").await;
        exec_count(
            &c,
            "INSERT INTO kept VALUES (1, 'one', 1.10), (2, 'two', 2.20), (3, 'three', 3.30)",
            3,
        )
        .await;
        exec(&c, "BEGIN").await;
        exec_count(
            &c,
            "INSERT INTO kept VALUES (4, 'four', 4.40), (5, 'five', 5.50)",
            2,
        )
        .await;
        exec_count(&c, "UPDATE kept SET note = 'updated' WHERE id = 1", 1).await;
        exec(&c, "COMMIT").await;
        exec_count(&c, "DELETE FROM kept WHERE id = 2", 1).await;

        exec(&c, "BEGIN").await;
        exec_count(&c, "INSERT INTO kept VALUES (100, 'rolled back', 0)", 1).await;
        exec_count(&c, "UPDATE kept SET note = 'rolled back' WHERE id = 3", 1).await;
        exec(&c, "ROLLBACK").await;

        // 1000 rows in one transaction: a large commit.
        let values: Vec<String> = (1000..2000)
            .map(|i| format!("({i}, 'bulk {i}', {i}.25)"))
            .collect();
        exec(&c, "BEGIN").await;
        exec_count(
            &c,
            &format!("INSERT INTO kept VALUES {}", values.join(", ")),
            1000,
        )
        .await;
        exec(&c, "COMMIT").await;

        exec(&c, "CREATE TABLE later (x INT PRIMARY KEY)").await;
        exec_count(&c, "INSERT INTO later VALUES (7)", 1).await;

        // Open, never committed, at the moment of the kill.
        let open = server.connect().await;
        exec(&open, "BEGIN").await;
        exec_count(&open, "INSERT INTO kept VALUES (200, 'uncommitted', 0)", 1).await;
        exec_count(
            &open,
            "UPDATE kept SET note = 'uncommitted' WHERE id = 4",
            1,
        )
        .await;
        exec_count(&open, "DELETE FROM kept WHERE id = 5", 1).await;
        exec(&open, "INSERT INTO later VALUES (8)").await;

        server.kill9();
    }

    server.restart_same_dir();
    {
        let c = server.connect().await;
        check(
            &c,
            "SELECT id, note, amount FROM kept WHERE id < 1000 ORDER BY id",
            "1|updated|1.10
             3|three|3.30
             4|four|4.40
             5|five|5.50",
        )
        .await;
        check(
            &c,
            "SELECT count(*), sum(amount) FROM kept WHERE id >= 1000",
            "1000|1499750.00",
        )
        .await;
        check(&c, "SELECT id FROM kept WHERE note = 'four'", "4").await; // through the index
        check(&c, "SELECT note FROM kept WHERE id = 1999", "bulk 1999").await;
        check(
            &c,
            "SELECT count(*) FROM kept WHERE note IN ('rolled back', 'uncommitted')",
            "0",
        )
        .await;
        check(&c, "SELECT x FROM later", "7").await;
        // The catalog came back with its constraints.
        expect_error(
            &c,
            "INSERT INTO kept VALUES (1, 'dup', 0)",
            &SqlState::UNIQUE_VIOLATION,
        )
        .await;
        expect_error(
            &c,
            "INSERT INTO kept VALUES (300, NULL, 0)",
            &SqlState::NOT_NULL_VIOLATION,
        )
        .await;

        // A second life: new writes after recovery, then another crash.
        exec_count(&c, "INSERT INTO kept VALUES (6, 'after restart', 6.60)", 1).await;
        exec_count(&c, "UPDATE kept SET amount = 0 WHERE id = 3", 1).await;
        exec_count(&c, "DELETE FROM kept WHERE id >= 1000 AND id < 1500", 500).await;
        exec_count(&c, "INSERT INTO later VALUES (9)", 1).await;
        server.kill9();
    }

    server.restart_same_dir();
    let c = server.connect().await;
    check(
        &c,
        "SELECT id, note, amount FROM kept WHERE id < 1000 ORDER BY id",
        "1|updated|1.10
         3|three|0.00
         4|four|4.40
         5|five|5.50
         6|after restart|6.60",
    )
    .await;
    check(
        &c,
        "SELECT count(*), min(id) FROM kept WHERE id >= 1000",
        "500|1500",
    )
    .await;
    check(&c, "SELECT x FROM later ORDER BY x", "7\n9").await;
    check(&c, "SELECT id FROM kept WHERE note = 'after restart'", "6").await;
}

/// SIGKILL in the middle of the bank workload. After a restart on the same data directory the
/// total is intact and the balances are exactly: initial + every acknowledged transfer + some
/// subset of the transfers whose COMMIT was in flight when the connection died. Then the
/// server keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_workload_survives_sigkill() {
    let mut server = TestServer::start();
    {
        let c = server.connect().await;
        bank::create_accounts(&c).await;
    }

    let progress = Arc::new(AtomicU64::new(0));
    let workload = bank::Workload {
        clients: 8,
        duration: Duration::from_secs(120), // ends when the server dies
        seed: bank::seed(),
        crash_expected: true,
    };
    let running = tokio::spawn(bank::run(
        server.conn_str(),
        workload,
        Arc::clone(&progress),
    ));

    // Let transfers flow, then pull the plug while commits are in flight.
    let started = Instant::now();
    while progress.load(Ordering::SeqCst) < 50 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before_kill = progress.load(Ordering::SeqCst);
    assert!(before_kill > 0, "no transfer committed within 30 s");
    tokio::time::sleep(Duration::from_millis(200 + rand::random::<u64>() % 300)).await;
    server.kill9();

    let reports = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the clients did not notice the dead server within 60 s")
        .expect("the workload task panicked")
        .unwrap_or_else(|failures| panic!("bank workload failed before the kill:\n{failures}"));
    let committed = bank::committed(&reports);
    let in_doubt = bank::in_doubt(&reports);
    eprintln!(
        "killed after {before_kill}+ commits: {} acknowledged, {} in doubt, {} conflicts retried",
        committed.len(),
        in_doubt.len(),
        bank::conflicts(&reports)
    );

    if let Some(why) = reports.iter().find_map(|r| r.stopped_by.as_deref()) {
        eprintln!("the clients stopped on errors such as: {why}");
    }

    server.restart_same_dir();
    let c = server.connect().await;
    let actual = bank::balances(&c).await;
    let applied = bank::audit(&actual, &bank::initial_balances(), &committed, &in_doubt)
        .unwrap_or_else(|problems| panic!("after SIGKILL and restart:\n{problems}"));
    eprintln!(
        "{} of the {} in-doubt transfers had committed",
        applied.len(),
        in_doubt.len()
    );
    check(
        &c,
        "SELECT sum(balance), count(*) FROM accounts",
        "100000|100",
    )
    .await;

    // Life goes on: a strict run on the recovered database balances exactly as well.
    let workload = bank::Workload {
        clients: 4,
        // Long enough for a loaded machine to commit some transfers after the restart.
        duration: Duration::from_secs(8),
        seed: bank::seed(),
        crash_expected: false,
    };
    let reports = bank::run(server.conn_str(), workload, Arc::new(AtomicU64::new(0)))
        .await
        .unwrap_or_else(|failures| panic!("bank workload after recovery failed:\n{failures}"));
    let committed_after = bank::committed(&reports);
    assert!(
        !committed_after.is_empty(),
        "no transfer committed after recovery"
    );
    let after = bank::balances(&c).await;
    if let Err(problems) = bank::audit(&after, &actual, &committed_after, &[]) {
        panic!("after recovery and more transfers:\n{problems}");
    }
}

/// SIGTERM with clients still connected (one idle, one inside a transaction): the server exits
/// with status 0 within 10 s, and a restart finds every committed row and nothing else.
#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    exec_count(&c, "INSERT INTO t VALUES (1, 'a'), (2, 'b')", 2).await;
    let in_txn = server.connect().await;
    exec(&in_txn, "BEGIN").await;
    exec_count(&in_txn, "INSERT INTO t VALUES (3, 'uncommitted')", 1).await;

    let started = Instant::now();
    let status = server
        .terminate(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    eprintln!("SIGTERM: exited with {status} after {took:?}");
    assert!(status.success(), "exit status after SIGTERM: {status}");

    // The sessions were closed by the shutdown.
    match c.simple_query("SELECT 1").await {
        Ok(_) => panic!("a session still answered after the server exited"),
        Err(e) => assert!(
            e.as_db_error().is_none() || e.code() == Some(&SqlState::ADMIN_SHUTDOWN),
            "{}",
            describe(&e)
        ),
    }
    drop((c, in_txn));

    server.restart_same_dir();
    let c = server.connect().await;
    check(&c, "SELECT id, v FROM t ORDER BY id", "1|a\n2|b").await;
    exec_count(&c, "INSERT INTO t VALUES (3, 'c')", 1).await;
    check(&c, "SELECT count(*) FROM t", "3").await;
}
