# Shared by every PyMySQL script (py.rs puts it beside each): connection helpers, assertions,
# and a runner that runs every @case on a fresh table set, reports all failures, prints "ok".
#
# Environment: MYSQL_PORT (required), MYSQL_HOST (127.0.0.1), MYSQL_USER / MYSQL_PASSWORD
# (thunder / thunder), MYSQL_DATABASE (thunderdb).
import decimal
import datetime
import os
import sys
import threading

import pymysql
import pymysql.cursors
from cases import case, eq, run_cases  # noqa: F401 (used by the scripts)

HOST = os.environ.get("MYSQL_HOST", "127.0.0.1")
PORT = int(os.environ["MYSQL_PORT"])
USER = os.environ.get("MYSQL_USER", "thunder")
PASSWORD = os.environ.get("MYSQL_PASSWORD", "thunder")
DATABASE = os.environ.get("MYSQL_DATABASE", "thunderdb")
D = decimal.Decimal


def connect(**kw):
    kw.setdefault("host", HOST)
    kw.setdefault("port", PORT)
    kw.setdefault("user", USER)
    kw.setdefault("password", PASSWORD)
    kw.setdefault("database", DATABASE)
    kw.setdefault("connect_timeout", 10)
    kw.setdefault("read_timeout", 60)
    kw.setdefault("autocommit", True)
    return pymysql.connect(**kw)


def rows(conn, sql, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        return [tuple(r) for r in c.fetchall()]


def one(conn, sql, args=None):
    got = rows(conn, sql, args)
    if len(got) != 1 or len(got[0]) != 1:
        raise AssertionError(f"{sql}: expected one value, got {got!r}")
    return got[0][0]


def run(conn, sql, args=None):
    """Executes and returns the affected-row count."""
    with conn.cursor() as c:
        return c.execute(sql, args)


def error(code, fn, *args, **kwargs):
    """Calls fn and asserts it fails with MySQL error number `code`; returns the message."""
    try:
        value = fn(*args, **kwargs)
    except pymysql.err.MySQLError as e:
        got = e.args[0] if e.args else None
        if got != code:
            raise AssertionError(f"expected error {code}, got {type(e).__name__}{e.args!r}")
        return e.args[1] if len(e.args) > 1 else ""
    raise AssertionError(f"expected error {code}, got the result {value!r}")


def drop_tables():
    admin = connect()
    for (table,) in rows(admin, "SHOW TABLES"):
        run(admin, f"DROP TABLE `{table}`")
    admin.close()


def main():
    run_cases(drop_tables)
