//! How a sorted set's members are stored and read back: the member elements (member → score)
//! and the score index (`encode_score(score) ++ member` → empty) that keeps them in order.

use super::{Entry, canonical};
use crate::redis::keyspace::{KIND_MEMBER, KIND_SCORE, KeyType, Meta, decode_score, encode_score};
use crate::redis::reply::{RedisError, Reply};
use crate::redis::store::RedisTxn;
use std::collections::BTreeMap;

/// The score-element sub-key of `member` at `score`.
pub(super) fn index_sub(score: f64, member: &[u8]) -> Vec<u8> {
    [&encode_score(score)[..], member].concat()
}

/// A score as a member element stores it.
pub(super) fn decode_value(value: &[u8]) -> Result<f64, RedisError> {
    <[u8; 8]>::try_from(value)
        .map(f64::from_be_bytes)
        .map_err(|_| RedisError::internal("unreadable sorted-set score"))
}

/// The score of `member`, if it is in the zset at `key`.
pub(super) async fn score_of(
    txn: &RedisTxn,
    key: &[u8],
    member: &[u8],
) -> Result<Option<f64>, RedisError> {
    match txn.member(key, member).await? {
        Some(v) => decode_value(&v).map(Some),
        None => Ok(None),
    }
}

/// Gives `member` the score `score`, replacing its index entry at `old` (the caller counts
/// new members in `meta.len`).
pub(super) fn set_score(
    txn: &mut RedisTxn,
    key: &[u8],
    member: &[u8],
    old: Option<f64>,
    score: f64,
) {
    let score = canonical(score);
    if let Some(old) = old {
        txn.delete_element(key, KIND_SCORE, &index_sub(old, member));
    }
    txn.put_element(key, KIND_MEMBER, member, score.to_be_bytes().to_vec());
    txn.put_element(key, KIND_SCORE, &index_sub(score, member), Vec::new());
}

/// Removes `member` (whose score is `score`); the caller counts it out of `meta.len`.
pub(super) fn remove_member(txn: &mut RedisTxn, key: &[u8], member: &[u8], score: f64) {
    txn.delete_element(key, KIND_MEMBER, member);
    txn.delete_element(key, KIND_SCORE, &index_sub(score, member));
}

/// Writes `meta` after `removed` members went, and replies with that count.
pub(super) async fn remove_done(
    txn: &mut RedisTxn,
    key: &[u8],
    meta: &mut Meta,
    removed: usize,
) -> Result<Reply, RedisError> {
    if removed > 0 {
        meta.len = meta.len.saturating_sub(removed as u64);
        txn.put_meta(key, meta.clone()).await?;
    }
    Ok(Reply::Integer(removed as i64))
}

/// The entry of a score-element sub-key.
pub(super) fn index_entry(sub: &[u8]) -> Result<Entry, RedisError> {
    match (decode_score(sub), sub.get(8..)) {
        (Some(score), Some(member)) => Ok((member.to_vec(), score)),
        _ => Err(RedisError::internal("unreadable sorted-set index entry")),
    }
}

/// Entries from the score index, sub-keys `[from, to)`, at most `limit`, in zset order.
pub(super) async fn scan_index(
    txn: &RedisTxn,
    key: &[u8],
    from: &[u8],
    to: Option<&[u8]>,
    limit: Option<usize>,
) -> Result<Vec<Entry>, RedisError> {
    let rows = txn.elements(key, KIND_SCORE, from, to, limit).await?;
    rows.iter().map(|(sub, _)| index_entry(sub)).collect()
}

/// Entries with ranks `first..=last` (resolved, ascending).
pub(super) async fn by_rank(
    txn: &RedisTxn,
    key: &[u8],
    first: i64,
    last: i64,
) -> Result<Vec<Entry>, RedisError> {
    let limit = usize::try_from(last + 1).unwrap_or(usize::MAX);
    let skip = usize::try_from(first).unwrap_or(0);
    let mut entries = scan_index(txn, key, &[], None, Some(limit)).await?;
    entries.drain(..skip.min(entries.len()));
    Ok(entries)
}

/// Every entry of the zset, in zset order.
pub(super) async fn all_entries(txn: &RedisTxn, key: &[u8]) -> Result<Vec<Entry>, RedisError> {
    scan_index(txn, key, &[], None, None).await
}

/// Every entry of a sorted set, or of a plain set (scores 1), as ZUNION & co. read them.
pub(super) async fn source_entries(
    txn: &RedisTxn,
    key: &[u8],
    meta: &Meta,
) -> Result<BTreeMap<Vec<u8>, f64>, RedisError> {
    let rows = txn.members(key).await?;
    if meta.key_type == KeyType::Set {
        return Ok(rows.into_iter().map(|(m, _)| (m, 1.0)).collect());
    }
    rows.into_iter()
        .map(|(m, v)| Ok((m, decode_value(&v)?)))
        .collect()
}

/// Sorts entries into zset order: by score, then member bytes.
pub(super) fn sort_entries(entries: &mut [Entry]) {
    for e in entries.iter_mut() {
        e.1 = canonical(e.1);
    }
    entries.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
}

/// The members, or with scores the member–score pairs (flat in RESP2, nested in RESP3).
pub(super) fn entries_reply(entries: Vec<Entry>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(
            entries
                .into_iter()
                .map(|(member, score)| (Reply::Bulk(member), Reply::Double(score)))
                .collect(),
        )
    } else {
        Reply::Array(entries.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

/// Replaces whatever `dst` holds with a zset of `entries`; replies with their number (an
/// empty result just deletes `dst`).
pub(super) async fn store_entries(
    txn: &mut RedisTxn,
    dst: &[u8],
    entries: Vec<Entry>,
) -> Result<Reply, RedisError> {
    txn.delete_key(dst).await?;
    if entries.is_empty() {
        return Ok(Reply::Integer(0));
    }
    let mut meta = Meta::new(KeyType::ZSet);
    for (member, score) in &entries {
        set_score(txn, dst, member, None, *score);
    }
    meta.len = entries.len() as u64;
    txn.put_meta(dst, meta).await?;
    Ok(Reply::Integer(entries.len() as i64))
}

/// Removes up to `count` lowest (highest with `max`) entries, in the order they are popped,
/// and writes `meta`.
pub(super) async fn pop(
    txn: &mut RedisTxn,
    key: &[u8],
    meta: &mut Meta,
    max: bool,
    count: u64,
) -> Result<Vec<Entry>, RedisError> {
    let len = meta.len as i64;
    let n = count.min(meta.len) as i64;
    if n == 0 {
        return Ok(Vec::new());
    }
    let entries = if max {
        let mut top = by_rank(txn, key, len - n, len - 1).await?;
        top.reverse();
        top
    } else {
        by_rank(txn, key, 0, n - 1).await?
    };
    for (member, score) in &entries {
        remove_member(txn, key, member, *score);
    }
    remove_done(txn, key, meta, entries.len()).await?;
    Ok(entries)
}
