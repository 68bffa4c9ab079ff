//! SAVEPOINT / ROLLBACK TO / RELEASE: nested points, writes and DDL taken back, a failed
//! block recovered by ROLLBACK TO, and PostgreSQL's errors outside a block.

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, exec_count, expect_error};

#[tokio::test]
async fn savepoints_take_back_what_followed_them() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE TABLE sp (id INT PRIMARY KEY, v TEXT)").await;

    exec(&c, "BEGIN").await;
    exec_count(&c, "INSERT INTO sp VALUES (1, 'a')", 1).await;
    exec(&c, "SAVEPOINT one").await;
    exec_count(&c, "INSERT INTO sp VALUES (2, 'b')", 1).await;
    exec(&c, "SAVEPOINT two").await;
    exec_count(&c, "UPDATE sp SET v = 'z' WHERE id = 1", 1).await;
    exec(&c, "CREATE TABLE inner_t (x INT)").await;
    check(&c, "SELECT id, v FROM sp ORDER BY id", "1|z\n2|b").await;
    exec(&c, "ROLLBACK TO SAVEPOINT two").await;
    check(&c, "SELECT id, v FROM sp ORDER BY id", "1|a\n2|b").await;
    // The DDL after the savepoint is gone too.
    expect_error(&c, "SELECT * FROM inner_t", &SqlState::UNDEFINED_TABLE).await;
    // The failed statement doomed the block; ROLLBACK TO the still-open savepoint recovers it.
    exec(&c, "ROLLBACK TO two").await;
    exec_count(&c, "DELETE FROM sp WHERE id = 2", 1).await;
    exec(&c, "ROLLBACK TO one").await;
    check(&c, "SELECT id, v FROM sp ORDER BY id", "1|a").await;
    // A failed block takes ROLLBACK TO through the extended protocol too (drivers send it so).
    exec(&c, "SAVEPOINT ext").await;
    expect_error(&c, "SELECT 1/0", &SqlState::DIVISION_BY_ZERO).await;
    let err = c.execute("SELECT 1", &[]).await.expect_err("failed block");
    assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    c.execute("ROLLBACK TO SAVEPOINT ext", &[])
        .await
        .expect("extended ROLLBACK TO in a failed block");
    c.execute("RELEASE ext", &[]).await.expect("release");
    // "two" was newer than "one": rolling back to "one" removed it.
    let msg = expect_error(&c, "RELEASE two", &SqlState::from_code("3B001")).await;
    assert!(msg.contains("savepoint \"two\" does not exist"), "{msg}");
    // That error failed the block.
    expect_error(
        &c,
        "INSERT INTO sp VALUES (5, 'e')",
        &SqlState::IN_FAILED_SQL_TRANSACTION,
    )
    .await;
    exec(&c, "ROLLBACK TO one").await;
    exec_count(&c, "INSERT INTO sp VALUES (3, 'c')", 1).await;
    exec(&c, "SAVEPOINT one").await; // a name may repeat; the newest wins
    exec_count(&c, "INSERT INTO sp VALUES (4, 'd')", 1).await;
    exec(&c, "RELEASE SAVEPOINT one").await;
    // Releasing keeps the writes; the older "one" is still there and takes back 3, 4 and 6.
    check(&c, "SELECT id FROM sp ORDER BY id", "1\n3\n4").await;
    exec_count(&c, "INSERT INTO sp VALUES (6, 'f')", 1).await;
    exec(&c, "ROLLBACK TO one").await;
    check(&c, "SELECT id FROM sp ORDER BY id", "1").await;
    exec_count(&c, "INSERT INTO sp VALUES (3, 'c')", 1).await;
    exec(&c, "COMMIT").await;
    check(&c, "SELECT id, v FROM sp ORDER BY id", "1|a\n3|c").await;

    // A failed block with an unknown savepoint stays failed; COMMIT then rolls back.
    exec(&c, "BEGIN").await;
    exec_count(&c, "INSERT INTO sp VALUES (7, 'g')", 1).await;
    expect_error(&c, "ROLLBACK TO nowhere", &SqlState::from_code("3B001")).await;
    exec(&c, "COMMIT").await;
    check(&c, "SELECT count(*) FROM sp", "2").await;

    // Outside a block.
    for (sql, what) in [
        ("SAVEPOINT x", "SAVEPOINT"),
        ("RELEASE x", "RELEASE SAVEPOINT"),
        ("ROLLBACK TO x", "ROLLBACK TO SAVEPOINT"),
    ] {
        let msg = expect_error(&c, sql, &SqlState::NO_ACTIVE_SQL_TRANSACTION).await;
        assert_eq!(
            msg,
            format!("{what} can only be used in transaction blocks")
        );
    }
}

/// tokio-postgres's own savepoint API (nested `Transaction`s) as an ORM uses it.
#[tokio::test]
async fn nested_transactions_of_a_driver() {
    let server = TestServer::start();
    let mut c = server.connect().await;
    exec(&c, "CREATE TABLE nest (id INT PRIMARY KEY)").await;
    let mut outer = c.transaction().await.expect("begin");
    outer
        .execute("INSERT INTO nest VALUES (1)", &[])
        .await
        .expect("insert");
    {
        let inner = outer.transaction().await.expect("savepoint");
        inner
            .execute("INSERT INTO nest VALUES (2)", &[])
            .await
            .expect("insert");
        let err = inner
            .execute("INSERT INTO nest VALUES (1)", &[])
            .await
            .expect_err("duplicate");
        assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
        // Dropped without commit: rolled back to the savepoint.
    }
    {
        let inner = outer.transaction().await.expect("savepoint");
        inner
            .execute("INSERT INTO nest VALUES (3)", &[])
            .await
            .expect("insert");
        inner.commit().await.expect("release");
    }
    outer.commit().await.expect("commit");
    check(&c, "SELECT id FROM nest ORDER BY id", "1\n3").await;
}
