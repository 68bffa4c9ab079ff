//! The bank-transfer workload shared by the transaction and durability tests: 100 accounts,
//! concurrent clients moving money in `BEGIN; UPDATE; UPDATE; COMMIT` with retry on 40001, every
//! transfer whose COMMIT was acknowledged recorded — and an exact audit of what the database
//! holds afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;

use crate::harness::{connect_with, describe};
use crate::sql::{command_count, exec, is_retryable, query_lines};

pub const ACCOUNTS: i32 = 100;
pub const INITIAL_BALANCE: i64 = 1000;

/// Money moved from one account to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub from: i32,
    pub to: i32,
    pub amount: i64,
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct ClientReport {
    /// COMMIT returned OK: these must all be in the database.
    pub committed: Vec<Transfer>,
    /// The connection died while COMMIT was outstanding: each may or may not have committed.
    pub in_doubt: Vec<Transfer>,
    /// Attempts that failed with a serialization failure and were retried.
    pub conflicts: u64,
    /// Why the client stopped early (only when a crash is expected).
    pub stopped_by: Option<String>,
}

/// How to run the workload.
#[derive(Clone, Debug)]
pub struct Workload {
    pub clients: usize,
    pub duration: Duration,
    pub seed: u64,
    /// The server is going to be killed: a lost connection ends a client quietly instead of
    /// failing the test.
    pub crash_expected: bool,
}

/// Creates `accounts` with [`ACCOUNTS`] rows of [`INITIAL_BALANCE`].
pub async fn create_accounts(client: &Client) {
    exec(
        client,
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
    )
    .await;
    let values: Vec<String> = (1..=ACCOUNTS)
        .map(|id| format!("({id}, {INITIAL_BALANCE})"))
        .collect();
    let inserted = exec(
        client,
        &format!("INSERT INTO accounts VALUES {}", values.join(", ")),
    )
    .await;
    assert_eq!(inserted, ACCOUNTS as u64, "rows inserted into accounts");
}

/// The balances right after [`create_accounts`].
pub fn initial_balances() -> Vec<i64> {
    vec![INITIAL_BALANCE; ACCOUNTS as usize]
}

/// A seed from `THUNDERDB_BANK_SEED`, or from the clock (printed, so a failure can be replayed).
pub fn seed() -> u64 {
    let seed = match std::env::var("THUNDERDB_BANK_SEED") {
        Ok(raw) => raw
            .parse()
            .unwrap_or_else(|_| panic!("THUNDERDB_BANK_SEED={raw:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    eprintln!("bank workload seed: {seed} (THUNDERDB_BANK_SEED={seed} replays the same transfers)");
    seed
}

/// Runs the workload's clients concurrently until its duration has passed (or, when a crash is
/// expected, until their connections die). `committed` counts acknowledged transfers live.
/// Returns every client's report, or the failures of the clients that hit an unexpected error.
pub async fn run(
    conn_str: String,
    workload: Workload,
    committed: Arc<AtomicU64>,
) -> Result<Vec<ClientReport>, String> {
    let deadline = Instant::now() + workload.duration;
    let mut tasks = Vec::new();
    for index in 0..workload.clients {
        let conn_str = conn_str.clone();
        let committed = Arc::clone(&committed);
        let seed = workload
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(index as u64);
        let crash_expected = workload.crash_expected;
        tasks.push(tokio::spawn(async move {
            client_loop(index, conn_str, seed, deadline, crash_expected, committed).await
        }));
    }
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(failure)) => failures.push(failure),
            Err(join_error) => failures.push(format!("a client task panicked: {join_error}")),
        }
    }
    if failures.is_empty() {
        Ok(reports)
    } else {
        Err(failures.join("\n"))
    }
}

enum Attempt {
    Committed,
    /// 40001 (or PostgreSQL's 40P01): rolled back, retry.
    Conflict,
    /// The connection died while COMMIT was outstanding.
    InDoubt(String),
    /// The connection died before COMMIT was sent: certainly not committed.
    Lost(String),
    /// Any other error: a bug.
    Failed(String),
}

async fn client_loop(
    index: usize,
    conn_str: String,
    seed: u64,
    deadline: Instant,
    crash_expected: bool,
    committed: Arc<AtomicU64>,
) -> Result<ClientReport, String> {
    let mut report = ClientReport::default();
    let client = match connect_with(&conn_str).await {
        Ok(client) => client,
        Err(e) if crash_expected => {
            report.stopped_by = Some(format!("connect: {}", describe(&e)));
            return Ok(report);
        }
        Err(e) => return Err(format!("client {index}: connect: {}", describe(&e))),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    while Instant::now() < deadline {
        let from = rng.gen_range(1..=ACCOUNTS);
        let mut to = rng.gen_range(1..ACCOUNTS);
        if to >= from {
            to += 1;
        }
        let transfer = Transfer {
            from,
            to,
            amount: rng.gen_range(1..=100),
        };
        loop {
            match attempt(&client, transfer).await {
                Attempt::Committed => {
                    report.committed.push(transfer);
                    committed.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Attempt::Conflict => {
                    report.conflicts += 1;
                    if Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_micros(rng.gen_range(0..2000))).await;
                }
                Attempt::InDoubt(why) => {
                    report.in_doubt.push(transfer);
                    if crash_expected {
                        report.stopped_by = Some(why);
                        return Ok(report);
                    }
                    return Err(format!(
                        "client {index}: connection lost during COMMIT of {transfer:?}: {why}"
                    ));
                }
                Attempt::Lost(why) => {
                    if crash_expected {
                        report.stopped_by = Some(why);
                        return Ok(report);
                    }
                    return Err(format!("client {index}: connection lost: {why}"));
                }
                Attempt::Failed(why) => {
                    return Err(format!("client {index}: transfer {transfer:?}: {why}"));
                }
            }
        }
    }
    Ok(report)
}

async fn attempt(client: &Client, t: Transfer) -> Attempt {
    let statements = [
        "BEGIN".to_string(),
        format!(
            "UPDATE accounts SET balance = balance - {} WHERE id = {}",
            t.amount, t.from
        ),
        format!(
            "UPDATE accounts SET balance = balance + {} WHERE id = {}",
            t.amount, t.to
        ),
    ];
    for sql in &statements {
        match client.simple_query(sql).await {
            Ok(messages) => {
                if sql.starts_with("UPDATE") && command_count(&messages) != Some(1) {
                    let _ = client.simple_query("ROLLBACK").await;
                    return Attempt::Failed(format!(
                        "{sql}: the command tag reports {:?} rows, expected 1",
                        command_count(&messages)
                    ));
                }
            }
            Err(e) if is_retryable(&e) => {
                let _ = client.simple_query("ROLLBACK").await;
                return Attempt::Conflict;
            }
            Err(e) if e.as_db_error().is_some() => {
                let _ = client.simple_query("ROLLBACK").await;
                return Attempt::Failed(format!("{sql}: {}", describe(&e)));
            }
            Err(e) => return Attempt::Lost(format!("{sql}: {}", describe(&e))),
        }
    }
    match client.simple_query("COMMIT").await {
        Ok(_) => Attempt::Committed,
        Err(e) if is_retryable(&e) => {
            // A failed COMMIT ends the transaction; the ROLLBACK only guards against a server
            // that leaves it open (it is a no-op with a warning otherwise).
            let _ = client.simple_query("ROLLBACK").await;
            Attempt::Conflict
        }
        Err(e) if e.as_db_error().is_some() => Attempt::Failed(format!("COMMIT: {}", describe(&e))),
        Err(e) => Attempt::InDoubt(format!("COMMIT: {}", describe(&e))),
    }
}

/// All acknowledged transfers of all clients.
pub fn committed(reports: &[ClientReport]) -> Vec<Transfer> {
    reports
        .iter()
        .flat_map(|r| r.committed.iter().copied())
        .collect()
}

/// All transfers whose COMMIT outcome is unknown.
pub fn in_doubt(reports: &[ClientReport]) -> Vec<Transfer> {
    reports
        .iter()
        .flat_map(|r| r.in_doubt.iter().copied())
        .collect()
}

pub fn conflicts(reports: &[ClientReport]) -> u64 {
    reports.iter().map(|r| r.conflicts).sum()
}

/// Reads every balance, in account order (index 0 is account 1).
pub async fn balances(client: &Client) -> Vec<i64> {
    let lines = query_lines(client, "SELECT id, balance FROM accounts ORDER BY id").await;
    assert_eq!(
        lines.len(),
        ACCOUNTS as usize,
        "rows in accounts: {lines:?}"
    );
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let (id, balance) = line
                .split_once('|')
                .unwrap_or_else(|| panic!("two columns expected: {line:?}"));
            assert_eq!(
                id.parse::<usize>().ok(),
                Some(i + 1),
                "account ids must be 1..={ACCOUNTS}: {line:?}"
            );
            balance
                .parse()
                .unwrap_or_else(|_| panic!("balance is not an integer: {line:?}"))
        })
        .collect()
}

/// Applies a transfer to a balance vector.
pub fn apply(balances: &mut [i64], t: &Transfer) {
    balances[(t.from - 1) as usize] -= t.amount;
    balances[(t.to - 1) as usize] += t.amount;
}

/// `base` with every transfer applied.
pub fn expected_balances(base: &[i64], transfers: &[Transfer]) -> Vec<i64> {
    let mut balances = base.to_vec();
    for t in transfers {
        apply(&mut balances, t);
    }
    balances
}

/// Checks that `actual` is exactly `base` plus every acknowledged transfer plus some subset of
/// the in-doubt ones (whose COMMIT may or may not have happened), and that money was neither
/// created nor destroyed. Returns the in-doubt transfers that must have committed.
pub fn audit(
    actual: &[i64],
    base: &[i64],
    acknowledged: &[Transfer],
    in_doubt: &[Transfer],
) -> Result<Vec<Transfer>, String> {
    let total: i64 = actual.iter().sum();
    let base_total: i64 = base.iter().sum();
    let mut problems = String::new();
    if total != base_total {
        problems.push_str(&format!("the total is {total}, expected {base_total}\n"));
    }
    let expected = expected_balances(base, acknowledged);
    if in_doubt.len() > 20 {
        return Err(format!(
            "{} in-doubt transfers: too many to try every subset",
            in_doubt.len()
        ));
    }
    for mask in 0u32..(1u32 << in_doubt.len()) {
        let mut candidate = expected.clone();
        let mut applied = Vec::new();
        for (i, t) in in_doubt.iter().enumerate() {
            if mask & (1 << i) != 0 {
                apply(&mut candidate, t);
                applied.push(*t);
            }
        }
        if candidate == actual && problems.is_empty() {
            return Ok(applied);
        }
    }
    problems.push_str(&format!(
        "the balances are not initial + the {} acknowledged transfers + any subset of the {} in-doubt ones; \
         differences from initial + acknowledged:\n",
        acknowledged.len(),
        in_doubt.len()
    ));
    let mut shown = 0;
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        if a != e && shown < 25 {
            problems.push_str(&format!(
                "  account {}: expected {e}, found {a} ({:+})\n",
                i + 1,
                a - e
            ));
            shown += 1;
        }
    }
    if !in_doubt.is_empty() {
        problems.push_str(&format!("  in doubt: {in_doubt:?}\n"));
    }
    Err(problems)
}
