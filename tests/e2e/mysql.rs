//! The MySQL frontend as MySQL users see it: the `mariadb` command-line client (Debian
//! mariadb-client), PyMySQL, mysql_async (binary protocol), raw sockets for bad input, the
//! same tables through PostgreSQL, and `sysbench oltp_read_write` unmodified.
//!
//! - `cli`: the mariadb client in batch mode: DDL/DML, SHOW/DESCRIBE/USE, error numbers;
//! - `py`: one PyMySQL script per area (`mysql/py/*.py`, with `prelude.py`), printing `ok`;
//! - `binary`: prepared statements with typed parameters and binary rows (mysql_async);
//! - `wire`: malformed and unknown packets on raw sockets, COM_FIELD_LIST, big packets;
//! - `cross`: a table written through one protocol is read and written through the other;
//! - `sysbench`: `sysbench oltp_read_write` prepare, run and cleanup.
//!
//! A test whose client is missing prints `skipped: …` and passes (`scripts/test` installs them).

mod binary;
mod cli;
mod cross;
mod py;
mod sysbench;
mod wire;

use crate::harness::{Backend, PASSWORD, TestServer, USER, skip};

/// Starts ThunderDB for a MySQL test; `None` (with a message) under the PostgreSQL backend.
fn server(test: &str) -> Option<TestServer> {
    if Backend::from_env() == Backend::Postgres {
        skip(test, "the PostgreSQL backend has no MySQL frontend");
        return None;
    }
    let server = TestServer::start();
    assert_ne!(
        server.mysql_port(),
        0,
        "thunderdb did not print `mysql listening on ADDR`:\n{}",
        server.log_tail(60)
    );
    Some(server)
}

use crate::harness::installed;

/// The `mysql://` URL of the server's MySQL frontend (database selected).
fn url(server: &TestServer) -> String {
    format!(
        "mysql://{USER}:{PASSWORD}@127.0.0.1:{}/thunderdb?prefer_socket=false",
        server.mysql_port()
    )
}
