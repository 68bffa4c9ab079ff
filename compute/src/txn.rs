//! Transactions: a snapshot LSN, buffered writes laid over every read, and the read set that
//! SERIALIZABLE validates at commit.

use crate::error::Result;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use thunderdb_common::Lsn;
use thunderdb_pageserver::{PageService, Value};

/// Transaction isolation levels.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read committed",
            Isolation::RepeatableRead => "repeatable read",
            Isolation::Serializable => "serializable",
        }
    }

    pub fn parse(s: &str) -> Option<Isolation> {
        match s.trim().to_lowercase().replace(['_', '-'], " ").as_str() {
            "read committed" | "read uncommitted" => Some(Isolation::ReadCommitted),
            "repeatable read" | "snapshot" => Some(Isolation::RepeatableRead),
            "serializable" => Some(Isolation::Serializable),
            _ => None,
        }
    }
}

/// A key and its entry in the write set before a statement changed it (`None`: no entry).
pub(crate) type UndoEntry = (Vec<u8>, Option<Option<Value>>);

/// The mutable part of a transaction shared with the table scans of its statements.
#[derive(Default)]
pub struct TxnWrites {
    /// Buffered writes; `None` deletes.
    pub writes: BTreeMap<Vec<u8>, Option<Value>>,
    pub read_keys: Vec<Vec<u8>>,
    pub read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// Record reads (SERIALIZABLE).
    pub track_reads: bool,
    /// While a statement that may be undone alone runs (MySQL), each key's entry before its
    /// first change in the statement: `None` when the key had no entry.
    pub(crate) undo: Option<Vec<UndoEntry>>,
}

impl TxnWrites {
    /// Starts recording what the next statement changes, so that [`TxnWrites::undo_statement`]
    /// can take it back without touching the transaction's earlier writes.
    pub fn begin_statement(&mut self) {
        self.undo = Some(Vec::new());
    }

    /// The statement succeeded: keep its changes.
    pub fn end_statement(&mut self) {
        self.undo = None;
    }

    /// The statement failed: restores the writes from before it. Its reads stay in the read
    /// set: what the transaction goes on to do may rest on the failure they caused.
    pub fn undo_statement(&mut self) {
        if let Some(undo) = self.undo.take() {
            for (key, before) in undo.into_iter().rev() {
                match before {
                    Some(v) => self.writes.insert(key, v),
                    None => self.writes.remove(&key),
                };
            }
        }
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Value>) {
        if let Some(undo) = self.undo.as_mut() {
            let before = self.writes.get(&key).cloned();
            undo.push((key.clone(), before));
        }
        self.writes.insert(key, value);
    }
}

/// A consistent view for one statement: the pageserver at `snapshot`, overlaid with the
/// transaction's writes.
#[derive(Clone)]
pub struct ReadView {
    pub pages: Arc<dyn PageService>,
    pub snapshot: Lsn,
    pub txn: Arc<Mutex<TxnWrites>>,
}

impl ReadView {
    pub async fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        {
            let mut t = self.txn.lock();
            if let Some(v) = t.writes.get(key) {
                return Ok(v.clone());
            }
            if t.track_reads {
                t.read_keys.push(key.to_vec());
            }
        }
        Ok(self.pages.get(key, self.snapshot).await?)
    }

    /// Live rows in `[start, end)`, in key order, with the transaction's writes merged in.
    pub async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        // The base needs at most `limit` rows plus one for each of this transaction's deletes
        // in the range (each hides at most one base row).
        let base_limit = limit.map(|l| {
            let t = self.txn.lock();
            let deletes = t
                .writes
                .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                .filter(|(_, v)| v.is_none())
                .count();
            l.saturating_add(deletes)
        });
        let base = self
            .pages
            .scan(start, end, self.snapshot, base_limit)
            .await?;
        let mut t = self.txn.lock();
        if t.track_reads {
            t.read_ranges.push((start.to_vec(), end.to_vec()));
        }
        let limit = limit.unwrap_or(usize::MAX);
        let overlay = t
            .writes
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)));
        let mut out = Vec::with_capacity(base.len());
        let mut overlay = overlay.peekable();
        let mut base = base.into_iter().peekable();
        while out.len() < limit {
            let take_overlay = match (base.peek(), overlay.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((ok, _))) => ok.as_slice() <= bk.as_slice(),
            };
            if take_overlay {
                let (k, v) = overlay.next().expect("peeked");
                if base.peek().is_some_and(|(bk, _)| bk == k) {
                    base.next();
                }
                if let Some(v) = v {
                    out.push((k.clone(), v.clone()));
                }
            } else {
                out.push(base.next().expect("peeked"));
            }
        }
        Ok(out)
    }

    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) {
        self.txn.lock().write(key, Some(Arc::from(value)));
    }

    pub fn delete(&self, key: Vec<u8>) {
        self.txn.lock().write(key, None);
    }
}
