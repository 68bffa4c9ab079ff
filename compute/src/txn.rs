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

/// A key and its entry in the write set before a change (`None`: no entry).
pub(crate) type UndoEntry = (Vec<u8>, Option<Option<Value>>);

/// A point the write set can be rolled back to: a savepoint, or the start of a statement that
/// may fail alone (MySQL). Positions in the undo log.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UndoMark(usize);

/// The mutable part of a transaction shared with the table scans of its statements.
#[derive(Default)]
pub struct TxnWrites {
    /// Buffered writes; `None` deletes.
    pub writes: BTreeMap<Vec<u8>, Option<Value>>,
    pub read_keys: Vec<Vec<u8>>,
    pub read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// Record reads (SERIALIZABLE).
    pub track_reads: bool,
    /// Catalog keys of the tables written: a commit fails if their definition changed since
    /// (a concurrent TRUNCATE, DROP or ALTER), at every isolation level.
    pub schema_keys: std::collections::BTreeSet<Vec<u8>>,
    /// Row ranges a DDL statement read to rebuild or check a table (ADD PRIMARY KEY, a new
    /// index, SET NOT NULL …): a row committed there meanwhile fails the commit, at every
    /// isolation level, rather than escaping the rebuild or the check.
    pub schema_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// While any mark is open, each write's previous entry, oldest first.
    pub(crate) undo: Vec<UndoEntry>,
    /// Marks open (savepoints and a running statement): nothing is logged when there are none.
    pub(crate) open_marks: usize,
    /// The mark of the running statement that may be undone alone (MySQL).
    pub(crate) statement: Option<UndoMark>,
}

impl TxnWrites {
    /// Opens a mark: [`TxnWrites::undo_to`] can later restore the write set as it is now.
    pub fn mark(&mut self) -> UndoMark {
        self.open_marks += 1;
        UndoMark(self.undo.len())
    }

    /// Closes a mark, keeping every change made since it.
    pub fn release(&mut self, _mark: UndoMark) {
        self.open_marks = self.open_marks.saturating_sub(1);
        if self.open_marks == 0 {
            self.undo.clear();
        }
    }

    /// Restores the writes as they were when `mark` was taken; the mark stays open. Reads stay
    /// in the read set: what the transaction goes on to do may rest on what they saw.
    pub fn undo_to(&mut self, mark: UndoMark) {
        while self.undo.len() > mark.0 {
            let (key, before) = self.undo.pop().expect("longer than the mark");
            match before {
                Some(v) => self.writes.insert(key, v),
                None => self.writes.remove(&key),
            };
        }
    }

    /// The keys written since `mark` (which must be open), sorted, each once, with whether the
    /// transaction had written the key before the mark.
    pub fn keys_since(&self, mark: UndoMark) -> Vec<(Vec<u8>, bool)> {
        let mut keys: Vec<(Vec<u8>, bool)> = self.undo[mark.0.min(self.undo.len())..]
            .iter()
            .map(|(k, before)| (k.clone(), before.is_some()))
            .collect();
        // Stable: the first write of a key since the mark tells what came before it.
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|later, first| later.0 == first.0);
        keys
    }

    /// Starts recording what the next statement changes, so that [`TxnWrites::undo_statement`]
    /// can take it back without touching the transaction's earlier writes.
    pub fn begin_statement(&mut self) {
        // A statement that was cancelled mid-way never ended its mark: take its writes back.
        self.undo_statement();
        let mark = self.mark();
        self.statement = Some(mark);
    }

    /// The statement succeeded: keep its changes.
    pub fn end_statement(&mut self) {
        if let Some(mark) = self.statement.take() {
            self.release(mark);
        }
    }

    /// The statement failed: restores the writes from before it.
    pub fn undo_statement(&mut self) {
        if let Some(mark) = self.statement.take() {
            self.take_back(mark);
        }
    }

    /// Restores the writes as they were at `mark` and closes it.
    pub fn take_back(&mut self, mark: UndoMark) {
        self.undo_to(mark);
        self.release(mark);
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Value>) {
        let before = self.writes.insert(key.clone(), value);
        if self.open_marks > 0 {
            self.undo.push((key, before));
        }
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

    /// Whether the transaction wrote (or deleted) a key starting with `prefix`.
    pub fn writes_under(&self, prefix: &[u8]) -> bool {
        let t = self.txn.lock();
        t.writes
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// Stops recording reads for SERIALIZABLE validation (what is read next is advisory, as
    /// ANALYZE's scans and the statistics it stores); returns what
    /// [`ReadView::resume_read_tracking`] restores.
    pub fn pause_read_tracking(&self) -> bool {
        std::mem::replace(&mut self.txn.lock().track_reads, false)
    }

    pub fn resume_read_tracking(&self, tracked: bool) {
        self.txn.lock().track_reads = tracked;
    }

    /// Records a read of `[start, end)` that did not go through [`ReadView::scan`].
    pub fn note_read_range(&self, start: &[u8], end: &[u8]) {
        let mut t = self.txn.lock();
        if t.track_reads {
            t.read_ranges.push((start.to_vec(), end.to_vec()));
        }
    }

    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) {
        self.txn.lock().write(key, Some(Arc::from(value)));
    }

    /// Makes the transaction's commit depend on table `name`'s definition as read.
    pub fn depend_on_table(&self, name: &str) {
        self.txn
            .lock()
            .schema_keys
            .insert(crate::catalog::table_key(name));
    }

    /// Makes the commit depend on `key` as this transaction read it.
    pub fn depend_on_key(&self, key: Vec<u8>) {
        self.txn.lock().schema_keys.insert(key);
    }

    /// Makes the commit depend on every row of `def` as this transaction read them.
    pub fn depend_on_rows(&self, def: &crate::catalog::TableDef) {
        self.txn.lock().schema_ranges.push(def.row_range());
    }

    pub fn delete(&self, key: Vec<u8>) {
        self.txn.lock().write(key, None);
    }
}
