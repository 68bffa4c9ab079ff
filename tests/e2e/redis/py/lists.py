# Lists, blocking pops included.
from prelude import *


@case
def push_and_pop():
    eq(r.rpush("l", "a", "b", "c"), 3)
    eq(r.lpush("l", "z", "y"), 5)
    eq(r.lrange("l", 0, -1), ["y", "z", "a", "b", "c"], "LPUSH pushes its arguments one by one")
    eq(r.llen("l"), 5)
    eq(r.llen("none"), 0)
    eq(r.lindex("l", 0), "y")
    eq(r.lindex("l", -1), "c")
    eq(r.lindex("l", 99), None)
    eq(r.lrange("l", 1, 2), ["z", "a"])
    eq(r.lrange("l", -2, 100), ["b", "c"])
    eq(r.lrange("l", 5, 10), [])
    eq(r.lrange("none", 0, -1), [])
    eq(r.lpop("l"), "y")
    eq(r.rpop("l"), "c")
    eq(r.lpop("l", 2), ["z", "a"])
    eq(r.rpop("l", 5), ["b"])
    eq(r.exists("l"), 0, "a list without elements is deleted")
    eq(r.lpop("l"), None)
    eq(r.rpop("l"), None)
    eq(r.lpop("l", 2), None, "LPOP with a count on a missing key is a nil array")
    r.rpush("l", "a")
    eq(r.lpop("l", 0), [], "LPOP with count 0")
    eq(r.lpushx("nx", "x"), 0)
    eq(r.rpushx("nx", "x"), 0)
    eq(r.exists("nx"), 0)
    eq(r.lpushx("l", "0"), 2)
    eq(r.rpushx("l", "b"), 3)
    eq(r.lrange("l", 0, -1), ["0", "a", "b"])
    error("ERR value is out of range, must be positive", r.execute_command, "LPOP", "l", "-1")


@case
def edit_in_place():
    r.rpush("l", *"abcabc")
    eq(r.lset("l", 1, "B"), True)
    eq(r.lset("l", -1, "C"), True)
    eq(r.lrange("l", 0, -1), ["a", "B", "c", "a", "b", "C"])
    error("ERR index out of range", r.lset, "l", 99, "x")
    error("ERR no such key", r.lset, "none", 0, "x")
    eq(r.lrem("l", 1, "a"), 1)
    eq(r.lrange("l", 0, -1), ["B", "c", "a", "b", "C"])
    r.rpush("l", "B", "B")
    eq(r.lrem("l", -1, "B"), 1, "LREM with a negative count removes from the tail")
    eq(r.lrange("l", 0, -1), ["B", "c", "a", "b", "C", "B"])
    eq(r.lrem("l", 0, "B"), 2)
    eq(r.lrem("l", 0, "zz"), 0)
    eq(r.lrange("l", 0, -1), ["c", "a", "b", "C"])
    eq(r.linsert("l", "before", "a", "X"), 5)
    eq(r.linsert("l", "after", "C", "Y"), 6)
    eq(r.lrange("l", 0, -1), ["c", "X", "a", "b", "C", "Y"])
    eq(r.linsert("l", "before", "nope", "Q"), -1)
    eq(r.linsert("none", "before", "a", "Q"), 0)
    eq(r.ltrim("l", 1, -2), True)
    eq(r.lrange("l", 0, -1), ["X", "a", "b", "C"])
    eq(r.ltrim("l", 5, 10), True)
    eq(r.exists("l"), 0, "LTRIM to nothing deletes the list")
    error("ERR syntax error", r.execute_command, "LINSERT", "l", "middle", "a", "b")


@case
def lpos():
    r.rpush("p", "a", "b", "c", "d", "1", "2", "3", "4", "3", "3", "3")
    eq(r.lpos("p", "3"), 6)
    eq(r.lpos("p", "3", rank=2), 8)
    eq(r.lpos("p", "3", rank=-1), 10)
    eq(r.lpos("p", "3", count=0, rank=2), [8, 9, 10])
    eq(r.lpos("p", "3", count=2), [6, 8])
    eq(r.lpos("p", "3", count=2, rank=-1), [10, 9])
    eq(r.lpos("p", "zz"), None)
    eq(r.lpos("p", "zz", count=1), [])
    eq(r.lpos("p", "3", maxlen=6), None)
    eq(r.lpos("none", "a"), None)
    error(
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
        r.lpos,
        "p",
        "3",
        rank=0,
    )


@case
def move_between_lists():
    r.rpush("src", "a", "b", "c")
    eq(r.rpoplpush("src", "dst"), "c")
    eq(r.lmove("src", "dst", "LEFT", "RIGHT"), "a")
    eq(r.lrange("src", 0, -1), ["b"])
    eq(r.lrange("dst", 0, -1), ["c", "a"])
    eq(r.rpoplpush("none", "dst"), None)


@case
def blocking_pop_times_out():
    started = time.monotonic()
    eq(r.blpop(["empty"], timeout=0.5), None)
    between(time.monotonic() - started, 0.4, 2.5, "seconds BLPOP 0.5 waited")
    started = time.monotonic()
    eq(r.brpop(["empty", "empty2"], timeout=0.5), None)
    between(time.monotonic() - started, 0.4, 2.5, "seconds BRPOP 0.5 waited")
    r.rpush("ready", "x", "y")
    started = time.monotonic()
    eq(tuple(r.blpop(["empty", "ready"], timeout=5)), ("ready", "x"), "BLPOP with data ready")
    eq(tuple(r.brpop(["ready"], timeout=5)), ("ready", "y"))
    between(time.monotonic() - started, 0, 10, "seconds BLPOP/BRPOP with data waited")
    eq(r.exists("ready"), 0)
    error("ERR timeout is negative", r.execute_command, "BLPOP", "k", "-1")
    error("ERR timeout is not a float or out of range", r.execute_command, "BLPOP", "k", "soon")


@case
def blocking_pop_is_woken_by_a_push():
    for pop, push, expected in [
        ("blpop", "rpush", ("q", "hello")),
        ("brpop", "lpush", ("q", "hello")),
    ]:
        result = {}

        def waiter():
            c = connect()
            try:
                result["reply"] = getattr(c, pop)(["q"], timeout=0 if pop == "brpop" else 5)
            except Exception as e:  # shown by the assertion below
                result["reply"] = e
            result["at"] = time.monotonic()

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)
        eq(thread.is_alive(), True, f"{pop} waits for data")
        pushed_at = time.monotonic()
        eq(getattr(connect(), push)("q", "hello"), 1)
        thread.join(60)
        eq(thread.is_alive(), False, f"{pop} returns after {push} from another client")
        reply = result["reply"]
        eq(tuple(reply) if isinstance(reply, list) else reply, expected, pop)
        between(result["at"] - pushed_at, 0, 10, f"seconds from {push} to {pop}'s reply")
        eq(r.llen("q"), 0, "the element was popped, not left in the list")


@case
def blocked_clients_are_served_in_order():
    results = {}

    def waiter(i):
        reply = connect(socket_timeout=90).blpop(["fifo"], timeout=60)
        results[i] = tuple(reply) if reply else reply

    def blocked():
        return r.info("clients")["blocked_clients"]

    def wait_blocked(n):
        wait_until(lambda: blocked() == n, f"{n} clients blocked")

    threads = []
    for i in range(5):
        thread = threading.Thread(target=waiter, args=(i,))
        thread.start()
        threads.append(thread)
        wait_blocked(i + 1)  # so that they block in the order 0, 1, 2, 3, 4
    # Their 100 ms polls must not jump the line: let several go by before the push.
    time.sleep(0.35)
    eq(r.rpush("fifo", *"abc"), 3)
    eq(r.llen("fifo"), 0, "the push answers after the clients it fed were served")
    eq(blocked(), 2)
    eq(r.rpush("fifo", "d"), 1)
    eq(r.rpush("fifo", "e"), 1)
    for thread in threads:
        thread.join(60)
    eq(
        results,
        {i: ("fifo", element) for i, element in enumerate("abcde")},
        "the client blocked longest is served first",
    )


@case
def blocking_pops_in_other_situations():
    c = Raw()
    eq(c("MULTI"), "OK")
    eq(c("BLPOP", "none", "0"), "QUEUED")
    eq(c("EXEC"), [None], "BLPOP inside MULTI does not block")
    result = {}

    def waiter():
        result["reply"] = connect().blpop(["x"], timeout=1)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    eq(connect(db=3).rpush("x", "1"), 1)
    thread.join(30)
    eq(result["reply"], None, "a push to the same key in another database does not wake BLPOP")
    eq(connect(db=3).llen("x"), 1)
    gone = Raw()
    gone.conn.send_command("BLPOP", "q", "0")
    wait_until(lambda: r.info("clients")["blocked_clients"] == 1, "BLPOP to block")
    gone.close()
    wait_until(lambda: r.info("clients")["blocked_clients"] == 0, "the closed client to go")
    eq(r.rpush("q", "kept"), 1)
    time.sleep(0.5)
    eq(r.lrange("q", 0, -1), ["kept"], "a blocked client that disconnected takes nothing")


@case
def wrong_types():
    r.set("s", "v")
    for fn, args in [
        (r.lpush, ("s", "x")),
        (r.rpop, ("s",)),
        (r.lrange, ("s", 0, -1)),
        (r.llen, ("s",)),
        (r.blpop, (["s"], 1)),
    ]:
        error("WRONGTYPE Operation against a key holding the wrong kind of value", fn, *args)


main()
