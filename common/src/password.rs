//! Stored passwords, as PostgreSQL keeps them in `pg_authid.rolpassword`: a SCRAM-SHA-256
//! verifier (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`) or an MD5 hash
//! (`md5` + hex of md5(password ‖ user name)). The cleartext is never stored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// PBKDF2 iterations of new SCRAM verifiers, PostgreSQL's default `scram_iterations`.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A password as stored for a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    Scram(ScramVerifier),
    /// The 32 hex digits after `md5`.
    Md5(String),
}

/// What a server needs to check a SCRAM-SHA-256 exchange (RFC 5802).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// How `password_encryption` says a new password is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    ScramSha256,
    Md5,
}

impl Encryption {
    /// The setting's value, as `SET password_encryption` takes it.
    pub fn parse(s: &str) -> Option<Encryption> {
        match s.to_ascii_lowercase().as_str() {
            "scram-sha-256" => Some(Encryption::ScramSha256),
            "md5" => Some(Encryption::Md5),
            _ => None,
        }
    }
}

/// PBKDF2-HMAC-SHA-256 of the SASLprep'd password: SCRAM's SaltedPassword. A password that
/// SASLprep rejects is used as it is, as PostgreSQL does.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let prepared = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN),
        salt,
        prepared.as_bytes(),
        &mut out,
    );
    out
}

impl ScramVerifier {
    /// The verifier of `password` with `salt`.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramVerifier {
        let salted = salted_password(password, salt, iterations);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let server_key = hmac::sign(&key, b"Server Key");
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: stored_key.as_ref().to_vec(),
            server_key: server_key.as_ref().to_vec(),
        }
    }

    /// A verifier of `password` with a fresh 16-byte salt.
    pub fn new(password: &str) -> ScramVerifier {
        ScramVerifier::derive(password, &rand::random::<[u8; 16]>(), SCRAM_ITERATIONS)
    }

    /// Whether `password` is the one this verifier was made from.
    pub fn matches(&self, password: &str) -> bool {
        let other = ScramVerifier::derive(password, &self.salt, self.iterations);
        constant_time_eq(&other.stored_key, &self.stored_key)
            && constant_time_eq(&other.server_key, &self.server_key)
    }
}

impl Secret {
    /// How `password` is stored for `user` under `encryption`. A password given already in a
    /// stored form (what `pg_dumpall` writes) is kept as it is, as PostgreSQL does.
    pub fn new(user: &str, password: &str, encryption: Encryption) -> Secret {
        if let Some(stored) = Secret::parse(password) {
            return stored;
        }
        match encryption {
            Encryption::ScramSha256 => Secret::Scram(ScramVerifier::new(password)),
            Encryption::Md5 => Secret::Md5(md5_hex(&[password.as_bytes(), user.as_bytes()])),
        }
    }

    /// Reads a stored form: `SCRAM-SHA-256$…` or `md5` + 32 hex digits.
    pub fn parse(text: &str) -> Option<Secret> {
        if let Some(hex) = text.strip_prefix("md5") {
            let is_hex = hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            return is_hex.then(|| Secret::Md5(hex.to_ascii_lowercase()));
        }
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let verifier = ScramVerifier {
            iterations: iterations.parse().ok().filter(|i| *i > 0)?,
            salt: STANDARD.decode(salt).ok()?,
            stored_key: STANDARD.decode(stored).ok()?,
            server_key: STANDARD.decode(server).ok()?,
        };
        (verifier.stored_key.len() == 32 && verifier.server_key.len() == 32)
            .then_some(Secret::Scram(verifier))
    }

    /// The stored form, as `pg_authid.rolpassword` shows it.
    pub fn to_text(&self) -> String {
        match self {
            Secret::Scram(v) => format!(
                "SCRAM-SHA-256${}:{}${}:{}",
                v.iterations,
                STANDARD.encode(&v.salt),
                STANDARD.encode(&v.stored_key),
                STANDARD.encode(&v.server_key)
            ),
            Secret::Md5(hex) => format!("md5{hex}"),
        }
    }

    /// Whether a cleartext `password` of `user` matches (protocols that send the password
    /// itself: RESP's AUTH).
    pub fn matches(&self, user: &str, password: &str) -> bool {
        match self {
            Secret::Scram(v) => v.matches(password),
            Secret::Md5(hex) => constant_time_eq(
                md5_hex(&[password.as_bytes(), user.as_bytes()]).as_bytes(),
                hex.as_bytes(),
            ),
        }
    }

    /// What a client must answer to an MD5 challenge with `salt` (`md5` + hex of
    /// md5(stored hex ‖ salt)); `None` for a SCRAM secret, which cannot answer one.
    pub fn md5_response(&self, salt: &[u8; 4]) -> Option<String> {
        match self {
            Secret::Md5(hex) => Some(format!("md5{}", md5_hex(&[hex.as_bytes(), salt]))),
            Secret::Scram(_) => None,
        }
    }
}

/// MySQL's `mysql_native_password` hash: SHA1(SHA1(password)).
pub fn mysql_native_hash(password: &str) -> Vec<u8> {
    let once = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, once.as_ref())
        .as_ref()
        .to_vec()
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut ctx = md5::Context::new();
    for p in parts {
        ctx.consume(p);
    }
    format!("{:x}", ctx.finalize())
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_postgres() {
        // SELECT 'md5' || md5('secret' || 'alice') in PostgreSQL.
        let s = Secret::new("alice", "secret", Encryption::Md5);
        assert_eq!(s.to_text(), "md54a0a68b43b6cd5cf266fa02f196e2371");
        assert_eq!(
            s.md5_response(&[1, 2, 3, 4]).as_deref(),
            Some("md598a0412b9c31436fc53776e863350083")
        );
        assert!(s.matches("alice", "secret"));
        assert!(!s.matches("alice", "Secret"));
        assert_eq!(Secret::parse(&s.to_text()), Some(s));
    }

    #[test]
    fn scram_verifier_round_trips_and_checks() {
        // RFC 7677's example: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 rounds.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = ScramVerifier::derive("pencil", &salt, 4096);
        assert_eq!(
            STANDARD.encode(&v.server_key),
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
        let s = Secret::Scram(v);
        assert_eq!(Secret::parse(&s.to_text()), Some(s.clone()));
        assert!(s.matches("any", "pencil"));
        assert!(!s.matches("any", "pencil2"));
        assert_eq!(s.md5_response(&[1, 2, 3, 4]), None);
    }

    #[test]
    fn stored_forms_are_kept() {
        let text = Secret::new("u", "x", Encryption::ScramSha256).to_text();
        assert_eq!(Secret::new("u", &text, Encryption::Md5).to_text(), text);
        assert_eq!(Secret::parse("md5xyz"), None);
        assert_eq!(Secret::parse("SCRAM-SHA-256$0:AA==$AA==:AA=="), None);
    }
}
