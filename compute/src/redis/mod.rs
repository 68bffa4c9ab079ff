//! Redis data commands over the transactional key space.
//!
//! Every command runs as one transaction (MULTI/EXEC runs its queue as one): reads at the
//! latest committed LSN, buffered writes, one commit to the WAL service, so Redis data is as
//! durable and replicated as SQL rows. A conflicting concurrent commit makes the command run
//! again on the newer state, which keeps each command atomic as Redis promises. Connection
//! state (selected database, MULTI queue, subscriptions) belongs to the frontend.

mod bits;
mod commands;
mod hashes;
mod keys;
pub(crate) mod keyspace;
mod lists;
mod reply;
mod sets;
pub(crate) mod sql;
mod store;
mod strings;
mod zsets;

pub use commands::{COMMANDS, CommandSpec, command_spec, glob_match, unknown_command};
pub use reply::{RedisError, Reply};

use crate::engine::Engine;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use store::{Committed, RedisTxn};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often a command that keeps conflicting is run again before giving up.
const MAX_ATTEMPTS: usize = 64;

/// Number of logical databases (`SELECT 0` … `SELECT 15`).
pub const DATABASES: u8 = 16;

/// A key watched by `WATCH`: its database, name, and the stamp it had then (`None`: absent).
#[derive(Clone, Debug)]
pub struct Watched {
    pub db: u8,
    pub key: Vec<u8>,
    pub stamp: Option<u64>,
}

/// The Redis engine of one compute node.
pub struct RedisEngine {
    engine: Arc<Engine>,
    /// Clients blocked in BLPOP & co, in the order they blocked: ticket and wake-up.
    waiters: Mutex<VecDeque<(u64, Arc<Notify>)>>,
    next_ticket: AtomicU64,
}

/// A blocked client's place in line, given up when its wait ends or is dropped.
struct InLine<'a> {
    engine: &'a RedisEngine,
    ticket: u64,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.engine
            .waiters
            .lock()
            .retain(|(t, _)| *t != self.ticket);
    }
}

impl RedisEngine {
    pub fn new(engine: Arc<Engine>) -> Arc<RedisEngine> {
        Arc::new(RedisEngine {
            engine,
            waiters: Mutex::new(VecDeque::new()),
            next_ticket: AtomicU64::new(1),
        })
    }

    /// The last committed LSN of the WAL: how far every replica has the data.
    pub async fn committed_lsn(&self) -> Result<u64, RedisError> {
        self.engine
            .wal
            .last_committed_lsn()
            .await
            .map(|l| l.0)
            .map_err(RedisError::from_wal)
    }

    /// How many clients wait in a blocking command.
    pub fn blocked_clients(&self) -> u64 {
        // The first try happens in line too; a client counts once it waits.
        self.waiters.lock().len() as u64
    }

    /// Runs one data command (`args[0]` is its name) on database `db`; a blocking command
    /// (BLPOP …) waits for data up to its timeout.
    pub async fn execute(&self, db: u8, args: &[Vec<u8>]) -> Reply {
        if let Err(e) = commands::check_arity(args) {
            return e.into();
        }
        if commands::is_blocking(args) {
            return match commands::blocking_timeout(args) {
                Ok(0.0) => self.blocking(db, args, None).await,
                Ok(t) => {
                    self.blocking(db, args, Some(Duration::from_secs_f64(t)))
                        .await
                }
                Err(e) => e.into(),
            };
        }
        self.execute_once(db, args).await
    }

    /// Runs a command once, without blocking.
    async fn execute_once(&self, db: u8, args: &[Vec<u8>]) -> Reply {
        for _ in 0..MAX_ATTEMPTS {
            let mut txn = match RedisTxn::begin(&self.engine, db).await {
                Ok(t) => t,
                Err(e) => return e.into(),
            };
            let reply = match commands::dispatch(&mut txn, args).await {
                Ok(r) => r,
                // A failed command writes nothing.
                Err(e) => return e.into(),
            };
            match self.commit(txn).await {
                Ok(true) => return reply,
                Ok(false) => continue,
                Err(e) => return e.into(),
            }
        }
        RedisError("TRYAGAIN too many concurrent conflicting writes; retry".into()).into()
    }

    /// Runs a MULTI queue — each command with the database it runs in — as one transaction;
    /// `NilArray` when a watched key changed.
    pub async fn exec(&self, queue: &[(u8, Vec<Vec<u8>>)], watched: &[Watched]) -> Reply {
        let first_db = queue.first().map_or(0, |(db, _)| *db);
        for _ in 0..MAX_ATTEMPTS {
            let mut txn = match RedisTxn::begin(&self.engine, first_db).await {
                Ok(t) => t,
                Err(e) => return e.into(),
            };
            for w in watched {
                match txn.meta_in(w.db, &w.key).await {
                    Ok(meta) if meta.as_ref().map(|m| m.stamp) == w.stamp => {
                        txn.watch_key(w.db, &w.key)
                    }
                    Ok(_) => return Reply::NilArray,
                    Err(e) => return e.into(),
                }
            }
            let mut replies = Vec::with_capacity(queue.len());
            for (db, args) in queue {
                txn.db = *db;
                // A command that fails inside EXEC changes nothing; the others still run.
                let saved = txn.save_writes();
                let reply = match commands::check_arity(args) {
                    Ok(()) => commands::dispatch(&mut txn, args).await,
                    Err(e) => Err(e),
                };
                replies.push(reply.unwrap_or_else(|e| {
                    txn.restore_writes(saved);
                    e.into()
                }));
            }
            match self.commit(txn).await {
                Ok(true) => return Reply::Array(replies),
                Ok(false) => continue,
                Err(e) => return e.into(),
            }
        }
        RedisError("TRYAGAIN too many concurrent conflicting writes; retry".into()).into()
    }

    /// The stamp `WATCH` remembers for `key`.
    pub async fn watch(&self, db: u8, key: &[u8]) -> Result<Watched, RedisError> {
        let txn = RedisTxn::begin(&self.engine, db).await?;
        Ok(Watched {
            db,
            key: key.to_vec(),
            stamp: txn.meta(key).await?.map(|m| m.stamp),
        })
    }

    /// BLPOP / BRPOP / BLMOVE-style commands: runs `args` once at a time until it returns
    /// something other than nil or `timeout` passes (`None`: forever).
    ///
    /// Blocked clients are served in the order they blocked, as Redis serves them: each
    /// commit that writes Redis data wakes the longest-waiting one, and each woken client
    /// wakes the next after its attempt, so one push of three elements feeds the first three
    /// waiters in order.
    async fn blocking(&self, db: u8, args: &[Vec<u8>], timeout: Option<Duration>) -> Reply {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        // In line before the first try, so a commit right after it still wakes this client.
        self.waiters.lock().push_back((ticket, wake.clone()));
        let _in_line = InLine {
            engine: self,
            ticket,
        };
        let mut woken_in_turn = false;
        let mut first = true;
        loop {
            let reply = self.execute_once(db, args).await;
            // Once blocked, a key that meanwhile holds another type is not an error: the
            // client waits until one of its keys holds what it pops.
            let wrong_type =
                !first && matches!(&reply, Reply::Error(e) if e.starts_with("WRONGTYPE"));
            let served = !matches!(reply, Reply::Nil | Reply::NilArray) && !wrong_type;
            if woken_in_turn || served {
                self.wake_after(ticket);
            }
            if served {
                return reply;
            }
            first = false;
            // Also poll: writes committed by other compute nodes do not wake this one.
            let poll = tokio::time::sleep(Duration::from_millis(100));
            let expired = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wake.notified() => woken_in_turn = true,
                _ = poll => woken_in_turn = false,
                _ = expired => return Reply::NilArray,
            }
        }
    }

    /// Wakes the first blocked client that blocked after `ticket` (the first of all for 0).
    fn wake_after(&self, ticket: u64) {
        let waiters = self.waiters.lock();
        if let Some((_, wake)) = waiters.iter().find(|(t, _)| *t > ticket) {
            wake.notify_one();
        }
    }

    /// Per database with keys: (db, keys, keys with an expiry), as `INFO keyspace` shows.
    pub async fn keyspace(&self) -> Result<Vec<(u8, u64, u64)>, RedisError> {
        let txn = RedisTxn::begin(&self.engine, 0).await?;
        let mut counts = std::collections::BTreeMap::new();
        for (db, _, meta) in txn.keys(None, None, None).await? {
            let entry = counts.entry(db).or_insert((0, 0));
            entry.0 += 1;
            if meta.expire_at_ms.is_some() {
                entry.1 += 1;
            }
        }
        Ok(counts.into_iter().map(|(db, (k, e))| (db, k, e)).collect())
    }

    /// Deletes expired keys in the background (reads already treat them as absent), until
    /// `cancel`.
    pub fn spawn_expiry(self: &Arc<Self>, cancel: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                if let Err(e) = this.expire_some(200).await {
                    tracing::debug!(error = %e, "active expiry pass failed; retrying");
                }
            }
        });
    }

    /// One active-expiry pass: removes up to `limit` keys whose time has come.
    async fn expire_some(&self, limit: usize) -> Result<(), RedisError> {
        let mut txn = RedisTxn::begin(&self.engine, 0).await?;
        let due = txn.due_expiries(limit).await?;
        if due.is_empty() {
            return Ok(());
        }
        for (db, key) in due {
            txn.delete_key_in(db, &key).await?;
        }
        self.commit(txn).await.map(|_| ())
    }

    /// Commits; `false` on a conflict (run the command again).
    async fn commit(&self, txn: RedisTxn) -> Result<bool, RedisError> {
        let wrote = txn.has_writes();
        match txn.commit().await? {
            Committed::Yes => {
                if wrote {
                    self.wake_after(0);
                }
                Ok(true)
            }
            Committed::Conflict => Ok(false),
        }
    }
}
