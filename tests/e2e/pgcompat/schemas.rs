//! CREATE SCHEMA / DROP SCHEMA and search_path: qualified names everywhere a table is named,
//! unqualified names found through the path in order (shadowing), objects created in the
//! first schema of the path, the catalog (pg_namespace, pg_tables, regclass,
//! pg_table_is_visible, current_schema) and PostgreSQL's errors.

use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, exec_count, expect_error};

#[tokio::test]
async fn schemas_and_search_path() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE SCHEMA app").await;
    exec(&c, "CREATE SCHEMA IF NOT EXISTS app").await;
    expect_error(&c, "CREATE SCHEMA app", &SqlState::DUPLICATE_SCHEMA).await;
    expect_error(&c, "CREATE SCHEMA pg_mine", &SqlState::RESERVED_NAME).await;

    // The same names in two schemas, with their keys and sequences apart.
    exec(
        &c,
        "CREATE TABLE app.users (id SERIAL PRIMARY KEY, name TEXT UNIQUE)",
    )
    .await;
    exec(
        &c,
        "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT UNIQUE)",
    )
    .await;
    exec(&c, "CREATE INDEX by_name ON app.users (name)").await;
    exec_count(
        &c,
        "INSERT INTO app.users (name) VALUES ('ann'), ('bob')",
        2,
    )
    .await;
    exec_count(&c, "INSERT INTO public.users (name) VALUES ('pub')", 1).await;
    check(
        &c,
        "SELECT id, name FROM app.users ORDER BY id",
        "1|ann\n2|bob",
    )
    .await;
    check(&c, "SELECT id, name FROM users", "1|pub").await;
    check(&c, "SELECT u.name FROM app.users u WHERE u.id = 2", "bob").await;
    // Through the extended protocol (Parse/Bind), as drivers send every statement.
    let rows = c
        .query("SELECT name FROM app.users WHERE id = $1", &[&2i32])
        .await
        .expect("prepared query on a schema's table");
    assert_eq!(rows[0].get::<_, String>(0), "bob");
    check(&c, "SELECT users.name FROM app.users WHERE id = 1", "ann").await;
    exec_count(&c, "UPDATE app.users SET name = 'bo' WHERE id = 2", 1).await;
    exec_count(&c, "DELETE FROM app.users WHERE name = 'ann'", 1).await;
    check(&c, "SELECT id, name FROM app.users", "2|bo").await;
    let err = expect_error(
        &c,
        "INSERT INTO app.users (name) VALUES ('bo')",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    assert_eq!(
        err,
        "duplicate key value violates unique constraint \"users_name_key\""
    );

    // search_path: the first schema holding a name wins; new objects go to the first schema.
    exec(&c, "SET search_path TO app, public").await;
    check(&c, "SHOW search_path", "app, public").await;
    check(
        &c,
        "SELECT current_schema(), current_schemas(false)",
        "app|{app,public}",
    )
    .await;
    check(&c, "SELECT name FROM users", "bo").await;
    exec(
        &c,
        "CREATE TABLE orders (id INT PRIMARY KEY, user_id INT REFERENCES users (id))",
    )
    .await;
    exec_count(&c, "INSERT INTO orders VALUES (1, 2)", 1).await;
    let err = expect_error(
        &c,
        "INSERT INTO orders VALUES (2, 9)",
        &SqlState::FOREIGN_KEY_VIOLATION,
    )
    .await;
    assert_eq!(
        err,
        "insert or update on table \"orders\" violates foreign key constraint \"orders_user_id_fkey\""
    );
    check(
        &c,
        "SELECT o.id, u.name FROM orders o JOIN users u ON u.id = o.user_id",
        "1|bo",
    )
    .await;
    check(&c, "SELECT nextval('users_id_seq')", "4").await;
    check(&c, "SELECT nextval('public.users_id_seq')", "2").await;
    exec(&c, "CREATE VIEW names AS SELECT name FROM users").await;
    exec(&c, "ALTER TABLE orders ADD COLUMN note TEXT").await;
    exec(&c, "ALTER TABLE orders RENAME TO purchases").await;
    check(
        &c,
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('app', 'public') \
         ORDER BY 1, 2",
        "app|purchases\napp|users\npublic|users",
    )
    .await;
    check(
        &c,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'app' AND c.relkind = 'i' ORDER BY 1",
        "by_name\norders_pkey\nusers_name_key\nusers_pkey",
    )
    .await;
    check(
        &c,
        "SELECT 'users'::regclass::text, 'public.users'::regclass::text, \
         pg_table_is_visible('public.users'::regclass), pg_table_is_visible('users'::regclass)",
        "users|public.users|f|t",
    )
    .await;
    exec(&c, "RESET search_path").await;
    check(&c, "SELECT name FROM users", "pub").await;
    check(&c, "SELECT * FROM app.names", "bo").await;
    check(&c, "SELECT id, note FROM app.purchases", "1|NULL").await;
    check(
        &c,
        "SELECT nspname FROM pg_namespace WHERE nspname IN ('app', 'public') ORDER BY 1",
        "app\npublic",
    )
    .await;
    // A CTE shadows every table of its name.
    check(
        &c,
        "WITH users AS (SELECT 42 AS id) SELECT id FROM users",
        "42",
    )
    .await;

    // Errors.
    expect_error(&c, "SELECT * FROM nope.t", &SqlState::UNDEFINED_TABLE).await;
    expect_error(
        &c,
        "CREATE TABLE nope.t (a INT)",
        &SqlState::INVALID_SCHEMA_NAME,
    )
    .await;
    expect_error(&c, "SELECT * FROM app.missing", &SqlState::UNDEFINED_TABLE).await;
    exec(&c, "SET search_path TO nowhere").await;
    expect_error(&c, "CREATE TABLE t (a INT)", &SqlState::INVALID_SCHEMA_NAME).await;
    exec(&c, "RESET search_path").await;
    expect_error(
        &c,
        "DROP SCHEMA app",
        &SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
    )
    .await;
    expect_error(&c, "DROP SCHEMA ghost", &SqlState::INVALID_SCHEMA_NAME).await;
    exec(&c, "DROP SCHEMA IF EXISTS ghost").await;

    // DROP … CASCADE takes the schema's tables, views and sequences with it.
    exec(&c, "DROP SCHEMA app CASCADE").await;
    expect_error(&c, "SELECT * FROM app.users", &SqlState::UNDEFINED_TABLE).await;
    check(&c, "SELECT name FROM users", "pub").await;
    check(
        &c,
        "SELECT count(*) FROM pg_class WHERE relname IN ('purchases', 'names', 'by_name')",
        "0",
    )
    .await;
    // The schema can be made again, empty.
    exec(&c, "CREATE SCHEMA app").await;
    exec(&c, "CREATE TABLE app.users (id INT)").await;
    check(&c, "SELECT count(*) FROM app.users", "0").await;
}

#[tokio::test]
async fn temporary_tables_and_create_table_as() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE TABLE t (a INT PRIMARY KEY, b TEXT)").await;
    exec_count(&c, "INSERT INTO t VALUES (1, 'kept')", 1).await;

    // A temporary table shadows the permanent one, for its own session only.
    exec(&c, "CREATE TEMP TABLE t (a INT, note TEXT)").await;
    exec_count(&c, "INSERT INTO t VALUES (5, 'temp')", 1).await;
    check(&c, "SELECT a, note FROM t", "5|temp").await;
    let rows = c
        .query("SELECT note FROM t WHERE a = $1", &[&5i32])
        .await
        .expect("prepared query on a temporary table");
    assert_eq!(rows[0].get::<_, String>(0), "temp");
    check(&c, "SELECT a, note FROM pg_temp.t", "5|temp").await;
    check(&c, "SELECT a, b FROM public.t", "1|kept").await;
    check(
        &c,
        "SELECT n.nspname LIKE 'pg_temp%' FROM pg_class c JOIN pg_namespace n \
         ON n.oid = c.relnamespace WHERE c.relname = 't' AND pg_table_is_visible(c.oid)",
        "t",
    )
    .await;
    let other = server.connect().await;
    check(&other, "SELECT a, b FROM t", "1|kept").await;
    expect_error(
        &c,
        "CREATE TEMP TABLE public.x (a INT)",
        &SqlState::INVALID_TABLE_DEFINITION,
    )
    .await;

    // ON COMMIT DROP and DELETE ROWS.
    exec(&c, "BEGIN").await;
    exec(&c, "CREATE TEMP TABLE gone (x INT) ON COMMIT DROP").await;
    exec_count(&c, "INSERT INTO gone VALUES (1)", 1).await;
    check(&c, "SELECT count(*) FROM gone", "1").await;
    exec(&c, "COMMIT").await;
    expect_error(&c, "SELECT * FROM gone", &SqlState::UNDEFINED_TABLE).await;
    // A rolled-back ON COMMIT DROP table leaves nothing behind to act on a later one.
    exec(&c, "BEGIN").await;
    exec(&c, "CREATE TEMP TABLE again (x INT) ON COMMIT DROP").await;
    exec(&c, "ROLLBACK").await;
    exec(&c, "CREATE TEMP TABLE again (x INT)").await;
    exec_count(&c, "INSERT INTO again VALUES (1)", 1).await;
    check(&c, "SELECT count(*) FROM again", "1").await;
    exec(
        &c,
        "CREATE TEMP TABLE emptied (x INT) ON COMMIT DELETE ROWS",
    )
    .await;
    exec(&c, "BEGIN").await;
    exec_count(&c, "INSERT INTO emptied VALUES (1), (2)", 2).await;
    check(&c, "SELECT count(*) FROM emptied", "2").await;
    exec(&c, "COMMIT").await;
    check(&c, "SELECT count(*) FROM emptied", "0").await;
    expect_error(
        &c,
        "CREATE TABLE p (x INT) ON COMMIT DROP",
        &SqlState::INVALID_TABLE_DEFINITION,
    )
    .await;

    // CREATE TABLE AS: the query's columns and rows; a permanent table even while the
    // session has temporary ones.
    exec_count(
        &c,
        "CREATE TABLE copied AS SELECT a, b, a * 2 AS doubled, 1.50 AS n FROM public.t",
        1,
    )
    .await;
    check(&c, "SELECT a, b, doubled, n FROM copied", "1|kept|2|1.50").await;
    check(
        &c,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'copied'::regclass AND attnum BETWEEN 1 AND 3 ORDER BY attnum",
        "a|integer\nb|text\ndoubled|integer",
    )
    .await;
    exec_count(
        &c,
        "CREATE TEMP TABLE tmp_copy AS SELECT * FROM public.t",
        1,
    )
    .await;
    check(&other, "SELECT count(*) FROM copied", "1").await;
    expect_error(&other, "SELECT * FROM tmp_copy", &SqlState::UNDEFINED_TABLE).await;

    // Temporary tables end with their session.
    drop(c);
    let mut gone = false;
    // The session's end is noticed in the background: a slow machine gets a minute.
    for _ in 0..600 {
        let left = crate::sql::query_value(
            &other,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pg\\_temp\\_%' \
             AND EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = pg_namespace.oid)",
        )
        .await;
        if left == "0" {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the temporary tables outlived their session");
    check(&other, "SELECT a, b FROM t", "1|kept").await;
}

#[tokio::test]
async fn information_schema_reflects_the_catalog() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE SCHEMA shop").await;
    exec(
        &c,
        "CREATE TABLE shop.parent (id SERIAL PRIMARY KEY, code VARCHAR(10) UNIQUE, \
         price NUMERIC(10,2), ts TIMESTAMPTZ, doc JSONB)",
    )
    .await;
    exec(
        &c,
        "CREATE TABLE shop.child (id INT PRIMARY KEY, \
         pid INT REFERENCES shop.parent (id) ON DELETE CASCADE, CHECK (id > 0))",
    )
    .await;
    exec(
        &c,
        "CREATE VIEW shop.codes AS SELECT id, code FROM shop.parent",
    )
    .await;
    check(
        &c,
        "SELECT schema_name FROM information_schema.schemata \
         WHERE schema_name IN ('public', 'shop', 'pg_catalog') ORDER BY 1",
        "pg_catalog\npublic\nshop",
    )
    .await;
    check(
        &c,
        "SELECT table_name, table_type FROM information_schema.tables \
         WHERE table_schema = 'shop' ORDER BY 1",
        "child|BASE TABLE\ncodes|VIEW\nparent|BASE TABLE",
    )
    .await;
    check(
        &c,
        "SELECT column_name, ordinal_position, column_default, is_nullable, data_type, \
         character_maximum_length, numeric_precision, numeric_scale, udt_name \
         FROM information_schema.columns WHERE table_schema = 'shop' \
         AND table_name = 'parent' ORDER BY ordinal_position",
        "id|1|nextval('shop.parent_id_seq'::regclass)|NO|integer|NULL|32|0|int4\n\
         code|2|NULL|YES|character varying|10|NULL|NULL|varchar\n\
         price|3|NULL|YES|numeric|NULL|10|2|numeric\n\
         ts|4|NULL|YES|timestamp with time zone|NULL|NULL|NULL|timestamptz\n\
         doc|5|NULL|YES|jsonb|NULL|NULL|NULL|jsonb",
    )
    .await;
    check(
        &c,
        "SELECT table_name, constraint_name, constraint_type \
         FROM information_schema.table_constraints WHERE table_schema = 'shop' \
         AND constraint_type <> 'CHECK' ORDER BY 1, 2",
        "child|child_pid_fkey|FOREIGN KEY\nchild|child_pkey|PRIMARY KEY\n\
         parent|parent_code_key|UNIQUE\nparent|parent_pkey|PRIMARY KEY",
    )
    .await;
    check(
        &c,
        "SELECT constraint_name, column_name, ordinal_position, position_in_unique_constraint \
         FROM information_schema.key_column_usage WHERE table_schema = 'shop' ORDER BY 1",
        "child_pid_fkey|pid|1|1\nchild_pkey|id|1|NULL\nparent_code_key|code|1|NULL\n\
         parent_pkey|id|1|NULL",
    )
    .await;
    check(
        &c,
        "SELECT constraint_name, unique_constraint_schema, unique_constraint_name, \
         update_rule, delete_rule FROM information_schema.referential_constraints \
         WHERE constraint_schema = 'shop'",
        "child_pid_fkey|shop|parent_pkey|NO ACTION|CASCADE",
    )
    .await;
    check(
        &c,
        "SELECT table_name, column_name FROM information_schema.constraint_column_usage \
         WHERE constraint_name = 'child_pid_fkey'",
        "parent|id",
    )
    .await;
    check(
        &c,
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'shop'",
        "codes",
    )
    .await;
    check(
        &c,
        "SELECT sequence_name, data_type, start_value, increment \
         FROM information_schema.sequences WHERE sequence_schema = 'shop'",
        "parent_id_seq|integer|1|1",
    )
    .await;
}
