# PyMySQL basics: types both ways, parameters, cursors, lastrowid and rowcount, executemany.
from prelude import *


@case
def values_round_trip_with_their_types():
    c = connect()
    run(c, """CREATE TABLE vals (id INT PRIMARY KEY, b BOOL, si SMALLINT, bi BIGINT, f FLOAT,
              d DOUBLE, n DECIMAL(12,3), s VARCHAR(20), t TEXT, bl BLOB, dt DATE,
              ts DATETIME, tm TIME)""")
    eq(run(c, "INSERT INTO vals VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
           (1, True, -32768, 9007199254740993, 1.5, 0.1, D("12345.678"), "héllo 'q'",
            "x" * 5000, b"\x00\xff\x10", datetime.date(2024, 2, 29),
            datetime.datetime(2024, 1, 2, 3, 4, 5, 600000), datetime.timedelta(hours=13, seconds=7))), 1)
    run(c, "INSERT INTO vals (id) VALUES (2)")
    got = rows(c, "SELECT * FROM vals ORDER BY id")
    eq(got[0], (1, 1, -32768, 9007199254740993, 1.5, 0.1, D("12345.678"), "héllo 'q'", "x" * 5000,
                b"\x00\xff\x10", datetime.date(2024, 2, 29),
                datetime.datetime(2024, 1, 2, 3, 4, 5, 600000), datetime.timedelta(hours=13, seconds=7)))
    eq(got[1], (2,) + (None,) * 12)
    eq(one(c, "SELECT 1 + 1"), 2)
    eq(one(c, "SELECT 1.5 * 2"), D("3.0"))
    eq(one(c, "SELECT 'a' 'b'"), "ab")
    eq(one(c, "SELECT CONCAT('x', 1)"), "x1")


@case
def quotes_and_backslashes_are_data():
    c = connect()
    run(c, "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)")
    tricky = ["it's", "back\\slash", "\\'", "x\\'); DROP TABLE notes; --", "''", "a\nb\tc", "\\\\"]
    for i, body in enumerate(tricky):
        run(c, "INSERT INTO notes VALUES (%s, %s)", (i, body))
    run(c, "UPDATE notes SET body = CONCAT(body, %s) WHERE id = %s", ("\\'!", 0))
    run(c, "INSERT INTO notes VALUES (%s, %s) ON DUPLICATE KEY UPDATE body = %s", (1, "new", "it''s \\ here"))
    got = [b for (b,) in rows(c, "SELECT body FROM notes ORDER BY id")]
    expected = list(tricky)
    expected[0] = "it's\\'!"
    expected[1] = "it''s \\ here"
    eq(got, expected)
    eq(one(c, "SELECT COUNT(*) FROM notes WHERE body = %s", ("x\\'); DROP TABLE notes; --",)), 1)


@case
def column_names_are_as_written():
    c = connect(cursorclass=pymysql.cursors.DictCursor)
    run(c, "CREATE TABLE people (id INT PRIMARY KEY, Name VARCHAR(10))")
    run(c, "INSERT INTO people VALUES (1, 'ann')")
    with c.cursor() as cur:
        cur.execute("SELECT id AS Id, Name, COUNT(*), 'lit', 1+1 FROM people GROUP BY id, Name")
        eq([d[0] for d in cur.description], ["Id", "Name", "COUNT(*)", "lit", "1+1"])
        eq(cur.fetchall(), [{"Id": 1, "Name": "ann", "COUNT(*)": 1, "lit": "lit", "1+1": 2}])


@case
def auto_increment_and_last_insert_id():
    c = connect()
    run(c, "CREATE TABLE items (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(10))")
    with c.cursor() as cur:
        cur.execute("INSERT INTO items (name) VALUES ('a')")
        eq(cur.lastrowid, 1)
        cur.execute("INSERT INTO items (name) VALUES ('b'), ('c')")
        eq(cur.lastrowid, 2, "the first id of a multi-row insert")
        eq(cur.rowcount, 2)
        cur.execute("INSERT INTO items (id, name) VALUES (100, 'x')")
        cur.execute("INSERT INTO items (name) VALUES ('d')")
        eq(cur.lastrowid, 101, "ids continue above an explicit one")
        cur.execute("INSERT INTO items (id, name) VALUES (0, 'zero'), (NULL, 'null')")
        eq(cur.lastrowid, 102)
    eq(one(c, "SELECT LAST_INSERT_ID()"), 102)
    eq(rows(c, "SELECT id, name FROM items ORDER BY id"),
       [(1, "a"), (2, "b"), (3, "c"), (100, "x"), (101, "d"), (102, "zero"), (103, "null")])
    # Another connection has its own LAST_INSERT_ID.
    eq(one(connect(), "SELECT LAST_INSERT_ID()"), 0)


@case
def upserts_count_rows_as_mysql_does():
    c = connect()
    run(c, "CREATE TABLE kv (k VARCHAR(10) PRIMARY KEY, v INT NOT NULL, hits INT DEFAULT 0)")
    eq(run(c, "INSERT INTO kv (k, v) VALUES ('a', 1) ON DUPLICATE KEY UPDATE v = VALUES(v), hits = hits + 1"), 1)
    eq(run(c, "INSERT INTO kv (k, v) VALUES ('a', 5) ON DUPLICATE KEY UPDATE v = VALUES(v), hits = hits + 1"), 2)
    eq(rows(c, "SELECT * FROM kv"), [("a", 5, 1)])
    eq(run(c, "REPLACE INTO kv (k, v, hits) VALUES ('a', 7, 0), ('b', 2, 0)"), 3)
    eq(rows(c, "SELECT * FROM kv ORDER BY k"), [("a", 7, 0), ("b", 2, 0)])
    eq(run(c, "INSERT IGNORE INTO kv (k, v) VALUES ('a', 9), ('c', 3)"), 1)
    eq(rows(c, "SELECT k, v FROM kv ORDER BY k"), [("a", 7), ("b", 2), ("c", 3)])
    # Rows with the same key in one statement apply in order, as MySQL applies them.
    eq(run(c, "INSERT INTO kv (k, v) VALUES ('z', 1), ('z', 2) ON DUPLICATE KEY UPDATE v = VALUES(v)"), 3)
    eq(run(c, "REPLACE INTO kv (k, v) VALUES ('q', 1), ('q', 2)"), 3)
    eq(rows(c, "SELECT k, v FROM kv WHERE k IN ('q', 'z') ORDER BY k"), [("q", 2), ("z", 2)])
    run(c, "DELETE FROM kv WHERE k IN ('q', 'z')")
    eq(run(c, "UPDATE kv SET v = v + 1 WHERE k IN ('a', 'b')"), 2)
    eq(run(c, "UPDATE kv SET v = v - 1 WHERE k LIKE 'a' ESCAPE '\\\\'"), 1, "a backslash ESCAPE")
    eq(run(c, "DELETE FROM kv WHERE k = 'c'"), 1)


@case
def executemany_and_limits():
    c = connect()
    run(c, "CREATE TABLE nums (n INT PRIMARY KEY)")
    with c.cursor() as cur:
        eq(cur.executemany("INSERT INTO nums VALUES (%s)", [(i,) for i in range(1, 101)]), 100)
    eq(one(c, "SELECT COUNT(*) FROM nums"), 100)
    eq(rows(c, "SELECT n FROM nums ORDER BY n LIMIT 95, 3"), [(96,), (97,), (98,)])
    eq(rows(c, "SELECT n FROM nums ORDER BY n DESC LIMIT 2 OFFSET 1"), [(99,), (98,)])
    eq(one(c, "SELECT 7 DIV 2"), 3)
    eq(rows(c, "SELECT n FROM nums WHERE (n < 3) XOR (n < 2) ORDER BY n"), [(2,)])


@case
def multi_statement_requests():
    c = connect(client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    run(c, "CREATE TABLE m (a INT)")
    with c.cursor() as cur:
        cur.execute("INSERT INTO m VALUES (1); SET @v = 5; SELECT @v + a FROM m")
        results = []
        while True:
            results.append(cur.fetchall())
            if not cur.nextset():
                break
        eq(results[-1], ((6,),))


main()
