//! Sorted-set commands: ZADD … BZMPOP, and the score and lex range syntax they share.
//!
//! Each member is stored twice: a member element (sub-key member → the score's 8 big-endian
//! `f64` bytes) answers ZSCORE with one read, and a score element (sub-key
//! `encode_score(score) ++ member` → empty) keeps members in (score, member) order, so ranks
//! and score ranges are range scans. Lex ranges scan the member elements, which are in byte
//! order: the zset's own order when all scores are equal, the case BYLEX is defined for.

use super::commands::{
    BLOCKING, CommandSpec, KEY1, NO_KEYS, R, RF, W, WD, WDF, WF, blocking_timeout, clamp_range,
    float_arg, format_float, glob_match, int_arg, is, parse_float, spec, unknown_command,
};
use super::keyspace::{KIND_MEMBER, KIND_SCORE, KeyType, Meta, encode_score};
use super::lists::{pop_count, ranged_int};
use super::reply::{RedisError, Reply};
use super::sets::{random_count, random_pick, scan_options, scan_page, scan_reply};
use super::store::RedisTxn;
use algebra::{Output, SetOp, combine};
use layout::{
    all_entries, by_rank, decode_value, entries_reply, index_entry, index_sub, pop, remove_done,
    remove_member, score_of, set_score, store_entries,
};

mod algebra;
mod layout;

/// Redis 7.0's flags for the commands whose keys follow a count (`movablekeys`).
const R_MOVABLE: &[&str] = &["readonly", "movablekeys"];
const WD_MOVABLE: &[&str] = &["write", "denyoom", "movablekeys"];
const W_MOVABLE: &[&str] = &["write", "movablekeys"];
const BLOCKING_MOVABLE: &[&str] = &["write", "blocking", "movablekeys"];
/// ZRANGESTORE names the destination and the source.
const DST_SRC: (i32, i32, i32) = (1, 2, 1);
/// BZPOPMIN / BZPOPMAX: every argument but the trailing timeout is a key.
const ALL_BUT_TIMEOUT: (i32, i32, i32) = (1, -2, 1);

/// The sorted-set commands.
pub(super) const COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, WDF, KEY1),
    spec("zrem", -3, WF, KEY1),
    spec("zscore", 3, RF, KEY1),
    spec("zmscore", -3, RF, KEY1),
    spec("zincrby", 4, WDF, KEY1),
    spec("zcard", 2, RF, KEY1),
    spec("zcount", 4, RF, KEY1),
    spec("zrank", 3, RF, KEY1),
    spec("zrevrank", 3, RF, KEY1),
    spec("zrange", -4, R, KEY1),
    spec("zrangebyscore", -4, R, KEY1),
    spec("zrevrangebyscore", -4, R, KEY1),
    spec("zrangebylex", -4, R, KEY1),
    spec("zrevrangebylex", -4, R, KEY1),
    spec("zrevrange", -4, R, KEY1),
    spec("zrangestore", -5, WD, DST_SRC),
    spec("zpopmin", -2, WF, KEY1),
    spec("zpopmax", -2, WF, KEY1),
    spec("bzpopmin", -3, BLOCKING, ALL_BUT_TIMEOUT),
    spec("bzpopmax", -3, BLOCKING, ALL_BUT_TIMEOUT),
    spec("zmpop", -4, W_MOVABLE, NO_KEYS),
    spec("bzmpop", -5, BLOCKING_MOVABLE, NO_KEYS),
    spec("zremrangebyscore", 4, W, KEY1),
    spec("zremrangebyrank", 4, W, KEY1),
    spec("zremrangebylex", 4, W, KEY1),
    spec("zlexcount", 4, RF, KEY1),
    spec("zscan", -3, R, KEY1),
    spec("zunionstore", -4, WD_MOVABLE, KEY1),
    spec("zinterstore", -4, WD_MOVABLE, KEY1),
    spec("zdiffstore", -4, WD_MOVABLE, KEY1),
    spec("zunion", -3, R_MOVABLE, NO_KEYS),
    spec("zinter", -3, R_MOVABLE, NO_KEYS),
    spec("zdiff", -3, R_MOVABLE, NO_KEYS),
    spec("zintercard", -3, R_MOVABLE, NO_KEYS),
    spec("zrandmember", -2, R, KEY1),
];

/// A member and its score.
type Entry = (Vec<u8>, f64);

/// `-0` and `0` are one score; storing one form keeps equal scores adjacent in the index.
fn canonical(score: f64) -> f64 {
    if score == 0.0 { 0.0 } else { score }
}

/// A score range: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct ScoreRange {
    min: f64,
    min_exclusive: bool,
    max: f64,
    max_exclusive: bool,
}

impl ScoreRange {
    pub(super) fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, RedisError> {
        fn bound(a: &[u8]) -> Option<(f64, bool)> {
            let (exclusive, number) = match a.strip_prefix(b"(") {
                Some(rest) => (true, rest),
                None => (false, a),
            };
            Some((canonical(parse_float(number)?), exclusive))
        }
        match (bound(min), bound(max)) {
            (Some((min, min_exclusive)), Some((max, max_exclusive))) => Ok(ScoreRange {
                min,
                min_exclusive,
                max,
                max_exclusive,
            }),
            _ => Err(RedisError::err("min or max is not a float")),
        }
    }

    /// The score-element sub-keys `[from, to)` (`to = None`: to the end) holding exactly the
    /// scores of this range; `None` when it is empty. An exclusive bound steps to the next
    /// 8-byte score prefix, so no member of that score is included.
    fn scan_bounds(&self) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        let prefix = |s: f64| u64::from_be_bytes(encode_score(s));
        let from = if self.min_exclusive {
            prefix(self.min).checked_add(1)?
        } else {
            prefix(self.min)
        };
        let to = if self.max_exclusive {
            Some(prefix(self.max))
        } else {
            prefix(self.max).checked_add(1)
        };
        if to.is_some_and(|to| to <= from) {
            return None;
        }
        Some((
            from.to_be_bytes().to_vec(),
            to.map(|t| t.to_be_bytes().to_vec()),
        ))
    }
}

/// One end of a lex range: `-`, `+`, `[a` (inclusive), `(a` (exclusive).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum LexBound {
    Lowest,
    Highest,
    Inclusive(Vec<u8>),
    Exclusive(Vec<u8>),
}

/// A lex range of members.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    pub(super) fn parse(min: &[u8], max: &[u8]) -> Result<LexRange, RedisError> {
        fn bound(a: &[u8]) -> Option<LexBound> {
            match a.split_first()? {
                (b'-', []) => Some(LexBound::Lowest),
                (b'+', []) => Some(LexBound::Highest),
                (b'[', rest) => Some(LexBound::Inclusive(rest.to_vec())),
                (b'(', rest) => Some(LexBound::Exclusive(rest.to_vec())),
                _ => None,
            }
        }
        match (bound(min), bound(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(RedisError::err("min or max not valid string range item")),
        }
    }

    /// The member sub-keys `[from, to)` of this range; `None` when it is empty.
    fn scan_bounds(&self) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        // The smallest key after `m` is `m` followed by a zero byte.
        let after = |m: &[u8]| [m, &[0u8]].concat();
        let from = match &self.min {
            LexBound::Lowest => Vec::new(),
            LexBound::Highest => return None,
            LexBound::Inclusive(m) => m.clone(),
            LexBound::Exclusive(m) => after(m),
        };
        let to = match &self.max {
            LexBound::Highest => None,
            LexBound::Lowest => return None,
            LexBound::Inclusive(m) => Some(after(m)),
            LexBound::Exclusive(m) => Some(m.clone()),
        };
        if to.as_ref().is_some_and(|to| *to <= from) {
            return None;
        }
        Some((from, to))
    }
}

/// Runs the sorted-set command `name`.
pub(super) async fn run(
    txn: &mut RedisTxn,
    name: &str,
    args: &[Vec<u8>],
) -> Result<Reply, RedisError> {
    let key = &args[1];
    match name {
        "zadd" => zadd(txn, args).await,
        "zincrby" => {
            let flags = AddFlags {
                incr: true,
                ..AddFlags::default()
            };
            add(
                txn,
                key,
                &flags,
                &[(float_arg(&args[2])?, args[3].as_slice())],
            )
            .await
        }
        "zrem" => {
            let Some(mut meta) = txn.meta_of(key, KeyType::ZSet).await? else {
                return Ok(Reply::Integer(0));
            };
            let mut removed = 0;
            for member in &args[2..] {
                if let Some(score) = score_of(txn, key, member).await? {
                    remove_member(txn, key, member, score);
                    removed += 1;
                }
            }
            remove_done(txn, key, &mut meta, removed).await
        }
        "zscore" => {
            if txn.meta_of(key, KeyType::ZSet).await?.is_none() {
                return Ok(Reply::Nil);
            }
            Ok(score_of(txn, key, &args[2])
                .await?
                .map_or(Reply::Nil, Reply::Double))
        }
        "zmscore" => {
            let exists = txn.meta_of(key, KeyType::ZSet).await?.is_some();
            let mut replies = Vec::with_capacity(args.len() - 2);
            for member in &args[2..] {
                let score = if exists {
                    score_of(txn, key, member).await?
                } else {
                    None
                };
                replies.push(score.map_or(Reply::Nil, Reply::Double));
            }
            Ok(Reply::Array(replies))
        }
        "zcard" => {
            let meta = txn.meta_of(key, KeyType::ZSet).await?;
            Ok(Reply::Integer(meta.map_or(0, |m| m.len as i64)))
        }
        "zcount" | "zlexcount" => {
            let by = if name == "zcount" {
                RangeBy::Score(ScoreRange::parse(&args[2], &args[3])?)
            } else {
                RangeBy::Lex(LexRange::parse(&args[2], &args[3])?)
            };
            let Some(meta) = txn.meta_of(key, KeyType::ZSet).await? else {
                return Ok(Reply::Integer(0));
            };
            let n = select(txn, key, &meta, &RangeSpec::all(by)).await?.len();
            Ok(Reply::Integer(n as i64))
        }
        "zrank" | "zrevrank" => {
            let Some(meta) = txn.meta_of(key, KeyType::ZSet).await? else {
                return Ok(Reply::Nil);
            };
            let Some(score) = score_of(txn, key, &args[2]).await? else {
                return Ok(Reply::Nil);
            };
            let below = index_sub(score, &args[2]);
            let rank = txn
                .elements(key, KIND_SCORE, &[], Some(&below), None)
                .await?
                .len() as i64;
            Ok(Reply::Integer(if name == "zrank" {
                rank
            } else {
                meta.len as i64 - 1 - rank
            }))
        }
        "zrange" => zrange(txn, args, 1, None, None, false).await,
        "zrangestore" => zrange(txn, args, 2, None, None, true).await,
        "zrangebyscore" => zrange(txn, args, 1, Some(Kind::Score), Some(false), false).await,
        "zrevrangebyscore" => zrange(txn, args, 1, Some(Kind::Score), Some(true), false).await,
        "zrangebylex" => zrange(txn, args, 1, Some(Kind::Lex), Some(false), false).await,
        "zrevrangebylex" => zrange(txn, args, 1, Some(Kind::Lex), Some(true), false).await,
        "zrevrange" => zrange(txn, args, 1, Some(Kind::Rank), Some(true), false).await,
        "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" => {
            let by = match name {
                "zremrangebyrank" => RangeBy::Rank(int_arg(&args[2])?, int_arg(&args[3])?),
                "zremrangebyscore" => RangeBy::Score(ScoreRange::parse(&args[2], &args[3])?),
                _ => RangeBy::Lex(LexRange::parse(&args[2], &args[3])?),
            };
            let Some(mut meta) = txn.meta_of(key, KeyType::ZSet).await? else {
                return Ok(Reply::Integer(0));
            };
            let doomed = select(txn, key, &meta, &RangeSpec::all(by)).await?;
            for (member, score) in &doomed {
                remove_member(txn, key, member, *score);
            }
            remove_done(txn, key, &mut meta, doomed.len()).await
        }
        "zpopmin" | "zpopmax" => {
            if args.len() > 3 {
                return Err(RedisError::syntax());
            }
            let count = pop_count(args)?;
            let Some(mut meta) = txn.meta_of(key, KeyType::ZSet).await? else {
                return Ok(Reply::Array(Vec::new()));
            };
            let popped = pop(txn, key, &mut meta, name == "zpopmax", count.unwrap_or(1)).await?;
            // Without a count the reply is one flat member–score pair in both protocols.
            Ok(match count {
                Some(_) => entries_reply(popped, true),
                None => Reply::Array(
                    popped
                        .into_iter()
                        .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)])
                        .collect(),
                ),
            })
        }
        "bzpopmin" | "bzpopmax" => {
            blocking_timeout(args)?;
            for key in &args[1..args.len() - 1] {
                let Some(mut meta) = txn.meta_of(key, KeyType::ZSet).await? else {
                    continue;
                };
                if let Some((member, score)) =
                    pop(txn, key, &mut meta, name == "bzpopmax", 1).await?.pop()
                {
                    return Ok(Reply::Array(vec![
                        Reply::bulk(key.clone()),
                        Reply::Bulk(member),
                        Reply::Double(score),
                    ]));
                }
            }
            Ok(Reply::NilArray)
        }
        "zmpop" => mpop(txn, args, 1).await,
        "bzmpop" => mpop(txn, args, 2).await,
        "zscan" => zscan(txn, args).await,
        "zunionstore" => combine(txn, args, name, 2, SetOp::Union, Output::Store).await,
        "zinterstore" => combine(txn, args, name, 2, SetOp::Inter, Output::Store).await,
        "zdiffstore" => combine(txn, args, name, 2, SetOp::Diff, Output::Store).await,
        "zunion" => combine(txn, args, name, 1, SetOp::Union, Output::Reply).await,
        "zinter" => combine(txn, args, name, 1, SetOp::Inter, Output::Reply).await,
        "zdiff" => combine(txn, args, name, 1, SetOp::Diff, Output::Reply).await,
        "zintercard" => combine(txn, args, name, 1, SetOp::Inter, Output::Count).await,
        "zrandmember" => zrandmember(txn, args).await,
        _ => Err(unknown_command(args)),
    }
}

// ---- ZADD ----

/// ZADD's options (ZINCRBY is ZADD INCR).
#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// ZADD `key [NX|XX] [GT|LT] [CH] [INCR] score member …`.
async fn zadd(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let mut flags = AddFlags::default();
    let mut i = 2;
    while let Some(a) = args.get(i) {
        let flag = if is(a, "nx") {
            &mut flags.nx
        } else if is(a, "xx") {
            &mut flags.xx
        } else if is(a, "ch") {
            &mut flags.ch
        } else if is(a, "incr") {
            &mut flags.incr
        } else if is(a, "gt") {
            &mut flags.gt
        } else if is(a, "lt") {
            &mut flags.lt
        } else {
            break;
        };
        *flag = true;
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(RedisError::syntax());
    }
    if flags.nx && flags.xx {
        return Err(RedisError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if ((flags.gt || flags.lt) && flags.nx) || (flags.gt && flags.lt) {
        return Err(RedisError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && pairs.len() > 2 {
        return Err(RedisError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    // Every score is parsed before anything is written, as Redis does.
    let pairs = pairs
        .chunks_exact(2)
        .map(|p| Ok((float_arg(&p[0])?, p[1].as_slice())))
        .collect::<Result<Vec<_>, RedisError>>()?;
    add(txn, &args[1], &flags, &pairs).await
}

/// Applies ZADD / ZINCRBY: with INCR the new score (nil when the flags skipped it), else the
/// number added (added or changed with CH).
async fn add(
    txn: &mut RedisTxn,
    key: &[u8],
    flags: &AddFlags,
    pairs: &[(f64, &[u8])],
) -> Result<Reply, RedisError> {
    let (mut added, mut updated) = (0i64, 0i64);
    let mut last_score = None;
    let mut meta = match txn.meta_of(key, KeyType::ZSet).await? {
        Some(m) => Some(m),
        None if flags.xx => None,
        None => Some(Meta::new(KeyType::ZSet)),
    };
    if let Some(meta) = meta.as_mut() {
        for &(score, member) in pairs {
            match score_of(txn, key, member).await? {
                Some(_) if flags.nx => {}
                Some(current) => {
                    let new = if flags.incr { score + current } else { score };
                    if new.is_nan() {
                        return Err(RedisError::err("resulting score is not a number (NaN)"));
                    }
                    if (flags.lt && new >= current) || (flags.gt && new <= current) {
                        continue;
                    }
                    last_score = Some(canonical(new));
                    if new != current {
                        set_score(txn, key, member, Some(current), new);
                        updated += 1;
                    }
                }
                None if flags.xx => {}
                None => {
                    set_score(txn, key, member, None, score);
                    meta.len += 1;
                    added += 1;
                    last_score = Some(canonical(score));
                }
            }
        }
        if added + updated > 0 {
            txn.put_meta(key, meta.clone()).await?;
        }
    }
    Ok(if flags.incr {
        last_score.map_or(Reply::Nil, Reply::Double)
    } else {
        Reply::Integer(if flags.ch { added + updated } else { added })
    })
}

// ---- ranges ----

/// What a range command selects by.
#[derive(Clone, Debug, PartialEq)]
enum RangeBy {
    /// Ranks `start..=stop`, negative from the end.
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A range selection: its range, direction and `LIMIT offset count` (`count < 0`: all).
struct RangeSpec {
    by: RangeBy,
    rev: bool,
    offset: i64,
    count: i64,
}

impl RangeSpec {
    /// The whole range, in zset order.
    fn all(by: RangeBy) -> RangeSpec {
        RangeSpec {
            by,
            rev: false,
            offset: 0,
            count: -1,
        }
    }
}

/// The entries `spec` selects from the zset at `key`, in reply order.
async fn select(
    txn: &RedisTxn,
    key: &[u8],
    meta: &Meta,
    spec: &RangeSpec,
) -> Result<Vec<Entry>, RedisError> {
    let (kind, bounds) = match &spec.by {
        RangeBy::Rank(start, stop) => {
            return by_rank_in(txn, key, meta.len as i64, *start, *stop, spec.rev).await;
        }
        RangeBy::Score(range) => (KIND_SCORE, range.scan_bounds()),
        RangeBy::Lex(range) => (KIND_MEMBER, range.scan_bounds()),
    };
    // Redis skips everything for a negative offset, and a count of 0 selects nothing.
    let (Some((from, to)), Ok(offset), false) =
        (bounds, usize::try_from(spec.offset), spec.count == 0)
    else {
        return Ok(Vec::new());
    };
    // A forward scan can stop after the page; a reverse one needs the whole range.
    let limit = (!spec.rev && spec.count > 0)
        .then(|| offset.saturating_add(usize::try_from(spec.count).unwrap_or(usize::MAX)));
    let rows = txn.elements(key, kind, &from, to.as_deref(), limit).await?;
    let mut entries = rows
        .into_iter()
        .map(|(sub, value)| {
            if kind == KIND_SCORE {
                index_entry(&sub)
            } else {
                Ok((sub, decode_value(&value)?))
            }
        })
        .collect::<Result<Vec<_>, RedisError>>()?;
    if spec.rev {
        entries.reverse();
    }
    let page = entries.into_iter().skip(offset);
    Ok(match usize::try_from(spec.count) {
        Ok(count) => page.take(count).collect(),
        Err(_) => page.collect(),
    })
}

/// Ranks `start..=stop` (negative from the end; counted from the highest score with `rev`)
/// of a zset of `len` members, in reply order.
async fn by_rank_in(
    txn: &RedisTxn,
    key: &[u8],
    len: i64,
    start: i64,
    stop: i64,
    rev: bool,
) -> Result<Vec<Entry>, RedisError> {
    let Some((first, last)) = clamp_range(start, stop, len) else {
        return Ok(Vec::new());
    };
    if !rev {
        return by_rank(txn, key, first, last).await;
    }
    let mut entries = by_rank(txn, key, len - 1 - last, len - 1 - first).await?;
    entries.reverse();
    Ok(entries)
}

/// How a range is given.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

/// ZRANGE and its older forms. `src_at` is the index of the source key (2 for ZRANGESTORE,
/// whose destination is `args[1]`); ZRANGEBYSCORE & co. preset `kind` and `rev`.
async fn zrange(
    txn: &mut RedisTxn,
    args: &[Vec<u8>],
    src_at: usize,
    mut kind: Option<Kind>,
    mut rev: Option<bool>,
    store: bool,
) -> Result<Reply, RedisError> {
    let mut with_scores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut j = src_at + 3;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && is(a, "withscores") {
            with_scores = true;
        } else if is(a, "limit") && left >= 2 {
            limit = Some((int_arg(&args[j + 1])?, int_arg(&args[j + 2])?));
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if kind.is_none() && is(a, "bylex") {
            kind = Some(Kind::Lex);
        } else if kind.is_none() && is(a, "byscore") {
            kind = Some(Kind::Score);
        } else {
            return Err(RedisError::syntax());
        }
        j += 1;
    }
    let (kind, rev) = (kind.unwrap_or(Kind::Rank), rev.unwrap_or(false));
    let (offset, count) = limit.unwrap_or((0, -1));
    // Redis checks the count against its "not given" value -1, so `LIMIT 0 -1` passes.
    if count != -1 && kind == Kind::Rank {
        return Err(RedisError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && kind == Kind::Lex {
        return Err(RedisError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&args[src_at + 1], &args[src_at + 2]);
    // Reverse score and lex ranges are written max first.
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let by = match kind {
        Kind::Rank => RangeBy::Rank(int_arg(lo)?, int_arg(hi)?),
        Kind::Score => RangeBy::Score(ScoreRange::parse(lo, hi)?),
        Kind::Lex => RangeBy::Lex(LexRange::parse(lo, hi)?),
    };
    let spec = RangeSpec {
        by,
        rev,
        offset,
        count,
    };
    let src = &args[src_at];
    let entries = match txn.meta_of(src, KeyType::ZSet).await? {
        Some(meta) => select(txn, src, &meta, &spec).await?,
        None => Vec::new(),
    };
    if store {
        store_entries(txn, &args[1], entries).await
    } else {
        Ok(entries_reply(entries, with_scores))
    }
}

// ---- pops, scans, random members ----

/// ZMPOP `numkeys key… MIN|MAX [COUNT n]` (BZMPOP: after the timeout): pops from the first
/// existing zset; `[key, [[member, score] …]]` or a nil array.
async fn mpop(
    txn: &mut RedisTxn,
    args: &[Vec<u8>],
    numkeys_at: usize,
) -> Result<Reply, RedisError> {
    let numkeys = ranged_int(&args[numkeys_at], 1, "numkeys should be greater than 0")? as u64;
    let where_at = (numkeys_at as u64 + 1).saturating_add(numkeys);
    if where_at >= args.len() as u64 {
        return Err(RedisError::syntax());
    }
    let where_at = where_at as usize;
    let max = if is(&args[where_at], "min") {
        false
    } else if is(&args[where_at], "max") {
        true
    } else {
        return Err(RedisError::syntax());
    };
    let mut count: Option<u64> = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
            count = Some(ranged_int(&args[j + 1], 1, "count should be greater than 0")? as u64);
            j += 2;
        } else {
            return Err(RedisError::syntax());
        }
    }
    // BZMPOP (its count after the timeout): the timeout is checked after the other
    // arguments, as Redis does.
    if numkeys_at == 2 {
        blocking_timeout(args)?;
    }
    for key in &args[numkeys_at + 1..where_at] {
        let Some(mut meta) = txn.meta_of(key, KeyType::ZSet).await? else {
            continue;
        };
        let popped = pop(txn, key, &mut meta, max, count.unwrap_or(1)).await?;
        let pairs = popped
            .into_iter()
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
            .collect();
        return Ok(Reply::Array(vec![
            Reply::bulk(key.clone()),
            Reply::Array(pairs),
        ]));
    }
    Ok(Reply::NilArray)
}

/// ZSCAN `key cursor [MATCH pattern] [COUNT count]`: members in byte order with their scores.
async fn zscan(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let (pattern, count) = scan_options(args)?;
    if txn.meta_of(&args[1], KeyType::ZSet).await?.is_none() {
        return Ok(scan_reply(0, Vec::new()));
    }
    let (next, page) = scan_page(txn, &args[1], &args[2], count).await?;
    let mut items = Vec::new();
    for (member, value) in page {
        if pattern.is_none_or(|p| glob_match(p, &member)) {
            let score = decode_value(&value)?;
            items.push(Reply::Bulk(member));
            items.push(Reply::Bulk(format_float(score)));
        }
    }
    Ok(scan_reply(next, items))
}

/// ZRANDMEMBER `key [count [WITHSCORES]]`.
async fn zrandmember(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let key = &args[1];
    let Some(count_arg) = args.get(2) else {
        if txn.meta_of(key, KeyType::ZSet).await?.is_none() {
            return Ok(Reply::Nil);
        }
        let entries = all_entries(txn, key).await?;
        return Ok(random_pick(entries, 1)
            .pop()
            .map_or(Reply::Nil, |(m, _)| Reply::Bulk(m)));
    };
    let count = random_count(count_arg)?;
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
        return Err(RedisError::syntax());
    }
    let with_scores = args.len() == 4;
    if with_scores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(RedisError::err("value is out of range"));
    }
    if txn.meta_of(key, KeyType::ZSet).await?.is_none() || count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let entries = all_entries(txn, key).await?;
    if entries.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    Ok(entries_reply(random_pick(entries, count), with_scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_ranges_parse_and_bound_scans() {
        let r = ScoreRange::parse(b"(1.5", b"+inf").unwrap();
        assert!(r.min_exclusive && !r.max_exclusive);
        assert_eq!((r.min, r.max), (1.5, f64::INFINITY));
        assert_eq!(
            ScoreRange::parse(b"x", b"1"),
            Err(RedisError::err("min or max is not a float"))
        );
        assert!(ScoreRange::parse(b"(", b"1").is_err());
        // An empty range scans nothing.
        assert_eq!(ScoreRange::parse(b"(1", b"1").unwrap().scan_bounds(), None);
        assert_eq!(ScoreRange::parse(b"2", b"1").unwrap().scan_bounds(), None);
        // `[1, 1]` covers every member whose score is 1.
        let (from, to) = ScoreRange::parse(b"1", b"1")
            .unwrap()
            .scan_bounds()
            .unwrap();
        let key = index_sub(1.0, b"member");
        assert!(from <= key && key < to.unwrap());
        // -0 and 0 are one score.
        let (from, to) = ScoreRange::parse(b"-0", b"-0")
            .unwrap()
            .scan_bounds()
            .unwrap();
        let key = index_sub(canonical(-0.0), b"m");
        assert!(from <= key && key < to.unwrap());
        assert_eq!(
            ScoreRange::parse(b"-inf", b"+inf")
                .unwrap()
                .scan_bounds()
                .map(|b| b.1.is_some()),
            Some(true)
        );
    }

    #[test]
    fn lex_ranges_parse_and_bound_scans() {
        let r = LexRange::parse(b"[a", b"(c").unwrap();
        assert_eq!(r.scan_bounds(), Some((b"a".to_vec(), Some(b"c".to_vec()))));
        let r = LexRange::parse(b"(a", b"[c").unwrap();
        assert_eq!(
            r.scan_bounds(),
            Some((b"a\0".to_vec(), Some(b"c\0".to_vec())))
        );
        assert_eq!(
            LexRange::parse(b"-", b"+").unwrap().scan_bounds(),
            Some((vec![], None))
        );
        assert_eq!(LexRange::parse(b"+", b"-").unwrap().scan_bounds(), None);
        assert_eq!(LexRange::parse(b"(a", b"(a").unwrap().scan_bounds(), None);
        for bad in [&b"a"[..], &b""[..], &b"-x"[..], &b"+x"[..]] {
            assert_eq!(
                LexRange::parse(bad, b"+"),
                Err(RedisError::err("min or max not valid string range item"))
            );
        }
    }
}
