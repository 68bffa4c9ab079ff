//! The proxy's error type: what went wrong on a client connection, with its SQLSTATE.

use pgwire::error::{ErrorInfo, PgWireError, SEVERITY_ERROR, SEVERITY_FATAL};
use thunderdb_common::ThunderError;

/// Errors of the protocol frontends.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening or a client socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The engine rejected a statement; forwarded to the client as is.
    #[error(transparent)]
    Sql(#[from] ThunderError),
    /// The client broke the wire protocol (SQLSTATE 08P01).
    #[error("{0}")]
    Protocol(String),
    /// A value sent by the client (a bind parameter) or produced by the engine cannot be
    /// represented; `sqlstate` is the data exception PostgreSQL raises in the same case.
    #[error("{message}")]
    InvalidValue {
        sqlstate: &'static str,
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(sqlstate: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidValue {
            sqlstate,
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Error::Protocol(message.into())
    }

    /// The SQLSTATE the client receives.
    pub fn sqlstate(&self) -> &str {
        match self {
            Error::Io(_) => "08006",
            Error::Sql(e) => e.state.code(),
            Error::Protocol(_) => "08P01",
            Error::InvalidValue { sqlstate, .. } => sqlstate,
        }
    }

    /// The `ErrorResponse` fields for this error at `severity` (`ERROR` or `FATAL`).
    pub(crate) fn to_error_info(&self, severity: &str) -> ErrorInfo {
        let mut info = ErrorInfo::new(
            severity.to_owned(),
            self.sqlstate().to_owned(),
            self.to_string(),
        );
        if let Error::Sql(e) = self {
            info.detail = e.detail.clone();
        }
        info.severity_nonlocalized = Some(severity.to_owned());
        info
    }

    /// This error as pgwire reports it, ending the statement but not the connection.
    pub(crate) fn into_pgwire(self) -> PgWireError {
        PgWireError::UserError(Box::new(self.to_error_info(SEVERITY_ERROR)))
    }

    /// This error as pgwire reports it, ending the connection.
    pub(crate) fn into_pgwire_fatal(self) -> PgWireError {
        PgWireError::UserError(Box::new(self.to_error_info(SEVERITY_FATAL)))
    }
}

impl From<Error> for PgWireError {
    fn from(e: Error) -> Self {
        e.into_pgwire()
    }
}

/// Result with the proxy's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
