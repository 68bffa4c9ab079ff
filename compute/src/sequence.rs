//! Counters outside transactions: AUTO_INCREMENT values. Like MySQL's auto-increment (and
//! PostgreSQL's sequences), a value handed out is never handed out again, even when the
//! transaction that took it rolls back; so each allocation is a small commit of its own,
//! validated by the WAL like any write (two nodes allocating at once conflict, one retries).

use crate::catalog::counter_key;
use crate::engine::Engine;
use crate::error::{Result, user_error};
use thunderdb_common::wal::KeyWrite;
use thunderdb_common::{SqlState, ThunderError, TxnId};
use thunderdb_walservice::{CommitOutcome, CommitRequest, WalError};

/// How often an allocation that keeps conflicting is retried.
const MAX_ATTEMPTS: usize = 64;

/// The counter of a table's AUTO_INCREMENT column.
pub(crate) fn auto_increment_counter(table: thunderdb_common::TableId) -> String {
    format!("auto_increment:{}", table.0)
}

/// Reads `key` at the latest commit and commits what `step` makes of it (`None` for no
/// change) as a small transaction of its own, again when another commit won the race.
/// `None` when it kept losing.
async fn commit_outside_txn<T>(
    engine: &Engine,
    key: &[u8],
    mut step: impl FnMut(Option<&[u8]>) -> Result<(T, Option<Vec<u8>>)>,
) -> Result<Option<T>> {
    for _ in 0..MAX_ATTEMPTS {
        let lsn = engine.wal.last_committed_lsn().await?;
        let current = engine.pages.get(key, lsn).await?;
        let (out, new) = step(current.as_deref())?;
        let Some(new) = new else {
            return Ok(Some(out));
        };
        let request = CommitRequest {
            txn_id: TxnId::random(),
            snapshot_lsn: lsn,
            writes: vec![KeyWrite {
                key: key.to_vec(),
                value: Some(new),
            }],
            read_keys: vec![],
            read_ranges: vec![],
        };
        match engine
            .wal
            .commit(request)
            .await
            .map_err(WalError::into_commit_error)?
        {
            CommitOutcome::Committed(_) => return Ok(Some(out)),
            CommitOutcome::Conflict { .. } => continue,
        }
    }
    Ok(None)
}

/// A counter's next value as stored (1 before the first allocation).
fn decode_counter(v: Option<&[u8]>) -> Result<i64> {
    match v {
        Some(v) => Ok(i64::from_le_bytes(
            v.try_into()
                .map_err(|_| ThunderError::internal("corrupt counter"))?,
        )),
        None => Ok(1),
    }
}

/// Takes `n` consecutive values of counter `name`, none below `at_least`; returns the first.
/// With `n == 0` it only moves the counter past `at_least - 1` (an explicit value was
/// inserted), so later values stay above it.
pub(crate) async fn allocate(engine: &Engine, name: &str, n: u64, at_least: i64) -> Result<i64> {
    let n = i64::try_from(n).map_err(|_| out_of_values(name))?;
    let taken = commit_outside_txn(engine, &counter_key(name), |current| {
        let next = decode_counter(current)?;
        let first = next.max(at_least);
        let new_next = first.checked_add(n).ok_or_else(|| out_of_values(name))?;
        let write = (new_next != next).then(|| new_next.to_le_bytes().to_vec());
        Ok((first, write))
    })
    .await?;
    taken.ok_or_else(|| {
        user_error(
            SqlState::SERIALIZATION_FAILURE,
            "could not allocate an AUTO_INCREMENT value: too many concurrent allocations",
        )
    })
}

/// The value counter `name` hands out next.
pub(crate) async fn counter_next(engine: &Engine, name: &str) -> Result<i64> {
    let lsn = engine.wal.last_committed_lsn().await?;
    let current = engine.pages.get(&counter_key(name), lsn).await?;
    decode_counter(current.as_deref())
}

fn out_of_values(name: &str) -> ThunderError {
    user_error(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("counter \"{name}\" reached its maximum value"),
    )
}

/// A sequence's stored state: the last value handed out, and whether `last` was handed out
/// yet (`setval(s, v, false)` and a fresh sequence: the next call returns `last` itself).
fn state_key(seq: &crate::catalog::SequenceDef) -> Vec<u8> {
    counter_key(&format!("sequence:{}", seq.id.0))
}

fn decode_state(seq: &crate::catalog::SequenceDef, v: Option<&[u8]>) -> Result<(i64, bool)> {
    match v {
        None => Ok((seq.start, false)),
        Some(b) if b.len() == 9 => Ok((
            i64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            b[8] == 1,
        )),
        Some(_) => Err(ThunderError::internal("corrupt sequence state")),
    }
}

fn encode_state(last: i64, called: bool) -> Vec<u8> {
    let mut v = last.to_le_bytes().to_vec();
    v.push(u8::from(called));
    v
}

/// Commits `f`'s new state of `seq` (applied to its current state) as a small transaction
/// of its own, retrying when another allocation won the race; returns what `f` returned.
async fn update_state<T>(
    engine: &Engine,
    seq: &crate::catalog::SequenceDef,
    mut f: impl FnMut(i64, bool) -> Result<(T, i64, bool)>,
) -> Result<T> {
    let done = commit_outside_txn(engine, &state_key(seq), |current| {
        let (last, called) = decode_state(seq, current)?;
        let (out, new_last, new_called) = f(last, called)?;
        Ok((out, Some(encode_state(new_last, new_called))))
    })
    .await?;
    done.ok_or_else(|| {
        user_error(
            SqlState::SERIALIZATION_FAILURE,
            format!(
                "could not advance sequence \"{}\": too many concurrent calls",
                seq.name
            ),
        )
    })
}

/// `nextval` `n` times: the values, in order. Like PostgreSQL's, they are never handed out
/// again, whatever becomes of the transaction that asked.
pub(crate) async fn next_values(
    engine: &Engine,
    seq: &crate::catalog::SequenceDef,
    n: usize,
) -> Result<Vec<i64>> {
    update_state(engine, seq, |mut last, mut called| {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let next = if !called {
                last
            } else {
                match last.checked_add(seq.increment) {
                    Some(v) if v >= seq.min && v <= seq.max => v,
                    _ if seq.cycle => {
                        if seq.increment > 0 {
                            seq.min
                        } else {
                            seq.max
                        }
                    }
                    _ => {
                        let (what, bound) = if seq.increment > 0 {
                            ("maximum", seq.max)
                        } else {
                            ("minimum", seq.min)
                        };
                        return Err(user_error(
                            SqlState("2200H"),
                            format!(
                                "nextval: reached {what} value of sequence \"{}\" ({bound})",
                                seq.name
                            ),
                        ));
                    }
                }
            };
            out.push(next);
            last = next;
            called = true;
        }
        Ok((out, last, called))
    })
    .await
}

/// `setval(seq, value, is_called)`.
pub(crate) async fn set_value(
    engine: &Engine,
    seq: &crate::catalog::SequenceDef,
    value: i64,
    is_called: bool,
) -> Result<i64> {
    if value < seq.min || value > seq.max {
        return Err(user_error(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            format!(
                "setval: value {value} is out of bounds for sequence \"{}\" ({}..{})",
                seq.name, seq.min, seq.max
            ),
        ));
    }
    update_state(engine, seq, |_, _| Ok((value, value, is_called))).await
}

/// Back to the start (`TRUNCATE … RESTART IDENTITY`, `ALTER SEQUENCE … RESTART`).
pub(crate) async fn restart(engine: &Engine, seq: &crate::catalog::SequenceDef) -> Result<()> {
    update_state(engine, seq, |_, _| Ok(((), seq.start, false))).await
}
