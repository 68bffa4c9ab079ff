//! redis-py (PyPI `redis` >= 5), the most used Redis client, one script per area: each
//! `@case` in `py/<area>.py` asserts Redis 7.0's replies, every failing case is reported with
//! its traceback, and a script that passes prints `ok`. Skipped when `import redis` fails.

use std::process::Command;

use super::{RespServer, skip};
use crate::harness::run_python_cases;

const PRELUDE: &str = include_str!("py/prelude.py");

/// Whether python3 with redis-py >= 5 runs here; prints the skip line for `test` if not.
fn redis_py_available(test: &str) -> bool {
    let status = Command::new("python3")
        .args([
            "-c",
            "import sys, redis; sys.exit(0 if int(redis.__version__.split('.')[0]) >= 5 else 3)",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => true,
        Ok(s) if s.code() == Some(3) => {
            skip(test, "redis-py is older than 5");
            false
        }
        _ => {
            skip(
                test,
                "redis-py not installed (python3 -c 'import redis' fails)",
            );
            false
        }
    }
}

/// Runs `py/<area>.py` against a fresh server; fails with the script's output unless it exits
/// 0 and prints `ok`.
fn run_script(area: &str, script: &str) {
    let test = format!("redis::py::{area}");
    if !redis_py_available(&test) {
        return;
    }
    let Some(mut server) = RespServer::start(&test) else {
        return;
    };
    let file = format!("{area}.py");
    let reference = if server.is_reference() { "1" } else { "0" };
    run_python_cases(
        PRELUDE,
        &file,
        script,
        &[
            ("REDIS_HOST", "127.0.0.1".into()),
            ("REDIS_PORT", server.port().to_string()),
            ("REDIS_REFERENCE", reference.into()),
        ],
    );
    server.assert_running(&format!("after {file}"));
}

/// SET with EX/PX/EXAT/PXAT/NX/XX/GET/KEEPTTL, MGET/MSET/MSETNX, INCR…INCRBYFLOAT,
/// APPEND/STRLEN/GETRANGE/SETRANGE/GETDEL/SETEX/SETNX/GETEX.
#[test]
fn strings() {
    run_script("strings", include_str!("py/strings.py"));
}

/// DEL/UNLINK/EXISTS/TYPE/RENAME/RENAMENX/KEYS/SCAN (MATCH, COUNT, TYPE), the expiry
/// commands and keys that really expire, RANDOMKEY/DBSIZE/FLUSHDB/FLUSHALL, SELECT 0-15.
#[test]
fn keys() {
    run_script("keys", include_str!("py/keys.py"));
}

/// HSET … HSCAN.
#[test]
fn hashes() {
    run_script("hashes", include_str!("py/hashes.py"));
}

/// LPUSH … LPOS, and BLPOP/BRPOP: timeouts, and a waiter woken by another client's push.
#[test]
fn lists() {
    run_script("lists", include_str!("py/lists.py"));
}

/// SADD … SSCAN, set algebra and the *STORE forms.
#[test]
fn sets() {
    run_script("sets", include_str!("py/sets.py"));
}

/// ZADD with NX/XX/GT/LT/CH/INCR, ranks, ZRANGE BYSCORE/BYLEX/REV/LIMIT, pops, removals, ZSCAN.
#[test]
fn zsets() {
    run_script("zsets", include_str!("py/zsets.py"));
}

/// WRONGTYPE, MULTI/EXEC (pipelines and raw), EXECABORT, WATCH and the retry loop.
#[test]
fn transactions() {
    run_script("transactions", include_str!("py/transactions.py"));
}

/// SUBSCRIBE/PSUBSCRIBE/PUBLISH/UNSUBSCRIBE and PUBSUB CHANNELS/NUMSUB/NUMPAT.
#[test]
fn pubsub() {
    run_script("pubsub", include_str!("py/pubsub.py"));
}

/// PING/ECHO/AUTH/HELLO 3 (RESP3 maps and doubles)/CLIENT/INFO/COMMAND/CONFIG/TIME/RESET.
#[test]
fn connection() {
    run_script("connection", include_str!("py/connection.py"));
}
