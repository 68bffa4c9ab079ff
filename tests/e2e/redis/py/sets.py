# Sets.
from prelude import *


@case
def members():
    eq(r.sadd("s", "a", "b", "c", "a"), 3, "SADD counts new members once")
    eq(r.sadd("s", "c", "d"), 1)
    eq(r.smembers("s"), {"a", "b", "c", "d"})
    eq(r.scard("s"), 4)
    eq(r.sismember("s", "a"), True)
    eq(r.sismember("s", "z"), False)
    eq(r.sismember("none", "a"), False)
    eq(r.smismember("s", ["a", "z", "d"]), [True, False, True])
    eq(r.srem("s", "a", "z"), 1)
    eq(r.scard("s"), 3)
    eq(r.smembers("none"), set())
    eq(r.scard("none"), 0)
    eq(r.srem("s", "b", "c", "d"), 3)
    eq(r.exists("s"), 0, "a set without members is deleted")
    r.sadd("ints", *range(20))
    eq(r.smembers("ints"), {str(i) for i in range(20)})
    eq(r.smove("ints", "other", "5"), True)
    eq(r.smove("ints", "other", "5"), False)
    eq(r.sismember("other", "5"), True)


@case
def pop_and_random():
    r.sadd("s", "b", "c", "d")
    first = r.spop("s")
    if first not in {"b", "c", "d"}:
        raise AssertionError(f"SPOP returned {first!r}")
    eq(r.scard("s"), 2)
    rest = r.spop("s", 5)
    eq(sorted(rest + [first]), ["b", "c", "d"], "SPOP with a count takes the rest")
    eq(r.exists("s"), 0)
    eq(r.spop("s"), None)
    eq(r.spop("s", 2), [])
    r.sadd("r", *"abcde")
    if r.srandmember("r") not in set("abcde"):
        raise AssertionError("SRANDMEMBER returned a non-member")
    three = r.srandmember("r", 3)
    eq(len(three), 3)
    eq(len(set(three)), 3, "SRANDMEMBER with a positive count returns distinct members")
    eq(sorted(r.srandmember("r", 10)), list("abcde"))
    many = r.srandmember("r", -10)
    eq(len(many), 10, "SRANDMEMBER with a negative count may repeat")
    eq(set(many) <= set("abcde"), True)
    eq(r.scard("r"), 5, "SRANDMEMBER removes nothing")
    eq(r.srandmember("none"), None)
    eq(r.srandmember("none", 3), [])


@case
def algebra():
    r.sadd("a", "1", "2", "3", "4")
    r.sadd("b", "3", "4", "5")
    r.sadd("c", "4", "6")
    eq(r.sunion("a", "b", "c"), {"1", "2", "3", "4", "5", "6"})
    eq(r.sinter("a", "b", "c"), {"4"})
    eq(r.sinter("a", "none"), set())
    eq(r.sdiff("a", "b", "c"), {"1", "2"})
    eq(r.sdiff("a", "none"), {"1", "2", "3", "4"})
    eq(r.sunion("none"), set())
    eq(r.sunionstore("u", "a", "b"), 5)
    eq(r.smembers("u"), {"1", "2", "3", "4", "5"})
    eq(r.sinterstore("i", "a", "b"), 2)
    eq(r.smembers("i"), {"3", "4"})
    eq(r.sdiffstore("d", "a", "b"), 2)
    eq(r.smembers("d"), {"1", "2"})
    eq(r.sinterstore("i", "a", "none"), 0)
    eq(r.exists("i"), 0, "*STORE of an empty result deletes the destination")
    eq(r.sintercard(2, ["a", "b"]), 2)
    r.set("str", "x")
    eq(r.sdiffstore("str", "a", "b"), 2, "*STORE overwrites a key of another type")
    eq(r.type("str"), "set")
    r.set("str2", "x")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.sunion, "a", "str2")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.sinter, "a", "str2")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.sdiffstore, "x", "str2", "a")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.sadd, "str2", "m")


@case
def sscan():
    members = {f"m{i}" for i in range(200)}
    r.sadd("big", *members)
    eq(set(r.sscan_iter("big", count=20)), members)
    eq(set(r.sscan_iter("big", match="m1?")), {f"m1{i}" for i in range(10)})
    r.sadd("small", "x", "y")
    cursor, found = r.sscan("small", 0)
    eq(cursor, 0)
    eq(sorted(found), ["x", "y"])
    eq(r.sscan("none", 0), (0, []))


main()
