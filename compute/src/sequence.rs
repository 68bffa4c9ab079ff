//! Counters outside transactions: AUTO_INCREMENT values. Like MySQL's auto-increment (and
//! PostgreSQL's sequences), a value handed out is never handed out again, even when the
//! transaction that took it rolls back; so each allocation is a small commit of its own,
//! validated by the WAL like any write (two nodes allocating at once conflict, one retries).

use crate::catalog::counter_key;
use crate::engine::Engine;
use crate::error::{Result, user_error};
use thunderdb_common::wal::KeyWrite;
use thunderdb_common::{SqlState, ThunderError, TxnId};
use thunderdb_walservice::{CommitOutcome, CommitRequest};

/// How often an allocation that keeps conflicting is retried.
const MAX_ATTEMPTS: usize = 64;

/// The counter of a table's AUTO_INCREMENT column.
pub(crate) fn auto_increment_counter(table: thunderdb_common::TableId) -> String {
    format!("auto_increment:{}", table.0)
}

/// Takes `n` consecutive values of counter `name`, none below `at_least`; returns the first.
/// With `n == 0` it only moves the counter past `at_least - 1` (an explicit value was
/// inserted), so later values stay above it.
pub(crate) async fn allocate(engine: &Engine, name: &str, n: u64, at_least: i64) -> Result<i64> {
    let key = counter_key(name);
    for _ in 0..MAX_ATTEMPTS {
        let lsn = engine.wal.last_committed_lsn().await?;
        let next = match engine.pages.get(&key, lsn).await? {
            Some(v) => i64::from_le_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| ThunderError::internal("corrupt counter"))?,
            ),
            None => 1,
        };
        let first = next.max(at_least);
        let n = i64::try_from(n).map_err(|_| out_of_values(name))?;
        let new_next = first.checked_add(n).ok_or_else(|| out_of_values(name))?;
        if new_next == next {
            return Ok(first);
        }
        let request = CommitRequest {
            txn_id: TxnId::random(),
            snapshot_lsn: lsn,
            writes: vec![KeyWrite {
                key: key.clone(),
                value: Some(new_next.to_le_bytes().to_vec()),
            }],
            read_keys: vec![],
            read_ranges: vec![],
        };
        match engine.wal.commit(request).await? {
            CommitOutcome::Committed(_) => return Ok(first),
            CommitOutcome::Conflict { .. } => continue,
        }
    }
    Err(user_error(
        SqlState::SERIALIZATION_FAILURE,
        "could not allocate an AUTO_INCREMENT value: too many concurrent allocations",
    ))
}

fn out_of_values(name: &str) -> ThunderError {
    user_error(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("counter \"{name}\" reached its maximum value"),
    )
}
