//! COPY through tokio-postgres's copy API (extended protocol) and psql (`COPY … FROM STDIN`
//! in a script and `\copy`, simple protocol): text and CSV, options, errors that name the line,
//! and the session staying usable after each.

use std::pin::pin;
use std::process::Command;
use std::time::Duration;

use futures::{SinkExt, TryStreamExt};
use tokio_postgres::error::SqlState;

use crate::harness::{PASSWORD, TestServer, USER, run_child, skip};
use crate::sql::{check, exec, expect_error};

/// Everything a `COPY … TO STDOUT` sends, as text.
pub(crate) async fn copy_out(c: &tokio_postgres::Client, sql: &str) -> String {
    let data: Vec<u8> = c
        .copy_out(sql)
        .await
        .expect("copy out")
        .try_fold(Vec::new(), |mut acc, b| async move {
            acc.extend_from_slice(&b);
            Ok(acc)
        })
        .await
        .expect("read");
    String::from_utf8(data).expect("utf-8")
}

#[tokio::test]
async fn copy_in_and_out_with_a_driver() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price NUMERIC(8,2), seen DATE)",
    )
    .await;

    // Text format, rows split across CopyData messages at awkward places.
    let sink = c
        .copy_in::<_, &'static [u8]>("COPY items FROM STDIN")
        .await
        .expect("copy in");
    let mut sink = pin!(sink);
    for chunk in [
        &b"1\tpen\t1.50\t2024-01-02\n2\ttab\\there\t\\N"[..],
        b"\t\\N\n3\tback\\\\slash\t3\t2024-02-29\n",
    ] {
        sink.send(chunk).await.expect("send");
    }
    assert_eq!(sink.finish().await.expect("finish"), 3);

    // CSV with a header, a column list, quoting and an explicit NULL string.
    let sink = c
        .copy_in::<_, &'static [u8]>(
            "COPY items (name, id) FROM STDIN WITH (FORMAT csv, HEADER, NULL 'NULL')",
        )
        .await
        .expect("copy in");
    let mut sink = pin!(sink);
    sink.send(&b"name,id\n\"comma, \"\"quoted\"\"\",4\nNULL,5\n\"multi\nline\",6\n"[..])
        .await
        .expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 3);

    check(
        &c,
        "SELECT id, replace(name, chr(10), '/'), price, seen FROM items ORDER BY id",
        "1|pen|1.50|2024-01-02\n2|tab\there|NULL|NULL\n3|back\\slash|3.00|2024-02-29\n\
         4|comma, \"quoted\"|NULL|NULL\n5|NULL|NULL|NULL\n6|multi/line|NULL|NULL",
    )
    .await;

    // Out, text and CSV, from a table and from a query.
    assert_eq!(
        copy_out(&c, "COPY items (id, name) TO STDOUT").await,
        "1\tpen\n2\ttab\\there\n3\tback\\\\slash\n4\tcomma, \"quoted\"\n5\t\\N\n6\tmulti\\nline\n"
    );
    assert_eq!(
        copy_out(&c, "COPY (SELECT id, price FROM items WHERE id <= 2 ORDER BY id) TO STDOUT (FORMAT csv, HEADER, FORCE_QUOTE *)").await,
        "id,price\n\"1\",\"1.50\"\n\"2\",\n"
    );

    // A bad value fails the COPY with the line and column; nothing of it is kept.
    let sink = c
        .copy_in::<_, &'static [u8]>("COPY items FROM STDIN")
        .await
        .expect("copy in");
    let mut sink = pin!(sink);
    let _ = sink
        .send(&b"7\tok\t1\t2024-01-01\n8\tbad\tx\t2024-01-01\n"[..])
        .await;
    let err = sink.finish().await.expect_err("bad numeric");
    let db = err.as_db_error().expect("server error");
    assert_eq!(db.code(), &SqlState::INVALID_TEXT_REPRESENTATION);
    assert_eq!(db.where_(), Some("COPY items, line 2, column price: \"x\""));
    // A duplicate key fails the whole COPY too.
    let sink = c
        .copy_in::<_, &'static [u8]>("COPY items (id) FROM STDIN")
        .await
        .expect("copy in");
    let mut sink = pin!(sink);
    let _ = sink.send(&b"9\n1\n"[..]).await;
    let err = sink.finish().await.expect_err("duplicate");
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    check(&c, "SELECT count(*) FROM items", "6").await;

    // Errors before any data: unknown table and column, bad options, files on the server.
    expect_error(&c, "COPY nope FROM STDIN", &SqlState::UNDEFINED_TABLE).await;
    expect_error(
        &c,
        "COPY items (nope) FROM STDIN",
        &SqlState::UNDEFINED_COLUMN,
    )
    .await;
    expect_error(
        &c,
        "COPY items TO STDOUT (FORMAT text, QUOTE '\"')",
        &SqlState::INVALID_PARAMETER_VALUE,
    )
    .await;
    expect_error(
        &c,
        "COPY items TO '/tmp/x'",
        &SqlState::INSUFFICIENT_PRIVILEGE,
    )
    .await;
    expect_error(
        &c,
        "COPY items FROM STDIN; SELECT 1",
        &SqlState::FEATURE_NOT_SUPPORTED,
    )
    .await;

    // Inside a transaction block the copied rows go with the block.
    exec(&c, "BEGIN").await;
    let sink = c
        .copy_in::<_, &'static [u8]>("COPY items (id) FROM STDIN")
        .await
        .expect("copy in");
    let mut sink = pin!(sink);
    sink.send(&b"10\n11\n"[..]).await.expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 2);
    check(&c, "SELECT count(*) FROM items", "8").await;
    exec(&c, "ROLLBACK").await;
    check(&c, "SELECT count(*) FROM items", "6").await;
}

#[test]
fn psql_copy_and_backslash_copy() {
    if Command::new("psql").arg("--version").output().is_err() {
        skip(
            "pgcompat::copy::psql_copy_and_backslash_copy",
            "psql is not installed (Debian postgresql-client)",
        );
        return;
    }
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("out.csv");
    let script = format!(
        "CREATE TABLE t (a INT, b TEXT);\n\
         COPY t FROM STDIN;\n1\tone\n2\t\\N\n\\.\n\
         \\copy t to '{f}' with (format csv, header)\n\
         TRUNCATE t;\n\
         \\copy t from '{f}' csv header\n\
         SELECT a, coalesce(b, '<null>') FROM t ORDER BY a;\n\
         COPY t FROM STDIN;\n3\tthree\textra\n\\.\n\
         SELECT count(*) FROM t;\n",
        f = file.display()
    );
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-A",
        "-t",
        "-h",
        server.host(),
        "-p",
        &server.port().to_string(),
    ])
    .args(["-U", USER, "-d", "thunderdb"])
    .env("PGPASSWORD", PASSWORD);
    let run = run_child(&mut cmd, script.as_bytes(), Duration::from_secs(60), "psql");
    assert_eq!(
        run.stdout,
        "CREATE TABLE\nCOPY 2\nCOPY 2\nTRUNCATE TABLE\nCOPY 2\n1|one\n2|<null>\n2\n",
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("extra data after last expected column")
            && run.stderr.contains("CONTEXT:  COPY t, line 1"),
        "{}",
        run.describe()
    );
    let csv = std::fs::read_to_string(&file).expect("csv written");
    assert_eq!(csv, "a,b\n1,one\n2,\n");
}
