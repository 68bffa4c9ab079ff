//! The command table (arity, flags, key positions: what `COMMAND` reports and what arity checks
//! use), dispatch to the data-type modules, and argument parsing shared by them.

use super::reply::{RedisError, Reply};
use super::store::RedisTxn;
use super::{bits, hashes, keys, lists, sets, sort, strings, zsets};
use std::collections::HashMap;
use std::sync::LazyLock;

/// One command as `COMMAND INFO` describes it.
#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// Redis's convention: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
}

/// Shorthand for the tables: a command with its arity, flags and key positions.
pub(super) const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
    }
}

pub(super) const W: &[&str] = &["write"];
pub(super) const WD: &[&str] = &["write", "denyoom"];
pub(super) const R: &[&str] = &["readonly"];
pub(super) const RF: &[&str] = &["readonly", "fast"];
pub(super) const WF: &[&str] = &["write", "fast"];
pub(super) const WDF: &[&str] = &["write", "denyoom", "fast"];
pub(super) const BLOCKING: &[&str] = &["write", "blocking"];
/// Key positions: none, the first argument, every argument, pairs.
pub(super) const NO_KEYS: (i32, i32, i32) = (0, 0, 0);
pub(super) const KEY1: (i32, i32, i32) = (1, 1, 1);
pub(super) const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);

/// Every data command, from each data-type module.
pub static COMMANDS: LazyLock<Vec<&'static CommandSpec>> = LazyLock::new(|| {
    [
        strings::COMMANDS,
        bits::COMMANDS,
        keys::COMMANDS,
        hashes::COMMANDS,
        lists::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        sort::COMMANDS,
    ]
    .into_iter()
    .flatten()
    .collect()
});

static BY_NAME: LazyLock<HashMap<&'static str, (&'static CommandSpec, Module)>> =
    LazyLock::new(|| {
        let mut map = HashMap::new();
        for (module, table) in [
            (Module::Strings, strings::COMMANDS),
            (Module::Bits, bits::COMMANDS),
            (Module::Keys, keys::COMMANDS),
            (Module::Hashes, hashes::COMMANDS),
            (Module::Lists, lists::COMMANDS),
            (Module::Sets, sets::COMMANDS),
            (Module::ZSets, zsets::COMMANDS),
            (Module::Sort, sort::COMMANDS),
        ] {
            for s in table {
                map.insert(s.name, (s, module));
            }
        }
        map
    });

#[derive(Copy, Clone, Debug)]
enum Module {
    Strings,
    Bits,
    Keys,
    Hashes,
    Lists,
    Sets,
    ZSets,
    Sort,
}

/// The data command named `name` (any case).
pub fn command_spec(name: &[u8]) -> Option<&'static CommandSpec> {
    let name = String::from_utf8_lossy(name).to_lowercase();
    BY_NAME.get(name.as_str()).map(|(s, _)| *s)
}

/// The lower-case command name of `args`.
pub(super) fn name_of(args: &[Vec<u8>]) -> String {
    args.first()
        .map(|n| String::from_utf8_lossy(n).to_lowercase())
        .unwrap_or_default()
}

/// `ERR unknown command` or `ERR wrong number of arguments` before anything runs.
pub(super) fn check_arity(args: &[Vec<u8>]) -> Result<(), RedisError> {
    let name = name_of(args);
    let Some((spec, _)) = BY_NAME.get(name.as_str()) else {
        return Err(unknown_command(args));
    };
    let n = args.len() as i32;
    let ok = if spec.arity >= 0 {
        n == spec.arity
    } else {
        n >= -spec.arity
    };
    if ok {
        Ok(())
    } else {
        Err(RedisError::arity(&name))
    }
}

/// Redis's message for a command it does not know, quoting the first arguments.
pub fn unknown_command(args: &[Vec<u8>]) -> RedisError {
    let name = args
        .first()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default();
    // Each quoted argument is followed by a space, the last one too, as Redis writes it.
    let quoted: String = args
        .iter()
        .skip(1)
        .take(8)
        .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
        .collect();
    RedisError::err(format!(
        "unknown command '{name}', with args beginning with: {quoted}"
    ))
}

/// Whether `spec` blocks (BLPOP …): outside MULTI it waits for data.
pub(super) fn is_blocking(args: &[Vec<u8>]) -> bool {
    command_spec(args.first().map(Vec::as_slice).unwrap_or_default())
        .is_some_and(|s| s.flags.contains(&"blocking"))
}

/// The timeout of a blocking command in seconds (0: forever); it is the last argument except
/// for BLMPOP / BZMPOP, where it comes first.
pub(super) fn blocking_timeout(args: &[Vec<u8>]) -> Result<f64, RedisError> {
    let name = name_of(args);
    let raw = if name == "blmpop" || name == "bzmpop" {
        args.get(1)
    } else {
        args.last()
    };
    let t = raw
        .and_then(|r| std::str::from_utf8(r).ok())
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|t| t.is_finite())
        .ok_or_else(|| RedisError::err("timeout is not a float or out of range"))?;
    if t < 0.0 {
        return Err(RedisError::err("timeout is negative"));
    }
    Ok(t)
}

/// Runs a data command in `txn`.
pub(super) async fn dispatch(txn: &mut RedisTxn, args: &[Vec<u8>]) -> Result<Reply, RedisError> {
    let name = name_of(args);
    let Some((_, module)) = BY_NAME.get(name.as_str()) else {
        return Err(unknown_command(args));
    };
    match module {
        Module::Strings => strings::run(txn, &name, args).await,
        Module::Bits => bits::run(txn, &name, args).await,
        Module::Keys => keys::run(txn, &name, args).await,
        Module::Hashes => hashes::run(txn, &name, args).await,
        Module::Lists => lists::run(txn, &name, args).await,
        Module::Sets => sets::run(txn, &name, args).await,
        Module::ZSets => zsets::run(txn, &name, args).await,
        Module::Sort => sort::run(txn, &name, args).await,
    }
}

/// Whether argument `a` is the keyword `word` (any case).
pub(super) fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// An integer argument, as Redis parses them (no spaces, no `+`, within i64).
pub(super) fn int_arg(a: &[u8]) -> Result<i64, RedisError> {
    parse_int(a).ok_or_else(RedisError::not_integer)
}

/// Parses an integer the way Redis's `string2ll` does.
pub(super) fn parse_int(a: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(a).ok()?;
    if s.is_empty()
        || s.starts_with('+')
        || (s.len() > 1 && s.starts_with('0'))
        || s.starts_with("-0")
    {
        return None;
    }
    s.parse().ok()
}

/// A float argument: decimal, exponent, `inf`, `+inf`, `-inf`; never NaN.
pub(super) fn float_arg(a: &[u8]) -> Result<f64, RedisError> {
    parse_float(a).ok_or_else(RedisError::not_float)
}

pub(super) fn parse_float(a: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(a).ok()?;
    if s.is_empty() || s.trim() != s {
        return None;
    }
    let v = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        other if other.contains("nan") || other.contains("inf") => return None,
        // A finite spelling that overflows (`1e500`) is out of range, as strtod's ERANGE.
        other => Some(other.parse::<f64>().ok()?).filter(|v| v.is_finite())?,
    };
    (!v.is_nan()).then_some(v)
}

/// A float as Redis prints it: shortest round-trip digits, `inf` / `-inf`.
pub(super) fn format_float(v: f64) -> Vec<u8> {
    if v.is_infinite() {
        return if v > 0.0 {
            b"inf".to_vec()
        } else {
            b"-inf".to_vec()
        };
    }
    if v == 0.0 {
        return b"0".to_vec();
    }
    let plain = format!("{v}");
    // Redis switches to exponent form for very large or very small magnitudes.
    if plain.len() > 21 {
        format!("{v:e}")
            .replace("e", "e+")
            .replace("e+-", "e-")
            .into_bytes()
    } else {
        plain.into_bytes()
    }
}

/// Resolves Redis's negative indexes (`-1` is the last) against a length, clamped into
/// `0..=len`, for `[start, stop]` inclusive ranges; `None` when the range is empty.
pub(super) fn clamp_range(start: i64, stop: i64, len: i64) -> Option<(i64, i64)> {
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then_some((start, stop))
}

/// A glob pattern as `KEYS`, `SCAN MATCH` and `PSUBSCRIBE` use: `*`, `?`, `[a-z]`, `[^a]`, `\x`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, bytes consumed including ']').
        let mut i = 0;
        let negate = p.first() == Some(&b'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        loop {
            let &b = p.get(i)?;
            if b == b']' && i > usize::from(negate) {
                return Some((matched != negate, i + 1));
            }
            if b == b'\\' {
                i += 1;
                if *p.get(i)? == c {
                    matched = true;
                }
                i += 1;
            } else if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
                let (lo, hi) = (b.min(p[i + 2]), b.max(p[i + 2]));
                if (lo..=hi).contains(&c) {
                    matched = true;
                }
                i += 3;
            } else {
                if b == c {
                    matched = true;
                }
                i += 1;
            }
        }
    }
    // Greedy matching that backtracks only to the last `*`: linear in practice, where plain
    // recursion is exponential for patterns like `a*a*a*…b` (Redis's issue with KEYS).
    let (p, t) = (pattern, text);
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                while p.get(pi) == Some(&b'*') {
                    pi += 1;
                }
                if pi == p.len() {
                    return true;
                }
                star = Some((pi, ti));
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match class(&p[pi + 1..], t[ti]) {
                Some((true, used)) => Some(1 + used),
                Some((false, _)) => None,
                None => (t[ti] == b'[').then_some(1),
            },
            Some(b'\\') if pi + 1 < p.len() => (p[pi + 1] == t[ti]).then_some(2),
            Some(c) => (*c == t[ti]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(n), _) => {
                pi += n;
                ti += 1;
            }
            // Let the last `*` take one more character and try again from there.
            (None, Some((sp, st))) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_redis() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"user:*", b"user:1"));
        assert!(!glob_match(b"user:*", b"users"));
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"h\\*llo", b"h*llo"));
        assert!(!glob_match(b"h\\*llo", b"hello"));
        assert!(glob_match(b"*a*b", b"xxaxxb"));
        assert!(!glob_match(b"*a*b", b"xxaxxbc"));
        assert!(glob_match(b"a*", b"a"));
        // Exponential for naive backtracking; must answer at once.
        let long = [b'a'; 40];
        assert!(!glob_match(
            b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
            &long
        ));
    }

    #[test]
    fn numbers_parse_like_redis() {
        assert_eq!(parse_int(b"10"), Some(10));
        assert_eq!(parse_int(b"-3"), Some(-3));
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"+1"), None);
        assert_eq!(parse_int(b"01"), None);
        assert_eq!(parse_int(b" 1"), None);
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(format_float(3.0), b"3");
        assert_eq!(format_float(10.5), b"10.5");
        assert_eq!(format_float(f64::INFINITY), b"inf");
    }

    #[test]
    fn ranges_resolve_negative_indexes() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-2, -1, 5), Some((3, 4)));
        assert_eq!(clamp_range(3, 1, 5), None);
        assert_eq!(clamp_range(0, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(5, 10, 3), None);
        assert_eq!(clamp_range(-100, 0, 3), Some((0, 0)));
    }
}
