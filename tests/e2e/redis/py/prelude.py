# Shared by every redis-py script (redis.rs puts it in front of each): connection helpers,
# assertions, and a runner that runs every @case, reports all failures and prints "ok".
#
# Environment: REDIS_PORT (required), REDIS_HOST (127.0.0.1), REDIS_REFERENCE=1 when the
# scripts run against a stock redis-server to check the tests themselves (it has no
# `AUTH password` for the default user, so the few ThunderDB-only checks are skipped).
import os
import sys
import threading
import time
import warnings

import redis
from cases import case, eq, run_cases  # noqa: F401 (used by the scripts)
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = os.environ.get("REDIS_HOST", "127.0.0.1")
PORT = int(os.environ["REDIS_PORT"])
REFERENCE = os.environ.get("REDIS_REFERENCE") == "1"

# redis-py marks SETEX, SETNX … deprecated; they are Redis commands all the same.
warnings.simplefilter("ignore", DeprecationWarning)


def connect(**kw):
    """A redis-py client; RESP2 unless protocol=3 is asked for (redis-py 8 defaults to 3)."""
    kw.setdefault("protocol", 2)
    kw.setdefault("decode_responses", True)
    kw.setdefault("socket_timeout", 10)
    # No silent retries: a dropped connection or refused login must show up as it happens.
    kw.setdefault("retry", Retry(NoBackoff(), 0))
    return redis.Redis(host=HOST, port=PORT, **kw)


class Raw:
    """One connection whose replies skip redis-py's per-command conversions: what the server
    sent, parsed (a RESP3 map is a dict, a RESP3 double a float, an error raises)."""

    def __init__(self, protocol=2, **kw):
        self.conn = redis.Connection(
            host=HOST,
            port=PORT,
            protocol=protocol,
            decode_responses=True,
            socket_timeout=10,
            **kw,
        )
        self.conn.connect()

    def __call__(self, *args):
        self.conn.send_command(*args)
        return self.conn.read_response()

    def close(self):
        self.conn.disconnect()


r = connect()


def wait_until(condition, what, seconds=60):
    """Polls `condition` until it holds; a slow machine gets `seconds` before it fails."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.01)


def between(value, low, high, what=""):
    if not (low <= value <= high):
        label = f"{what}: " if what else ""
        raise AssertionError(f"{label}expected {low}..{high}, got {value!r}")


def error(expected, fn, *args, **kwargs):
    """Calls fn and asserts it fails with the server error `expected` (the whole line as Redis
    sends it; a trailing `*` makes it a prefix). Returns the error line.

    redis-py drops the code of some errors (`ERR x` arrives as ResponseError("x"),
    `WRONGPASS x` as AuthenticationError("x")), so the code is put back before comparing."""
    try:
        value = fn(*args, **kwargs)
    except redis.exceptions.RedisError as e:
        if isinstance(e, (redis.exceptions.TimeoutError,)) or type(e) is redis.exceptions.ConnectionError:
            raise AssertionError(f"expected the error {expected!r}, got {type(e).__name__}: {e}")
        text = str(e)
        code = expected.split(" ", 1)[0]
        candidates = [text, f"{code} {text}"]
        if expected.endswith("*"):
            ok = any(c.startswith(expected[:-1]) for c in candidates)
        else:
            ok = expected in candidates
        if not ok:
            raise AssertionError(
                f"expected the error {expected!r}, got {type(e).__name__}: {text!r}"
            )
        return expected
    raise AssertionError(f"expected the error {expected!r}, got the reply {value!r}")


def main():
    run_cases(r.flushall)
