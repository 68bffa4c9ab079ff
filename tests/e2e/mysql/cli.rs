//! The `mariadb` command-line client (Debian mariadb-client) in batch mode.

use super::{installed, server};
use crate::harness::{PASSWORD, Run, TestServer, USER, run_child, skip};
use std::process::Command;
use std::time::Duration;

/// Runs the client on `sql` (batch mode, tab-separated, with column names) against database
/// `thunderdb`; `extra` arguments go before the SQL.
fn mariadb(server: &TestServer, extra: &[&str], sql: &str) -> Run {
    let mut args = vec!["--skip-ssl"];
    args.extend_from_slice(extra);
    mariadb_tls(server, &args, sql)
}

fn client(test: &str) -> Option<TestServer> {
    if !installed("mariadb") {
        skip(
            test,
            "the mariadb client is not installed (Debian mariadb-client)",
        );
        return None;
    }
    server(test)
}

/// Output lines, `\t`-separated cells.
fn ok(run: &Run) -> String {
    assert!(run.status.success(), "mariadb failed:\n{}", run.describe());
    run.stdout.clone()
}

#[test]
fn ddl_dml_and_queries() {
    let Some(server) = client("mysql::cli::ddl_dml_and_queries") else {
        return;
    };
    let out = ok(&mariadb(
        &server,
        &[],
        "CREATE TABLE `Orders` (id BIGINT NOT NULL AUTO_INCREMENT, customer_id BIGINT NOT NULL, \
           total DECIMAL(10,2), note TEXT, created_at DATETIME DEFAULT NULL, PRIMARY KEY (id), \
           KEY orders_customer (customer_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\
         INSERT INTO orders (customer_id, total) VALUES (1001, 149.97), (1002, 20.00), (1001, 5.50);\n\
         SELECT LAST_INSERT_ID();\n\
         UPDATE orders SET total = total + 1 WHERE id = 2;\n\
         DELETE FROM orders WHERE id = 3;\n\
         SELECT customer_id, SUM(total), COUNT(*) FROM orders GROUP BY customer_id ORDER BY customer_id;\n\
         SELECT `id`, \"text\" AS lit, total FROM thunderdb.orders ORDER BY id LIMIT 1, 1;\n\
         START TRANSACTION; INSERT INTO orders (customer_id) VALUES (9); ROLLBACK;\n\
         SELECT COUNT(*) FROM orders;\n",
    ));
    assert_eq!(
        out,
        "LAST_INSERT_ID()\n1\n\
         customer_id\tSUM(total)\tCOUNT(*)\n1001\t149.97\t1\n1002\t21.00\t1\n\
         id\tlit\ttotal\n2\ttext\t21.00\n\
         COUNT(*)\n2\n"
    );
}

#[test]
fn show_describe_use_and_variables() {
    let Some(server) = client("mysql::cli::show_describe_use_and_variables") else {
        return;
    };
    ok(&mariadb(
        &server,
        &[],
        "CREATE TABLE t (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, \
         email VARCHAR(50), k INT DEFAULT '0', UNIQUE KEY uk_email (email), KEY k_1 (k))",
    ));
    let out = ok(&mariadb(
        &server,
        &[],
        "SHOW DATABASES; SHOW TABLES; SHOW FULL TABLES LIKE 't%'; DESCRIBE t;\n\
         SHOW COLUMNS FROM t LIKE 'e%'; SHOW INDEX FROM t; USE thunderdb; SELECT DATABASE();\n\
         SHOW VARIABLES LIKE 'max_allowed_packet'; SELECT @@autocommit, @@session.tx_isolation;\n\
         SET autocommit = 0; SELECT @@autocommit; SET SESSION autocommit = ON; SELECT @@autocommit;\n\
         SET @x = 40 + 2; SELECT @x, @nothing;\n\
         SHOW WARNINGS; SHOW ENGINES;",
    ));
    let expected = "Database\ninformation_schema\nthunderdb\n\
        Tables_in_thunderdb\nt\n\
        Tables_in_thunderdb (t%)\tTable_type\nt\tBASE TABLE\n\
        Field\tType\tNull\tKey\tDefault\tExtra\n\
        id\tint\tNO\tPRI\tNULL\tauto_increment\n\
        name\tvarchar(20)\tNO\t\tNULL\t\n\
        email\tvarchar(50)\tYES\tUNI\tNULL\t\n\
        k\tint\tYES\tMUL\t0\t\n\
        Field\tType\tNull\tKey\tDefault\tExtra\nemail\tvarchar(50)\tYES\tUNI\tNULL\t\n\
        Table\tNon_unique\tKey_name\tSeq_in_index\tColumn_name\tCollation\tCardinality\tSub_part\tPacked\tNull\tIndex_type\tComment\tIndex_comment\tVisible\tExpression\n\
        t\t0\tPRIMARY\t1\tid\tA\tNULL\tNULL\tNULL\t\tBTREE\t\t\tYES\tNULL\n\
        t\t0\tuk_email\t1\temail\tA\tNULL\tNULL\tNULL\tYES\tBTREE\t\t\tYES\tNULL\n\
        t\t1\tk_1\t1\tk\tA\tNULL\tNULL\tNULL\tYES\tBTREE\t\t\tYES\tNULL\n\
        DATABASE()\nthunderdb\n\
        Variable_name\tValue\nmax_allowed_packet\t67108864\n\
        @@autocommit\t@@session.tx_isolation\n1\tREPEATABLE-READ\n\
        @@autocommit\n0\n@@autocommit\n1\n\
        @x\t@nothing\n42\tNULL\n";
    assert!(
        out.starts_with(expected),
        "got:\n{out}\nexpected it to start with:\n{expected}"
    );
    assert!(out.contains("Engine\tSupport\tComment"), "{out}");
    let create = ok(&mariadb(&server, &["--raw"], "SHOW CREATE TABLE t"));
    assert!(
        create.contains(
            "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `name` varchar(20) NOT NULL,\n  `email` varchar(50) DEFAULT NULL,\n  `k` int DEFAULT '0',\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uk_email` (`email`),\n  KEY `k_1` (`k`)\n) ENGINE=InnoDB"
        ),
        "{create}"
    );
}

#[test]
fn savepoints() {
    let Some(server) = client("mysql::cli::savepoints") else {
        return;
    };
    let out = ok(&mariadb(
        &server,
        &["-N"],
        "CREATE TABLE sp (id INT PRIMARY KEY);\n\
         START TRANSACTION; INSERT INTO sp VALUES (1); SAVEPOINT a; INSERT INTO sp VALUES (2);\n\
         SAVEPOINT b; INSERT INTO sp VALUES (3); ROLLBACK TO SAVEPOINT a;\n\
         SELECT id FROM sp ORDER BY id;\n\
         INSERT INTO sp VALUES (4); RELEASE SAVEPOINT a; COMMIT;\n\
         SELECT id FROM sp ORDER BY id;\n\
         SET autocommit = 0; SAVEPOINT c; INSERT INTO sp VALUES (5); ROLLBACK TO c; COMMIT;\n\
         SET autocommit = 1; SELECT id FROM sp ORDER BY id;\n",
    ));
    assert_eq!(out, "1\n1\n4\n1\n4\n");
    // "b" went with the rollback to "a"; outside a transaction no savepoint exists.
    for sql in [
        "START TRANSACTION; SAVEPOINT a; SAVEPOINT b; ROLLBACK TO a; ROLLBACK TO b",
        "ROLLBACK TO SAVEPOINT nowhere",
        "RELEASE SAVEPOINT nowhere",
    ] {
        let run = mariadb(&server, &[], sql);
        assert!(
            run.stderr.contains("ERROR 1305 (42000)") && run.stderr.contains("does not exist"),
            "{sql}: {}",
            run.describe()
        );
    }
}

#[test]
fn errors_carry_mysql_numbers() {
    let Some(server) = client("mysql::cli::errors_carry_mysql_numbers") else {
        return;
    };
    ok(&mariadb(
        &server,
        &[],
        "CREATE TABLE u (id INT PRIMARY KEY, v VARCHAR(3) NOT NULL)",
    ));
    ok(&mariadb(&server, &[], "INSERT INTO u VALUES (1, 'a')"));
    let cases = [
        (
            "SELECT * FROM nope",
            "ERROR 1146 (42S02) at line 1: Table 'thunderdb.nope' doesn't exist",
        ),
        (
            "SELECT nope FROM u",
            "ERROR 1054 (42S22) at line 1: Unknown column 'nope' in 'field list'",
        ),
        (
            "INSERT INTO u VALUES (1, 'b')",
            "ERROR 1062 (23000) at line 1: Duplicate entry '1' for key 'u.PRIMARY'",
        ),
        (
            "SELEC 1",
            "ERROR 1064 (42000) at line 1: You have an error in your SQL syntax",
        ),
        (
            "INSERT INTO u VALUES (2, NULL)",
            "ERROR 1048 (23000) at line 1: Column 'v' cannot be null",
        ),
        (
            "USE elsewhere",
            "ERROR 1049 (42000) at line 1: Unknown database 'elsewhere'",
        ),
        (
            "SELECT @@no_such_variable",
            "ERROR 1193 (HY000) at line 1: Unknown system variable 'no_such_variable'",
        ),
        (
            "CREATE TABLE u (x INT)",
            "ERROR 1050 (42S01) at line 1: Table 'u' already exists",
        ),
    ];
    for (sql, expected) in cases {
        let run = mariadb(&server, &[], sql);
        assert!(
            !run.status.success(),
            "{sql} succeeded:\n{}",
            run.describe()
        );
        // The client echoes the failed statement before the error line.
        assert!(
            run.stderr.lines().any(|l| l.starts_with(expected)),
            "{sql}: expected {expected:?}, got {:?}",
            run.stderr
        );
    }
    // A wrong password is 1045 and the connection ends.
    let mut cmd = Command::new("mariadb");
    cmd.args(["--protocol=TCP", "-h", "127.0.0.1", "--skip-ssl"])
        .args(["-P", &server.mysql_port().to_string()])
        .args(["-u", USER, "-pwrong", "-e", "SELECT 1"]);
    let run = run_child(&mut cmd, b"", Duration::from_secs(30), "mariadb");
    assert!(
        run.stderr.contains(
            "ERROR 1045 (28000): Access denied for user 'thunder'@'127.0.0.1' (using password: YES)"
        ),
        "{}",
        run.describe()
    );
    // The server is still there for everyone else.
    assert_eq!(
        ok(&mariadb(&server, &["-N"], "SELECT COUNT(*) FROM u")),
        "1\n"
    );
}

#[test]
fn tls_when_configured() {
    const TEST: &str = "mysql::cli::tls_when_configured";
    if !installed("mariadb") || !crate::harness::openssl_installed() {
        skip(TEST, "the mariadb client or openssl is not installed");
        return;
    }
    if crate::harness::Backend::from_env() == crate::harness::Backend::Postgres {
        skip(TEST, "the PostgreSQL backend has no MySQL frontend");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::harness::self_signed_cert(dir.path());
    let server = TestServer::start_with(crate::harness::ServerOptions {
        env: vec![
            ("THUNDERDB_TLS_CERT".into(), cert.display().to_string()),
            ("THUNDERDB_TLS_KEY".into(), key.display().to_string()),
        ],
        ..Default::default()
    });
    let ssl = mariadb_tls(
        &server,
        &["--ssl", "--ssl-verify-server-cert=0"],
        "SHOW STATUS LIKE 'Ssl_%'; SELECT 1 + 1",
    );
    let out = ok(&ssl);
    assert!(out.contains("Ssl_cipher\tTLS13_"), "{out}");
    assert!(out.contains("Ssl_version\tTLSv1.3"), "{out}");
    assert!(out.ends_with("1 + 1\n2\n"), "{out}");
    // Unencrypted clients are still served.
    let plain = ok(&mariadb(&server, &["-N"], "SHOW STATUS LIKE 'Ssl_cipher'"));
    assert_eq!(plain, "Ssl_cipher\t\n");
}

/// Like [`mariadb`], TLS as `extra` asks (the client's default is to try it).
fn mariadb_tls(server: &TestServer, extra: &[&str], sql: &str) -> Run {
    let mut cmd = Command::new("mariadb");
    cmd.args(["--protocol=TCP", "-h", "127.0.0.1"])
        .args(["-P", &server.mysql_port().to_string()])
        .args(["-u", USER, &format!("-p{PASSWORD}")])
        .arg("--batch")
        .args(extra)
        .arg("thunderdb");
    run_child(&mut cmd, sql.as_bytes(), Duration::from_secs(60), "mariadb")
}
