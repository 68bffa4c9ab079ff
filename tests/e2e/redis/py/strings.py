# Strings: SET and its options, multi-key commands, counters, and byte-range commands.
from prelude import *


@case
def set_options():
    eq(r.set("s", "v"), True)
    eq(r.get("s"), "v")
    eq(r.get("missing"), None)
    eq(r.set("s", "w", nx=True), None, "SET NX on an existing key")
    eq(r.get("s"), "v")
    eq(r.set("s", "w", xx=True), True, "SET XX on an existing key")
    eq(r.get("s"), "w")
    eq(r.set("absent", "x", xx=True), None, "SET XX on a missing key")
    eq(r.exists("absent"), 0)
    eq(r.set("n", "1", nx=True), True, "SET NX on a missing key")
    eq(r.set("s", "new", get=True), "w", "SET GET returns the old value")
    eq(r.get("s"), "new")
    eq(r.set("fresh", "a", get=True), None, "SET GET on a missing key")
    eq(r.get("fresh"), "a")
    eq(r.set("s", "other", nx=True, get=True), "new", "SET NX GET on an existing key")
    eq(r.get("s"), "new")
    # Binary-safe values.
    raw = connect(decode_responses=False)
    blob = bytes(range(256)) + b"\r\n\x00end"
    eq(raw.set(b"bin\x00key", blob), True)
    eq(raw.get(b"bin\x00key"), blob)
    eq(r.set("empty", ""), True)
    eq(r.get("empty"), "")
    eq(r.strlen("empty"), 0)


@case
def set_expiry_options():
    eq(r.set("t", "1", ex=100), True)
    between(r.ttl("t"), 98, 100, "TTL after SET EX 100")
    eq(r.set("t", "2", keepttl=True), True)
    between(r.ttl("t"), 98, 100, "TTL after SET KEEPTTL")
    eq(r.get("t"), "2")
    eq(r.set("t", "3"), True)
    eq(r.ttl("t"), -1, "a plain SET drops the TTL")
    eq(r.set("p", "1", px=50000), True)
    between(r.pttl("p"), 48000, 50000, "PTTL after SET PX 50000")
    eq(r.set("x", "1", exat=int(time.time()) + 300), True)
    between(r.ttl("x"), 298, 300, "TTL after SET EXAT now+300")
    eq(r.set("x", "1", pxat=int(time.time() * 1000) + 300_000), True)
    between(r.ttl("x"), 298, 300, "TTL after SET PXAT now+300s")
    error("ERR invalid expire time in 'set' command", r.execute_command, "SET", "k", "v", "EX", "0")
    error("ERR invalid expire time in 'set' command", r.execute_command, "SET", "k", "v", "PX", "-5")
    error("ERR value is not an integer or out of range", r.execute_command, "SET", "k", "v", "EX", "soon")
    error("ERR syntax error", r.execute_command, "SET", "k", "v", "NX", "XX")
    error("ERR syntax error", r.execute_command, "SET", "k", "v", "EX", "10", "PX", "100")
    error("ERR syntax error", r.execute_command, "SET", "k", "v", "EX", "10", "KEEPTTL")
    error("ERR syntax error", r.execute_command, "SET", "k", "v", "BOGUS")
    eq(r.exists("k"), 0, "a refused SET writes nothing")


@case
def multi_key():
    eq(r.mset({"a": "1", "b": "2"}), True)
    eq(r.mget("a", "b", "nope"), ["1", "2", None])
    eq(r.mget(["a"]), ["1"])
    r.hset("h", "f", "v")
    eq(r.mget("a", "h"), ["1", None], "MGET shows a non-string key as nil")
    eq(r.msetnx({"b": "x", "c": "3"}), False, "MSETNX with one existing key")
    eq(r.exists("c"), 0, "MSETNX sets nothing when one key exists")
    eq(r.get("b"), "2")
    eq(r.msetnx({"c": "3", "d": "4"}), True)
    eq(r.mget("c", "d"), ["3", "4"])
    eq(r.mset({"a": "10", "e": "5"}), True, "MSET overwrites")
    eq(r.mget("a", "e"), ["10", "5"])
    error("ERR wrong number of arguments for 'mset' command", r.execute_command, "MSET", "a", "1", "b")
    error("ERR wrong number of arguments for 'msetnx' command", r.execute_command, "MSETNX", "a")


@case
def counters():
    eq(r.incr("cnt"), 1)
    eq(r.incr("cnt"), 2)
    eq(r.decr("cnt"), 1)
    eq(r.incrby("cnt", 10), 11)
    eq(r.decrby("cnt", 5), 6)
    eq(r.incrby("cnt", -10), -4)
    eq(r.get("cnt"), "-4")
    eq(r.decr("newdown"), -1)
    r.set("cnt", "41", ex=100)
    eq(r.incr("cnt"), 42)
    between(r.ttl("cnt"), 98, 100, "INCR keeps the TTL")
    r.set("f", "10.50")
    eq(r.incrbyfloat("f", 0.1), 10.6)
    eq(r.get("f"), "10.6")
    eq(r.incrbyfloat("f", -5), 5.6)
    eq(r.get("f"), "5.6")
    r.set("f", "5.0e3")
    eq(r.incrbyfloat("f", 2.0e2), 5200.0)
    eq(r.get("f"), "5200")
    eq(r.incrbyfloat("newf", 3), 3.0)
    eq(r.get("newf"), "3")
    r.set("s", "abc")
    error("ERR value is not an integer or out of range", r.incr, "s")
    error("ERR value is not an integer or out of range", r.incrby, "s", 2)
    error("ERR value is not an integer or out of range", r.execute_command, "INCRBY", "cnt", "1.5")
    error("ERR value is not a valid float", r.incrbyfloat, "s", 1.0)
    r.set("sp", " 1")
    error("ERR value is not an integer or out of range", r.incr, "sp")
    r.set("big", "9223372036854775807")
    error("ERR increment or decrement would overflow", r.incr, "big")
    eq(r.get("big"), "9223372036854775807")
    r.set("small", "-9223372036854775808")
    error("ERR increment or decrement would overflow", r.decr, "small")
    error("ERR increment would produce NaN or Infinity", r.execute_command, "INCRBYFLOAT", "f", "inf")


@case
def float_increments_print_like_redis():
    # Redis adds in long double precision and prints the sum in fixed notation with at most 17
    # significant digits: decimal sums come out as typed (not 0.30000000000000004), big
    # values in full. All mismatches are reported together.
    c = Raw()
    wrong = []
    for key, steps, expected in [
        ("dec", ["0.1", "0.2"], "0.3"),
        ("y", ["1.1", "2.2"], "3.3"),
        ("cents", ["19.99", "0.01"], "20"),
        ("big", ["1e25"], "10000000000000000000000000"),
    ]:
        replies = [c("INCRBYFLOAT", key, step) for step in steps]
        stored = r.get(key)
        if (replies[-1], stored) != (expected, expected):
            wrong.append(
                f"INCRBYFLOAT {key} {' then '.join(steps)}: expected {expected!r}, "
                f"got the reply {replies[-1]!r} and the value {stored!r}"
            )
    if wrong:
        raise AssertionError("\n  ".join(wrong))


@case
def byte_ranges():
    eq(r.append("ap", "Hello"), 5)
    eq(r.append("ap", " World"), 11)
    eq(r.get("ap"), "Hello World")
    eq(r.strlen("ap"), 11)
    eq(r.strlen("none"), 0)
    r.set("gr", "This is a string")
    eq(r.getrange("gr", 0, 3), "This")
    eq(r.getrange("gr", -3, -1), "ing")
    eq(r.getrange("gr", 0, -1), "This is a string")
    eq(r.getrange("gr", 10, 100), "string")
    eq(r.getrange("gr", 5, 3), "")
    eq(r.getrange("none", 0, 5), "")
    r.set("sr", "Hello World")
    eq(r.setrange("sr", 6, "Redis"), 11)
    eq(r.get("sr"), "Hello Redis")
    eq(r.setrange("pad", 6, "Redis"), 11)
    eq(r.get("pad"), "\x00" * 6 + "Redis")
    eq(r.setrange("sr", 20, ""), 11, "SETRANGE with an empty value changes nothing")
    eq(r.strlen("sr"), 11)
    error("ERR offset is out of range", r.setrange, "sr", -1, "x")
    eq(r.getdel("sr"), "Hello Redis")
    eq(r.exists("sr"), 0)
    eq(r.getdel("sr"), None)


@case
def set_variants():
    eq(r.setex("se", 100, "v"), True)
    eq(r.get("se"), "v")
    between(r.ttl("se"), 98, 100, "TTL after SETEX 100")
    error("ERR invalid expire time in 'setex' command", r.setex, "se", 0, "v")
    eq(r.psetex("pse", 50000, "v"), True)
    between(r.pttl("pse"), 48000, 50000, "PTTL after PSETEX")
    eq(r.setnx("sn", "1"), True)
    eq(r.setnx("sn", "2"), False)
    eq(r.get("sn"), "1")
    eq(r.getset("sn", "3"), "1")
    eq(r.get("sn"), "3")
    eq(r.getex("se", persist=True), "v")
    eq(r.ttl("se"), -1, "GETEX PERSIST")
    eq(r.getex("se", ex=50), "v")
    between(r.ttl("se"), 48, 50, "GETEX EX 50")
    eq(r.getex("none"), None)


@case
def wrong_types():
    r.rpush("l", "a")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.get, "l")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.append, "l", "x")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.incr, "l")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.strlen, "l")
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.getrange, "l", 0, 1)
    error("WRONGTYPE Operation against a key holding the wrong kind of value", r.set, "l", "v", get=True)
    eq(r.set("l", "now a string"), True, "SET replaces a key of any type")
    eq(r.type("l"), "string")


main()
