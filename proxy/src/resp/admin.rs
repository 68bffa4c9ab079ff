//! Server introspection and settings: COMMAND, CONFIG, FUNCTION.

use super::connection::{CONNECTION_COMMANDS, err, lower};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use thunderdb_compute::redis::{self, COMMANDS, CommandSpec, Reply};

fn spec_reply(name: &str, arity: i32, flags: &[&str], keys: (i32, i32, i32)) -> Reply {
    Reply::Array(vec![
        Reply::bulk(name),
        Reply::Integer(i64::from(arity)),
        Reply::Set(flags.iter().map(|f| Reply::Simple(f.to_string())).collect()),
        Reply::Integer(i64::from(keys.0)),
        Reply::Integer(i64::from(keys.1)),
        Reply::Integer(i64::from(keys.2)),
        Reply::Set(vec![]),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn data_spec_reply(s: &CommandSpec) -> Reply {
    spec_reply(s.name, s.arity, s.flags, (s.first_key, s.last_key, s.step))
}

/// Every command: (name, its COMMAND INFO reply).
fn all_commands() -> Vec<(&'static str, Reply)> {
    let mut all: Vec<(&str, Reply)> = COMMANDS
        .iter()
        .map(|s| (s.name, data_spec_reply(s)))
        .collect();
    all.extend(
        CONNECTION_COMMANDS
            .iter()
            .map(|(n, a, f)| (*n, spec_reply(n, *a, f, (0, 0, 0)))),
    );
    all
}

/// COMMAND [COUNT | INFO name… | DOCS [name…] | LIST]
pub(super) fn command(args: &[Vec<u8>]) -> Reply {
    let all = all_commands();
    let Some(sub) = args.get(1).map(|s| lower(s)) else {
        return Reply::Array(all.into_iter().map(|(_, r)| r).collect());
    };
    match sub.as_str() {
        "count" => Reply::Integer(all.len() as i64),
        "list" => Reply::bulks(all.into_iter().map(|(n, _)| n.as_bytes().to_vec())),
        "info" => Reply::Array(
            args[2..]
                .iter()
                .map(|n| {
                    let n = lower(n);
                    all.iter()
                        .find(|(name, _)| *name == n)
                        .map_or(Reply::Nil, |(_, r)| r.clone())
                })
                .collect(),
        ),
        // Documentation is optional for clients (redis-cli falls back to its own help).
        "docs" => Reply::Map(vec![]),
        "getkeys" => err("The command has no key arguments"),
        _ => err(format!(
            "Unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// FUNCTION: there are no server-side functions (no Lua), so there is nothing to list or
/// flush, and loading one is refused.
pub(super) fn function(args: &[Vec<u8>]) -> Reply {
    match (lower(&args[1]).as_str(), args.len()) {
        ("flush", 2) => Reply::ok(),
        ("flush", 3) if matches!(lower(&args[2]).as_str(), "async" | "sync") => Reply::ok(),
        ("list", _) => Reply::Array(vec![]),
        ("stats", 2) => Reply::Map(vec![
            (Reply::bulk("running_script"), Reply::Nil),
            (Reply::bulk("engines"), Reply::Map(vec![])),
        ]),
        ("load" | "restore", _) => err("server-side functions (Lua) are not supported"),
        _ => err(format!(
            "Unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// How a parameter may change.
#[derive(Copy, Clone)]
enum Kind {
    /// An integer within bounds.
    Int(i64, i64),
    /// One of these words.
    Choice(&'static [&'static str]),
    /// Fixed by ThunderDB's own configuration or design.
    Immutable,
}

/// A parameter: its name, older aliases, default and kind.
struct Param {
    name: &'static str,
    aliases: &'static [&'static str],
    default: &'static str,
    kind: Kind,
}

const fn param(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param {
        name,
        aliases: &[],
        default,
        kind,
    }
}

const fn aliased(
    name: &'static str,
    aliases: &'static [&'static str],
    default: &'static str,
    kind: Kind,
) -> Param {
    Param {
        name,
        aliases,
        default,
        kind,
    }
}

const COUNT: Kind = Kind::Int(0, i64::MAX);
const YES_NO: Kind = Kind::Choice(&["yes", "no"]);

/// The parameters clients and tools read and tune. Encoding thresholds and timers are
/// accepted and remembered: they tune Redis's in-memory encodings, which ThunderDB's storage
/// does not have, so they change no behaviour. What would change ThunderDB's durability,
/// eviction or networking is fixed (`Immutable`) or allows only the value ThunderDB keeps.
const PARAMS: &[Param] = &[
    param("port", "", Kind::Immutable),
    param("bind", "127.0.0.1", Kind::Immutable),
    param("databases", "16", Kind::Immutable),
    param("cluster-enabled", "no", Kind::Immutable),
    param("proto-max-bulk-len", "536870912", Kind::Immutable),
    // Every write is fsynced to the WAL before it is acknowledged.
    param("appendonly", "no", Kind::Immutable),
    param("appendfsync", "always", Kind::Immutable),
    param("save", "", Kind::Choice(&[""])),
    param("maxmemory", "0", Kind::Int(0, 0)),
    param(
        "maxmemory-policy",
        "noeviction",
        Kind::Choice(&["noeviction"]),
    ),
    param("notify-keyspace-events", "", Kind::Choice(&[""])),
    param("maxclients", "10000", Kind::Int(1, 1_000_000)),
    param("timeout", "0", COUNT),
    param("tcp-keepalive", "300", COUNT),
    param("hz", "10", Kind::Int(1, 500)),
    param("maxmemory-samples", "5", Kind::Int(1, 64)),
    param("lfu-log-factor", "10", COUNT),
    param("lfu-decay-time", "1", COUNT),
    param("active-expire-effort", "1", Kind::Int(1, 10)),
    aliased("busy-reply-threshold", &["lua-time-limit"], "5000", COUNT),
    param("slowlog-log-slower-than", "10000", Kind::Int(-1, i64::MAX)),
    param("slowlog-max-len", "128", COUNT),
    param("latency-monitor-threshold", "0", COUNT),
    param("lazyfree-lazy-eviction", "no", YES_NO),
    param("lazyfree-lazy-expire", "no", YES_NO),
    param("lazyfree-lazy-server-del", "no", YES_NO),
    param("lazyfree-lazy-user-del", "no", YES_NO),
    param("lazyfree-lazy-user-flush", "no", YES_NO),
    aliased(
        "hash-max-listpack-entries",
        &["hash-max-ziplist-entries"],
        "128",
        COUNT,
    ),
    aliased(
        "hash-max-listpack-value",
        &["hash-max-ziplist-value"],
        "64",
        COUNT,
    ),
    param("set-max-intset-entries", "512", COUNT),
    aliased(
        "zset-max-listpack-entries",
        &["zset-max-ziplist-entries"],
        "128",
        COUNT,
    ),
    aliased(
        "zset-max-listpack-value",
        &["zset-max-ziplist-value"],
        "64",
        COUNT,
    ),
    aliased(
        "list-max-listpack-size",
        &["list-max-ziplist-size"],
        "-2",
        Kind::Int(-5, i64::MAX),
    ),
    param("list-compress-depth", "0", COUNT),
    param("stream-node-max-bytes", "4096", COUNT),
    param("stream-node-max-entries", "100", COUNT),
    param("client-query-buffer-limit", "1073741824", COUNT),
];

/// The server's current parameter values.
pub struct ConfigStore {
    port: u16,
    values: Mutex<BTreeMap<&'static str, String>>,
}

impl ConfigStore {
    pub fn new(port: u16) -> ConfigStore {
        ConfigStore {
            port,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn value(&self, p: &Param) -> String {
        if p.name == "port" {
            return self.port.to_string();
        }
        self.values
            .lock()
            .get(p.name)
            .cloned()
            .unwrap_or_else(|| p.default.to_string())
    }

    /// CONFIG GET pattern… | SET name value… | RESETSTAT | REWRITE
    pub fn command(&self, args: &[Vec<u8>]) -> Reply {
        match lower(&args[1]).as_str() {
            "get" if args.len() >= 3 => {
                let mut pairs = Vec::new();
                for p in PARAMS {
                    for name in std::iter::once(&p.name).chain(p.aliases) {
                        let wanted = args[2..].iter().any(|pattern| {
                            redis::glob_match(&pattern.to_ascii_lowercase(), name.as_bytes())
                        });
                        if wanted {
                            pairs.push((Reply::bulk(*name), Reply::bulk(self.value(p))));
                        }
                    }
                }
                Reply::Map(pairs)
            }
            "set" if args.len() >= 4 && args.len().is_multiple_of(2) => self.set(&args[2..]),
            "set" => err("wrong number of arguments for 'config|set' command"),
            "resetstat" if args.len() == 2 => Reply::ok(),
            "rewrite" => err(
                "CONFIG REWRITE is not supported: ThunderDB is configured through its own configuration file",
            ),
            _ => err(format!(
                "Unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }

    /// Sets every pair or none.
    fn set(&self, pairs: &[Vec<u8>]) -> Reply {
        let mut accepted = Vec::new();
        for pair in pairs.chunks(2) {
            let name = lower(&pair[0]);
            let value = String::from_utf8_lossy(&pair[1]).into_owned();
            let Some(p) = PARAMS
                .iter()
                .find(|p| p.name == name || p.aliases.contains(&name.as_str()))
            else {
                return err(format!(
                    "Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
            };
            let failed = |why: &str| {
                err(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - {why}"
                ))
            };
            match p.kind {
                Kind::Immutable => return failed("can't set immutable config"),
                Kind::Int(min, max) => match value.parse::<i64>() {
                    Ok(v) if (min..=max).contains(&v) => {}
                    Ok(_) => {
                        return failed(&format!(
                            "argument must be between {min} and {max} inclusive"
                        ));
                    }
                    Err(_) => return failed("argument couldn't be parsed into an integer"),
                },
                Kind::Choice(options) => {
                    if !options.contains(&value.to_lowercase().as_str()) {
                        let allowed: Vec<String> =
                            options.iter().map(|o| format!("'{o}'")).collect();
                        return failed(&format!(
                            "argument(s) must be one of the following: {}",
                            allowed.join(", ")
                        ));
                    }
                }
            }
            accepted.push((p.name, value));
        }
        let mut values = self.values.lock();
        for (name, value) in accepted {
            values.insert(name, value);
        }
        Reply::ok()
    }
}
