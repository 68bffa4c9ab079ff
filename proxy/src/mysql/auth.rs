//! The connection phase: the server's greeting (Protocol::HandshakeV10), the client's answer
//! (HandshakeResponse41), and password checks for `mysql_native_password` and
//! `caching_sha2_password` (its fast path: the server knows the password, so no full
//! authentication exchange is ever needed).

use super::packet::{Malformed, Reader};
use rand::Rng;
use ring::digest;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// Capability flags.
pub const CLIENT_LONG_PASSWORD: u32 = 1;
pub const CLIENT_FOUND_ROWS: u32 = 2;
pub const CLIENT_LONG_FLAG: u32 = 4;
pub const CLIENT_CONNECT_WITH_DB: u32 = 8;
pub const CLIENT_PROTOCOL_41: u32 = 512;
pub const CLIENT_INTERACTIVE: u32 = 1024;
pub const CLIENT_SSL: u32 = 2048;
pub const CLIENT_TRANSACTIONS: u32 = 8192;
pub const CLIENT_SECURE_CONNECTION: u32 = 32768;
pub const CLIENT_MULTI_STATEMENTS: u32 = 1 << 16;
pub const CLIENT_MULTI_RESULTS: u32 = 1 << 17;
pub const CLIENT_PS_MULTI_RESULTS: u32 = 1 << 18;
pub const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
pub const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
pub const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
pub const CLIENT_DEPRECATE_EOF: u32 = 1 << 24;

/// What the server offers.
pub const SERVER_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_INTERACTIVE
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_DEPRECATE_EOF;

/// A fresh 20-byte scramble (no NUL bytes: it is also sent NUL-terminated).
pub fn scramble() -> [u8; 20] {
    let mut rng = rand::thread_rng();
    let mut s = [0u8; 20];
    for b in &mut s {
        *b = rng.gen_range(1..=127);
    }
    s
}

/// The greeting packet; `tls` offers CLIENT_SSL.
pub fn greeting(
    server_version: &str,
    connection_id: u32,
    scramble: &[u8; 20],
    status: u16,
    tls: bool,
) -> Vec<u8> {
    let caps = (SERVER_CAPABILITIES | if tls { CLIENT_SSL } else { 0 }).to_le_bytes();
    let mut p = Vec::with_capacity(128);
    p.push(10);
    p.extend_from_slice(server_version.as_bytes());
    p.push(0);
    p.extend_from_slice(&connection_id.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    p.extend_from_slice(&caps[..2]);
    p.push(45); // utf8mb4_general_ci
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&caps[2..]);
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend_from_slice(NATIVE_PASSWORD.as_bytes());
    p.push(0);
    p
}

/// What the client answered.
#[derive(Debug, Default)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub plugin: String,
}

/// Whether an answer is an SSLRequest (the short form sent before TLS).
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & CLIENT_SSL != 0
}

pub fn parse_response(payload: &[u8]) -> Result<HandshakeResponse, Malformed> {
    let mut r = Reader::new(payload);
    let capabilities = r.u32()?;
    if capabilities & CLIENT_PROTOCOL_41 == 0 {
        return Err(Malformed);
    }
    let _max_packet = r.u32()?;
    let _charset = r.u8()?;
    r.bytes(23)?;
    let user = String::from_utf8_lossy(r.cstr()?).into_owned();
    let auth_response = if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        r.lenenc_bytes()?.to_vec()
    } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
        let n = r.u8()? as usize;
        r.bytes(n)?.to_vec()
    } else {
        r.cstr()?.to_vec()
    };
    let mut database = None;
    if capabilities & CLIENT_CONNECT_WITH_DB != 0 && !r.is_empty() {
        let db = r.cstr()?;
        if !db.is_empty() {
            database = Some(String::from_utf8_lossy(db).into_owned());
        }
    }
    let mut plugin = String::new();
    if capabilities & CLIENT_PLUGIN_AUTH != 0 && !r.is_empty() {
        plugin = String::from_utf8_lossy(r.cstr().unwrap_or_default()).into_owned();
    }
    Ok(HandshakeResponse {
        capabilities,
        user,
        auth_response,
        database,
        plugin,
    })
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().to_vec()
}

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().to_vec()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// What a client that knows `password` answers to `scramble` under `plugin`.
pub fn expected_response(plugin: &str, password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let pw = password.as_bytes();
    match plugin {
        CACHING_SHA2 => {
            let h1 = sha256(&[pw]);
            let h2 = sha256(&[&h1]);
            xor(&h1, &sha256(&[&h2, scramble]))
        }
        _ => {
            let h1 = sha1(&[pw]);
            let h2 = sha1(&[&h1]);
            xor(&h1, &sha1(&[scramble, &h2]))
        }
    }
}

/// Whether `answer` to `scramble` under `mysql_native_password` proves the password whose
/// SHA1(SHA1(password)) is `hash2` (the server's stored form): the answer is
/// SHA1(pw) XOR SHA1(scramble ‖ hash2), so XOR-ing it back must give a SHA1(pw) hashing to hash2.
pub fn native_hash_matches(hash2: &[u8], scramble: &[u8], answer: &[u8]) -> bool {
    if answer.len() != 20 || hash2.len() != 20 {
        return false;
    }
    let h1 = xor(answer, &sha1(&[scramble, hash2]));
    same(&sha1(&[&h1]), hash2)
}

/// Compares in time independent of where the first difference is.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_hash_checks_the_answer() {
        let scramble = b"0123456789abcdefghij";
        let answer = expected_response(NATIVE_PASSWORD, "secret", scramble);
        let hash2 = thunderdb_common::password::mysql_native_hash("secret");
        assert!(native_hash_matches(&hash2, scramble, &answer));
        let wrong = expected_response(NATIVE_PASSWORD, "secreT", scramble);
        assert!(!native_hash_matches(&hash2, scramble, &wrong));
        assert!(!native_hash_matches(&hash2, scramble, &[]));
    }

    #[test]
    fn native_password_matches_mysql() {
        // The scramble and answer of a real exchange (password "secret").
        let scramble = b"01234567890123456789";
        let answer = expected_response(NATIVE_PASSWORD, "secret", scramble);
        // SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))): XOR with the hash gives SHA1(pw),
        // whose SHA1 is the stored hash.
        let stored = sha1(&[&sha1(&[b"secret"])]);
        let recovered = xor(&answer, &sha1(&[scramble, &stored]));
        assert_eq!(sha1(&[&recovered]), stored);
        assert!(expected_response(NATIVE_PASSWORD, "", scramble).is_empty());
        assert_ne!(answer, expected_response(CACHING_SHA2, "secret", scramble));
    }

    #[test]
    fn short_answers_are_malformed() {
        assert!(parse_response(&[0; 10]).is_err());
        let mut p = (CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION)
            .to_le_bytes()
            .to_vec();
        p.extend_from_slice(&[0; 27]);
        p.extend_from_slice(b"root\0");
        p.push(200); // claims 200 bytes of auth data
        assert!(parse_response(&p).is_err());
    }
}
