//! Engine-level tests: SQL through a session over a real WAL service and pageserver.

use crate::{Engine, EngineOptions, QueryOutput, Session};
use datafusion::arrow::util::display::array_value_to_string;
use std::sync::Arc;
use std::time::Duration;
use thunderdb_pageserver::{LocalPageServer, PageServerOptions};
use thunderdb_walservice::{LocalWalService, WalServiceOptions};
use tokio_util::sync::CancellationToken;

pub(crate) struct TestDb {
    pub engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let wal =
            LocalWalService::start(WalServiceOptions::single(dir.path().to_owned(), false, 64))
                .await
                .expect("wal");
        wal.wait_ready(Duration::from_secs(10))
            .await
            .expect("leader");
        let pages = LocalPageServer::start(
            wal.clone(),
            PageServerOptions::new(dir.path().to_owned()),
            CancellationToken::new(),
        )
        .await
        .expect("pageserver");
        let engine = Engine::new(
            wal.clone(),
            pages,
            EngineOptions {
                database: "db".into(),
                superuser: "u".into(),
                columnar: Default::default(),
                dir: None,
            },
        );
        TestDb { engine, _dir: dir }
    }

    pub fn session(&self) -> Session {
        self.engine.new_session("u", "db").expect("session")
    }
}

/// Runs a test on a multi-threaded runtime whose threads have the stack DataFusion's planner
/// needs in unoptimized builds.
pub(crate) fn big_stack(f: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(32 << 20)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(f)
        })
        .expect("spawn")
        .join()
        .expect("test thread panicked")
}

/// Runs `sql` and renders every row as `a|b|c`, or the command tag, or the error's SQLSTATE.
pub(crate) async fn run(s: &mut Session, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in s.execute_batch(sql).await {
        match r {
            Ok(QueryOutput::Rows { batches, .. }) => {
                for b in batches {
                    for row in 0..b.num_rows() {
                        let cells: Vec<String> = b
                            .columns()
                            .iter()
                            .map(|c| {
                                if c.is_null(row) {
                                    "NULL".into()
                                } else {
                                    array_value_to_string(c, row).unwrap_or_default()
                                }
                            })
                            .collect();
                        out.push(cells.join("|"));
                    }
                }
            }
            Ok(QueryOutput::Command(t)) => out.push(match t.rows {
                Some(n) => format!("{} {n}", t.command),
                None => t.command,
            }),
            Ok(QueryOutput::Empty) => out.push("EMPTY".into()),
            Ok(QueryOutput::CopyOut { batches, .. }) => {
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                out.push(format!("COPY OUT {rows}"))
            }
            Ok(QueryOutput::CopyIn(target)) => out.push(format!("COPY IN {}", target.table)),
            Err(e) => out.push(format!("ERROR {}: {}", e.state.code(), e.message)),
        }
    }
    out
}

#[test]
fn the_issue_session() {
    big_stack(async {
        let db = TestDb::new().await;
        let mut s = db.session();
        assert_eq!(
        run(&mut s, "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, total NUMERIC(10,2), note TEXT, created_at TIMESTAMPTZ DEFAULT now())").await,
        vec!["CREATE TABLE"]
    );
        assert_eq!(
            run(
                &mut s,
                "CREATE INDEX orders_customer ON orders (customer_id)"
            )
            .await,
            vec!["CREATE INDEX"]
        );
        assert_eq!(run(&mut s, "INSERT INTO orders (id, customer_id, total) VALUES (1, 1001, 149.97), (2, 1002, 20.00), (3, 1001, 5.50)").await, vec!["INSERT 3"]);
        assert_eq!(
            run(&mut s, "UPDATE orders SET total = total + 1 WHERE id = 2").await,
            vec!["UPDATE 1"]
        );
        assert_eq!(
            run(&mut s, "DELETE FROM orders WHERE id = 3").await,
            vec!["DELETE 1"]
        );
        assert_eq!(
            run(
                &mut s,
                "SELECT customer_id, sum(total), count(*) FROM orders GROUP BY 1 ORDER BY 1"
            )
            .await,
            vec!["1001|149.97|1", "1002|21.00|1"]
        );
        assert_eq!(
            run(
                &mut s,
                "BEGIN; INSERT INTO orders (id, customer_id) VALUES (9, 1); ROLLBACK"
            )
            .await,
            vec!["BEGIN", "INSERT 1", "ROLLBACK"]
        );
        assert_eq!(
            run(&mut s, "SELECT count(*) FROM orders WHERE id = 9").await,
            vec!["0"]
        );
        assert_eq!(
            run(&mut s, "SELECT id FROM orders WHERE customer_id = 1002").await,
            vec!["2"]
        );
        assert_eq!(
            run(
                &mut s,
                "SELECT count(*) FROM orders WHERE created_at IS NOT NULL"
            )
            .await,
            vec!["2"]
        );
        assert_eq!(
            run(&mut s, "INSERT INTO orders (id, customer_id) VALUES (1, 5)").await[0],
            "ERROR 23505: duplicate key value violates unique constraint \"orders_pkey\""
        );
        assert_eq!(
            run(&mut s, "INSERT INTO orders (id) VALUES (7)").await[0]
                .split(':')
                .next()
                .unwrap(),
            "ERROR 23502"
        );
        assert!(run(&mut s, "SELECT * FROM nope").await[0].starts_with("ERROR 42P01"));
        assert!(run(&mut s, "SELECT nope FROM orders").await[0].starts_with("ERROR 42703"));
        assert!(run(&mut s, "SELEC 1").await[0].starts_with("ERROR 42601"));
        assert!(
            run(&mut s, "SELECT 1/0").await[0].starts_with("ERROR 22012"),
            "{:?}",
            run(&mut s, "SELECT 1/0").await
        );
    });
}

#[test]
fn constraints_upserts_and_returning() {
    big_stack(async {
        let db = TestDb::new().await;
        let mut s = db.session();
        run(&mut s, "CREATE TABLE t (k INT PRIMARY KEY, v TEXT UNIQUE, n INT CHECK (n > 0), d INT DEFAULT 7)").await;
        assert_eq!(
            run(
                &mut s,
                "INSERT INTO t (k, v, n) VALUES (1, 'a', 1) RETURNING k, d"
            )
            .await,
            vec!["1|7"]
        );
        assert!(
            run(&mut s, "INSERT INTO t (k, v, n) VALUES (2, 'a', 1)").await[0].starts_with(
                "ERROR 23505: duplicate key value violates unique constraint \"t_v_key\""
            )
        );
        assert!(
            run(&mut s, "INSERT INTO t (k, v, n) VALUES (2, 'b', 0)").await[0]
                .starts_with("ERROR 23514")
        );
        assert_eq!(
            run(
                &mut s,
                "INSERT INTO t (k, v, n) VALUES (1, 'z', 5) ON CONFLICT DO NOTHING"
            )
            .await,
            vec!["INSERT 0"]
        );
        assert_eq!(run(&mut s, "INSERT INTO t (k, v, n) VALUES (1, 'z', 5) ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n, v = excluded.v").await, vec!["INSERT 1"]);
        assert_eq!(run(&mut s, "SELECT k, v, n FROM t").await, vec!["1|z|6"]);
        assert_eq!(
            run(
                &mut s,
                "INSERT INTO t (k, v, n) SELECT k + 10, v || 'x', n FROM t"
            )
            .await,
            vec!["INSERT 1"]
        );
        assert_eq!(
            run(&mut s, "UPDATE t SET k = k + 100 WHERE k = 11 RETURNING k").await,
            vec!["111"]
        );
        assert_eq!(
            run(&mut s, "SELECT k FROM t WHERE v = 'zx'").await,
            vec!["111"]
        );
        assert_eq!(
            run(&mut s, "DELETE FROM t WHERE v = 'zx' RETURNING v").await,
            vec!["zx"]
        );
        assert_eq!(run(&mut s, "SELECT count(*) FROM t").await, vec!["1"]);
        run(&mut s, "CREATE TABLE nokey (a INT, b TEXT)").await;
        assert_eq!(
            run(
                &mut s,
                "INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (NULL, NULL)"
            )
            .await,
            vec!["INSERT 3"]
        );
        assert_eq!(
            run(&mut s, "UPDATE nokey SET b = 'y' WHERE a = 1").await,
            vec!["UPDATE 2"]
        );
        assert_eq!(
            run(&mut s, "SELECT a, b FROM nokey ORDER BY a NULLS LAST").await,
            vec!["1|y", "1|y", "NULL|NULL"]
        );
    });
}

#[test]
fn write_conflicts_and_snapshots() {
    big_stack(async {
        let db = TestDb::new().await;
        let mut a = db.session();
        let mut b = db.session();
        run(&mut a, "CREATE TABLE acc (id INT PRIMARY KEY, bal INT); INSERT INTO acc VALUES (1, 100), (2, 100)").await;
        run(&mut a, "BEGIN").await;
        run(&mut b, "BEGIN").await;
        assert_eq!(
            run(&mut a, "UPDATE acc SET bal = bal - 10 WHERE id = 1").await,
            vec!["UPDATE 1"]
        );
        assert_eq!(
            run(&mut b, "UPDATE acc SET bal = bal - 20 WHERE id = 1").await,
            vec!["UPDATE 1"]
        );
        assert_eq!(run(&mut a, "COMMIT").await, vec!["COMMIT"]);
        assert!(run(&mut b, "COMMIT").await[0].starts_with("ERROR 40001"));
        assert_eq!(
            run(&mut b, "SELECT bal FROM acc WHERE id = 1").await,
            vec!["90"]
        );
        // A repeatable-read reader keeps its snapshot.
        run(&mut b, "BEGIN").await;
        assert_eq!(
            run(&mut b, "SELECT bal FROM acc WHERE id = 2").await,
            vec!["100"]
        );
        run(&mut a, "UPDATE acc SET bal = 0 WHERE id = 2").await;
        assert_eq!(
            run(&mut b, "SELECT bal FROM acc WHERE id = 2").await,
            vec!["100"]
        );
        run(&mut b, "COMMIT").await;
        assert_eq!(
            run(&mut b, "SELECT bal FROM acc WHERE id = 2").await,
            vec!["0"]
        );
        // Serializable: a read of a key changed since the snapshot fails the commit.
        run(&mut b, "BEGIN ISOLATION LEVEL SERIALIZABLE").await;
        run(&mut b, "SELECT sum(bal) FROM acc").await;
        run(&mut a, "UPDATE acc SET bal = 5 WHERE id = 2").await;
        run(&mut b, "INSERT INTO acc VALUES (3, 1)").await;
        assert!(run(&mut b, "COMMIT").await[0].starts_with("ERROR 40001"));
    });
}

#[test]
fn correlated_subqueries_with_inequalities() {
    big_stack(async {
        let db = TestDb::new().await;
        let mut s = db.session();
        run(&mut s, "CREATE TABLE t1 (a INT, b INT, c INT, d INT)").await;
        run(&mut s, "INSERT INTO t1 VALUES (1, 2, 3, 4), (2, 3, 4, 5), (3, 1, 2, 9), (NULL, NULL, NULL, NULL)").await;
        assert_eq!(
            run(
                &mut s,
                "SELECT a, (SELECT count(*) FROM t1 AS x WHERE x.c > t1.c AND x.d < t1.d), \
                 (SELECT count(*) FROM t1 AS x WHERE x.b < t1.b), (SELECT max(x.a) FROM t1 x WHERE x.b > t1.b) \
                 FROM t1 ORDER BY 1 NULLS LAST"
            )
            .await,
            vec!["1|0|1|2", "2|0|2|NULL", "3|2|0|2", "NULL|0|0|NULL"]
        );
    });
}

/// Integer literals are int4 except where DataFusion needs the bare number: window frame
/// offsets, table-function arguments (also negative ones), LIMIT, ordinals.
#[test]
fn integer_literals_keep_working_where_numbers_are_syntax() {
    big_stack(async {
        let db = TestDb::new().await;
        let mut s = db.session();
        run(&mut s, "CREATE TABLE w (id INT PRIMARY KEY, x INT)").await;
        run(
            &mut s,
            "INSERT INTO w VALUES (1, 10), (2, 20), (3, 30), (4, 40)",
        )
        .await;
        assert_eq!(
            run(
                &mut s,
                "SELECT id, sum(x) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) \
                 FROM w ORDER BY 1 LIMIT 3 OFFSET 1"
            )
            .await,
            vec!["2|60", "3|90", "4|70"]
        );
        assert_eq!(
            run(
                &mut s,
                "SELECT sum(x) OVER w FROM w WINDOW w AS (ORDER BY id ROWS 2 PRECEDING) ORDER BY 1"
            )
            .await,
            vec!["10", "30", "60", "90"]
        );
        assert_eq!(
            run(&mut s, "SELECT * FROM generate_series(3, 1, -1)").await,
            vec!["3", "2", "1"]
        );
        assert_eq!(
            run(
                &mut s,
                "SELECT x, count(*) FROM w GROUP BY 1 ORDER BY 1 DESC LIMIT 1"
            )
            .await,
            vec!["40|1"]
        );
        assert_eq!(
            run(
                &mut s,
                "SELECT pg_typeof(1), pg_typeof(-2147483648), pg_typeof(2147483648)"
            )
            .await,
            vec!["integer|integer|bigint"]
        );
    });
}
