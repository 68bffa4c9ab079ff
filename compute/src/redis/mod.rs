//! Redis data commands over the transactional key space.
//!
//! Every command runs as one transaction (MULTI/EXEC runs its queue as one): reads at the
//! latest committed LSN, buffered writes, one commit to the WAL service, so Redis data is as
//! durable and replicated as SQL rows. A conflicting concurrent commit makes the command run
//! again on the newer state, which keeps each command atomic as Redis promises. Connection
//! state (selected database, MULTI queue, subscriptions) belongs to the frontend.

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
use std::sync::Arc;
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
    /// Woken after every commit that writes Redis data (blocked pops wait on it).
    changed: Notify,
}

impl RedisEngine {
    pub fn new(engine: Arc<Engine>) -> Arc<RedisEngine> {
        Arc::new(RedisEngine {
            engine,
            changed: Notify::new(),
        })
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

    /// Runs a MULTI queue as one transaction; `NilArray` when a watched key changed.
    pub async fn exec(&self, db: u8, queue: &[Vec<Vec<u8>>], watched: &[Watched]) -> Reply {
        for _ in 0..MAX_ATTEMPTS {
            let mut txn = match RedisTxn::begin(&self.engine, db).await {
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
            for args in queue {
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
    async fn blocking(&self, db: u8, args: &[Vec<u8>], timeout: Option<Duration>) -> Reply {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            // Registered before trying, so a commit between the try and the wait still wakes.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let reply = self.execute_once(db, args).await;
            if !matches!(reply, Reply::Nil | Reply::NilArray) {
                return reply;
            }
            // Also poll: writes committed by other compute nodes do not wake this one.
            let poll = tokio::time::sleep(Duration::from_millis(100));
            match deadline {
                Some(d) => {
                    if tokio::time::Instant::now() >= d {
                        return Reply::NilArray;
                    }
                    tokio::select! {
                        _ = changed => {}
                        _ = poll => {}
                        _ = tokio::time::sleep_until(d) => return Reply::NilArray,
                    }
                }
                None => {
                    tokio::select! {
                        _ = changed => {}
                        _ = poll => {}
                    }
                }
            }
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
                    self.changed.notify_waiters();
                }
                Ok(true)
            }
            Committed::Conflict => Ok(false),
        }
    }
}
