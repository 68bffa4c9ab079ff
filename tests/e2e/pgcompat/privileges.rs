//! Privileges: a role reads and writes only what it owns or was granted (42501 otherwise),
//! GRANT/REVOKE on tables, views and sequences (PUBLIC, WITH GRANT OPTION), ALTER … OWNER
//! TO, views read with their owner's privileges, DROP ROLE refused while the role owns or
//! holds something (2BP01), and the catalog (`relacl`, `relowner`, `has_table_privilege`).

use tokio_postgres::error::SqlState;

use crate::harness::{TestServer, USER};
use crate::sql::{check, exec, exec_count, expect_error};

#[tokio::test]
async fn grants_owners_and_checks() {
    let server = TestServer::start();
    let admin = server.connect().await;
    exec(&admin, "CREATE ROLE alice LOGIN PASSWORD 'alice-pw'").await;
    exec(&admin, "CREATE ROLE bob LOGIN PASSWORD 'bob-pw'").await;
    exec(&admin, "CREATE TABLE docs (id INT PRIMARY KEY, body TEXT)").await;
    exec(&admin, "INSERT INTO docs VALUES (1, 'one')").await;
    exec(&admin, "CREATE TABLE notes (id SERIAL PRIMARY KEY, t TEXT)").await;
    exec(&admin, "ALTER TABLE notes OWNER TO alice").await;
    exec(&admin, "CREATE VIEW doc_ids AS SELECT id FROM docs").await;
    let alice = server.connect_as("alice", "alice-pw").await.expect("alice");
    let bob = server.connect_as("bob", "bob-pw").await.expect("bob");

    // Nothing granted: every use of docs is refused, and so is what only owners may do.
    let denied = &SqlState::INSUFFICIENT_PRIVILEGE;
    let err = expect_error(&alice, "SELECT * FROM docs", denied).await;
    assert_eq!(err, "permission denied for table docs");
    expect_error(&alice, "INSERT INTO docs VALUES (2, 'two')", denied).await;
    expect_error(&alice, "UPDATE docs SET body = 'x'", denied).await;
    expect_error(&alice, "DELETE FROM docs WHERE id = 1", denied).await;
    expect_error(&alice, "TRUNCATE docs", denied).await;
    expect_error(&alice, "SELECT * FROM (SELECT id FROM docs) s", denied).await;
    expect_error(&alice, "SELECT 1 WHERE EXISTS (SELECT 1 FROM docs)", denied).await;
    let err = expect_error(&alice, "DROP TABLE docs", denied).await;
    assert_eq!(err, "must be owner of table docs");
    expect_error(&alice, "ALTER TABLE docs ADD COLUMN x INT", denied).await;
    expect_error(&alice, "CREATE INDEX ON docs (body)", denied).await;
    expect_error(&alice, "GRANT SELECT ON docs TO alice", denied).await;
    exec(&admin, "CREATE INDEX docs_body ON docs (body)").await;
    let err = expect_error(&alice, "DROP INDEX docs_body", denied).await;
    assert_eq!(err, "must be owner of index docs_body");
    let err = expect_error(&alice, "SELECT * FROM doc_ids", denied).await;
    assert_eq!(err, "permission denied for view doc_ids");

    // What is granted works, and only that.
    exec(&admin, "GRANT SELECT, INSERT ON docs TO alice").await;
    let err = expect_error(&alice, "SELECT * FROM docs FOR UPDATE", denied).await;
    assert_eq!(err, "permission denied for table docs");
    check(&alice, "SELECT body FROM docs ORDER BY id", "one").await;
    exec_count(&alice, "INSERT INTO docs VALUES (2, 'two')", 1).await;
    expect_error(&alice, "UPDATE docs SET body = 'x' WHERE id = 1", denied).await;
    expect_error(&bob, "SELECT * FROM docs", denied).await;
    check(
        &admin,
        "SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 'docs'",
        &format!("{USER}=arwdDxt/{USER},alice=ar/{USER}"),
    )
    .await;
    check(
        &admin,
        "SELECT has_table_privilege('alice', 'docs', 'SELECT'), \
         has_table_privilege('alice', 'docs', 'UPDATE'), \
         has_table_privilege('bob', 'docs', 'select, insert'), \
         has_table_privilege('docs', 'DELETE')",
        "t|f|f|t",
    )
    .await;
    check(&alice, "SELECT has_table_privilege('docs', 'INSERT')", "t").await;

    // The owner of notes is alice: she uses it, grants on it, and drops nothing of others.
    check(
        &admin,
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname IN ('notes', 'docs') ORDER BY relname",
        &format!("{USER}\nalice"),
    )
    .await;
    exec_count(&alice, "INSERT INTO notes (t) VALUES ('mine')", 1).await;
    expect_error(&bob, "SELECT * FROM notes", denied).await;
    expect_error(&bob, "GRANT SELECT ON notes TO bob", denied).await;
    exec(&alice, "GRANT SELECT ON notes TO bob").await;
    check(&bob, "SELECT t FROM notes", "mine").await;
    expect_error(&bob, "DELETE FROM notes", denied).await;
    exec(&alice, "REVOKE SELECT ON notes FROM bob").await;
    expect_error(&bob, "SELECT t FROM notes", denied).await;
    // WITH GRANT OPTION lets the grantee pass the privilege on.
    exec(&alice, "GRANT SELECT ON notes TO bob WITH GRANT OPTION").await;
    exec(&bob, "GRANT SELECT ON notes TO PUBLIC").await;
    // The owner always holds the options: giving them to her is no cycle.
    exec(&bob, "GRANT SELECT ON notes TO alice WITH GRANT OPTION").await;
    // Privileges held without the option are not passed on (PostgreSQL warns).
    exec(&bob, "GRANT DELETE ON notes TO PUBLIC").await;
    expect_error(&bob, "DELETE FROM notes", denied).await;
    exec(&alice, "GRANT SELECT ON docs TO bob").await;
    expect_error(&bob, "SELECT * FROM docs", denied).await;
    let err = expect_error(
        &admin,
        "GRANT SELECT ON docs TO PUBLIC WITH GRANT OPTION",
        &SqlState::INVALID_GRANT_OPERATION,
    )
    .await;
    assert_eq!(err, "grant options can only be granted to roles");
    // What bob passed on rests on his grant option: revoking it needs CASCADE.
    let err = expect_error(
        &alice,
        "REVOKE SELECT ON notes FROM bob",
        &SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
    )
    .await;
    assert_eq!(err, "dependent privileges exist");
    exec(&alice, "REVOKE SELECT ON notes FROM bob CASCADE").await;
    expect_error(&bob, "SELECT t FROM notes", denied).await;
    // Sequences: nextval needs USAGE or UPDATE.
    let err = expect_error(&bob, "SELECT nextval('notes_id_seq')", denied).await;
    assert_eq!(err, "permission denied for sequence notes_id_seq");
    exec(&alice, "GRANT USAGE ON SEQUENCE notes_id_seq TO bob").await;
    exec(&bob, "SELECT nextval('notes_id_seq')").await;
    expect_error(&bob, "SELECT setval('notes_id_seq', 1)", denied).await;
    expect_error(&bob, "SELECT setval('notes_id_seq'::regclass, 1)", denied).await;
    check(
        &admin,
        "SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 'docs'",
        &format!("{USER}=arwdDxt/{USER},alice=ar/{USER}"),
    )
    .await;
    // The table's owner also owns its SERIAL sequence.
    check(
        &admin,
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'notes_id_seq'",
        "alice",
    )
    .await;

    // A view reads with its owner's privileges: SELECT on the view is enough.
    exec(&admin, "GRANT SELECT ON doc_ids TO bob").await;
    check(&bob, "SELECT id FROM doc_ids ORDER BY id", "1\n2").await;
    expect_error(&bob, "SELECT id FROM docs", denied).await;
    // PUBLIC covers every role.
    exec(
        &admin,
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC",
    )
    .await;
    check(&bob, "SELECT count(*) FROM docs", "2").await;
    exec(&admin, "REVOKE ALL ON docs FROM PUBLIC").await;
    expect_error(&bob, "SELECT count(*) FROM docs", denied).await;
    // Nothing reads a table around the check: a CTE of the same name, RETURNING, a view
    // replaced by someone else, DEFAULT and CHECK expressions (no sub-queries there at all).
    exec(&admin, "CREATE TABLE vault (secret TEXT)").await;
    exec(&admin, "INSERT INTO vault VALUES ('s3cr3t')").await;
    expect_error(
        &bob,
        "WITH vault AS (SELECT 1) SELECT * FROM public.vault",
        denied,
    )
    .await;
    expect_error(
        &bob,
        "WITH v AS (SELECT * FROM vault) SELECT * FROM v",
        denied,
    )
    .await;
    expect_error(
        &alice,
        "INSERT INTO notes (t) VALUES ('x') RETURNING (SELECT max(secret) FROM vault)",
        denied,
    )
    .await;
    expect_error(
        &alice,
        "UPDATE notes SET t = (SELECT max(secret) FROM vault)",
        denied,
    )
    .await;
    // (PostgreSQL 15 refuses it earlier, for want of CREATE on schema public.)
    expect_error(
        &bob,
        "CREATE OR REPLACE VIEW doc_ids AS SELECT 1 AS id",
        denied,
    )
    .await;
    let err = expect_error(
        &admin,
        "CREATE TABLE leak (a TEXT DEFAULT (SELECT max(secret) FROM vault))",
        &SqlState::FEATURE_NOT_SUPPORTED,
    )
    .await;
    assert_eq!(err, "cannot use subquery in DEFAULT expression");
    expect_error(
        &admin,
        "CREATE TABLE leak (a TEXT CHECK (a IN (SELECT secret FROM vault)))",
        &SqlState::FEATURE_NOT_SUPPORTED,
    )
    .await;
    exec(&admin, "CREATE SCHEMA app").await;
    exec(&admin, "CREATE TABLE app.items (id INT)").await;
    let err = expect_error(&bob, "DROP SCHEMA app CASCADE", denied).await;
    assert_eq!(err, "must be owner of schema app");
    check(&admin, "SELECT count(*) FROM app.items", "0").await;
    // COPY needs the same privileges as the statements it stands for.
    assert!(
        bob.copy_out("COPY docs TO STDOUT").await.is_err(),
        "COPY TO without SELECT"
    );

    // A role that owns or holds something cannot be dropped.
    let err = expect_error(
        &admin,
        "DROP ROLE alice",
        &SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
    )
    .await;
    assert_eq!(
        err,
        "role \"alice\" cannot be dropped because some objects depend on it"
    );
    exec(&admin, "DROP TABLE notes").await;
    exec(&admin, "REVOKE ALL ON docs FROM alice").await;
    exec(&admin, "DROP ROLE alice").await;
    // Bad requests.
    expect_error(
        &admin,
        "GRANT SELECT ON nope TO bob",
        &SqlState::UNDEFINED_TABLE,
    )
    .await;
    expect_error(
        &admin,
        "GRANT SELECT ON docs TO nobody",
        &SqlState::UNDEFINED_OBJECT,
    )
    .await;
}
