//! The real `psql` binary (Debian `postgresql-client`) against ThunderDB: the issue's session as
//! a user types it, psql's catalog commands (`\dt`, `\d table`), a tour of the SQL surface with
//! PREPARE/EXECUTE, and errors. Skipped with a message when psql is not installed
//! (`scripts/test` installs it).

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};

use crate::harness::{DATABASE, PASSWORD, TestServer, USER};

struct PsqlRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn psql_available() -> bool {
    let found = Command::new("psql")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        println!("SKIPPED psql tests: psql not found");
        eprintln!("SKIPPED psql tests: psql not found");
    }
    found
}

/// `postgresql://thunder@HOST:PORT/thunderdb`; the password comes from PGPASSWORD.
fn url(server: &TestServer, user: &str) -> String {
    let host = if server.host().contains(':') {
        format!("[{}]", server.host())
    } else {
        server.host().to_string()
    };
    format!("postgresql://{user}@{host}:{}/{DATABASE}", server.port())
}

/// Runs psql the way a user does (default sslmode, so it starts with an SSLRequest) with
/// `-X` (no ~/.psqlrc), feeding `script` on stdin.
fn psql_as(
    server: &TestServer,
    user: &str,
    password: &str,
    args: &[&str],
    script: &str,
) -> PsqlRun {
    let mut child = Command::new("psql")
        .arg(url(server, user))
        .arg("-X")
        .args(args)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("PGSSLMODE")
        .env_remove("PGOPTIONS")
        .env_remove("PSQLRC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn psql");
    let mut stdin = child.stdin.take().expect("psql stdin is piped");
    let script = script.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(script.as_bytes());
    });
    let output = child.wait_with_output().expect("wait for psql");
    let _ = writer.join();
    PsqlRun {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn psql(server: &TestServer, args: &[&str], script: &str) -> PsqlRun {
    psql_as(server, USER, PASSWORD, args, script)
}

fn expect_success(run: &PsqlRun, what: &str) {
    assert!(
        run.status.success(),
        "{what}: psql exited with {}\n---- stdout ----\n{}\n---- stderr ----\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

const ISSUE_SESSION: &str = "\
CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, total NUMERIC(10,2), note TEXT, created_at TIMESTAMPTZ DEFAULT now());
CREATE INDEX orders_customer ON orders (customer_id);
INSERT INTO orders (id, customer_id, total) VALUES (1, 1001, 149.97), (2, 1002, 20.00), (3, 1001, 5.50);
UPDATE orders SET total = total + 1 WHERE id = 2;
DELETE FROM orders WHERE id = 3;
SELECT customer_id, sum(total), count(*) FROM orders GROUP BY 1 ORDER BY 1;
BEGIN; INSERT INTO orders (id, customer_id) VALUES (9, 1); ROLLBACK;
SELECT id, customer_id, total, note FROM orders ORDER BY id;
INSERT INTO orders (id, customer_id) VALUES (10, 7) RETURNING id;
UPDATE orders SET note = 'x' WHERE id = 10 RETURNING note;
DELETE FROM orders WHERE id = 10 RETURNING id, note;
";

/// What stock PostgreSQL 15's psql prints for [`ISSUE_SESSION`] with `-A` (unaligned).
const ISSUE_SESSION_OUTPUT: &str = "\
CREATE TABLE
CREATE INDEX
INSERT 0 3
UPDATE 1
DELETE 1
customer_id|sum|count
1001|149.97|1
1002|21.00|1
(2 rows)
BEGIN
INSERT 0 1
ROLLBACK
id|customer_id|total|note
1|1001|149.97|
2|1002|21.00|
(2 rows)
id
10
(1 row)
INSERT 0 1
note
x
(1 row)
UPDATE 1
id|note
10|x
(1 row)
DELETE 1
";

/// The issue's session through psql, then a SIGKILL and a restart: the transcript is exactly
/// what PostgreSQL prints (command tags, headers, values), and the committed rows come back.
#[test]
fn psql_issue_session() {
    if !psql_available() {
        return;
    }
    let mut server = TestServer::start();
    let run = psql(
        &server,
        &["-v", "ON_ERROR_STOP=1", "-A", "-f", "-"],
        ISSUE_SESSION,
    );
    expect_success(&run, "the issue's session");
    let actual: Vec<&str> = run.stdout.lines().collect();
    let expected: Vec<&str> = ISSUE_SESSION_OUTPUT.lines().collect();
    assert!(
        actual == expected,
        "psql transcript differs from PostgreSQL's\n---- expected ----\n{}\n---- actual ----\n{}\n---- stderr ----\n{}",
        ISSUE_SESSION_OUTPUT,
        run.stdout,
        run.stderr
    );

    server.kill9();
    server.restart_same_dir();
    let run = psql(
        &server,
        &["-v", "ON_ERROR_STOP=1", "-A", "-t"],
        "SELECT id, customer_id, total FROM orders ORDER BY id;\nSELECT count(*) FROM orders WHERE created_at IS NOT NULL;\n",
    );
    expect_success(&run, "reading the orders after SIGKILL and restart");
    assert_eq!(
        run.stdout, "1|1001|149.97\n2|1002|21.00\n2\n",
        "orders after SIGKILL and restart"
    );
}

/// The cells of psql's aligned table output, one trimmed vector per line.
fn cells(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .map(|line| line.split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

/// psql's catalog meta-commands read the real catalog: `\dt` lists the table, `\d orders` shows
/// its columns with PostgreSQL's type names, nullability, default, indexes and CHECK
/// constraint, `\di` the indexes, `\dn`, `\l` and `\du` the schema, database and role.
#[test]
fn psql_describe_commands() {
    if !psql_available() {
        return;
    }
    let server = TestServer::start();
    let run = psql(
        &server,
        &["-v", "ON_ERROR_STOP=1", "-q", "-f", "-"],
        // The issue's table, with the CHECK constraint PostgreSQL would name orders_total_check.
        &ISSUE_SESSION[..ISSUE_SESSION.find("INSERT").expect("INSERT")].replace(
            "DEFAULT now())",
            "DEFAULT now(), CONSTRAINT orders_total_check CHECK (total >= 0))",
        ),
    );
    expect_success(&run, "creating orders");

    let run = psql(&server, &["-v", "ON_ERROR_STOP=1"], "\\dt\n");
    expect_success(&run, "\\dt");
    let rows = cells(&run.stdout);
    assert!(
        rows.iter()
            .any(|r| r.len() >= 4 && r[0] == "public" && r[1] == "orders" && r[2] == "table"),
        "\\dt does not list table orders:\n{}\n{}",
        run.stdout,
        run.stderr
    );

    let run = psql(&server, &["-v", "ON_ERROR_STOP=1"], "\\d orders\n");
    expect_success(&run, "\\d orders");
    assert!(
        run.stdout.contains("Table \"public.orders\""),
        "\\d orders title:\n{}",
        run.stdout
    );
    let rows = cells(&run.stdout);
    let column = |name: &str| rows.iter().find(|r| r.len() >= 5 && r[0] == name).cloned();
    for (name, sql_type, nullable, default) in [
        ("id", "bigint", "not null", ""),
        ("customer_id", "bigint", "not null", ""),
        ("total", "numeric(10,2)", "", ""),
        ("note", "text", "", ""),
        ("created_at", "timestamp with time zone", "", "now()"),
    ] {
        let Some(row) = column(name) else {
            panic!(
                "\\d orders has no column {name}:\n{}\n{}",
                run.stdout, run.stderr
            );
        };
        assert_eq!(
            row[1], sql_type,
            "type of {name} in \\d orders:\n{}",
            run.stdout
        );
        assert_eq!(
            row[3], nullable,
            "nullability of {name} in \\d orders:\n{}",
            run.stdout
        );
        assert_eq!(
            row[4], default,
            "default of {name} in \\d orders:\n{}",
            run.stdout
        );
    }
    let footer: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Indexes:"))
        .map(str::trim_end)
        .collect();
    assert_eq!(
        footer,
        vec![
            "Indexes:",
            "    \"orders_pkey\" PRIMARY KEY, btree (id)",
            "    \"orders_customer\" btree (customer_id)",
            "Check constraints:",
            "    \"orders_total_check\" CHECK (total >= 0)",
            "",
        ],
        "\\d orders footer:\n{}",
        run.stdout
    );

    let run = psql(&server, &["-v", "ON_ERROR_STOP=1", "-A", "-t"], "\\di\n");
    expect_success(&run, "\\di");
    assert_eq!(
        run.stdout,
        format!(
            "public|orders_customer|index|{USER}|orders\npublic|orders_pkey|index|{USER}|orders\n"
        ),
        "\\di"
    );

    let run = psql(
        &server,
        &["-v", "ON_ERROR_STOP=1", "-A", "-t"],
        "\\dn\n\\l\n\\du\nSELECT version();\n",
    );
    expect_success(&run, "\\dn, \\l, \\du");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0], "public|pg_database_owner",
        "\\dn:\n{}",
        run.stdout
    );
    assert!(
        lines[1].starts_with(&format!("{DATABASE}|{USER}|UTF8|")),
        "\\l:\n{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with(&format!("{USER}|Superuser")),
        "\\du:\n{}",
        run.stdout
    );
    assert!(
        lines[3].starts_with("PostgreSQL 15"),
        "version():\n{}",
        run.stdout
    );
}

/// (sql, expected `-A -t` output with NULL shown as `NULL`) — the SQL surface through psql.
/// Every expected value is what PostgreSQL 15 prints.
const SURFACE: &[(&str, &str)] = &[
    (
        "SELECT e.name, d.name FROM emp e JOIN dept d ON e.dept_id = d.id ORDER BY e.id",
        "alice|eng\nbob|eng\ncarol|sales\ndave|sales\nfrank|eng",
    ),
    (
        "SELECT e.name, d.name FROM emp e LEFT JOIN dept d ON e.dept_id = d.id WHERE d.id IS NULL",
        "erin|NULL",
    ),
    (
        "SELECT e.name, d.name FROM emp e FULL JOIN dept d ON e.dept_id = d.id WHERE e.id IS NULL OR d.id IS NULL ORDER BY 1, 2",
        "erin|NULL\nNULL|ops",
    ),
    (
        "SELECT dept_id, count(*), sum(salary) FROM emp GROUP BY dept_id HAVING count(*) > 1 ORDER BY dept_id",
        "1|3|320\n2|2|170",
    ),
    (
        "SELECT name, row_number() OVER (PARTITION BY dept_id ORDER BY salary DESC, id), sum(salary) OVER (PARTITION BY dept_id) FROM emp WHERE dept_id = 1 ORDER BY 2",
        "alice|1|320\nbob|2|320\nfrank|3|320",
    ),
    (
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT sum(n) FROM t",
        "55",
    ),
    (
        "WITH s AS (SELECT dept_id, sum(salary) AS total FROM emp GROUP BY dept_id) SELECT max(total) FROM s",
        "320",
    ),
    (
        "SELECT name FROM emp WHERE salary > (SELECT avg(salary) FROM emp) ORDER BY name",
        "alice\nbob\nfrank",
    ),
    (
        "SELECT d.name FROM dept d WHERE NOT EXISTS (SELECT 1 FROM emp e WHERE e.dept_id = d.id)",
        "ops",
    ),
    (
        "SELECT d.name, (SELECT count(*) FROM emp e WHERE e.dept_id = d.id) FROM dept d ORDER BY d.id",
        "eng|3\nsales|2\nops|0",
    ),
    (
        "SELECT name FROM emp WHERE dept_id IN (SELECT id FROM dept WHERE name = 'sales') ORDER BY name",
        "carol\ndave",
    ),
    (
        "SELECT name FROM emp ORDER BY salary DESC, id LIMIT 2 OFFSET 1",
        "bob\nfrank",
    ),
    (
        "SELECT DISTINCT salary FROM emp WHERE salary >= 100 ORDER BY 1",
        "100\n120",
    ),
    (
        "SELECT name, CASE WHEN salary >= 100 THEN 'high' ELSE 'low' END FROM emp WHERE id <= 3 ORDER BY id",
        "alice|high\nbob|high\ncarol|low",
    ),
    (
        "SELECT upper('abc'), length('hello'), substr('hello', 2, 3), concat('a', NULL, 'b'), 'x' || 'y', replace('aa', 'a', 'b'), trim('  p  ')",
        "ABC|5|ell|ab|xy|bb|p",
    ),
    (
        "SELECT date_trunc('month', TIMESTAMP '2024-03-15 10:30:00'), extract(year FROM DATE '2024-03-15'), DATE '2024-03-15' + 10, DATE '2024-01-31' + INTERVAL '1 month'",
        "2024-03-01 00:00:00|2024|2024-03-25|2024-02-29 00:00:00",
    ),
    (
        "SELECT abs(-5), round(2.567, 2), ceil(4.1), floor(4.9), power(2, 10), sqrt(16), 17 % 5, 7 / 2",
        "5|2.57|5|4|1024|4|2|3",
    ),
    (
        "SELECT NULL = NULL, NULL IS NULL, coalesce(NULL, 2), count(dept_id), count(*) FROM emp",
        "NULL|t|2|5|6",
    ),
    (
        "SELECT count(*) FROM dept WHERE id NOT IN (SELECT dept_id FROM emp)",
        "0",
    ),
    (
        "PREPARE ins (int, smallint, int, bigint, real, double precision, boolean, text, bytea) AS INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        "",
    ),
    (
        "EXECUTE ins(1, -32768, 2147483647, -9223372036854775808, 1.5, 3.141592653589793, true, 'héllo', '\\x00ff')",
        "",
    ),
    (
        "EXECUTE ins(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        "",
    ),
    (
        "PREPARE q (int) AS SELECT id, a, b, c, d, e, f, g, h FROM typed WHERE id = $1",
        "",
    ),
    (
        "EXECUTE q(1)",
        "1|-32768|2147483647|-9223372036854775808|1.5|3.141592653589793|t|héllo|\\x00ff",
    ),
    ("EXECUTE q(2)", "2|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
    ("DEALLOCATE q", ""),
];

const SURFACE_SETUP: &str = "\
CREATE TABLE dept (id INT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE emp (id INT PRIMARY KEY, name TEXT NOT NULL, dept_id INT, salary INT, manager_id INT);
INSERT INTO dept VALUES (1, 'eng'), (2, 'sales'), (3, 'ops');
INSERT INTO emp VALUES (1, 'alice', 1, 120, NULL), (2, 'bob', 1, 100, 1), (3, 'carol', 2, 90, 1), (4, 'dave', 2, 80, 3), (5, 'erin', NULL, 70, 1), (6, 'frank', 1, 100, 2);
CREATE TABLE typed (id INT PRIMARY KEY, a SMALLINT, b INT, c BIGINT, d REAL, e DOUBLE PRECISION, f BOOLEAN, g TEXT, h BYTEA);
";

/// Joins, grouping, windows, CTEs, subqueries, functions, NULLs and SQL-level prepared
/// statements, each checked separately so that one failure names its query.
#[test]
fn psql_sql_surface() {
    if !psql_available() {
        return;
    }
    let server = TestServer::start();
    let run = psql(
        &server,
        &["-v", "ON_ERROR_STOP=1", "-q", "-f", "-"],
        SURFACE_SETUP,
    );
    expect_success(&run, "creating the tables");

    // One psql session; a marker line before each statement splits the output.
    let mut script = String::new();
    for (i, (sql, _)) in SURFACE.iter().enumerate() {
        script.push_str(&format!("\\echo ==== {i}\n{sql};\n"));
    }
    script.push_str("\\echo ==== end\n");
    let run = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=0",
            "-q",
            "-A",
            "-t",
            "-P",
            "null=NULL",
            "-f",
            "-",
        ],
        &script,
    );
    let mut outputs: Vec<Vec<&str>> = vec![Vec::new(); SURFACE.len()];
    let mut current: Option<usize> = None;
    for line in run.stdout.lines() {
        if let Some(marker) = line.strip_prefix("==== ") {
            current = marker.parse().ok();
            continue;
        }
        if let Some(i) = current {
            outputs[i].push(line);
        }
    }
    let mut failures = Vec::new();
    for ((sql, expected), actual) in SURFACE.iter().zip(&outputs) {
        let expected: Vec<&str> = expected.lines().collect();
        if *actual != expected {
            failures.push(format!(
                "  sql: {sql}\n  expected: {expected:?}\n  actual:   {actual:?}"
            ));
        }
    }
    assert!(
        failures.is_empty() && run.stderr.trim().is_empty(),
        "{} of {} psql queries differ from PostgreSQL:\n{}\n---- psql stderr ----\n{}",
        failures.len(),
        SURFACE.len(),
        failures.join("\n"),
        run.stderr
    );
}

/// psql shows server errors with their SQLSTATE, stops a script on them with ON_ERROR_STOP,
/// and refuses a wrong password; the server keeps serving.
#[test]
fn psql_errors_and_wrong_password() {
    if !psql_available() {
        return;
    }
    let server = TestServer::start();
    let run = psql(
        &server,
        &["-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-q"],
        "SELECT * FROM no_such_table;\nSELECT 'not reached';\n",
    );
    assert_eq!(
        run.status.code(),
        Some(3),
        "ON_ERROR_STOP exit status; stderr:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("42P01"),
        "psql should show SQLSTATE 42P01:\n{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("not reached"),
        "psql went on after the error:\n{}",
        run.stdout
    );

    let run = psql(&server, &["-v", "VERBOSITY=verbose", "-q"], "SELECT 1/0;\n");
    assert!(
        run.stderr.contains("22012"),
        "psql should show SQLSTATE 22012:\n{}",
        run.stderr
    );

    let run = psql_as(
        &server,
        USER,
        "wrong-password",
        &["-v", "ON_ERROR_STOP=1"],
        "SELECT 1;\n",
    );
    assert_eq!(
        run.status.code(),
        Some(2),
        "psql with a wrong password; stderr:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.trim().is_empty(),
        "psql printed no error for a wrong password"
    );

    let run = psql(&server, &["-A", "-t"], "SELECT 40 + 2;\n");
    expect_success(&run, "a query after the failures");
    assert_eq!(run.stdout.trim(), "42");
}
