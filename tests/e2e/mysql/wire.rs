//! Bad input on raw sockets: every malformed or unknown packet gets an error packet with its
//! MySQL number, the connection (or, for a broken handshake, just that connection) ends
//! cleanly, and the server keeps serving others. Also COM_FIELD_LIST.

use super::server;
use crate::harness::{PASSWORD, USER};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A MySQL connection spoken by hand.
struct Wire {
    stream: TcpStream,
    seq: u8,
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().to_vec()
}

impl Wire {
    fn connect(port: u16) -> Wire {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Wire { stream, seq: 0 }
    }

    /// Connects and logs in with mysql_native_password (database `thunderdb`).
    fn login(port: u16) -> Wire {
        let mut w = Wire::connect(port);
        let greeting = w.read().expect("greeting");
        assert_eq!(greeting[0], 10, "protocol version 10");
        let version_end = greeting[1..].iter().position(|&b| b == 0).unwrap() + 1;
        let rest = &greeting[version_end + 1..];
        let mut scramble = rest[4..12].to_vec();
        scramble.extend_from_slice(&rest[31..43]);
        let h1 = sha1(&[PASSWORD.as_bytes()]);
        let h2 = sha1(&[&h1]);
        let answer: Vec<u8> = h1
            .iter()
            .zip(sha1(&[&scramble, &h2]))
            .map(|(a, b)| a ^ b)
            .collect();
        // PROTOCOL_41 | SECURE_CONNECTION | CONNECT_WITH_DB | PLUGIN_AUTH
        let caps: u32 = 512 | 32768 | 8 | (1 << 19);
        let mut p = caps.to_le_bytes().to_vec();
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(USER.as_bytes());
        p.push(0);
        p.push(answer.len() as u8);
        p.extend_from_slice(&answer);
        p.extend_from_slice(b"thunderdb\0mysql_native_password\0");
        w.seq = 1;
        w.send(&p);
        let ok = w.read().expect("login answer");
        assert_eq!(ok[0], 0, "login OK, got {ok:?}");
        w
    }

    /// Connects and answers the greeting with a handshake response for `user` whose auth
    /// data claims `claimed` bytes and carries `auth`.
    fn handshake(port: u16, user: &[u8], claimed: u8, auth: &[u8]) -> Wire {
        let mut w = Wire::connect(port);
        w.read().expect("greeting");
        w.seq = 1;
        let mut p = (512u32 | 32768).to_le_bytes().to_vec();
        p.extend_from_slice(&[0; 27]);
        p.extend_from_slice(user);
        p.push(0);
        p.push(claimed);
        p.extend_from_slice(auth);
        w.send(&p);
        w
    }

    fn send(&mut self, payload: &[u8]) {
        let len = (payload.len() as u32).to_le_bytes();
        let mut p = vec![len[0], len[1], len[2], self.seq];
        p.extend_from_slice(payload);
        self.stream.write_all(&p).expect("send");
    }

    /// A new command (sequence 0).
    fn command(&mut self, payload: &[u8]) {
        self.seq = 0;
        self.send(payload);
    }

    fn read(&mut self) -> Option<Vec<u8>> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).ok()?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload).ok()?;
        Some(payload)
    }

    /// Reads an ERR packet: (number, sqlstate, message).
    fn error(&mut self) -> (u16, String, String) {
        let p = self.read().expect("an error packet");
        assert_eq!(p[0], 0xFF, "expected ERR, got {p:?}");
        (
            u16::from_le_bytes([p[1], p[2]]),
            String::from_utf8_lossy(&p[4..9]).into_owned(),
            String::from_utf8_lossy(&p[9..]).into_owned(),
        )
    }

    /// Runs a query and reads the answer's first packet.
    fn query(&mut self, sql: &str) -> Vec<u8> {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p);
        self.read().expect("a query answer")
    }

    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

#[test]
fn malformed_and_unknown_commands_get_errors() {
    let Some(mut server) = server("mysql::wire::malformed_and_unknown_commands_get_errors") else {
        return;
    };
    let port = server.mysql_port();
    let mut w = Wire::login(port);
    w.command(&[]);
    assert_eq!(w.error().0, 1835, "an empty command");
    w.command(&[0x55, 1, 2]);
    assert_eq!(w.error(), (1047, "08S01".into(), "Unknown command".into()));
    w.command(&[0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(w.error().0, 1243, "execute of a statement never prepared");
    w.command(&[0x17, 1]);
    assert_eq!(w.error().0, 1835, "a truncated execute");
    w.command(&[0x1A, 42, 0, 0, 0]);
    assert_eq!(w.error().0, 1243, "reset of a statement never prepared");
    w.command(&[0x03, 0xC3, 0x28]);
    assert_eq!(w.error().0, 1300, "a query that is not UTF-8");
    // A prepared statement given the wrong parameters.
    w.command(b"\x16SELECT ?");
    let prepared = w.read().unwrap();
    assert_eq!(prepared[0], 0, "prepare OK: {prepared:?}");
    let id = u32::from_le_bytes([prepared[1], prepared[2], prepared[3], prepared[4]]);
    // One parameter and one column definition, each list closed by an EOF packet.
    for _ in 0..2 {
        while w.read().is_some_and(|p| p[0] != 0xFE) {}
    }
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 8, 0, 1, 2]); // a LONGLONG cut short
    w.command(&exec);
    assert_eq!(w.error().0, 1210);
    // The connection still answers.
    let ok = w.query("SELECT 1");
    assert_eq!(ok, vec![1], "one column");
    // The column definitions, then the rows, each closed by an EOF packet.
    for _ in 0..2 {
        while w.read().is_some_and(|p| p[0] != 0xFE) {}
    }
    w.command(&[0x0E]);
    assert_eq!(w.read().unwrap()[0], 0, "COM_PING");
    w.command(&[0x01]);
    assert!(w.closed(), "COM_QUIT closes");
    server.assert_running("after bad commands");
}

#[test]
fn broken_handshakes_and_huge_packets_end_only_that_connection() {
    let Some(mut server) =
        server("mysql::wire::broken_handshakes_and_huge_packets_end_only_that_connection")
    else {
        return;
    };
    let port = server.mysql_port();
    // Garbage instead of a handshake response.
    let mut w = Wire::connect(port);
    w.read().expect("greeting");
    w.seq = 1;
    w.send(b"\x01\x02garbage");
    assert_eq!(w.error().0, 1043);
    assert!(w.closed());
    // A handshake response that claims more auth data than it has.
    let mut w = Wire::handshake(port, USER.as_bytes(), 200, &[1, 2, 3]);
    assert_eq!(w.error().0, 1043);
    // A wrong password.
    let mut w = Wire::handshake(port, USER.as_bytes(), 20, &[7; 20]);
    let (code, state, message) = w.error();
    assert_eq!((code, state.as_str()), (1045, "28000"), "{message}");
    // A request over max_allowed_packet (64 MiB): four full 16 MiB packets, then the header
    // of a fifth; the server answers 1153 before reading further and closes.
    let mut w = Wire::login(port);
    let chunk = vec![b'x'; 0xFF_FFFF];
    for seq in 0..4u8 {
        w.stream.write_all(&[0xFF, 0xFF, 0xFF, seq]).unwrap();
        if seq == 0 {
            w.stream.write_all(&[0x03]).unwrap();
            w.stream.write_all(&chunk[1..]).unwrap();
        } else {
            w.stream.write_all(&chunk).unwrap();
        }
    }
    w.stream.write_all(&[16, 0, 0, 4]).unwrap();
    let (code, _, _) = w.error();
    assert_eq!(code, 1153);
    assert!(w.closed());
    // Others are unaffected.
    let mut w = Wire::login(port);
    assert_eq!(w.query("SELECT 1"), vec![1]);
    server.assert_running("after broken connections");
}

#[test]
fn field_list_describes_columns() {
    let Some(server) = server("mysql::wire::field_list_describes_columns") else {
        return;
    };
    let mut w = Wire::login(server.mysql_port());
    assert_eq!(
        w.query("CREATE TABLE f (id INT PRIMARY KEY, name VARCHAR(10) DEFAULT 'x')")[0],
        0
    );
    w.command(b"\x04f\0");
    let mut names = Vec::new();
    loop {
        let p = w.read().expect("a column definition");
        if p[0] == 0xFE && p.len() < 9 {
            break;
        }
        // catalog, schema, table, org_table, name …
        let mut at = 0;
        let mut field = || {
            let len = p[at] as usize;
            let s = String::from_utf8_lossy(&p[at + 1..at + 1 + len]).into_owned();
            at += 1 + len;
            s
        };
        let fields: Vec<String> = (0..5).map(|_| field()).collect();
        assert_eq!(
            fields[..3],
            ["def".to_string(), "thunderdb".into(), "f".into()]
        );
        names.push(fields[4].clone());
    }
    assert_eq!(names, ["id", "name"]);
    w.command(b"\x04missing\0");
    assert_eq!(w.error().0, 1146);
}
