//! ALTER TABLE: columns added (with defaults filled in), dropped and renamed, NOT NULL and
//! defaults changed, constraints added against existing rows, a primary key added to a table
//! that had none (its rows move to the new key), and TRUNCATE, each as PostgreSQL answers.

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, exec_count, expect_error};

#[tokio::test]
async fn alter_table_changes_definitions_and_rows() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE t (a INT NOT NULL, b TEXT) WITH (fillfactor = 90)",
    )
    .await;
    exec_count(&c, "INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, 'z')", 3).await;

    // A primary key on a table without one: rows move to their key, lookups use it.
    exec(&c, "ALTER TABLE t ADD PRIMARY KEY (a)").await;
    check(&c, "SELECT b FROM t WHERE a = 3", "z").await;
    expect_error(
        &c,
        "INSERT INTO t VALUES (1, 'again')",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    let msg = expect_error(
        &c,
        "ALTER TABLE t ADD PRIMARY KEY (b)",
        &SqlState::from_code("42P16"),
    )
    .await;
    assert_eq!(msg, "multiple primary keys for table \"t\" are not allowed");

    // New columns: a default fills existing rows; NOT NULL needs a value everywhere.
    exec(
        &c,
        "ALTER TABLE t ADD COLUMN c INT DEFAULT 7, ADD COLUMN d TEXT",
    )
    .await;
    check(
        &c,
        "SELECT a, c, d FROM t ORDER BY a",
        "1|7|NULL\n2|7|NULL\n3|7|NULL",
    )
    .await;
    let msg = expect_error(
        &c,
        "ALTER TABLE t ALTER COLUMN d SET NOT NULL",
        &SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    assert_eq!(msg, "column \"d\" of relation \"t\" contains null values");
    exec(&c, "UPDATE t SET d = 'd' || a").await;
    exec(&c, "ALTER TABLE t ALTER COLUMN d SET NOT NULL").await;
    expect_error(
        &c,
        "INSERT INTO t (a) VALUES (4)",
        &SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    exec(
        &c,
        "ALTER TABLE t ALTER COLUMN d SET DEFAULT 'dflt', ALTER COLUMN c DROP DEFAULT",
    )
    .await;
    exec(&c, "INSERT INTO t (a) VALUES (4)").await;
    check(&c, "SELECT c, d FROM t WHERE a = 4", "NULL|dflt").await;
    expect_error(
        &c,
        "ALTER TABLE t ADD COLUMN c INT",
        &SqlState::DUPLICATE_COLUMN,
    )
    .await;
    exec(&c, "ALTER TABLE t ADD COLUMN IF NOT EXISTS c INT").await;

    // Constraints are checked against the rows already there.
    let msg = expect_error(
        &c,
        "ALTER TABLE t ADD CONSTRAINT big CHECK (a > 2)",
        &SqlState::CHECK_VIOLATION,
    )
    .await;
    assert_eq!(
        msg,
        "check constraint \"big\" of relation \"t\" is violated by some row"
    );
    exec(&c, "ALTER TABLE t ADD CONSTRAINT pos CHECK (a > 0)").await;
    expect_error(
        &c,
        "INSERT INTO t (a) VALUES (-1)",
        &SqlState::CHECK_VIOLATION,
    )
    .await;
    exec(&c, "UPDATE t SET c = 1").await;
    expect_error(
        &c,
        "ALTER TABLE t ADD CONSTRAINT c_u UNIQUE (c)",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    exec(&c, "ALTER TABLE t ADD CONSTRAINT d_u UNIQUE (d)").await;
    expect_error(
        &c,
        "INSERT INTO t (a, d) VALUES (9, 'd1')",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;

    // Renames: a check follows its column; the table keeps its rows under the new name.
    exec(&c, "ALTER TABLE t RENAME COLUMN a TO id").await;
    expect_error(
        &c,
        "INSERT INTO t (id) VALUES (-5)",
        &SqlState::CHECK_VIOLATION,
    )
    .await;
    exec(&c, "ALTER TABLE t RENAME TO renamed").await;
    expect_error(&c, "SELECT * FROM t", &SqlState::UNDEFINED_TABLE).await;
    check(&c, "SELECT count(*) FROM renamed", "4").await;

    // Dropping a column drops the constraints and indexes on it.
    exec(
        &c,
        "ALTER TABLE renamed DROP COLUMN d, DROP COLUMN IF EXISTS nope",
    )
    .await;
    check(
        &c,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'renamed' ORDER BY ordinal_position",
        "id\nb\nc",
    )
    .await;
    expect_error(
        &c,
        "ALTER TABLE renamed DROP COLUMN nope",
        &SqlState::UNDEFINED_COLUMN,
    )
    .await;
    exec(&c, "ALTER TABLE renamed DROP CONSTRAINT pos").await;
    exec(&c, "INSERT INTO renamed (id) VALUES (-1)").await;
    expect_error(
        &c,
        "ALTER TABLE nope ADD COLUMN x INT",
        &SqlState::UNDEFINED_TABLE,
    )
    .await;
    exec(&c, "ALTER TABLE IF EXISTS nope ADD COLUMN x INT").await;

    // DDL is transactional: a rolled-back ALTER leaves nothing behind.
    exec(&c, "BEGIN").await;
    exec(&c, "ALTER TABLE renamed ADD COLUMN gone INT DEFAULT 1").await;
    exec(&c, "TRUNCATE renamed").await;
    check(&c, "SELECT count(*) FROM renamed", "0").await;
    exec(&c, "ROLLBACK").await;
    check(&c, "SELECT count(*) FROM renamed", "5").await;
    expect_error(&c, "SELECT gone FROM renamed", &SqlState::UNDEFINED_COLUMN).await;
    exec(&c, "TRUNCATE TABLE renamed").await;
    check(&c, "SELECT count(*) FROM renamed", "0").await;
    exec(&c, "INSERT INTO renamed (id) VALUES (1)").await;
    check(&c, "SELECT id FROM renamed", "1").await;
    expect_error(&c, "VACUUM nope", &SqlState::UNDEFINED_TABLE).await;
    exec(&c, "VACUUM ANALYZE renamed").await;
    exec(&c, "ANALYZE renamed (id, c)").await;
    exec(&c, "BEGIN").await;
    expect_error(&c, "VACUUM renamed", &SqlState::ACTIVE_SQL_TRANSACTION).await;
    exec(&c, "ROLLBACK").await;
}

/// A writer that read the table's definition before a concurrent TRUNCATE cannot commit rows
/// into the storage the TRUNCATE left behind.
#[tokio::test]
async fn writes_racing_a_truncate_fail_to_commit() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    exec(&a, "CREATE TABLE r (id INT PRIMARY KEY)").await;
    exec(&a, "BEGIN").await;
    exec_count(&a, "INSERT INTO r VALUES (1)", 1).await;
    exec(&b, "TRUNCATE r").await;
    expect_error(&a, "COMMIT", &SqlState::T_R_SERIALIZATION_FAILURE).await;
    check(&b, "SELECT count(*) FROM r", "0").await;
}

/// A row committed while ALTER TABLE rebuilt the table from its snapshot would escape the
/// rebuild: the ALTER fails instead (40001) and the row stays.
#[tokio::test]
async fn a_rebuild_racing_an_insert_fails_to_commit() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    exec(&a, "CREATE TABLE rb (id INT NOT NULL, v INT)").await;
    exec_count(&a, "INSERT INTO rb VALUES (1, 1), (2, 2)", 2).await;
    exec(&b, "BEGIN").await;
    exec(&b, "ALTER TABLE rb ADD PRIMARY KEY (id)").await;
    exec_count(&a, "INSERT INTO rb VALUES (3, 3)", 1).await;
    expect_error(&b, "COMMIT", &SqlState::T_R_SERIALIZATION_FAILURE).await;
    check(&a, "SELECT id FROM rb ORDER BY id", "1\n2\n3").await;
    // Retried, it sees the new row.
    exec(&b, "ALTER TABLE rb ADD PRIMARY KEY (id)").await;
    check(&a, "SELECT v FROM rb WHERE id = 3", "3").await;
}

#[tokio::test]
async fn alter_column_type_converts_every_row() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE items (id INT PRIMARY KEY, qty INT, note VARCHAR(5), code TEXT)",
    )
    .await;
    exec(&c, "CREATE INDEX items_code ON items (code)").await;
    exec_count(
        &c,
        "INSERT INTO items VALUES (1, 10, 'abc', '7'), (2, NULL, 'x', '8')",
        2,
    )
    .await;
    exec(&c, "ALTER TABLE items ALTER COLUMN qty TYPE BIGINT").await;
    exec(
        &c,
        "ALTER TABLE items ALTER COLUMN qty SET DATA TYPE NUMERIC(10,2)",
    )
    .await;
    exec(&c, "ALTER TABLE items ALTER COLUMN note TYPE TEXT").await;
    check(
        &c,
        "SELECT id, qty, note FROM items ORDER BY id",
        "1|10.00|abc\n2|NULL|x",
    )
    .await;
    // USING, on an indexed column: the index answers with the new type.
    exec(
        &c,
        "ALTER TABLE items ALTER COLUMN code TYPE INT USING code::int",
    )
    .await;
    check(&c, "SELECT id FROM items WHERE code = 8", "2").await;
    // The primary key itself.
    exec(&c, "ALTER TABLE items ALTER COLUMN id TYPE BIGINT").await;
    check(&c, "SELECT id, code FROM items WHERE id = 2", "2|8").await;
    exec_count(&c, "INSERT INTO items VALUES (3, 1.5, 'long text', 9)", 1).await;
    expect_error(
        &c,
        "INSERT INTO items VALUES (3, 1, 'dup', 1)",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    check(
        &c,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'items'::regclass AND attnum > 0 ORDER BY attnum",
        "bigint\nnumeric(10,2)\ntext\ninteger",
    )
    .await;
    // Values that do not convert leave the table as it was.
    expect_error(
        &c,
        "ALTER TABLE items ALTER COLUMN note TYPE VARCHAR(3)",
        &SqlState::STRING_DATA_RIGHT_TRUNCATION,
    )
    .await;
    expect_error(
        &c,
        "ALTER TABLE items ALTER COLUMN note TYPE INT USING note::int",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    check(
        &c,
        "SELECT id, qty, note, code FROM items ORDER BY id",
        "1|10.00|abc|7\n2|NULL|x|8\n3|1.50|long text|9",
    )
    .await;
}
