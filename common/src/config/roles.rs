//! Settings of the roles that run as their own processes in a cluster.

use super::{ColumnarConfig, ConfigError, Frontends, PageServerConfig, StorageConfig, WalConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Settings of one `thunderdb walservice` node.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WalNodeConfig {
    /// `host:port` the node's gRPC server (peers, compute, pageservers) listens on.
    pub listen: String,
    /// `host:port` the others reach it at; empty: `listen`.
    pub advertise: String,
    /// The Raft log, its snapshots and the node's state.
    pub data_dir: PathBuf,
    /// Voters of a brand-new group, `id=host:port,…`; the lowest id initializes the group. Empty:
    /// the node waits to be added to an existing group (`thunderdb walctl members`).
    pub members: String,
    /// How long a commit may wait for a quorum before it is reported unavailable.
    pub commit_timeout_ms: u64,
    pub wal: WalConfig,
}

impl Default for WalNodeConfig {
    fn default() -> Self {
        WalNodeConfig {
            listen: "127.0.0.1:7001".into(),
            advertise: String::new(),
            data_dir: PathBuf::from("./thunderdb-wal"),
            members: String::new(),
            commit_timeout_ms: 5000,
            wal: WalConfig::default(),
        }
    }
}

impl WalNodeConfig {
    /// The address peers and clients use for this node.
    pub fn advertised(&self) -> &str {
        if self.advertise.is_empty() {
            &self.listen
        } else {
            &self.advertise
        }
    }

    pub fn validate(&self) -> Result<BTreeMap<u64, String>, ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::BadValue {
            key: key.into(),
            reason,
        };
        if self.wal.node_id == 0 {
            return Err(bad("wal.node_id", "node ids start at 1".into()));
        }
        check_address("listen", &self.listen)?;
        if !self.advertise.is_empty() {
            check_address("advertise", &self.advertise)?;
        }
        if self.commit_timeout_ms < 100 {
            return Err(bad("commit_timeout_ms", "must be at least 100".into()));
        }
        if self.wal.group_commit_max == 0 || self.wal.snapshot_after_entries == 0 {
            return Err(bad(
                "wal",
                "group_commit_max and snapshot_after_entries must be at least 1".into(),
            ));
        }
        let members = parse_members("members", &self.members)?;
        if !members.is_empty() {
            match members.get(&self.wal.node_id) {
                None => {
                    return Err(bad(
                        "members",
                        format!("does not list this node (id {})", self.wal.node_id),
                    ));
                }
                Some(a) if a != self.advertised() => {
                    return Err(bad(
                        "members",
                        format!(
                            "lists node {} at {a}, but it is reached at {}",
                            self.wal.node_id,
                            self.advertised()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(members)
    }
}

/// Settings of one `thunderdb pageserver`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PageNodeConfig {
    /// `host:port` its gRPC server listens on.
    pub listen: String,
    /// Local cache and state (the block cache; layers live in object storage).
    pub data_dir: PathBuf,
    /// The WAL group's nodes, `host:port,…`.
    pub wal_nodes: String,
    /// How long a read waits for its LSN to be applied.
    pub wait_timeout_secs: u64,
    pub storage: StorageConfig,
    pub pageserver: PageServerConfig,
}

impl Default for PageNodeConfig {
    fn default() -> Self {
        PageNodeConfig {
            listen: "127.0.0.1:7100".into(),
            data_dir: PathBuf::from("./thunderdb-pageserver"),
            wal_nodes: String::new(),
            wait_timeout_secs: 30,
            storage: StorageConfig::default(),
            pageserver: PageServerConfig::default(),
        }
    }
}

impl PageNodeConfig {
    /// Checks every key; returns the WAL nodes' addresses.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        check_address("listen", &self.listen)?;
        if self.wait_timeout_secs == 0 {
            return Err(ConfigError::BadValue {
                key: "wait_timeout_secs".into(),
                reason: "must be at least 1".into(),
            });
        }
        self.storage.validate()?;
        self.pageserver.validate()?;
        parse_addresses("wal_nodes", &self.wal_nodes)
    }
}

/// Settings of one `thunderdb compute` node: the frontends, and where the WAL group, the
/// pageserver and object storage are. It keeps no durable state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeNodeConfig {
    /// Local caches only (segment files); lost on restart without harm.
    pub data_dir: PathBuf,
    pub worker_threads: usize,
    /// The WAL group's nodes, `host:port,…`.
    pub wal_nodes: String,
    /// The pageserver, `host:port`.
    pub pageserver: String,
    /// How long a commit or a new snapshot keeps trying to reach a WAL leader.
    pub wal_timeout_ms: u64,
    pub frontends: Frontends,
    /// The object storage the pageserver writes segments to (compute reads them directly).
    pub storage: StorageConfig,
    pub columnar: ColumnarConfig,
}

impl Default for ComputeNodeConfig {
    fn default() -> Self {
        ComputeNodeConfig {
            data_dir: PathBuf::from("./thunderdb-compute"),
            worker_threads: 0,
            wal_nodes: String::new(),
            pageserver: String::new(),
            wal_timeout_ms: 10_000,
            frontends: Frontends::default(),
            storage: StorageConfig::default(),
            columnar: ColumnarConfig::default(),
        }
    }
}

impl ComputeNodeConfig {
    /// Checks every key; returns the WAL nodes' addresses.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        self.frontends.validate()?;
        check_address("pageserver", &self.pageserver)?;
        if self.wal_timeout_ms < 100 {
            return Err(ConfigError::BadValue {
                key: "wal_timeout_ms".into(),
                reason: "must be at least 100".into(),
            });
        }
        self.storage.validate()?;
        self.columnar.validate()?;
        parse_addresses("wal_nodes", &self.wal_nodes)
    }
}

/// Settings of one `thunderdb proxy`: where clients connect, and the compute nodes it routes
/// their sessions to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address the client ports listen on.
    pub listen: String,
    pub pg_port: u16,
    pub mysql_port: u16,
    pub resp_port: u16,
    /// Compute nodes, `host:pg_port[:mysql_port[:resp_port]],…`.
    pub computes: String,
    pub health_interval_ms: u64,
    pub connect_timeout_ms: u64,
    /// On SIGTERM the proxy stops accepting and waits this long for open sessions to end.
    pub drain_timeout_secs: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "127.0.0.1".into(),
            pg_port: 5432,
            mysql_port: 3306,
            resp_port: 6379,
            computes: String::new(),
            health_interval_ms: 1000,
            connect_timeout_ms: 2000,
            drain_timeout_secs: 30,
        }
    }
}

impl ProxyConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| ConfigError::BadValue {
            key: key.into(),
            reason: reason.into(),
        };
        if self.listen.parse::<std::net::IpAddr>().is_err() && self.listen != "localhost" {
            return Err(bad("listen", "is not an IP address"));
        }
        if self.computes.trim().is_empty() {
            return Err(bad("computes", "needs at least one compute node"));
        }
        if self.health_interval_ms < 10 || self.connect_timeout_ms < 10 {
            return Err(bad(
                "health_interval_ms",
                "health_interval_ms and connect_timeout_ms must be at least 10",
            ));
        }
        Ok(())
    }
}

/// Parses `id=host:port,…` (blanks allowed around items).
pub fn parse_members(key: &str, text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut members = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |reason: String| ConfigError::BadValue {
            key: key.into(),
            reason,
        };
        let (id, address) = item
            .split_once('=')
            .ok_or_else(|| bad(format!("{item:?} is not id=host:port")))?;
        let id: u64 = id
            .trim()
            .parse()
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| bad(format!("{:?} is not a node id (1, 2, …)", id.trim())))?;
        check_address(key, address.trim())?;
        if members.insert(id, address.trim().to_string()).is_some() {
            return Err(bad(format!("node {id} is listed twice")));
        }
    }
    Ok(members)
}

/// Parses `host:port,…`.
pub fn parse_addresses(key: &str, text: &str) -> Result<Vec<String>, ConfigError> {
    let list: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        return Err(ConfigError::BadValue {
            key: key.into(),
            reason: "needs at least one host:port".into(),
        });
    }
    for a in &list {
        check_address(key, a)?;
    }
    Ok(list)
}

fn check_address(key: &str, address: &str) -> Result<(), ConfigError> {
    let ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadValue {
            key: key.into(),
            reason: format!("{address:?} is not host:port"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse_and_errors_name_the_key() {
        let m = parse_members("members", " 1=127.0.0.1:7001, 2=localhost:7002 ,").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&2], "localhost:7002");
        for bad in ["1=x", "0=a:1", "a=b:1", "1=a:1,1=b:2", "1:a:1", "1=a:99999"] {
            let e = parse_members("members", bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid value for members"), "{bad}: {e}");
        }
        assert!(parse_addresses("wal", "").is_err());
        assert_eq!(parse_addresses("wal", "a:1, b:2").unwrap().len(), 2);
    }

    #[test]
    fn a_node_must_be_in_its_member_list_at_its_address() {
        let mut c = WalNodeConfig {
            listen: "127.0.0.1:7002".into(),
            members: "1=127.0.0.1:7001,2=127.0.0.1:7002".into(),
            ..Default::default()
        };
        c.wal.node_id = 2;
        assert_eq!(c.validate().unwrap().len(), 2);
        c.wal.node_id = 3;
        assert!(c.validate().is_err());
        c.wal.node_id = 1;
        assert!(c.validate().unwrap_err().to_string().contains("reached at"));
        c.members.clear();
        assert!(c.validate().unwrap().is_empty());
    }
}
