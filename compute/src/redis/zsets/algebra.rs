//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD.

use super::Entry;
use super::layout::{entries_reply, sort_entries, source_entries, store_entries};
use crate::redis::commands::{int_arg, is, parse_float};
use crate::redis::keyspace::KeyType;
use crate::redis::lists::ranged_int;
use crate::redis::reply::{RedisError, Reply};
use crate::redis::store::RedisTxn;
use std::collections::BTreeMap;

/// How the inputs combine.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum SetOp {
    Union,
    Inter,
    Diff,
}

/// Where the result goes: a destination key, the reply, or only its size (ZINTERCARD).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Output {
    Store,
    Reply,
    Count,
}

/// How a member's scores from several inputs combine.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *acc += value;
                // inf + -inf: Redis's convention is 0.
                if acc.is_nan() {
                    *acc = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *acc {
                    *acc = value;
                }
            }
            Aggregate::Max => {
                if value > *acc {
                    *acc = value;
                }
            }
        }
    }
}

/// `weight * score`, with Redis's 0 for NaN (`0 * inf`).
fn weighted(weight: f64, score: f64) -> f64 {
    let v = weight * score;
    if v.is_nan() { 0.0 } else { v }
}

/// ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD: `numkeys key… [WEIGHTS w…]
/// [AGGREGATE SUM|MIN|MAX] [WITHSCORES]` (ZINTERCARD: `[LIMIT n]`), from `numkeys_at`.
pub(super) async fn combine(
    txn: &mut RedisTxn,
    args: &[Vec<u8>],
    name: &str,
    numkeys_at: usize,
    op: SetOp,
    output: Output,
) -> Result<Reply, RedisError> {
    let numkeys = int_arg(&args[numkeys_at])?;
    if numkeys < 1 {
        return Err(RedisError::err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    let first_key = numkeys_at + 1;
    if numkeys as u64 > (args.len() - first_key) as u64 {
        return Err(RedisError::syntax());
    }
    let keys = &args[first_key..first_key + numkeys as usize];
    // Redis checks every input's type before it parses the options.
    let mut metas = Vec::with_capacity(keys.len());
    for key in keys {
        match txn.meta(key).await? {
            Some(m) if !matches!(m.key_type, KeyType::ZSet | KeyType::Set) => {
                return Err(RedisError::wrong_type());
            }
            meta => metas.push(meta),
        }
    }
    let mut weights = vec![1.0; keys.len()];
    let mut aggregate = Aggregate::Sum;
    let mut with_scores = false;
    let mut limit = 0u64;
    let mut j = first_key + keys.len();
    let full = op != SetOp::Diff && output != Output::Count;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if full && remaining > keys.len() && is(a, "weights") {
            for (w, arg) in weights.iter_mut().zip(&args[j + 1..]) {
                *w = parse_float(arg)
                    .ok_or_else(|| RedisError::err("weight value is not a float"))?;
            }
            j += 1 + keys.len();
        } else if full && remaining >= 2 && is(a, "aggregate") {
            let how = &args[j + 1];
            aggregate = if is(how, "sum") {
                Aggregate::Sum
            } else if is(how, "min") {
                Aggregate::Min
            } else if is(how, "max") {
                Aggregate::Max
            } else {
                return Err(RedisError::syntax());
            };
            j += 2;
        } else if output == Output::Reply && is(a, "withscores") {
            with_scores = true;
            j += 1;
        } else if output == Output::Count && remaining >= 2 && is(a, "limit") {
            limit = ranged_int(&args[j + 1], 0, "LIMIT can't be negative")? as u64;
            j += 2;
        } else {
            return Err(RedisError::syntax());
        }
    }
    let mut inputs = Vec::with_capacity(keys.len());
    for (key, meta) in keys.iter().zip(&metas) {
        inputs.push(match meta {
            Some(meta) => source_entries(txn, key, meta).await?,
            None => BTreeMap::new(),
        });
    }
    let mut result = combine_inputs(op, &inputs, &weights, aggregate);
    match output {
        Output::Count => {
            let n = result.len() as u64;
            let n = if limit == 0 { n } else { n.min(limit) };
            Ok(Reply::Integer(n as i64))
        }
        Output::Store => {
            sort_entries(&mut result);
            store_entries(txn, &args[1], result).await
        }
        Output::Reply => {
            sort_entries(&mut result);
            Ok(entries_reply(result, with_scores))
        }
    }
}

/// The entries of `op` over `inputs` (unsorted). Union and intersection visit the inputs
/// from the smallest up, as Redis does, so sums round the same way.
fn combine_inputs(
    op: SetOp,
    inputs: &[BTreeMap<Vec<u8>, f64>],
    weights: &[f64],
    aggregate: Aggregate,
) -> Vec<Entry> {
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    if op != SetOp::Diff {
        order.sort_by_key(|&i| inputs[i].len());
    }
    match op {
        SetOp::Union => {
            let mut acc: BTreeMap<&[u8], f64> = BTreeMap::new();
            for &i in &order {
                for (member, &score) in &inputs[i] {
                    let v = weighted(weights[i], score);
                    acc.entry(member.as_slice())
                        .and_modify(|a| aggregate.apply(a, v))
                        .or_insert(v);
                }
            }
            acc.into_iter().map(|(m, s)| (m.to_vec(), s)).collect()
        }
        SetOp::Inter => {
            let (&smallest, rest) = order.split_first().expect("numkeys is at least 1");
            inputs[smallest]
                .iter()
                .filter_map(|(member, &score)| {
                    let mut acc = weighted(weights[smallest], score);
                    for &i in rest {
                        let other = inputs[i].get(member)?;
                        aggregate.apply(&mut acc, other * weights[i]);
                    }
                    Some((member.clone(), acc))
                })
                .collect()
        }
        SetOp::Diff => inputs[0]
            .iter()
            .filter(|(member, _)| !inputs[1..].iter().any(|other| other.contains_key(*member)))
            .map(|(m, &s)| (m.clone(), s))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_weight_and_aggregate_like_redis() {
        let a: BTreeMap<Vec<u8>, f64> = [(b"x".to_vec(), 1.0), (b"y".to_vec(), 2.0)].into();
        let b: BTreeMap<Vec<u8>, f64> = [(b"y".to_vec(), 10.0), (b"z".to_vec(), 3.0)].into();
        let inputs = [a, b];
        let mut union = combine_inputs(SetOp::Union, &inputs, &[1.0, 2.0], Aggregate::Sum);
        sort_entries(&mut union);
        assert_eq!(
            union,
            vec![
                (b"x".to_vec(), 1.0),
                (b"z".to_vec(), 6.0),
                (b"y".to_vec(), 22.0)
            ]
        );
        let inter = combine_inputs(SetOp::Inter, &inputs, &[1.0, 1.0], Aggregate::Max);
        assert_eq!(inter, vec![(b"y".to_vec(), 10.0)]);
        let diff = combine_inputs(SetOp::Diff, &inputs, &[1.0, 1.0], Aggregate::Sum);
        assert_eq!(diff, vec![(b"x".to_vec(), 1.0)]);
        let mut acc = f64::INFINITY;
        Aggregate::Sum.apply(&mut acc, f64::NEG_INFINITY);
        assert_eq!(acc, 0.0);
        assert_eq!(weighted(0.0, f64::INFINITY), 0.0);
    }
}
