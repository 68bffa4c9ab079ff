//! PostgreSQL drivers other than tokio-postgres, as applications use them: psycopg 3 (PyPI
//! `psycopg`) and SQLAlchemy 2 on it, scripts in `py/`, each case asserting what PostgreSQL 15
//! answers.

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
