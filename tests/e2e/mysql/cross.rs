//! One set of tables behind both protocols: what PostgreSQL clients write, MySQL clients read
//! and change, and the other way round, each seeing the other's commits at once.

use super::{server, url};
use mysql_async::prelude::*;

#[tokio::test]
async fn both_protocols_share_tables_and_commits() {
    let Some(server) = server("mysql::cross::both_protocols_share_tables_and_commits") else {
        return;
    };
    let pg = server.connect().await;
    let mut my = mysql_async::Conn::from_url(url(&server)).await.unwrap();

    // Created through PostgreSQL, written and read through MySQL.
    pg.batch_execute(
        "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance NUMERIC(12,2));
         INSERT INTO accounts VALUES (1, 'ann', 100.00), (2, 'bob', 50.50);",
    )
    .await
    .unwrap();
    let rows: Vec<(i64, String, String)> = my
        .query("SELECT id, owner, balance FROM accounts ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        rows,
        [
            (1, "ann".into(), "100.00".into()),
            (2, "bob".into(), "50.50".into())
        ]
    );
    my.exec_drop(
        "UPDATE accounts SET balance = balance - ? WHERE id = ?",
        ("25.25", 1),
    )
    .await
    .unwrap();
    my.query_drop("INSERT INTO `accounts` (id, owner, balance) VALUES (3, 'cy', 0)")
        .await
        .unwrap();
    let seen = pg
        .query(
            "SELECT id, owner, balance::text FROM accounts ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let seen: Vec<(i64, String, String)> = seen
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "ann".into(), "74.75".into()),
            (2, "bob".into(), "50.50".into()),
            (3, "cy".into(), "0.00".into())
        ]
    );

    // Created through MySQL (AUTO_INCREMENT), written and read through PostgreSQL.
    my.query_drop(
        "CREATE TABLE events (id INT NOT NULL AUTO_INCREMENT, kind VARCHAR(20) NOT NULL, \
         PRIMARY KEY (id), KEY by_kind (kind)) ENGINE=InnoDB",
    )
    .await
    .unwrap();
    my.query_drop("INSERT INTO events (kind) VALUES ('open'), ('close')")
        .await
        .unwrap();
    pg.execute("INSERT INTO events (kind) VALUES ('pg')", &[])
        .await
        .unwrap();
    pg.execute("INSERT INTO events (id, kind) VALUES (10, 'explicit')", &[])
        .await
        .unwrap();
    my.query_drop("INSERT INTO events (kind) VALUES ('after')")
        .await
        .unwrap();
    let kinds: Vec<(i32, String)> = my
        .query("SELECT id, kind FROM events WHERE kind <> 'close' ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        kinds,
        [
            (1, "open".into()),
            (3, "pg".into()),
            (10, "explicit".into()),
            (11, "after".into())
        ]
    );

    // A MySQL transaction is invisible to PostgreSQL until it commits, then visible at once.
    my.query_drop("START TRANSACTION").await.unwrap();
    my.query_drop("DELETE FROM events").await.unwrap();
    let n: i64 = pg
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
    my.query_drop("COMMIT").await.unwrap();
    let n: i64 = pg
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    my.disconnect().await.unwrap();
}
