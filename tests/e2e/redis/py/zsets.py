# Sorted sets.
from prelude import *


@case
def zadd_flags():
    eq(r.zadd("z", {"a": 1, "b": 2, "c": 3}), 3)
    eq(r.zadd("z", {"a": 10}, nx=True), 0)
    eq(r.zscore("z", "a"), 1.0, "ZADD NX leaves an existing member")
    eq(r.zadd("z", {"a": 10, "d": 4}, xx=True), 0)
    eq(r.zscore("z", "a"), 10.0, "ZADD XX updates")
    eq(r.zscore("z", "d"), None, "ZADD XX adds nothing")
    eq(r.zadd("z", {"a": 5, "b": 5}, gt=True, ch=True), 1, "ZADD GT CH")
    eq(r.zscore("z", "a"), 10.0, "ZADD GT does not lower a score")
    eq(r.zscore("z", "b"), 5.0)
    eq(r.zadd("z", {"a": 1, "c": 9}, lt=True, ch=True), 1, "ZADD LT CH")
    eq(r.zscore("z", "a"), 1.0)
    eq(r.zscore("z", "c"), 3.0, "ZADD LT does not raise a score")
    eq(r.zadd("z", {"e": 7}, gt=True), 1, "ZADD GT still adds new members")
    eq(r.zadd("z", {"a": 2}, incr=True), 3.0, "ZADD INCR returns the new score")
    eq(r.zadd("z", {"a": 5}, incr=True, nx=True), None, "ZADD NX INCR on an existing member")
    eq(r.zadd("z", {"a": -1}, incr=True, gt=True), None, "ZADD GT INCR with a negative increment")
    eq(r.zscore("z", "a"), 3.0)
    eq(r.zadd("z", {"x": 1, "a": 3}, ch=True), 1, "ZADD CH counts added and changed")
    eq(r.zadd("z", {"x": 2, "y": 1}), 1, "ZADD without CH counts added only")
    r.zadd("z", {"inf": "+inf", "ninf": "-inf"})
    eq(r.zscore("z", "inf"), float("inf"))
    eq(r.zscore("z", "ninf"), float("-inf"))
    error("ERR XX and NX options at the same time are not compatible", r.execute_command, "ZADD", "z", "XX", "NX", "1", "a")
    error("ERR GT, LT, and/or NX options at the same time are not compatible", r.execute_command, "ZADD", "z", "GT", "LT", "1", "a")
    error("ERR INCR option supports a single increment-element pair", r.execute_command, "ZADD", "z", "INCR", "1", "a", "2", "b")
    error("ERR value is not a valid float", r.execute_command, "ZADD", "z", "abc", "a")
    error("ERR value is not a valid float", r.execute_command, "ZADD", "z", "nan", "a")
    error("ERR syntax error", r.execute_command, "ZADD", "z", "1", "a", "2")
    error("ERR wrong number of arguments for 'zadd' command", r.execute_command, "ZADD", "z", "1")
    error("ERR value is not a valid float", r.execute_command, "ZADD", "z", "1e500", "a")


@case
def scores_and_ranks():
    r.zadd("z", {"one": 1, "two": 2, "three": 3})
    eq(r.zincrby("z", 2.5, "one"), 3.5)
    eq(r.zscore("z", "one"), 3.5)
    eq(r.zincrby("z", 1, "new"), 1.0, "ZINCRBY adds a missing member")
    eq(r.zrem("z", "new"), 1)
    eq(r.zcard("z"), 3)
    eq(r.zcard("none"), 0)
    eq(r.zcount("z", 2, 3), 2)
    eq(r.zcount("z", "(2", "+inf"), 2)
    eq(r.zcount("z", "-inf", "+inf"), 3)
    eq(r.zcount("z", "(3", "(3.5"), 0)
    eq(r.zrank("z", "two"), 0)
    eq(r.zrank("z", "one"), 2)
    eq(r.zrevrank("z", "one"), 0)
    eq(r.zrevrank("z", "two"), 2)
    eq(r.zrank("z", "nope"), None)
    eq(r.zrank("none", "a"), None)
    eq(r.zmscore("z", ["one", "nope"]), [3.5, None])
    eq(r.zrem("z", "two", "nope"), 1)
    eq(r.zrange("z", 0, -1), ["three", "one"])
    eq(r.zscore("none", "a"), None)
    error("ERR min or max is not a float", r.zcount, "z", "low", 3)
    error("ERR value is not a valid float", r.execute_command, "ZINCRBY", "z", "x", "one")


@case
def ranges():
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    eq(r.zrange("z", 0, -1), list("abcde"))
    eq(r.zrange("z", 1, 2, withscores=True), [("b", 2.0), ("c", 3.0)])
    eq(r.zrange("z", 0, 1, desc=True), ["e", "d"])
    eq(r.zrange("z", -2, -1), ["d", "e"])
    eq(r.zrange("z", 10, 20), [])
    eq(r.zrange("z", 2, 4, byscore=True), ["b", "c", "d"])
    eq(r.zrange("z", "(2", "+inf", byscore=True, offset=1, num=2), ["d", "e"])
    eq(r.zrange("z", 4, 2, byscore=True, desc=True), ["d", "c", "b"])
    eq(
        r.zrange("z", "+inf", "-inf", byscore=True, desc=True, offset=0, num=2, withscores=True),
        [("e", 5.0), ("d", 4.0)],
    )
    eq(r.zrange("z", "-inf", "+inf", byscore=True, offset=4, num=-1), ["e"])
    eq(r.zrangebyscore("z", 2, 4), ["b", "c", "d"])
    eq(r.zrangebyscore("z", "(1", "(4"), ["b", "c"])
    eq(r.zrangebyscore("z", "-inf", "+inf", start=1, num=2, withscores=True), [("b", 2.0), ("c", 3.0)])
    eq(r.zrevrange("z", 0, 1), ["e", "d"])
    eq(r.zrevrange("z", 0, 0, withscores=True), [("e", 5.0)])
    eq(r.zrevrangebyscore("z", 4, 2), ["d", "c", "b"])
    eq(r.zrevrangebyscore("z", "+inf", "-inf", start=0, num=1), ["e"])
    r.zadd("lex", {m: 0 for m in "abcdefg"})
    eq(r.zrange("lex", "[b", "(e", bylex=True), ["b", "c", "d"])
    eq(r.zrange("lex", "-", "+", bylex=True, offset=2, num=2), ["c", "d"])
    eq(r.zrange("lex", "(e", "-", bylex=True, desc=True), ["d", "c", "b", "a"])
    eq(r.zrangebylex("lex", "[a", "[c"), ["a", "b", "c"])
    eq(r.zrevrangebylex("lex", "+", "(e"), ["g", "f"])
    eq(r.zlexcount("lex", "[b", "[d"), 3)
    r.zadd("ties", {"b": 1, "a": 1, "c": 0})
    eq(r.zrange("ties", 0, -1), ["c", "a", "b"], "equal scores order by member")
    error(
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        r.execute_command, "ZRANGE", "z", "0", "-1", "LIMIT", "0", "1",
    )
    error(
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        r.execute_command, "ZRANGE", "lex", "-", "+", "BYLEX", "WITHSCORES",
    )
    error("ERR min or max is not a float", r.zrangebyscore, "z", "abc", 3)
    error("ERR min or max not valid string range item", r.zrangebylex, "lex", "b", "[c")


@case
def pops_and_removes():
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    eq(r.zpopmin("z"), [("a", 1.0)])
    eq(r.zpopmax("z", 2), [("e", 5.0), ("d", 4.0)])
    eq(r.zcard("z"), 2)
    eq(r.zpopmin("none"), [])
    eq(r.zpopmin("z", 10), [("b", 2.0), ("c", 3.0)])
    eq(r.exists("z"), 0, "a sorted set without members is deleted")
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6})
    eq(r.zremrangebyscore("z", 2, 3), 2)
    eq(r.zrange("z", 0, -1), ["a", "d", "e", "f"])
    eq(r.zremrangebyrank("z", 0, 1), 2)
    eq(r.zrange("z", 0, -1), ["e", "f"])
    eq(r.zremrangebyrank("z", -1, -1), 1)
    eq(r.zrange("z", 0, -1), ["e"])
    eq(r.zremrangebyscore("z", "-inf", "+inf"), 1)
    eq(r.exists("z"), 0)
    eq(r.zremrangebyscore("none", 0, 1), 0)
    r.zadd("l", {m: 0 for m in "abcd"})
    eq(r.zremrangebylex("l", "[b", "[c"), 2)
    eq(r.zrange("l", 0, -1), ["a", "d"])


@case
def extreme_scores_print_in_exponent_notation():
    # Redis prints scores with %.17g (7.0) or the shortest round trip (7.2): either way very
    # large and very small scores come in exponent notation, not as hundreds of digits.
    c = Raw()
    c("ZADD", "z", "1e25", "big", "1e-7", "tiny", "1.23e302", "huge", "2.5", "plain")
    wrong = []
    for member, value in [("big", 1e25), ("tiny", 1e-7), ("huge", 1.23e302)]:
        text = c("ZSCORE", "z", member)
        if float(text) != value or "e" not in text or len(text) > 24:
            wrong.append(f"ZSCORE z {member} ({value!r}): {text!r}")
    eq(c("ZSCORE", "z", "plain"), "2.5")
    if wrong:
        raise AssertionError("scores not in exponent notation:\n  " + "\n  ".join(wrong))


@case
def zscan():
    members = {f"m{i}": float(i) for i in range(200)}
    r.zadd("big", members)
    eq(dict(r.zscan_iter("big", count=20)), members)
    eq(dict(r.zscan_iter("big", match="m1?")), {f"m1{i}": float(10 + i) for i in range(10)})
    r.zadd("small", {"x": 1.5})
    eq(r.zscan("small", 0), (0, [("x", 1.5)]))


@case
def store_commands():
    r.zadd("a", {"x": 1, "y": 2})
    r.zadd("b", {"y": 10, "z": 20})
    eq(r.zunionstore("u", ["a", "b"]), 3)
    eq(r.zrange("u", 0, -1, withscores=True), [("x", 1.0), ("y", 12.0), ("z", 20.0)])
    eq(r.zinterstore("i", {"a": 2, "b": 1}), 1)
    eq(r.zrange("i", 0, -1, withscores=True), [("y", 14.0)])
    eq(r.zinterstore("i", ["a", "b"], aggregate="MAX"), 1)
    eq(r.zscore("i", "y"), 10.0)
    eq(r.zrangestore("rs", "a", 0, 0), 1)
    eq(r.zrange("rs", 0, -1), ["x"])


@case
def wrong_types():
    r.set("s", "v")
    r.sadd("set", "m")
    for fn, args in [
        (r.zadd, ("s", {"m": 1})),
        (r.zscore, ("s", "m")),
        (r.zrange, ("set", 0, -1)),
        (r.zcard, ("set",)),
        (r.zincrby, ("s", 1, "m")),
        (r.zpopmin, ("s",)),
    ]:
        error("WRONGTYPE Operation against a key holding the wrong kind of value", fn, *args)


main()
