//! One RESP connection: its state and the commands that act on it rather than on data.

use super::Shared;
use super::codec::{MAX_ARGS, MAX_BULK, UNAUTHENTICATED_MAX_ARGS, UNAUTHENTICATED_MAX_BULK};
use super::pubsub::Inbox;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use thunderdb_compute::redis::{self, COMMANDS, CommandSpec, Reply, Watched, command_spec};

/// The Redis version reported to clients; they pick features by it.
pub const REDIS_VERSION: &str = "7.0.15";

/// Connection commands as `COMMAND` reports them: name, arity, flags.
const CONNECTION_COMMANDS: &[(&str, i32, &[&str])] = &[
    (
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
    ),
    (
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
    ),
    ("ping", -1, &["fast"]),
    ("echo", 2, &["fast"]),
    (
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
    ),
    (
        "reset",
        1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
    ),
    ("select", 2, &["loading", "stale", "fast"]),
    ("client", -2, &["noscript", "loading", "stale"]),
    ("multi", 1, &["noscript", "loading", "stale", "fast"]),
    ("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"]),
    ("discard", 1, &["noscript", "loading", "stale", "fast"]),
    ("watch", -2, &["noscript", "loading", "stale", "fast"]),
    ("unwatch", 1, &["noscript", "loading", "stale", "fast"]),
    ("subscribe", -2, &["pubsub", "noscript", "loading", "stale"]),
    (
        "unsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
    ),
    (
        "psubscribe",
        -2,
        &["pubsub", "noscript", "loading", "stale"],
    ),
    (
        "punsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
    ),
    ("publish", 3, &["pubsub", "loading", "stale", "fast"]),
    ("pubsub", -2, &[]),
    ("info", -1, &["loading", "stale"]),
    ("command", -1, &["loading", "stale"]),
    ("config", -2, &[]),
    ("time", 1, &["loading", "stale", "fast"]),
    ("save", 1, &["admin", "noscript"]),
    ("bgsave", -1, &["admin", "noscript"]),
    ("lastsave", 1, &["loading", "stale", "fast"]),
    ("wait", 3, &["noscript"]),
];

/// Commands a client may send while subscribed with RESP2.
const SUBSCRIBED_ALLOWED: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ping",
    "quit",
    "reset",
];

pub struct Connection {
    id: u64,
    peer: std::net::SocketAddr,
    shared: Arc<Shared>,
    inbox: Inbox,
    db: u8,
    proto: u8,
    user: Option<String>,
    name: Option<Vec<u8>>,
    lib_name: Option<Vec<u8>>,
    lib_version: Option<Vec<u8>>,
    /// `Some` between MULTI and EXEC/DISCARD; `multi_failed` marks a queueing error.
    queue: Option<Vec<Vec<Vec<u8>>>>,
    multi_failed: bool,
    watched: Vec<Watched>,
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    closing: bool,
    created: std::time::Instant,
    last_command: String,
}

fn err(message: impl std::fmt::Display) -> Reply {
    Reply::Error(format!("ERR {message}"))
}

fn arity_error(name: &str) -> Reply {
    err(format!("wrong number of arguments for '{name}' command"))
}

fn lower(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_lowercase()
}

impl Connection {
    pub fn new(id: u64, peer: std::net::SocketAddr, shared: Arc<Shared>, inbox: Inbox) -> Self {
        let user = (!shared.opts.require_auth).then(|| "default".to_string());
        Connection {
            id,
            peer,
            shared,
            inbox,
            db: 0,
            proto: 2,
            user,
            name: None,
            lib_name: None,
            lib_version: None,
            queue: None,
            multi_failed: false,
            watched: Vec::new(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            closing: false,
            created: std::time::Instant::now(),
            last_command: String::new(),
        }
    }

    pub fn proto(&self) -> u8 {
        self.proto
    }

    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Request size limits: small until authenticated.
    pub fn request_limits(&self) -> (usize, usize) {
        if self.user.is_some() {
            (MAX_ARGS, MAX_BULK)
        } else {
            (UNAUTHENTICATED_MAX_ARGS, UNAUTHENTICATED_MAX_BULK)
        }
    }

    /// Drops the connection's subscriptions.
    pub fn close(&mut self) {
        for c in std::mem::take(&mut self.channels) {
            self.shared.broker.unsubscribe(self.id, &c);
        }
        for p in std::mem::take(&mut self.patterns) {
            self.shared.broker.punsubscribe(self.id, &p);
        }
        self.closing = true;
    }

    fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Answers one request.
    pub async fn handle(&mut self, args: Vec<Vec<u8>>) -> Reply {
        let name = lower(&args[0]);
        self.last_command.clone_from(&name);
        if self.user.is_none() && !matches!(name.as_str(), "auth" | "hello" | "quit" | "reset") {
            return Reply::Error("NOAUTH Authentication required.".into());
        }
        if self.proto == 2
            && self.subscriptions() > 0
            && !SUBSCRIBED_ALLOWED.contains(&name.as_str())
        {
            return err(format!(
                "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ));
        }
        if let Some(queue) = &mut self.queue
            && !matches!(
                name.as_str(),
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            )
        {
            // Commands are checked as they are queued; a bad one dooms the EXEC.
            let known = command_spec(&args[0]).is_some()
                || CONNECTION_COMMANDS.iter().any(|(n, ..)| *n == name);
            if !known {
                self.multi_failed = true;
                return redis::unknown_command(&args).into();
            }
            if let Some(spec) = command_spec(&args[0])
                && !arity_ok(spec.arity, args.len())
            {
                self.multi_failed = true;
                return arity_error(&name);
            }
            queue.push(args);
            return Reply::Simple("QUEUED".into());
        }
        self.run(&name, args).await
    }

    async fn run(&mut self, name: &str, args: Vec<Vec<u8>>) -> Reply {
        if let Some((_, arity, _)) = CONNECTION_COMMANDS.iter().find(|(n, ..)| *n == name)
            && !arity_ok(*arity, args.len())
        {
            return arity_error(name);
        }
        match name {
            "auth" => self.auth(&args),
            "hello" => self.hello(&args),
            "ping" => match (args.len(), self.proto == 2 && self.subscriptions() > 0) {
                (1, false) => Reply::Simple("PONG".into()),
                (2, false) => Reply::Bulk(args[1].clone()),
                (1, true) => Reply::Array(vec![Reply::bulk("pong"), Reply::bulk("")]),
                (2, true) => Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(args[1].clone())]),
                _ => arity_error("ping"),
            },
            "echo" => Reply::Bulk(args[1].clone()),
            "quit" => {
                self.closing = true;
                Reply::ok()
            }
            "reset" => {
                self.reset();
                Reply::Simple("RESET".into())
            }
            "select" => match select_db(&args[1]) {
                Ok(db) => {
                    self.db = db;
                    Reply::ok()
                }
                Err(e) => e,
            },
            "client" => self.client(&args),
            "multi" => {
                if self.queue.is_some() {
                    return err("MULTI calls can not be nested");
                }
                self.queue = Some(Vec::new());
                self.multi_failed = false;
                Reply::ok()
            }
            "exec" => self.exec().await,
            "discard" => {
                if self.queue.take().is_none() {
                    return err("DISCARD without MULTI");
                }
                self.watched.clear();
                Reply::ok()
            }
            "watch" => {
                if self.queue.is_some() {
                    return err("WATCH inside MULTI is not allowed");
                }
                for key in &args[1..] {
                    match self.shared.engine.watch(self.db, key).await {
                        Ok(w) => self.watched.push(w),
                        Err(e) => return e.into(),
                    }
                }
                Reply::ok()
            }
            "unwatch" => {
                self.watched.clear();
                Reply::ok()
            }
            "subscribe" | "psubscribe" => self.subscribe(name, &args[1..]),
            "unsubscribe" | "punsubscribe" => self.unsubscribe(name, &args[1..]),
            "publish" => Reply::Integer(self.shared.broker.publish(&args[1], &args[2])),
            "pubsub" => self.pubsub(&args),
            "info" => self.info(&args).await,
            "command" => command(&args),
            "config" => config(&args, self.shared.opts.port),
            "time" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                Reply::Array(vec![
                    Reply::bulk(now.as_secs().to_string()),
                    Reply::bulk(now.subsec_micros().to_string()),
                ])
            }
            // Every write is already durable in the WAL when it is acknowledged.
            "save" => Reply::ok(),
            "bgsave" => Reply::Simple("Background saving started".into()),
            "lastsave" => Reply::Integer(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            ),
            // Replication is the WAL's quorum: an acknowledged write is already replicated.
            "wait" => Reply::Integer(0),
            _ => self.shared.engine.execute(self.db, &args).await,
        }
    }

    fn reset(&mut self) {
        for c in std::mem::take(&mut self.channels) {
            self.shared.broker.unsubscribe(self.id, &c);
        }
        for p in std::mem::take(&mut self.patterns) {
            self.shared.broker.punsubscribe(self.id, &p);
        }
        self.queue = None;
        self.multi_failed = false;
        self.watched.clear();
        self.db = 0;
        self.proto = 2;
        self.name = None;
        if self.shared.opts.require_auth {
            self.user = None;
        } else {
            self.user = Some("default".into());
        }
    }

    /// Checks a user and password against the SQL users; `AUTH password` is the default
    /// user, which is the first configured one.
    fn check_password(&self, user: Option<&[u8]>, password: &[u8]) -> Option<String> {
        let users = &self.shared.opts.users;
        let found = match user {
            None => users.first(),
            Some(u) if u == b"default" => users.first(),
            Some(u) => users.iter().find(|(name, _)| name.as_bytes() == u),
        }?;
        (found.1.as_bytes() == password).then(|| match user {
            Some(u) => String::from_utf8_lossy(u).into_owned(),
            None => "default".into(),
        })
    }

    fn auth(&mut self, args: &[Vec<u8>]) -> Reply {
        let (user, password) = match args.len() {
            2 => (None, &args[1]),
            3 => (Some(args[1].as_slice()), &args[2]),
            _ => return err("syntax error"),
        };
        match self.check_password(user, password) {
            Some(u) => {
                self.user = Some(u);
                Reply::ok()
            }
            None => {
                Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
            }
        }
    }

    /// HELLO [protover [AUTH user pass] [SETNAME name]]
    fn hello(&mut self, args: &[Vec<u8>]) -> Reply {
        let mut proto = self.proto;
        if let Some(v) = args.get(1) {
            match std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(2) => proto = 2,
                Some(3) => proto = 3,
                Some(_) => {
                    return Reply::Error("NOPROTO unsupported protocol version".into());
                }
                None => return err("Protocol version is not an integer or out of range"),
            }
        }
        let mut i = 2;
        let mut set_name = None;
        while i < args.len() {
            let opt = lower(&args[i]);
            if opt == "auth" && i + 2 < args.len() {
                match self.check_password(Some(&args[i + 1]), &args[i + 2]) {
                    Some(u) => self.user = Some(u),
                    None => {
                        return Reply::Error(
                            "WRONGPASS invalid username-password pair or user is disabled.".into(),
                        );
                    }
                }
                i += 3;
            } else if opt == "setname" && i + 1 < args.len() {
                set_name = Some(args[i + 1].clone());
                i += 2;
            } else {
                return err(format!(
                    "Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                ));
            }
        }
        if self.user.is_none() {
            return Reply::Error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
            );
        }
        if let Some(n) = set_name {
            if let Err(e) = valid_client_name(&n) {
                return e;
            }
            self.name = Some(n);
        }
        self.proto = proto;
        Reply::Map(vec![
            (Reply::bulk("server"), Reply::bulk("redis")),
            (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
            (Reply::bulk("proto"), Reply::Integer(i64::from(proto))),
            (Reply::bulk("id"), Reply::Integer(self.id as i64)),
            (Reply::bulk("mode"), Reply::bulk("standalone")),
            (Reply::bulk("role"), Reply::bulk("master")),
            (Reply::bulk("modules"), Reply::Array(vec![])),
        ])
    }

    fn client(&mut self, args: &[Vec<u8>]) -> Reply {
        let sub = lower(&args[1]);
        match (sub.as_str(), args.len()) {
            ("setname", 3) => match valid_client_name(&args[2]) {
                Ok(()) => {
                    self.name = (!args[2].is_empty()).then(|| args[2].clone());
                    Reply::ok()
                }
                Err(e) => e,
            },
            ("getname", 2) => Reply::opt(self.name.clone()),
            ("id", 2) => Reply::Integer(self.id as i64),
            ("info", 2) => Reply::Bulk(format!("{}\n", self.client_line()).into_bytes()),
            ("list", _) => Reply::Bulk(format!("{}\n", self.client_line()).into_bytes()),
            ("setinfo", 4) => {
                let attr = lower(&args[2]);
                let value = args[3].clone();
                if value.iter().any(|b| *b == b' ' || *b == b'\n') {
                    return err(format!(
                        "{attr} cannot contain spaces, newlines or special characters."
                    ));
                }
                match attr.as_str() {
                    "lib-name" => self.lib_name = Some(value),
                    "lib-ver" => self.lib_version = Some(value),
                    _ => return err(format!("Unrecognized option '{attr}'")),
                }
                Reply::ok()
            }
            ("no-evict" | "no-touch", 3) => Reply::ok(),
            ("reply", 3) => Reply::ok(),
            _ => err(format!(
                "Unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }

    fn client_line(&self) -> String {
        let text = |b: &Option<Vec<u8>>| {
            b.as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        format!(
            "id={} addr={} laddr= fd=0 name={} age={} idle=0 flags={} db={} sub={} psub={} ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.peer,
            text(&self.name),
            self.created.elapsed().as_secs(),
            if self.queue.is_some() { "x" } else { "N" },
            self.db,
            self.channels.len(),
            self.patterns.len(),
            self.queue.as_ref().map_or(-1, |q| q.len() as i64),
            self.last_command,
            self.user.as_deref().unwrap_or("default"),
            self.proto,
            text(&self.lib_name),
            text(&self.lib_version),
        )
    }

    async fn exec(&mut self) -> Reply {
        let Some(queue) = self.queue.take() else {
            return err("EXEC without MULTI");
        };
        let watched = std::mem::take(&mut self.watched);
        if self.multi_failed {
            self.multi_failed = false;
            return Reply::Error(
                "EXECABORT Transaction discarded because of previous errors.".into(),
            );
        }
        // Data commands run as one transaction; connection commands queued among them
        // (PING, ECHO …) are answered in their place.
        let data: Vec<Vec<Vec<u8>>> = queue
            .iter()
            .filter(|a| command_spec(&a[0]).is_some())
            .cloned()
            .collect();
        let data_replies = if data.is_empty() && watched.is_empty() {
            Vec::new()
        } else {
            match self.shared.engine.exec(self.db, &data, &watched).await {
                Reply::Array(replies) => replies,
                other => return other,
            }
        };
        let mut data_replies = data_replies.into_iter();
        let mut replies = Vec::with_capacity(queue.len());
        for args in queue {
            if command_spec(&args[0]).is_some() {
                replies.push(data_replies.next().unwrap_or(Reply::Nil));
            } else {
                let name = lower(&args[0]);
                replies.push(Box::pin(self.run(&name, args)).await);
            }
        }
        Reply::Array(replies)
    }

    fn subscribe(&mut self, name: &str, targets: &[Vec<u8>]) -> Reply {
        let pattern = name == "psubscribe";
        let mut confirmations = Vec::new();
        for t in targets {
            if pattern {
                self.shared.broker.psubscribe(self.id, t, &self.inbox);
                self.patterns.insert(t.clone());
            } else {
                self.shared.broker.subscribe(self.id, t, &self.inbox);
                self.channels.insert(t.clone());
            }
            confirmations.push(Reply::Push(vec![
                Reply::bulk(name),
                Reply::Bulk(t.clone()),
                Reply::Integer(self.subscriptions() as i64),
            ]));
        }
        self.pushes(confirmations)
    }

    fn unsubscribe(&mut self, name: &str, targets: &[Vec<u8>]) -> Reply {
        let pattern = name == "punsubscribe";
        let targets: Vec<Vec<u8>> = if targets.is_empty() {
            if pattern {
                self.patterns.iter().cloned().collect()
            } else {
                self.channels.iter().cloned().collect()
            }
        } else {
            targets.to_vec()
        };
        let mut confirmations = Vec::new();
        for t in &targets {
            if pattern {
                self.shared.broker.punsubscribe(self.id, t);
                self.patterns.remove(t);
            } else {
                self.shared.broker.unsubscribe(self.id, t);
                self.channels.remove(t);
            }
            confirmations.push(Reply::Push(vec![
                Reply::bulk(name),
                Reply::Bulk(t.clone()),
                Reply::Integer(self.subscriptions() as i64),
            ]));
        }
        if confirmations.is_empty() {
            confirmations.push(Reply::Push(vec![
                Reply::bulk(name),
                Reply::Nil,
                Reply::Integer(self.subscriptions() as i64),
            ]));
        }
        self.pushes(confirmations)
    }

    /// Several push replies to one command: the first is the command's reply, the rest go
    /// through the inbox, which the connection drains right after it.
    fn pushes(&self, mut confirmations: Vec<Reply>) -> Reply {
        let first = confirmations.remove(0);
        for c in confirmations {
            let _ = self.inbox.send(c);
        }
        first
    }

    fn pubsub(&self, args: &[Vec<u8>]) -> Reply {
        let broker = &self.shared.broker;
        match (lower(&args[1]).as_str(), args.len()) {
            ("channels", 2) => Reply::bulks(broker.channels(None)),
            ("channels", 3) => Reply::bulks(broker.channels(Some(&args[2]))),
            ("numsub", _) => Reply::Array(
                args[2..]
                    .iter()
                    .flat_map(|c| {
                        [
                            Reply::Bulk(c.clone()),
                            Reply::Integer(broker.subscribers(c)),
                        ]
                    })
                    .collect(),
            ),
            ("numpat", 2) => Reply::Integer(broker.patterns()),
            _ => err(format!(
                "Unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }

    async fn info(&self, args: &[Vec<u8>]) -> Reply {
        let wanted: Vec<String> = args[1..].iter().map(|a| lower(a)).collect();
        let all = wanted.is_empty()
            || wanted
                .iter()
                .any(|w| w == "all" || w == "everything" || w == "default");
        let want = |s: &str| all || wanted.iter().any(|w| w == s);
        let shared = &self.shared;
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
                "# Clients\r\nconnected_clients:{}\r\nblocked_clients:0\r\n\r\n",
                shared.connected.load(Ordering::Relaxed)
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
        if want("replication") {
            out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
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
        Reply::Bulk(out.into_bytes())
    }
}

fn arity_ok(arity: i32, n: usize) -> bool {
    let n = n as i32;
    if arity >= 0 { n == arity } else { n >= -arity }
}

fn select_db(a: &[u8]) -> Result<u8, Reply> {
    let n: i64 = std::str::from_utf8(a)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err("value is not an integer or out of range"))?;
    u8::try_from(n)
        .ok()
        .filter(|n| *n < redis::DATABASES)
        .ok_or_else(|| err("DB index is out of range"))
}

fn valid_client_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

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
fn command(args: &[Vec<u8>]) -> Reply {
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

/// CONFIG GET answers with harmless values for the parameters clients probe; CONFIG SET and
/// REWRITE are refused (configuration is ThunderDB's, not Redis's).
fn config(args: &[Vec<u8>], port: u16) -> Reply {
    let settings: Vec<(&str, String)> = vec![
        ("port", port.to_string()),
        ("bind", "127.0.0.1".into()),
        ("databases", redis::DATABASES.to_string()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("appendfsync", "always".into()),
        ("timeout", "0".into()),
        ("tcp-keepalive", "300".into()),
        ("proto-max-bulk-len", super::codec::MAX_BULK.to_string()),
        ("notify-keyspace-events", String::new()),
        ("maxclients", "10000".into()),
        ("lua-time-limit", "5000".into()),
        ("slowlog-log-slower-than", "10000".into()),
        ("cluster-enabled", "no".into()),
    ];
    match lower(&args[1]).as_str() {
        "get" if args.len() >= 3 => {
            let mut pairs = Vec::new();
            for (name, value) in &settings {
                if args[2..]
                    .iter()
                    .any(|p| redis::glob_match(&p.to_ascii_lowercase(), name.as_bytes()))
                {
                    pairs.push((Reply::bulk(*name), Reply::bulk(value.clone())));
                }
            }
            Reply::Map(pairs)
        }
        "resetstat" if args.len() == 2 => Reply::ok(),
        "set" | "rewrite" => err(format!(
            "CONFIG {} is not supported: ThunderDB is configured through its own configuration file",
            String::from_utf8_lossy(&args[1]).to_uppercase()
        )),
        _ => err(format!(
            "Unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}
