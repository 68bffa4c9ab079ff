//! SQLite's sqllogictest files `select1..5.slt` (from `../shared/compat`, see its README) through
//! the PostgreSQL endpoint with label `postgresql`, the way `sqllogictest-bin --engine postgres`
//! runs them: simple-query protocol, text values, NULL as `NULL`, '' as `(empty)`.
//!
//! Each file gets a fresh server; records run one at a time and are counted, not stopped at the
//! first failure. Prints `slt selectN.slt: P passed, F failed` and writes the counts to
//! `target/slt-summary.txt`. The test fails if the server crashes, or if the pass ratio is below
//! `THUNDERDB_SLT_MIN_PASS` (a fraction, `0.95`, or a percentage, `95`; default 1: every
//! record of the five files passes, so any regression fails the test).
//! `THUNDERDB_SLT_JOBS` (default 2) files run at once; `THUNDERDB_SLT_RECORD_TIMEOUT_SECS`
//! (default 60) bounds one record; `THUNDERDB_SLT_FILES=select1,select3` picks files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Record, RecordOutput, Runner};
use tokio_postgres::{CancelToken, Client, NoTls, SimpleQueryMessage};

use crate::harness::{
    ServerOptions, TestServer, compat_dir, connect_with, describe, env_secs, target_dir,
};

/// A tokio-postgres error shown with the server's message (tokio-postgres alone says "db error").
#[derive(Debug)]
struct SltError(tokio_postgres::Error);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl std::error::Error for SltError {}

/// One sqllogictest connection. It reconnects when its connection was closed or when the
/// runner abandoned a timed-out record on it.
struct SltConnection {
    client: Client,
    conn_str: String,
    cancel: Arc<Mutex<Option<CancelToken>>>,
    reconnect: Arc<AtomicBool>,
}

impl SltConnection {
    async fn connect(
        conn_str: String,
        cancel: Arc<Mutex<Option<CancelToken>>>,
        reconnect: Arc<AtomicBool>,
    ) -> Result<SltConnection, SltError> {
        let client = connect_with(&conn_str).await.map_err(SltError)?;
        *cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.cancel_token());
        Ok(SltConnection {
            client,
            conn_str,
            cancel,
            reconnect,
        })
    }
}

#[async_trait::async_trait]
impl AsyncDB for SltConnection {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        if self.reconnect.swap(false, Ordering::SeqCst) || self.client.is_closed() {
            let fresh = SltConnection::connect(
                self.conn_str.clone(),
                Arc::clone(&self.cancel),
                Arc::clone(&self.reconnect),
            )
            .await?;
            self.client = fresh.client;
        }
        let messages = self.client.simple_query(sql).await.map_err(SltError)?;
        let mut columns: Option<usize> = None;
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut count = 0;
        for message in &messages {
            match message {
                SimpleQueryMessage::RowDescription(description) => {
                    columns = Some(description.len())
                }
                SimpleQueryMessage::Row(row) => {
                    columns.get_or_insert(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(value) => value.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => count = *n,
                _ => {}
            }
        }
        match columns {
            Some(n) => Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            }),
            None => Ok(DBOutput::StatementComplete(count)),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "postgres"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await
    }

    fn error_sql_state(err: &SltError) -> Option<String> {
        err.0.code().map(|code| code.code().to_string())
    }
}

/// The outcome of one file.
struct FileResult {
    name: String,
    passed: usize,
    failed: usize,
    skipped: usize,
    failures: Vec<String>,
    crash: Option<String>,
    elapsed: Duration,
}

const FAILURES_SHOWN: usize = 5;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={raw:?} is not a number")),
        Err(_) => default,
    }
}

/// `THUNDERDB_SLT_MIN_PASS` as a fraction of 1.
fn min_pass_ratio() -> f64 {
    let Ok(raw) = std::env::var("THUNDERDB_SLT_MIN_PASS") else {
        return 1.0;
    };
    let raw = raw.trim().trim_end_matches('%');
    let value: f64 = raw
        .parse()
        .unwrap_or_else(|_| panic!("THUNDERDB_SLT_MIN_PASS={raw:?} is not a number"));
    if value > 1.0 { value / 100.0 } else { value }
}

fn sql_of(record: &Record<DefaultColumnType>) -> Option<(String, String)> {
    match record {
        Record::Statement { loc, sql, .. } | Record::Query { loc, sql, .. } => {
            Some((loc.to_string(), sql.clone()))
        }
        _ => None,
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …", &text[..end])
}

async fn run_file(path: PathBuf) -> FileResult {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let records = sqllogictest::parse_file::<DefaultColumnType>(&path)
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    let options = ServerOptions {
        deadline: env_secs("THUNDERDB_SLT_TIMEOUT_SECS").unwrap_or(Duration::from_secs(3600)),
        ..ServerOptions::default()
    };
    let mut server = tokio::task::spawn_blocking(move || TestServer::start_with(options))
        .await
        .unwrap_or_else(|e| panic!("start a server for {name}: {e}"));
    let record_timeout =
        env_secs("THUNDERDB_SLT_RECORD_TIMEOUT_SECS").unwrap_or(Duration::from_secs(60));

    let conn_str = server.conn_str();
    let cancel: Arc<Mutex<Option<CancelToken>>> = Arc::new(Mutex::new(None));
    let reconnect = Arc::new(AtomicBool::new(false));
    let (make_cancel, make_reconnect) = (Arc::clone(&cancel), Arc::clone(&reconnect));
    let mut runner = Runner::new(move || {
        SltConnection::connect(
            conn_str.clone(),
            Arc::clone(&make_cancel),
            Arc::clone(&make_reconnect),
        )
    });
    runner.add_label("postgresql");

    let mut result = FileResult {
        name: name.clone(),
        passed: 0,
        failed: 0,
        skipped: 0,
        failures: Vec::new(),
        crash: None,
        elapsed: Duration::ZERO,
    };
    for record in records {
        if let Record::Halt { .. } = record {
            break;
        }
        let counted = sql_of(&record);
        let outcome = tokio::time::timeout(record_timeout, runner.run_async(record)).await;
        let Some((loc, sql)) = counted else { continue };
        let failure = match outcome {
            Ok(Ok(RecordOutput::Nothing)) => {
                result.skipped += 1;
                None
            }
            Ok(Ok(_)) => {
                result.passed += 1;
                None
            }
            Ok(Err(e)) => Some(shorten(&e.display(false).to_string(), 1500)),
            Err(_) => {
                // Abandon the statement: cancel it server-side and use a fresh connection.
                let token = cancel.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(token) = token {
                    let _ = token.cancel_query(NoTls).await;
                }
                reconnect.store(true, Ordering::SeqCst);
                Some(format!(
                    "timed out after {record_timeout:?}\n    at {loc}\n    {}",
                    shorten(&sql, 300)
                ))
            }
        };
        if let Some(failure) = failure {
            result.failed += 1;
            if result.failures.len() < FAILURES_SHOWN {
                result.failures.push(failure);
            }
            if !server.is_running() {
                result.crash = Some(format!(
                    "the server died while running {loc}:\n    {}\n---- server output (tail) ----\n{}",
                    shorten(&sql, 300),
                    server.log_tail(80)
                ));
                break;
            }
        }
    }
    runner.shutdown_async().await;
    if result.crash.is_none() && !server.is_running() {
        result.crash = Some(format!(
            "the server died during {name}:\n{}",
            server.log_tail(80)
        ));
    }
    result.elapsed = started.elapsed();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_select_corpus() {
    let dir = compat_dir().join("sqllogictest/sqlite");
    if !dir.join("select1.slt").is_file() {
        println!(
            "SKIPPED sqllogictest: compat corpus not found (looked in {})",
            dir.display()
        );
        eprintln!(
            "SKIPPED sqllogictest: compat corpus not found (looked in {})",
            dir.display()
        );
        return;
    }
    let wanted: Vec<String> = match std::env::var("THUNDERDB_SLT_FILES") {
        Ok(list) => list
            .split(',')
            .map(|f| f.trim().trim_end_matches(".slt").to_string())
            .collect(),
        Err(_) => (1..=5).map(|i| format!("select{i}")).collect(),
    };
    let files: Vec<PathBuf> = wanted
        .iter()
        .map(|stem| dir.join(format!("{stem}.slt")))
        .collect();
    for file in &files {
        assert!(file.is_file(), "{} does not exist", file.display());
    }
    let jobs = env_usize("THUNDERDB_SLT_JOBS", 2).max(1);
    let mut results: Vec<FileResult> = futures::stream::iter(files)
        .map(run_file)
        .buffer_unordered(jobs)
        .collect()
        .await;
    results.sort_by(|a, b| a.name.cmp(&b.name));

    let mut summary = String::new();
    let (mut passed, mut failed) = (0, 0);
    for r in &results {
        let line = format!(
            "slt {}: {} passed, {} failed ({} skipped, {:.0?})",
            r.name, r.passed, r.failed, r.skipped, r.elapsed
        );
        println!("{line}");
        eprintln!("{line}");
        for failure in &r.failures {
            eprintln!("  {}", failure.replace('\n', "\n  "));
        }
        summary.push_str(&format!(
            "{}: {} passed, {} failed, {} skipped\n",
            r.name, r.passed, r.failed, r.skipped
        ));
        passed += r.passed;
        failed += r.failed;
    }
    let ratio = if passed + failed == 0 {
        0.0
    } else {
        passed as f64 / (passed + failed) as f64
    };
    summary.push_str(&format!(
        "total: {passed} passed, {failed} failed ({:.2}%)\n",
        ratio * 100.0
    ));
    eprintln!(
        "slt total: {passed} passed, {failed} failed ({:.2}%)",
        ratio * 100.0
    );
    write_summary(&target_dir(), &summary);

    let crashes: Vec<String> = results
        .iter()
        .filter_map(|r| r.crash.as_ref().map(|c| format!("{}: {c}", r.name)))
        .collect();
    assert!(
        crashes.is_empty(),
        "the server crashed:\n{}",
        crashes.join("\n")
    );
    let min = min_pass_ratio();
    assert!(
        ratio >= min,
        "sqllogictest pass ratio {:.2}% is below THUNDERDB_SLT_MIN_PASS ({:.2}%)",
        ratio * 100.0,
        min * 100.0
    );
}

fn write_summary(target: &Path, summary: &str) {
    let path = target.join("slt-summary.txt");
    if let Err(e) = std::fs::create_dir_all(target).and_then(|_| std::fs::write(&path, summary)) {
        eprintln!("could not write {}: {e}", path.display());
    } else {
        eprintln!("wrote {}", path.display());
    }
}
