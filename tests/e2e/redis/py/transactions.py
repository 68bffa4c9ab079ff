# MULTI/EXEC, WATCH, and WRONGTYPE across the data types.
from prelude import *

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@case
def wrongtype_everywhere():
    r.set("s", "v")
    r.rpush("l", "a")
    r.hset("h", "f", "v")
    r.sadd("st", "m")
    r.zadd("z", {"m": 1})
    for fn, args in [
        (r.lpush, ("s", "x")),
        (r.hget, ("s", "f")),
        (r.sadd, ("l", "x")),
        (r.zadd, ("h", {"m": 1})),
        (r.get, ("l",)),
        (r.incr, ("h",)),
        (r.append, ("z", "x")),
        (r.llen, ("st",)),
        (r.smembers, ("z",)),
        (r.zscore, ("st", "m")),
        (r.hgetall, ("l",)),
        (r.strlen, ("h",)),
        (r.zrange, ("l", 0, -1)),
    ]:
        try:
            fn(*args)
        except redis.exceptions.ResponseError as e:
            eq(type(e), redis.exceptions.ResponseError, f"{fn.__name__}{args}")
            eq(str(e), WRONGTYPE, f"{fn.__name__}{args}")
        else:
            raise AssertionError(f"{fn.__name__}{args} did not fail with WRONGTYPE")
    eq(r.get("s"), "v")
    eq(r.lrange("l", 0, -1), ["a"])
    eq(r.hgetall("h"), {"f": "v"})
    eq(r.smembers("st"), {"m"})
    eq(r.zrange("z", 0, -1, withscores=True), [("m", 1.0)])


@case
def multi_exec():
    p = r.pipeline(transaction=True)
    p.set("a", "1").incr("a").rpush("l", "x", "y").lrange("l", 0, -1).get("a")
    eq(p.execute(), [True, 2, 2, ["x", "y"], "2"])
    # A command that fails while running does not stop the others (Redis has no rollback).
    r.set("s", "text")
    p = r.pipeline(transaction=True)
    p.incr("s").set("b", "2").lpush("s", "x").incr("b")
    res = p.execute(raise_on_error=False)
    eq(len(res), 4)
    if not (isinstance(res[0], redis.ResponseError) and "value is not an integer" in str(res[0])):
        raise AssertionError(f"INCR of text inside EXEC: {res[0]!r}")
    eq(res[1], True)
    if not (isinstance(res[2], redis.ResponseError) and str(res[2]) == WRONGTYPE):
        raise AssertionError(f"LPUSH on a string inside EXEC: {res[2]!r}")
    eq(res[3], 3)
    eq(r.get("b"), "3")
    eq(r.get("s"), "text")


@case
def multi_exec_raw():
    c = Raw()
    eq(c("MULTI"), "OK")
    eq(c("SET", "q", "1"), "QUEUED")
    eq(c("INCR", "q"), "QUEUED")
    eq(c("PING"), "QUEUED")
    eq(r.exists("q"), 0, "queued commands have not run")
    eq(c("EXEC"), ["OK", 2, "PONG"])
    eq(r.get("q"), "2")
    error("ERR EXEC without MULTI", c, "EXEC")
    error("ERR DISCARD without MULTI", c, "DISCARD")
    eq(c("MULTI"), "OK")
    error("ERR MULTI calls can not be nested", c, "MULTI")
    eq(c("SET", "q", "discarded"), "QUEUED")
    eq(c("DISCARD"), "OK")
    eq(r.get("q"), "2")
    # A command refused while queueing dooms the whole transaction.
    eq(c("MULTI"), "OK")
    eq(c("SET", "q", "3"), "QUEUED")
    error("ERR unknown command 'NOSUCHCMD'*", c, "NOSUCHCMD", "x")
    error("ERR wrong number of arguments for 'get' command", c, "GET")
    error("EXECABORT Transaction discarded because of previous errors.", c, "EXEC")
    eq(r.get("q"), "2", "nothing of an aborted transaction ran")
    eq(c("PING"), "PONG", "the connection left MULTI")
    eq(c("MULTI"), "OK")
    eq(c("EXEC"), [], "an empty transaction")


@case
def select_inside_multi():
    c = Raw()
    eq(c("MULTI"), "OK")
    eq(c("SELECT", "1"), "QUEUED")
    eq(c("SET", "k", "in db 1"), "QUEUED")
    eq(c("EXEC"), ["OK", "OK"])
    eq(connect(db=1).get("k"), "in db 1", "SET after a queued SELECT 1 writes database 1")
    eq(r.get("k"), None, "SET after a queued SELECT 1 leaves database 0 alone")
    eq(c("GET", "k"), "in db 1", "the connection is in database 1 after EXEC")


@case
def watch():
    r.set("w", "1")
    with r.pipeline() as p:
        p.watch("w")
        value = int(p.get("w"))
        connect().set("w", "changed")
        p.multi()
        p.set("w", value + 1)
        try:
            p.execute()
        except redis.WatchError:
            pass
        else:
            raise AssertionError("EXEC ran although a watched key was changed by another client")
    eq(r.get("w"), "changed")
    with r.pipeline() as p:
        p.watch("w")
        p.multi()
        p.set("w", "mine")
        eq(p.execute(), [True], "EXEC with an unchanged watched key")
    eq(r.get("w"), "mine")
    with r.pipeline() as p:
        p.watch("new")
        connect().set("new", "theirs")
        p.multi()
        p.set("new", "mine")
        try:
            p.execute()
        except redis.WatchError:
            pass
        else:
            raise AssertionError("EXEC ran although a watched missing key was created")
    eq(r.get("new"), "theirs")
    with r.pipeline() as p:
        p.watch("w")
        connect().delete("w")
        p.multi()
        p.set("other", "x")
        try:
            p.execute()
        except redis.WatchError:
            pass
        else:
            raise AssertionError("EXEC ran although a watched key was deleted")
    eq(r.exists("other"), 0)
    r.set("w", "1")
    with r.pipeline() as p:
        p.watch("w")
        connect().set("w", "1")
        p.multi()
        p.set("x", "y")
        try:
            p.execute()
        except redis.WatchError:
            pass
        else:
            raise AssertionError("EXEC ran although a watched key was rewritten (same value)")
    c = Raw()
    eq(c("WATCH", "w"), "OK")
    eq(c("UNWATCH"), "OK")
    connect().set("w", "2")
    eq(c("MULTI"), "OK")
    eq(c("SET", "x", "after unwatch"), "QUEUED")
    eq(c("EXEC"), ["OK"], "UNWATCH forgets the watched keys")
    eq(c("MULTI"), "OK")
    error("ERR WATCH inside MULTI is not allowed", c, "WATCH", "w")
    eq(c("DISCARD"), "OK")


@case
def watch_what_counts_as_a_change():
    cases = [
        ("the key expires", lambda: r.set("k", "v", px=1500), lambda: wait_until(lambda: r.exists("k") == 0, "k to expire"), None),
        ("EXPIRE by another client", lambda: r.set("k", "v"), lambda: r.expire("k", 100), None),
        ("HSET of another field", lambda: r.hset("k", "f", "1"), lambda: r.hset("k", "g", "2"), None),
        ("RENAME onto the key", lambda: r.set("k", "1"), lambda: (r.set("q", "2"), r.rename("q", "k")), None),
        ("FLUSHALL", lambda: r.set("k", "v"), lambda: r.flushall(), None),
        ("a read by another client", lambda: r.set("k", "v"), lambda: r.get("k"), ["OK"]),
        ("the same name in database 1", lambda: r.set("k", "v"), lambda: connect(db=1).set("k", "z"), ["OK"]),
        ("a write that fails", lambda: r.set("k", "v"), lambda: error("WRONGTYPE*", connect().lpush, "k", "x"), ["OK"]),
    ]
    c = Raw()
    wrong = []
    for what, setup, change, expected in cases:
        r.flushall()
        setup()
        c("WATCH", "k")
        change()
        c("MULTI")
        c("SET", "x", "1")
        got = c("EXEC")
        if got != expected:
            wrong.append(f"{what}: EXEC gave {got!r}, expected {expected!r}")
    if wrong:
        raise AssertionError("WATCH:\n  " + "\n  ".join(wrong))


@case
def optimistic_counter():
    """The classic WATCH retry loop from several threads: no increment is lost."""
    r.set("counter", "0")
    per_thread, threads = 20, 4

    def work():
        client = connect()
        for _ in range(per_thread):
            def incr(pipe):
                value = int(pipe.get("counter"))
                pipe.multi()
                pipe.set("counter", value + 1)
            client.transaction(incr, "counter")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    eq(r.get("counter"), str(per_thread * threads))


main()
