# Connection and server commands: PING, ECHO, AUTH, HELLO/RESP3, CLIENT, INFO, COMMAND,
# CONFIG, TIME.
from prelude import *

# The server's user: ThunderDB's superuser (the reference redis-server is started with the
# same ACL user).
USER, PASSWORD = "thunder", "thunder"


@case
def ping_echo_time():
    eq(r.ping(), True)
    c = Raw()
    eq(c("PING"), "PONG")
    eq(c("PING", "hi"), "hi")
    eq(r.echo("hello world"), "hello world")
    eq(c("ECHO", ""), "")
    secs, micros = r.time()
    between(secs + micros / 1e6, time.time() - 5, time.time() + 5, "TIME")
    between(micros, 0, 999_999, "TIME microseconds")
    error("ERR wrong number of arguments for 'echo' command", c, "ECHO")
    error("ERR wrong number of arguments for 'ping' command", c, "PING", "a", "b")


@case
def auth():
    c = Raw()
    eq(c("AUTH", USER, PASSWORD), "OK")
    error("WRONGPASS invalid username-password pair or user is disabled.", c, "AUTH", USER, "wrong")
    error("WRONGPASS invalid username-password pair or user is disabled.", c, "AUTH", "nobody", "x")
    eq(c("PING"), "PONG", "a failed AUTH keeps the connection")
    error("ERR syntax error", c, "AUTH", "a", "b", "c")
    eq(connect(username=USER, password=PASSWORD).ping(), True)
    try:
        connect(username=USER, password="wrong").ping()
    except redis.exceptions.AuthenticationError as e:
        eq(str(e), "invalid username-password pair or user is disabled.")
    else:
        raise AssertionError("a client with a wrong password was let in")
    eq(connect(username=USER, password=PASSWORD, protocol=3).ping(), True, "HELLO 3 AUTH")
    try:
        connect(username=USER, password="wrong", protocol=3).ping()
    except redis.exceptions.AuthenticationError:
        pass
    else:
        raise AssertionError("HELLO 3 AUTH with a wrong password was accepted")
    if not REFERENCE:
        # `AUTH password` checks the default user, ThunderDB's superuser.
        eq(c("AUTH", PASSWORD), "OK")
        error("WRONGPASS invalid username-password pair or user is disabled.", c, "AUTH", "wrong")
        eq(connect(password=PASSWORD).ping(), True)


@case
def resp3_through_redis_py():
    r3 = connect(protocol=3)
    r3.hset("h", mapping={"a": "1", "b": "2"})
    r3.zadd("z", {"m": 1.5, "n": 2})
    eq(r3.hgetall("h"), {"a": "1", "b": "2"})
    eq(r3.zscore("z", "m"), 1.5)
    eq(type(r3.zscore("z", "m")), float)
    eq(r3.get("missing"), None)
    eq(r3.sismember("s", "x"), False)


@case
def resp3_wire_types():
    c = Raw(protocol=3)
    meta = c.conn.handshake_metadata
    eq(meta.get("proto"), 3, "HELLO 3 reply")
    eq(meta.get("server"), "redis")
    eq(str(meta.get("version", "")).split(".")[0], "7", "the version HELLO reports")
    c("HSET", "h", "a", "1", "b", "2")
    c("ZADD", "z", "1.5", "m", "2", "n")
    eq(c("HGETALL", "h"), {"a": "1", "b": "2"}, "HGETALL is a RESP3 map")
    eq(c("HGETALL", "none"), {}, "HGETALL of a missing key is an empty map")
    score = c("ZSCORE", "z", "m")
    eq((type(score), score), (float, 1.5), "ZSCORE is a RESP3 double")
    eq(c("ZINCRBY", "z", "1", "n"), 3.0, "ZINCRBY is a RESP3 double")
    eq(c("HGET", "h", "nope"), None)
    eq(c("CONFIG", "GET", "maxmemory"), {"maxmemory": "0"}, "CONFIG GET is a RESP3 map")
    eq(c("HELLO", "2")[:6], ["server", "redis", "version", meta.get("version"), "proto", 2], "HELLO 2 goes back to RESP2")
    eq(c("HGETALL", "h"), ["a", "1", "b", "2"], "HGETALL is a flat array again in RESP2")
    error("NOPROTO unsupported protocol version", Raw(), "HELLO", "4")


@case
def resp3_scored_pairs():
    # Redis 7 answers WITHSCORES (and ZPOPMIN with a count) with [member, score] pairs in RESP3;
    # redis-py 5+ relies on that shape. All mismatches are reported together.
    c = Raw(protocol=3)
    c("ZADD", "z", "1.5", "m", "2", "n")
    c("HSET", "h", "f", "v")
    wrong = []
    for args, expected in [
        (("ZRANGE", "z", "0", "-1", "WITHSCORES"), [["m", 1.5], ["n", 2.0]]),
        (("ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"), [["m", 1.5], ["n", 2.0]]),
        (("ZREVRANGE", "z", "0", "0", "WITHSCORES"), [["n", 2.0]]),
        (("ZRANDMEMBER", "z", "-1", "WITHSCORES"), "[[member, score]]"),
        (("HRANDFIELD", "h", "-1", "WITHVALUES"), [["f", "v"]]),
        (("ZUNION", "1", "z", "WITHSCORES"), [["m", 1.5], ["n", 2.0]]),
        (("ZPOPMIN", "z", "1"), [["m", 1.5]]),
    ]:
        actual = c(*args)
        if isinstance(expected, str):  # a random member: the shape only
            ok = len(actual) == 1 and isinstance(actual[0], list) and len(actual[0]) == 2
        else:
            ok = actual == expected
        if not ok:
            wrong.append(f"{' '.join(args)}: expected {expected!r}, got {actual!r}")
    try:
        pairs = connect(protocol=3).zrange("z", 0, -1, withscores=True)
        eq([tuple(p) for p in pairs], [("n", 2.0)])
    except Exception as e:
        wrong.append(f"redis-py (protocol=3) zrange(withscores=True): {type(e).__name__}: {e}")
    if wrong:
        raise AssertionError("RESP3 scored pairs:\n  " + "\n  ".join(wrong))


@case
def client_commands():
    c = Raw()
    eq(c("CLIENT", "GETNAME"), None)
    eq(c("CLIENT", "SETNAME", "tester"), "OK")
    eq(c("CLIENT", "GETNAME"), "tester")
    my_id = c("CLIENT", "ID")
    eq(type(my_id), int)
    other_id = Raw()("CLIENT", "ID")
    if other_id == my_id or my_id <= 0:
        raise AssertionError(f"CLIENT ID: {my_id} and {other_id}")
    error("ERR Client names cannot contain spaces, newlines or special characters.", c, "CLIENT", "SETNAME", "a b")
    eq(c("CLIENT", "GETNAME"), "tester")
    info = c("CLIENT", "INFO")
    for part in [f"id={my_id} ", " name=tester ", " db=0 "]:
        if part not in info:
            raise AssertionError(f"CLIENT INFO lacks {part!r}: {info!r}")
    eq(connect(client_name="named").client_getname(), "named")
    eq(c("CLIENT", "SETNAME", ""), "OK")
    eq(c("CLIENT", "GETNAME"), None, "an empty name clears it")


@case
def client_list_shows_every_connection():
    a = Raw()
    a("CLIENT", "SETNAME", "first")
    b = Raw()
    b("CLIENT", "SETNAME", "second")
    names = {entry.get("name") for entry in r.client_list()}
    if not {"first", "second"} <= names:
        raise AssertionError(f"CLIENT LIST names: {sorted(n for n in names if n is not None)}")


@case
def server_introspection():
    info = r.info()
    if "redis_version" not in info:
        raise AssertionError(f"INFO has no redis_version: {sorted(info)[:20]}")
    text = Raw()("INFO")
    if "redis_version:" not in text or "\r\n" not in text:
        raise AssertionError(f"INFO text: {text[:200]!r}")
    if "redis_version" not in r.info("server"):
        raise AssertionError("INFO server has no redis_version")
    r.set("a", "1")
    r.set("b", "1", ex=100)
    ks = r.info("keyspace")
    eq((ks["db0"]["keys"], ks["db0"]["expires"]), (2, 1), "INFO keyspace")
    count = r.command_count()
    if count <= 100:
        raise AssertionError(f"COMMAND COUNT is {count}")
    get = Raw()("COMMAND", "INFO", "get")
    eq((get[0][0], get[0][1]), ("get", 2), "COMMAND INFO get: name and arity")
    eq(r.config_get("maxmemory"), {"maxmemory": "0"})
    if "maxmemory-policy" not in r.config_get("maxmemory*"):
        raise AssertionError("CONFIG GET maxmemory* lacks maxmemory-policy")
    eq(r.dbsize(), 2)


@case
def quit_and_reset():
    c = Raw()
    c("SELECT", "3")
    c("CLIENT", "SETNAME", "x")
    eq(c("RESET"), "RESET")
    eq(c("CLIENT", "GETNAME"), None, "RESET clears the name")
    c("SET", "k", "db0")
    eq(r.get("k"), "db0", "RESET selects database 0")
    eq(c("QUIT"), "OK")


main()
