//! FOREIGN KEY constraints as PostgreSQL enforces them: referencing rows need their referenced
//! row (23503), NO ACTION / RESTRICT refuse deletes and key changes, CASCADE and SET NULL act
//! on the referencing rows, existing rows are checked by ALTER TABLE ADD CONSTRAINT, and a
//! concurrent delete of a referenced row cannot slip past an insert.

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, exec_count, expect_error};

#[tokio::test]
async fn foreign_keys_are_enforced() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE customers (id INT PRIMARY KEY, email TEXT UNIQUE)",
    )
    .await;
    exec(
        &c,
        "CREATE TABLE orders (id SERIAL PRIMARY KEY, customer_id BIGINT REFERENCES customers ON DELETE CASCADE, note TEXT)",
    )
    .await;
    exec(
        &c,
        "CREATE TABLE notes (id INT PRIMARY KEY, order_id INT, author TEXT, \
         CONSTRAINT notes_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE SET NULL, \
         FOREIGN KEY (author) REFERENCES customers (email))",
    )
    .await;
    exec(&c, "INSERT INTO customers VALUES (1, 'a@x'), (2, 'b@x')").await;
    exec(&c, "INSERT INTO orders (customer_id, note) VALUES (1, 'o1'), (1, 'o2'), (2, 'o3'), (NULL, 'none')").await;
    let msg = expect_error(
        &c,
        "INSERT INTO orders (customer_id) VALUES (9)",
        &SqlState::FOREIGN_KEY_VIOLATION,
    )
    .await;
    assert_eq!(
        msg,
        "insert or update on table \"orders\" violates foreign key constraint \"orders_customer_id_fkey\""
    );
    expect_error(
        &c,
        "UPDATE orders SET customer_id = 7 WHERE id = 1",
        &SqlState::FOREIGN_KEY_VIOLATION,
    )
    .await;
    exec(&c, "INSERT INTO notes VALUES (1, 1, 'a@x'), (2, 3, NULL)").await;
    expect_error(
        &c,
        "INSERT INTO notes VALUES (3, 1, 'zz@x')",
        &SqlState::FOREIGN_KEY_VIOLATION,
    )
    .await;
    // NO ACTION: a referenced email cannot change or go while a note names it.
    let msg = expect_error(
        &c,
        "UPDATE customers SET email = 'new@x' WHERE id = 1",
        &SqlState::FOREIGN_KEY_VIOLATION,
    )
    .await;
    assert_eq!(
        msg,
        "update or delete on table \"customers\" violates foreign key constraint \"notes_author_fkey\" on table \"notes\""
    );
    exec_count(&c, "UPDATE customers SET email = 'b2@x' WHERE id = 2", 1).await;
    // CASCADE through orders, then SET NULL on the notes of the deleted orders.
    exec(&c, "DELETE FROM notes WHERE author = 'a@x'").await;
    exec(&c, "INSERT INTO notes VALUES (4, 2, NULL)").await;
    exec_count(&c, "DELETE FROM customers WHERE id = 1", 1).await;
    check(&c, "SELECT note FROM orders ORDER BY id", "o3\nnone").await;
    check(
        &c,
        "SELECT id, order_id FROM notes ORDER BY id",
        "2|3\n4|NULL",
    )
    .await;
    // Dropping or truncating a referenced table is refused.
    expect_error(
        &c,
        "DROP TABLE customers",
        &SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
    )
    .await;
    expect_error(&c, "TRUNCATE customers", &SqlState::FEATURE_NOT_SUPPORTED).await;
    exec(&c, "TRUNCATE notes").await;
    // ALTER TABLE ADD CONSTRAINT checks the rows already there; the catalog shows it.
    exec(&c, "CREATE TABLE lines (order_id INT, qty INT)").await;
    exec(&c, "INSERT INTO lines VALUES (3, 1), (42, 1)").await;
    expect_error(
        &c,
        "ALTER TABLE lines ADD CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES orders (id)",
        &SqlState::FOREIGN_KEY_VIOLATION,
    )
    .await;
    exec(&c, "DELETE FROM lines WHERE order_id = 42").await;
    exec(
        &c,
        "ALTER TABLE lines ADD CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE RESTRICT",
    )
    .await;
    check(
        &c,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' ORDER BY 1",
        "lines_order|FOREIGN KEY (order_id) REFERENCES orders(id) ON DELETE RESTRICT\n\
         notes_author_fkey|FOREIGN KEY (author) REFERENCES customers(email)\n\
         notes_order|FOREIGN KEY (order_id) REFERENCES orders(id) ON DELETE SET NULL\n\
         orders_customer_id_fkey|FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE",
    )
    .await;
    expect_error(
        &c,
        "DELETE FROM orders WHERE note = 'o3'",
        &SqlState::FOREIGN_KEY_VIOLATION,
    )
    .await;
    exec(&c, "ALTER TABLE lines DROP CONSTRAINT lines_order").await;
    exec_count(&c, "DELETE FROM orders WHERE note = 'o3'", 1).await;
    // Bad definitions.
    expect_error(
        &c,
        "CREATE TABLE bad (x INT REFERENCES orders (note))",
        &SqlState::INVALID_FOREIGN_KEY,
    )
    .await;
    expect_error(
        &c,
        "CREATE TABLE bad (x INT REFERENCES nope)",
        &SqlState::UNDEFINED_TABLE,
    )
    .await;
}

/// An insert that found its referenced row and a delete of that row, concurrently: one of
/// the two commits fails, so no orphan is ever committed.
#[tokio::test]
async fn a_concurrent_delete_cannot_orphan_a_row() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    exec(&a, "CREATE TABLE p (id INT PRIMARY KEY)").await;
    exec(
        &a,
        "CREATE TABLE k (id INT PRIMARY KEY, p_id INT REFERENCES p)",
    )
    .await;
    exec(&a, "INSERT INTO p VALUES (1)").await;
    exec(&a, "BEGIN").await;
    exec(&a, "INSERT INTO k VALUES (1, 1)").await;
    exec_count(&b, "DELETE FROM p WHERE id = 1", 1).await;
    expect_error(&a, "COMMIT", &SqlState::T_R_SERIALIZATION_FAILURE).await;
    // And the other way round: the delete that did not see the new row fails instead.
    exec(&a, "INSERT INTO p VALUES (2)").await;
    exec(&b, "BEGIN").await;
    exec_count(&b, "DELETE FROM p WHERE id = 2", 1).await;
    exec(&a, "INSERT INTO k VALUES (2, 2)").await;
    expect_error(&b, "COMMIT", &SqlState::T_R_SERIALIZATION_FAILURE).await;
    check(
        &a,
        "SELECT k.id, p.id FROM k JOIN p ON p.id = k.p_id",
        "2|2",
    )
    .await;
}

/// psql's `\d` lists a table's foreign keys and the ones that reference it, as PostgreSQL's.
#[test]
fn psql_describes_foreign_keys() {
    use crate::harness::{PASSWORD, USER, run_child, skip};
    use std::process::Command;
    if Command::new("psql").arg("--version").output().is_err() {
        skip(
            "pgcompat::foreign_keys::psql_describes_foreign_keys",
            "psql is not installed (Debian postgresql-client)",
        );
        return;
    }
    let server = TestServer::start();
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-h", server.host(), "-p", &server.port().to_string()])
        .args(["-U", USER, "-d", "thunderdb"])
        .env("PGPASSWORD", PASSWORD);
    let script = "CREATE TABLE customers (id INT PRIMARY KEY);\n\
                  CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT REFERENCES customers ON DELETE CASCADE);\n\
                  \\d orders\n\\d customers\n";
    let run = run_child(
        &mut cmd,
        script.as_bytes(),
        std::time::Duration::from_secs(60),
        "psql",
    );
    for line in [
        "Foreign-key constraints:",
        "    \"orders_customer_id_fkey\" FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE",
        "Referenced by:",
        "    TABLE \"orders\" CONSTRAINT \"orders_customer_id_fkey\" FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "missing {line:?}:\n{}",
            run.describe()
        );
    }
    assert!(run.stderr.is_empty(), "{}", run.describe());
}

/// Rows that reference rows of the same statement, a long self-referencing CASCADE chain, and
/// keys a foreign key still needs.
#[tokio::test]
async fn self_references_chains_and_needed_keys() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE node (id INT PRIMARY KEY, parent INT REFERENCES node ON DELETE CASCADE, code INT UNIQUE)",
    )
    .await;
    // A row may reference itself, or a row inserted before it by the same statement.
    exec(&c, "INSERT INTO node VALUES (1, 1, 10)").await;
    exec(&c, "INSERT INTO node VALUES (2, NULL, 20), (3, 2, 30)").await;
    let chain: Vec<String> = (4..=100)
        .map(|i| format!("({i}, {}, NULL)", i - 1))
        .collect();
    exec(&c, &format!("INSERT INTO node VALUES {}", chain.join(", "))).await;
    exec_count(&c, "DELETE FROM node WHERE id = 2", 1).await;
    check(&c, "SELECT count(*) FROM node", "1").await;
    // A unique key that a foreign key references cannot go.
    exec(&c, "CREATE TABLE tag (code INT REFERENCES node (code))").await;
    expect_error(
        &c,
        "ALTER TABLE node DROP CONSTRAINT node_code_key",
        &SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
    )
    .await;
    expect_error(
        &c,
        "ALTER TABLE node DROP COLUMN code",
        &SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
    )
    .await;
    exec(&c, "DROP TABLE tag").await;
    exec(&c, "ALTER TABLE node DROP CONSTRAINT node_code_key").await;
}
