//! One Redis transaction over the key space: reads at a snapshot with its own writes laid over
//! them, committed to the WAL service as one record (first committer wins).

use super::keyspace::{self, KIND_MEMBER, KeyType, Meta};
use super::reply::RedisError;
use crate::engine::Engine;
use crate::txn::{ReadView, TxnWrites};
use parking_lot::Mutex;
use std::sync::Arc;
use thunderdb_common::TxnId;
use thunderdb_common::wal::KeyWrite;
use thunderdb_walservice::{CommitOutcome, CommitRequest};

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How a commit ended.
pub enum Committed {
    /// Durable (or nothing to write).
    Yes,
    /// Another transaction wrote a key this one wrote or watched since its snapshot.
    Conflict,
}

/// Buffered writes saved before a command runs.
pub struct SavedWrites(
    std::collections::BTreeMap<Vec<u8>, Option<thunderdb_pageserver::Value>>,
    usize,
);

/// A Redis transaction on database `db`.
pub struct RedisTxn {
    engine: Arc<Engine>,
    view: ReadView,
    pub db: u8,
    /// The time every expiry check of this transaction uses.
    pub now_ms: i64,
    /// Written into the metadata of every key this transaction changes.
    stamp: u64,
    /// Keys whose metadata a commit must find unchanged (WATCH).
    read_keys: Vec<Vec<u8>>,
    /// Metadata keys this transaction read: a transaction that writes commits only if none
    /// changed since its snapshot, so a command that reads one key and writes another
    /// (SUNIONSTORE, RPOPLPUSH, SORT … STORE) behaves as if run alone, as Redis runs it.
    read_metas: Mutex<Vec<Vec<u8>>>,
    /// Keys written, for waking blocked list pops.
    pub touched: Vec<(u8, Vec<u8>)>,
}

impl RedisTxn {
    /// Starts a transaction at the latest committed LSN.
    pub async fn begin(engine: &Arc<Engine>, db: u8) -> Result<RedisTxn, RedisError> {
        let snapshot = engine
            .wal
            .last_committed_lsn()
            .await
            .map_err(RedisError::from_wal)?;
        let txn_id = TxnId::random();
        Ok(RedisTxn {
            engine: engine.clone(),
            view: ReadView {
                pages: engine.pages.clone(),
                snapshot,
                txn: Arc::new(Mutex::new(TxnWrites::default())),
            },
            db,
            now_ms: now_ms(),
            stamp: (txn_id.0 as u64) | 1,
            read_keys: Vec::new(),
            read_metas: Mutex::new(Vec::new()),
            touched: Vec::new(),
        })
    }

    /// Makes the commit fail if `key`'s metadata changed after the snapshot.
    pub fn watch_key(&mut self, db: u8, key: &[u8]) {
        self.read_keys.push(keyspace::meta_key(db, key));
    }

    /// The live metadata of `key` in database `db`: `None` when it does not exist or has
    /// expired (an expired key reads as absent; a write removes it).
    pub async fn meta_in(&self, db: u8, key: &[u8]) -> Result<Option<Meta>, RedisError> {
        let meta_key = keyspace::meta_key(db, key);
        let raw = self
            .view
            .get(&meta_key)
            .await
            .map_err(RedisError::internal)?;
        self.read_metas.lock().push(meta_key);
        let Some(raw) = raw else {
            return Ok(None);
        };
        let meta = Meta::decode(&raw)
            .ok_or_else(|| RedisError::internal("unreadable key metadata".to_string()))?;
        Ok((!meta.expired(self.now_ms)).then_some(meta))
    }

    /// The live metadata of `key` in this transaction's database.
    pub async fn meta(&self, key: &[u8]) -> Result<Option<Meta>, RedisError> {
        self.meta_in(self.db, key).await
    }

    /// The metadata of `key` if it exists with type `t`; WRONGTYPE if it has another type.
    pub async fn meta_of(&self, key: &[u8], t: KeyType) -> Result<Option<Meta>, RedisError> {
        match self.meta(key).await? {
            Some(m) if m.key_type != t => Err(RedisError::wrong_type()),
            other => Ok(other),
        }
    }

    /// Writes `key`'s metadata, stamped as changed by this transaction. A collection left
    /// empty is deleted instead, as Redis does.
    pub async fn put_meta(&mut self, key: &[u8], mut meta: Meta) -> Result<(), RedisError> {
        if meta.key_type != KeyType::String && meta.len == 0 {
            return self.delete_key(key).await.map(|_| ());
        }
        let meta_key = keyspace::meta_key(self.db, key);
        let previous = self.stored_expiry(&meta_key).await?;
        if previous != meta.expire_at_ms {
            if let Some(at) = previous {
                self.view.delete(keyspace::expiry_key(at, self.db, key));
            }
            if let Some(at) = meta.expire_at_ms {
                self.view
                    .put(keyspace::expiry_key(at, self.db, key), Vec::new());
            }
        }
        meta.stamp = self.stamp;
        self.view.put(meta_key, meta.encode());
        self.touched.push((self.db, key.to_vec()));
        Ok(())
    }

    /// The expiry stored for a metadata key, live or not.
    async fn stored_expiry(&self, meta_key: &[u8]) -> Result<Option<i64>, RedisError> {
        let raw = self
            .view
            .get(meta_key)
            .await
            .map_err(RedisError::internal)?;
        Ok(raw
            .and_then(|r| Meta::decode(&r))
            .and_then(|m| m.expire_at_ms))
    }

    /// Keys whose expiry time has come, oldest first, at most `limit`.
    pub async fn due_expiries(&self, limit: usize) -> Result<Vec<(u8, Vec<u8>)>, RedisError> {
        let (start, end) = keyspace::expiries_due(self.now_ms);
        let rows = self
            .view
            .scan(&start, &end, Some(limit))
            .await
            .map_err(RedisError::internal)?;
        Ok(rows
            .iter()
            .filter_map(|(k, _)| keyspace::split_expiry_key(k))
            .collect())
    }

    /// Writes metadata in database `db` (MOVE, COPY, SWAPDB).
    pub async fn put_meta_in(&mut self, db: u8, key: &[u8], meta: Meta) -> Result<(), RedisError> {
        let saved = std::mem::replace(&mut self.db, db);
        let result = self.put_meta(key, meta).await;
        self.db = saved;
        result
    }

    /// Removes `key` and all its elements, live or expired; whether a live key was removed.
    pub async fn delete_key(&mut self, key: &[u8]) -> Result<bool, RedisError> {
        self.delete_key_in(self.db, key).await
    }

    /// `delete_key` in database `db`.
    pub async fn delete_key_in(&mut self, db: u8, key: &[u8]) -> Result<bool, RedisError> {
        let meta_key = keyspace::meta_key(db, key);
        let Some(raw) = self
            .view
            .get(&meta_key)
            .await
            .map_err(RedisError::internal)?
        else {
            return Ok(false);
        };
        let meta = Meta::decode(&raw);
        let live = meta.as_ref().is_some_and(|m| !m.expired(self.now_ms));
        let is_collection = meta.as_ref().is_none_or(|m| m.key_type != KeyType::String);
        if let Some(at) = meta.as_ref().and_then(|m| m.expire_at_ms) {
            self.view.delete(keyspace::expiry_key(at, db, key));
        }
        self.view.delete(meta_key);
        if is_collection {
            let prefix = keyspace::key_elements_prefix(db, key);
            let end = thunderdb_common::keys::prefix_end(&prefix).expect("prefix below 0xFF");
            for (k, _) in self
                .view
                .scan(&prefix, &end, None)
                .await
                .map_err(RedisError::internal)?
            {
                self.view.delete(k);
            }
        }
        self.touched.push((db, key.to_vec()));
        Ok(live)
    }

    /// An element of `key` (`kind` / `sub`).
    pub async fn element(
        &self,
        key: &[u8],
        kind: u8,
        sub: &[u8],
    ) -> Result<Option<Vec<u8>>, RedisError> {
        let mut k = keyspace::element_prefix(self.db, key, kind);
        k.extend_from_slice(sub);
        Ok(self
            .view
            .get(&k)
            .await
            .map_err(RedisError::internal)?
            .map(|v| v.to_vec()))
    }

    /// A member element (hash field, set member, zset member, list position).
    pub async fn member(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, RedisError> {
        self.element(key, KIND_MEMBER, sub).await
    }

    pub fn put_element(&mut self, key: &[u8], kind: u8, sub: &[u8], value: Vec<u8>) {
        let mut k = keyspace::element_prefix(self.db, key, kind);
        k.extend_from_slice(sub);
        self.view.put(k, value);
    }

    pub fn delete_element(&mut self, key: &[u8], kind: u8, sub: &[u8]) {
        let mut k = keyspace::element_prefix(self.db, key, kind);
        k.extend_from_slice(sub);
        self.view.delete(k);
    }

    /// Elements of `key` of `kind` whose sub-keys lie in `[from, to)` (both relative to the
    /// kind's prefix; `to = None` for no upper bound), in order, at most `limit`.
    pub async fn elements(
        &self,
        key: &[u8],
        kind: u8,
        from: &[u8],
        to: Option<&[u8]>,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, RedisError> {
        let prefix = keyspace::element_prefix(self.db, key, kind);
        let mut start = prefix.clone();
        start.extend_from_slice(from);
        let end = match to {
            Some(to) => {
                let mut e = prefix.clone();
                e.extend_from_slice(to);
                e
            }
            None => thunderdb_common::keys::prefix_end(&prefix).expect("prefix below 0xFF"),
        };
        let rows = self
            .view
            .scan(&start, &end, limit)
            .await
            .map_err(RedisError::internal)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (k[prefix.len()..].to_vec(), v.to_vec()))
            .collect())
    }

    /// All member elements of `key`.
    pub async fn members(&self, key: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, RedisError> {
        self.elements(key, KIND_MEMBER, &[], None, None).await
    }

    /// Live keys of database `db` (all databases for `None`) with their metadata, in key
    /// order, starting after `after`, at most `limit`.
    pub async fn keys(
        &self,
        db: Option<u8>,
        after: Option<&[u8]>,
        limit: Option<usize>,
    ) -> Result<Vec<(u8, Vec<u8>, Meta)>, RedisError> {
        let (mut start, end) = keyspace::meta_range(db);
        if let (Some(db), Some(after)) = (db, after) {
            start = keyspace::meta_key(db, after);
            start.push(0);
        }
        let mut out = Vec::new();
        // Expired keys are skipped, so fetch in pages until `limit` live ones are found.
        loop {
            let page = self
                .view
                .scan(
                    &start,
                    &end,
                    Some(limit.unwrap_or(usize::MAX).clamp(1, 1024)),
                )
                .await
                .map_err(RedisError::internal)?;
            let done = page.len() < limit.unwrap_or(usize::MAX).clamp(1, 1024);
            for (k, v) in &page {
                let (Some((db, key)), Some(meta)) = (keyspace::split_meta_key(k), Meta::decode(v))
                else {
                    continue;
                };
                if !meta.expired(self.now_ms) {
                    out.push((db, key, meta));
                }
            }
            if done || limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            match page.last() {
                Some((k, _)) => {
                    start = k.clone();
                    start.push(0);
                }
                None => break,
            }
        }
        if let Some(l) = limit {
            out.truncate(l);
        }
        Ok(out)
    }

    /// Every element of `key` in database `db`: kind, sub-key, value.
    pub async fn all_elements_in(
        &self,
        db: u8,
        key: &[u8],
    ) -> Result<Vec<(u8, Vec<u8>, Vec<u8>)>, RedisError> {
        let prefix = keyspace::key_elements_prefix(db, key);
        let end = thunderdb_common::keys::prefix_end(&prefix).expect("prefix below 0xFF");
        let rows = self
            .view
            .scan(&prefix, &end, None)
            .await
            .map_err(RedisError::internal)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| {
                let (&kind, sub) = k[prefix.len()..].split_first()?;
                Some((kind, sub.to_vec(), v.to_vec()))
            })
            .collect())
    }

    /// Writes an element of `key` in database `db`.
    pub fn put_element_in(&mut self, db: u8, key: &[u8], kind: u8, sub: &[u8], value: Vec<u8>) {
        let mut k = keyspace::element_prefix(db, key, kind);
        k.extend_from_slice(sub);
        self.view.put(k, value);
    }

    /// Whether this transaction has anything to commit.
    pub fn has_writes(&self) -> bool {
        !self.view.txn.lock().writes.is_empty()
    }

    /// The buffered writes, to put back with `restore_writes` when a command fails midway:
    /// a Redis command that errors changes nothing.
    pub fn save_writes(&self) -> SavedWrites {
        SavedWrites(self.view.txn.lock().writes.clone(), self.touched.len())
    }

    /// Puts back the writes saved by `save_writes`.
    pub fn restore_writes(&mut self, saved: SavedWrites) {
        self.view.txn.lock().writes = saved.0;
        self.touched.truncate(saved.1);
    }

    /// Sends the writes to the WAL service.
    pub async fn commit(self) -> Result<Committed, RedisError> {
        let writes = std::mem::take(&mut self.view.txn.lock().writes);
        if writes.is_empty() && self.read_keys.is_empty() {
            return Ok(Committed::Yes);
        }
        if writes.is_empty() {
            // Only watched keys: nothing to write, but still check them at the latest LSN.
            let latest = RedisTxn::begin(&self.engine, self.db).await?;
            for k in &self.read_keys {
                let then = self
                    .view
                    .pages
                    .get(k, self.view.snapshot)
                    .await
                    .map_err(RedisError::internal)?;
                let now = latest
                    .view
                    .pages
                    .get(k, latest.view.snapshot)
                    .await
                    .map_err(RedisError::internal)?;
                if then != now {
                    return Ok(Committed::Conflict);
                }
            }
            return Ok(Committed::Yes);
        }
        let request = CommitRequest {
            txn_id: TxnId::random(),
            snapshot_lsn: self.view.snapshot,
            writes: writes
                .into_iter()
                .map(|(key, value)| KeyWrite {
                    key,
                    value: value.map(|v| v.to_vec()),
                })
                .collect(),
            read_keys: {
                let mut keys = self.read_keys;
                keys.extend(self.read_metas.into_inner());
                keys.sort();
                keys.dedup();
                keys
            },
            read_ranges: vec![],
        };
        match self
            .engine
            .wal
            .commit(request)
            .await
            .map_err(RedisError::from_wal)?
        {
            CommitOutcome::Committed(_) => Ok(Committed::Yes),
            CommitOutcome::Conflict { .. } => Ok(Committed::Conflict),
        }
    }
}
