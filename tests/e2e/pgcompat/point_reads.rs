//! Point reads by the whole primary key skip the planner; they must answer exactly as the
//! general path does: composite keys, parameters, NULL and out-of-range keys, aliases and
//! qualified names, the transaction's own writes, and prepared statements' declared types.
//! INSERTs of literal VALUES skip it too, with the same values and errors.

use crate::harness::TestServer;
use crate::sql::{check, exec};

#[tokio::test]
async fn point_reads_answer_like_the_general_path() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE kv (a INT, b TEXT, v BIGINT, note VARCHAR(10), PRIMARY KEY (a, b))",
    )
    .await;
    exec(
        &c,
        "INSERT INTO kv VALUES (1, 'x', 10, 'one'), (1, 'y', 11, NULL), (-2, 'x', 20, 'neg')",
    )
    .await;
    // Each pair: a point read, and the same question forced down the general path.
    for (point, general) in [
        (
            "SELECT * FROM kv WHERE a = 1 AND b = 'x'",
            "SELECT * FROM kv WHERE a = 1 AND b = 'x' ORDER BY a",
        ),
        (
            "SELECT v, note AS n FROM kv WHERE b = 'y' AND a = 1",
            "SELECT v, note AS n FROM kv WHERE b = 'y' AND a = 1 LIMIT 5",
        ),
        (
            "SELECT k.v FROM kv AS k WHERE k.a = -2 AND (k.b = 'x')",
            "SELECT k.v FROM kv AS k WHERE k.a = -2 AND k.b = 'x' ORDER BY 1",
        ),
        (
            "SELECT v FROM kv WHERE a = 99999999999 AND b = 'x'",
            "SELECT v FROM kv WHERE a = 99999999999 AND b = 'x' ORDER BY 1",
        ),
        (
            "SELECT v FROM kv WHERE a = 1 AND b = 'nope'",
            "SELECT v FROM kv WHERE a = 1 AND b = 'nope' ORDER BY 1",
        ),
        (
            "SELECT v FROM kv WHERE a = NULL AND b = 'x'",
            "SELECT v FROM kv WHERE a = NULL AND b = 'x' ORDER BY 1",
        ),
    ] {
        let fast = crate::sql::query_lines(&c, point).await;
        let slow = crate::sql::query_lines(&c, general).await;
        assert_eq!(fast, slow, "{point}");
    }
    check(&c, "SELECT * FROM kv WHERE a = 1 AND b = 'x'", "1|x|10|one").await;

    // Prepared, with typed parameters and result columns as described at Parse.
    let stmt = c
        .prepare("SELECT v, note FROM kv WHERE a = $1 AND b = $2")
        .await
        .expect("prepare");
    let rows = c.query(&stmt, &[&1i32, &"y"]).await.expect("query");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), 11);
    assert_eq!(rows[0].get::<_, Option<String>>(1), None);
    let rows = c.query(&stmt, &[&7i32, &"y"]).await.expect("query");
    assert!(rows.is_empty());
    let rows = c.query(&stmt, &[&None::<i32>, &"y"]).await.expect("query");
    assert!(rows.is_empty());

    // Inside a transaction the point read sees the transaction's own writes.
    exec(&c, "BEGIN").await;
    exec(&c, "UPDATE kv SET v = 99 WHERE a = 1 AND b = 'x'").await;
    exec(&c, "DELETE FROM kv WHERE a = 1 AND b = 'y'").await;
    exec(&c, "INSERT INTO kv VALUES (3, 'z', 30, NULL)").await;
    check(&c, "SELECT v FROM kv WHERE a = 1 AND b = 'x'", "99").await;
    check(&c, "SELECT v FROM kv WHERE a = 1 AND b = 'y'", "").await;
    check(&c, "SELECT v FROM kv WHERE a = 3 AND b = 'z'", "30").await;
    exec(&c, "ROLLBACK").await;
    check(&c, "SELECT v FROM kv WHERE a = 1 AND b = 'x'", "10").await;
    check(&c, "SELECT v FROM kv WHERE a = 3 AND b = 'z'", "").await;
}

/// `UPDATE … SET c = c + v WHERE <whole key>` also skips the planner; counts, overflow,
/// NULL arithmetic and NOT NULL answer as PostgreSQL does.
#[tokio::test]
async fn point_updates_answer_like_the_general_path() {
    use tokio_postgres::error::SqlState;

    use crate::sql::{exec_count, expect_error};

    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE acc (id INT PRIMARY KEY, bal INT NOT NULL, small SMALLINT, big BIGINT, tag TEXT)",
    )
    .await;
    exec(&c, "CREATE INDEX acc_big ON acc (big)").await;
    exec(
        &c,
        "INSERT INTO acc VALUES (1, 100, 1, 10, 'a'), (2, 2147483000, NULL, 20, 'b')",
    )
    .await;
    exec_count(&c, "UPDATE acc SET bal = bal + 5 WHERE id = 1", 1).await;
    exec_count(
        &c,
        "UPDATE acc SET bal = bal - -5, small = 7 WHERE id = 1",
        1,
    )
    .await;
    exec_count(&c, "UPDATE acc SET bal = 1 WHERE id = 3", 0).await;
    exec_count(&c, "UPDATE acc SET bal = 1 WHERE id = NULL", 0).await;
    check(&c, "SELECT bal, small FROM acc WHERE id = 1", "110|7").await;
    // int4 + int4 overflows as integer; the column's own range applies too.
    let msg = expect_error(
        &c,
        "UPDATE acc SET bal = bal + 1000 WHERE id = 2",
        &SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
    assert_eq!(msg, "integer out of range");
    let msg = expect_error(
        &c,
        "UPDATE acc SET small = small + 40000 WHERE id = 1",
        &SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
    assert_eq!(msg, "smallint out of range");
    // NULL + 1 is NULL; into a NOT NULL column that is an error.
    exec_count(&c, "UPDATE acc SET small = small + 1 WHERE id = 2", 1).await;
    check(&c, "SELECT small FROM acc WHERE id = 2", "NULL").await;
    expect_error(
        &c,
        "UPDATE acc SET bal = small + 1 WHERE id = 2",
        &SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    // Prepared, as pgbench runs it; an indexed column still goes the general way.
    let stmt = c
        .prepare("UPDATE acc SET bal = bal + $1 WHERE id = $2")
        .await
        .expect("prepare");
    assert_eq!(
        c.execute(&stmt, &[&-10i32, &1i32]).await.expect("update"),
        1
    );
    assert_eq!(
        c.execute(&stmt, &[&-10i32, &9i32]).await.expect("update"),
        0
    );
    exec_count(&c, "UPDATE acc SET big = big + 1 WHERE id = 1", 1).await;
    check(&c, "SELECT id FROM acc WHERE big = 11", "1").await;
    check(&c, "SELECT bal, big FROM acc WHERE id = 1", "100|11").await;
    // Inside a transaction, and rolled back.
    exec(&c, "BEGIN").await;
    exec_count(&c, "UPDATE acc SET bal = bal + 1 WHERE id = 1", 1).await;
    check(&c, "SELECT bal FROM acc WHERE id = 1", "101").await;
    exec(&c, "ROLLBACK").await;
    check(&c, "SELECT bal FROM acc WHERE id = 1", "100").await;
}

/// `INSERT … VALUES` of literals, parameters and `now()` builds its rows without the planner;
/// each statement here is also run as `INSERT … SELECT`, which is planned, and both must store
/// the same values or fail with the same error.
#[tokio::test]
async fn literal_inserts_answer_like_the_general_path() {
    use tokio_postgres::error::SqlState;

    use crate::sql::expect_error;

    let server = TestServer::start();
    let c = server.connect().await;
    for t in ["fast", "slow"] {
        exec(
            &c,
            &format!(
                "CREATE TABLE {t} (id INT PRIMARY KEY, s SMALLINT, b BOOLEAN, v VARCHAR(3), \
                 c CHAR(3), n NUMERIC(6,2), d DATE, ts TIMESTAMPTZ, j JSONB, u UUID, tags TEXT[])"
            ),
        )
        .await;
    }
    let rows = [
        "1, 7, true, 'ab', 'x', 12, '2024-02-29', '2024-01-01 10:00:00+02', '{\"b\": 1, \"a\": [2]}', \
         'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{a,\"b c\"}'",
        "2, -32768, 'f', NULL, NULL, -5, NULL, NULL, NULL, NULL, NULL",
        "3, ' 12 ', 'yes', 'xyz', 'abc', '1.005', '1999-12-31', '2000-01-01 00:00:00', '[]', \
         'a0eebc999c0b4ef8bb6d6bb9bd380a12', '{}'",
    ];
    for row in rows {
        exec(&c, &format!("INSERT INTO fast VALUES ({row})")).await;
        exec(&c, &format!("INSERT INTO slow SELECT {row}")).await;
    }
    let all = |t: &str| format!("SELECT * FROM {t} ORDER BY id");
    let fast = crate::sql::query_lines(&c, &all("fast")).await;
    assert_eq!(fast, crate::sql::query_lines(&c, &all("slow")).await);
    assert_eq!(fast.len(), 3);

    // Bad values fail alike, with PostgreSQL's codes.
    for (columns, values, code) in [
        ("id, s", "9, 40000", SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
        ("id, s", "9, 'abc'", SqlState::INVALID_TEXT_REPRESENTATION),
        ("id, b", "9, 'maybe'", SqlState::INVALID_TEXT_REPRESENTATION),
        ("id, v", "9, 'abcd'", SqlState::STRING_DATA_RIGHT_TRUNCATION),
        ("id, j", "9, '{'", SqlState::INVALID_TEXT_REPRESENTATION),
        (
            "id, tags",
            "9, 'a,b'",
            SqlState::INVALID_TEXT_REPRESENTATION,
        ),
        // An integer literal is int4, as the message says.
        ("id, tags", "9, 1", SqlState::DATATYPE_MISMATCH),
        ("id", "NULL", SqlState::NOT_NULL_VIOLATION),
        ("id", "1", SqlState::UNIQUE_VIOLATION),
        ("id", "99999999999", SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
    ] {
        let fast = expect_error(
            &c,
            &format!("INSERT INTO fast ({columns}) VALUES ({values})"),
            &code,
        )
        .await;
        let slow = expect_error(
            &c,
            &format!("INSERT INTO slow ({columns}) SELECT {values}"),
            &code,
        )
        .await;
        assert_eq!(fast.replace("fast", "slow"), slow, "{columns} = {values}");
    }
    expect_error(
        &c,
        "INSERT INTO fast (id, s) VALUES (9, 1, 2)",
        &SqlState::SYNTAX_ERROR,
    )
    .await;

    // Rows of one VALUES list whose items differ in type, and parameters.
    exec(
        &c,
        "INSERT INTO fast (id, s, v) VALUES (20, 1, 'a'), (21, '2', NULL), (22, NULL, 'c')",
    )
    .await;
    check(
        &c,
        "SELECT id, s, v FROM fast WHERE id >= 20 ORDER BY id",
        "20|1|a\n21|2|NULL\n22|NULL|c",
    )
    .await;
    let insert = c
        .prepare("INSERT INTO fast (id, s, v, ts) VALUES ($1, $2, $3, now())")
        .await
        .unwrap();
    c.execute(&insert, &[&30i32, &5i16, &"xy"]).await.unwrap();
    let err = c
        .execute(&insert, &[&31i32, &5i16, &"long"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION));
    check(&c, "SELECT s, v FROM fast WHERE id = 30", "5|xy").await;

    // now() and CURRENT_TIMESTAMP are the transaction's start, as the planned path has them.
    exec(&c, "BEGIN").await;
    exec(
        &c,
        "INSERT INTO fast (id, ts) VALUES (40, now()), (41, CURRENT_TIMESTAMP)",
    )
    .await;
    exec(&c, "INSERT INTO slow (id, ts) SELECT 40, now()").await;
    check(
        &c,
        "SELECT count(*) FROM fast WHERE id IN (40, 41) AND ts = now() \
         AND ts = (SELECT ts FROM slow WHERE id = 40)",
        "2",
    )
    .await;
    exec(&c, "COMMIT").await;
}
