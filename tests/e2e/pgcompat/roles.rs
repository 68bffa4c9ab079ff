//! Roles and passwords: CREATE/ALTER/DROP ROLE and USER take effect for new connections;
//! passwords are stored as SCRAM-SHA-256 verifiers or, under `password_encryption = md5`, as
//! MD5 hashes checked by an MD5 challenge; NOLOGIN and VALID UNTIL refuse logins; PostgreSQL's
//! errors for the rest. The same roles log in over MySQL and RESP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::harness::{Backend, DATABASE, ServerOptions, TestServer, skip};
use crate::sql::{check, exec, expect_error};

/// The SQLSTATE of a failed login.
async fn login_error(server: &TestServer, user: &str, password: &str) -> String {
    match server.connect_as(user, password).await {
        Ok(_) => panic!("{user} logged in with password {password:?}"),
        Err(e) => e
            .as_db_error()
            .map(|db| db.code().code().to_string())
            .unwrap_or_else(|| format!("not a server error: {e}")),
    }
}

async fn current_user(server: &TestServer, user: &str, password: &str) -> String {
    let c = server
        .connect_as(user, password)
        .await
        .unwrap_or_else(|e| panic!("{user} cannot log in: {e}"));
    crate::sql::query_value(&c, "SELECT current_user").await
}

/// The authentication request the server answers a startup packet for `user` with:
/// 5 (MD5 challenge) or 10 (SASL).
fn auth_request(server: &TestServer, user: &str) -> i32 {
    let mut s = TcpStream::connect((server.host(), server.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", DATABASE)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = i32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    packet.extend(body);
    s.write_all(&packet).unwrap();
    let mut head = [0u8; 9];
    s.read_exact(&mut head).expect("authentication request");
    assert_eq!(head[0], b'R', "expected an authentication request");
    i32::from_be_bytes([head[5], head[6], head[7], head[8]])
}

#[tokio::test]
async fn roles_log_in_and_change() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE ROLE app LOGIN PASSWORD 'app-secret'").await;
    exec(
        &c,
        "CREATE USER reader WITH PASSWORD 'r1' VALID UNTIL 'infinity'",
    )
    .await;
    exec(&c, "CREATE ROLE grp").await;
    exec(&c, "CREATE ROLE nologin_role PASSWORD 'x'").await;
    exec(
        &c,
        "CREATE ROLE expired LOGIN PASSWORD 'x' VALID UNTIL '2001-01-01 00:00:00+00'",
    )
    .await;
    check(
        &c,
        "SELECT rolname, rolcanlogin, rolsuper, rolpassword FROM pg_roles \
         WHERE rolname IN ('app', 'reader', 'grp', 'nologin_role') ORDER BY rolname",
        "app|t|f|********\ngrp|f|f|********\nnologin_role|f|f|********\nreader|t|f|********",
    )
    .await;
    check(
        &c,
        "SELECT rolname, left(rolpassword, 14) FROM pg_authid WHERE rolname IN ('app', 'grp') \
         ORDER BY 1",
        "app|SCRAM-SHA-256$\ngrp|NULL",
    )
    .await;
    check(
        &c,
        "SELECT rolvaliduntil FROM pg_roles WHERE rolname = 'expired'",
        "2001-01-01 00:00:00+00",
    )
    .await;
    check(
        &c,
        "SELECT usename FROM pg_user WHERE usename IN ('app', 'grp', 'reader') ORDER BY 1",
        "app\nreader",
    )
    .await;

    assert_eq!(current_user(&server, "app", "app-secret").await, "app");
    assert_eq!(current_user(&server, "reader", "r1").await, "reader");
    assert_eq!(login_error(&server, "app", "wrong").await, "28P01");
    assert_eq!(login_error(&server, "nobody", "x").await, "28P01");
    assert_eq!(login_error(&server, "grp", "").await, "28P01");
    assert_eq!(login_error(&server, "nologin_role", "x").await, "28000");
    assert_eq!(login_error(&server, "expired", "x").await, "28P01");
    assert_eq!(auth_request(&server, "app"), 10);

    // A new password works for new connections, the old one no longer.
    let app = server.connect_as("app", "app-secret").await.unwrap();
    exec(&app, "ALTER ROLE app PASSWORD 'rotated'").await;
    assert_eq!(login_error(&server, "app", "app-secret").await, "28P01");
    assert_eq!(current_user(&server, "app", "rotated").await, "app");
    // … while the open session goes on.
    check(&app, "SELECT current_user", "app").await;

    // Only a superuser or CREATEROLE role manages roles.
    expect_error(&app, "CREATE ROLE other", &SqlState::INSUFFICIENT_PRIVILEGE).await;
    expect_error(
        &app,
        "ALTER ROLE reader PASSWORD 'x'",
        &SqlState::INSUFFICIENT_PRIVILEGE,
    )
    .await;
    expect_error(&app, "DROP ROLE reader", &SqlState::INSUFFICIENT_PRIVILEGE).await;
    exec(&c, "ALTER ROLE app CREATEROLE").await;
    exec(&app, "CREATE ROLE made_by_app").await;
    expect_error(
        &app,
        "CREATE ROLE su SUPERUSER",
        &SqlState::INSUFFICIENT_PRIVILEGE,
    )
    .await;

    // PostgreSQL's errors.
    expect_error(&c, "CREATE ROLE app", &SqlState::DUPLICATE_OBJECT).await;
    expect_error(&c, "CREATE ROLE IF NOT EXISTS app", &SqlState::SYNTAX_ERROR).await;
    expect_error(&c, "CREATE ROLE pg_mine", &SqlState::RESERVED_NAME).await;
    expect_error(&c, "CREATE ROLE public", &SqlState::RESERVED_NAME).await;
    expect_error(
        &c,
        "ALTER ROLE ghost PASSWORD 'x'",
        &SqlState::UNDEFINED_OBJECT,
    )
    .await;
    expect_error(&c, "DROP ROLE ghost", &SqlState::UNDEFINED_OBJECT).await;
    exec(&c, "DROP ROLE IF EXISTS ghost").await;
    expect_error(&c, "DROP ROLE thunder", &SqlState::OBJECT_IN_USE).await;
    exec(&c, "CREATE ROLE limited CONNECTION LIMIT 3").await;
    check(
        &c,
        "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'limited'",
        "3",
    )
    .await;
    expect_error(
        &c,
        "SET password_encryption = 'rot13'",
        &SqlState::INVALID_PARAMETER_VALUE,
    )
    .await;

    // Renamed and dropped roles.
    exec(&c, "ALTER ROLE reader RENAME TO auditor").await;
    assert_eq!(login_error(&server, "reader", "r1").await, "28P01");
    assert_eq!(current_user(&server, "auditor", "r1").await, "auditor");
    exec(&c, "DROP USER auditor, grp").await;
    assert_eq!(login_error(&server, "auditor", "r1").await, "28P01");
    check(
        &c,
        "SELECT count(*) FROM pg_roles WHERE rolname IN ('auditor', 'grp')",
        "0",
    )
    .await;

    // The configured superuser keeps its password when ALTER ROLE sets something else.
    exec(&c, "ALTER ROLE thunder CONNECTION LIMIT 50").await;
    assert_eq!(current_user(&server, "thunder", "thunder").await, "thunder");
    // A CREATEROLE role cannot rename a superuser.
    exec(&c, "CREATE ROLE boss SUPERUSER").await;
    expect_error(
        &app,
        "ALTER ROLE boss RENAME TO b2",
        &SqlState::INSUFFICIENT_PRIVILEGE,
    )
    .await;

    // Role changes are transactional.
    exec(&c, "BEGIN").await;
    exec(&c, "CREATE ROLE never LOGIN PASSWORD 'n'").await;
    exec(&c, "ROLLBACK").await;
    assert_eq!(login_error(&server, "never", "n").await, "28P01");
}

#[tokio::test]
async fn md5_passwords_answer_an_md5_challenge() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "SET password_encryption = 'md5'").await;
    check(&c, "SHOW password_encryption", "md5").await;
    exec(&c, "CREATE USER legacy PASSWORD 'old-school'").await;
    // The stored form is PostgreSQL's: 'md5' || md5(password || user).
    check(
        &c,
        "SELECT rolpassword = 'md5' || md5('old-school' || 'legacy') FROM pg_authid \
         WHERE rolname = 'legacy'",
        "t",
    )
    .await;
    // A password given in a stored form is kept as it is (what pg_dumpall writes).
    exec(&c, "RESET password_encryption").await;
    // md5('from-dump' || 'dumped')
    exec(
        &c,
        "CREATE USER dumped PASSWORD 'md5fe6ae279df87a052156b78f0d272bed6'",
    )
    .await;
    assert_eq!(auth_request(&server, "legacy"), 5);
    assert_eq!(auth_request(&server, "dumped"), 5);
    assert_eq!(
        current_user(&server, "legacy", "old-school").await,
        "legacy"
    );
    assert_eq!(current_user(&server, "dumped", "from-dump").await, "dumped");
    assert_eq!(login_error(&server, "legacy", "new-school").await, "28P01");
    // Renaming a role clears its MD5 password, which was salted with the old name.
    exec(&c, "ALTER ROLE dumped RENAME TO undumped").await;
    assert_eq!(login_error(&server, "undumped", "from-dump").await, "28P01");
    // Back to SCRAM for a new password.
    exec(&c, "ALTER ROLE legacy PASSWORD 'modern'").await;
    assert_eq!(auth_request(&server, "legacy"), 10);
    assert_eq!(current_user(&server, "legacy", "modern").await, "legacy");
}

#[tokio::test]
async fn scram_only_refuses_md5_passwords() {
    const TEST: &str = "pgcompat::roles::scram_only_refuses_md5_passwords";
    if Backend::from_env() == Backend::Postgres {
        skip(TEST, "the stock PostgreSQL backend has one pg_hba method");
        return;
    }
    let server = TestServer::start_with(ServerOptions {
        env: vec![("THUNDERDB_PG_AUTH_METHOD".into(), "scram-sha-256".into())],
        ..Default::default()
    });
    let c = server.connect().await;
    exec(&c, "SET password_encryption = 'md5'").await;
    exec(&c, "CREATE USER legacy PASSWORD 'old-school'").await;
    exec(&c, "RESET password_encryption").await;
    exec(&c, "CREATE USER modern PASSWORD 'new-school'").await;
    assert_eq!(auth_request(&server, "legacy"), 10);
    assert_eq!(login_error(&server, "legacy", "old-school").await, "28P01");
    assert_eq!(
        current_user(&server, "modern", "new-school").await,
        "modern"
    );
}

#[tokio::test]
async fn roles_log_in_over_mysql_and_resp() {
    const TEST: &str = "pgcompat::roles::roles_log_in_over_mysql_and_resp";
    if Backend::from_env() == Backend::Postgres {
        skip(
            TEST,
            "the stock PostgreSQL backend has no MySQL or RESP frontend",
        );
        return;
    }
    use mysql_async::prelude::*;
    let server = TestServer::start();
    let c = server.connect().await;
    exec(&c, "CREATE USER app PASSWORD 'app-secret'").await;
    exec(&c, "CREATE ROLE nologin_role PASSWORD 'x'").await;
    let url = |user: &str, password: &str| {
        format!(
            "mysql://{user}:{password}@127.0.0.1:{}/{DATABASE}",
            server.mysql_port()
        )
    };
    let mut my = mysql_async::Conn::from_url(url("app", "app-secret"))
        .await
        .expect("app logs in over MySQL");
    let who: Option<String> = my.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("app@%"));
    for (user, password) in [("app", "wrong"), ("nologin_role", "x"), ("ghost", "x")] {
        match mysql_async::Conn::from_url(url(user, password)).await {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045, "{user}"),
            other => panic!("{user}/{password} over MySQL: {other:?}"),
        }
    }

    let resp = |args: &[&str]| -> String {
        let mut s = TcpStream::connect(("127.0.0.1", server.resp_port())).expect("resp");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut cmd = format!("*{}\r\n", args.len());
        for a in args {
            cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(cmd.as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(resp(&["AUTH", "app", "app-secret"]), "+OK\r\n");
    assert!(resp(&["AUTH", "app", "nope"]).starts_with("-WRONGPASS"));
    assert!(resp(&["AUTH", "nologin_role", "x"]).starts_with("-WRONGPASS"));
    // ALTER ROLE reaches the other frontends too.
    exec(&c, "ALTER ROLE app PASSWORD 'rotated'").await;
    assert!(resp(&["AUTH", "app", "app-secret"]).starts_with("-WRONGPASS"));
    assert_eq!(resp(&["AUTH", "app", "rotated"]), "+OK\r\n");
    assert!(
        mysql_async::Conn::from_url(url("app", "rotated"))
            .await
            .is_ok()
    );
}
