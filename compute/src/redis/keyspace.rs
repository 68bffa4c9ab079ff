//! Where Redis data lives in the key space, and the format of a key's metadata record.
//!
//! Every Redis key has one metadata record (type, expiry, a modification stamp and either the
//! string value or the collection's size) at `REDIS | 0 | db | key`, and its collection
//! elements at `REDIS | 1 | db | key | kind | sub-key`. Keys are memcomparable-escaped, so one
//! key's elements are one contiguous range and a scan of metadata visits keys in byte order.

use thunderdb_common::keys::{encode_datum, index_prefix, prefix_end};
use thunderdb_common::{Datum, IndexId, TableId};

/// The metadata index.
const META: IndexId = IndexId(0);
/// The element index.
const ELEMENTS: IndexId = IndexId(1);
/// The expiry index: `expire_at | db | key` → empty, read by active expiry.
const EXPIRIES: IndexId = IndexId(2);

/// The first byte of a metadata record's format.
const META_MAGIC: u8 = 0xD1;
/// The version of the metadata record's format.
const META_VERSION: u8 = 1;

/// Element kinds under one key.
pub const KIND_MEMBER: u8 = 0;
/// A sorted set's score index: `score | member` → empty.
pub const KIND_SCORE: u8 = 1;

/// The Redis value types.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyType {
    String,
    List,
    Hash,
    Set,
    ZSet,
}

impl KeyType {
    /// The name `TYPE` answers with.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::List => "list",
            KeyType::Hash => "hash",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
        }
    }

    fn tag(self) -> u8 {
        match self {
            KeyType::String => 0,
            KeyType::List => 1,
            KeyType::Hash => 2,
            KeyType::Set => 3,
            KeyType::ZSet => 4,
        }
    }

    fn from_tag(tag: u8) -> Option<KeyType> {
        Some(match tag {
            0 => KeyType::String,
            1 => KeyType::List,
            2 => KeyType::Hash,
            3 => KeyType::Set,
            4 => KeyType::ZSet,
            _ => return None,
        })
    }
}

/// What the metadata record of one key holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub key_type: KeyType,
    /// Unix milliseconds at which the key expires; `None` for never.
    pub expire_at_ms: Option<i64>,
    /// Changes with every write to the key (the id of the writing transaction): what `WATCH`
    /// compares.
    pub stamp: u64,
    /// The string value, for strings.
    pub value: Vec<u8>,
    /// The element count, for collections.
    pub len: u64,
    /// A list's elements occupy sequence numbers `head..tail`.
    pub head: i64,
    pub tail: i64,
}

impl Meta {
    /// A new, empty key of `key_type`.
    pub fn new(key_type: KeyType) -> Meta {
        Meta {
            key_type,
            expire_at_ms: None,
            stamp: 0,
            value: Vec::new(),
            len: 0,
            head: 0,
            tail: 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.value.len());
        out.push(META_MAGIC);
        out.push(META_VERSION);
        out.push(self.key_type.tag());
        out.extend_from_slice(&self.expire_at_ms.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.stamp.to_le_bytes());
        match self.key_type {
            KeyType::String => out.extend_from_slice(&self.value),
            KeyType::List => {
                out.extend_from_slice(&self.len.to_le_bytes());
                out.extend_from_slice(&self.head.to_le_bytes());
                out.extend_from_slice(&self.tail.to_le_bytes());
            }
            _ => out.extend_from_slice(&self.len.to_le_bytes()),
        }
        out
    }

    /// `None` when the bytes are not a metadata record of a version this code reads.
    pub fn decode(bytes: &[u8]) -> Option<Meta> {
        let (header, rest) = bytes.split_at_checked(19)?;
        if header[0] != META_MAGIC || header[1] != META_VERSION {
            return None;
        }
        let key_type = KeyType::from_tag(header[2])?;
        let expire = i64::from_le_bytes(header[3..11].try_into().ok()?);
        let stamp = u64::from_le_bytes(header[11..19].try_into().ok()?);
        let mut meta = Meta::new(key_type);
        meta.expire_at_ms = (expire != 0).then_some(expire);
        meta.stamp = stamp;
        let word = |i: usize| -> Option<[u8; 8]> { rest.get(i * 8..i * 8 + 8)?.try_into().ok() };
        match key_type {
            KeyType::String => meta.value = rest.to_vec(),
            KeyType::List => {
                meta.len = u64::from_le_bytes(word(0)?);
                meta.head = i64::from_le_bytes(word(1)?);
                meta.tail = i64::from_le_bytes(word(2)?);
            }
            _ => meta.len = u64::from_le_bytes(word(0)?),
        }
        Some(meta)
    }

    /// Whether the key has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expire_at_ms.is_some_and(|at| at <= now_ms)
    }
}

fn escaped(out: &mut Vec<u8>, key: &[u8]) {
    encode_datum(out, &Datum::Bytes(key.to_vec()));
}

/// The storage key of `key`'s metadata in database `db`.
pub fn meta_key(db: u8, key: &[u8]) -> Vec<u8> {
    let mut out = index_prefix(TableId::REDIS, META);
    out.push(db);
    escaped(&mut out, key);
    out
}

/// The range of every metadata record of database `db`, or of every database for `None`.
pub fn meta_range(db: Option<u8>) -> (Vec<u8>, Vec<u8>) {
    let mut start = index_prefix(TableId::REDIS, META);
    if let Some(db) = db {
        start.push(db);
    }
    let end = prefix_end(&start).expect("the prefix has bytes below 0xFF");
    (start, end)
}

/// The range of every element of every key of database `db`, or of every database.
pub fn elements_range(db: Option<u8>) -> (Vec<u8>, Vec<u8>) {
    let mut start = index_prefix(TableId::REDIS, ELEMENTS);
    if let Some(db) = db {
        start.push(db);
    }
    let end = prefix_end(&start).expect("the prefix has bytes below 0xFF");
    (start, end)
}

/// The database and key of a metadata storage key.
pub fn split_meta_key(storage_key: &[u8]) -> Option<(u8, Vec<u8>)> {
    let rest = storage_key.strip_prefix(index_prefix(TableId::REDIS, META).as_slice())?;
    let (&db, mut rest) = rest.split_first()?;
    match thunderdb_common::keys::decode_datum(&mut rest, &thunderdb_common::SqlType::Bytea).ok()? {
        Datum::Bytes(k) if rest.is_empty() => Some((db, k)),
        _ => None,
    }
}

/// The prefix shared by every element of `key` of kind `kind`.
pub fn element_prefix(db: u8, key: &[u8], kind: u8) -> Vec<u8> {
    let mut out = index_prefix(TableId::REDIS, ELEMENTS);
    out.push(db);
    escaped(&mut out, key);
    out.push(kind);
    out
}

/// The prefix shared by every element of `key`, whatever its kind.
pub fn key_elements_prefix(db: u8, key: &[u8]) -> Vec<u8> {
    let mut out = index_prefix(TableId::REDIS, ELEMENTS);
    out.push(db);
    escaped(&mut out, key);
    out
}

/// Splits an element storage key into database, key, kind and sub-key.
pub fn split_element_key(storage_key: &[u8]) -> Option<(u8, Vec<u8>, u8, &[u8])> {
    let rest = storage_key.strip_prefix(index_prefix(TableId::REDIS, ELEMENTS).as_slice())?;
    let (&db, mut rest) = rest.split_first()?;
    let Datum::Bytes(key) =
        thunderdb_common::keys::decode_datum(&mut rest, &thunderdb_common::SqlType::Bytea).ok()?
    else {
        return None;
    };
    let (&kind, sub) = rest.split_first()?;
    Some((db, key, kind, sub))
}

/// The expiry index entry of `key` expiring at `at_ms`.
pub fn expiry_key(at_ms: i64, db: u8, key: &[u8]) -> Vec<u8> {
    let mut out = index_prefix(TableId::REDIS, EXPIRIES);
    out.extend_from_slice(&encode_seq(at_ms));
    out.push(db);
    escaped(&mut out, key);
    out
}

/// The range of expiry index entries due at or before `now_ms`.
pub fn expiries_due(now_ms: i64) -> (Vec<u8>, Vec<u8>) {
    let start = index_prefix(TableId::REDIS, EXPIRIES);
    let mut end = start.clone();
    end.extend_from_slice(&encode_seq(now_ms.saturating_add(1)));
    (start, end)
}

/// The database and key of an expiry index entry.
pub fn split_expiry_key(storage_key: &[u8]) -> Option<(u8, Vec<u8>)> {
    let rest = storage_key.strip_prefix(index_prefix(TableId::REDIS, EXPIRIES).as_slice())?;
    let (&db, mut rest) = rest.get(8..)?.split_first()?;
    match thunderdb_common::keys::decode_datum(&mut rest, &thunderdb_common::SqlType::Bytea).ok()? {
        Datum::Bytes(k) if rest.is_empty() => Some((db, k)),
        _ => None,
    }
}

/// A list position as a sub-key: order-preserving for negative positions too.
pub fn encode_seq(seq: i64) -> [u8; 8] {
    ((seq as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn decode_seq(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

/// A score as a sub-key: byte order equals numeric order (-inf first, +inf last).
pub fn encode_score(score: f64) -> [u8; 8] {
    let bits = score.to_bits();
    let ordered = if score.is_sign_negative() {
        !bits
    } else {
        bits | (1 << 63)
    };
    ordered.to_be_bytes()
}

pub fn decode_score(bytes: &[u8]) -> Option<f64> {
    let raw: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let ordered = u64::from_be_bytes(raw);
    let bits = if ordered & (1 << 63) != 0 {
        ordered & !(1 << 63)
    } else {
        !ordered
    };
    Some(f64::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_type() -> impl Strategy<Value = KeyType> {
        prop_oneof![
            Just(KeyType::String),
            Just(KeyType::List),
            Just(KeyType::Hash),
            Just(KeyType::Set),
            Just(KeyType::ZSet),
        ]
    }

    proptest! {
        #[test]
        fn meta_round_trips(t in any_type(), expire in proptest::option::of(1i64..i64::MAX),
                            stamp: u64, value: Vec<u8>, len: u64, head: i64, tail: i64) {
            let mut m = Meta::new(t);
            m.expire_at_ms = expire;
            m.stamp = stamp;
            match t {
                KeyType::String => m.value = value,
                KeyType::List => { m.len = len; m.head = head; m.tail = tail; }
                _ => m.len = len,
            }
            prop_assert_eq!(Meta::decode(&m.encode()), Some(m));
        }

        #[test]
        fn storage_keys_round_trip_and_keep_order(db: u8, a: Vec<u8>, b: Vec<u8>) {
            prop_assert_eq!(split_meta_key(&meta_key(db, &a)), Some((db, a.clone())));
            prop_assert_eq!(split_expiry_key(&expiry_key(7, db, &a)), Some((db, a.clone())));
            prop_assert_eq!(a.cmp(&b), meta_key(db, &a).cmp(&meta_key(db, &b)));
            let member = b"m".to_vec();
            let mut k = element_prefix(db, &a, KIND_MEMBER);
            k.extend_from_slice(&member);
            let (d, key, kind, sub) = split_element_key(&k).unwrap();
            prop_assert_eq!((d, key, kind, sub.to_vec()), (db, a.clone(), KIND_MEMBER, member));
            // One key's elements never interleave with another's.
            if a != b {
                let pa = key_elements_prefix(db, &a);
                let pb = key_elements_prefix(db, &b);
                prop_assert!(!pa.starts_with(&pb) && !pb.starts_with(&pa));
            }
        }

        #[test]
        fn sequence_and_score_order(a: i64, b: i64, x in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::INFINITE,
                                    y in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::INFINITE) {
            prop_assert_eq!(a.cmp(&b), encode_seq(a).cmp(&encode_seq(b)));
            prop_assert_eq!(decode_seq(&encode_seq(a)), Some(a));
            prop_assert_eq!(decode_score(&encode_score(x)), Some(x));
            if x < y {
                prop_assert!(encode_score(x) < encode_score(y));
            }
        }
    }

    #[test]
    fn corrupt_meta_is_refused() {
        assert_eq!(Meta::decode(&[]), None);
        let mut bytes = Meta::new(KeyType::Hash).encode();
        bytes[1] = 99;
        assert_eq!(Meta::decode(&bytes), None);
    }
}
