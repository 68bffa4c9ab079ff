//! Startup: SCRAM-SHA-256 authentication, opening the compute session, and the parameters
//! reported to the client.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::BuildHasher;

use async_trait::async_trait;
use futures::sink::Sink;
use pgwire::api::auth::sasl::scram::{ScramSecret, gen_salted_password};
use pgwire::api::auth::{
    AuthOutcome, AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult, SEVERITY_FATAL};
use pgwire::messages::startup::PasswordMessageFamily;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::handler::Connection;
use crate::error::Error;

/// PBKDF2 iterations of the SCRAM verifiers, PostgreSQL's default.
const SCRAM_ITERATIONS: usize = 4096;

/// A user's SCRAM verifier, derived once at start-up so that a login costs no PBKDF2.
struct Verifier {
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

/// The users allowed to log in, as SCRAM verifiers.
pub(crate) struct Users {
    verifiers: HashMap<String, Verifier>,
    /// Keys the made-up salt of unknown users, so it is stable per name like a real one.
    mock_salt_key: std::collections::hash_map::RandomState,
}

impl Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("count", &self.verifiers.len())
            .finish()
    }
}

impl Users {
    pub(crate) fn new(users: &[(String, String)]) -> Self {
        let verifiers = users
            .iter()
            .map(|(user, password)| {
                let salt = rand::random::<[u8; 16]>().to_vec();
                let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
                let verifier = match ScramSecret::verifier_from_salted_password(
                    salt,
                    salted,
                    SCRAM_ITERATIONS,
                ) {
                    ScramSecret::Verifier {
                        salt,
                        stored_key,
                        server_key,
                        ..
                    } => Verifier {
                        salt,
                        stored_key,
                        server_key,
                    },
                    ScramSecret::SaltedPassword { salt, .. } => {
                        // verifier_from_salted_password always returns a verifier; keep the user
                        // unable to log in rather than trusting an unexpected shape.
                        Verifier {
                            salt,
                            stored_key: Vec::new(),
                            server_key: Vec::new(),
                        }
                    }
                };
                (user.clone(), verifier)
            })
            .collect();
        Users {
            verifiers,
            mock_salt_key: Default::default(),
        }
    }
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        // Only SCRAM is offered, which asks for `get_scram_secret`; no password is ever stored.
        Err(PgWireError::InvalidSASLState)
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = login.user().unwrap_or_default();
        if let Some(v) = self.verifiers.get(user) {
            return Ok((
                ScramSecret::Verifier {
                    salt: v.salt.clone(),
                    iterations: SCRAM_ITERATIONS,
                    stored_key: v.stored_key.clone(),
                    server_key: v.server_key.clone(),
                },
                None,
            ));
        }
        // Like PostgreSQL, run the exchange to the end for an unknown user with a stable made-up
        // salt and keys no proof can match, so failures do not reveal which names exist.
        let mut salt = Vec::with_capacity(16);
        for part in 0u8..2 {
            salt.extend_from_slice(&self.mock_salt_key.hash_one((user, part)).to_be_bytes());
        }
        Ok((
            ScramSecret::Verifier {
                salt,
                iterations: SCRAM_ITERATIONS,
                stored_key: rand::random::<[u8; 32]>().to_vec(),
                server_key: rand::random::<[u8; 32]>().to_vec(),
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
                let mechanism = pgwire::api::auth::mechanism::AuthMechanismFactory::create(
                    &self.shared().scram,
                );
                self.shared()
                    .auth
                    .begin_authentication(client, mechanism)
                    .await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                if !self.sasl_started() && !is_well_formed_sasl_initial_response(&message) {
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
                let mut words = value.split_whitespace();
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
