//! Arrays: columns of `T[]` stored and read back exactly, `array_in`/`array_out` text forms,
//! casts, operators (`ANY`, `@>`, `<@`, `&&`, `||`, subscripts), functions, the binary format
//! through tokio-postgres, COPY, keys, the catalog, and PostgreSQL's errors for bad input.

use futures::SinkExt;
use tokio_postgres::error::SqlState;

use crate::harness::TestServer;
use crate::sql::{check, exec, exec_count, expect_error};

#[tokio::test]
async fn array_columns() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE arr (id INT PRIMARY KEY, tags TEXT[], nums INTEGER[], \
         codes VARCHAR(3)[], prices NUMERIC(6,2)[], flags BOOLEAN[], days DATE[])",
    )
    .await;
    exec_count(
        &c,
        "INSERT INTO arr VALUES \
         (1, '{a,\"b c\",NULL,\"\",\"NULL\",\"q\\\"x\"}', ARRAY[1,2,3], '{abc}', '{1.5,2}', '{t,f}', '{2024-01-02}'), \
         (2, ARRAY['x', 'y'], '{}', NULL, NULL, NULL, NULL), \
         (3, '{ a , b }', '{10, NULL}', '{\"x,y\"}', '{0.25}', '{true}', NULL)",
        3,
    )
    .await;
    // array_out: quoting of empty strings, the word NULL, quotes, delimiters and blanks.
    check(
        &c,
        "SELECT id, tags, nums, codes, prices, flags, days FROM arr ORDER BY id",
        r#"1|{a,"b c",NULL,"","NULL","q\"x"}|{1,2,3}|{abc}|{1.50,2.00}|{t,f}|{2024-01-02}
           2|{x,y}|{}|NULL|NULL|NULL|NULL
           3|{a,b}|{10,NULL}|{"x,y"}|{0.25}|{t}|NULL"#,
    )
    .await;
    // Casts, named after the element type as PostgreSQL names them.
    let rows = c
        .simple_query("SELECT '{1,2}'::int[], CAST('{x}' AS text[])")
        .await
        .expect("casts");
    if let tokio_postgres::SimpleQueryMessage::Row(r) = &rows[1] {
        assert_eq!(r.columns()[0].name(), "int4");
        assert_eq!(r.columns()[1].name(), "text");
        assert_eq!(r.get(0), Some("{1,2}"));
    } else {
        panic!("no row: {rows:?}");
    }
    check(
        &c,
        "SELECT ARRAY[1,2] = '{1,2}', ARRAY[1,2]::bigint[]",
        "t|{1,2}",
    )
    .await;
    // Operators and functions.
    check(&c, "SELECT id FROM arr WHERE 'x' = ANY(tags)", "2").await;
    check(
        &c,
        "SELECT id FROM arr WHERE id = ANY('{1,3,7}') ORDER BY id",
        "1\n3",
    )
    .await;
    check(&c, "SELECT id FROM arr WHERE id <> ALL('{1,3}')", "2").await;
    check(
        &c,
        "SELECT id FROM arr WHERE id > ANY('{2,9}') ORDER BY id",
        "3",
    )
    .await;
    check(
        &c,
        "SELECT id FROM arr WHERE id <= ALL('{2,9}') ORDER BY id",
        "1\n2",
    )
    .await;
    check(
        &c,
        "SELECT 1 = ANY('{}'), 1 <> ALL('{}'), NULL::int = ANY('{}'), 2 = ANY('{1,NULL}')",
        "f|t|f|NULL",
    )
    .await;
    check(
        &c,
        "SELECT id FROM arr WHERE tags @> '{a,b}' ORDER BY id",
        "3",
    )
    .await;
    check(&c, "SELECT id FROM arr WHERE '{y}' <@ tags", "2").await;
    check(&c, "SELECT id FROM arr WHERE tags && '{y,z}'", "2").await;
    check(&c, "SELECT id FROM arr WHERE nums = '{1,2,3}'", "1").await;
    check(
        &c,
        "SELECT nums[1], tags[2], array_length(nums, 1), cardinality(nums) FROM arr ORDER BY id",
        "1|b c|3|3\nNULL|y|NULL|0\n10|b|2|2",
    )
    .await;
    check(
        &c,
        "SELECT nums || 4, nums || '{5,6}', array_to_string(tags, '/'), array_position(tags, 'b') \
         FROM arr WHERE id = 3",
        "{10,NULL,4}|{10,NULL,5,6}|a/b|2",
    )
    .await;
    check(
        &c,
        "SELECT unnest(tags) FROM arr WHERE id = 2 ORDER BY 1",
        "x\ny",
    )
    .await;
    check(&c, "SELECT array_agg(id ORDER BY id) FROM arr", "{1,2,3}").await;
    exec_count(&c, "UPDATE arr SET nums = nums || 9 WHERE id = 2", 1).await;
    exec_count(&c, "UPDATE arr SET tags = '{z}' WHERE id = 3", 1).await;
    check(
        &c,
        "SELECT nums, tags FROM arr WHERE id IN (2, 3) ORDER BY id",
        "{9}|{x,y}\n{10,NULL}|{z}",
    )
    .await;

    // Bad input gets PostgreSQL's errors and changes nothing.
    let err = expect_error(
        &c,
        "INSERT INTO arr (id, nums) VALUES (9, '1,2')",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    assert_eq!(err, "malformed array literal: \"1,2\"");
    expect_error(
        &c,
        "INSERT INTO arr (id, nums) VALUES (9, '{1,2')",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    let err = expect_error(
        &c,
        "INSERT INTO arr (id, nums) VALUES (9, '{1,x}')",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    assert_eq!(err, "invalid input syntax for type integer: \"x\"");
    expect_error(
        &c,
        "INSERT INTO arr (id, codes) VALUES (9, '{abcd}')",
        &SqlState::STRING_DATA_RIGHT_TRUNCATION,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO arr (id, nums) VALUES (9, '{2147483648}')",
        &SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO arr (id, nums) VALUES (9, 5)",
        &SqlState::DATATYPE_MISMATCH,
    )
    .await;
    expect_error(
        &c,
        "SELECT 'x'::int[]",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    for bad in ["'{a,,b}'", "'{a,}'", "'{\"a\" b}'", "'{a\"b\"}'"] {
        expect_error(
            &c,
            &format!("SELECT {bad}::text[]"),
            &SqlState::INVALID_TEXT_REPRESENTATION,
        )
        .await;
    }
    check(
        &c,
        "SELECT ' {a\\ , \\NULL ,\"\"} '::text[], ' 12 '::int + 1",
        "{\"a \",\"NULL\",\"\"}|13",
    )
    .await;
    check(&c, "SELECT count(*) FROM arr", "3").await;

    // The binary format both ways (tokio-postgres sends and reads arrays in binary).
    let rows = c
        .query(
            "SELECT id, tags, nums FROM arr WHERE id = ANY($1) ORDER BY id",
            &[&vec![1i32, 2]],
        )
        .await
        .expect("binary arrays");
    assert_eq!(rows.len(), 2);
    let tags: Vec<Option<String>> = rows[0].get(1);
    assert_eq!(
        tags,
        vec![
            Some("a".into()),
            Some("b c".into()),
            None,
            Some(String::new()),
            Some("NULL".into()),
            Some("q\"x".into())
        ]
    );
    let nums: Vec<i32> = rows[1].get(2);
    assert_eq!(nums, vec![9]);
    let n = c
        .execute(
            "INSERT INTO arr (id, tags, nums) VALUES ($1, $2, $3)",
            &[
                &4i32,
                &vec![Some("p"), None],
                &vec![Some(7i32), None, Some(-1)],
            ],
        )
        .await
        .expect("insert with array parameters");
    assert_eq!(n, 1);
    check(
        &c,
        "SELECT tags, nums FROM arr WHERE id = 4",
        "{p,NULL}|{7,NULL,-1}",
    )
    .await;

    // COPY in and out, text and CSV.
    let sink = c
        .copy_in::<_, &'static [u8]>("COPY arr (id, tags, nums) FROM STDIN")
        .await
        .expect("copy in");
    let mut sink = std::pin::pin!(sink);
    sink.send(&b"5\t{\"x y\",NULL}\t{1,2}\n6\t\\N\t{}\n"[..])
        .await
        .expect("copy data");
    assert_eq!(sink.finish().await.expect("copy done"), 2);
    check(
        &c,
        "SELECT tags, nums FROM arr WHERE id >= 5 ORDER BY id",
        "{\"x y\",NULL}|{1,2}\nNULL|{}",
    )
    .await;
    let out = crate::pgcompat::copy::copy_out(
        &c,
        "COPY (SELECT id, tags FROM arr WHERE id = 5) TO STDOUT WITH (FORMAT csv)",
    )
    .await;
    assert_eq!(out, "5,\"{\"\"x y\"\",NULL}\"\n");

    // Arrays in keys: equal arrays collide, a prefix is a different key.
    exec(&c, "CREATE TABLE arrkey (k INT[] PRIMARY KEY, v TEXT)").await;
    exec_count(
        &c,
        "INSERT INTO arrkey VALUES ('{1,2}', 'a'), ('{1}', 'b'), ('{1,NULL}', 'c')",
        3,
    )
    .await;
    let err = expect_error(
        &c,
        "INSERT INTO arrkey VALUES (ARRAY[1,2], 'd')",
        &SqlState::UNIQUE_VIOLATION,
    )
    .await;
    assert!(err.contains("arrkey_pkey"), "{err}");
    check(&c, "SELECT v FROM arrkey WHERE k = '{1}'", "b").await;
    // Array equality takes NULL elements as equal, as PostgreSQL does.
    check(&c, "SELECT v FROM arrkey WHERE k = '{1,NULL}'", "c").await;

    // The catalog: psql's \d, information_schema, CREATE TABLE AS, ADD COLUMN.
    check(
        &c,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'arr'::regclass AND attnum > 1 ORDER BY attnum",
        "tags|text[]\nnums|integer[]\ncodes|character varying(3)[]\nprices|numeric(6,2)[]\n\
         flags|boolean[]\ndays|date[]",
    )
    .await;
    check(
        &c,
        "SELECT column_name, data_type, udt_name FROM information_schema.columns \
         WHERE table_name = 'arr' AND column_name IN ('tags', 'nums') ORDER BY ordinal_position",
        "tags|ARRAY|_text\nnums|ARRAY|_int4",
    )
    .await;
    exec(
        &c,
        "CREATE TABLE arr2 AS SELECT id, tags FROM arr WHERE id < 3",
    )
    .await;
    exec(
        &c,
        "ALTER TABLE arr2 ADD COLUMN extra BIGINT[] DEFAULT '{}'",
    )
    .await;
    exec_count(
        &c,
        "INSERT INTO arr2 VALUES (7, ARRAY['d'], DEFAULT), (8, '{e}', '{1}')",
        2,
    )
    .await;
    exec_count(&c, "DELETE FROM arr2 WHERE id IN (7, 8)", 2).await;
    check(
        &c,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'arr2'::regclass AND attnum > 1 ORDER BY attnum",
        "text[]\nbigint[]",
    )
    .await;
    check(
        &c,
        "SELECT id, tags, extra FROM arr2 ORDER BY id",
        "1|{a,\"b c\",NULL,\"\",\"NULL\",\"q\\\"x\"}|{}\n2|{x,y}|{}",
    )
    .await;
}
