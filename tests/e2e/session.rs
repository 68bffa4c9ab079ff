//! The issue's psql session and the SQL a PostgreSQL user expects to work, through tokio-postgres.
//!
//! Results are read through the simple-query protocol and compared as PostgreSQL's text output
//! (`149.97`, `t`, `NULL` for SQL NULL — see `sql::check`); typed values through the
//! extended protocol. Every expected value here is what stock PostgreSQL 15 returns
//! (`THUNDERDB_E2E_BACKEND=postgres` checks that).
//!
//! - this file: the session from the issue;
//! - `queries`: joins, grouping, windows, CTEs, subqueries, ordering, functions, NULLs;
//! - `statements`: prepared statements of every basic type, INSERT/UPDATE/DELETE with
//!   ON CONFLICT and RETURNING, constraints and defaults.

mod queries;
mod statements;

use tokio_postgres::types::Type;

use crate::harness::{TestServer, describe};
use crate::sql::{check, exec, exec_count};

/// The session from the issue, statement by statement as psql would send it, then SIGKILL and
/// a restart.
#[tokio::test]
async fn issue_session() {
    let mut server = TestServer::start();
    let c = server.connect().await;

    exec(
        &c,
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, total NUMERIC(10,2), \
         note TEXT, created_at TIMESTAMPTZ DEFAULT now())",
    )
    .await;
    exec(&c, "CREATE INDEX orders_customer ON orders (customer_id)").await;
    exec_count(
        &c,
        "INSERT INTO orders (id, customer_id, total) VALUES (1, 1001, 149.97), (2, 1002, 20.00), (3, 1001, 5.50)",
        3,
    )
    .await;
    check(
        &c,
        "SELECT customer_id, sum(total), count(*) FROM orders GROUP BY 1 ORDER BY 1",
        "1001|155.47|2
         1002|20.00|1",
    )
    .await;
    exec_count(&c, "UPDATE orders SET total = total + 1 WHERE id = 2", 1).await;
    exec_count(&c, "DELETE FROM orders WHERE id = 3", 1).await;
    check(
        &c,
        "SELECT customer_id, sum(total), count(*) FROM orders GROUP BY 1 ORDER BY 1",
        "1001|149.97|1
         1002|21.00|1",
    )
    .await;

    exec(&c, "BEGIN").await;
    exec_count(&c, "INSERT INTO orders (id, customer_id) VALUES (9, 1)", 1).await;
    check(&c, "SELECT count(*) FROM orders", "3").await; // a transaction reads its own writes
    exec(&c, "ROLLBACK").await;
    check(
        &c,
        "SELECT id, customer_id, total, note FROM orders ORDER BY id",
        "1|1001|149.97|NULL
         2|1002|21.00|NULL",
    )
    .await;

    // The same rollback sent as one multi-statement simple query.
    c.batch_execute("BEGIN; INSERT INTO orders (id, customer_id) VALUES (9, 1); ROLLBACK")
        .await
        .unwrap_or_else(|e| panic!("multi-statement query: {}", describe(&e)));
    check(&c, "SELECT count(*) FROM orders WHERE id = 9", "0").await;

    // DEFAULT now() was filled in at insert time.
    check(
        &c,
        "SELECT count(*) FROM orders WHERE created_at IS NULL",
        "0",
    )
    .await;
    check(
        &c,
        "SELECT count(*) FROM orders WHERE created_at <= now() AND created_at > now() - INTERVAL '1 hour'",
        "2",
    )
    .await;
    // Lookups through the primary key and the secondary index.
    check(
        &c,
        "SELECT id, total FROM orders WHERE customer_id = 1001",
        "1|149.97",
    )
    .await;
    check(&c, "SELECT total FROM orders WHERE id = 2", "21.00").await;
    check(
        &c,
        "SELECT count(*) FROM orders WHERE customer_id = 1001 AND id = 3",
        "0",
    )
    .await;
    // NUMERIC stays exact.
    check(
        &c,
        "SELECT sum(total) * 3, max(total) - min(total) FROM orders",
        "512.91|128.97",
    )
    .await;

    // The same rows through the extended protocol, typed.
    let stmt = c
        .prepare("SELECT id, customer_id, total, note, created_at FROM orders ORDER BY id")
        .await
        .unwrap_or_else(|e| panic!("prepare: {}", describe(&e)));
    let types: Vec<Type> = stmt
        .columns()
        .iter()
        .map(|col| col.type_().clone())
        .collect();
    assert_eq!(
        types,
        [
            Type::INT8,
            Type::INT8,
            Type::NUMERIC,
            Type::TEXT,
            Type::TIMESTAMPTZ
        ],
        "column types of orders"
    );
    let rows = c
        .query(
            "SELECT id, customer_id, note, total::text, total::float8 FROM orders ORDER BY id",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("typed select: {}", describe(&e)));
    let got: Vec<(i64, i64, Option<String>, String, f64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        got,
        [
            (1, 1001, None, "149.97".to_string(), 149.97),
            (2, 1002, None, "21.00".to_string(), 21.0)
        ]
    );

    // SIGKILL and a restart on the same data directory: every committed row is back, the
    // rolled-back one is not.
    drop(c);
    server.kill9();
    server.restart_same_dir();
    let c = server.connect().await;
    check(
        &c,
        "SELECT id, customer_id, total, note, created_at IS NOT NULL FROM orders ORDER BY id",
        "1|1001|149.97|NULL|t
         2|1002|21.00|NULL|t",
    )
    .await;
    check(&c, "SELECT id FROM orders WHERE customer_id = 1001", "1").await;
}
