//! MySQL system variables: the values connectors and tools read at connect time (`@@version`,
//! `@@tx_isolation`, `SHOW VARIABLES LIKE 'max_allowed_packet'` …) and the ones a session may
//! set. Values that do not describe ThunderDB are the defaults a MySQL 8.0 server reports.

use std::collections::BTreeMap;

/// `(name, default)`, lower case. Numeric values are read as integers by `@@name`.
const DEFAULTS: &[(&str, &str)] = &[
    ("auto_increment_increment", "1"),
    ("auto_increment_offset", "1"),
    ("autocommit", "1"),
    ("big_tables", "0"),
    ("character_set_client", "utf8mb4"),
    ("character_set_connection", "utf8mb4"),
    ("character_set_database", "utf8mb4"),
    ("character_set_filesystem", "binary"),
    ("character_set_results", "utf8mb4"),
    ("character_set_server", "utf8mb4"),
    ("character_set_system", "utf8mb3"),
    ("collation_connection", "utf8mb4_general_ci"),
    ("collation_database", "utf8mb4_general_ci"),
    ("collation_server", "utf8mb4_general_ci"),
    ("completion_type", "NO_CHAIN"),
    ("connect_timeout", "10"),
    ("default_storage_engine", "InnoDB"),
    ("default_week_format", "0"),
    ("div_precision_increment", "4"),
    ("foreign_key_checks", "1"),
    ("group_concat_max_len", "1024"),
    ("have_ssl", "DISABLED"),
    ("init_connect", ""),
    ("innodb_lock_wait_timeout", "50"),
    ("interactive_timeout", "28800"),
    ("license", "Apache-2.0"),
    ("lock_wait_timeout", "31536000"),
    ("lower_case_table_names", "1"),
    ("max_allowed_packet", "67108864"),
    ("max_execution_time", "0"),
    ("net_buffer_length", "16384"),
    ("net_read_timeout", "30"),
    ("net_write_timeout", "60"),
    ("performance_schema", "0"),
    ("protocol_version", "10"),
    ("query_cache_size", "0"),
    ("query_cache_type", "OFF"),
    ("require_secure_transport", "OFF"),
    ("session_track_schema", "1"),
    ("session_track_state_change", "0"),
    ("session_track_system_variables", ""),
    ("session_track_transaction_info", "OFF"),
    ("sql_auto_is_null", "0"),
    (
        "sql_mode",
        "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
    ),
    ("sql_require_primary_key", "0"),
    ("sql_safe_updates", "0"),
    ("sql_select_limit", "18446744073709551615"),
    ("sql_warnings", "0"),
    ("system_time_zone", "UTC"),
    ("time_zone", "SYSTEM"),
    ("transaction_isolation", "REPEATABLE-READ"),
    ("transaction_read_only", "0"),
    ("tx_isolation", "REPEATABLE-READ"),
    ("tx_read_only", "0"),
    ("unique_checks", "1"),
    ("version_comment", "ThunderDB"),
    ("version_compile_machine", "x86_64"),
    ("version_compile_os", "Linux"),
    ("wait_timeout", "28800"),
];

/// Variables that are `ON`/`OFF` in SHOW VARIABLES and 1/0 through `@@name`.
const BOOLEANS: &[&str] = &[
    "autocommit",
    "big_tables",
    "foreign_key_checks",
    "performance_schema",
    "session_track_schema",
    "session_track_state_change",
    "sql_auto_is_null",
    "sql_require_primary_key",
    "sql_safe_updates",
    "sql_warnings",
    "transaction_read_only",
    "tx_read_only",
    "unique_checks",
];

/// One session's system variables.
#[derive(Clone, Debug)]
pub struct SystemVariables {
    values: BTreeMap<String, String>,
}

/// Why a SET of a system variable failed.
pub enum SetError {
    Unknown,
    BadValue(String),
}

impl SystemVariables {
    pub fn new(version: &str, port: u16) -> Self {
        let mut values: BTreeMap<String, String> = DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        values.insert("version".into(), version.into());
        values.insert("port".into(), port.to_string());
        values.insert("hostname".into(), "localhost".into());
        SystemVariables { values }
    }

    /// The value as `@@name` reads it (booleans as 1/0).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(&name.to_lowercase()).map(String::as_str)
    }

    /// Every variable as SHOW VARIABLES prints it (booleans as ON/OFF).
    pub fn shown(&self) -> impl Iterator<Item = (&str, String)> {
        self.values.iter().map(|(k, v)| {
            let shown = if BOOLEANS.contains(&k.as_str()) {
                if v == "1" {
                    "ON".to_string()
                } else {
                    "OFF".to_string()
                }
            } else {
                v.clone()
            };
            (k.as_str(), shown)
        })
    }

    /// Sets a variable; the value is normalized as MySQL stores it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<String, SetError> {
        let name = name.to_lowercase();
        let name = match name.as_str() {
            "tx_isolation" => "transaction_isolation".to_string(),
            "tx_read_only" => "transaction_read_only".to_string(),
            _ => name,
        };
        if !self.values.contains_key(&name) {
            return Err(SetError::Unknown);
        }
        let value = if BOOLEANS.contains(&name.as_str()) {
            match value.to_lowercase().as_str() {
                "1" | "on" | "true" => "1".to_string(),
                "0" | "off" | "false" => "0".to_string(),
                _ => return Err(SetError::BadValue(value.to_string())),
            }
        } else if name == "transaction_isolation" {
            let v = value.to_uppercase().replace(' ', "-");
            match v.as_str() {
                "READ-UNCOMMITTED" | "READ-COMMITTED" | "REPEATABLE-READ" | "SERIALIZABLE" => v,
                _ => return Err(SetError::BadValue(value.to_string())),
            }
        } else {
            value.to_string()
        };
        self.values.insert(name.clone(), value.clone());
        match name.as_str() {
            "transaction_isolation" => {
                self.values.insert("tx_isolation".into(), value.clone());
            }
            "transaction_read_only" => {
                self.values.insert("tx_read_only".into(), value.clone());
            }
            _ => {}
        }
        Ok(value)
    }
}

/// Whether a variable's value reads as an integer through `@@name`.
pub fn is_integer(value: &str) -> bool {
    !value.is_empty() && value.parse::<i64>().is_ok()
}
