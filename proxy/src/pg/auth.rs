//! Startup: SCRAM-SHA-256 authentication, opening the compute session, and the parameters
//! reported to the client.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::BuildHasher;

use async_trait::async_trait;
use futures::sink::Sink;
use pgwire::api::auth::md5pass::Md5PasswordAuth;
use pgwire::api::auth::mechanism::{AuthMechanism, AuthMechanismFactory};
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    AuthOutcome, AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult, SEVERITY_FATAL};
use pgwire::messages::startup::PasswordMessageFamily;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::sync::Arc;
use thunderdb_common::ThunderError;
use thunderdb_common::password::{SCRAM_ITERATIONS, ScramVerifier, Secret};

use super::backend::SessionFactory;
use super::handler::Connection;
use crate::error::Error;

/// How PostgreSQL clients prove their password: the method of a `pg_hba.conf` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMethod {
    /// MD5 challenge for roles whose password is stored as an MD5 hash, SCRAM-SHA-256 for the
    /// rest (PostgreSQL's `md5`).
    #[default]
    Md5,
    /// SCRAM-SHA-256 only: roles with an MD5 hash cannot log in.
    ScramSha256,
}

impl AuthMethod {
    pub fn parse(s: &str) -> Option<AuthMethod> {
        match s {
            "md5" => Some(AuthMethod::Md5),
            "scram-sha-256" => Some(AuthMethod::ScramSha256),
            _ => None,
        }
    }
}

/// What the server knows of a role trying to log in.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    secret: Option<Secret>,
    pub(crate) can_login: bool,
    /// Past `VALID UNTIL`: the password no longer works.
    expired: bool,
}

/// The users allowed to log in: roles in the catalog, and the configured superuser, whose
/// verifier is derived once at start-up so that a login costs no PBKDF2.
pub(crate) struct Users {
    configured: HashMap<String, ScramVerifier>,
    method: AuthMethod,
    /// Keys the made-up salt of unknown users, so it is stable per name like a real one.
    mock_salt_key: std::collections::hash_map::RandomState,
}

impl Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("configured", &self.configured.len())
            .field("method", &self.method)
            .finish()
    }
}

impl Users {
    pub(crate) fn new(users: &[(String, String)], method: AuthMethod) -> Self {
        let configured = users
            .iter()
            .map(|(user, password)| (user.clone(), ScramVerifier::new(password)))
            .collect();
        Users {
            configured,
            method,
            mock_salt_key: Default::default(),
        }
    }

    /// The login record of `user`: its catalog role if it has one, else a configured user.
    pub(crate) async fn login(
        &self,
        factory: &dyn SessionFactory,
        user: &str,
    ) -> Result<Option<Login>, ThunderError> {
        if let Some(role) = factory.role(user).await? {
            // The configured superuser keeps its configured password until ALTER ROLE gives
            // it one (its catalog entry may exist for other attributes only).
            let secret = role
                .secret()
                .or_else(|| self.configured.get(user).map(|v| Secret::Scram(v.clone())));
            return Ok(Some(Login {
                secret,
                can_login: role.login,
                expired: role.expired(),
            }));
        }
        Ok(self.configured.get(user).map(|v| Login {
            secret: Some(Secret::Scram(v.clone())),
            can_login: true,
            expired: false,
        }))
    }

    /// The mechanism that checks `login`, and whether it is SASL. Whatever cannot succeed (an
    /// unknown user, no password, an expired one, an MD5 hash under `scram-sha-256`) runs a
    /// SCRAM exchange to the end against keys no proof matches, as PostgreSQL does, so a
    /// failure does not tell which names exist.
    pub(crate) fn mechanism(
        &self,
        user: &str,
        login: Option<&Login>,
    ) -> (Box<dyn AuthMechanism>, bool) {
        let usable = login.filter(|l| !l.expired).and_then(|l| l.secret.clone());
        match usable {
            Some(secret @ Secret::Md5(_)) if self.method == AuthMethod::Md5 => (
                Md5PasswordAuth::new(Arc::new(LoginSecret::Md5(secret))).create(),
                false,
            ),
            Some(Secret::Scram(v)) => (
                ScramAuth::new(Arc::new(LoginSecret::Scram(v))).create(),
                true,
            ),
            _ => (
                ScramAuth::new(Arc::new(LoginSecret::Scram(self.mock_verifier(user)))).create(),
                true,
            ),
        }
    }

    fn mock_verifier(&self, user: &str) -> ScramVerifier {
        let mut salt = Vec::with_capacity(16);
        for part in 0u8..2 {
            salt.extend_from_slice(&self.mock_salt_key.hash_one((user, part)).to_be_bytes());
        }
        ScramVerifier {
            iterations: SCRAM_ITERATIONS,
            salt,
            stored_key: rand::random::<[u8; 32]>().to_vec(),
            server_key: rand::random::<[u8; 32]>().to_vec(),
        }
    }
}

/// One login's stored password, handed to pgwire's SCRAM or MD5 mechanism.
#[derive(Debug)]
enum LoginSecret {
    Scram(ScramVerifier),
    Md5(Secret),
}

#[async_trait]
impl AuthSource for LoginSecret {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        let LoginSecret::Md5(secret) = self else {
            return Err(PgWireError::InvalidSASLState);
        };
        let salt = rand::random::<[u8; 4]>();
        // No response can match a missing one; the exchange still runs to the end.
        let expected = secret.md5_response(&salt).unwrap_or_default();
        Ok(Password::new(Some(salt.to_vec()), expected.into_bytes()))
    }

    async fn get_scram_secret(
        &self,
        _login: &LoginInfo,
    ) -> PgWireResult<(ScramSecret, Option<()>)> {
        let LoginSecret::Scram(v) = self else {
            return Err(PgWireError::InvalidSASLState);
        };
        Ok((
            ScramSecret::Verifier {
                salt: v.salt.clone(),
                iterations: usize::try_from(v.iterations).unwrap_or(usize::MAX),
                stored_key: v.stored_key.clone(),
                server_key: v.server_key.clone(),
            },
            None,
        ))
    }
}

/// The session parameters reported with `ParameterStatus` after authentication, stored in the
/// client's session extensions for [`ReportedParameters`] to hand to pgwire.
#[derive(Clone, Debug, Default)]
pub(crate) struct InitialParameters(pub(crate) Vec<(String, String)>);

/// Hands pgwire the parameters prepared in [`InitialParameters`] for this client.
#[derive(Debug, Default)]
pub(crate) struct ReportedParameters;

impl ServerParameterProvider for ReportedParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let params = client.session_extensions().get::<InitialParameters>()?;
        Some(params.0.iter().cloned().collect())
    }
}

/// Parameters that change with `SET` and that drivers track through `ParameterStatus`.
pub(crate) const TRACKED_PARAMETERS: [&str; 6] = [
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "standard_conforming_strings",
    "application_name",
];

fn fatal(code: &str, message: String) -> PgWireError {
    let mut info = ErrorInfo::new(SEVERITY_FATAL.to_owned(), code.to_owned(), message);
    info.severity_nonlocalized = Some(SEVERITY_FATAL.to_owned());
    PgWireError::UserError(Box::new(info))
}

/// Reports every failed login as PostgreSQL does: the same message whether the user is unknown
/// or the password wrong.
fn login_failure(user: &str, error: PgWireError) -> PgWireError {
    match error {
        PgWireError::InvalidPassword(_) => fatal(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        ),
        PgWireError::UserError(info) => PgWireError::UserError(info),
        other => fatal(other.code().to_owned().as_str(), other.to_string()),
    }
}

/// `SASLInitialResponse`: mechanism name, then a length (-1 for none) and exactly that many
/// bytes. pgwire reads these without bounds checks, so check them first.
fn is_well_formed_sasl_initial_response(message: &PasswordMessageFamily) -> bool {
    let PasswordMessageFamily::Raw(body) = message else {
        return true;
    };
    let Some(nul) = body.iter().position(|b| *b == 0) else {
        return false;
    };
    let rest = &body[nul + 1..];
    if rest.len() < 4 {
        return false;
    }
    let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let data = &rest[4..];
    (len == -1 && data.is_empty()) || usize::try_from(len).is_ok_and(|l| l == data.len())
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let outcome = match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if client_user(client).is_empty() {
                    return Err(fatal(
                        "28000",
                        "no PostgreSQL user name specified in startup packet".into(),
                    ));
                }
                let user = client_user(client);
                let login = self
                    .shared()
                    .users
                    .login(self.shared().factory.as_ref(), &user)
                    .await
                    .map_err(|e| Error::Sql(e).into_pgwire_fatal())?;
                let (mechanism, sasl) = self.shared().users.mechanism(&user, login.as_ref());
                self.set_login(login, sasl);
                self.shared()
                    .auth
                    .begin_authentication(client, mechanism)
                    .await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                if self.expects_sasl()
                    && !self.sasl_started()
                    && !is_well_formed_sasl_initial_response(&message)
                {
                    return Err(fatal("08P01", "malformed SASL message".into()));
                }
                self.set_sasl_started();
                self.shared()
                    .auth
                    .advance_authentication(client, message)
                    .await
            }
            _ => return Ok(()),
        };
        match outcome.map_err(|e| login_failure(&client_user(client), e))? {
            AuthOutcome::InProgress => Ok(()),
            AuthOutcome::Authenticated { final_message, .. } => {
                let user = client_user(client);
                if !self.login_allowed() {
                    return Err(fatal(
                        "28000",
                        format!("role \"{user}\" is not permitted to log in"),
                    ));
                }
                // PostgreSQL connects to the database named like the user when none is given.
                let database = client
                    .metadata()
                    .get(METADATA_DATABASE)
                    .filter(|d| !d.is_empty())
                    .cloned()
                    .unwrap_or_else(|| user.clone());
                let mut session = self
                    .shared()
                    .factory
                    .new_session(&user, &database)
                    .map_err(|e| Error::Sql(e).into_pgwire_fatal())?;
                for (name, value) in startup_settings(client.metadata()) {
                    session
                        .set_parameter(&name, &value)
                        .map_err(|e| Error::Sql(e).into_pgwire_fatal())?;
                }
                let startup_app_name = client.metadata().get(METADATA_APPLICATION_NAME).cloned();
                let initial = self.open_session(session, &user, startup_app_name);
                client.session_extensions().insert(initial);
                self.shared()
                    .auth
                    .complete_authentication(client, final_message)
                    .await?;
                let (pid, secret_key) = client.pid_and_secret_key();
                self.register_cancel(pid, secret_key);
                tracing::debug!(user = %user, db = %database, pid, "postgres session opened");
                Ok(())
            }
        }
    }
}

/// Settings a client sent in its startup packet: every key but the connection's identity, and
/// each `-c name=value` (or `--name=value`) of `options`.
fn startup_settings(metadata: &std::collections::HashMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in metadata {
        match key.as_str() {
            "user" | "database" | "replication" => {}
            "options" => {
                let words = split_options(value);
                let mut words = words.iter().map(String::as_str);
                while let Some(w) = words.next() {
                    let setting = match w {
                        "-c" => words.next(),
                        w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
                    };
                    if let Some((k, v)) = setting.and_then(|s| s.split_once('=')) {
                        out.push((k.replace('-', "_"), v.to_string()));
                    }
                }
            }
            _ => out.push((key.clone(), value.clone())),
        }
    }
    out
}

/// The words of the startup `options` string as PostgreSQL splits them: blanks separate words
/// unless escaped with a backslash (`read\ committed`); `\\` is a backslash.
fn split_options(options: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn client_user<C: ClientInfo + ?Sized>(client: &C) -> String {
    client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn options_split_at_unescaped_blanks() {
        let meta = std::collections::HashMap::from([(
            "options".to_string(),
            r"-c default_transaction_isolation=read\ committed  --search-path=a\\b -cwork_mem=4MB"
                .to_string(),
        )]);
        let mut got = startup_settings(&meta);
        got.sort();
        let want = [
            ("default_transaction_isolation", "read committed"),
            ("search_path", r"a\b"),
            ("work_mem", "4MB"),
        ];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()
        );
    }

    #[test]
    fn sasl_initial_response_is_checked() {
        let ok = |b: &[u8]| {
            is_well_formed_sasl_initial_response(&PasswordMessageFamily::Raw(BytesMut::from(b)))
        };
        assert!(ok(b"SCRAM-SHA-256\0\0\0\0\x03abc"));
        assert!(ok(b"SCRAM-SHA-256\0\xff\xff\xff\xff"));
        assert!(!ok(b"SCRAM-SHA-256\0\0\0\0\x09abc"));
        assert!(!ok(b"SCRAM-SHA-256\0\0\0"));
        assert!(!ok(b"SCRAM-SHA-256"));
    }
}
