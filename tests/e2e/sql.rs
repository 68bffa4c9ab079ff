//! SQL assertion helpers shared by the end-to-end tests: results compared as PostgreSQL's text
//! output, errors by SQLSTATE, with the failing SQL in every message.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::harness::describe;

/// Runs `sql` through the simple-query protocol; panics with the SQL and the error on failure.
pub async fn simple(client: &Client, sql: &str) -> Vec<SimpleQueryMessage> {
    match client.simple_query(sql).await {
        Ok(messages) => messages,
        Err(e) => panic!("query failed: {}\n  sql: {sql}", describe(&e)),
    }
}

/// The rows of simple-query messages as text lines: cells joined by `|`, NULL shown as `NULL`
/// (PostgreSQL's text output otherwise untouched: `t`/`f`, `149.97`, `\x00ff` …).
pub fn render(messages: &[SimpleQueryMessage]) -> Vec<String> {
    let mut lines = Vec::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            let cells: Vec<&str> = (0..row.len())
                .map(|i| row.get(i).unwrap_or("NULL"))
                .collect();
            lines.push(cells.join("|"));
        }
    }
    lines
}

/// The row count of the last CommandComplete (`INSERT 0 3` → 3).
pub fn command_count(messages: &[SimpleQueryMessage]) -> Option<u64> {
    messages.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    })
}

/// The rows of a query as `a|b` lines (see [`render`]).
pub async fn query_lines(client: &Client, sql: &str) -> Vec<String> {
    render(&simple(client, sql).await)
}

/// The single value of a one-row, one-column query (NULL as `NULL`).
pub async fn query_value(client: &Client, sql: &str) -> String {
    let lines = query_lines(client, sql).await;
    assert_eq!(
        lines.len(),
        1,
        "expected one row\n  sql: {sql}\n  got: {lines:?}"
    );
    lines.into_iter().next().expect("one row")
}

fn expected_lines(expected: &str) -> Vec<String> {
    expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Asserts the rows of `sql`, in order. `expected` holds one row per line (surrounding blank
/// space ignored), cells separated by `|`, NULL written `NULL`; "" means no rows.
pub async fn check(client: &Client, sql: &str, expected: &str) {
    let actual = query_lines(client, sql).await;
    let expected = expected_lines(expected);
    assert!(
        actual == expected,
        "wrong result\n  sql: {sql}\n  expected:\n    {}\n  actual:\n    {}",
        expected.join("\n    "),
        actual.join("\n    ")
    );
}

/// Like [`check`] but ignores row order (for RETURNING and queries without ORDER BY).
pub async fn check_unordered(client: &Client, sql: &str, expected: &str) {
    let mut actual = query_lines(client, sql).await;
    let mut expected = expected_lines(expected);
    actual.sort();
    expected.sort();
    assert!(
        actual == expected,
        "wrong result (any order)\n  sql: {sql}\n  expected:\n    {}\n  actual:\n    {}",
        expected.join("\n    "),
        actual.join("\n    ")
    );
}

/// Runs a statement and returns the row count of its (last) command tag.
pub async fn exec(client: &Client, sql: &str) -> u64 {
    command_count(&simple(client, sql).await).unwrap_or(0)
}

/// Asserts that a statement that changes rows reports `count` in its command tag.
pub async fn exec_count(client: &Client, sql: &str, count: u64) {
    let got = exec(client, sql).await;
    assert_eq!(
        got, count,
        "wrong row count in the command tag\n  sql: {sql}"
    );
}

/// Asserts that `sql` fails with SQLSTATE `code` (an ErrorResponse, not a dropped connection).
/// Returns the server's message.
pub async fn expect_error(client: &Client, sql: &str, code: &SqlState) -> String {
    match client.simple_query(sql).await {
        Ok(messages) => panic!(
            "expected SQLSTATE {} but the statement succeeded\n  sql: {sql}\n  rows: {:?}",
            code.code(),
            render(&messages)
        ),
        Err(e) => {
            let Some(db) = e.as_db_error() else {
                panic!(
                    "expected SQLSTATE {} but got {}\n  sql: {sql}",
                    code.code(),
                    describe(&e)
                );
            };
            assert_eq!(
                db.code(),
                code,
                "wrong SQLSTATE (expected {}, got {}: {})\n  sql: {sql}",
                code.code(),
                db.code().code(),
                db.message()
            );
            db.message().to_string()
        }
    }
}

/// Asserts that the session still answers `SELECT 1` (an error ends a statement, never the
/// session).
pub async fn assert_usable(client: &Client, after: &str) {
    match client.simple_query("SELECT 1").await {
        Ok(messages) => assert_eq!(render(&messages), ["1"], "SELECT 1 after {after}"),
        Err(e) => panic!("the session is unusable after {after}: {}", describe(&e)),
    }
}

/// Like [`expect_error`] but through the extended protocol (Parse/Bind/Execute).
pub async fn expect_error_extended(client: &Client, sql: &str, code: &SqlState) -> String {
    match client.query(sql, &[]).await {
        Ok(rows) => panic!(
            "expected SQLSTATE {} but the statement succeeded with {} rows\n  sql: {sql}",
            code.code(),
            rows.len()
        ),
        Err(e) => {
            assert_eq!(
                e.code(),
                Some(code),
                "wrong error (expected SQLSTATE {}): {}\n  sql: {sql}",
                code.code(),
                describe(&e)
            );
            e.as_db_error()
                .map(|db| db.message().to_string())
                .unwrap_or_default()
        }
    }
}

/// Whether the error tells a client to retry the transaction (40001; PostgreSQL's locking
/// also reports deadlocks, 40P01).
pub fn is_retryable(err: &tokio_postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}
