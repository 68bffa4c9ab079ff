//! PostgreSQL drivers other than tokio-postgres, as applications use them: psycopg 3 (PyPI
//! `psycopg`) and SQLAlchemy 2 on it (scripts in `py/`), node-postgres (`js/`) and the JDBC
//! driver (`java/`), each asserting what PostgreSQL 15 answers.

use crate::harness::{TestServer, run_python_cases, skip};
use std::process::Command;

const PRELUDE: &str = include_str!("py/prelude.py");

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_script(test: &str, modules: &[&str], file: &str, script: &str) {
    if let Some(missing) = modules.iter().find(|m| !python_has(m)) {
        skip(
            test,
            &format!("Python module {missing} is not installed (pip)"),
        );
        return;
    }
    let mut server = TestServer::start();
    run_python_cases(
        PRELUDE,
        file,
        script,
        &[("PG_PORT", server.port().to_string())],
    );
    server.assert_running(&format!("after {file}"));
}

/// Types, server-side binding, prepared statements, savepoints, COPY, errors.
#[test]
fn psycopg() {
    run_script(
        "pgcompat::drivers::psycopg",
        &["psycopg"],
        "psycopg_driver.py",
        include_str!("py/psycopg_driver.py"),
    );
}

/// SQLAlchemy 2's ORM: create_all (SERIAL keys, a foreign key, an index), add/query/commit, a
/// relationship join, rollback, cascades; the Inspector's table and foreign-key listing.
#[test]
fn sqlalchemy() {
    run_script(
        "pgcompat::drivers::sqlalchemy",
        &["psycopg", "sqlalchemy"],
        "sqlalchemy_orm.py",
        include_str!("py/sqlalchemy_orm.py"),
    );
}

/// node-postgres (npm `pg`, installed by `scripts/test` into `target/npm`): parameters, types,
/// named prepared statements, a savepoint, SQLSTATEs, a pool.
#[test]
fn node_postgres() {
    const TEST: &str = "pgcompat::drivers::node_postgres";
    // Where scripts/test puts it, beside the repository's target/redis-src.
    let modules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/npm/node_modules");
    if !crate::harness::installed("node") || !modules.join("pg").is_dir() {
        skip(
            TEST,
            "node or the npm package pg (scripts/test installs it into target/npm) is missing",
        );
        return;
    }
    let mut server = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("node_pg.js");
    std::fs::write(&script, include_str!("js/node_pg.js")).expect("write the script");
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .env("NODE_PATH", &modules)
        .env("PG_PORT", server.port().to_string());
    let run = crate::harness::run_child(&mut cmd, b"", std::time::Duration::from_secs(120), "node");
    assert!(
        run.status.success() && run.stdout.trim_end() == "ok",
        "{}",
        run.describe()
    );
    server.assert_running("after node_pg.js");
}

/// The PostgreSQL JDBC driver (Debian libpostgresql-jdbc-java) from a small Java program:
/// typed and server-side prepared statements, generated keys, batches, a savepoint, metadata.
#[test]
fn jdbc() {
    const TEST: &str = "pgcompat::drivers::jdbc";
    let jar = std::path::Path::new("/usr/share/java/postgresql.jar");
    if !crate::harness::installed("javac") || !jar.is_file() {
        skip(
            TEST,
            "javac or the JDBC driver (Debian default-jdk-headless, libpostgresql-jdbc-java) is missing",
        );
        return;
    }
    let mut server = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("JdbcCheck.java"),
        include_str!("java/JdbcCheck.java"),
    )
    .expect("write the program");
    let mut javac = Command::new("javac");
    javac
        .arg("-cp")
        .arg(jar)
        .arg("JdbcCheck.java")
        .current_dir(dir.path());
    let built = crate::harness::run_child(
        &mut javac,
        b"",
        std::time::Duration::from_secs(240),
        "javac",
    );
    assert!(built.status.success(), "{}", built.describe());
    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(format!("{}:.", jar.display()))
        .arg("JdbcCheck")
        .current_dir(dir.path())
        .env("PG_PORT", server.port().to_string());
    let run =
        crate::harness::run_child(&mut java, b"", std::time::Duration::from_secs(120), "java");
    assert!(
        run.status.success() && run.stdout.trim_end() == "ok",
        "{}",
        run.describe()
    );
    server.assert_running("after JdbcCheck");
}
