//! `SELECT … FOR UPDATE / FOR SHARE` as commit-time claims on the rows returned: a row locked
//! FOR UPDATE by a transaction that commits cannot also be changed or locked by another that
//! commits (the later one gets 40001); FOR SHARE holds the rows as read; rows not returned are
//! not claimed.

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, exec_count, expect_error};

#[tokio::test]
async fn for_update_and_for_share_claim_the_rows_returned() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    exec(&a, "CREATE TABLE t (id INT PRIMARY KEY, v INT)").await;
    exec(&a, "INSERT INTO t VALUES (1, 10), (2, 20)").await;

    // Two lockers of one row: the first to commit wins.
    exec(&a, "BEGIN").await;
    check(&a, "SELECT v FROM t WHERE id = 1 FOR UPDATE", "10").await;
    exec(&b, "BEGIN").await;
    check(&b, "SELECT v FROM t WHERE id = 1 FOR UPDATE", "10").await;
    exec(&a, "COMMIT").await;
    expect_error(&b, "COMMIT", &SqlState::T_R_SERIALIZATION_FAILURE).await;

    // A locked row changed by someone else meanwhile: the locker cannot commit.
    exec(&a, "BEGIN").await;
    check(
        &a,
        "SELECT v FROM t t1 WHERE t1.v >= 10 ORDER BY id LIMIT 1 FOR NO KEY UPDATE OF t1",
        "10",
    )
    .await;
    exec_count(&b, "UPDATE t SET v = 11 WHERE id = 2", 1).await; // not returned: not claimed
    exec(&a, "SAVEPOINT s").await;
    exec(&a, "RELEASE s").await;
    exec_count(&b, "UPDATE t SET v = 12 WHERE id = 1", 1).await;
    expect_error(&a, "COMMIT", &SqlState::T_R_SERIALIZATION_FAILURE).await;

    // FOR SHARE: readers share; a writer of the row in between fails the reader's commit.
    exec(&a, "BEGIN").await;
    exec(&b, "BEGIN").await;
    check(&a, "SELECT v FROM t WHERE id = 2 FOR SHARE", "11").await;
    check(&b, "SELECT v FROM t WHERE id = 2 FOR KEY SHARE", "11").await;
    exec(&a, "COMMIT").await;
    exec(&b, "COMMIT").await;
    exec(&a, "BEGIN").await;
    check(&a, "SELECT v FROM t WHERE id = 2 FOR SHARE", "11").await;
    exec_count(&b, "UPDATE t SET v = 13 WHERE id = 2", 1).await;
    exec_count(&a, "UPDATE t SET v = v + 1 WHERE id = 1", 1).await;
    expect_error(&a, "COMMIT", &SqlState::T_R_SERIALIZATION_FAILURE).await;
    check(&a, "SELECT v FROM t ORDER BY id", "12\n13").await;

    // ORDER BY naming an output column of the locking query.
    exec(&a, "BEGIN").await;
    check(
        &a,
        "SELECT id, v AS p FROM t ORDER BY p DESC LIMIT 1 FOR UPDATE",
        "2|13",
    )
    .await;
    exec(&a, "COMMIT").await;
    // What PostgreSQL refuses.
    exec(&a, "BEGIN").await;
    expect_error(
        &a,
        "SELECT count(*) FROM t GROUP BY v FOR UPDATE",
        &SqlState::FEATURE_NOT_SUPPORTED,
    )
    .await;
    exec(&a, "ROLLBACK").await;
    exec(&a, "BEGIN").await;
    expect_error(
        &a,
        "SELECT * FROM t FOR UPDATE OF nope",
        &SqlState::UNDEFINED_TABLE,
    )
    .await;
    exec(&a, "ROLLBACK").await;
    // Outside a block it is a plain read.
    check(&a, "SELECT v FROM t WHERE id = 1 FOR UPDATE", "12").await;
}
