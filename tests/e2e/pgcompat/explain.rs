//! EXPLAIN and EXPLAIN ANALYZE in PostgreSQL's shape: one `QUERY PLAN` text column, a row per
//! plan line, ANALYZE's measurements and execution time.

use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{exec, expect_error};

#[tokio::test]
async fn explain_prints_a_query_plan_column() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE TABLE t (id INT PRIMARY KEY, v INT)").await;
    exec(&c, "INSERT INTO t VALUES (1, 1), (2, 2)").await;
    for (sql, analyzed) in [
        ("EXPLAIN SELECT * FROM t WHERE v > 1", false),
        ("EXPLAIN ANALYZE SELECT v FROM t WHERE v > 1", true),
        ("EXPLAIN (ANALYZE, COSTS OFF) SELECT v FROM t", true),
        ("EXPLAIN (FORMAT TEXT) SELECT v FROM t WHERE v > 1", false),
    ] {
        let messages = c.simple_query(sql).await.expect(sql);
        let mut lines = Vec::new();
        for m in &messages {
            if let SimpleQueryMessage::Row(row) = m {
                assert_eq!(row.columns().len(), 1);
                assert_eq!(row.columns()[0].name(), "QUERY PLAN");
                lines.push(row.get(0).expect("a line").to_string());
            }
        }
        assert!(lines.len() >= 2, "{sql}: {lines:?}");
        assert_eq!(
            lines
                .last()
                .is_some_and(|l| l.starts_with("Execution Time: ")),
            analyzed,
            "{sql}: {lines:?}"
        );
        if analyzed {
            assert!(lines[0].contains("metrics="), "{sql}: {lines:?}");
        }
    }
    let prepared = c
        .query("EXPLAIN SELECT * FROM t", &[])
        .await
        .expect("extended");
    assert!(!prepared.is_empty());
    expect_error(
        &c,
        "EXPLAIN (FORMAT JSON) SELECT 1",
        &SqlState::FEATURE_NOT_SUPPORTED,
    )
    .await;
    expect_error(&c, "EXPLAIN (BOGUS) SELECT 1", &SqlState::SYNTAX_ERROR).await;
}
