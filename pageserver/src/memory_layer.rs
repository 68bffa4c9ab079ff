//! The in-memory layer: every version of every key written since the newest delta layer, as
//! applied from the WAL stream. It is frozen (made immutable) once big or old enough, and a
//! frozen layer is written out as a delta layer file.

use crate::Value;
use crate::layer_file::{LayerKind, LayerSummary, LayerWriter, Version};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Instant;
use thunderdb_common::Lsn;
use thunderdb_common::wal::WalRecord;

/// Versions of one key, oldest first; `None` is a deletion.
pub type Versions = Vec<(Lsn, Option<Value>)>;

/// The newest version at or below `lsn` (a deletion too).
pub fn newest_at(versions: &Versions, lsn: Lsn) -> Option<&(Lsn, Option<Value>)> {
    versions.iter().rev().find(|(v, _)| *v <= lsn)
}

/// Versions of keys over an LSN range, in memory.
#[derive(Default)]
pub struct InMemoryLayer {
    map: BTreeMap<Vec<u8>, Versions>,
    /// Key and value bytes held, roughly what its delta layer file will take.
    bytes: u64,
    lsn_start: Option<Lsn>,
    lsn_end: Lsn,
    max_commit_micros: i64,
    opened: Option<Instant>,
}

impl InMemoryLayer {
    /// Adds a committed record's writes.
    pub fn apply(&mut self, rec: &WalRecord) {
        for w in &rec.writes {
            let value: Option<Value> = w.value.as_deref().map(Value::from);
            self.bytes += (w.key.len() + value.as_ref().map_or(0, |v| v.len()) + 21) as u64;
            match self.map.get_mut(w.key.as_slice()) {
                // A record writes a key once; should it say it twice, the last one wins.
                Some(versions) => match versions.last_mut() {
                    Some(last) if last.0 == rec.lsn => last.1 = value,
                    _ => versions.push((rec.lsn, value)),
                },
                None => {
                    self.bytes += w.key.len() as u64;
                    self.map.insert(w.key.clone(), vec![(rec.lsn, value)]);
                }
            }
        }
        self.lsn_start.get_or_insert(rec.lsn);
        self.opened.get_or_insert_with(Instant::now);
        self.lsn_end = rec.lsn;
        self.max_commit_micros = self.max_commit_micros.max(rec.commit_time_micros);
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// When its first write arrived.
    pub fn opened(&self) -> Option<Instant> {
        self.opened
    }

    pub fn lsn_start(&self) -> Lsn {
        self.lsn_start.unwrap_or(self.lsn_end)
    }

    /// Keys held.
    pub fn keys(&self) -> usize {
        self.map.len()
    }

    pub fn lsn_end(&self) -> Lsn {
        self.lsn_end
    }

    pub fn max_commit_micros(&self) -> i64 {
        self.max_commit_micros
    }

    /// The newest version of `key` at or below `lsn`, if this layer has one.
    pub fn get(&self, key: &[u8], lsn: Lsn) -> Option<&(Lsn, Option<Value>)> {
        self.map.get(key).and_then(|v| newest_at(v, lsn))
    }

    /// Up to `max` keys of `[start, end)` after `after`, each with its newest version at or
    /// below `lsn` (keys without one are left out).
    pub fn chunk(
        &self,
        start: &[u8],
        after: Option<&[u8]>,
        end: &[u8],
        lsn: Lsn,
        max: usize,
    ) -> Vec<(Vec<u8>, Version)> {
        let low = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(start),
        };
        // An empty `end` is no bound.
        let high = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(end)
        };
        self.map
            .range::<[u8], _>((low, high))
            .filter_map(|(k, v)| newest_at(v, lsn).map(|version| (k.clone(), version.clone())))
            .take(max)
            .collect()
    }

    /// The delta layer file of this layer's versions.
    pub fn write_delta(&self) -> (Vec<u8>, LayerSummary) {
        let start = self.lsn_start.unwrap_or(self.lsn_end);
        let mut w = LayerWriter::new(LayerKind::Delta, start, self.lsn_end);
        for (key, versions) in &self.map {
            for (lsn, value) in versions {
                w.push(key, *lsn, value.as_deref());
            }
        }
        w.finish()
    }
}
