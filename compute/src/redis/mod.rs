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
mod sort;
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

/// The keys a blocking command pops from: all but the timeout for BLPOP/BRPOP/BZPOP*, the
/// source of BRPOPLPUSH/BLMOVE, the `numkeys` keys of BLMPOP/BZMPOP.
fn blocking_sources(args: &[Vec<u8>]) -> &[Vec<u8>] {
    match commands::name_of(args).as_str() {
        "brpoplpush" | "blmove" => args.get(1..2).unwrap_or(&[]),
        "blmpop" | "bzmpop" => {
            let n = args
                .get(2)
                .and_then(|a| commands::parse_int(a))
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            args.get(3..3 + n).unwrap_or(&[])
        }
        _ => args.get(1..args.len().saturating_sub(1)).unwrap_or(&[]),
    }
}

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
    /// Clients blocked in BLPOP & co, in the order they blocked.
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
    next_ticket: AtomicU64,
    /// Counts commits that wrote Redis data.
    rounds: AtomicU64,
    /// Signalled after every attempt of a blocked client.
    attempted: Notify,
    /// Striped per-key locks: commands on the same key take turns on this node instead of
    /// failing each other's commits (many clients on one hot key).
    key_locks: Vec<tokio::sync::Mutex<()>>,
}

/// Number of key lock stripes.
const KEY_LOCK_STRIPES: usize = 1024;

/// A client blocked in BLPOP & co.
struct Waiter {
    ticket: u64,
    db: u8,
    /// The keys it pops from.
    keys: Vec<Vec<u8>>,
    wake: Notify,
    /// The newest write round its last finished attempt saw.
    settled: AtomicU64,
    /// In an attempt now.
    busy: std::sync::atomic::AtomicBool,
    /// Its attempt already woke the next in line (from inside its own commit).
    passed_on: std::sync::atomic::AtomicBool,
}

impl Waiter {
    fn wants(&self, touched: &[(u8, Vec<u8>)]) -> bool {
        touched
            .iter()
            .any(|(db, key)| *db == self.db && self.keys.contains(key))
    }
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
            .retain(|w| w.ticket != self.ticket);
        // A client leaving (timed out, disconnected, unblocked) may have held the wake-up:
        // hand it on so the clients behind it are not left to their poll.
        self.engine.wake_after(self.ticket);
        self.engine.attempted.notify_waiters();
    }
}

/// How long a write waits for the blocked clients it feeds before it answers anyway.
const SETTLE_LIMIT: Duration = Duration::from_secs(1);

impl RedisEngine {
    pub fn new(engine: Arc<Engine>) -> Arc<RedisEngine> {
        Arc::new(RedisEngine {
            engine,
            waiters: Mutex::new(VecDeque::new()),
            next_ticket: AtomicU64::new(1),
            rounds: AtomicU64::new(0),
            attempted: Notify::new(),
            key_locks: (0..KEY_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
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
                Ok(t) => match Duration::try_from_secs_f64(t)
                    .ok()
                    .and_then(|d| tokio::time::Instant::now().checked_add(d))
                {
                    Some(deadline) => self.blocking(db, args, Some(deadline)).await,
                    None => RedisError::err("timeout is out of range").into(),
                },
                Err(e) => e.into(),
            };
        }
        self.execute_once(db, args, None).await
    }

    /// Runs a command once, without blocking; `own` is the ticket of the blocked client
    /// running it, if one is.
    async fn execute_once(&self, db: u8, args: &[Vec<u8>], own: Option<u64>) -> Reply {
        let stripes = self.stripes(std::iter::once((db, args)));
        for _ in 0..MAX_ATTEMPTS {
            let locks = self.lock(&stripes).await;
            let mut txn = match RedisTxn::begin(&self.engine, db).await {
                Ok(t) => t,
                Err(e) => return e.into(),
            };
            let reply = match commands::dispatch(&mut txn, args).await {
                Ok(r) => r,
                // A failed command writes nothing.
                Err(e) => return e.into(),
            };
            match self.commit(txn, own, locks).await {
                Ok(true) => return reply,
                Ok(false) => continue,
                Err(e) => return e.into(),
            }
        }
        RedisError("TRYAGAIN too many concurrent conflicting writes; retry".into()).into()
    }

    /// The lock stripes of the keys `commands` name (by their key positions), sorted, so that
    /// every command takes them in one order.
    fn stripes<'a>(&self, commands: impl Iterator<Item = (u8, &'a [Vec<u8>])>) -> Vec<usize> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        let mut stripes = Vec::new();
        for (db, args) in commands {
            let Some(spec) = args.first().and_then(|n| command_spec(n)) else {
                continue;
            };
            if spec.first_key <= 0 || spec.step <= 0 {
                continue;
            }
            let n = args.len() as i32;
            let last = if spec.last_key < 0 {
                n + spec.last_key
            } else {
                spec.last_key.min(n - 1)
            };
            let mut i = spec.first_key;
            while i <= last {
                let key = &args[i as usize];
                stripes.push((hasher.hash_one((db, key)) % KEY_LOCK_STRIPES as u64) as usize);
                i += spec.step;
            }
        }
        stripes.sort_unstable();
        stripes.dedup();
        stripes
    }

    async fn lock(&self, stripes: &[usize]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut guards = Vec::with_capacity(stripes.len());
        for &s in stripes {
            guards.push(self.key_locks[s].lock().await);
        }
        guards
    }

    /// Runs a MULTI queue — each command with the database it runs in — as one transaction;
    /// `NilArray` when a watched key changed.
    pub async fn exec(&self, queue: &[(u8, Vec<Vec<u8>>)], watched: &[Watched]) -> Reply {
        let first_db = queue.first().map_or(0, |(db, _)| *db);
        let stripes = self.stripes(queue.iter().map(|(db, args)| (*db, args.as_slice())));
        for _ in 0..MAX_ATTEMPTS {
            let locks = self.lock(&stripes).await;
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
            match self.commit(txn, None, locks).await {
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
    async fn blocking(
        &self,
        db: u8,
        args: &[Vec<u8>],
        deadline: Option<tokio::time::Instant>,
    ) -> Reply {
        let me = Arc::new(Waiter {
            ticket: self.next_ticket.fetch_add(1, Ordering::Relaxed),
            db,
            keys: blocking_sources(args).to_vec(),
            wake: Notify::new(),
            settled: AtomicU64::new(0),
            busy: std::sync::atomic::AtomicBool::new(false),
            passed_on: std::sync::atomic::AtomicBool::new(false),
        });
        // In line before the first try, so a commit right after it still wakes this client.
        self.waiters.lock().push_back(me.clone());
        let _in_line = InLine {
            engine: self,
            ticket: me.ticket,
        };
        let mut woken_in_turn = false;
        let mut first = true;
        loop {
            let round = self.rounds.load(Ordering::SeqCst);
            me.busy.store(true, Ordering::SeqCst);
            let reply = self.execute_once(db, args, Some(me.ticket)).await;
            // Once blocked, a key that meanwhile holds another type is not an error: the
            // client waits until one of its keys holds what it pops.
            let wrong_type = !first
                && matches!(&reply, Reply::Error(e) if e.starts_with("WRONGTYPE"))
                && self.source_holds_other_type(db, args).await;
            let served = !matches!(reply, Reply::Nil | Reply::NilArray) && !wrong_type;
            me.settled.store(round, Ordering::SeqCst);
            me.busy.store(false, Ordering::SeqCst);
            self.attempted.notify_waiters();
            let passed_on = me.passed_on.swap(false, Ordering::SeqCst);
            if (woken_in_turn || served) && !passed_on {
                self.wake_after(me.ticket);
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
                _ = me.wake.notified() => woken_in_turn = true,
                _ = poll => woken_in_turn = false,
                _ = expired => return Reply::NilArray,
            }
        }
    }

    /// Whether a key a blocking command pops from now holds another type (then the client
    /// keeps waiting); a WRONGTYPE from a destination key is the client's answer instead.
    async fn source_holds_other_type(&self, db: u8, args: &[Vec<u8>]) -> bool {
        let name = commands::name_of(args);
        let expected = if name.starts_with("bz") {
            keyspace::KeyType::ZSet
        } else {
            keyspace::KeyType::List
        };
        let sources = blocking_sources(args);
        let Ok(txn) = RedisTxn::begin(&self.engine, db).await else {
            return false;
        };
        for key in sources {
            if let Ok(Some(meta)) = txn.meta(key).await
                && meta.key_type != expected
            {
                return true;
            }
        }
        false
    }

    /// Wakes the first blocked client that blocked after `ticket` (the first of all for 0).
    fn wake_after(&self, ticket: u64) {
        let waiters = self.waiters.lock();
        if let Some(w) = waiters.iter().find(|w| w.ticket > ticket) {
            w.wake.notify_one();
        }
    }

    /// After a write to `touched`: wakes the line of blocked clients and waits (bounded)
    /// until every client blocked on one of those keys has tried again or left, so that, as
    /// in Redis, the writer's reply comes after the clients it fed were served. `own` (the
    /// blocked client whose attempt wrote, if any) and clients in an attempt are not waited for.
    async fn settle(&self, touched: &[(u8, Vec<u8>)], own: Option<u64>) {
        let round = self.rounds.fetch_add(1, Ordering::SeqCst) + 1;
        match own {
            // A blocked client's own write: its turn is done once the write is committed, so
            // the line goes on from the next client now (and not again after its attempt).
            Some(ticket) => {
                if let Some(me) = self.waiters.lock().iter().find(|w| w.ticket == ticket) {
                    me.passed_on.store(true, Ordering::SeqCst);
                }
                self.wake_after(ticket);
            }
            // The line starts at the first client waiting on a key this write touched.
            None => {
                let first = self
                    .waiters
                    .lock()
                    .iter()
                    .find(|w| w.wants(touched))
                    .map(|w| w.ticket);
                match first {
                    Some(ticket) => self.wake_after(ticket - 1),
                    None => return,
                }
            }
        }
        if self.waiters.lock().iter().all(|w| Some(w.ticket) == own) {
            return;
        }
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        loop {
            let attempted = self.attempted.notified();
            tokio::pin!(attempted);
            attempted.as_mut().enable();
            let pending = self.waiters.lock().iter().any(|w| {
                Some(w.ticket) != own
                    && w.wants(touched)
                    && !w.busy.load(Ordering::SeqCst)
                    && w.settled.load(Ordering::SeqCst) < round
            });
            if !pending {
                return;
            }
            if tokio::time::timeout_at(deadline, attempted).await.is_err() {
                return;
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
        self.commit(txn, None, Vec::new()).await.map(|_| ())
    }

    /// Commits; `false` on a conflict (run the command again).
    /// Commits, then releases `locks` before serving blocked clients (who may need them).
    async fn commit(
        &self,
        txn: RedisTxn,
        own: Option<u64>,
        locks: Vec<tokio::sync::MutexGuard<'_, ()>>,
    ) -> Result<bool, RedisError> {
        let wrote = txn.has_writes();
        let touched = txn.touched.clone();
        let committed = txn.commit().await;
        drop(locks);
        match committed? {
            Committed::Yes => {
                if wrote {
                    self.settle(&touched, own).await;
                }
                Ok(true)
            }
            Committed::Conflict => Ok(false),
        }
    }
}
