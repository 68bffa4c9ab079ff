//! One RESP connection: its state and the commands that act on it rather than on data.

use super::Shared;
use super::codec::{MAX_ARGS, MAX_BULK, UNAUTHENTICATED_MAX_ARGS, UNAUTHENTICATED_MAX_BULK};
use super::pubsub::Inbox;
use std::collections::BTreeSet;
use std::sync::Arc;
use thunderdb_compute::redis::{self, Reply, Unblock, Watched, command_spec};

/// The Redis version reported to clients; they pick features by it.
pub const REDIS_VERSION: &str = "7.0.15";

/// Connection commands as `COMMAND` reports them: name, arity, flags.
pub(super) const CONNECTION_COMMANDS: &[(&str, i32, &[&str])] = &[
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
    ("function", -2, &["noscript"]),
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

/// CLIENT REPLY: whether replies are sent.
#[derive(Copy, Clone, PartialEq, Eq)]
enum ReplyMode {
    On,
    Off,
    /// Off for the next command only.
    SkipNext,
    /// The command after SKIP is running: its reply is dropped, then replies are on again.
    Skipping,
}

pub struct Connection {
    id: u64,
    replies: ReplyMode,
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
    /// Ends this connection's blocking command (CLIENT UNBLOCK from another connection).
    unblock: Arc<Unblock>,
}

pub(super) fn err(message: impl std::fmt::Display) -> Reply {
    Reply::Error(format!("ERR {message}"))
}

fn arity_error(name: &str) -> Reply {
    err(format!("wrong number of arguments for '{name}' command"))
}

pub(super) fn lower(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_lowercase()
}

impl Connection {
    pub fn new(
        id: u64,
        peer: std::net::SocketAddr,
        shared: Arc<Shared>,
        inbox: Inbox,
        unblock: Arc<Unblock>,
    ) -> Self {
        let user = (!shared.opts.require_auth).then(|| "default".to_string());
        Connection {
            id,
            replies: ReplyMode::On,
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
            unblock,
        }
    }

    pub fn proto(&self) -> u8 {
        self.proto
    }

    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Whether the reply to the command just handled goes to the client (CLIENT REPLY).
    /// Messages pushed by pub/sub are always sent.
    pub fn take_reply_allowed(&mut self) -> bool {
        match self.replies {
            ReplyMode::On => true,
            ReplyMode::Off => false,
            // CLIENT REPLY SKIP itself is not answered; the next command is not either.
            ReplyMode::SkipNext => {
                self.replies = ReplyMode::Skipping;
                false
            }
            ReplyMode::Skipping => {
                self.replies = ReplyMode::On;
                false
            }
        }
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

    /// Whether `args` will be refused before running (unknown command, wrong arity, no AUTH):
    /// what `INFO commandstats` counts as a rejected call.
    pub fn rejects(&self, args: &[Vec<u8>]) -> bool {
        let name = lower(&args[0]);
        if self.user.is_none() && !matches!(name.as_str(), "auth" | "hello" | "quit" | "reset") {
            return true;
        }
        match (
            command_spec(&args[0]),
            CONNECTION_COMMANDS.iter().find(|(n, ..)| *n == name),
        ) {
            (Some(spec), _) => !arity_ok(spec.arity, args.len()),
            (None, Some((_, arity, _))) => !arity_ok(*arity, args.len()),
            (None, None) => true,
        }
    }

    /// Whether `name` (lower case) is a command this server has.
    pub fn knows(&self, name: &str) -> bool {
        command_spec(name.as_bytes()).is_some()
            || CONNECTION_COMMANDS.iter().any(|(n, ..)| *n == name)
    }

    /// Whether `args` is a blocking command that will wait (not queued in MULTI, which runs
    /// blocking commands without blocking).
    pub fn would_block(&self, args: &[Vec<u8>]) -> bool {
        self.queue.is_none()
            && command_spec(&args[0]).is_some_and(|s| s.flags.contains(&"blocking"))
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
            let arity = command_spec(&args[0]).map(|spec| spec.arity).or_else(|| {
                CONNECTION_COMMANDS
                    .iter()
                    .find(|(n, ..)| *n == name)
                    .map(|(_, arity, _)| *arity)
            });
            let Some(arity) = arity else {
                self.multi_failed = true;
                return redis::unknown_command(&args).into();
            };
            if !arity_ok(arity, args.len()) {
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
            "auth" => self.auth(&args).await,
            "hello" => self.hello(&args).await,
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
            "info" => super::info::info(&self.shared, &args).await,
            "command" => super::admin::command(&args),
            "config" => self.shared.config.command(&args),
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
            "function" => super::admin::function(&args),
            _ => {
                let unblock = self.would_block(&args).then_some(&*self.unblock);
                self.shared.engine.execute(self.db, &args, unblock).await
            }
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

    /// Checks a user and password against the SQL roles and configured users; `AUTH
    /// password` is the default user, which is the first configured one.
    async fn check_password(&self, user: Option<&[u8]>, password: &[u8]) -> Option<String> {
        let users = &self.shared.opts.users;
        let name = match user {
            None | Some(b"default") => users.first()?.0.clone(),
            Some(u) => String::from_utf8(u.to_vec()).ok()?,
        };
        let credential = crate::credentials::lookup(self.shared.engine.sql_engine(), users, &name)
            .await
            .ok()
            .flatten()?;
        credential
            .matches_cleartext(&name, password)
            .then(|| match user {
                Some(u) => String::from_utf8_lossy(u).into_owned(),
                None => "default".into(),
            })
    }

    async fn auth(&mut self, args: &[Vec<u8>]) -> Reply {
        let (user, password) = match args.len() {
            2 => (None, &args[1]),
            3 => (Some(args[1].as_slice()), &args[2]),
            _ => return err("syntax error"),
        };
        match self.check_password(user, password).await {
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
    async fn hello(&mut self, args: &[Vec<u8>]) -> Reply {
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
                match self.check_password(Some(&args[i + 1]), &args[i + 2]).await {
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
            ("list", _) => {
                // This connection's own line is fresh; the others' are as of their last command.
                let mut lines = String::new();
                for (id, entry) in self.shared.clients.lock().iter() {
                    if *id == self.id {
                        lines.push_str(&self.client_line());
                    } else {
                        lines.push_str(&entry.line.lock());
                    }
                    lines.push('\n');
                }
                Reply::Bulk(lines.into_bytes())
            }
            ("kill", _) => self.kill(&args[2..]),
            ("unblock", 3 | 4) => {
                let Some(id) = std::str::from_utf8(&args[2])
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    return err("value is not an integer or out of range");
                };
                let as_error = match args.get(3).map(|a| lower(a)) {
                    None => false,
                    Some(m) if m == "timeout" => false,
                    Some(m) if m == "error" => true,
                    Some(_) => {
                        return err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
                    }
                };
                let clients = self.shared.clients.lock();
                match clients.get(&id) {
                    Some(entry) if entry.blocked.load(std::sync::atomic::Ordering::SeqCst) => {
                        entry.unblock.request(as_error);
                        Reply::Integer(1)
                    }
                    _ => Reply::Integer(0),
                }
            }
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
            ("reply", 3) => match lower(&args[2]).as_str() {
                "on" => {
                    self.replies = ReplyMode::On;
                    Reply::ok()
                }
                "off" => {
                    self.replies = ReplyMode::Off;
                    Reply::ok()
                }
                "skip" => {
                    self.replies = ReplyMode::SkipNext;
                    Reply::ok()
                }
                _ => err("syntax error"),
            },
            _ => err(format!(
                "Unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }

    /// CLIENT KILL addr | ID id | ADDR addr [SKIPME yes|no] …: ends matching connections.
    fn kill(&mut self, filters: &[Vec<u8>]) -> Reply {
        let old_form = filters.len() == 1;
        let (mut id, mut addr, mut skip_me) = (None, None, true);
        if old_form {
            addr = Some(String::from_utf8_lossy(&filters[0]).into_owned());
            skip_me = false;
        } else {
            if filters.is_empty() || !filters.len().is_multiple_of(2) {
                return err("syntax error");
            }
            for pair in filters.chunks(2) {
                let value = String::from_utf8_lossy(&pair[1]).into_owned();
                match lower(&pair[0]).as_str() {
                    "id" => match value.parse::<u64>() {
                        Ok(v) => id = Some(v),
                        Err(_) => return err("client-id should be greater than 0"),
                    },
                    "addr" => addr = Some(value),
                    "skipme" => skip_me = value.eq_ignore_ascii_case("yes"),
                    _ => return err("syntax error"),
                }
            }
        }
        let mut killed = 0;
        for (client, entry) in self.shared.clients.lock().iter() {
            let line = entry.line.lock().clone();
            let matches = id.is_none_or(|i| i == *client)
                && addr
                    .as_ref()
                    .is_none_or(|a| line.contains(&format!(" addr={a} ")));
            if matches && !(skip_me && *client == self.id) {
                entry.kill.cancel();
                killed += 1;
            }
        }
        if old_form {
            if killed == 0 {
                return err("No such client");
            }
            return Reply::ok();
        }
        Reply::Integer(killed)
    }

    pub fn client_line(&self) -> String {
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
        // Data commands run as one transaction, each in the database selected before it;
        // connection commands queued among them (SELECT, PING, ECHO …) are answered in their
        // place.
        let mut db = self.db;
        let mut data: Vec<(u8, Vec<Vec<u8>>)> = Vec::new();
        for args in &queue {
            if command_spec(&args[0]).is_some() {
                data.push((db, args.clone()));
            } else if lower(&args[0]) == "select"
                && let Some(Ok(selected)) = args.get(1).map(|a| select_db(a))
            {
                db = selected;
            }
        }
        let data_replies = if data.is_empty() && watched.is_empty() {
            Vec::new()
        } else {
            match self.shared.engine.exec(&data, &watched).await {
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
