//! ThunderDB's errors as MySQL reports them: the error number, MySQL's SQLSTATE, and MySQL's
//! wording for the errors applications match on (1146, 1054, 1062, 1064, 1213 …).

use thunderdb_common::ThunderError;

/// A MySQL error: number, SQLSTATE, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MySqlError {
    pub code: u16,
    pub sqlstate: &'static str,
    pub message: String,
}

impl MySqlError {
    pub fn new(code: u16, sqlstate: &'static str, message: impl Into<String>) -> Self {
        MySqlError {
            code,
            sqlstate,
            message: message.into(),
        }
    }

    /// 1047 / 08S01: a command byte the server does not know.
    pub fn unknown_command() -> Self {
        MySqlError::new(1047, "08S01", "Unknown command")
    }

    /// 1045 / 28000.
    pub fn access_denied(user: &str, host: &str, with_password: bool) -> Self {
        MySqlError::new(
            1045,
            "28000",
            format!(
                "Access denied for user '{user}'@'{host}' (using password: {})",
                if with_password { "YES" } else { "NO" }
            ),
        )
    }

    /// 1243 / HY000: COM_STMT_EXECUTE of an id that was never prepared or was closed.
    pub fn unknown_statement(id: u32, command: &str) -> Self {
        MySqlError::new(
            1243,
            "HY000",
            format!("Unknown prepared statement handler ({id}) given to {command}"),
        )
    }

    /// 1835 / 08S01: a packet that does not follow the protocol.
    pub fn malformed() -> Self {
        MySqlError::new(1835, "08S01", "Malformed communication packet.")
    }

    /// The MySQL form of an engine error; `db` names the current database for messages such
    /// as `Table 'db.t' doesn't exist`.
    pub fn from_engine(e: &ThunderError, db: &str) -> Self {
        let quoted = first_quoted(&e.message);
        let name = quoted.clone().unwrap_or_default();
        match e.state.code() {
            "42P01" => MySqlError::new(1146, "42S02", format!("Table '{db}.{name}' doesn't exist")),
            "42703" => MySqlError::new(
                1054,
                "42S22",
                format!(
                    "Unknown column '{}' in 'field list'",
                    quoted.unwrap_or_else(|| column_of_message(&e.message))
                ),
            ),
            "23505" => {
                let value = e
                    .detail
                    .as_deref()
                    .and_then(|d| {
                        d.split_once(")=(")
                            .and_then(|(_, rest)| rest.rsplit_once(") already exists"))
                    })
                    .map(|(v, _)| v.to_string())
                    .unwrap_or_default();
                let key = match name.strip_suffix("_pkey") {
                    Some(table) => format!("{table}.PRIMARY"),
                    None => name,
                };
                MySqlError::new(
                    1062,
                    "23000",
                    format!("Duplicate entry '{value}' for key '{key}'"),
                )
            }
            "42601" => MySqlError::new(
                1064,
                "42000",
                format!(
                    "You have an error in your SQL syntax; check the manual that corresponds to your ThunderDB server version for the right syntax to use: {}",
                    e.message.trim_start_matches("syntax error: ")
                ),
            ),
            "40001" | "40P01" => MySqlError::new(
                1213,
                "40001",
                "Deadlock found when trying to get lock; try restarting transaction",
            ),
            "23502" => MySqlError::new(1048, "23000", format!("Column '{name}' cannot be null")),
            "22001" => MySqlError::new(
                1406,
                "22001",
                format!("Data too long for column: {}", e.message),
            ),
            "22003" => MySqlError::new(1690, "22003", format!("Out of range value: {}", e.message)),
            "22012" => MySqlError::new(1365, "22012", "Division by 0"),
            "22P02" | "22007" | "22008" => MySqlError::new(1292, "22007", e.message.clone()),
            "42P07" => MySqlError::new(1050, "42S01", format!("Table '{name}' already exists")),
            "42704" if e.message.starts_with("Unknown system variable") => {
                MySqlError::new(1193, "HY000", e.message.clone())
            }
            "42710" if e.message.starts_with("Can't create database") => {
                MySqlError::new(1007, "HY000", e.message.clone())
            }
            "22023" if e.message.starts_with("Variable '") => {
                MySqlError::new(1231, "42000", e.message.clone())
            }
            "42701" => MySqlError::new(1060, "42S21", format!("Duplicate column name '{name}'")),
            "42702" => MySqlError::new(
                1052,
                "23000",
                format!("Column '{name}' in field list is ambiguous"),
            ),
            "42883" => MySqlError::new(
                1305,
                "42000",
                format!(
                    "FUNCTION {db}.{} does not exist",
                    function_of_message(&e.message)
                ),
            ),
            "3B001" => MySqlError::new(1305, "42000", format!("SAVEPOINT {name} does not exist")),
            "3D000" => MySqlError::new(1049, "42000", format!("Unknown database '{name}'")),
            "28P01" | "28000" => MySqlError::new(1045, "28000", e.message.clone()),
            "23503" => MySqlError::new(
                1452,
                "23000",
                format!(
                    "Cannot add or update a child row: a foreign key constraint fails: {}",
                    e.message
                ),
            ),
            "23514" => MySqlError::new(
                3819,
                "HY000",
                format!("Check constraint '{name}' is violated."),
            ),
            "0A000" => MySqlError::new(
                1235,
                "42000",
                format!(
                    "This version of ThunderDB doesn't yet support '{}'",
                    e.message
                ),
            ),
            "57014" => MySqlError::new(1317, "70100", "Query execution was interrupted"),
            "55P03" => MySqlError::new(
                1205,
                "HY000",
                "Lock wait timeout exceeded; try restarting transaction",
            ),
            "25001" | "25P01" | "25000" => MySqlError::new(1568, "25001", e.message.clone()),
            "42501" => MySqlError::new(1142, "42000", e.message.clone()),
            "55000" => MySqlError::new(1036, "HY000", e.message.clone()),
            "08P01" => MySqlError::new(1835, "08S01", e.message.clone()),
            _ => MySqlError::new(1105, "HY000", e.message.clone()),
        }
    }
}

/// The first `"quoted"` name of a PostgreSQL-worded message.
fn first_quoted(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    Some(message[start..start + len].to_string())
}

/// `column x does not exist` (unquoted) → `x`; a qualified name keeps its qualifier.
fn column_of_message(message: &str) -> String {
    message
        .strip_prefix("column ")
        .and_then(|m| m.split(" does not exist").next())
        .unwrap_or(message)
        .to_string()
}

/// `function f(integer) does not exist` → `f`.
fn function_of_message(message: &str) -> String {
    message
        .strip_prefix("function ")
        .and_then(|m| m.split('(').next())
        .unwrap_or(message)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use thunderdb_common::SqlState;

    #[test]
    fn common_errors_read_like_mysql() {
        let e = ThunderError::new(
            SqlState::UNDEFINED_TABLE,
            "relation \"nope\" does not exist",
        );
        assert_eq!(
            MySqlError::from_engine(&e, "thunderdb"),
            MySqlError::new(1146, "42S02", "Table 'thunderdb.nope' doesn't exist")
        );
        let e = ThunderError::new(
            SqlState::UNIQUE_VIOLATION,
            "duplicate key value violates unique constraint \"t_pkey\"",
        )
        .with_detail("Key (id)=(1) already exists.");
        let m = MySqlError::from_engine(&e, "db");
        assert_eq!(
            (m.code, m.message.as_str()),
            (1062, "Duplicate entry '1' for key 't.PRIMARY'")
        );
        let e = ThunderError::new(SqlState::UNDEFINED_COLUMN, "column \"zz\" does not exist");
        assert_eq!(
            MySqlError::from_engine(&e, "db").message,
            "Unknown column 'zz' in 'field list'"
        );
        let e = ThunderError::new(
            SqlState::SERIALIZATION_FAILURE,
            "could not serialize access",
        );
        assert_eq!(MySqlError::from_engine(&e, "db").code, 1213);
    }
}
