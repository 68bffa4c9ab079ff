# Transactions as MySQL applications use them: autocommit off, START TRANSACTION, a failed
# statement that undoes only itself, conflicting writers (1213, retry), both sides' commits.
from prelude import *


@case
def autocommit_off_keeps_a_transaction_open():
    a = connect(autocommit=False)
    b = connect()
    run(b, "CREATE TABLE acct (id INT PRIMARY KEY, bal INT NOT NULL)")
    run(b, "INSERT INTO acct VALUES (1, 100), (2, 100)")
    run(a, "UPDATE acct SET bal = bal - 10 WHERE id = 1")
    run(a, "UPDATE acct SET bal = bal + 10 WHERE id = 2")
    eq(one(b, "SELECT bal FROM acct WHERE id = 1"), 100, "uncommitted changes are not visible")
    a.commit()
    eq(rows(b, "SELECT bal FROM acct ORDER BY id"), [(90,), (110,)])
    run(a, "DELETE FROM acct")
    a.rollback()
    eq(one(b, "SELECT COUNT(*) FROM acct"), 2)
    with a.cursor() as c:
        c.execute("SELECT @@autocommit")
        eq(c.fetchone()[0], 0)
    a.close()


@case
def a_failed_statement_undoes_only_itself():
    c = connect()
    run(c, "CREATE TABLE t (id INT PRIMARY KEY)")
    run(c, "START TRANSACTION")
    run(c, "INSERT INTO t VALUES (1)")
    error(1062, run, c, "INSERT INTO t VALUES (2), (1)")
    run(c, "INSERT INTO t VALUES (3)")
    run(c, "COMMIT")
    eq(rows(c, "SELECT id FROM t ORDER BY id"), [(1,), (3,)])


@case
def start_transaction_and_ddl_commit_the_open_one():
    c = connect()
    run(c, "CREATE TABLE t (id INT PRIMARY KEY)")
    run(c, "BEGIN")
    run(c, "INSERT INTO t VALUES (1)")
    run(c, "START TRANSACTION")  # commits the insert
    run(c, "INSERT INTO t VALUES (2)")
    run(c, "ROLLBACK")
    eq(rows(connect(), "SELECT id FROM t"), [(1,)])


@case
def conflicting_writers_get_1213_and_retry():
    setup = connect()
    run(setup, "CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL)")
    run(setup, "INSERT INTO counter VALUES (1, 0)")
    a = connect(autocommit=False)
    b = connect(autocommit=False)
    run(a, "UPDATE counter SET n = n + 1 WHERE id = 1")
    run(b, "UPDATE counter SET n = n + 1 WHERE id = 1")
    a.commit()
    error(1213, b.commit)
    # The whole transaction was rolled back; the retry applies on the new value.
    run(b, "UPDATE counter SET n = n + 1 WHERE id = 1")
    b.commit()
    eq(one(setup, "SELECT n FROM counter"), 2)

    # Autocommit statements on one row from many clients all apply (no 1213 reaches them):
    # they wait for each other's row lock, as InnoDB's do.
    def bump():
        conn = connect()
        for _ in range(25):
            run(conn, "UPDATE counter SET n = n + 1 WHERE id = 1")
        conn.close()

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        eq(t.is_alive(), False, "an autocommit writer still running after 120 s")
    eq(one(setup, "SELECT n FROM counter"), 202)


@case
def isolation_levels():
    c = connect()
    run(c, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    eq(one(c, "SELECT @@transaction_isolation"), "READ-COMMITTED")
    run(c, "SET tx_isolation = 'SERIALIZABLE'")
    eq(one(c, "SELECT @@tx_isolation"), "SERIALIZABLE")
    error(1231, run, c, "SET transaction_isolation = 'SOMETIMES'")


main()
