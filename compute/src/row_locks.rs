//! Row write locks for READ COMMITTED. A READ COMMITTED statement that writes keys takes a lock
//! on each of them for the rest of its transaction; a statement of another transaction that
//! writes one of those keys waits until the holder ends, then runs again on a snapshot that
//! sees the holder's commit (see `Session::run_read_committed`). That is PostgreSQL's behaviour:
//! concurrent `UPDATE … SET n = n + 1` on one row all apply, one after the other, instead of
//! all but one failing with 40001 at COMMIT.
//!
//! The locks live in the compute node. Writers on other compute nodes, and REPEATABLE READ and
//! SERIALIZABLE transactions (which fail on a concurrent change anyway), do not take them: the
//! walservice's commit-time validation stays what guarantees no lost update.
//!
//! A wait that would close a cycle of waiting transactions fails at once with 40P01 (deadlock
//! detected); `lock_timeout` bounds a wait (55P03).

use crate::error::user_error;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use thunderdb_common::{SqlState, ThunderError};
use tokio::sync::watch;

/// The lock table of one compute node.
#[derive(Default)]
pub(crate) struct RowLocks {
    table: Mutex<Table>,
    next_owner: AtomicU64,
}

#[derive(Default)]
struct Table {
    holders: HashMap<Vec<u8>, Arc<Owner>>,
    /// Each waiting transaction (by owner id) and the holder it waits for.
    waits_for: HashMap<u64, Arc<Owner>>,
}

/// A transaction as a lock holder; `released` counts the times it released locks.
struct Owner {
    id: u64,
    released: watch::Sender<u64>,
}

/// The locks one transaction holds; dropping it (the transaction ends) releases them.
pub(crate) struct HeldLocks {
    locks: Arc<RowLocks>,
    owner: Arc<Owner>,
    keys: Vec<Vec<u8>>,
}

/// Removes a waiter's edge from the wait-for graph however its wait ends (cancelled too).
struct Waiting<'a> {
    locks: &'a RowLocks,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.locks.table.lock().waits_for.remove(&self.id);
    }
}

impl HeldLocks {
    pub(crate) fn new(locks: &Arc<RowLocks>) -> HeldLocks {
        let (released, _) = watch::channel(0);
        HeldLocks {
            locks: locks.clone(),
            owner: Arc::new(Owner {
                id: locks.next_owner.fetch_add(1, Ordering::Relaxed),
                released,
            }),
            keys: Vec::new(),
        }
    }

    /// Takes the lock on every key of `keys`, waiting for the transactions that hold them to
    /// end. Fails with 40P01 when waiting would deadlock, 55P03 when a wait outlasts `timeout`.
    pub(crate) async fn acquire(
        &mut self,
        keys: &[Vec<u8>],
        timeout: Option<Duration>,
    ) -> Result<(), ThunderError> {
        for key in keys {
            loop {
                let mut released = {
                    let mut table = self.locks.table.lock();
                    let holder = match table.holders.get(key) {
                        None => {
                            table.holders.insert(key.clone(), self.owner.clone());
                            self.keys.push(key.clone());
                            break;
                        }
                        Some(h) if h.id == self.owner.id => break,
                        Some(h) => h.clone(),
                    };
                    // Waiting closes a cycle when the holder (transitively) waits for us.
                    let mut next = Some(&holder);
                    while let Some(h) = next {
                        if h.id == self.owner.id {
                            return Err(user_error(SqlState("40P01"), "deadlock detected")
                                .with_detail(
                                    "Two transactions each wait for a row the other has written.",
                                ));
                        }
                        next = table.waits_for.get(&h.id);
                    }
                    table.waits_for.insert(self.owner.id, holder.clone());
                    holder.released.subscribe()
                };
                let _waiting = Waiting {
                    locks: &self.locks,
                    id: self.owner.id,
                };
                // Any release by the holder sends us back to look at the key again (a holder
                // gone altogether closes the channel, which counts as a release too).
                let wait = released.changed();
                match timeout {
                    None => drop(wait.await),
                    Some(limit) => {
                        if tokio::time::timeout(limit, wait).await.is_err() {
                            return Err(user_error(
                                SqlState("55P03"),
                                "canceling statement due to lock timeout",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// How many locks the transaction holds.
    pub(crate) fn held(&self) -> usize {
        self.keys.len()
    }

    /// Releases the locks taken after the first `kept` (a savepoint's, a statement's start) and
    /// wakes the transactions waiting for this one.
    pub(crate) fn release_after(&mut self, kept: usize) {
        if self.keys.len() > kept {
            let released: Vec<_> = self.keys.drain(kept..).collect();
            self.unlock(released);
        }
    }

    /// Releases, among the locks taken after the first `kept`, those on keys not in `keep`
    /// (what a statement that ran again no longer writes).
    pub(crate) fn release_unlisted_after(&mut self, kept: usize, keep: &[Vec<u8>]) {
        if self.keys.len() <= kept {
            return;
        }
        let keep: HashSet<&[u8]> = keep.iter().map(Vec::as_slice).collect();
        let (retained, released): (Vec<_>, Vec<_>) = self
            .keys
            .drain(kept..)
            .partition(|k| keep.contains(k.as_slice()));
        self.keys.extend(retained);
        if !released.is_empty() {
            self.unlock(released);
        }
    }

    /// Removes the locks on `keys` from the table and wakes the transactions waiting for this one.
    fn unlock(&self, keys: Vec<Vec<u8>>) {
        {
            let mut table = self.locks.table.lock();
            for key in keys {
                if table
                    .holders
                    .get(&key)
                    .is_some_and(|h| h.id == self.owner.id)
                {
                    table.holders.remove(&key);
                }
            }
        }
        self.owner.released.send_modify(|n| *n += 1);
    }
}

impl Drop for HeldLocks {
    fn drop(&mut self) {
        self.release_after(0);
    }
}

/// `lock_timeout` as PostgreSQL reads it: milliseconds, or a number with a unit (`us`, `ms`,
/// `s`, `min`, `h`, `d`); 0 waits forever. `None` when the value does not parse.
pub(crate) fn parse_timeout(value: &str) -> Option<Option<Duration>> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => number,
        "us" => number / 1000.0,
        "s" => number * 1000.0,
        "min" => number * 60_000.0,
        "h" => number * 3_600_000.0,
        "d" => number * 86_400_000.0,
        _ => return None,
    };
    if !(0.0..=i32::MAX as f64).contains(&ms) {
        return None;
    }
    Some((ms >= 1.0).then(|| Duration::from_micros((ms * 1000.0) as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_writer_waits_for_the_holder_and_a_cycle_is_a_deadlock() {
        let locks = Arc::new(RowLocks::default());
        let mut a = HeldLocks::new(&locks);
        let mut b = HeldLocks::new(&locks);
        let (k1, k2) = (b"k1".to_vec(), b"k2".to_vec());
        a.acquire(std::slice::from_ref(&k1), None).await.unwrap();
        b.acquire(std::slice::from_ref(&k2), None).await.unwrap();
        // A retaking its own lock does not wait.
        a.acquire(std::slice::from_ref(&k1), None).await.unwrap();
        let err = b
            .acquire(std::slice::from_ref(&k1), Some(Duration::from_millis(20)))
            .await
            .unwrap_err();
        assert_eq!(err.state, SqlState("55P03"));
        // B waits for A's k1 while A asks for B's k2: A's request closes the cycle.
        let key = k1.clone();
        let waiter =
            tokio::spawn(
                async move { b.acquire(std::slice::from_ref(&key), None).await.map(|_| b) },
            );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = a
            .acquire(std::slice::from_ref(&k2), None)
            .await
            .unwrap_err();
        assert_eq!(err.state, SqlState("40P01"));
        assert!(!waiter.is_finished());
        drop(a);
        let mut b = waiter.await.unwrap().unwrap();
        assert_eq!(b.held(), 2);
        // Releasing part of them (a savepoint rolled back) wakes a waiter for those.
        let mut c = HeldLocks::new(&locks);
        let waiter =
            tokio::spawn(
                async move { c.acquire(std::slice::from_ref(&k1), None).await.map(|_| c) },
            );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        b.release_after(1);
        assert_eq!(waiter.await.unwrap().unwrap().held(), 1);
        drop(b);
        assert!(locks.table.lock().holders.is_empty());
        assert!(locks.table.lock().waits_for.is_empty());
    }

    #[tokio::test]
    async fn a_statement_run_again_keeps_only_the_locks_it_still_needs() {
        let locks = Arc::new(RowLocks::default());
        let mut a = HeldLocks::new(&locks);
        let keys: Vec<Vec<u8>> = ["k1", "k2", "k3"].map(|k| k.as_bytes().to_vec()).into();
        a.acquire(&keys, None).await.unwrap();
        let mut b = HeldLocks::new(&locks);
        let k2 = keys[1].clone();
        let waiter =
            tokio::spawn(
                async move { b.acquire(std::slice::from_ref(&k2), None).await.map(|_| b) },
            );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        // The first lock came before the statement; its second run writes k3 (and k4) only.
        a.release_unlisted_after(1, &[keys[2].clone(), b"k4".to_vec()]);
        assert_eq!(waiter.await.unwrap().unwrap().held(), 1);
        assert_eq!(a.held(), 2);
        let holders = &locks.table.lock().holders;
        assert_eq!(holders.len(), 2, "k1 and k3 stay with a, k2 went to b");
        assert!(holders.get(&keys[0]).is_some_and(|h| h.id == a.owner.id));
        assert!(holders.get(&keys[2]).is_some_and(|h| h.id == a.owner.id));
    }

    #[test]
    fn lock_timeout_values_parse_as_postgresql_reads_them() {
        assert_eq!(parse_timeout("0"), Some(None));
        assert_eq!(parse_timeout("250"), Some(Some(Duration::from_millis(250))));
        assert_eq!(parse_timeout("2s"), Some(Some(Duration::from_secs(2))));
        assert_eq!(parse_timeout("1 min"), Some(Some(Duration::from_secs(60))));
        assert_eq!(parse_timeout("soon"), None);
        assert_eq!(parse_timeout("-1"), None);
    }
}
