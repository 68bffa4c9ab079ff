//! PyMySQL (PyPI `PyMySQL`), the common pure-Python MySQL driver: one script per area in
//! `py/`, each case asserting what MySQL 8.0 answers; a script that passes prints `ok`.

use super::server;
use crate::harness::{run_python_cases, skip};
use std::process::Command;

const PRELUDE: &str = include_str!("py/prelude.py");

fn run_script(area: &str, script: &str) {
    let test = format!("mysql::py::{area}");
    let available = Command::new("python3")
        .args(["-c", "import pymysql"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        skip(&test, "PyMySQL is not installed (pip install PyMySQL)");
        return;
    }
    let Some(mut server) = server(&test) else {
        return;
    };
    let file = format!("{area}.py");
    run_python_cases(
        PRELUDE,
        &file,
        script,
        &[("MYSQL_PORT", server.mysql_port().to_string())],
    );
    server.assert_running(&format!("after {file}"));
}

/// Types both ways, parameters, column names, AUTO_INCREMENT / lastrowid, affected rows of
/// upserts, executemany, LIMIT a, b, DIV / XOR, multi-statement requests.
#[test]
fn basics() {
    run_script("basics", include_str!("py/basics.py"));
}

/// autocommit off, statement-level rollback, implicit commits, 1213 and retry, isolation.
#[test]
fn transactions() {
    run_script("transactions", include_str!("py/transactions.py"));
}

/// Error numbers and messages; the connection stays usable.
#[test]
fn errors() {
    run_script("errors", include_str!("py/errors.py"));
}
