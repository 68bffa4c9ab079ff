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
    /// Held by the one pass at a time that serves blocked clients, so they pop in line.
    serving: tokio::sync::Mutex<()>,
    /// When the last polling pass started, and the committed LSN it saw.
    last_poll: Mutex<Option<(tokio::time::Instant, u64)>>,
    /// Striped per-key locks: commands on the same key take turns on this node instead of
    /// failing each other's commits (many clients on one hot key).
    key_locks: Vec<tokio::sync::Mutex<()>>,
    /// The engine itself, for serving passes that must run to the end on their own task.
    this: std::sync::Weak<RedisEngine>,
}

/// Number of key lock stripes.
const KEY_LOCK_STRIPES: usize = 1024;

/// How often blocked clients look for writes made on other compute nodes, which do not
/// pass through this node's serving.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Where a blocked client stands.
enum WaitState {
    /// In line; `tried` once its first attempt is over.
    Waiting { tried: bool },
    /// A serving pass runs its command now.
    Attempting { tried: bool },
    /// Its command's answer, for it to take.
    Served(Reply),
    /// It left (timed out, unblocked, disconnected): nothing runs for it any more.
    Gone,
}

/// A client blocked in BLPOP & co.
struct Waiter {
    ticket: u64,
    db: u8,
    args: Vec<Vec<u8>>,
    /// The keys it pops from.
    keys: Vec<Vec<u8>>,
    state: Mutex<WaitState>,
    /// Signalled when an attempt for it ends.
    attempted: Notify,
}

impl Waiter {
    fn wants(&self, touched: &[(u8, Vec<u8>)]) -> bool {
        touched
            .iter()
            .any(|(db, key)| *db == self.db && self.keys.contains(key))
    }

    /// Takes the waiter for an attempt; `None` if it is not waiting, else whether an attempt
    /// already ran for it.
    fn claim(&self) -> Option<bool> {
        let mut state = self.state.lock();
        match *state {
            WaitState::Waiting { tried } => {
                *state = WaitState::Attempting { tried };
                Some(tried)
            }
            _ => None,
        }
    }

    /// Ends an attempt: its answer if it was served, else back to waiting.
    fn finish(&self, served: Option<Reply>) {
        {
            let mut state = self.state.lock();
            match (served, &*state) {
                (Some(reply), _) => *state = WaitState::Served(reply),
                (None, WaitState::Attempting { .. }) => *state = WaitState::Waiting { tried: true },
                _ => {}
            }
        }
        self.attempted.notify_waiters();
    }

    /// Its answer, once served.
    fn take_served(&self) -> Option<Reply> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, WaitState::Gone) {
            WaitState::Served(reply) => Some(reply),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Leaves the line: the answer of an attempt that was running for it (a pop it must not
    /// lose), or `None` if nothing was served.
    async fn leave(&self) -> Option<Reply> {
        loop {
            let attempted = self.attempted.notified();
            tokio::pin!(attempted);
            attempted.as_mut().enable();
            {
                let mut state = self.state.lock();
                match std::mem::replace(&mut *state, WaitState::Gone) {
                    WaitState::Served(reply) => return Some(reply),
                    WaitState::Attempting { tried } => *state = WaitState::Attempting { tried },
                    _ => return None,
                }
            }
            attempted.await;
        }
    }
}

/// A blocked client's place in line, given up when its wait ends or is dropped.
struct InLine<'a> {
    engine: &'a RedisEngine,
    waiter: Arc<Waiter>,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        // An attempt already running for a client that went away may still pop for it, as a
        // reply Redis writes to a closed socket is lost.
        *self.waiter.state.lock() = WaitState::Gone;
        let ticket = self.waiter.ticket;
        self.engine.waiters.lock().retain(|w| w.ticket != ticket);
    }
}

/// `CLIENT UNBLOCK` for one connection: ends its blocking command as a timeout or with an
/// UNBLOCKED error. A pop already under way for it is answered instead.
#[derive(Default)]
pub struct Unblock {
    /// 0: none; 1: as a timeout; 2: with an error.
    requested: std::sync::atomic::AtomicU8,
    notify: Notify,
}

impl Unblock {
    pub fn request(&self, as_error: bool) {
        self.requested
            .store(if as_error { 2 } else { 1 }, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Forgets a request that came when no command was blocked.
    pub fn clear(&self) {
        self.requested.store(0, Ordering::SeqCst);
    }

    /// Resolves with the unblocked command's reply once a request comes.
    async fn requested(&self) -> Reply {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.requested.swap(0, Ordering::SeqCst) {
                1 => return Reply::NilArray,
                2 => {
                    return Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into());
                }
                _ => notified.await,
            }
        }
    }
}

impl RedisEngine {
    /// The SQL engine underneath (the frontends check logins against its roles).
    pub fn sql_engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn new(engine: Arc<Engine>) -> Arc<RedisEngine> {
        Arc::new_cyclic(|this| RedisEngine {
            this: this.clone(),
            engine,
            waiters: Mutex::new(VecDeque::new()),
            next_ticket: AtomicU64::new(1),
            serving: tokio::sync::Mutex::new(()),
            last_poll: Mutex::new(None),
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
        self.waiters.lock().len() as u64
    }

    /// Runs one data command (`args[0]` is its name) on database `db`; a blocking command
    /// (BLPOP …) waits for data up to its timeout, or until `unblock` is requested.
    pub async fn execute(&self, db: u8, args: &[Vec<u8>], unblock: Option<&Unblock>) -> Reply {
        if let Err(e) = commands::check_arity(args) {
            return e.into();
        }
        if commands::is_blocking(args) {
            return match commands::blocking_timeout(args) {
                Ok(0.0) => self.blocking(db, args, None, unblock).await,
                Ok(t) => match Duration::try_from_secs_f64(t)
                    .ok()
                    .and_then(|d| tokio::time::Instant::now().checked_add(d))
                {
                    Some(deadline) => self.blocking(db, args, Some(deadline), unblock).await,
                    None => RedisError::err("timeout is out of range").into(),
                },
                Err(e) => e.into(),
            };
        }
        let (reply, touched) = self.execute_once(db, args).await;
        self.serve(Some(&touched)).await;
        reply
    }

    /// Runs a command once, without blocking: its reply and the keys it wrote (for the
    /// blocked clients those writes may serve).
    async fn execute_once(&self, db: u8, args: &[Vec<u8>]) -> (Reply, Vec<(u8, Vec<u8>)>) {
        let stripes = self.stripes(std::iter::once((db, args)));
        for _ in 0..MAX_ATTEMPTS {
            let locks = self.lock(&stripes).await;
            let mut txn = match RedisTxn::begin(&self.engine, db).await {
                Ok(t) => t,
                Err(e) => return (e.into(), Vec::new()),
            };
            let reply = match commands::dispatch(&mut txn, args).await {
                Ok(r) => r,
                // A failed command writes nothing.
                Err(e) => return (e.into(), Vec::new()),
            };
            match Self::commit(txn, locks).await {
                Ok(Some(touched)) => return (reply, touched),
                Ok(None) => continue,
                Err(e) => return (e.into(), Vec::new()),
            }
        }
        (too_many_conflicts(), Vec::new())
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
            match Self::commit(txn, locks).await {
                Ok(Some(touched)) => {
                    self.serve(Some(&touched)).await;
                    return Reply::Array(replies);
                }
                Ok(None) => continue,
                Err(e) => return e.into(),
            }
        }
        too_many_conflicts()
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

    /// BLPOP / BRPOP / BLMOVE-style commands: waits in line until `args` returns something
    /// other than nil, `deadline` passes (`None`: never) or `unblock` is requested.
    ///
    /// Blocked clients are served in the order they blocked, as Redis serves them: a client
    /// never runs its own command; serving passes do, one pass at a time and in line order
    /// (see [`RedisEngine::serve`]), so one push of three elements feeds the first three
    /// clients waiting on that list.
    async fn blocking(
        &self,
        db: u8,
        args: &[Vec<u8>],
        deadline: Option<tokio::time::Instant>,
        unblock: Option<&Unblock>,
    ) -> Reply {
        let me = Arc::new(Waiter {
            ticket: self.next_ticket.fetch_add(1, Ordering::Relaxed),
            db,
            args: args.to_vec(),
            keys: blocking_sources(args).to_vec(),
            state: Mutex::new(WaitState::Waiting { tried: false }),
            attempted: Notify::new(),
        });
        self.waiters.lock().push_back(me.clone());
        let _in_line = InLine {
            engine: self,
            waiter: me.clone(),
        };
        // The first try is a pass over its keys: clients ahead of it on them go first. (No
        // keys: its arguments are wrong, and the pass over everyone answers it with the error.)
        let mine: Vec<(u8, Vec<u8>)> = me.keys.iter().map(|k| (db, k.clone())).collect();
        self.serve((!mine.is_empty()).then_some(&mine)).await;
        let expired = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        let unblocked = async {
            match unblock {
                Some(u) => u.requested().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(unblocked);
        loop {
            let attempted = me.attempted.notified();
            tokio::pin!(attempted);
            attempted.as_mut().enable();
            if let Some(reply) = me.take_served() {
                return reply;
            }
            tokio::select! {
                _ = &mut attempted => {}
                // Writes committed by other compute nodes are found by polling.
                _ = tokio::time::sleep(POLL_INTERVAL) => self.poll().await,
                _ = &mut expired => return me.leave().await.unwrap_or(Reply::NilArray),
                reply = &mut unblocked => return me.leave().await.unwrap_or(reply),
            }
        }
    }

    /// A serving pass for writes this node did not see: over every blocked client, at most
    /// once per poll interval and only when the log moved on since the last one.
    async fn poll(&self) {
        let Ok(lsn) = self.committed_lsn().await else {
            return;
        };
        {
            let mut last = self.last_poll.lock();
            let now = tokio::time::Instant::now();
            if last.is_some_and(|(at, seen)| seen == lsn || now < at + POLL_INTERVAL) {
                return;
            }
            *last = Some((now, lsn));
        }
        self.serve(None).await;
    }

    /// Serves the blocked clients waiting on `touched` keys (`None`: all of them) after a
    /// write to those keys: runs their commands one at a time in line order, each a
    /// transaction of its own, and hands each client its answer. A served command that writes
    /// (BLMOVE pushes onto its destination) serves the clients waiting on what it wrote in
    /// turn. Only one pass runs at a time, so no client is served out of turn; the writer
    /// answers after the pass, as Redis answers a push after the clients it fed.
    async fn serve(&self, touched: Option<&[(u8, Vec<u8>)]>) {
        let wanted = {
            let waiters = self.waiters.lock();
            match touched {
                Some(t) => waiters.iter().any(|w| w.wants(t)),
                None => !waiters.is_empty(),
            }
        };
        if !wanted {
            return;
        }
        // The pass runs on its own task: a caller that goes away (a blocked client that
        // disconnects) must not leave another client's attempt half done.
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let touched = touched.map(<[_]>::to_vec);
        let _ = tokio::spawn(async move { this.serve_pass(touched).await }).await;
    }

    async fn serve_pass(&self, touched: Option<Vec<(u8, Vec<u8>)>>) {
        let _turn = self.serving.lock().await;
        let mut touched = touched;
        loop {
            let line: Vec<Arc<Waiter>> = self
                .waiters
                .lock()
                .iter()
                .filter(|w| touched.as_deref().is_none_or(|t| w.wants(t)))
                .cloned()
                .collect();
            let mut wrote = Vec::new();
            for waiter in line {
                let Some(tried) = waiter.claim() else {
                    continue;
                };
                let (reply, keys) = self.execute_once(waiter.db, &waiter.args).await;
                // Once blocked, a source key that meanwhile holds another type is not an error:
                // the client waits until one of its keys holds what it pops.
                let wrong_type = tried
                    && matches!(&reply, Reply::Error(e) if e.starts_with("WRONGTYPE"))
                    && self.source_holds_other_type(waiter.db, &waiter.args).await;
                let served = !matches!(reply, Reply::Nil | Reply::NilArray) && !wrong_type;
                if served {
                    let ticket = waiter.ticket;
                    self.waiters.lock().retain(|w| w.ticket != ticket);
                }
                waiter.finish(served.then_some(reply));
                wrote.extend(keys);
            }
            if wrote.is_empty() {
                return;
            }
            touched = Some(wrote);
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
        Self::commit(txn, Vec::new()).await.map(|_| ())
    }

    /// Commits, then releases `locks`: the keys it wrote, or `None` on a conflict (run the
    /// command again).
    async fn commit(
        txn: RedisTxn,
        locks: Vec<tokio::sync::MutexGuard<'_, ()>>,
    ) -> Result<Option<Vec<(u8, Vec<u8>)>>, RedisError> {
        let touched = if txn.has_writes() {
            txn.touched.clone()
        } else {
            Vec::new()
        };
        let committed = txn.commit().await;
        drop(locks);
        match committed? {
            Committed::Yes => Ok(Some(touched)),
            Committed::Conflict => Ok(None),
        }
    }
}

fn too_many_conflicts() -> Reply {
    RedisError("TRYAGAIN too many concurrent conflicting writes; retry".into()).into()
}
