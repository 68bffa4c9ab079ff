//! Configuration: a typed struct per service, loaded from TOML with `THUNDERDB_*` environment
//! overrides and validated at start-up with errors that name the bad key.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

mod roles;
pub use roles::{
    ComputeNodeConfig, PageNodeConfig, ProxyConfig, WalNodeConfig, parse_addresses, parse_members,
};

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
    pub storage: StorageConfig,
    pub pageserver: PageServerConfig,
    pub columnar: ColumnarConfig,
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
            storage: StorageConfig::default(),
            pageserver: PageServerConfig::default(),
            columnar: ColumnarConfig::default(),
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
    /// A snapshot of the log's state is taken after this many Raft entries; the log it
    /// covers is then purged.
    pub snapshot_after_entries: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            node_id: 1,
            group_commit_max: 256,
            fsync: true,
            snapshot_after_entries: 100_000,
        }
    }
}

/// Where object storage is: the source of truth for layers and segments next to the WAL.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `local` (a directory; in `dev` `<data_dir>/objects` unless `path` says otherwise) or
    /// `s3` (AWS or any S3-compatible server).
    pub kind: String,
    /// Directory of a `local` store.
    pub path: String,
    /// S3 bucket.
    pub bucket: String,
    /// Key prefix inside the bucket or directory, so several clusters can share one.
    pub prefix: String,
    /// S3 endpoint URL for S3-compatible servers (MinIO, moto, …); empty: AWS.
    pub endpoint: String,
    pub region: String,
    /// Credentials; empty: the standard `AWS_*` environment variables.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    /// Allow `http://` endpoints.
    pub allow_http: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: "local".into(),
            path: String::new(),
            bucket: String::new(),
            prefix: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: true,
            allow_http: false,
        }
    }
}

/// Settings of the pageserver's layers and caches.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PageServerConfig {
    /// The in-memory layer is frozen into a delta layer once it holds this many bytes.
    pub freeze_bytes: u64,
    /// … or once its oldest write is this old.
    pub freeze_after_secs: u64,
    /// A new image layer generation is written once the delta layers above the newest image
    /// hold this many bytes (or half the image's size, when that is more).
    pub image_after_delta_bytes: u64,
    /// How long superseded layers are kept for reads at older LSNs.
    pub history_retention_secs: u64,
    /// Memory and local disk for cached layer blocks.
    pub cache_memory_bytes: u64,
    pub cache_disk_bytes: u64,
}

impl Default for PageServerConfig {
    fn default() -> Self {
        PageServerConfig {
            freeze_bytes: 64 << 20,
            freeze_after_secs: 600,
            image_after_delta_bytes: 256 << 20,
            history_retention_secs: 3600,
            cache_memory_bytes: 256 << 20,
            cache_disk_bytes: 2 << 30,
        }
    }
}

/// Settings of the columnar segments analytic scans read.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ColumnarConfig {
    /// Whether tables get Parquet segments (and scans read them).
    pub enabled: bool,
    /// A table's segment is rewritten once this many of its rows changed since it was
    /// written (or once it has this many rows and no segment).
    pub compact_after_rows: u64,
    /// How often the compactor looks for tables to compact.
    pub compact_interval_secs: u64,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Rows per Parquet file; a larger table's segment is several files.
    pub file_rows: u64,
    /// Local disk for segment files read from remote object storage (S3), in
    /// `<data_dir>/compute/segments`.
    pub cache_bytes: u64,
}

impl Default for ColumnarConfig {
    fn default() -> Self {
        ColumnarConfig {
            enabled: true,
            compact_after_rows: 100_000,
            compact_interval_secs: 10,
            row_group_rows: 128 * 1024,
            file_rows: 1 << 20,
            cache_bytes: 4 << 30,
        }
    }
}

impl ColumnarConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value, least) in [
            ("compact_after_rows", self.compact_after_rows, 1),
            ("compact_interval_secs", self.compact_interval_secs, 1),
            ("row_group_rows", self.row_group_rows as u64, 1024),
            ("file_rows", self.file_rows, 1024),
            ("cache_bytes", self.cache_bytes, 16 << 20),
        ] {
            if value < least {
                return Err(ConfigError::BadValue {
                    key: format!("columnar.{key}"),
                    reason: format!("must be at least {least}"),
                });
            }
        }
        Ok(())
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::BadValue {
            key: format!("storage.{key}"),
            reason,
        };
        match self.kind.as_str() {
            "local" => Ok(()),
            "s3" if self.bucket.is_empty() => Err(bad("bucket", "s3 needs a bucket".into())),
            "s3" if self.endpoint.starts_with("http://") && !self.allow_http => Err(bad(
                "endpoint",
                "an http:// endpoint needs storage.allow_http = true".into(),
            )),
            "s3" => Ok(()),
            other => Err(bad("kind", format!("{other:?} is not one of local, s3"))),
        }
    }
}

impl PageServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value, least) in [
            ("freeze_bytes", self.freeze_bytes, 1024),
            ("freeze_after_secs", self.freeze_after_secs, 1),
            (
                "image_after_delta_bytes",
                self.image_after_delta_bytes,
                1024,
            ),
            ("cache_memory_bytes", self.cache_memory_bytes, 1 << 20),
            ("cache_disk_bytes", self.cache_disk_bytes, 16 << 20),
        ] {
            if value < least {
                return Err(ConfigError::BadValue {
                    key: format!("pageserver.{key}"),
                    reason: format!("must be at least {least}"),
                });
            }
        }
        Ok(())
    }
}

/// What a process that serves clients (`dev`, `compute`) needs for its frontends: the
/// `[frontends]` table of a compute node's config (`dev` keeps these keys at its top level).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Frontends {
    pub listen: String,
    pub pg_port: u16,
    pub mysql_port: u16,
    pub resp_port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
    pub resp_require_auth: bool,
    pub pg_auth_method: String,
    pub tls_cert: String,
    pub tls_key: String,
}

impl Default for Frontends {
    fn default() -> Self {
        DevConfig::default().frontends()
    }
}

impl Frontends {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::BadValue {
            key: key.into(),
            reason,
        };
        if self.user.is_empty() {
            return Err(bad("user", "must not be empty".into()));
        }
        if self.database.is_empty() {
            return Err(bad("database", "must not be empty".into()));
        }
        if !matches!(self.pg_auth_method.as_str(), "md5" | "scram-sha-256") {
            return Err(bad(
                "pg_auth_method",
                format!(
                    "\"{}\" is not one of md5, scram-sha-256",
                    self.pg_auth_method
                ),
            ));
        }
        for (key, path, other) in [
            ("tls_cert", &self.tls_cert, &self.tls_key),
            ("tls_key", &self.tls_key, &self.tls_cert),
        ] {
            if path.is_empty() && !other.is_empty() {
                return Err(bad(key, "tls_cert and tls_key go together".into()));
            }
            if !path.is_empty() && !Path::new(path).is_file() {
                return Err(bad(key, format!("{path:?} is not a readable file")));
            }
        }
        if self.listen.parse::<std::net::IpAddr>().is_err() && self.listen != "localhost" {
            return Err(bad(
                "listen",
                format!("{:?} is not an IP address", self.listen),
            ));
        }
        Ok(())
    }
}

impl DevConfig {
    pub fn frontends(&self) -> Frontends {
        Frontends {
            listen: self.listen.clone(),
            pg_port: self.pg_port,
            mysql_port: self.mysql_port,
            resp_port: self.resp_port,
            user: self.user.clone(),
            password: self.password.clone(),
            database: self.database.clone(),
            resp_require_auth: self.resp_require_auth,
            pg_auth_method: self.pg_auth_method.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.frontends().validate()?;
        if self.wal.snapshot_after_entries == 0 {
            return Err(ConfigError::BadValue {
                key: "wal.snapshot_after_entries".into(),
                reason: "must be at least 1".into(),
            });
        }
        if self.wal.group_commit_max == 0 {
            return Err(ConfigError::BadValue {
                key: "wal.group_commit_max".into(),
                reason: "must be at least 1".into(),
            });
        }
        self.storage.validate()?;
        self.pageserver.validate()?;
        self.columnar.validate()?;
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
