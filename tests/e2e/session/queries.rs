//! Read queries over a small employees/departments schema: joins, GROUP BY/HAVING, window
//! functions, CTEs (recursive too), correlated and uncorrelated subqueries, ORDER BY/LIMIT/OFFSET,
//! DISTINCT, CASE, string/date/math functions and NULL semantics.

use tokio_postgres::Client;

use crate::harness::TestServer;
use crate::sql::{check, exec, exec_count};

async fn emp_dept(c: &Client) {
    exec(
        c,
        "CREATE TABLE dept (id INT PRIMARY KEY, name TEXT NOT NULL)",
    )
    .await;
    exec(
        c,
        "CREATE TABLE emp (id INT PRIMARY KEY, name TEXT NOT NULL, dept_id INT, salary INT, manager_id INT)",
    )
    .await;
    exec_count(
        c,
        "INSERT INTO dept VALUES (1, 'eng'), (2, 'sales'), (3, 'ops')",
        3,
    )
    .await;
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
    check(
        &c,
        "SELECT avg(salary) > 93.33 AND avg(salary) < 93.34 FROM emp",
        "t",
    )
    .await;
    check(
        &c,
        "SELECT count(*), count(DISTINCT salary), sum(DISTINCT salary) FROM emp",
        "6|5|460",
    )
    .await;
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
    check(
        &c,
        "SELECT (SELECT max(salary) FROM emp) - (SELECT min(salary) FROM emp)",
        "50",
    )
    .await;
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
    check(
        &c,
        "SELECT d.name FROM dept d WHERE NOT EXISTS (SELECT 1 FROM emp e WHERE e.dept_id = d.id)",
        "ops",
    )
    .await;
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
    check(
        &c,
        "SELECT dept_id FROM emp EXCEPT SELECT id FROM dept ORDER BY 1",
        "NULL",
    )
    .await;
    check(
        &c,
        "SELECT id FROM dept INTERSECT SELECT dept_id FROM emp ORDER BY 1",
        "1\n2",
    )
    .await;
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
    check(
        &c,
        "SELECT name FROM emp ORDER BY name DESC LIMIT 2",
        "frank\nerin",
    )
    .await;
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
    check(
        &c,
        "SELECT DISTINCT dept_id, salary >= 100 FROM emp WHERE dept_id = 1 ORDER BY 2",
        "1|t",
    )
    .await;
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
    check(
        &c,
        "SELECT name FROM emp ORDER BY length(name) DESC, name LIMIT 2",
        "alice\ncarol",
    )
    .await;
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
    check(
        &c,
        "SELECT lpad('7', 3, '0'), rpad('7', 3, '-'), split_part('a,b,c', ',', 2)",
        "007|7--|b",
    )
    .await;
    check(
        &c,
        "SELECT 'abc' LIKE 'a%', 'abc' LIKE 'b%', 'ABC' ILIKE 'a%', 'x' || NULL IS NULL",
        "t|f|t|t",
    )
    .await;
    check(&c, "SELECT length(''), '' = '', ''", "0|t|").await;

    check(
        &c,
        "SELECT date_trunc('month', TIMESTAMP '2024-03-15 10:30:00')",
        "2024-03-01 00:00:00",
    )
    .await;
    check(
        &c,
        "SELECT date_trunc('day', TIMESTAMP '2024-03-15 10:30:00')",
        "2024-03-15 00:00:00",
    )
    .await;
    check(
        &c,
        "SELECT extract(year FROM DATE '2024-03-15'), extract(month FROM DATE '2024-03-15'), \
         extract(day FROM TIMESTAMP '2024-03-15 10:30:00'), extract(hour FROM TIMESTAMP '2024-03-15 10:30:00'), \
         extract(dow FROM DATE '2024-03-15')",
        "2024|3|15|10|5",
    )
    .await;
    check(
        &c,
        "SELECT DATE '2024-03-15' + 10, DATE '2024-03-15' - DATE '2024-03-01'",
        "2024-03-25|14",
    )
    .await;
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
    check(
        &c,
        "SELECT DATE '2024-03-15' < DATE '2024-04-01', CAST('2024-02-29' AS DATE)",
        "t|2024-02-29",
    )
    .await;
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
    check(
        &c,
        "SELECT 17 % 5, -17 % 5, mod(17, 5), 7 / 2, -7 / 2, 7.0 / 2 = 3.5",
        "2|-2|2|3|-3|t",
    )
    .await;
    check(
        &c,
        "SELECT 1 + 2 * 3, (1 + 2) * 3, 10 - 4 - 3, 2 * 3.5",
        "7|9|3|7.0",
    )
    .await;
    check(
        &c,
        "SELECT 9223372036854775807, -2147483648, 1.5::float8 * 2, 0.1::numeric + 0.2",
        "9223372036854775807|-2147483648|3|0.3",
    )
    .await;
    check(
        &c,
        "SELECT greatest(1, 5, 3), least(4, 2, 8), sign(-3)",
        "5|2|-1",
    )
    .await;
    check(
        &c,
        "SELECT CAST('42' AS INT) + 1, CAST(3.7 AS INT), '12'::bigint * 2, 10::text || 'x'",
        "43|4|24|10x",
    )
    .await;
}

#[tokio::test]
async fn null_semantics() {
    let server = TestServer::start();
    let c = server.connect().await;
    emp_dept(&c).await;

    check(
        &c,
        "SELECT NULL = NULL, NULL <> 1, NULL IS NULL, NULL IS NOT NULL, 1 IS DISTINCT FROM NULL",
        "NULL|NULL|t|f|t",
    )
    .await;
    check(
        &c,
        "SELECT NULL AND false, NULL AND true, NULL OR true, NULL OR false, NOT (NULL::boolean)",
        "f|NULL|t|NULL|NULL",
    )
    .await;
    check(&c, "SELECT coalesce(NULL, NULL, 3), coalesce(NULL, 'x'), nullif(1, 1), nullif(1, 2), NULL::int + 1", "3|x|NULL|1|NULL").await;
    check(&c, "SELECT count(*) FROM emp WHERE manager_id = NULL", "0").await;
    check(&c, "SELECT id FROM emp WHERE manager_id IS NULL", "1").await;
    check(
        &c,
        "SELECT count(dept_id), count(*), count(manager_id) FROM emp",
        "5|6|5",
    )
    .await;
    check(
        &c,
        "SELECT sum(salary), max(salary), count(*), count(salary) FROM emp WHERE false",
        "NULL|NULL|0|0",
    )
    .await;
    check(
        &c,
        "SELECT dept_id, count(*) FROM emp GROUP BY dept_id ORDER BY dept_id NULLS FIRST",
        "NULL|1
         1|3
         2|2",
    )
    .await;
    // PostgreSQL sorts NULL as larger than any value: last ascending, first descending.
    check(
        &c,
        "SELECT id FROM emp ORDER BY manager_id, id",
        "2\n3\n5\n6\n4\n1",
    )
    .await;
    check(
        &c,
        "SELECT id FROM emp ORDER BY manager_id DESC, id",
        "1\n4\n6\n2\n3\n5",
    )
    .await;
    // NOT IN over a set containing NULL is never true.
    check(
        &c,
        "SELECT count(*) FROM dept WHERE id NOT IN (SELECT dept_id FROM emp)",
        "0",
    )
    .await;
    check(&c, "SELECT count(*) FROM dept WHERE id NOT IN (SELECT dept_id FROM emp WHERE dept_id IS NOT NULL)", "1").await;
    check(
        &c,
        "SELECT 1 IN (1, NULL), 2 IN (1, NULL), 2 NOT IN (1, NULL)",
        "t|NULL|NULL",
    )
    .await;
    check(
        &c,
        "SELECT count(*) FROM emp a JOIN emp b ON a.dept_id = b.dept_id",
        "13",
    )
    .await;
    check(
        &c,
        "SELECT DISTINCT dept_id FROM emp ORDER BY dept_id",
        "1\n2\nNULL",
    )
    .await;
    check(
        &c,
        "SELECT avg(manager_id) IS NOT NULL, min(dept_id), max(dept_id) FROM emp",
        "t|1|2",
    )
    .await;
    check(&c, "SELECT CASE WHEN NULL THEN 'yes' ELSE 'no' END, CASE NULL WHEN NULL THEN 'eq' ELSE 'ne' END", "no|ne").await;
}

/// Forms PostgreSQL reads that DataFusion alone does not: a set-returning function's alias
/// naming its column, times without seconds and `epoch`.
#[tokio::test]
async fn postgres_input_forms_and_column_names() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "SET TimeZone = 'UTC'").await;
    check(&c, "SELECT g FROM generate_series(1, 3) g", "1\n2\n3").await;
    check(&c, "SELECT s.s * 2 FROM generate_series(1, 2) AS s", "2\n4").await;
    check(&c, "SELECT \"G\" FROM generate_series(5, 5) AS \"G\"", "5").await;
    check(
        &c,
        "SELECT '2024-01-01 10:00'::timestamp, TIMESTAMP '2024-05-06 07:08'",
        "2024-01-01 10:00:00|2024-05-06 07:08:00",
    )
    .await;
    check(
        &c,
        "SELECT '2024-01-01 10:00+02'::timestamptz, 'epoch'::timestamp, 'epoch'::timestamptz",
        "2024-01-01 08:00:00+00|1970-01-01 00:00:00|1970-01-01 00:00:00+00",
    )
    .await;
    exec(&c, "CREATE TABLE ev (at TIMESTAMP, at_tz TIMESTAMPTZ)").await;
    exec_count(
        &c,
        "INSERT INTO ev VALUES ('2024-01-01 10:00', '2024-01-01 10:00-01')",
        1,
    )
    .await;
    check(
        &c,
        "SELECT at, at_tz FROM ev",
        "2024-01-01 10:00:00|2024-01-01 11:00:00+00",
    )
    .await;
}
