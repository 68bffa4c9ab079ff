# Publish/subscribe.
import socket

from prelude import *


def message(p, what):
    m = p.get_message(timeout=30)
    if m is None:
        raise AssertionError(f"no message within 30 s: expected {what}")
    return m


def sub(kind, channel, count):
    return {"type": kind, "pattern": None, "channel": channel, "data": count}


@case
def subscribe_publish():
    p = connect().pubsub()
    p.subscribe("news", "sport")
    eq(message(p, "subscribe news"), sub("subscribe", "news", 1))
    eq(message(p, "subscribe sport"), sub("subscribe", "sport", 2))
    p.psubscribe("n*")
    eq(message(p, "psubscribe n*"), sub("psubscribe", "n*", 3))
    eq(r.publish("news", "hello"), 2, "PUBLISH counts the channel and the pattern subscription")
    eq(message(p, "message"), {"type": "message", "pattern": None, "channel": "news", "data": "hello"})
    eq(message(p, "pmessage"), {"type": "pmessage", "pattern": "n*", "channel": "news", "data": "hello"})
    eq(r.publish("sport", "goal"), 1)
    eq(message(p, "message on sport"), {"type": "message", "pattern": None, "channel": "sport", "data": "goal"})
    eq(r.publish("weather", "rain"), 0)
    eq(r.publish("nx", "x"), 1)
    eq(message(p, "pmessage on nx"), {"type": "pmessage", "pattern": "n*", "channel": "nx", "data": "x"})
    eq(p.get_message(timeout=0.2), None, "nothing else was delivered")

    eq(sorted(r.pubsub_channels()), ["news", "sport"])
    eq(r.pubsub_channels("s*"), ["sport"])
    eq(r.pubsub_numsub("news", "sport", "none"), [("news", 1), ("sport", 1), ("none", 0)])
    eq(r.pubsub_numpat(), 1)

    p.unsubscribe("news")
    eq(message(p, "unsubscribe news"), sub("unsubscribe", "news", 2))
    eq(r.publish("news", "again"), 1, "only the pattern is left for news")
    eq(message(p, "pmessage after unsubscribe"), {"type": "pmessage", "pattern": "n*", "channel": "news", "data": "again"})
    eq(r.pubsub_channels(), ["sport"])
    p.punsubscribe("n*")
    eq(message(p, "punsubscribe"), sub("punsubscribe", "n*", 1))
    eq(r.pubsub_numpat(), 0)
    p.unsubscribe()
    eq(message(p, "unsubscribe all"), sub("unsubscribe", "sport", 0))
    eq(r.pubsub_channels(), [])
    eq(r.publish("sport", "x"), 0)
    p.close()


@case
def several_subscribers():
    subscribers = [connect().pubsub() for _ in range(3)]
    for p in subscribers:
        p.subscribe("chat")
        eq(message(p, "subscribe")["type"], "subscribe")
    eq(r.pubsub_numsub("chat"), [("chat", 3)])
    eq(r.publish("chat", "hi all"), 3)
    for p in subscribers:
        eq(message(p, "message")["data"], "hi all")
    subscribers[0].close()
    deadline = time.monotonic() + 30
    while r.pubsub_numsub("chat") != [("chat", 2)] and time.monotonic() < deadline:
        time.sleep(0.05)
    eq(r.pubsub_numsub("chat"), [("chat", 2)], "a closed connection's subscriptions end")
    eq(r.publish("chat", "bye"), 2)
    for p in subscribers[1:]:
        p.close()


@case
def resp3_subscriber():
    """With RESP3 a subscribed connection runs any command; messages arrive as push replies."""
    s = socket.create_connection((HOST, PORT), timeout=60)

    def exchange(request, expected):
        s.sendall(request)
        got = b""
        deadline = time.monotonic() + 60
        while len(got) < len(expected) and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        eq(got, expected, repr(request))

    # HELLO's map has a per-connection id: read past it up to the PING's answer.
    s.sendall(b"HELLO 3\r\nPING\r\n")
    s.settimeout(60)
    skipped = b""
    while not skipped.endswith(b"+PONG\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after HELLO 3: {skipped!r}")
        skipped += chunk
    exchange(b"SUBSCRIBE ch\r\n", b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
    exchange(b"SET k v\r\nGET k\r\nPING\r\n", b"+OK\r\n$1\r\nv\r\n+PONG\r\n")
    eq(r.publish("ch", "hello"), 1)
    exchange(b"", b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n")
    exchange(b"UNSUBSCRIBE ch\r\n", b">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n")
    s.close()


@case
def subscribed_connection_rules():
    c = Raw()
    eq(c("SUBSCRIBE", "x"), ["subscribe", "x", 1])
    eq(c("PING"), ["pong", ""], "PING in RESP2 subscribed mode")
    error(
        "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
        c, "GET", "k",
    )
    eq(c("UNSUBSCRIBE"), ["unsubscribe", "x", 0])
    eq(c("GET", "k"), None, "commands work again after the last UNSUBSCRIBE")
    eq(c("UNSUBSCRIBE"), ["unsubscribe", None, 0])


main()
