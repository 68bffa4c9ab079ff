//! The WAL record format: one committed transaction.
//!
//! `magic "TWAL" | version u16 | lsn u64 | txn u128 | commit time i64 | write count u32 |
//! (key, flag, value)* | crc32c u32` — the CRC covers every byte before it.

use crate::bin::{Reader, put_bytes};
use crate::error::ThunderError;
use crate::ids::{Lsn, TxnId};
use serde::{Deserialize, Serialize};

const WAL_MAGIC: &[u8; 4] = b"TWAL";
const WAL_VERSION: u16 = 1;

/// One key's new value in a commit; `None` deletes the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyWrite {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A committed transaction as the log stores and streams it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalRecord {
    pub lsn: Lsn,
    pub txn_id: TxnId,
    /// Commit time, microseconds since the Unix epoch (leader's clock).
    pub commit_time_micros: i64,
    pub writes: Vec<KeyWrite>,
}

impl WalRecord {
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .writes
            .iter()
            .map(|w| w.key.len() + w.value.as_ref().map_or(0, |v| v.len()) + 9)
            .sum();
        let mut out = Vec::with_capacity(48 + size);
        out.extend_from_slice(WAL_MAGIC);
        out.extend_from_slice(&WAL_VERSION.to_le_bytes());
        out.extend_from_slice(&self.lsn.0.to_le_bytes());
        out.extend_from_slice(&self.txn_id.0.to_le_bytes());
        out.extend_from_slice(&self.commit_time_micros.to_le_bytes());
        out.extend_from_slice(&(self.writes.len() as u32).to_le_bytes());
        for w in &self.writes {
            put_bytes(&mut out, &w.key);
            match &w.value {
                Some(v) => {
                    out.push(1);
                    put_bytes(&mut out, v);
                }
                None => out.push(0),
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<WalRecord, ThunderError> {
        let corrupt = || ThunderError::internal("corrupt WAL record");
        if bytes.len() < 4 + 2 + 4 {
            return Err(corrupt());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes(crc.try_into().map_err(|_| corrupt())?);
        if crc32c::crc32c(body) != crc {
            return Err(ThunderError::internal("WAL record checksum mismatch"));
        }
        let mut r = Reader::new(body, "WAL record");
        if r.take(4)? != WAL_MAGIC || r.u16()? != WAL_VERSION {
            return Err(corrupt());
        }
        let lsn = Lsn(r.u64()?);
        let txn_id = TxnId(r.u128()?);
        let commit_time_micros = r.u64()? as i64;
        let n = r.u32()? as usize;
        let mut writes = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let key = r.bytes()?.to_vec();
            let value = match r.u8()? {
                0 => None,
                1 => Some(r.bytes()?.to_vec()),
                _ => return Err(corrupt()),
            };
            writes.push(KeyWrite { key, value });
        }
        if !r.is_empty() {
            return Err(corrupt());
        }
        Ok(WalRecord {
            lsn,
            txn_id,
            commit_time_micros,
            writes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn wal_round_trip(lsn: u64, txn: u128, ts: i64,
                          writes in proptest::collection::vec((any::<Vec<u8>>(), proptest::option::of(any::<Vec<u8>>())), 0..10)) {
            let rec = WalRecord { lsn: Lsn(lsn), txn_id: TxnId(txn), commit_time_micros: ts,
                writes: writes.into_iter().map(|(key, value)| KeyWrite { key, value }).collect() };
            let bytes = rec.encode();
            prop_assert_eq!(WalRecord::decode(&bytes).unwrap(), rec);
        }

        #[test]
        fn wal_detects_corruption(lsn: u64, key: Vec<u8>, flip in 0usize..1000) {
            let rec = WalRecord { lsn: Lsn(lsn), txn_id: TxnId(1), commit_time_micros: 0,
                writes: vec![KeyWrite { key, value: Some(vec![1, 2, 3]) }] };
            let mut bytes = rec.encode();
            let i = flip % bytes.len();
            bytes[i] ^= 0x40;
            prop_assert!(WalRecord::decode(&bytes).is_err());
        }
    }
}
