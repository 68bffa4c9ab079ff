//! Errors that reach clients, each with its PostgreSQL SQLSTATE.

use thiserror::Error;

/// A PostgreSQL SQLSTATE code. The other protocols map from it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SqlState(pub &'static str);

impl SqlState {
    pub const SUCCESSFUL: SqlState = SqlState("00000");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState("0A000");
    pub const STRING_DATA_RIGHT_TRUNCATION: SqlState = SqlState("22001");
    pub const NUMERIC_VALUE_OUT_OF_RANGE: SqlState = SqlState("22003");
    pub const DATETIME_FIELD_OVERFLOW: SqlState = SqlState("22008");
    pub const DIVISION_BY_ZERO: SqlState = SqlState("22012");
    pub const INVALID_TEXT_REPRESENTATION: SqlState = SqlState("22P02");
    pub const DATA_EXCEPTION: SqlState = SqlState("22000");
    pub const NOT_NULL_VIOLATION: SqlState = SqlState("23502");
    pub const FOREIGN_KEY_VIOLATION: SqlState = SqlState("23503");
    pub const UNIQUE_VIOLATION: SqlState = SqlState("23505");
    pub const CHECK_VIOLATION: SqlState = SqlState("23514");
    pub const INVALID_TRANSACTION_STATE: SqlState = SqlState("25000");
    pub const ACTIVE_SQL_TRANSACTION: SqlState = SqlState("25001");
    pub const NO_ACTIVE_SQL_TRANSACTION: SqlState = SqlState("25P01");
    pub const IN_FAILED_SQL_TRANSACTION: SqlState = SqlState("25P02");
    pub const INVALID_SAVEPOINT_SPECIFICATION: SqlState = SqlState("3B001");
    pub const INVALID_PASSWORD: SqlState = SqlState("28P01");
    pub const INVALID_AUTHORIZATION: SqlState = SqlState("28000");
    pub const SERIALIZATION_FAILURE: SqlState = SqlState("40001");
    pub const SYNTAX_ERROR: SqlState = SqlState("42601");
    pub const UNDEFINED_COLUMN: SqlState = SqlState("42703");
    pub const UNDEFINED_FUNCTION: SqlState = SqlState("42883");
    pub const UNDEFINED_TABLE: SqlState = SqlState("42P01");
    pub const UNDEFINED_OBJECT: SqlState = SqlState("42704");
    pub const DUPLICATE_TABLE: SqlState = SqlState("42P07");
    pub const DUPLICATE_OBJECT: SqlState = SqlState("42710");
    pub const DUPLICATE_COLUMN: SqlState = SqlState("42701");
    pub const AMBIGUOUS_COLUMN: SqlState = SqlState("42702");
    pub const DATATYPE_MISMATCH: SqlState = SqlState("42804");
    pub const INVALID_PARAMETER_VALUE: SqlState = SqlState("22023");
    pub const PROTOCOL_VIOLATION: SqlState = SqlState("08P01");
    pub const QUERY_CANCELED: SqlState = SqlState("57014");
    pub const ADMIN_SHUTDOWN: SqlState = SqlState("57P01");
    pub const INTERNAL_ERROR: SqlState = SqlState("XX000");
    pub const IO_ERROR: SqlState = SqlState("58030");
    pub const SNAPSHOT_TOO_OLD: SqlState = SqlState("72000");
    pub const UNAVAILABLE: SqlState = SqlState("08006");
    pub const INVALID_CATALOG_NAME: SqlState = SqlState("3D000");
    pub const INVALID_SCHEMA_NAME: SqlState = SqlState("3F000");
    pub const WRONG_OBJECT_TYPE: SqlState = SqlState("42809");
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState("42501");
    pub const RESERVED_NAME: SqlState = SqlState("42939");
    pub const OBJECT_IN_USE: SqlState = SqlState("55006");
    pub const INVALID_DATETIME_FORMAT: SqlState = SqlState("22007");
    pub const DUPLICATE_SCHEMA: SqlState = SqlState("42P06");
    pub const CONFIG_FILE_ERROR: SqlState = SqlState("F0000");

    pub fn code(&self) -> &'static str {
        self.0
    }
}

/// An error as a client sees it: a SQLSTATE and a message without internal details.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("{message}")]
pub struct ThunderError {
    pub state: SqlState,
    pub message: String,
    pub detail: Option<String>,
}

impl ThunderError {
    pub fn new(state: SqlState, message: impl Into<String>) -> Self {
        ThunderError {
            state,
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(SqlState::INTERNAL_ERROR, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(SqlState::FEATURE_NOT_SUPPORTED, message)
    }
}
