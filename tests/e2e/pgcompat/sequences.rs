//! Sequences: CREATE SEQUENCE with its options in any order, nextval/currval/setval/lastval
//! (outside transactions: a rollback does not give values back), SERIAL and identity columns,
//! TRUNCATE … RESTART IDENTITY, and what owns what when tables and sequences are dropped.

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, expect_error, query_value};

#[tokio::test]
async fn sequences_serial_and_identity_columns() {
    let server = TestServer::start();
    let c = server.connect().await;

    exec(&c, "CREATE SEQUENCE s").await;
    check(&c, "SELECT nextval('s')", "1").await;
    check(&c, "SELECT currval('s'), lastval()", "1|1").await;
    check(&c, "SELECT setval('s', 100)", "100").await;
    check(&c, "SELECT nextval('s')", "101").await;
    check(&c, "SELECT setval('s', 5, false), nextval('s')", "5|5").await;
    // lastval is the current value of the sequence nextval touched last.
    check(&c, "SELECT setval('s', 40), lastval()", "40|40").await;
    check(&c, "SELECT nextval('s')", "41").await;
    // Values are not given back by a rollback.
    exec(&c, "BEGIN").await;
    check(&c, "SELECT nextval('s')", "42").await;
    exec(&c, "ROLLBACK").await;
    check(&c, "SELECT nextval('s')", "43").await;
    // A descending, cycling sequence with its options in PostgreSQL's free order.
    exec(
        &c,
        "CREATE SEQUENCE down START 4 MAXVALUE 4 INCREMENT BY -2 MINVALUE 0 CYCLE",
    )
    .await;
    check(
        &c,
        "SELECT nextval('down') FROM generate_series(1, 4)",
        "4\n2\n0\n4",
    )
    .await;
    exec(&c, "CREATE SEQUENCE small AS smallint MAXVALUE 2").await;
    check(
        &c,
        "SELECT nextval('small') FROM generate_series(1, 2)",
        "1\n2",
    )
    .await;
    let msg = expect_error(&c, "SELECT nextval('small')", &SqlState::from_code("2200H")).await;
    assert_eq!(
        msg,
        "nextval: reached maximum value of sequence \"small\" (2)"
    );
    expect_error(
        &c,
        "SELECT setval('small', 3)",
        &SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
    let fresh = server.connect().await;
    let msg = expect_error(&fresh, "SELECT currval('s')", &SqlState::from_code("55000")).await;
    assert_eq!(
        msg,
        "currval of sequence \"s\" is not yet defined in this session"
    );
    expect_error(&c, "SELECT nextval('nope')", &SqlState::UNDEFINED_TABLE).await;
    expect_error(&c, "CREATE SEQUENCE s", &SqlState::DUPLICATE_TABLE).await;
    exec(&c, "CREATE SEQUENCE IF NOT EXISTS s").await;
    expect_error(
        &c,
        "CREATE SEQUENCE bad INCREMENT 0",
        &SqlState::INVALID_PARAMETER_VALUE,
    )
    .await;

    // SERIAL: an owned sequence and a default PostgreSQL prints the same way.
    exec(&c, "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT)").await;
    check(
        &c,
        "INSERT INTO items (name) VALUES ('a'), ('b') RETURNING id",
        "1\n2",
    )
    .await;
    check(
        &c,
        "INSERT INTO items VALUES (DEFAULT, 'c'), (DEFAULT, 'd') RETURNING id",
        "3\n4",
    )
    .await;
    assert_eq!(
        query_value(
            &c,
            "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid WHERE c.relname = 'items'"
        )
        .await,
        "nextval('items_id_seq'::regclass)"
    );
    check(
        &c,
        "SELECT relname FROM pg_class WHERE relkind = 'S' ORDER BY 1",
        "down\nitems_id_seq\ns\nsmall",
    )
    .await;
    let msg = expect_error(
        &c,
        "DROP SEQUENCE items_id_seq",
        &SqlState::from_code("2BP01"),
    )
    .await;
    assert_eq!(
        msg,
        "cannot drop sequence items_id_seq because other objects depend on it"
    );
    exec(&c, "TRUNCATE items RESTART IDENTITY").await;
    check(
        &c,
        "INSERT INTO items (name) VALUES ('again') RETURNING id",
        "1",
    )
    .await;
    exec(&c, "ALTER TABLE items RENAME TO goods").await;
    exec(&c, "DROP TABLE goods").await;
    expect_error(
        &c,
        "SELECT nextval('items_id_seq')",
        &SqlState::UNDEFINED_TABLE,
    )
    .await;

    // Identity columns.
    exec(
        &c,
        "CREATE TABLE always (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT)",
    )
    .await;
    check(&c, "INSERT INTO always (v) VALUES ('x') RETURNING id", "1").await;
    check(
        &c,
        "INSERT INTO always (id, v) VALUES (DEFAULT, 'y') RETURNING id",
        "2",
    )
    .await;
    let msg = expect_error(
        &c,
        "INSERT INTO always (id, v) VALUES (7, 'z')",
        &SqlState::from_code("428C9"),
    )
    .await;
    assert_eq!(msg, "cannot insert a non-DEFAULT value into column \"id\"");
    // The identity follows its column through a rename.
    exec(&c, "ALTER TABLE always RENAME COLUMN id TO key").await;
    expect_error(
        &c,
        "INSERT INTO always (key, v) VALUES (7, 'z')",
        &SqlState::from_code("428C9"),
    )
    .await;
    check(
        &c,
        "SELECT pg_get_serial_sequence('always', 'key')",
        "public.always_id_seq",
    )
    .await;
    exec(
        &c,
        "CREATE TABLE bydefault (id INT GENERATED BY DEFAULT AS IDENTITY (INCREMENT BY 10 START WITH 10), v TEXT)",
    )
    .await;
    check(
        &c,
        "INSERT INTO bydefault (v) VALUES ('a'), ('b') RETURNING id",
        "10\n20",
    )
    .await;
    exec(&c, "INSERT INTO bydefault VALUES (1, 'explicit')").await;
    // A serial column added to a table with rows numbers them.
    exec(&c, "ALTER TABLE bydefault ADD COLUMN n BIGSERIAL").await;
    check(
        &c,
        "SELECT count(DISTINCT n), min(n), max(n) FROM bydefault",
        "3|1|3",
    )
    .await;
    // Random UUID keys, the other common generated key.
    exec(
        &c,
        "CREATE TABLE tokens (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), n INT)",
    )
    .await;
    exec(&c, "INSERT INTO tokens (n) VALUES (1), (2), (3)").await;
    check(
        &c,
        "SELECT count(DISTINCT id), min(length(id::text)) FROM tokens",
        "3|36",
    )
    .await;
    exec(&c, "ALTER TABLE bydefault ADD COLUMN m INT CHECK (m > 0)").await;
    expect_error(
        &c,
        "INSERT INTO bydefault (v, m) VALUES ('neg', -1)",
        &SqlState::CHECK_VIOLATION,
    )
    .await;
}
