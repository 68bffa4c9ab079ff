//! Views: CREATE [OR REPLACE] VIEW, queries through views (filters, joins, aggregates, views
//! of views, CTEs that shadow them), column lists, DROP VIEW, the catalog (`pg_class`,
//! `pg_views`, `pg_get_viewdef`), and the errors PostgreSQL gives.

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, expect_error};

#[tokio::test]
async fn views_read_through_their_query() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE emp (id INT PRIMARY KEY, dept TEXT, pay INT)",
    )
    .await;
    exec(
        &c,
        "INSERT INTO emp VALUES (1, 'a', 10), (2, 'a', 20), (3, 'b', 5)",
    )
    .await;
    exec(
        &c,
        "CREATE VIEW dept_pay AS SELECT dept, sum(pay) AS total, count(*) FROM emp GROUP BY dept",
    )
    .await;
    check(&c, "SELECT * FROM dept_pay ORDER BY dept", "a|30|2\nb|5|1").await;
    check(&c, "SELECT total FROM dept_pay WHERE dept = 'b'", "5").await;
    // Named columns, a view of a view, a join with a table, an alias.
    exec(
        &c,
        "CREATE VIEW rich (who, amount) AS SELECT id, pay FROM emp WHERE pay >= 10",
    )
    .await;
    exec(&c, "CREATE VIEW rich_a AS SELECT r.who FROM rich r JOIN emp e ON e.id = r.who WHERE e.dept = 'a'").await;
    check(&c, "SELECT who FROM rich_a ORDER BY who", "1\n2").await;
    check(
        &c,
        "SELECT x.amount FROM public.rich AS x WHERE x.who = 2",
        "20",
    )
    .await;
    // Views see committed changes of their tables at once.
    exec(&c, "UPDATE emp SET pay = 1 WHERE id = 2").await;
    check(&c, "SELECT count(*) FROM rich", "1").await;
    // A CTE of the same name shadows the view.
    check(
        &c,
        "WITH rich AS (SELECT 42 AS who) SELECT who FROM rich",
        "42",
    )
    .await;
    // OR REPLACE may add columns at the end, not change the ones there.
    exec(
        &c,
        "CREATE OR REPLACE VIEW rich (who, amount, d) AS SELECT id, pay, dept FROM emp",
    )
    .await;
    check(&c, "SELECT d FROM rich WHERE who = 3", "b").await;
    expect_error(
        &c,
        "CREATE OR REPLACE VIEW rich AS SELECT dept FROM emp",
        &SqlState::INVALID_TABLE_DEFINITION,
    )
    .await;
    expect_error(
        &c,
        "CREATE VIEW rich AS SELECT 1",
        &SqlState::DUPLICATE_TABLE,
    )
    .await;
    expect_error(
        &c,
        "CREATE VIEW emp AS SELECT 1",
        &SqlState::DUPLICATE_TABLE,
    )
    .await;
    expect_error(
        &c,
        "CREATE VIEW broken AS SELECT nope FROM emp",
        &SqlState::UNDEFINED_COLUMN,
    )
    .await;
    // The catalog shows them.
    check(
        &c,
        "SELECT relname FROM pg_class WHERE relkind = 'v' AND relnamespace = 'public'::regnamespace ORDER BY 1",
        "dept_pay\nrich\nrich_a",
    )
    .await;
    check(
        &c,
        "SELECT viewname FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
        "dept_pay\nrich\nrich_a",
    )
    .await;
    // Writes go to tables, not views; DROP VIEW only drops views.
    expect_error(
        &c,
        "INSERT INTO rich VALUES (9, 9, 'z')",
        &SqlState::WRONG_OBJECT_TYPE,
    )
    .await;
    expect_error(&c, "DROP VIEW emp", &SqlState::WRONG_OBJECT_TYPE).await;
    expect_error(&c, "DROP VIEW nope", &SqlState::UNDEFINED_TABLE).await;
    exec(&c, "DROP VIEW IF EXISTS nope").await;
    // DDL is transactional.
    exec(&c, "BEGIN").await;
    exec(&c, "DROP VIEW rich_a").await;
    expect_error(&c, "SELECT * FROM rich_a", &SqlState::UNDEFINED_TABLE).await;
    exec(&c, "ROLLBACK").await;
    // rich now lists every employee: both of department a.
    check(&c, "SELECT count(*) FROM rich_a", "2").await;
    // Bodies get the same treatment as queries: a correlated sub-query, quoted names.
    exec(
        &c,
        "CREATE VIEW \"Top\" AS SELECT e.id AS \"Who\", (SELECT count(*) FROM emp x WHERE x.dept = e.dept) AS n FROM emp e",
    )
    .await;
    check(
        &c,
        "SELECT \"Who\", n FROM \"Top\" ORDER BY 1",
        "1|2\n2|2\n3|1",
    )
    .await;
    expect_error(
        &c,
        "CREATE TEMP VIEW tv AS SELECT 1",
        &SqlState::FEATURE_NOT_SUPPORTED,
    )
    .await;
    // Views that would read themselves are refused.
    exec(&c, "CREATE VIEW v1 AS SELECT 1 AS x").await;
    exec(&c, "CREATE VIEW v2 AS SELECT x FROM v1").await;
    expect_error(
        &c,
        "CREATE OR REPLACE VIEW v1 AS SELECT x FROM v2",
        &SqlState::INVALID_OBJECT_DEFINITION,
    )
    .await;
    check(&c, "SELECT x FROM v2", "1").await;
}
