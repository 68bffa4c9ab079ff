//! INFO: what the server reports about itself, and the per-command statistics it keeps.

use super::Shared;
use super::connection::{REDIS_VERSION, lower};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use thunderdb_compute::redis::Reply;

/// Calls, time and failures of one command (`INFO commandstats`).
#[derive(Default, Clone, Copy)]
struct CommandStat {
    calls: u64,
    usec: u64,
    rejected: u64,
    failed: u64,
}

/// Statistics of every command and error code since start.
#[derive(Default)]
pub struct Stats {
    commands: Mutex<BTreeMap<String, CommandStat>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Records one command's run: `rejected` when it failed before running (unknown, arity,
    /// NOAUTH), else `error` when it failed while running.
    /// Counts the error of a command that has no statistics entry (an unknown one).
    pub fn record_error(&self, reply: &Reply) {
        if let Reply::Error(e) = reply {
            let code = e.split_whitespace().next().unwrap_or("ERR").to_string();
            *self.errors.lock().entry(code).or_default() += 1;
        }
    }

    pub fn record(&self, name: &str, took: Duration, reply: &Reply, rejected: bool) {
        let mut commands = self.commands.lock();
        let stat = commands.entry(name.to_string()).or_default();
        if let Reply::Error(e) = reply {
            let code = e.split_whitespace().next().unwrap_or("ERR").to_string();
            *self.errors.lock().entry(code).or_default() += 1;
            if rejected {
                stat.rejected += 1;
                return;
            }
            stat.failed += 1;
        }
        stat.calls += 1;
        stat.usec += took.as_micros() as u64;
    }
}

pub(super) async fn info(shared: &Shared, args: &[Vec<u8>]) -> Reply {
    const DEFAULT: &[&str] = &[
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "cpu",
        "keyspace",
    ];
    let mut wanted: Vec<String> = Vec::new();
    let requested: Vec<String> = args[1..].iter().map(|a| lower(a)).collect();
    for r in if requested.is_empty() {
        vec!["default".to_string()]
    } else {
        requested
    } {
        match r.as_str() {
            "default" => wanted.extend(DEFAULT.iter().map(|s| s.to_string())),
            "all" | "everything" => {
                wanted.extend(DEFAULT.iter().map(|s| s.to_string()));
                wanted.extend(["commandstats".to_string(), "errorstats".to_string()]);
            }
            other => wanted.push(other.to_string()),
        }
    }
    let want = |s: &str| wanted.iter().any(|w| w == s);
    let mut out = String::new();
    if want("server") {
        out.push_str(&format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nexecutable:thunderdb\r\nthunderdb_version:{}\r\n\r\n",
            std::env::consts::OS,
            std::process::id(),
            shared.opts.port,
            shared.started.elapsed().as_secs(),
            shared.started.elapsed().as_secs() / 86_400,
            env!("CARGO_PKG_VERSION"),
        ));
    }
    if want("clients") {
        out.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\nblocked_clients:{}\r\n\r\n",
            shared.connected.load(Ordering::Relaxed),
            shared.engine.blocked_clients()
        ));
    }
    if want("memory") {
        out.push_str(
            "# Memory\r\nused_memory:0\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n",
        );
    }
    if want("persistence") {
        out.push_str(
            "# Persistence\r\nloading:0\r\naof_enabled:0\r\nrdb_bgsave_in_progress:0\r\n\r\n",
        );
    }
    if want("stats") {
        out.push_str(&format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n\r\n",
            shared.next_client_id.load(Ordering::Relaxed) - 1,
            shared.commands_processed.load(Ordering::Relaxed),
            shared.broker.channels(None).len(),
            shared.broker.patterns(),
        ));
    }
    if want("cpu") {
        let (system, user) = cpu_seconds();
        out.push_str(&format!(
            "# CPU\r\nused_cpu_sys:{system:.6}\r\nused_cpu_user:{user:.6}\r\n\r\n"
        ));
    }
    if want("replication") {
        // Replication is the WAL's: its last committed LSN is the offset every replica has.
        let offset = shared.engine.committed_lsn().await.unwrap_or(0);
        out.push_str(&format!(
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:{offset}\r\n\r\n"
        ));
    }
    if want("keyspace") {
        out.push_str("# Keyspace\r\n");
        match shared.engine.keyspace().await {
            Ok(dbs) => {
                for (db, keys, expires) in dbs {
                    out.push_str(&format!(
                        "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n"
                    ));
                }
            }
            Err(e) => return e.into(),
        }
        out.push_str("\r\n");
    }
    if want("commandstats") {
        out.push_str("# Commandstats\r\n");
        for (name, st) in shared.stats.commands.lock().iter() {
            let per_call = if st.calls > 0 {
                st.usec as f64 / st.calls as f64
            } else {
                0.0
            };
            out.push_str(&format!(
                "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                st.calls, st.usec, st.rejected, st.failed
            ));
        }
        out.push_str("\r\n");
    }
    if want("errorstats") {
        out.push_str("# Errorstats\r\n");
        for (code, count) in shared.stats.errors.lock().iter() {
            out.push_str(&format!("errorstat_{code}:count={count}\r\n"));
        }
        out.push_str("\r\n");
    }
    Reply::Bulk(out.into_bytes())
}

/// System and user CPU seconds of this process, from `/proc/self/stat` (0 where unavailable).
fn cpu_seconds() -> (f64, f64) {
    // Fields 14 and 15 (utime, stime) in clock ticks, which Linux reports at 100 per second.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the name, field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    (ticks(12) / 100.0, ticks(11) / 100.0)
}
