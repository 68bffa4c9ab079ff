//! json, jsonb and uuid: input checked and stored as PostgreSQL prints it (jsonb in canonical
//! form), the operators and functions applications use, errors with PostgreSQL's SQLSTATE and
//! detail, and the real type OIDs and binary forms on the wire.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};

use crate::harness::TestServer;
use crate::sql::{check, exec, expect_error};

/// Any value's bytes as the server sent them.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[tokio::test]
async fn json_values_operators_and_functions() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE docs (id INT PRIMARY KEY, doc JSONB, raw JSON, ref UUID)",
    )
    .await;
    exec(
        &c,
        r#"INSERT INTO docs VALUES
           (1, '{"b": 1, "a": [1, 2, {"c": "x"}], "n": null, "b": 2}', '{"b":1,  "a":2}',
            'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'),
           (2, '[1, 2.50, 1e2, "s", true]', '[]', '{a0eebc999c0b4ef8bb6d6bb9bd380a12}'),
           (3, '{"tags": ["red", "blue"], "price": 10}', 'null', NULL)"#,
    )
    .await;
    // jsonb is canonical (keys by length then bytes, last duplicate wins, numbers as numeric);
    // json keeps its text; uuid its canonical spelling.
    check(
        &c,
        "SELECT doc, raw, ref FROM docs ORDER BY id",
        "{\"a\": [1, 2, {\"c\": \"x\"}], \"b\": 2, \"n\": null}|{\"b\":1,  \"a\":2}|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n\
         [1, 2.50, 100, \"s\", true]|[]|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12\n\
         {\"tags\": [\"red\", \"blue\"], \"price\": 10}|null|NULL",
    )
    .await;
    check(
        &c,
        "SELECT doc -> 'a', doc ->> 'b', doc -> 'a' -> 2 ->> 'c', doc -> 'a' -> -1, \
         doc #> '{a,2}', doc #>> '{a,0}', doc -> 'missing', doc ->> 'n' FROM docs WHERE id = 1",
        "[1, 2, {\"c\": \"x\"}]|2|x|{\"c\": \"x\"}|{\"c\": \"x\"}|1|NULL|NULL",
    )
    .await;
    check(
        &c,
        "SELECT doc -> 1, doc ->> 3 FROM docs WHERE id = 2",
        "2.50|s",
    )
    .await;
    check(
        &c,
        "SELECT id FROM docs WHERE doc @> '{\"tags\": [\"blue\"]}' ORDER BY id",
        "3",
    )
    .await;
    check(&c, "SELECT id FROM docs WHERE doc ? 'n' ORDER BY id", "1").await;
    check(
        &c,
        "SELECT id FROM docs WHERE doc ?| array['price', 'b'] ORDER BY id",
        "1\n3",
    )
    .await;
    check(
        &c,
        "SELECT id FROM docs WHERE doc ?& array['price', 'b']",
        "",
    )
    .await;
    check(
        &c,
        "SELECT '[1, 2]'::jsonb @> '1', '{\"a\": 1}'::jsonb <@ '{\"a\": 1, \"b\": 2}', \
         '{\"a\": 1.0}'::jsonb @> '{\"a\": 1}'",
        "t|t|t",
    )
    .await;
    check(
        &c,
        "SELECT jsonb_typeof(doc), jsonb_array_length(doc) FROM docs WHERE id = 2",
        "array|5",
    )
    .await;
    expect_error(
        &c,
        "SELECT jsonb_array_length(doc) FROM docs WHERE id = 1",
        &SqlState::INVALID_PARAMETER_VALUE,
    )
    .await;
    check(
        &c,
        "SELECT jsonb_build_object('x', 1, 'a', 'text', 'n', NULL, 'ok', true), \
         jsonb_build_array(1, 'two', NULL), to_jsonb('it''s'::text), to_jsonb(1.50)",
        "{\"a\": \"text\", \"n\": null, \"x\": 1, \"ok\": true}|[1, \"two\", null]|\"it's\"|1.50",
    )
    .await;
    check(
        &c,
        "SELECT jsonb_agg(id ORDER BY id), json_agg(doc -> 'price') FROM docs WHERE id > 1",
        "[2, 3]|[null, 10]",
    )
    .await;
    check(
        &c,
        "SELECT jsonb_extract_path_text(doc, 'a', '2', 'c'), jsonb_strip_nulls(doc) -> 'n' \
         FROM docs WHERE id = 1",
        "x|NULL",
    )
    .await;
    check(
        &c,
        "SELECT jsonb_pretty('{\"a\": [1]}') = \
         E'{\\n    \"a\": [\\n        1\\n    ]\\n}'",
        "t",
    )
    .await;

    // Bad input: PostgreSQL's codes, with the reason in DETAIL.
    for bad in ["{\"a\":", "[1,]", "nul", "{'a': 1}"] {
        let sql = format!(
            "INSERT INTO docs (id, doc) VALUES (9, '{}')",
            bad.replace('\'', "''")
        );
        expect_error(&c, &sql, &SqlState::INVALID_TEXT_REPRESENTATION).await;
    }
    expect_error(
        &c,
        "SELECT '\"\\u0000\"'::jsonb",
        &SqlState::UNTRANSLATABLE_CHARACTER,
    )
    .await;
    expect_error(
        &c,
        "INSERT INTO docs (id, ref) VALUES (9, 'not-a-uuid')",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    expect_error(
        &c,
        "SELECT 'x'::uuid",
        &SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    check(&c, "SELECT count(*) FROM docs", "3").await;

    // The wire types are jsonb (3802), json (114) and uuid (2950), in text and binary.
    let rows = c
        .query(
            "SELECT doc, raw, ref, doc -> 'a' FROM docs WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    let types: Vec<Type> = rows[0]
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(types, [Type::JSONB, Type::JSON, Type::UUID, Type::JSONB]);
    let doc: Raw = rows[0].get(0);
    assert_eq!(doc.0[0], 1, "jsonb's binary form starts with its version");
    assert_eq!(
        std::str::from_utf8(&doc.0[1..]).unwrap(),
        r#"{"a": [1, 2, {"c": "x"}], "b": 2, "n": null}"#
    );
    let raw: Raw = rows[0].get(1);
    assert_eq!(raw.0, br#"{"b":1,  "a":2}"#);
    let uuid: Raw = rows[0].get(2);
    assert_eq!(
        uuid.0,
        [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11
        ]
    );
}
