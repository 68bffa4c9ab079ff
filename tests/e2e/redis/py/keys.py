# The key space: DEL/EXISTS/TYPE/RENAME, KEYS and SCAN, expiry, databases.
from prelude import *


@case
def delete_and_exists():
    r.mset({"a": "1", "b": "2", "c": "3"})
    eq(r.delete("a", "b", "nope"), 2)
    eq(r.unlink("c", "nope"), 1)
    eq(r.exists("a", "b", "c"), 0)
    r.set("x", "1")
    eq(r.exists("x", "x", "y"), 2, "EXISTS counts a key named twice twice")
    r.rpush("l", "a")
    r.hset("h", "f", "v")
    eq(r.delete("l", "h", "x"), 3, "DEL removes keys of every type")
    eq(r.dbsize(), 0)


@case
def types():
    r.set("s", "v")
    r.hset("h", "f", "v")
    r.rpush("l", "a")
    r.sadd("st", "m")
    r.zadd("z", {"m": 1})
    eq(
        [r.type(k) for k in ("s", "h", "l", "st", "z", "none")],
        ["string", "hash", "list", "set", "zset", "none"],
    )


@case
def rename():
    r.set("a", "1")
    eq(r.rename("a", "b"), True)
    eq(r.get("b"), "1")
    eq(r.exists("a"), 0)
    error("ERR no such key", r.rename, "nope", "x")
    error("ERR no such key", r.renamenx, "nope", "x")
    r.set("c", "3")
    eq(r.renamenx("b", "c"), False)
    eq(r.get("b"), "1")
    eq(r.renamenx("b", "d"), True)
    eq(r.get("d"), "1")
    r.rpush("l", "x", "y")
    r.expire("l", 100)
    eq(r.rename("l", "l2"), True)
    eq(r.lrange("l2", 0, -1), ["x", "y"], "RENAME keeps the value")
    between(r.ttl("l2"), 98, 100, "RENAME keeps the TTL")
    r.set("s", "v")
    eq(r.rename("l2", "s"), True, "RENAME over a key of another type")
    eq(r.type("s"), "list")
    eq(r.lrange("s", 0, -1), ["x", "y"])
    r.set("same", "v")
    eq(r.rename("same", "same"), True)
    eq(r.get("same"), "v")


@case
def keys_and_scan():
    for i in range(50):
        r.set(f"user:{i}", i)
    for i in range(10):
        r.hset(f"hash:{i}", "f", i)
    r.set("other", 1)
    every = sorted([f"user:{i}" for i in range(50)] + [f"hash:{i}" for i in range(10)] + ["other"])
    eq(sorted(r.keys("*")), every)
    eq(sorted(r.keys()), every)
    eq(sorted(r.keys("user:1*")), sorted(["user:1"] + [f"user:1{i}" for i in range(10)]))
    eq(sorted(r.keys("user:?")), sorted(f"user:{i}" for i in range(10)))
    eq(sorted(r.keys("h[a]sh:[0-2]")), ["hash:0", "hash:1", "hash:2"])
    eq(sorted(r.keys("hash:[^0-8]")), ["hash:9"])
    eq(r.keys("nomatch*"), [])
    scanned = list(r.scan_iter())
    eq(sorted(set(scanned)), every, "SCAN visits every key")
    eq(sorted(set(r.scan_iter(count=3))), every, "SCAN COUNT 3 visits every key")
    eq(sorted(set(r.scan_iter(match="user:*", count=7))), sorted(f"user:{i}" for i in range(50)))
    eq(sorted(set(r.scan_iter(_type="hash"))), sorted(f"hash:{i}" for i in range(10)))
    eq(sorted(set(r.scan_iter(_type="string", match="o*"))), ["other"])
    eq(sorted(set(r.scan_iter(match="hash:[0-4]", _type="hash", count=2))), [f"hash:{i}" for i in range(5)])
    eq(list(r.scan_iter(_type="zset")), [])
    cursor, batch = r.scan(0, count=1000)
    eq(cursor, 0, "one SCAN with COUNT 1000 over 61 keys ends the iteration")
    eq(sorted(batch), every)
    error("ERR invalid cursor", r.execute_command, "SCAN", "abc")
    error("ERR syntax error", r.execute_command, "SCAN", "0", "BOGUS", "1")


@case
def scan_while_keys_change():
    # SCAN's guarantee: a key present during the whole iteration is returned (at least once),
    # whatever else is added or deleted meanwhile.
    stable = {f"stable:{i}" for i in range(300)}
    r.mset({k: "1" for k in stable})
    seen = set()
    writer = connect()
    for n, key in enumerate(r.scan_iter(count=25)):
        seen.add(key)
        if n % 10 == 0:
            writer.set(f"new:{n}", "1")
            writer.delete(f"new:{n - 10}")
    eq(sorted(stable - seen), [], "stable keys SCAN missed")


@case
def expiry():
    r.set("k", "v")
    eq(r.ttl("k"), -1)
    eq(r.pttl("k"), -1)
    eq(r.ttl("none"), -2)
    eq(r.pttl("none"), -2)
    eq(r.expire("k", 100), True)
    between(r.ttl("k"), 98, 100, "TTL after EXPIRE 100")
    eq(r.pexpire("k", 50000), True)
    between(r.pttl("k"), 48000, 50000, "PTTL after PEXPIRE 50000")
    eq(r.persist("k"), True)
    eq(r.ttl("k"), -1)
    eq(r.persist("k"), False, "PERSIST on a key without TTL")
    eq(r.persist("none"), False)
    eq(r.expire("none", 10), False)
    eq(r.expireat("k", int(time.time()) + 200), True)
    between(r.ttl("k"), 198, 200, "TTL after EXPIREAT now+200")
    eq(r.pexpireat("k", int(time.time() * 1000) + 300_000), True)
    between(r.ttl("k"), 298, 300, "TTL after PEXPIREAT now+300s")
    eq(r.expire("k", -1), True, "EXPIRE with a negative time deletes")
    eq(r.exists("k"), 0)
    r.set("k2", "v")
    eq(r.expireat("k2", int(time.time()) - 10), True)
    eq(r.get("k2"), None, "EXPIREAT in the past deletes")
    r.set("k3", "v")
    eq(r.expire("k3", 100, xx=True), False, "EXPIRE XX without a TTL")
    eq(r.expire("k3", 100, nx=True), True, "EXPIRE NX without a TTL")
    eq(r.expire("k3", 50, gt=True), False, "EXPIRE GT with a smaller TTL")
    eq(r.expire("k3", 200, gt=True), True, "EXPIRE GT with a larger TTL")
    eq(r.expire("k3", 50, lt=True), True, "EXPIRE LT with a smaller TTL")
    between(r.ttl("k3"), 48, 50, "TTL after EXPIRE LT 50")
    error("ERR value is not an integer or out of range", r.execute_command, "EXPIRE", "k3", "soon")
    r.set("keep", "1", ex=100)
    r.incr("keep")
    r.append("keep", "0")
    between(r.ttl("keep"), 98, 100, "INCR and APPEND keep the TTL")


@case
def expired_keys_are_gone():
    r.set("short", "v", px=100)
    eq(r.get("short"), "v")
    r.set("short2", "v")
    eq(r.pexpire("short2", 100), True)
    r.hset("hx", "f", "v")
    r.pexpire("hx", 100)
    r.rpush("lx", "a", "b")
    r.pexpire("lx", 100)
    time.sleep(0.3)
    eq(r.get("short"), None)
    eq(r.exists("short"), 0)
    eq(r.ttl("short"), -2)
    eq(r.get("short2"), None)
    eq(r.hgetall("hx"), {})
    eq(r.type("hx"), "none")
    eq(r.lrange("lx", 0, -1), [])
    eq(r.keys("*"), [])
    eq(r.dbsize(), 0)
    eq(r.incr("short"), 1, "INCR of an expired key starts from 0")
    eq(r.ttl("short"), -1)


@case
def random_dbsize_flush():
    eq(r.dbsize(), 0)
    eq(r.randomkey(), None)
    r.set("a", "1")
    eq(r.randomkey(), "a")
    r.set("b", "2")
    seen = {r.randomkey() for _ in range(20)}
    if not seen <= {"a", "b"}:
        raise AssertionError(f"RANDOMKEY returned {seen}")
    eq(r.dbsize(), 2)
    eq(r.flushdb(), True)
    eq(r.dbsize(), 0)
    r.set("a", "1")
    eq(r.flushdb(asynchronous=True), True)
    eq(r.dbsize(), 0)
    r.set("a", "1")
    other = connect(db=1)
    other.set("a", "1")
    eq(r.flushall(), True)
    eq(r.dbsize(), 0)
    eq(other.dbsize(), 0, "FLUSHALL empties every database")


@case
def databases():
    dbs = [connect(db=i) for i in range(16)]
    for i, c in enumerate(dbs):
        c.set("shared", f"db{i}")
        c.set(f"only{i}", i)
    for i, c in enumerate(dbs):
        eq(c.get("shared"), f"db{i}", f"db {i}")
        eq(c.exists(f"only{(i + 1) % 16}"), 0, f"db {i} sees db {(i + 1) % 16}'s key")
        eq(c.dbsize(), 2, f"DBSIZE of db {i}")
    eq(dbs[3].flushdb(), True)
    eq(dbs[3].dbsize(), 0)
    eq(dbs[4].dbsize(), 2, "FLUSHDB in db 3 leaves db 4")
    eq(dbs[0].get("shared"), "db0")
    one = Raw()
    eq(one("SELECT", "7"), "OK")
    eq(one("SET", "x", "in7"), "OK")
    eq(one("SELECT", "15"), "OK")
    eq(one("GET", "x"), None)
    eq(dbs[7].get("x"), "in7")
    eq(dbs[0].get("x"), None)
    error("ERR DB index is out of range", one, "SELECT", "16")
    error("ERR DB index is out of range", one, "SELECT", "-1")
    error("ERR value is not an integer or out of range", one, "SELECT", "x")
    eq(one("GET", "shared"), "db15", "a refused SELECT keeps the database")
    eq(r.move("only0", 9), True)
    eq(r.exists("only0"), 0)
    eq(dbs[9].get("only0"), "0")
    eq(r.move("shared", 9), False, "MOVE onto an existing key")


main()
