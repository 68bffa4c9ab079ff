//! Log sequence numbers and typed ids.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Position of a committed change in the WAL. `Lsn(0)` is "before anything was committed".
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Lsn(pub u64);

impl Lsn {
    pub const ZERO: Lsn = Lsn(0);

    /// The LSN directly after this one.
    pub fn next(self) -> Lsn {
        Lsn(self.0 + 1)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same shape as PostgreSQL's pg_lsn: high/low 32 bits in hex.
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Identifies a table in the catalog. Ids below `TableId::FIRST_USER` are reserved for the system.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableId(pub u32);

impl TableId {
    /// The catalog's own key space.
    pub const CATALOG: TableId = TableId(0);
    /// The Redis (RESP) data: key metadata and collection elements.
    pub const REDIS: TableId = TableId(1);
    /// First id handed to a user table.
    pub const FIRST_USER: u32 = 1000;
}

/// Identifies an index within its table. `IndexId::PRIMARY` holds the rows themselves.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IndexId(pub u32);

impl IndexId {
    pub const PRIMARY: IndexId = IndexId(0);
}

/// Identifies one transaction's commit attempt; the WAL service uses it to answer a retried
/// commit with the first outcome instead of applying it twice.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnId(pub u128);

impl TxnId {
    pub fn random() -> TxnId {
        // Time in the high bits keeps ids roughly ordered in logs; the low bits come from the
        // std hasher's per-process random keys so two processes never collide in practice.
        use std::collections::hash_map::RandomState;
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut h = RandomState::new().build_hasher();
        h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
        TxnId(((now as u128) << 64) | h.finish() as u128)
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}
