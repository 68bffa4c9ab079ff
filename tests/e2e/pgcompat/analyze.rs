//! ANALYZE: row counts and column statistics stored in the catalog, read back through
//! `pg_class`/`pg_stats`, and used by the planner to pick hash-join build sides.

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, expect_error, query_lines, query_value};

/// The plan lines of `EXPLAIN sql`.
async fn plan(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    query_lines(c, &format!("EXPLAIN {sql}")).await
}

/// The table whose scan is the build side (first input) of the topmost hash join.
fn top_build_side(lines: &[String]) -> String {
    let join = lines
        .iter()
        .position(|l| l.contains("HashJoinExec"))
        .unwrap_or_else(|| panic!("no hash join: {lines:#?}"));
    // Down the first input (the next line, through one-input operators) to a scan or a join.
    for l in &lines[join + 1..] {
        if l.contains("HashJoinExec") {
            return "join".to_string();
        }
        if let Some(rest) = l.split("ThunderScan: table=").nth(1) {
            return rest.split(',').next().unwrap().to_string();
        }
    }
    panic!("no build side: {lines:#?}")
}

#[tokio::test]
async fn analyze_records_statistics_the_planner_uses() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE big (id INT PRIMARY KEY, k INT, m INT, note TEXT)",
    )
    .await;
    exec(&c, "CREATE TABLE small (id INT PRIMARY KEY, name TEXT)").await;
    exec(&c, "CREATE TABLE mid (id INT PRIMARY KEY, v INT)").await;
    exec(
        &c,
        "INSERT INTO big SELECT i, i % 10, i % 500, CASE WHEN i % 4 = 0 THEN NULL ELSE 'abcdef' END \
         FROM generate_series(1, 20000) AS g(i)",
    )
    .await;
    exec(
        &c,
        "INSERT INTO small SELECT i, 'n' || i FROM generate_series(0, 9) AS g(i)",
    )
    .await;
    // The same column twice in an INSERT's SELECT (PostgreSQL takes the items by position).
    exec(
        &c,
        "INSERT INTO mid SELECT i, i FROM generate_series(0, 499) AS g(i)",
    )
    .await;

    // Before ANALYZE: PostgreSQL 14+'s "never analyzed" and no pg_stats rows.
    check(
        &c,
        "SELECT reltuples, relpages FROM pg_class WHERE relname = 'big'",
        "-1|0",
    )
    .await;
    check(
        &c,
        "SELECT count(*) FROM pg_stats WHERE tablename = 'big'",
        "0",
    )
    .await;
    let join = "SELECT count(*) FROM small s JOIN big b ON b.k = s.id JOIN mid m ON b.m = m.id";
    let before = plan(&c, join).await;
    // Without distinct counts the size of small ⋈ big is unknown, and the top join builds
    // its hash table on it (20000 rows) rather than on mid (500).
    assert_eq!(top_build_side(&before), "join", "{before:#?}");

    exec(&c, "ANALYZE big").await;
    check(
        &c,
        "SELECT reltuples FROM pg_class WHERE relname IN ('big', 'big_pkey') ORDER BY relname",
        "20000\n20000",
    )
    .await;
    let pages: i64 = query_value(&c, "SELECT relpages FROM pg_class WHERE relname = 'big'")
        .await
        .parse()
        .unwrap();
    assert!(pages > 10, "relpages {pages}");
    check(
        &c,
        "SELECT attname, null_frac, avg_width FROM pg_stats WHERE tablename = 'big' \
         ORDER BY attname",
        "id|0|4\nk|0|4\nm|0|4\nnote|0.25|7",
    )
    .await;
    // Distinct counts: -1 for the key, a count where it stays small, and (HyperLogLog)
    // close to 500 for m.
    check(
        &c,
        "SELECT attname, n_distinct FROM pg_stats WHERE tablename = 'big' AND attname IN \
         ('id', 'k', 'note') ORDER BY attname",
        "id|-1\nk|10\nnote|1",
    )
    .await;
    let m: f64 = query_value(
        &c,
        "SELECT n_distinct FROM pg_stats WHERE tablename = 'big' AND attname = 'm'",
    )
    .await
    .parse()
    .unwrap();
    assert!((480.0..=520.0).contains(&m), "n_distinct of m: {m}");
    check(
        &c,
        "SELECT schemaname, inherited, most_common_vals IS NULL FROM pg_stats \
         WHERE tablename = 'big' AND attname = 'id'",
        "public|f|t",
    )
    .await;

    // With every table analyzed, the top join builds on mid.
    exec(&c, "ANALYZE").await;
    let after = plan(&c, join).await;
    assert_eq!(top_build_side(&after), "mid", "{after:#?}");
    check(&c, join, "20000").await;

    // A column list measures those columns and keeps the others.
    exec(&c, "UPDATE big SET note = 'x' WHERE id <= 10000").await;
    exec(&c, "ANALYZE big (note)").await;
    check(
        &c,
        "SELECT attname, null_frac FROM pg_stats WHERE tablename = 'big' \
         AND attname IN ('k', 'note') ORDER BY attname",
        "k|0\nnote|0.125",
    )
    .await;

    // ANALYZE is transactional; VACUUM ANALYZE answers VACUUM; TRUNCATE and DROP forget.
    exec(&c, "CREATE TABLE t (a INT)").await;
    exec(&c, "INSERT INTO t VALUES (1), (2), (NULL)").await;
    exec(&c, "BEGIN").await;
    exec(&c, "ANALYZE t").await;
    check(
        &c,
        "SELECT reltuples FROM pg_class WHERE relname = 't'",
        "3",
    )
    .await;
    exec(&c, "ROLLBACK").await;
    check(
        &c,
        "SELECT reltuples FROM pg_class WHERE relname = 't'",
        "-1",
    )
    .await;
    let tags = c.simple_query("VACUUM ANALYZE t").await.unwrap();
    assert!(
        matches!(
            tags.last(),
            Some(tokio_postgres::SimpleQueryMessage::CommandComplete(_))
        ),
        "{tags:?}"
    );
    check(
        &c,
        "SELECT null_frac > 0.3 AND null_frac < 0.34, n_distinct FROM pg_stats WHERE tablename = 't'",
        // Two distinct values in three rows: a fraction of the rows, as PostgreSQL states it.
        "t|-0.6666667",
    )
    .await;
    exec(&c, "TRUNCATE t").await;
    check(
        &c,
        "SELECT reltuples FROM pg_class WHERE relname = 't'",
        "-1",
    )
    .await;
    exec(&c, "ANALYZE t").await;
    check(
        &c,
        "SELECT reltuples FROM pg_class WHERE relname = 't'",
        "0",
    )
    .await;
    exec(&c, "DROP TABLE t").await;
    exec(&c, "CREATE TABLE t (a INT)").await;
    check(
        &c,
        "SELECT count(*) FROM pg_stats WHERE tablename = 't'",
        "0",
    )
    .await;
    // A rename keeps them.
    exec(&c, "ALTER TABLE mid RENAME TO middle").await;
    check(
        &c,
        "SELECT reltuples FROM pg_class WHERE relname = 'middle'",
        "500",
    )
    .await;

    // Errors.
    expect_error(&c, "ANALYZE nope", &SqlState::UNDEFINED_TABLE).await;
    expect_error(&c, "ANALYZE big (nope)", &SqlState::UNDEFINED_COLUMN).await;
    exec(&c, "BEGIN").await;
    expect_error(&c, "VACUUM ANALYZE big", &SqlState::ACTIVE_SQL_TRANSACTION).await;
    exec(&c, "ROLLBACK").await;
    exec(&c, "CREATE ROLE carol LOGIN PASSWORD 'carol-pw'").await;
    exec(&c, "GRANT SELECT ON big TO carol").await;
    let carol = server.connect_as("carol", "carol-pw").await.expect("carol");
    // Someone else's table is skipped (PostgreSQL warns and goes on), named or not.
    exec(&c, "INSERT INTO big VALUES (30000, 1, 1, NULL)").await;
    exec(&carol, "ANALYZE big").await;
    exec(&carol, "VACUUM ANALYZE big").await;
    exec(&carol, "ANALYZE").await;
    check(
        &c,
        "SELECT reltuples FROM pg_class WHERE relname = 'big'",
        "20000",
    )
    .await;

    // A table whose rows move to a new storage id keeps its statistics.
    exec(&c, "CREATE TABLE nokey (a INT NOT NULL, b INT)").await;
    exec(
        &c,
        "INSERT INTO nokey SELECT i, i % 3 FROM generate_series(1, 30) AS g(i)",
    )
    .await;
    exec(&c, "ANALYZE nokey").await;
    exec(&c, "ALTER TABLE nokey ADD PRIMARY KEY (a)").await;
    check(
        &c,
        "SELECT reltuples FROM pg_class WHERE relname = 'nokey'",
        "30",
    )
    .await;
    check(
        &c,
        "SELECT n_distinct FROM pg_stats WHERE tablename = 'nokey' AND attname = 'b'",
        "3",
    )
    .await;

    // ANALYZE fails no SERIALIZABLE transaction that read the catalog meanwhile.
    let other = server.connect().await;
    exec(&other, "BEGIN ISOLATION LEVEL SERIALIZABLE").await;
    check(&other, "SELECT count(*) FROM small", "10").await;
    exec(&other, "INSERT INTO small VALUES (100, 'x')").await;
    exec(&c, "ANALYZE small").await;
    exec(&c, "BEGIN ISOLATION LEVEL SERIALIZABLE").await;
    exec(&c, "ANALYZE nokey").await;
    exec(&other, "COMMIT").await;
    exec(&c, "COMMIT").await;
}
