# psycopg 3: server-side parameter binding, prepared statements, types both ways, nested
# transactions (savepoints), the COPY API, executemany, and errors as their exception classes.
import datetime
import decimal

import psycopg
from psycopg import errors

from prelude import case, connect, eq, reset_tables, run_cases


@case
def types_round_trip_with_server_side_parameters():
    with connect() as c:
        c.execute(
            "CREATE TABLE t (id SERIAL PRIMARY KEY, i INT, b BIGINT, f DOUBLE PRECISION,"
            " n NUMERIC(10,2), s TEXT, ok BOOLEAN, d DATE, ts TIMESTAMPTZ, raw BYTEA)"
        )
        row = (
            42,
            2**40,
            1.5,
            decimal.Decimal("12.34"),
            "héllo 'q'",
            True,
            datetime.date(2024, 2, 29),
            datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            b"\x00\xff",
        )
        cur = c.execute(
            "INSERT INTO t (i, b, f, n, s, ok, d, ts, raw) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            row,
        )
        eq(cur.fetchone(), (1,), "serial id")
        got = c.execute(
            "SELECT i, b, f, n, s, ok, d, ts, raw FROM t WHERE id = %s", (1,)
        ).fetchone()
        eq(got[:7], row[:7], "values")
        eq(got[7], row[7], "timestamptz")
        eq(bytes(got[8]), row[8], "bytea")
        c.execute("INSERT INTO t (i, s) VALUES (%s, %s)", (None, None))
        eq(
            c.execute("SELECT count(*) FROM t WHERE i IS NULL AND s IS NULL").fetchone(),
            (1,),
        )


@case
def prepared_statements_and_executemany():
    with connect() as c:
        c.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        with c.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s, %s)", [(i, f"v{i}") for i in range(20)])
            for i in range(10):
                got = cur.execute("SELECT v FROM t WHERE id = %s", (i,), prepare=True).fetchone()
                eq(got, (f"v{i}",))
        eq(c.execute("SELECT count(*) FROM t").fetchone(), (20,))


@case
def nested_transactions_are_savepoints():
    with connect() as c:
        c.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        c.commit()
        with c.transaction():
            c.execute("INSERT INTO t VALUES (1)")
            try:
                with c.transaction():
                    c.execute("INSERT INTO t VALUES (2)")
                    c.execute("INSERT INTO t VALUES (1)")
            except errors.UniqueViolation:
                pass
            with c.transaction():
                c.execute("INSERT INTO t VALUES (3)")
        eq(c.execute("SELECT id FROM t ORDER BY id").fetchall(), [(1,), (3,)])


@case
def copy_api_both_ways():
    with connect() as c:
        c.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score NUMERIC(5,1))")
        with c.cursor() as cur:
            with cur.copy("COPY t (id, name, score) FROM STDIN") as copy:
                for row in [(1, "tab\there", decimal.Decimal("1.5")), (2, None, None), (3, "x", 3)]:
                    copy.write_row(row)
            eq(cur.rowcount, 3, "copied rows")
            with cur.copy("COPY t (id, name) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write('4,"a, b"\n5,\n')
            rows = []
            with cur.copy("COPY (SELECT id, name, score FROM t ORDER BY id) TO STDOUT") as copy:
                copy.set_types(["int4", "text", "numeric"])
                for row in copy.rows():
                    rows.append(row)
        eq(
            rows,
            [
                (1, "tab\there", decimal.Decimal("1.5")),
                (2, None, None),
                (3, "x", decimal.Decimal("3.0")),
                (4, "a, b", None),
                (5, None, None),
            ],
        )


@case
def errors_carry_sqlstate_classes():
    with connect(autocommit=True) as c:
        c.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)")
        c.execute("INSERT INTO t VALUES (1, 1)")
        for sql, cls in [
            ("SELECT * FROM nope", errors.UndefinedTable),
            ("SELECT nope FROM t", errors.UndefinedColumn),
            ("INSERT INTO t VALUES (1, 1)", errors.UniqueViolation),
            ("INSERT INTO t VALUES (2, NULL)", errors.NotNullViolation),
            ("SELECT 1/0", errors.DivisionByZero),
            ("SELEC 1", errors.SyntaxError),
        ]:
            try:
                c.execute(sql)
            except cls:
                pass
            else:
                raise AssertionError(f"{sql}: no {cls.__name__}")
        eq(c.execute("SELECT v FROM t WHERE id = 1").fetchone(), (1,))


@case
def json_jsonb_and_uuid_arrive_as_python_values():
    import uuid

    from psycopg.types.json import Json, Jsonb

    with connect() as c:
        c.execute("CREATE TABLE t (id UUID PRIMARY KEY, doc JSONB, raw JSON)")
        key = uuid.uuid4()
        c.execute(
            "INSERT INTO t VALUES (%s, %s, %s)",
            (key, Jsonb({"b": [1, 2], "a": None}), Json({"x": "y"})),
        )
        for binary in (False, True):
            cur = c.cursor(binary=binary)
            row = cur.execute("SELECT id, doc, raw, doc -> 'b' FROM t").fetchone()
            eq(row, (key, {"a": None, "b": [1, 2]}, {"x": "y"}, [1, 2]))
        eq(
            c.execute("SELECT doc ->> 'a', doc @> %s FROM t", (Jsonb({"b": [2]}),)).fetchone(),
            (None, True),
        )
        eq(
            c.execute("SELECT jsonb_agg(doc) FROM t").fetchone(),
            ([{"a": None, "b": [1, 2]}],),
        )
        try:
            c.execute("SELECT '{oops'::jsonb")
        except errors.InvalidTextRepresentation:
            pass
        else:
            raise AssertionError("bad json accepted")


@case
def arrays_as_lists():
    import uuid

    with connect() as c:
        c.execute(
            "CREATE TABLE t (id INT PRIMARY KEY, tags TEXT[], nums BIGINT[], ids UUID[],"
            " prices NUMERIC(6,2)[], flags BOOLEAN[])"
        )
        key = uuid.uuid4()
        row = (1, ["a", "b c", None, 'q"x', ""], [1, 2**40], [key], [decimal.Decimal("1.25")], [True, None])
        c.execute("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s)", row)
        c.execute("INSERT INTO t (id, tags, nums) VALUES (2, %s, %s)", ([], []))
        for binary in (False, True):
            cur = c.cursor(binary=binary)
            eq(cur.execute("SELECT * FROM t WHERE id = 1").fetchone(), row, "arrays read back")
            eq(cur.execute("SELECT tags, nums FROM t WHERE id = 2").fetchone(), ([], []), "empty arrays")
            eq(
                cur.execute("SELECT id FROM t WHERE id = ANY(%s) ORDER BY id", ([1, 2, 3],)).fetchall(),
                [(1,), (2,)],
                "= ANY(list)",
            )
            eq(cur.execute("SELECT id FROM t WHERE tags @> %s", (["a"],)).fetchall(), [(1,)], "@>")
        with c.cursor().copy("COPY t (id, tags) FROM STDIN") as copy:
            copy.write_row((3, ["x,y", None]))
        eq(c.execute("SELECT tags FROM t WHERE id = 3").fetchone(), (["x,y", None],), "COPY of an array")
        try:
            c.execute("SELECT '{1,x}'::int[]")
        except errors.InvalidTextRepresentation:
            pass
        else:
            raise AssertionError("bad array accepted")


run_cases(reset_tables("t"))
