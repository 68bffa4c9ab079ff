//! PostgreSQL compatibility beyond the spine: savepoints, sequences, table maintenance
//! statements, ALTER TABLE, COPY and pgbench, each through real clients and checked the way PostgreSQL 15
//! answers (`THUNDERDB_E2E_BACKEND=postgres` runs them against a stock PostgreSQL).

mod alter;
mod analyze;
mod arrays;
pub(crate) mod copy;
mod drivers;
mod enums;
mod explain;
mod foreign_keys;
mod json;
mod locking;
mod pgbench;
mod point_reads;
mod privileges;
mod roles;
mod savepoints;
mod schemas;
mod sequences;
mod tls;
mod views;
