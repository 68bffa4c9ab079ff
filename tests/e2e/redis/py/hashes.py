# Hashes.
from prelude import *


@case
def fields():
    eq(r.hset("h", "f1", "v1"), 1)
    eq(r.hset("h", mapping={"f1": "x", "f2": "v2", "f3": "v3"}), 2, "HSET counts new fields only")
    eq(r.hget("h", "f1"), "x")
    eq(r.hget("h", "nope"), None)
    eq(r.hget("none", "f"), None)
    eq(r.hmget("h", ["f1", "nope", "f2"]), ["x", None, "v2"])
    eq(r.hmget("none", ["a", "b"]), [None, None])
    eq(r.hgetall("h"), {"f1": "x", "f2": "v2", "f3": "v3"})
    eq(r.hgetall("none"), {})
    eq(sorted(r.hkeys("h")), ["f1", "f2", "f3"])
    eq(sorted(r.hvals("h")), ["v2", "v3", "x"])
    eq(r.hkeys("none"), [])
    eq(r.hlen("h"), 3)
    eq(r.hlen("none"), 0)
    eq(r.hstrlen("h", "f2"), 2)
    eq(r.hexists("h", "f1"), True)
    eq(r.hexists("h", "zz"), False)
    eq(r.hexists("none", "f"), False)
    eq(r.hdel("h", "f1", "nope"), 1)
    eq(r.hlen("h"), 2)
    eq(r.hdel("h", "f2", "f3"), 2)
    eq(r.exists("h"), 0, "a hash without fields is deleted")
    eq(r.hdel("h", "f"), 0)
    eq(r.hmset("m", {"a": "1", "b": "2"}), True)
    eq(r.hgetall("m"), {"a": "1", "b": "2"})
    error("ERR wrong number of arguments for 'hset' command", r.execute_command, "HSET", "h", "f")
    error("ERR wrong number of arguments for 'hset' command", r.execute_command, "HSET", "h", "f", "v", "g")


@case
def numbers():
    eq(r.hincrby("h", "n", 5), 5)
    eq(r.hincrby("h", "n", -7), -2)
    eq(r.hget("h", "n"), "-2")
    eq(r.hincrbyfloat("h", "fl", 10.5), 10.5)
    eq(r.hincrbyfloat("h", "fl", 0.1), 10.6)
    eq(r.hget("h", "fl"), "10.6")
    r.hset("h", "s", "abc")
    error("ERR hash value is not an integer", r.hincrby, "h", "s", 1)
    error("ERR hash value is not a float", r.hincrbyfloat, "h", "s", 1.0)
    error("ERR value is not an integer or out of range", r.execute_command, "HINCRBY", "h", "n", "x")
    r.hset("h", "max", "9223372036854775807")
    error("ERR increment or decrement would overflow", r.hincrby, "h", "max", 1)
    eq(r.hsetnx("h", "n", "9"), False)
    eq(r.hget("h", "n"), "-2")
    eq(r.hsetnx("h", "new", "9"), True)
    eq(r.hget("h", "new"), "9")
    eq(r.hsetnx("fresh", "f", "1"), True)


@case
def float_increments_print_like_redis():
    # As INCRBYFLOAT: long double sums, fixed notation, at most 17 significant digits.
    c = Raw()
    wrong = []
    for field, steps, expected in [
        ("dec", ["0.1", "0.2"], "0.3"),
        ("big", ["1e25"], "10000000000000000000000000"),
    ]:
        replies = [c("HINCRBYFLOAT", "h", field, step) for step in steps]
        stored = r.hget("h", field)
        if (replies[-1], stored) != (expected, expected):
            wrong.append(
                f"HINCRBYFLOAT h {field} {' then '.join(steps)}: expected {expected!r}, "
                f"got the reply {replies[-1]!r} and the value {stored!r}"
            )
    if wrong:
        raise AssertionError("\n  ".join(wrong))


@case
def hscan():
    fields = {f"f{i}": str(i) for i in range(100)}
    r.hset("big", mapping=fields)
    eq(dict(r.hscan_iter("big", count=10)), fields)
    eq(dict(r.hscan_iter("big")), fields)
    eq(
        sorted(k for k, _ in r.hscan_iter("big", match="f1*")),
        sorted(["f1"] + [f"f1{i}" for i in range(10)]),
    )
    r.hset("small", mapping={"a": "1", "b": "2"})
    cursor, found = r.hscan("small", 0)
    eq(cursor, 0)
    eq(found, {"a": "1", "b": "2"})
    eq(r.hscan("none", 0), (0, {}))


@case
def wrong_types():
    r.set("s", "v")
    for fn, args in [
        (r.hget, ("s", "f")),
        (r.hset, ("s", "f", "v")),
        (r.hgetall, ("s",)),
        (r.hlen, ("s",)),
        (r.hincrby, ("s", "f", 1)),
        (r.hdel, ("s", "f")),
    ]:
        error("WRONGTYPE Operation against a key holding the wrong kind of value", fn, *args)
    eq(r.get("s"), "v")


main()
