//! The issue's psql session and the SQL a PostgreSQL user expects to work, through tokio-postgres.
//!
//! Results are read through the simple-query protocol and compared as PostgreSQL's text output
//! (`149.97`, `t`, `NULL` for SQL NULL — see `harness::check`); typed values through the
//! extended protocol in `prepared_statements_round_trip_every_basic_type`. Every expected value
//! here is what stock PostgreSQL 15 returns (`THUNDERDB_E2E_BACKEND=postgres` checks that).

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::harness::{
    TestServer, check, check_unordered, describe, exec, exec_count, expect_error, query_value,
};

/// The session from the issue, statement by statement, as psql would send it.
#[tokio::test]
async fn issue_session() {
    let server = TestServer::start();
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
    check(&c, "SELECT count(*) FROM orders WHERE created_at IS NULL", "0").await;
    check(
        &c,
        "SELECT count(*) FROM orders WHERE created_at <= now() AND created_at > now() - INTERVAL '1 hour'",
        "2",
    )
    .await;
    // Lookups through the primary key and the secondary index.
    check(&c, "SELECT id, total FROM orders WHERE customer_id = 1001", "1|149.97").await;
    check(&c, "SELECT total FROM orders WHERE id = 2", "21.00").await;
    check(&c, "SELECT count(*) FROM orders WHERE customer_id = 1001 AND id = 3", "0").await;
    // NUMERIC stays exact.
    check(&c, "SELECT sum(total) * 3, max(total) - min(total) FROM orders", "512.91|128.97").await;

    // The same rows through the extended protocol, typed.
    let stmt = c.prepare("SELECT id, customer_id, total, note, created_at FROM orders ORDER BY id").await.expect("prepare");
    let types: Vec<Type> = stmt.columns().iter().map(|col| col.type_().clone()).collect();
    assert_eq!(types, [Type::INT8, Type::INT8, Type::NUMERIC, Type::TEXT, Type::TIMESTAMPTZ], "column types of orders");
    let rows = c
        .query("SELECT id, customer_id, note, total::text, total::float8 FROM orders ORDER BY id", &[])
        .await
        .unwrap_or_else(|e| panic!("typed select: {}", describe(&e)));
    let got: Vec<(i64, i64, Option<String>, String, f64)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
    assert_eq!(
        got,
        [(1, 1001, None, "149.97".to_string(), 149.97), (2, 1002, None, "21.00".to_string(), 21.0)]
    );
}

async fn emp_dept(c: &Client) {
    exec(c, "CREATE TABLE dept (id INT PRIMARY KEY, name TEXT NOT NULL)").await;
    exec(
        c,
        "CREATE TABLE emp (id INT PRIMARY KEY, name TEXT NOT NULL, dept_id INT, salary INT, manager_id INT)",
    )
    .await;
    exec_count(c, "INSERT INTO dept VALUES (1, 'eng'), (2, 'sales'), (3, 'ops')", 3).await;
    exec_count(
        c,
        "INSERT INTO emp VALUES (1, 'alice', 1, 120, NULL), (2, 'bob', 1, 100, 1), (3, 'carol', 2, 90, 1), \
         (4, 'dave', 2, 80, 3), (5, 'erin', NULL, 70, 1), (6, 'frank', 1, 100, 2)",
        6,
    )
    .await;
}

#[tokio::test]
async fn joins() {
    let server = TestServer::start();
    let c = server.connect().await;
    emp_dept(&c).await;

    check(
        &c,
        "SELECT e.name, d.name FROM emp e JOIN dept d ON e.dept_id = d.id ORDER BY e.id",
        "alice|eng
         bob|eng
         carol|sales
         dave|sales
         frank|eng",
    )
    .await;
    check(
        &c,
        "SELECT e.name, d.name FROM emp e LEFT JOIN dept d ON e.dept_id = d.id ORDER BY e.id",
        "alice|eng
         bob|eng
         carol|sales
         dave|sales
         erin|NULL
         frank|eng",
    )
    .await;
    check(
        &c,
        "SELECT e.name, d.name FROM emp e RIGHT JOIN dept d ON e.dept_id = d.id ORDER BY d.id, e.id",
        "alice|eng
         bob|eng
         frank|eng
         carol|sales
         dave|sales
         NULL|ops",
    )
    .await;
    check(
        &c,
        "SELECT e.name, d.name FROM emp e FULL JOIN dept d ON e.dept_id = d.id ORDER BY e.id NULLS LAST, d.id",
        "alice|eng
         bob|eng
         carol|sales
         dave|sales
         erin|NULL
         frank|eng
         NULL|ops",
    )
    .await;
    // Self join, implicit join in WHERE, USING, cross join.
    check(
        &c,
        "SELECT a.name, b.name FROM emp a JOIN emp b ON a.manager_id = b.id ORDER BY a.id",
        "bob|alice
         carol|alice
         dave|carol
         erin|alice
         frank|bob",
    )
    .await;
    check(
        &c,
        "SELECT e.name FROM emp e, dept d WHERE e.dept_id = d.id AND d.name = 'sales' ORDER BY e.name",
        "carol
         dave",
    )
    .await;
    check(
        &c,
        "SELECT d.name, count(*) FROM emp e JOIN dept d ON d.id = e.dept_id GROUP BY d.name ORDER BY d.name",
        "eng|3
         sales|2",
    )
    .await;
    check(&c, "SELECT count(*) FROM emp CROSS JOIN dept", "18").await;
    check(
        &c,
        "SELECT d.name, count(e.id), coalesce(sum(e.salary), 0) FROM dept d LEFT JOIN emp e ON e.dept_id = d.id \
         GROUP BY d.name ORDER BY d.name",
        "eng|3|320
         ops|0|0
         sales|2|170",
    )
    .await;
}

#[tokio::test]
async fn grouping_and_window_functions() {
    let server = TestServer::start();
    let c = server.connect().await;
    emp_dept(&c).await;

    check(
        &c,
        "SELECT dept_id, count(*), sum(salary), min(salary), max(salary) FROM emp WHERE dept_id IS NOT NULL \
         GROUP BY dept_id HAVING count(*) > 1 ORDER BY dept_id",
        "1|3|320|100|120
         2|2|170|80|90",
    )
    .await;
    check(
        &c,
        "SELECT dept_id, sum(salary) FROM emp GROUP BY dept_id HAVING sum(salary) > 100 ORDER BY 2 DESC",
        "1|320
         2|170",
    )
    .await;
    check(&c, "SELECT avg(salary) > 93.33 AND avg(salary) < 93.34 FROM emp", "t").await;
    check(&c, "SELECT count(*), count(DISTINCT salary), sum(DISTINCT salary) FROM emp", "6|5|460").await;
    check(&c, "SELECT count(*) FROM emp HAVING count(*) > 100", "").await;
    check(
        &c,
        "SELECT name, dept_id, row_number() OVER (PARTITION BY dept_id ORDER BY salary DESC, id), \
         sum(salary) OVER (PARTITION BY dept_id) FROM emp WHERE dept_id IS NOT NULL ORDER BY dept_id, 3",
        "alice|1|1|320
         bob|1|2|320
         frank|1|3|320
         carol|2|1|170
         dave|2|2|170",
    )
    .await;
    check(
        &c,
        "SELECT name, rank() OVER (ORDER BY salary DESC), dense_rank() OVER (ORDER BY salary DESC) \
         FROM emp ORDER BY salary DESC, id",
        "alice|1|1
         bob|2|2
         frank|2|2
         carol|4|3
         dave|5|4
         erin|6|5",
    )
    .await;
    check(
        &c,
        "SELECT id, sum(salary) OVER (ORDER BY id), lag(name) OVER (ORDER BY id), lead(name) OVER (ORDER BY id) \
         FROM emp ORDER BY id",
        "1|120|NULL|bob
         2|220|alice|carol
         3|310|bob|dave
         4|390|carol|erin
         5|460|dave|frank
         6|560|erin|NULL",
    )
    .await;
    check(
        &c,
        "SELECT name FROM (SELECT name, row_number() OVER (PARTITION BY dept_id ORDER BY salary DESC, id) AS rn \
         FROM emp) ranked WHERE rn = 1 ORDER BY name",
        "alice
         carol
         erin",
    )
    .await;
}

#[tokio::test]
async fn ctes_and_subqueries() {
    let server = TestServer::start();
    let c = server.connect().await;
    emp_dept(&c).await;

    check(
        &c,
        "WITH totals AS (SELECT dept_id, sum(salary) AS s FROM emp GROUP BY dept_id) \
         SELECT dept.name, totals.s FROM totals JOIN dept ON dept.id = totals.dept_id ORDER BY totals.s DESC",
        "eng|320
         sales|170",
    )
    .await;
    check(
        &c,
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT sum(n), count(*) FROM t",
        "55|10",
    )
    .await;
    check(
        &c,
        "WITH RECURSIVE chain(id, name, manager_id, depth) AS ( \
           SELECT id, name, manager_id, 0 FROM emp WHERE name = 'dave' \
           UNION ALL \
           SELECT e.id, e.name, e.manager_id, chain.depth + 1 FROM emp e JOIN chain ON e.id = chain.manager_id) \
         SELECT name, depth FROM chain ORDER BY depth",
        "dave|0
         carol|1
         alice|2",
    )
    .await;
    // Uncorrelated subqueries: IN, scalar.
    check(
        &c,
        "SELECT name FROM emp WHERE dept_id IN (SELECT id FROM dept WHERE name <> 'eng') ORDER BY name",
        "carol
         dave",
    )
    .await;
    check(
        &c,
        "SELECT name FROM emp WHERE salary > (SELECT avg(salary) FROM emp) ORDER BY name",
        "alice
         bob
         frank",
    )
    .await;
    check(&c, "SELECT (SELECT max(salary) FROM emp) - (SELECT min(salary) FROM emp)", "50").await;
    // Correlated subqueries: scalar in WHERE and in the select list, EXISTS, NOT EXISTS.
    check(
        &c,
        "SELECT e.name FROM emp e WHERE e.salary = (SELECT max(e2.salary) FROM emp e2 WHERE e2.dept_id = e.dept_id) \
         ORDER BY e.name",
        "alice
         carol",
    )
    .await;
    check(
        &c,
        "SELECT d.name, (SELECT count(*) FROM emp e WHERE e.dept_id = d.id) FROM dept d ORDER BY d.id",
        "eng|3
         sales|2
         ops|0",
    )
    .await;
    check(
        &c,
        "SELECT d.name FROM dept d WHERE EXISTS (SELECT 1 FROM emp e WHERE e.dept_id = d.id) ORDER BY d.name",
        "eng
         sales",
    )
    .await;
    check(&c, "SELECT d.name FROM dept d WHERE NOT EXISTS (SELECT 1 FROM emp e WHERE e.dept_id = d.id)", "ops").await;
    check(
        &c,
        "SELECT name FROM emp e WHERE salary > (SELECT avg(salary) FROM emp x WHERE x.dept_id = e.dept_id) ORDER BY name",
        "alice
         carol",
    )
    .await;
    // Subquery in FROM, and set operations.
    check(
        &c,
        "SELECT max(s) FROM (SELECT dept_id, sum(salary) AS s FROM emp GROUP BY dept_id) per_dept",
        "320",
    )
    .await;
    check(
        &c,
        "SELECT name FROM dept UNION SELECT name FROM emp WHERE id <= 2 ORDER BY 1",
        "alice
         bob
         eng
         ops
         sales",
    )
    .await;
    check(&c, "SELECT dept_id FROM emp EXCEPT SELECT id FROM dept ORDER BY 1", "NULL").await;
    check(&c, "SELECT id FROM dept INTERSECT SELECT dept_id FROM emp ORDER BY 1", "1\n2").await;
}

#[tokio::test]
async fn ordering_limits_distinct_case() {
    let server = TestServer::start();
    let c = server.connect().await;
    emp_dept(&c).await;

    check(
        &c,
        "SELECT name FROM emp ORDER BY salary DESC, id LIMIT 3 OFFSET 1",
        "bob
         frank
         carol",
    )
    .await;
    check(&c, "SELECT name FROM emp ORDER BY id LIMIT 2", "alice\nbob").await;
    check(&c, "SELECT name FROM emp ORDER BY id OFFSET 5", "frank").await;
    check(&c, "SELECT name FROM emp ORDER BY id LIMIT 0", "").await;
    check(&c, "SELECT name FROM emp ORDER BY name DESC LIMIT 2", "frank\nerin").await;
    check(
        &c,
        "SELECT DISTINCT salary FROM emp ORDER BY salary",
        "70
         80
         90
         100
         120",
    )
    .await;
    check(&c, "SELECT DISTINCT dept_id, salary >= 100 FROM emp WHERE dept_id = 1 ORDER BY 2", "1|t").await;
    check(
        &c,
        "SELECT name, CASE WHEN salary >= 100 THEN 'high' WHEN salary >= 80 THEN 'mid' ELSE 'low' END \
         FROM emp ORDER BY id",
        "alice|high
         bob|high
         carol|mid
         dave|mid
         erin|low
         frank|high",
    )
    .await;
    check(
        &c,
        "SELECT name, CASE dept_id WHEN 1 THEN 'eng' WHEN 2 THEN 'sales' END FROM emp ORDER BY id DESC LIMIT 2",
        "frank|eng
         erin|NULL",
    )
    .await;
    check(
        &c,
        "SELECT sum(CASE WHEN dept_id = 1 THEN salary ELSE 0 END), count(CASE WHEN salary < 100 THEN 1 END) FROM emp",
        "320|3",
    )
    .await;
    check(&c, "SELECT name FROM emp ORDER BY length(name) DESC, name LIMIT 2", "alice\ncarol").await;
    check(
        &c,
        "SELECT name FROM emp WHERE name LIKE '%a%' ORDER BY name",
        "alice
         carol
         dave
         frank",
    )
    .await;
    check(
        &c,
        "SELECT name FROM emp WHERE salary BETWEEN 80 AND 100 AND name NOT IN ('bob') ORDER BY name",
        "carol
         dave
         frank",
    )
    .await;
}

#[tokio::test]
async fn string_date_and_math_functions() {
    let server = TestServer::start();
    let c = server.connect().await;

    check(
        &c,
        "SELECT upper('abc'), lower('ABC'), length('hello'), substr('hello', 2, 3), substring('hello' FROM 2 FOR 2)",
        "ABC|abc|5|ell|el",
    )
    .await;
    check(
        &c,
        "SELECT concat('a', 1, NULL, 'b'), 'x' || 'y' || 'z', 'n=' || 42, replace('banana', 'a', 'o')",
        "a1b|xyz|n=42|bonono",
    )
    .await;
    check(
        &c,
        "SELECT trim('  pad  '), ltrim('xxa', 'x'), rtrim('a  '), '[' || btrim('  b  ') || ']'",
        "pad|a|a|[b]",
    )
    .await;
    check(
        &c,
        "SELECT position('n' IN 'banana'), left('hello', 2), right('hello', 3), reverse('abc'), repeat('ab', 3)",
        "3|he|llo|cba|ababab",
    )
    .await;
    check(&c, "SELECT lpad('7', 3, '0'), rpad('7', 3, '-'), split_part('a,b,c', ',', 2)", "007|7--|b").await;
    check(&c, "SELECT 'abc' LIKE 'a%', 'abc' LIKE 'b%', 'ABC' ILIKE 'a%', 'x' || NULL IS NULL", "t|f|t|t").await;
    check(&c, "SELECT length(''), '' = '', ''", "0|t|").await;

    check(&c, "SELECT date_trunc('month', TIMESTAMP '2024-03-15 10:30:00')", "2024-03-01 00:00:00").await;
    check(&c, "SELECT date_trunc('day', TIMESTAMP '2024-03-15 10:30:00')", "2024-03-15 00:00:00").await;
    check(
        &c,
        "SELECT extract(year FROM DATE '2024-03-15'), extract(month FROM DATE '2024-03-15'), \
         extract(day FROM TIMESTAMP '2024-03-15 10:30:00'), extract(hour FROM TIMESTAMP '2024-03-15 10:30:00'), \
         extract(dow FROM DATE '2024-03-15')",
        "2024|3|15|10|5",
    )
    .await;
    check(&c, "SELECT DATE '2024-03-15' + 10, DATE '2024-03-15' - DATE '2024-03-01'", "2024-03-25|14").await;
    check(
        &c,
        "SELECT DATE '2024-01-31' + INTERVAL '1 month', TIMESTAMP '2024-03-15 10:00:00' + INTERVAL '90 minutes'",
        "2024-02-29 00:00:00|2024-03-15 11:30:00",
    )
    .await;
    check(
        &c,
        "SELECT TIMESTAMP '2024-03-15 10:00:00' - INTERVAL '1 day', DATE '2024-03-01' - INTERVAL '1 day'",
        "2024-03-14 10:00:00|2024-02-29 00:00:00",
    )
    .await;
    check(&c, "SELECT DATE '2024-03-15' < DATE '2024-04-01', CAST('2024-02-29' AS DATE)", "t|2024-02-29").await;
    check(
        &c,
        "SELECT now() > TIMESTAMPTZ '2020-01-01 00:00:00+00', current_date >= DATE '2024-01-01', \
         now() - INTERVAL '1 hour' < now()",
        "t|t|t",
    )
    .await;

    check(
        &c,
        "SELECT abs(-5), abs(-2.5), round(2.567, 2), round(2.5), ceil(4.1), floor(4.9), ceil(-4.1), floor(-4.1)",
        "5|2.5|2.57|3|5|4|-4|-5",
    )
    .await;
    check(&c, "SELECT power(2, 10), sqrt(16), 2 ^ 3", "1024|4|8").await;
    check(&c, "SELECT 17 % 5, -17 % 5, mod(17, 5), 7 / 2, -7 / 2, 7.0 / 2 = 3.5", "2|-2|2|3|-3|t").await;
    check(&c, "SELECT 1 + 2 * 3, (1 + 2) * 3, 10 - 4 - 3, 2 * 3.5", "7|9|3|7.0").await;
    check(&c, "SELECT 9223372036854775807, -2147483648, 1.5::float8 * 2, 0.1::numeric + 0.2", "9223372036854775807|-2147483648|3|0.3").await;
    check(&c, "SELECT greatest(1, 5, 3), least(4, 2, 8), sign(-3)", "5|2|-1").await;
    check(&c, "SELECT CAST('42' AS INT) + 1, CAST(3.7 AS INT), '12'::bigint * 2, 10::text || 'x'", "43|4|24|10x").await;
}

#[tokio::test]
async fn null_semantics() {
    let server = TestServer::start();
    let c = server.connect().await;
    emp_dept(&c).await;

    check(&c, "SELECT NULL = NULL, NULL <> 1, NULL IS NULL, NULL IS NOT NULL, 1 IS DISTINCT FROM NULL", "NULL|NULL|t|f|t").await;
    check(&c, "SELECT NULL AND false, NULL AND true, NULL OR true, NULL OR false, NOT (NULL::boolean)", "f|NULL|t|NULL|NULL").await;
    check(&c, "SELECT coalesce(NULL, NULL, 3), coalesce(NULL, 'x'), nullif(1, 1), nullif(1, 2), NULL::int + 1", "3|x|NULL|1|NULL").await;
    check(&c, "SELECT count(*) FROM emp WHERE manager_id = NULL", "0").await;
    check(&c, "SELECT id FROM emp WHERE manager_id IS NULL", "1").await;
    check(&c, "SELECT count(dept_id), count(*), count(manager_id) FROM emp", "5|6|5").await;
    check(&c, "SELECT sum(salary), max(salary), count(*), count(salary) FROM emp WHERE false", "NULL|NULL|0|0").await;
    check(
        &c,
        "SELECT dept_id, count(*) FROM emp GROUP BY dept_id ORDER BY dept_id NULLS FIRST",
        "NULL|1
         1|3
         2|2",
    )
    .await;
    // PostgreSQL sorts NULL as larger than any value: last ascending, first descending.
    check(&c, "SELECT id FROM emp ORDER BY manager_id, id", "2\n3\n5\n6\n4\n1").await;
    check(&c, "SELECT id FROM emp ORDER BY manager_id DESC, id", "1\n4\n6\n2\n3\n5").await;
    // NOT IN over a set containing NULL is never true.
    check(&c, "SELECT count(*) FROM dept WHERE id NOT IN (SELECT dept_id FROM emp)", "0").await;
    check(&c, "SELECT count(*) FROM dept WHERE id NOT IN (SELECT dept_id FROM emp WHERE dept_id IS NOT NULL)", "1").await;
    check(&c, "SELECT 1 IN (1, NULL), 2 IN (1, NULL), 2 NOT IN (1, NULL)", "t|NULL|NULL").await;
    check(&c, "SELECT count(*) FROM emp a JOIN emp b ON a.dept_id = b.dept_id", "13").await;
    check(&c, "SELECT DISTINCT dept_id FROM emp ORDER BY dept_id", "1\n2\nNULL").await;
    check(&c, "SELECT avg(manager_id) IS NOT NULL, min(dept_id), max(dept_id) FROM emp", "t|1|2").await;
    check(&c, "SELECT CASE WHEN NULL THEN 'yes' ELSE 'no' END, CASE NULL WHEN NULL THEN 'eq' ELSE 'ne' END", "no|ne").await;
}

/// Prepared statements with parameters of every basic type, through the extended protocol
/// (binary results), and the values round-tripped through a table.
#[tokio::test]
async fn prepared_statements_round_trip_every_basic_type() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE typed (id INT PRIMARY KEY, a SMALLINT, b INT, c BIGINT, d REAL, e DOUBLE PRECISION, \
         f BOOLEAN, g TEXT, h BYTEA, i VARCHAR(20))",
    )
    .await;

    let insert = c
        .prepare("INSERT INTO typed (id, a, b, c, d, e, f, g, h, i) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .await
        .unwrap_or_else(|e| panic!("prepare insert: {}", describe(&e)));
    let params: Vec<Type> = insert.params().to_vec();
    assert_eq!(
        params[..9],
        [Type::INT4, Type::INT2, Type::INT4, Type::INT8, Type::FLOAT4, Type::FLOAT8, Type::BOOL, Type::TEXT, Type::BYTEA],
        "parameter types inferred from the target columns"
    );
    assert!(matches!(params[9], Type::VARCHAR | Type::TEXT), "varchar parameter: {:?}", params[9]);

    let text = "héllo, 'world' \"quoted\" 世界";
    let bytes: Vec<u8> = vec![0, 1, 2, 255, 0, b'\'', b'\\'];
    let n = c
        .execute(
            &insert,
            &[&1i32, &i16::MIN, &i32::MAX, &i64::MIN, &1.5f32, &3.141592653589793f64, &true, &text, &bytes, &"varchar"],
        )
        .await
        .unwrap_or_else(|e| panic!("insert row 1: {}", describe(&e)));
    assert_eq!(n, 1);
    let none = (None::<i16>, None::<i32>, None::<i64>, None::<f32>, None::<f64>, None::<bool>, None::<&str>, None::<Vec<u8>>, None::<String>);
    c.execute(&insert, &[&2i32, &none.0, &none.1, &none.2, &none.3, &none.4, &none.5, &none.6, &none.7, &none.8])
        .await
        .unwrap_or_else(|e| panic!("insert row 2 (NULLs): {}", describe(&e)));
    c.execute(
        &insert,
        &[&3i32, &0i16, &-7i32, &i64::MAX, &-0.25f32, &-1e300f64, &false, &"", &Vec::<u8>::new(), &String::new()],
    )
    .await
    .unwrap_or_else(|e| panic!("insert row 3: {}", describe(&e)));

    let select = c
        .prepare("SELECT id, a, b, c, d, e, f, g, h, i FROM typed ORDER BY id")
        .await
        .unwrap_or_else(|e| panic!("prepare select: {}", describe(&e)));
    let column_types: Vec<Type> = select.columns().iter().map(|col| col.type_().clone()).collect();
    assert_eq!(
        column_types[..9],
        [Type::INT4, Type::INT2, Type::INT4, Type::INT8, Type::FLOAT4, Type::FLOAT8, Type::BOOL, Type::TEXT, Type::BYTEA],
        "result column types"
    );
    let rows = c.query(&select, &[]).await.unwrap_or_else(|e| panic!("select: {}", describe(&e)));
    assert_eq!(rows.len(), 3);

    type Tuple = (i32, Option<i16>, Option<i32>, Option<i64>, Option<f32>, Option<f64>, Option<bool>, Option<String>, Option<Vec<u8>>, Option<String>);
    let got: Vec<Tuple> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8), r.get(9)))
        .collect();
    assert_eq!(
        got[0],
        (1, Some(i16::MIN), Some(i32::MAX), Some(i64::MIN), Some(1.5), Some(3.141592653589793), Some(true), Some(text.to_string()), Some(bytes.clone()), Some("varchar".to_string()))
    );
    assert_eq!(got[1], (2, None, None, None, None, None, None, None, None, None));
    assert_eq!(
        got[2],
        (3, Some(0), Some(-7), Some(i64::MAX), Some(-0.25), Some(-1e300), Some(false), Some(String::new()), Some(Vec::new()), Some(String::new()))
    );

    // The same values in PostgreSQL's text format.
    check(
        &c,
        "SELECT id, a, b, c, d, e, f, h FROM typed ORDER BY id",
        r"1|-32768|2147483647|-9223372036854775808|1.5|3.141592653589793|t|\x000102ff00275c
          2|NULL|NULL|NULL|NULL|NULL|NULL|NULL
          3|0|-7|9223372036854775807|-0.25|-1e+300|f|\x",
    )
    .await;
    check(&c, "SELECT count(*) FROM typed WHERE g = '' AND i = ''", "1").await;

    // Parameters in WHERE, one per type, each finding its row.
    let by = |sql: &'static str| sql;
    let cases: [(&str, Box<dyn tokio_postgres::types::ToSql + Sync + Send>); 9] = [
        (by("SELECT id FROM typed WHERE a = $1"), Box::new(i16::MIN)),
        (by("SELECT id FROM typed WHERE b = $1"), Box::new(-7i32)),
        (by("SELECT id FROM typed WHERE c = $1"), Box::new(i64::MIN)),
        (by("SELECT id FROM typed WHERE d = $1"), Box::new(-0.25f32)),
        (by("SELECT id FROM typed WHERE e = $1"), Box::new(3.141592653589793f64)),
        (by("SELECT id FROM typed WHERE f = $1"), Box::new(false)),
        (by("SELECT id FROM typed WHERE g = $1"), Box::new(text.to_string())),
        (by("SELECT id FROM typed WHERE h = $1"), Box::new(bytes.clone())),
        (by("SELECT id FROM typed WHERE i = $1"), Box::new("varchar".to_string())),
    ];
    let expected_ids = [1, 3, 1, 3, 1, 3, 1, 1, 1];
    for ((sql, param), want) in cases.iter().zip(expected_ids) {
        let rows = c
            .query(*sql, &[param.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync)])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
        let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(ids, [want], "{sql}");
    }

    // A NULL parameter matches nothing with `=`, and IS NULL finds the NULL row.
    let rows = c.query("SELECT id FROM typed WHERE b = $1", &[&None::<i32>]).await.expect("NULL parameter");
    assert!(rows.is_empty(), "b = NULL matched {} rows", rows.len());
    let rows = c.query("SELECT id FROM typed WHERE b IS NULL", &[]).await.expect("IS NULL");
    assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(), [2]);

    // One prepared statement executed many times; parameters in expressions.
    let lookup = c.prepare("SELECT g FROM typed WHERE id = $1").await.expect("prepare lookup");
    for (id, want) in [(1, Some(text.to_string())), (2, None), (3, Some(String::new()))] {
        let row = c.query_one(&lookup, &[&id]).await.unwrap_or_else(|e| panic!("lookup {id}: {}", describe(&e)));
        assert_eq!(row.get::<_, Option<String>>(0), want, "g of row {id}");
    }
    let row = c
        .query_one("SELECT $1::int8 + 1, $2::text || '!', NOT $3::bool, $4::float8 * 2, $5::int4 * 2", &[&41i64, &"hi", &false, &1.25f64, &21i32])
        .await
        .unwrap_or_else(|e| panic!("parameters in expressions: {}", describe(&e)));
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, String>(1), row.get::<_, bool>(2), row.get::<_, f64>(3), row.get::<_, i32>(4)),
        (42, "hi!".to_string(), true, 2.5, 42)
    );
    let n = c
        .execute("UPDATE typed SET g = $1, a = $2 WHERE id = $3", &[&"changed", &Some(5i16), &2i32])
        .await
        .unwrap_or_else(|e| panic!("parameterized update: {}", describe(&e)));
    assert_eq!(n, 1);
    check(&c, "SELECT a, g FROM typed WHERE id = 2", "5|changed").await;
    let n = c.execute("DELETE FROM typed WHERE id = $1", &[&3i32]).await.expect("parameterized delete");
    assert_eq!(n, 1);
    check(&c, "SELECT count(*) FROM typed", "2").await;
}

#[tokio::test]
async fn insert_update_delete_upsert_returning() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT NOT NULL)").await;
    exec_count(&c, "INSERT INTO kv VALUES (1, 'one'), (2, 'two'), (3, 'three')", 3).await;

    // ON CONFLICT DO NOTHING / DO UPDATE.
    exec_count(&c, "INSERT INTO kv VALUES (1, 'uno') ON CONFLICT DO NOTHING", 0).await;
    exec_count(&c, "INSERT INTO kv VALUES (1, 'uno'), (4, 'four') ON CONFLICT (k) DO NOTHING", 1).await;
    check(&c, "SELECT v FROM kv WHERE k = 1", "one").await;
    exec_count(&c, "INSERT INTO kv VALUES (1, 'uno') ON CONFLICT (k) DO UPDATE SET v = kv.v || '/' || EXCLUDED.v", 1).await;
    exec_count(&c, "INSERT INTO kv VALUES (2, 'dos'), (5, 'five') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", 2).await;
    check(
        &c,
        "SELECT k, v FROM kv ORDER BY k",
        "1|one/uno
         2|dos
         3|three
         4|four
         5|five",
    )
    .await;

    // RETURNING.
    check(&c, "INSERT INTO kv VALUES (10, 'ten') RETURNING k, v, k * 2", "10|ten|20").await;
    check_unordered(
        &c,
        "UPDATE kv SET v = v || '!' WHERE k >= 4 RETURNING k, v",
        "4|four!
         5|five!
         10|ten!",
    )
    .await;
    check(&c, "DELETE FROM kv WHERE k = 10 RETURNING *", "10|ten!").await;
    check(&c, "DELETE FROM kv WHERE k = 999 RETURNING k", "").await;
    check(
        &c,
        "INSERT INTO kv VALUES (5, 'x') ON CONFLICT (k) DO UPDATE SET v = 'five again' RETURNING k, v",
        "5|five again",
    )
    .await;

    // INSERT ... SELECT.
    exec(&c, "CREATE TABLE kv_copy (k INT PRIMARY KEY, v TEXT)").await;
    exec_count(&c, "INSERT INTO kv_copy SELECT k, upper(v) FROM kv WHERE k > 2", 3).await;
    exec_count(&c, "INSERT INTO kv_copy (k) SELECT k + 100 FROM kv", 5).await;
    check(&c, "SELECT count(*), count(v), min(k), max(k) FROM kv_copy", "8|3|3|105").await;
    check(&c, "SELECT v FROM kv_copy WHERE k = 3", "THREE").await;

    // UPDATE/DELETE with expressions, subqueries and no matching rows.
    exec_count(&c, "UPDATE kv SET v = v || '?' WHERE k IN (SELECT k FROM kv_copy WHERE v IS NOT NULL)", 3).await;
    exec_count(&c, "UPDATE kv SET v = 'none' WHERE k > 1000", 0).await;
    exec_count(&c, "UPDATE kv SET k = k + 100 WHERE k = 1", 1).await;
    check(&c, "SELECT k, v FROM kv WHERE k IN (1, 101)", "101|one/uno").await;
    exec_count(&c, "DELETE FROM kv WHERE v LIKE '%?'", 3).await;
    exec_count(&c, "DELETE FROM kv_copy", 8).await;
    check(&c, "SELECT k FROM kv ORDER BY k", "2\n101").await;
}

#[tokio::test]
async fn constraints_and_defaults() {
    let server = TestServer::start();
    let c = server.connect().await;

    // PRIMARY KEY, UNIQUE constraint and unique index: 23505, and the failed statement leaves
    // nothing behind (statement atomicity).
    exec(&c, "CREATE TABLE users (id INT PRIMARY KEY, email TEXT UNIQUE, name TEXT NOT NULL)").await;
    exec_count(&c, "INSERT INTO users VALUES (1, 'a@x', 'ann'), (2, 'b@x', 'ben')", 2).await;
    expect_error(&c, "INSERT INTO users VALUES (1, 'c@x', 'cat')", &SqlState::UNIQUE_VIOLATION).await;
    expect_error(&c, "INSERT INTO users VALUES (3, 'a@x', 'cat')", &SqlState::UNIQUE_VIOLATION).await;
    expect_error(&c, "INSERT INTO users VALUES (4, 'd@x', 'dan'), (2, 'e@x', 'eve')", &SqlState::UNIQUE_VIOLATION).await;
    expect_error(&c, "UPDATE users SET email = 'a@x' WHERE id = 2", &SqlState::UNIQUE_VIOLATION).await;
    check(&c, "SELECT id, email FROM users ORDER BY id", "1|a@x\n2|b@x").await;
    // NULLs never collide in a unique column.
    exec_count(&c, "INSERT INTO users VALUES (5, NULL, 'nul'), (6, NULL, 'nil')", 2).await;
    // The key is free again once its row is deleted.
    exec_count(&c, "DELETE FROM users WHERE id = 1", 1).await;
    exec_count(&c, "INSERT INTO users VALUES (1, 'a@x', 'ann again')", 1).await;

    exec(&c, "CREATE TABLE items (id INT PRIMARY KEY, sku TEXT NOT NULL)").await;
    exec(&c, "CREATE UNIQUE INDEX items_sku ON items (sku)").await;
    exec_count(&c, "INSERT INTO items VALUES (1, 'A-1'), (2, 'B-2')", 2).await;
    expect_error(&c, "INSERT INTO items VALUES (3, 'A-1')", &SqlState::UNIQUE_VIOLATION).await;
    expect_error(&c, "UPDATE items SET sku = 'B-2' WHERE id = 1", &SqlState::UNIQUE_VIOLATION).await;
    exec_count(&c, "UPDATE items SET sku = 'C-3' WHERE id = 1", 1).await;
    exec_count(&c, "INSERT INTO items VALUES (3, 'A-1')", 1).await;
    check(&c, "SELECT id FROM items WHERE sku = 'A-1'", "3").await;
    check(&c, "SELECT count(*) FROM items", "3").await;

    // CHECK: 23514 on insert and update; NULL passes a CHECK.
    exec(
        &c,
        "CREATE TABLE stock (id INT PRIMARY KEY, qty INT NOT NULL CHECK (qty >= 0), price NUMERIC(8,2) CHECK (price > 0))",
    )
    .await;
    exec_count(&c, "INSERT INTO stock VALUES (1, 10, 9.99), (2, 0, NULL)", 2).await;
    expect_error(&c, "INSERT INTO stock VALUES (3, -1, 1.00)", &SqlState::CHECK_VIOLATION).await;
    expect_error(&c, "INSERT INTO stock VALUES (3, 1, 0)", &SqlState::CHECK_VIOLATION).await;
    expect_error(&c, "UPDATE stock SET qty = qty - 11 WHERE id = 1", &SqlState::CHECK_VIOLATION).await;
    check(&c, "SELECT id, qty, price FROM stock ORDER BY id", "1|10|9.99\n2|0|NULL").await;

    // NOT NULL: 23502, also when the column is left out.
    expect_error(&c, "INSERT INTO stock VALUES (4, NULL, 1.00)", &SqlState::NOT_NULL_VIOLATION).await;
    expect_error(&c, "INSERT INTO stock (id, price) VALUES (4, 1.00)", &SqlState::NOT_NULL_VIOLATION).await;
    expect_error(&c, "UPDATE stock SET qty = NULL WHERE id = 2", &SqlState::NOT_NULL_VIOLATION).await;

    // DEFAULT values: omitted columns, the DEFAULT keyword, explicit NULL overriding a default.
    exec(
        &c,
        "CREATE TABLE defs (id INT PRIMARY KEY, status TEXT DEFAULT 'new', n INT DEFAULT 42, \
         created TIMESTAMPTZ DEFAULT now(), flag BOOLEAN DEFAULT false)",
    )
    .await;
    exec_count(&c, "INSERT INTO defs (id) VALUES (1)", 1).await;
    exec_count(&c, "INSERT INTO defs (id, status) VALUES (2, 'done')", 1).await;
    exec_count(&c, "INSERT INTO defs VALUES (3, DEFAULT, 7)", 1).await;
    exec_count(&c, "INSERT INTO defs (id, n) VALUES (4, NULL)", 1).await;
    check(
        &c,
        "SELECT id, status, n, created IS NOT NULL, flag FROM defs ORDER BY id",
        "1|new|42|t|f
         2|done|42|t|f
         3|new|7|t|f
         4|new|NULL|t|f",
    )
    .await;
    let first = query_value(&c, "SELECT created FROM defs WHERE id = 1").await;
    assert!(first.starts_with("20"), "created timestamp looks wrong: {first}");
}
