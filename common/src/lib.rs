//! Types shared by every ThunderDB service: log sequence numbers and ids, the memcomparable key
//! encoding, the versioned row codec, the WAL record format, configuration and SQLSTATE errors.

pub mod bin;
pub mod config;
pub mod datum;
pub mod error;
pub mod ids;
pub mod json;
pub mod keys;
pub mod password;
pub mod proto;
pub mod row;
pub mod text_input;
pub mod types;
pub mod wal;

pub use datum::Datum;
pub use error::{SqlState, ThunderError};
pub use ids::{IndexId, Lsn, TableId, TxnId};
pub use types::SqlType;
