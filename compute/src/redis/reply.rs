//! Command replies, independent of the wire: the RESP frontend encodes them as RESP2 or RESP3.

use thunderdb_walservice::WalError;

/// A command's reply, in RESP3's vocabulary; RESP2 clients get the nearest RESP2 form.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`, `-WRONGTYPE …`: the whole line after `-`.
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    /// RESP2 `$-1` / RESP3 `_`.
    Nil,
    /// RESP2 `*-1` / RESP3 `_` (a nil multi-bulk: EXEC aborted, BLPOP timed out).
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 `,`; RESP2 gets a bulk string.
    Double(f64),
    /// RESP3 `%`; RESP2 gets a flat array of pairs.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~`; RESP2 gets an array.
    Set(Vec<Reply>),
    /// RESP3 `#`; RESP2 gets 1 or 0.
    Bool(bool),
    /// RESP3 `>` (pub/sub messages); RESP2 gets an array.
    Push(Vec<Reply>),
    /// Member–score pairs (WITHSCORES): RESP3 an array of two-element arrays, RESP2 one flat
    /// array.
    Pairs(Vec<(Reply, Reply)>),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    pub fn bulk(b: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// A bulk string or nil.
    pub fn opt(b: Option<Vec<u8>>) -> Reply {
        b.map_or(Reply::Nil, Reply::Bulk)
    }

    /// An array of bulk strings.
    pub fn bulks(items: impl IntoIterator<Item = Vec<u8>>) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }
}

/// A command error as Redis words it: the code (`ERR`, `WRONGTYPE`, `EXECABORT` …) is the
/// first word of the message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RedisError(pub String);

impl RedisError {
    pub fn err(message: impl std::fmt::Display) -> RedisError {
        RedisError(format!("ERR {message}"))
    }

    pub fn wrong_type() -> RedisError {
        RedisError("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    }

    pub fn syntax() -> RedisError {
        RedisError::err("syntax error")
    }

    pub fn not_integer() -> RedisError {
        RedisError::err("value is not an integer or out of range")
    }

    pub fn not_float() -> RedisError {
        RedisError::err("value is not a valid float")
    }

    pub fn arity(command: &str) -> RedisError {
        RedisError::err(format!(
            "wrong number of arguments for '{}' command",
            command.to_lowercase()
        ))
    }

    /// A storage failure; details go to the log, not the client.
    pub fn internal(e: impl std::fmt::Display) -> RedisError {
        tracing::warn!(error = %e, "redis command failed in storage");
        RedisError::err("internal error; see the server log")
    }

    pub fn from_wal(e: WalError) -> RedisError {
        match e {
            WalError::ShuttingDown => RedisError("SHUTDOWN the server is shutting down".into()),
            WalError::Unavailable(_) => RedisError(
                "TRYAGAIN the commit outcome is unknown: the WAL service is unavailable".into(),
            ),
            other => RedisError::internal(other),
        }
    }
}

impl From<RedisError> for Reply {
    fn from(e: RedisError) -> Reply {
        Reply::Error(e.0)
    }
}
