//! Redis data is database data: what a RESP client writes, SQL reads at once from the `redis`
//! schema (`redis.keys`, `redis.strings`, `redis.hashes`, `redis.lists`, `redis.sets`,
//! `redis.zsets`), every acknowledged write survives SIGKILL, and expired keys go away by
//! themselves. Writes go through redis-cli (skipped when it is missing).

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::{redis_cli, redis_cli_available, thunderdb};
use crate::harness::{TestServer, describe};
use crate::sql::{check, exec, query_value};

/// Pipes `script` into redis-cli on the server's current RESP port and asserts its transcript.
fn cli_script(server: &TestServer, script: &str, expected: &str, what: &str) {
    let run = redis_cli(server.resp_port(), &[], script);
    assert!(
        run.status.success() && run.stdout == expected,
        "{what}: redis-cli transcript differs\n---- expected ----\n{expected}\n{}",
        run.describe()
    );
}

const WRITES: &str = r#"SET k v
SET greeting "hello world" EX 1000
HSET user:1 name Ada lang Rust
RPUSH queue a b c
LPUSH queue z
SADD tags x y
ZADD board 10 ann 20.5 bob
INCR counter
INCR counter
SET gone v
DEL gone
MULTI
INCR counter
RPUSH queue last
EXEC
SELECT 2
SET k "in db 2"
"#;

const WRITES_ACKNOWLEDGED: &str = "OK
OK
2
3
4
2
2
1
2
OK
1
OK
QUEUED
QUEUED
3
5
OK
OK
";

/// Everything [`WRITES`] left, as SQL shows it (the `bulk:*` keys are checked apart).
async fn check_rows(c: &tokio_postgres::Client, k: &str) {
    check(
        c,
        "SELECT db, key, type FROM redis.keys WHERE key NOT LIKE 'bulk:%' ORDER BY db, key",
        "0|board|zset
         0|counter|string
         0|greeting|string
         0|k|string
         0|queue|list
         0|tags|set
         0|user:1|hash
         2|k|string",
    )
    .await;
    check(
        c,
        "SELECT value FROM redis.strings WHERE db = 0 AND key = 'k'",
        k,
    )
    .await;
    check(
        c,
        "SELECT key, value, expire_at IS NOT NULL FROM redis.strings WHERE db = 0 AND key NOT LIKE 'bulk:%' ORDER BY key",
        &format!(
            "counter|3|f
             greeting|hello world|t
             k|{k}|f"
        ),
    )
    .await;
    check(
        c,
        "SELECT expire_at > now() FROM redis.strings WHERE key = 'greeting'",
        "t",
    )
    .await;
    check(c, "SELECT value FROM redis.strings WHERE db = 2", "in db 2").await;
    check(
        c,
        "SELECT field, value FROM redis.hashes WHERE key = 'user:1' ORDER BY field",
        "lang|Rust
         name|Ada",
    )
    .await;
    check(
        c,
        r#"SELECT "index", value FROM redis.lists WHERE key = 'queue' ORDER BY "index""#,
        "0|z
         1|a
         2|b
         3|c
         4|last",
    )
    .await;
    check(
        c,
        "SELECT member FROM redis.sets WHERE key = 'tags' ORDER BY member",
        "x
         y",
    )
    .await;
    check(
        c,
        "SELECT member, score FROM redis.zsets WHERE key = 'board' ORDER BY score",
        "ann|10
         bob|20.5",
    )
    .await;
    check(c, "SELECT count(*) FROM redis.keys WHERE key = 'gone'", "0").await;
}

/// RESP writes of every type (and a MULTI/EXEC) are SQL rows as soon as they are
/// acknowledged, SQL joins them with ordinary tables, and after SIGKILL and a restart on the
/// same data directory every acknowledged write is back, through RESP and SQL.
#[tokio::test]
async fn resp_writes_are_sql_rows_and_survive_sigkill() {
    let test = "redis::sql::resp_writes_are_sql_rows_and_survive_sigkill";
    if !redis_cli_available(test) {
        return;
    }
    let Some(mut server) = thunderdb(test) else {
        return;
    };
    cli_script(&server, WRITES, WRITES_ACKNOWLEDGED, "the writes");
    let c = server.connect().await;
    check_rows(&c, "v").await;

    // Seen at once: no delay between the reply and the SQL snapshot.
    cli_script(&server, "SET k v2\nHDEL user:1 lang\n", "OK\n1\n", "update");
    check(
        &c,
        "SELECT value FROM redis.strings WHERE db = 0 AND key = 'k'",
        "v2",
    )
    .await;
    check(
        &c,
        "SELECT field, value FROM redis.hashes WHERE key = 'user:1'",
        "name|Ada",
    )
    .await;
    cli_script(&server, "HSET user:1 lang Rust\n", "1\n", "restore lang");

    // Redis data joins SQL tables.
    exec(
        &c,
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, email TEXT NOT NULL)",
    )
    .await;
    exec(
        &c,
        "INSERT INTO accounts VALUES ('user:1', 'ada@example.com'), ('user:2', 'x@example.com')",
    )
    .await;
    check(
        &c,
        "SELECT a.email, h.value FROM accounts a JOIN redis.hashes h ON h.key = a.id WHERE h.field = 'name'",
        "ada@example.com|Ada",
    )
    .await;

    // 500 more keys in one pipeline, then SIGKILL.
    let bulk: String = (0..500).map(|i| format!("SET bulk:{i} {i}\n")).collect();
    let run = redis_cli(server.resp_port(), &[], &bulk);
    assert_eq!(
        run.stdout,
        "OK\n".repeat(500),
        "bulk SETs: {}",
        run.describe()
    );
    drop(c);
    server.kill9();
    server.restart_same_dir();

    cli_script(
        &server,
        "GET k\nHGET user:1 name\nHGET user:1 lang\nLRANGE queue 0 -1\nSCARD tags\nSISMEMBER tags x\nSISMEMBER tags y\nZRANGE board 0 -1 WITHSCORES\nGET counter\nEXISTS gone\nGET bulk:499\nSELECT 2\nGET k\n",
        "v2\nAda\nRust\nz\na\nb\nc\nlast\n2\n1\n1\nann\n10\nbob\n20.5\n3\n0\n499\nOK\nin db 2\n",
        "reading after SIGKILL and restart",
    );
    let ttl = redis_cli(server.resp_port(), &["TTL", "greeting"], "");
    let ttl: i64 = ttl.stdout.trim().parse().unwrap_or(-100);
    assert!(
        (900..=1000).contains(&ttl),
        "TTL greeting after restart: {ttl} (EX 1000 was set seconds ago)"
    );
    let c = server.connect().await;
    check_rows(&c, "v2").await;
    check(
        &c,
        "SELECT count(*), sum(CAST(value AS BIGINT)) FROM redis.strings WHERE key LIKE 'bulk:%'",
        "500|124750",
    )
    .await;
    check(&c, "SELECT count(*) FROM accounts", "2").await;
}

/// The `redis` tables are read-only (Redis data is written through RESP): a write says so,
/// as PostgreSQL does for a view it cannot update (55000 `cannot insert into view`), and does
/// not claim that the table SELECT just read does not exist.
#[tokio::test]
async fn sql_writes_to_redis_tables_are_refused() {
    let Some(server) = thunderdb("redis::sql::sql_writes_to_redis_tables_are_refused") else {
        return;
    };
    let c = server.connect().await;
    check(&c, "SELECT count(*) FROM redis.strings", "0").await;
    let mut wrong = Vec::new();
    for sql in [
        "INSERT INTO redis.strings VALUES (0, 'k', 'v', NULL)",
        "UPDATE redis.strings SET value = 'x'",
        "DELETE FROM redis.keys",
        "INSERT INTO redis.hashes VALUES (0, 'h', 'f', 'v')",
    ] {
        match c.simple_query(sql).await {
            Ok(_) => wrong.push(format!("{sql}: succeeded")),
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) || e.as_db_error().is_none() => {
                wrong.push(format!("{sql}: {}", describe(&e)))
            }
            Err(_) => {}
        }
    }
    check(&c, "SELECT count(*) FROM redis.strings", "0").await;
    assert!(
        wrong.is_empty(),
        "writes to the read-only redis tables (expected an error such as 55000 `cannot insert into view`):\n  {}",
        wrong.join("\n  ")
    );
}

/// A key whose time has come disappears by itself: SQL's `redis.keys` count reaches 0 with no
/// Redis client touching the keys, and keys without a TTL stay. (The SQL tables hide expired
/// keys by themselves, so this checks what a user sees; whether the background pass really
/// deleted them is not observable from outside.)
#[tokio::test]
async fn expired_keys_go_away_without_access() {
    let test = "redis::sql::expired_keys_go_away_without_access";
    if !redis_cli_available(test) {
        return;
    }
    let Some(server) = thunderdb(test) else {
        return;
    };
    let set_at = Instant::now();
    cli_script(
        &server,
        "SET soon v PX 2000\nHSET hsoon f v\nPEXPIRE hsoon 2000\nRPUSH lsoon a\nEXPIRE lsoon 2\nSELECT 1\nSET stays v\n",
        "OK\n1\n1\n1\n1\nOK\nOK\n",
        "keys with a TTL",
    );
    let c = server.connect().await;
    let before = query_value(&c, "SELECT count(*) FROM redis.keys WHERE db = 0").await;
    if set_at.elapsed() < Duration::from_millis(1500) {
        assert_eq!(before, "3", "the keys before their time");
    }
    // From here on nothing but SQL looks at the keys.
    let deadline = set_at + Duration::from_secs(2) + Duration::from_secs(3);
    loop {
        let n = query_value(&c, "SELECT count(*) FROM redis.keys WHERE db = 0").await;
        if n == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} expired keys still in redis.keys 3 s after their expiry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check(&c, "SELECT db, key FROM redis.keys", "1|stays").await;
    cli_script(
        &server,
        "DBSIZE\nEXISTS soon hsoon lsoon\nSELECT 1\nGET stays\nTTL stays\n",
        "0\n0\nOK\nv\n-1\n",
        "after the expiry",
    );
}
