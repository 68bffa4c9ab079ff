//! Configuration: a typed struct per service, loaded from TOML with `THUNDERDB_*` environment
//! overrides and validated at start-up with errors that name the bad key.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A configuration problem, naming the key at fault.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error("invalid value for {key}: {reason}")]
    BadValue { key: String, reason: String },
}

/// Settings of the all-in-one `thunderdb dev` process.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DevConfig {
    /// Where the WAL, the catalog and every other durable file lives.
    pub data_dir: PathBuf,
    /// Address every frontend listens on.
    pub listen: String,
    pub pg_port: u16,
    pub mysql_port: u16,
    pub resp_port: u16,
    pub http_port: u16,
    pub grpc_port: u16,
    /// Superuser name.
    pub user: String,
    /// Superuser password (dev only; `THUNDERDB_PASSWORD`).
    pub password: String,
    /// Database created at first start.
    pub database: String,
    /// Whether RESP clients must `AUTH` before other commands (Redis's `requirepass`). Off by
    /// default in `dev`, as a fresh Redis is; `AUTH` always checks the SQL users.
    pub resp_require_auth: bool,
    /// How PostgreSQL clients prove their password, as a `pg_hba.conf` method: `md5` (the
    /// default) answers with an MD5 challenge for roles whose password is stored as an MD5
    /// hash and with SCRAM-SHA-256 for the rest; `scram-sha-256` allows SCRAM only.
    pub pg_auth_method: String,
    /// PEM certificate chain and private key for TLS (PostgreSQL and MySQL); both empty: no
    /// TLS.
    pub tls_cert: String,
    pub tls_key: String,
    /// Threads that run requests; 0: one per CPU core.
    pub worker_threads: usize,
    pub wal: WalConfig,
}

impl Default for DevConfig {
    fn default() -> Self {
        DevConfig {
            data_dir: PathBuf::from("./thunderdb-data"),
            listen: "127.0.0.1".into(),
            pg_port: 5432,
            mysql_port: 3306,
            resp_port: 6379,
            http_port: 8088,
            grpc_port: 9090,
            user: "thunder".into(),
            password: "thunder".into(),
            database: "thunderdb".into(),
            resp_require_auth: false,
            pg_auth_method: "md5".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            worker_threads: 0,
            wal: WalConfig::default(),
        }
    }
}

/// Settings of the WAL service.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Raft node id of this walservice node.
    pub node_id: u64,
    /// Most commits gathered into one Raft entry.
    pub group_commit_max: usize,
    /// fsync the log before acknowledging (only tests that measure without it turn it off).
    pub fsync: bool,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            node_id: 1,
            group_commit_max: 256,
            fsync: true,
        }
    }
}

impl DevConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.user.is_empty() {
            return Err(ConfigError::BadValue {
                key: "user".into(),
                reason: "must not be empty".into(),
            });
        }
        if self.database.is_empty() {
            return Err(ConfigError::BadValue {
                key: "database".into(),
                reason: "must not be empty".into(),
            });
        }
        if !matches!(self.pg_auth_method.as_str(), "md5" | "scram-sha-256") {
            return Err(ConfigError::BadValue {
                key: "pg_auth_method".into(),
                reason: format!(
                    "\"{}\" is not one of md5, scram-sha-256",
                    self.pg_auth_method
                ),
            });
        }
        if self.wal.group_commit_max == 0 {
            return Err(ConfigError::BadValue {
                key: "wal.group_commit_max".into(),
                reason: "must be at least 1".into(),
            });
        }
        for (key, path, other) in [
            ("tls_cert", &self.tls_cert, &self.tls_key),
            ("tls_key", &self.tls_key, &self.tls_cert),
        ] {
            if path.is_empty() && !other.is_empty() {
                return Err(ConfigError::BadValue {
                    key: key.into(),
                    reason: "tls_cert and tls_key go together".into(),
                });
            }
            if !path.is_empty() && !Path::new(path).is_file() {
                return Err(ConfigError::BadValue {
                    key: key.into(),
                    reason: format!("{path:?} is not a readable file"),
                });
            }
        }
        if self.listen.parse::<std::net::IpAddr>().is_err() && self.listen != "localhost" {
            return Err(ConfigError::BadValue {
                key: "listen".into(),
                reason: format!("{:?} is not an IP address", self.listen),
            });
        }
        Ok(())
    }
}

/// Loads `T` from an optional TOML file, then applies `THUNDERDB_<KEY>` environment overrides
/// (nested keys joined by `_`, e.g. `THUNDERDB_WAL_FSYNC`), then deserializes.
pub fn load<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut value =
        toml::Value::try_from(T::default()).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let from_file: toml::Value = text
            .parse::<toml::Table>()
            .map(toml::Value::Table)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        merge(&mut value, from_file);
    }
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("THUNDERDB_"))
        .collect();
    apply_env(&mut value, &mut Vec::new(), &env)?;
    value
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn apply_env(
    value: &mut toml::Value,
    path: &mut Vec<String>,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                path.push(k.clone());
                apply_env(v, path, env)?;
                path.pop();
            }
        }
        leaf => {
            let name = format!("THUNDERDB_{}", path.join("_").to_uppercase());
            if let Some((_, raw)) = env.iter().find(|(k, _)| *k == name) {
                let key = path.join(".");
                let bad = |reason: String| ConfigError::BadValue {
                    key: format!("{key} (from {name})"),
                    reason,
                };
                *leaf = match leaf {
                    toml::Value::Integer(_) => toml::Value::Integer(
                        raw.parse()
                            .map_err(|_| bad(format!("{raw:?} is not an integer")))?,
                    ),
                    toml::Value::Boolean(_) => toml::Value::Boolean(
                        raw.parse()
                            .map_err(|_| bad(format!("{raw:?} is not true or false")))?,
                    ),
                    toml::Value::Float(_) => toml::Value::Float(
                        raw.parse()
                            .map_err(|_| bad(format!("{raw:?} is not a number")))?,
                    ),
                    _ => toml::Value::String(raw.clone()),
                };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "pg_port = 6000\n[wal]\nfsync = false\n").unwrap();
        let env = vec![
            ("THUNDERDB_PASSWORD".to_string(), "s3cret".to_string()),
            ("THUNDERDB_WAL_GROUP_COMMIT_MAX".into(), "8".into()),
        ];
        let cfg: DevConfig = load(Some(&path), env).unwrap();
        assert_eq!(cfg.pg_port, 6000);
        assert!(!cfg.wal.fsync);
        assert_eq!(cfg.wal.group_commit_max, 8);
        assert_eq!(cfg.password, "s3cret");
        assert_eq!(cfg.mysql_port, 3306);
    }

    #[test]
    fn errors_name_the_key() {
        let err = load::<DevConfig>(
            None,
            vec![("THUNDERDB_PG_PORT".to_string(), "abc".to_string())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("pg_port"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "pg_prot = 1\n").unwrap();
        let err = load::<DevConfig>(Some(&path), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("pg_prot"), "{err}");
        let cfg = DevConfig {
            wal: WalConfig {
                group_commit_max: 0,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("wal.group_commit_max")
        );
        // TLS needs both files, and they must exist.
        let cfg = DevConfig {
            tls_cert: path.display().to_string(),
            ..Default::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("tls_key"));
        let cfg = DevConfig {
            tls_cert: path.display().to_string(),
            tls_key: "/nonexistent/key.pem".into(),
            ..Default::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("tls_key"));
    }
}
