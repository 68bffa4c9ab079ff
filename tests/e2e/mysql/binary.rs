//! The binary protocol through mysql_async: COM_STMT_PREPARE / EXECUTE with typed parameters,
//! binary result rows of every type, statement close and reset, COM_PING, COM_INIT_DB,
//! COM_RESET_CONNECTION.

use super::{server, url};
use mysql_async::prelude::*;
use mysql_async::{Conn, Params, Row, Value};

async fn connect(server: &crate::harness::TestServer) -> Conn {
    Conn::from_url(url(server))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log_tail(50)))
}

#[tokio::test]
async fn prepared_statements_round_trip_every_type() {
    let Some(server) = server("mysql::binary::prepared_statements_round_trip_every_type") else {
        return;
    };
    let mut c = connect(&server).await;
    c.query_drop(
        "CREATE TABLE v (id INT PRIMARY KEY, b BOOL, i16 SMALLINT, i64 BIGINT, f FLOAT, \
         d DOUBLE, n DECIMAL(10,2), s VARCHAR(20), bl BLOB, dt DATE, ts DATETIME, tm TIME)",
    )
    .await
    .unwrap();
    let insert = c
        .prep("INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .await
        .unwrap();
    assert_eq!(insert.num_params(), 12);
    c.exec_drop(
        &insert,
        (
            1,
            true,
            -7i16,
            i64::MIN + 1,
            2.5f32,
            1e300f64,
            "-12.34",
            "ünïcode",
            vec![0u8, 1, 255],
            Value::Date(2024, 2, 29, 0, 0, 0, 0),
            Value::Date(1999, 12, 31, 23, 59, 58, 123_456),
            Value::Time(false, 0, 13, 3, 4, 5),
        ),
    )
    .await
    .unwrap();
    let mut nulls = vec![Value::from(2)];
    nulls.resize(12, Value::NULL);
    c.exec_drop(&insert, Params::Positional(nulls))
        .await
        .unwrap();
    let rows: Vec<Row> = c
        .exec("SELECT * FROM v WHERE id >= ? ORDER BY id", (1,))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.get::<i32, _>(0), Some(1));
    assert_eq!(r.get::<bool, _>(1), Some(true));
    assert_eq!(r.get::<i16, _>(2), Some(-7));
    assert_eq!(r.get::<i64, _>(3), Some(i64::MIN + 1));
    assert_eq!(r.get::<f32, _>(4), Some(2.5));
    assert_eq!(r.get::<f64, _>(5), Some(1e300));
    assert_eq!(r.get::<String, _>(6).as_deref(), Some("-12.34"));
    assert_eq!(r.get::<String, _>(7).as_deref(), Some("ünïcode"));
    assert_eq!(r.get::<Vec<u8>, _>(8), Some(vec![0u8, 1, 255]));
    assert_eq!(r.as_ref(9), Some(&Value::Date(2024, 2, 29, 0, 0, 0, 0)));
    assert_eq!(
        r.as_ref(10),
        Some(&Value::Date(1999, 12, 31, 23, 59, 58, 123_456))
    );
    assert_eq!(r.as_ref(11), Some(&Value::Time(false, 0, 13, 3, 4, 5)));
    assert!((1..12).all(|i| rows[1].as_ref(i) == Some(&Value::NULL)));
    // The same statement again with other values (types remembered), then closed.
    c.exec_drop(
        &insert,
        (
            3,
            false,
            1i16,
            2i64,
            0.5f32,
            0.25f64,
            "1",
            "x",
            vec![7u8],
            "2020-01-01",
            "2020-01-01 00:00:01",
            "10:11:12",
        ),
    )
    .await
    .unwrap();
    c.close(insert).await.unwrap();
    let n: Option<i64> = c.exec_first("SELECT COUNT(*) FROM v", ()).await.unwrap();
    assert_eq!(n, Some(3));
    let text: Option<(String, String)> = c
        .exec_first(
            "SELECT CAST(dt AS CHAR), CAST(tm AS CHAR) FROM v WHERE id = ?",
            (3,),
        )
        .await
        .unwrap();
    assert_eq!(text, Some(("2020-01-01".into(), "10:11:12".into())));
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn statement_lifecycle_and_connection_commands() {
    let Some(server) = server("mysql::binary::statement_lifecycle_and_connection_commands") else {
        return;
    };
    let mut c = connect(&server).await;
    c.ping().await.unwrap();
    c.query_drop("CREATE TABLE s (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name TEXT)")
        .await
        .unwrap();
    c.exec_drop("INSERT INTO s (name) VALUES (?)", ("a",))
        .await
        .unwrap();
    assert_eq!(c.last_insert_id(), Some(1));
    assert_eq!(c.affected_rows(), 1);
    c.exec_drop(
        "INSERT INTO s (name) VALUES (:a), (:b)",
        Params::from(vec![
            ("a".to_string(), Value::from("b")),
            ("b".to_string(), Value::from("c")),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(c.last_insert_id(), Some(2));
    let names: Vec<String> = c.exec("SELECT name FROM s ORDER BY id", ()).await.unwrap();
    assert_eq!(names, ["a", "b", "c"]);
    // A prepared statement with a result, described at prepare time.
    let stmt = c.prep("SELECT id, name FROM s WHERE id = ?").await.unwrap();
    assert_eq!(stmt.num_params(), 1);
    assert_eq!(stmt.columns().len(), 2);
    let row: Option<(i32, String)> = c.exec_first(&stmt, (2,)).await.unwrap();
    assert_eq!(row, Some((2, "b".into())));
    // Errors keep their numbers through the binary protocol.
    let err = c
        .exec_drop("INSERT INTO s (id, name) VALUES (?, ?)", (1, "dup"))
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!((e.code, e.state.as_str()), (1062, "23000")),
        other => panic!("expected a server error, got {other:?}"),
    }
    // COM_RESET_CONNECTION forgets session state; the connection goes on.
    c.query_drop("SET @x = 1").await.unwrap();
    assert!(c.reset().await.unwrap());
    let x: Option<Option<i64>> = c.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(None));
    c.disconnect().await.unwrap();
}
