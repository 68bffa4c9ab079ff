//! Statements beyond SELECT: prepared statements with typed parameters (extended protocol,
//! binary results), INSERT/UPDATE/DELETE with ON CONFLICT and RETURNING, INSERT … SELECT,
//! constraints (23505, 23514, 23502) and DEFAULT values.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use crate::harness::{TestServer, describe};
use crate::sql::{check, check_unordered, exec, exec_count, expect_error, query_value};

/// Prepared statements with parameters of every basic type, through the extended protocol
/// (binary results), and the values round-tripped through a table.
#[tokio::test]
async fn prepared_statements_round_trip_every_basic_type() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE typed (id INT PRIMARY KEY, a SMALLINT, b INT, c BIGINT, d REAL, e DOUBLE PRECISION, \
         f BOOLEAN, g TEXT, h BYTEA, i VARCHAR(20))",
    )
    .await;

    let insert = c
        .prepare("INSERT INTO typed (id, a, b, c, d, e, f, g, h, i) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .await
        .unwrap_or_else(|e| panic!("prepare insert: {}", describe(&e)));
    let params: Vec<Type> = insert.params().to_vec();
    assert_eq!(
        params[..9],
        [
            Type::INT4,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::BOOL,
            Type::TEXT,
            Type::BYTEA
        ],
        "parameter types inferred from the target columns"
    );
    assert!(
        params[9] == Type::VARCHAR || params[9] == Type::TEXT,
        "varchar parameter: {:?}",
        params[9]
    );

    let text = "héllo, 'world' \"quoted\" 世界";
    let bytes: Vec<u8> = vec![0, 1, 2, 255, 0, b'\'', b'\\'];
    let n = c
        .execute(
            &insert,
            &[
                &1i32,
                &i16::MIN,
                &i32::MAX,
                &i64::MIN,
                &1.5f32,
                &1.0000000000000002f64,
                &true,
                &text,
                &bytes,
                &"varchar",
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("insert row 1: {}", describe(&e)));
    assert_eq!(n, 1);
    let none = (
        None::<i16>,
        None::<i32>,
        None::<i64>,
        None::<f32>,
        None::<f64>,
        None::<bool>,
        None::<&str>,
        None::<Vec<u8>>,
        None::<String>,
    );
    c.execute(
        &insert,
        &[
            &2i32, &none.0, &none.1, &none.2, &none.3, &none.4, &none.5, &none.6, &none.7, &none.8,
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("insert row 2 (NULLs): {}", describe(&e)));
    c.execute(
        &insert,
        &[
            &3i32,
            &0i16,
            &-7i32,
            &i64::MAX,
            &-0.25f32,
            &-1e300f64,
            &false,
            &"",
            &Vec::<u8>::new(),
            &String::new(),
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("insert row 3: {}", describe(&e)));

    let select = c
        .prepare("SELECT id, a, b, c, d, e, f, g, h, i FROM typed ORDER BY id")
        .await
        .unwrap_or_else(|e| panic!("prepare select: {}", describe(&e)));
    let column_types: Vec<Type> = select
        .columns()
        .iter()
        .map(|col| col.type_().clone())
        .collect();
    assert_eq!(
        column_types[..9],
        [
            Type::INT4,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::BOOL,
            Type::TEXT,
            Type::BYTEA
        ],
        "result column types"
    );
    let rows = c
        .query(&select, &[])
        .await
        .unwrap_or_else(|e| panic!("select: {}", describe(&e)));
    assert_eq!(rows.len(), 3);

    type Tuple = (
        i32,
        Option<i16>,
        Option<i32>,
        Option<i64>,
        Option<f32>,
        Option<f64>,
        Option<bool>,
        Option<String>,
        Option<Vec<u8>>,
        Option<String>,
    );
    let got: Vec<Tuple> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
                r.get(9),
            )
        })
        .collect();
    assert_eq!(
        got[0],
        (
            1,
            Some(i16::MIN),
            Some(i32::MAX),
            Some(i64::MIN),
            Some(1.5),
            Some(1.0000000000000002),
            Some(true),
            Some(text.to_string()),
            Some(bytes.clone()),
            Some("varchar".to_string())
        )
    );
    assert_eq!(
        got[1],
        (2, None, None, None, None, None, None, None, None, None)
    );
    assert_eq!(
        got[2],
        (
            3,
            Some(0),
            Some(-7),
            Some(i64::MAX),
            Some(-0.25),
            Some(-1e300),
            Some(false),
            Some(String::new()),
            Some(Vec::new()),
            Some(String::new())
        )
    );

    // The same values in PostgreSQL's text format.
    check(
        &c,
        "SELECT id, a, b, c, d, e, f, h FROM typed ORDER BY id",
        r"1|-32768|2147483647|-9223372036854775808|1.5|1.0000000000000002|t|\x000102ff00275c
          2|NULL|NULL|NULL|NULL|NULL|NULL|NULL
          3|0|-7|9223372036854775807|-0.25|-1e+300|f|\x",
    )
    .await;
    check(
        &c,
        "SELECT count(*) FROM typed WHERE g = '' AND i = ''",
        "1",
    )
    .await;

    // Parameters in WHERE, one per type, each finding its row.
    assert_eq!(
        ids_where(&c, "SELECT id FROM typed WHERE a = $1", &i16::MIN).await,
        [1]
    );
    assert_eq!(
        ids_where(&c, "SELECT id FROM typed WHERE b = $1", &-7i32).await,
        [3]
    );
    assert_eq!(
        ids_where(&c, "SELECT id FROM typed WHERE c = $1", &i64::MIN).await,
        [1]
    );
    assert_eq!(
        ids_where(&c, "SELECT id FROM typed WHERE d = $1", &-0.25f32).await,
        [3]
    );
    assert_eq!(
        ids_where(
            &c,
            "SELECT id FROM typed WHERE e = $1",
            &1.0000000000000002f64
        )
        .await,
        [1]
    );
    assert_eq!(
        ids_where(&c, "SELECT id FROM typed WHERE f = $1", &false).await,
        [3]
    );
    assert_eq!(
        ids_where(&c, "SELECT id FROM typed WHERE g = $1", &text).await,
        [1]
    );
    assert_eq!(
        ids_where(&c, "SELECT id FROM typed WHERE h = $1", &bytes).await,
        [1]
    );
    assert_eq!(
        ids_where(
            &c,
            "SELECT id FROM typed WHERE i = $1",
            &"varchar".to_string()
        )
        .await,
        [1]
    );
    let rows = c
        .query(
            "SELECT id FROM typed WHERE g = $1 OR c > $2 ORDER BY id",
            &[&"", &0i64],
        )
        .await
        .unwrap_or_else(|e| panic!("two parameters: {}", describe(&e)));
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        [3]
    );

    // A NULL parameter matches nothing with `=`, and IS NULL finds the NULL row.
    let rows = c
        .query("SELECT id FROM typed WHERE b = $1", &[&None::<i32>])
        .await
        .expect("NULL parameter");
    assert!(rows.is_empty(), "b = NULL matched {} rows", rows.len());
    let rows = c
        .query("SELECT id FROM typed WHERE b IS NULL", &[])
        .await
        .expect("IS NULL");
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        [2]
    );

    // One prepared statement executed many times; parameters in expressions.
    let lookup = c
        .prepare("SELECT g FROM typed WHERE id = $1")
        .await
        .expect("prepare lookup");
    for (id, want) in [
        (1, Some(text.to_string())),
        (2, None),
        (3, Some(String::new())),
    ] {
        let row = c
            .query_one(&lookup, &[&id])
            .await
            .unwrap_or_else(|e| panic!("lookup {id}: {}", describe(&e)));
        assert_eq!(row.get::<_, Option<String>>(0), want, "g of row {id}");
    }
    let row = c
        .query_one(
            "SELECT $1::int8 + 1, $2::text || '!', NOT $3::bool, $4::float8 * 2, $5::int4 * 2",
            &[&41i64, &"hi", &false, &1.25f64, &21i32],
        )
        .await
        .unwrap_or_else(|e| panic!("parameters in expressions: {}", describe(&e)));
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, String>(1),
            row.get::<_, bool>(2),
            row.get::<_, f64>(3),
            row.get::<_, i32>(4)
        ),
        (42, "hi!".to_string(), true, 2.5, 42)
    );
    let n = c
        .execute(
            "UPDATE typed SET g = $1, a = $2 WHERE id = $3",
            &[&"changed", &Some(5i16), &2i32],
        )
        .await
        .unwrap_or_else(|e| panic!("parameterized update: {}", describe(&e)));
    assert_eq!(n, 1);
    check(&c, "SELECT a, g FROM typed WHERE id = 2", "5|changed").await;
    let n = c
        .execute("DELETE FROM typed WHERE id = $1", &[&3i32])
        .await
        .expect("parameterized delete");
    assert_eq!(n, 1);
    check(&c, "SELECT count(*) FROM typed", "2").await;
}

#[tokio::test]
async fn insert_update_delete_upsert_returning() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT NOT NULL)").await;
    exec_count(
        &c,
        "INSERT INTO kv VALUES (1, 'one'), (2, 'two'), (3, 'three')",
        3,
    )
    .await;

    // ON CONFLICT DO NOTHING / DO UPDATE.
    exec_count(
        &c,
        "INSERT INTO kv VALUES (1, 'uno') ON CONFLICT DO NOTHING",
        0,
    )
    .await;
    exec_count(
        &c,
        "INSERT INTO kv VALUES (1, 'uno'), (4, 'four') ON CONFLICT (k) DO NOTHING",
        1,
    )
    .await;
    check(&c, "SELECT v FROM kv WHERE k = 1", "one").await;
    exec_count(&c, "INSERT INTO kv VALUES (1, 'uno') ON CONFLICT (k) DO UPDATE SET v = kv.v || '/' || EXCLUDED.v", 1).await;
    exec_count(&c, "INSERT INTO kv VALUES (2, 'dos'), (5, 'five') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", 2).await;
    check(
        &c,
        "SELECT k, v FROM kv ORDER BY k",
        "1|one/uno
         2|dos
         3|three
         4|four
         5|five",
    )
    .await;

    // RETURNING.
    check(
        &c,
        "INSERT INTO kv VALUES (10, 'ten') RETURNING k, v, k * 2",
        "10|ten|20",
    )
    .await;
    check_unordered(
        &c,
        "UPDATE kv SET v = v || '!' WHERE k >= 4 RETURNING k, v",
        "4|four!
         5|five!
         10|ten!",
    )
    .await;
    check(&c, "DELETE FROM kv WHERE k = 10 RETURNING *", "10|ten!").await;
    check(&c, "DELETE FROM kv WHERE k = 999 RETURNING k", "").await;
    check(
        &c,
        "INSERT INTO kv VALUES (5, 'x') ON CONFLICT (k) DO UPDATE SET v = 'five again' RETURNING k, v",
        "5|five again",
    )
    .await;

    // INSERT ... SELECT.
    exec(&c, "CREATE TABLE kv_copy (k INT PRIMARY KEY, v TEXT)").await;
    exec_count(
        &c,
        "INSERT INTO kv_copy SELECT k, upper(v) FROM kv WHERE k > 2",
        3,
    )
    .await;
    exec_count(&c, "INSERT INTO kv_copy (k) SELECT k + 100 FROM kv", 5).await;
    check(
        &c,
        "SELECT count(*), count(v), min(k), max(k) FROM kv_copy",
        "8|3|3|105",
    )
    .await;
    check(&c, "SELECT v FROM kv_copy WHERE k = 3", "THREE").await;

    // UPDATE/DELETE with expressions, subqueries and no matching rows.
    exec_count(
        &c,
        "UPDATE kv SET v = v || '?' WHERE k IN (SELECT k FROM kv_copy WHERE v IS NOT NULL)",
        3,
    )
    .await;
    exec_count(&c, "UPDATE kv SET v = 'none' WHERE k > 1000", 0).await;
    exec_count(&c, "UPDATE kv SET k = k + 100 WHERE k = 1", 1).await;
    check(&c, "SELECT k, v FROM kv WHERE k IN (1, 101)", "101|one/uno").await;
    exec_count(&c, "DELETE FROM kv WHERE v LIKE '%?'", 3).await;
    exec_count(&c, "DELETE FROM kv_copy", 8).await;
    check(&c, "SELECT k FROM kv ORDER BY k", "2\n101").await;
}

#[tokio::test]
async fn constraints_and_defaults() {
    let server = TestServer::start();
    let c = server.connect().await;

    // PRIMARY KEY, UNIQUE constraint and unique index: 23505, and the failed statement leaves
    // nothing behind (statement atomicity).
    exec(
        &c,
        "CREATE TABLE users (id INT PRIMARY KEY, email TEXT UNIQUE, name TEXT NOT NULL)",
    )
    .await;
    exec_count(
        &c,
        "INSERT INTO users VALUES (1, 'a@x', 'ann'), (2, 'b@x', 'ben')",
        2,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO users VALUES (1, 'c@x', 'cat')",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO users VALUES (3, 'a@x', 'cat')",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO users VALUES (4, 'd@x', 'dan'), (2, 'e@x', 'eve')",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    expect_error(
        &c,
        "UPDATE users SET email = 'a@x' WHERE id = 2",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    check(
        &c,
        "SELECT id, email FROM users ORDER BY id",
        "1|a@x\n2|b@x",
    )
    .await;
    // NULLs never collide in a unique column.
    exec_count(
        &c,
        "INSERT INTO users VALUES (5, NULL, 'nul'), (6, NULL, 'nil')",
        2,
    )
    .await;
    // The key is free again once its row is deleted.
    exec_count(&c, "DELETE FROM users WHERE id = 1", 1).await;
    exec_count(&c, "INSERT INTO users VALUES (1, 'a@x', 'ann again')", 1).await;

    exec(
        &c,
        "CREATE TABLE items (id INT PRIMARY KEY, sku TEXT NOT NULL)",
    )
    .await;
    exec(&c, "CREATE UNIQUE INDEX items_sku ON items (sku)").await;
    exec_count(&c, "INSERT INTO items VALUES (1, 'A-1'), (2, 'B-2')", 2).await;
    expect_error(
        &c,
        "INSERT INTO items VALUES (3, 'A-1')",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    expect_error(
        &c,
        "UPDATE items SET sku = 'B-2' WHERE id = 1",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    exec_count(&c, "UPDATE items SET sku = 'C-3' WHERE id = 1", 1).await;
    exec_count(&c, "INSERT INTO items VALUES (3, 'A-1')", 1).await;
    check(&c, "SELECT id FROM items WHERE sku = 'A-1'", "3").await;
    check(&c, "SELECT count(*) FROM items", "3").await;

    // CHECK: 23514 on insert and update; NULL passes a CHECK.
    exec(
        &c,
        "CREATE TABLE stock (id INT PRIMARY KEY, qty INT NOT NULL CHECK (qty >= 0), price NUMERIC(8,2) CHECK (price > 0))",
    )
    .await;
    exec_count(
        &c,
        "INSERT INTO stock VALUES (1, 10, 9.99), (2, 0, NULL)",
        2,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO stock VALUES (3, -1, 1.00)",
        &SqlState::CHECK_VIOLATION,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO stock VALUES (3, 1, 0)",
        &SqlState::CHECK_VIOLATION,
    )
    .await;
    expect_error(
        &c,
        "UPDATE stock SET qty = qty - 11 WHERE id = 1",
        &SqlState::CHECK_VIOLATION,
    )
    .await;
    check(
        &c,
        "SELECT id, qty, price FROM stock ORDER BY id",
        "1|10|9.99\n2|0|NULL",
    )
    .await;

    // NOT NULL: 23502, also when the column is left out.
    expect_error(
        &c,
        "INSERT INTO stock VALUES (4, NULL, 1.00)",
        &SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO stock (id, price) VALUES (4, 1.00)",
        &SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    expect_error(
        &c,
        "UPDATE stock SET qty = NULL WHERE id = 2",
        &SqlState::NOT_NULL_VIOLATION,
    )
    .await;

    // DEFAULT values: omitted columns, the DEFAULT keyword, explicit NULL overriding a default.
    exec(
        &c,
        "CREATE TABLE defs (id INT PRIMARY KEY, status TEXT DEFAULT 'new', n INT DEFAULT 42, \
         created TIMESTAMPTZ DEFAULT now(), flag BOOLEAN DEFAULT false)",
    )
    .await;
    exec_count(&c, "INSERT INTO defs (id) VALUES (1)", 1).await;
    exec_count(&c, "INSERT INTO defs (id, status) VALUES (2, 'done')", 1).await;
    exec_count(&c, "INSERT INTO defs VALUES (3, DEFAULT, 7)", 1).await;
    exec_count(&c, "INSERT INTO defs (id, n) VALUES (4, NULL)", 1).await;
    check(
        &c,
        "SELECT id, status, n, created IS NOT NULL, flag FROM defs ORDER BY id",
        "1|new|42|t|f
         2|done|42|t|f
         3|new|7|t|f
         4|new|NULL|t|f",
    )
    .await;
    let first = query_value(&c, "SELECT created FROM defs WHERE id = 1").await;
    assert!(
        first.starts_with("20"),
        "created timestamp looks wrong: {first}"
    );
}

/// The ids a parameterized query returns.
async fn ids_where(c: &Client, sql: &str, param: &(dyn ToSql + Sync)) -> Vec<i32> {
    let rows = c
        .query(sql, &[param])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
    rows.iter().map(|r| r.get::<_, i32>(0)).collect()
}

/// now() is the start of the current transaction: it moves between autocommit statements and
/// stands still inside a block.
#[tokio::test]
async fn now_is_the_transaction_start() {
    let server = TestServer::start();
    let c = server.connect().await;
    let first = query_value(&c, "SELECT now()::text").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = query_value(&c, "SELECT now()::text").await;
    assert_ne!(first, second, "now() stood still between transactions");
    exec(&c, "BEGIN").await;
    let a = query_value(&c, "SELECT now()::text").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let b = query_value(&c, "SELECT current_timestamp::text").await;
    exec(&c, "COMMIT").await;
    assert_eq!(a, b, "now() moved inside a transaction");
}
