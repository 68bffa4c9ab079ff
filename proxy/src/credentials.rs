//! What the MySQL and RESP frontends check a login against: the catalog's role of that name
//! (its `mysql_native_password` hash, or its stored PostgreSQL secret for a cleartext
//! password), else a user named in the configuration. PostgreSQL's own check is in
//! `pg::auth`, which speaks SCRAM and MD5 over the same roles.

use thunderdb_common::ThunderError;
use thunderdb_common::password::Secret;
use thunderdb_compute::{Engine, RoleDef};

/// A login's credential as a frontend finds it.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    /// A configured user: the password itself.
    Cleartext(String),
    /// A catalog role that may log in.
    Role {
        /// SHA1(SHA1(password)), when the password was set in clear.
        native: Option<Vec<u8>>,
        secret: Option<Secret>,
    },
}

/// The credential of `user`, or `None` when it cannot log in at all (unknown, NOLOGIN, or
/// past VALID UNTIL).
pub(crate) async fn lookup(
    engine: &Engine,
    configured: &[(String, String)],
    user: &str,
) -> Result<Option<Credential>, ThunderError> {
    let configured_password = configured.iter().find(|(u, _)| u == user).map(|(_, p)| p);
    if let Some(role) = engine.role(user).await? {
        if !usable(&role) {
            return Ok(None);
        }
        // The configured superuser keeps its configured password until ALTER ROLE gives it
        // one (its catalog entry may exist for other attributes only).
        if role.password.is_none()
            && let Some(p) = configured_password
        {
            return Ok(Some(Credential::Cleartext(p.clone())));
        }
        return Ok(Some(Credential::Role {
            native: role.mysql_native.clone(),
            secret: role.secret(),
        }));
    }
    Ok(configured_password.map(|p| Credential::Cleartext(p.clone())))
}

fn usable(role: &RoleDef) -> bool {
    role.login && !role.expired()
}

impl Credential {
    /// Whether `password`, sent in clear (RESP's AUTH), is this login's.
    pub(crate) fn matches_cleartext(&self, user: &str, password: &[u8]) -> bool {
        match self {
            Credential::Cleartext(p) => {
                thunderdb_common::password::constant_time_eq(p.as_bytes(), password)
            }
            Credential::Role { secret, native } => {
                let Ok(password) = std::str::from_utf8(password) else {
                    return false;
                };
                match (secret, native) {
                    (Some(s), _) => s.matches(user, password),
                    (None, Some(h)) => thunderdb_common::password::constant_time_eq(
                        &thunderdb_common::password::mysql_native_hash(password),
                        h,
                    ),
                    (None, None) => false,
                }
            }
        }
    }
}
