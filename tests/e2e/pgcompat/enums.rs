//! Enum types: CREATE TYPE … AS ENUM, columns checked against the labels (22P02), casts,
//! ALTER TYPE ADD VALUE / RENAME TO, DROP TYPE refused while used, and the catalog psql reads
//! (`\dT`, `pg_enum`, `format_type`).

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, exec_count, expect_error};

#[tokio::test]
async fn enum_types() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')").await;
    expect_error(
        &c,
        "CREATE TYPE mood AS ENUM ('x')",
        &SqlState::DUPLICATE_OBJECT,
    )
    .await;
    exec(
        &c,
        "CREATE TABLE person (id INT PRIMARY KEY, feel mood NOT NULL DEFAULT 'ok')",
    )
    .await;
    exec_count(&c, "INSERT INTO person VALUES (1, 'happy'), (2, 'sad')", 2).await;
    exec_count(&c, "INSERT INTO person (id) VALUES (3)", 1).await;
    let err = expect_error(
        &c,
        "INSERT INTO person VALUES (4, 'angry')",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    assert_eq!(err, "invalid input value for enum mood: \"angry\"");
    expect_error(
        &c,
        "UPDATE person SET feel = 'meh' WHERE id = 1",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    check(
        &c,
        "SELECT id, feel FROM person ORDER BY id",
        "1|happy\n2|sad\n3|ok",
    )
    .await;
    check(&c, "SELECT id FROM person WHERE feel = 'sad'", "2").await;
    check(&c, "SELECT 'ok'::mood, CAST('sad' AS mood)", "ok|sad").await;
    expect_error(
        &c,
        "SELECT 'nope'::mood",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    if server.backend() == crate::harness::Backend::ThunderDb {
        // The internal check function refuses a bad call instead of failing the connection.
        assert!(
            c.simple_query("SELECT __thunder_enum_in('x')")
                .await
                .is_err()
        );
        check(&c, "SELECT 1", "1").await;
    }

    // New labels, in place.
    exec(&c, "ALTER TYPE mood ADD VALUE 'angry' AFTER 'sad'").await;
    exec(&c, "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'angry'").await;
    expect_error(
        &c,
        "ALTER TYPE mood ADD VALUE 'ok'",
        &SqlState::DUPLICATE_OBJECT,
    )
    .await;
    exec_count(&c, "INSERT INTO person VALUES (4, 'angry')", 1).await;
    check(
        &c,
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid \
         WHERE t.typname = 'mood' ORDER BY e.enumsortorder",
        "sad\nangry\nok\nhappy",
    )
    .await;
    check(
        &c,
        "SELECT format_type(a.atttypid, a.atttypmod), t.typtype FROM pg_attribute a \
         JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = 'person'::regclass AND a.attname = 'feel'",
        "mood|e",
    )
    .await;

    // DROP TYPE waits for its columns; RENAME keeps them.
    expect_error(
        &c,
        "DROP TYPE mood",
        &SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
    )
    .await;
    exec(&c, "ALTER TYPE mood RENAME TO feeling").await;
    exec_count(&c, "INSERT INTO person VALUES (5, 'ok')", 1).await;
    check(&c, "SELECT 'happy'::feeling", "happy").await;
    exec(&c, "DROP TABLE person").await;
    exec(&c, "DROP TYPE feeling").await;
    exec(&c, "DROP TYPE IF EXISTS feeling").await;
    expect_error(&c, "DROP TYPE feeling", &SqlState::UNDEFINED_OBJECT).await;
}
