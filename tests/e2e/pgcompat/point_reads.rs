//! Point reads by the whole primary key skip the planner; they must answer exactly as the
//! general path does: composite keys, parameters, NULL and out-of-range keys, aliases and
//! qualified names, the transaction's own writes, and prepared statements' declared types.

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
