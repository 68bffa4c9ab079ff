//! The real `redis-cli` (Debian redis-tools) against the RESP frontend: one command per
//! invocation, a script piped on stdin, its output modes, and `--pipe` mass insertion. Every
//! expected output is what redis-cli 7.0 prints against redis-server 7.0.

use super::{Checks, RespServer, redis_cli, redis_cli_available};

/// (arguments, stdout). redis-cli's stdout is a pipe here, so it prints replies raw: one line
/// per element, nil as an empty line, an error as its line followed by an empty line (with
/// exit status 0).
const SINGLE_COMMANDS: &[(&[&str], &str)] = &[
    (&["PING"], "PONG\n"),
    (&["ECHO", "hi there"], "hi there\n"),
    (&["SET", "k", "v"], "OK\n"),
    (&["GET", "k"], "v\n"),
    (&["GET", "missing"], "\n"),
    (&["SET", "greeting", "hello world"], "OK\n"),
    (&["GET", "greeting"], "hello world\n"),
    (&["APPEND", "greeting", "!"], "12\n"),
    (&["STRLEN", "greeting"], "12\n"),
    (&["GETRANGE", "greeting", "0", "4"], "hello\n"),
    (&["INCR", "n"], "1\n"),
    (&["INCRBY", "n", "41"], "42\n"),
    (&["DECR", "n"], "41\n"),
    (&["INCRBYFLOAT", "f", "2.5"], "2.5\n"),
    (&["MSET", "a", "1", "b", "2"], "OK\n"),
    (&["MGET", "a", "missing", "b"], "1\n\n2\n"),
    (&["SET", "a", "x", "NX"], "\n"),
    (&["SET", "a", "10", "XX", "GET"], "1\n"),
    (&["RPUSH", "list", "a", "b", "c"], "3\n"),
    (&["LPUSH", "list", "z"], "4\n"),
    (&["LRANGE", "list", "0", "-1"], "z\na\nb\nc\n"),
    (&["LPOP", "list"], "z\n"),
    (&["RPOP", "list", "2"], "c\nb\n"),
    (&["LLEN", "list"], "1\n"),
    (&["HSET", "user:1", "lang", "Rust", "name", "Ada"], "2\n"),
    (&["HGET", "user:1", "name"], "Ada\n"),
    (&["HGETALL", "user:1"], "lang\nRust\nname\nAda\n"),
    (&["HINCRBY", "user:1", "age", "36"], "36\n"),
    (&["SADD", "tags", "x", "y", "x"], "2\n"),
    (&["SISMEMBER", "tags", "x"], "1\n"),
    (&["SCARD", "tags"], "2\n"),
    (
        &["ZADD", "board", "10", "ann", "20", "bob", "15", "cid"],
        "3\n",
    ),
    (
        &["ZRANGE", "board", "0", "-1", "WITHSCORES"],
        "ann\n10\ncid\n15\nbob\n20\n",
    ),
    (&["ZSCORE", "board", "cid"], "15\n"),
    (&["ZINCRBY", "board", "0.5", "cid"], "15.5\n"),
    (&["ZREVRANK", "board", "bob"], "0\n"),
    (&["TYPE", "board"], "zset\n"),
    (&["TYPE", "missing"], "none\n"),
    (&["EXPIRE", "k", "100"], "1\n"),
    (&["PERSIST", "k"], "1\n"),
    (&["TTL", "k"], "-1\n"),
    (&["EXISTS", "k", "missing", "list"], "2\n"),
    (&["DEL", "k", "list", "missing"], "2\n"),
    // greeting n f a b user:1 tags board
    (&["DBSIZE"], "8\n"),
    (
        &["NOSUCHCMD", "a", "b"],
        "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' \n\n",
    ),
    (
        &["GET"],
        "ERR wrong number of arguments for 'get' command\n\n",
    ),
    (
        &["INCR", "greeting"],
        "ERR value is not an integer or out of range\n\n",
    ),
    (
        &["LPUSH", "greeting", "x"],
        "WRONGTYPE Operation against a key holding the wrong kind of value\n\n",
    ),
    (&["SELECT", "16"], "ERR DB index is out of range\n\n"),
    (
        &["SET", "k", "v", "EX", "0"],
        "ERR invalid expire time in 'set' command\n\n",
    ),
    (&["SET", "k", "v", "NX", "XX"], "ERR syntax error\n\n"),
    (&["-n", "3", "SET", "k", "in db 3"], "OK\n"),
    (&["-n", "3", "GET", "k"], "in db 3\n"),
    (&["GET", "k"], "\n"),
    (&["-n", "3", "DBSIZE"], "1\n"),
    (&["-r", "3", "INCR", "repeat"], "1\n2\n3\n"),
    (&["FLUSHALL"], "OK\n"),
    (&["DBSIZE"], "0\n"),
    (&["-n", "3", "DBSIZE"], "0\n"),
];

/// One redis-cli invocation per command, as in a shell script: replies and errors exactly as
/// redis-cli prints Redis's.
#[test]
fn single_commands() {
    let test = "redis::cli::single_commands";
    if !redis_cli_available(test) {
        return;
    }
    let Some(mut server) = RespServer::start(test) else {
        return;
    };
    let mut checks = Checks::new();
    for (args, expected) in SINGLE_COMMANDS {
        let run = redis_cli(server.port(), args, "");
        checks.eq(
            &format!("redis-cli {}", args.join(" ")),
            &run.stdout,
            expected,
        );
        checks.check(
            &format!("redis-cli {} exit status", args.join(" ")),
            run.status.success(),
            &run.describe(),
        );
    }
    // -x: the last argument is stdin.
    let run = redis_cli(
        server.port(),
        &["-x", "SET", "blob"],
        "line one\nline two\n",
    );
    checks.eq("redis-cli -x SET blob", &run.stdout, "OK\n");
    let run = redis_cli(server.port(), &["GET", "blob"], "");
    checks.eq(
        "GET blob (set with -x)",
        &run.stdout,
        "line one\nline two\n\n",
    );
    server.assert_running("after the redis-cli commands");
    checks.finish("redis-cli single commands");
}

/// A script piped into redis-cli, MULTI/EXEC and errors included: the transcript redis-cli
/// prints against Redis.
#[test]
fn piped_script() {
    let test = "redis::cli::piped_script";
    if !redis_cli_available(test) {
        return;
    }
    let Some(mut server) = RespServer::start(test) else {
        return;
    };
    let script = r#"SET greeting "hello world"
GET greeting
APPEND greeting !
INCR counter
INCRBY counter 41
RPUSH list a b c
LRANGE list 0 -1
HSET user:1 lang Rust name Ada
HGETALL user:1
ZADD board 10 ann 20 bob 15 cid
ZRANGE board 0 -1 WITHSCORES
ZSCORE board cid
GET missing
TYPE list
LPUSH user:1 x
GET
MULTI
SET tx 1
INCR tx
LRANGE list 0 0
EXEC
GET tx
SELECT 2
GET greeting
SET greeting "in db 2"
SELECT 0
GET greeting
DEL greeting list
EXISTS greeting
DBSIZE
"#;
    let expected = "OK
hello world
12
1
42
3
a
b
c
2
lang
Rust
name
Ada
3
ann
10
cid
15
bob
20
15

list
WRONGTYPE Operation against a key holding the wrong kind of value

ERR wrong number of arguments for 'get' command

OK
QUEUED
QUEUED
QUEUED
OK
2
a
2
OK

OK
OK
hello world!
2
0
4
";
    let run = redis_cli(server.port(), &[], script);
    assert!(
        run.status.success(),
        "redis-cli < script: {}",
        run.describe()
    );
    let mut checks = Checks::new();
    let actual: Vec<&str> = run.stdout.split('\n').collect();
    let wanted: Vec<&str> = expected.split('\n').collect();
    for (i, want) in wanted.iter().enumerate() {
        let got = actual.get(i).copied().unwrap_or("<missing>");
        checks.eq(&format!("transcript line {}", i + 1), got, want);
    }
    checks.check(
        "transcript length",
        actual.len() == wanted.len(),
        &format!(
            "{} lines, expected {}\n---- transcript ----\n{}",
            actual.len(),
            wanted.len(),
            run.stdout
        ),
    );
    server.assert_running("after the piped script");
    checks.finish("redis-cli piped script");
}

/// redis-cli's other output modes: `--no-raw` types, RESP3 (`-3`) maps, sets and doubles,
/// `--scan`, `--bigkeys`, and login with `--user`/`--pass`.
#[test]
fn output_modes() {
    let test = "redis::cli::output_modes";
    if !redis_cli_available(test) {
        return;
    }
    let Some(mut server) = RespServer::start(test) else {
        return;
    };
    let port = server.port();
    let setup = "RPUSH l a b\nHSET h a 1 b 2\nZADD z 1.5 m 2 n\nSADD s x\nSET user:1 1\nSET user:2 22\nSET other 333\n";
    let run = redis_cli(port, &[], setup);
    assert!(run.status.success(), "setup: {}", run.describe());

    let cases: &[(&[&str], &str)] = &[
        (&["--no-raw", "INCR", "c"], "(integer) 1\n"),
        (&["--no-raw", "GET", "missing"], "(nil)\n"),
        (&["--no-raw", "GET", "other"], "\"333\"\n"),
        (
            &["--no-raw", "LRANGE", "l", "0", "-1"],
            "1) \"a\"\n2) \"b\"\n",
        ),
        (
            &["--no-raw", "LRANGE", "nope", "0", "-1"],
            "(empty array)\n",
        ),
        (&["--no-raw", "ZSCORE", "z", "m"], "\"1.5\"\n"),
        (
            &["--no-raw", "GET"],
            "(error) ERR wrong number of arguments for 'get' command\n",
        ),
        (
            &["-3", "--no-raw", "HGETALL", "h"],
            "1# \"a\" => \"1\"\n2# \"b\" => \"2\"\n",
        ),
        (&["-3", "--no-raw", "ZSCORE", "z", "m"], "(double) 1.5\n"),
        (&["-3", "--no-raw", "SMEMBERS", "s"], "1~ \"x\"\n"),
        (&["-3", "--no-raw", "SMEMBERS", "none"], "(empty set)\n"),
        (&["-3", "--no-raw", "HGET", "h", "nope"], "(nil)\n"),
        (&["-3", "--no-raw", "SISMEMBER", "s", "x"], "(integer) 1\n"),
        (
            &["-3", "--no-raw", "CONFIG", "GET", "maxmemory"],
            "1# \"maxmemory\" => \"0\"\n",
        ),
        (
            &["-3", "--no-raw", "ZRANGE", "z", "0", "-1", "WITHSCORES"],
            "1) 1) \"m\"\n   2) (double) 1.5\n2) 1) \"n\"\n   2) (double) 2\n",
        ),
        (
            &[
                "--user",
                "thunder",
                "--pass",
                "thunder",
                "--no-auth-warning",
                "PING",
            ],
            "PONG\n",
        ),
    ];
    let mut checks = Checks::new();
    for (args, expected) in cases {
        let run = redis_cli(port, args, "");
        checks.eq(
            &format!("redis-cli {}", args.join(" ")),
            &run.stdout,
            expected,
        );
    }

    let run = redis_cli(
        port,
        &[
            "--user",
            "thunder",
            "--pass",
            "wrong",
            "--no-auth-warning",
            "PING",
        ],
        "",
    );
    checks.eq(
        "redis-cli --user thunder --pass wrong: stderr",
        &run.stderr,
        "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\n",
    );
    // No password is required, so the command still runs, as with Redis.
    checks.eq(
        "redis-cli --user thunder --pass wrong: stdout",
        &run.stdout,
        "PONG\n",
    );

    let run = redis_cli(port, &["--scan", "--pattern", "user:*"], "");
    let mut keys: Vec<&str> = run.stdout.lines().collect();
    keys.sort_unstable();
    checks.eq(
        "redis-cli --scan --pattern user:*",
        &keys.join(","),
        "user:1,user:2",
    );

    let run = redis_cli(port, &["--bigkeys"], "");
    for line in [
        "Sampled 8 keys in the keyspace!",
        "Biggest string found '\"other\"' has 3 bytes",
        "Biggest   list found '\"l\"' has 2 items",
        "Biggest   hash found '\"h\"' has 2 fields",
        "1 lists with 2 items (12.50% of keys, avg size 2.00)",
        "4 strings with 7 bytes (50.00% of keys, avg size 1.75)",
        "1 zsets with 2 members (12.50% of keys, avg size 2.00)",
    ] {
        checks.check(
            &format!("redis-cli --bigkeys prints {line:?}"),
            run.stdout.lines().any(|l| l == line),
            &run.describe(),
        );
    }

    let run = redis_cli(port, &["INFO", "server"], "");
    checks.check(
        "INFO server has redis_version",
        run.stdout.contains("redis_version:"),
        &run.describe(),
    );
    server.assert_running("after redis-cli's output modes");
    checks.finish("redis-cli output modes");
}

/// `redis-cli --pipe` (mass insertion): 2100 pipelined commands in RESP, one failing on
/// purpose; redis-cli's summary counts the replies and errors, and the data is there.
#[test]
fn mass_insertion() {
    let test = "redis::cli::mass_insertion";
    if !redis_cli_available(test) {
        return;
    }
    let Some(mut server) = RespServer::start(test) else {
        return;
    };
    fn command(out: &mut String, args: &[&str]) {
        out.push_str(&format!("*{}\r\n", args.len()));
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
    }
    let mut input = String::new();
    for i in 0..2000 {
        command(
            &mut input,
            &["SET", &format!("key:{i}"), &format!("value {i}")],
        );
    }
    for i in 0..100 {
        command(&mut input, &["RPUSH", "list", &format!("item {i}")]);
    }
    command(&mut input, &["INCR", "key:0"]); // not an integer: one error
    let run = redis_cli(server.port(), &["--pipe"], &input);
    let mut checks = Checks::new();
    checks.eq(
        "redis-cli --pipe summary",
        &run.stdout,
        "All data transferred. Waiting for the last reply...\nLast reply received from server.\nerrors: 1, replies: 2101\n",
    );
    checks.eq(
        "redis-cli --pipe errors",
        &run.stderr,
        "ERR value is not an integer or out of range\n",
    );
    checks.check(
        "redis-cli --pipe exit status (1: there were errors)",
        run.status.code() == Some(1),
        &run.describe(),
    );
    let run = redis_cli(
        server.port(),
        &[],
        "DBSIZE\nGET key:1999\nLLEN list\nLINDEX list -1\n",
    );
    checks.eq(
        "after --pipe",
        &run.stdout,
        "2001\nvalue 1999\n100\nitem 99\n",
    );
    server.assert_running("after redis-cli --pipe");
    checks.finish("redis-cli --pipe");
}
