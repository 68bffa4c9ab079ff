//! ThunderDB's end-to-end tests: one test binary (each binary links the whole server's
//! dependency tree), one real `thunderdb dev` process per test, real clients.
//!
//! Run a group with `cargo test --test e2e <module>::`, e.g. `cargo test --test e2e txn::`.
//! `THUNDERDB_E2E_BACKEND=postgres` runs the same tests against a stock PostgreSQL 15 to check
//! the tests themselves (see `harness.rs` and `tests/README.md` for the other knobs).

mod bad_input;
mod bank;
mod cluster;
mod differential;
mod durability;
mod harness;
mod mysql;
mod pgcompat;
mod psql;
mod redis;
mod session;
mod slt;
mod sql;
mod stock_postgres;
mod storage;
mod tpch;
mod txn;
