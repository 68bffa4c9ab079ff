//! RESP framing: requests (multi-bulk arrays, or inline commands typed by hand) in, replies out
//! as RESP2 or RESP3. Lengths from the network are checked before anything is allocated.

use bytes::{Buf, BytesMut};
use thunderdb_compute::redis::Reply;

/// Redis's `proto-max-bulk-len`: the largest argument accepted.
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// The most arguments one request may carry.
pub const MAX_ARGS: usize = 1024 * 1024;
/// The longest inline command line.
const MAX_INLINE: usize = 64 * 1024;
/// The most a client's unread requests may hold (Redis's client-query-buffer-limit, 1 GiB).
pub const MAX_QUERY_BUFFER: usize = 1 << 30;
/// Before AUTH Redis accepts only small requests, so an unauthenticated client cannot make the
/// server buffer much.
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;
pub const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;

/// A request that breaks the protocol; the connection is answered and closed.
#[derive(Debug, PartialEq)]
pub struct ProtocolError(pub String);

/// How far a multibulk request that arrived only in part was read, so that the next call
/// goes on from there: a request that arrives in many pieces is read once, not once per piece.
#[derive(Debug, Default)]
pub struct RequestState {
    /// Arguments announced by the `*<count>` line, once read.
    count: Option<usize>,
    /// Where the next argument's `$<len>` line starts.
    pos: usize,
    /// (start, length) of the arguments read so far.
    spans: Vec<(usize, usize)>,
}

/// Parses one request from `buf`, consuming it; `Ok(None)` when more bytes are needed (then
/// `state` remembers what was read; pass the same `state` with the grown `buf`). An empty
/// inline line yields an empty request (ignored, as Redis does).
pub fn parse_request(
    buf: &mut BytesMut,
    state: &mut RequestState,
    max_args: usize,
    max_bulk: usize,
) -> Result<Option<Vec<Vec<u8>>>, ProtocolError> {
    let parsed = parse_from(buf, state, max_args, max_bulk);
    if parsed.is_err() {
        *state = RequestState::default();
    }
    parsed
}

fn parse_from(
    buf: &mut BytesMut,
    state: &mut RequestState,
    max_args: usize,
    max_bulk: usize,
) -> Result<Option<Vec<Vec<u8>>>, ProtocolError> {
    let count = match state.count {
        Some(count) => count,
        None => {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                return parse_inline(buf);
            }
            let mut pos = 0;
            let Some(count) = read_line_number(buf, &mut pos, b'*')? else {
                return Ok(None);
            };
            if count > max_args as i64 {
                return Err(ProtocolError("invalid multibulk length".into()));
            }
            if count <= 0 {
                buf.advance(pos);
                return Ok(Some(Vec::new()));
            }
            let count = count as usize;
            *state = RequestState {
                count: Some(count),
                pos,
                spans: Vec::with_capacity(count.min(1024)),
            };
            count
        }
    };
    while state.spans.len() < count {
        let mut pos = state.pos;
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError(format!(
                "expected '$', got '{}'",
                char::from(buf[pos])
            )));
        }
        let Some(len) = read_line_number(buf, &mut pos, b'$')? else {
            return Ok(None);
        };
        if len < 0 || len as u64 > max_bulk as u64 {
            return Err(ProtocolError("invalid bulk length".into()));
        }
        let len = len as usize;
        if buf.len() < pos + len + 2 {
            // Reserve what the announced argument needs, up to a bound, to avoid many regrowths.
            buf.reserve((pos + len + 2 - buf.len()).min(1 << 20));
            return Ok(None);
        }
        if &buf[pos + len..pos + len + 2] != b"\r\n" {
            return Err(ProtocolError("bulk string not terminated by CRLF".into()));
        }
        state.spans.push((pos, len));
        state.pos = pos + len + 2;
    }
    let args = state
        .spans
        .iter()
        .map(|&(start, len)| buf[start..start + len].to_vec())
        .collect();
    buf.advance(state.pos);
    *state = RequestState::default();
    Ok(Some(args))
}

/// Reads `<marker><number>\r\n` at `pos`; `None` when the line is incomplete.
fn read_line_number(buf: &[u8], pos: &mut usize, marker: u8) -> Result<Option<i64>, ProtocolError> {
    debug_assert_eq!(buf[*pos], marker);
    let start = *pos + 1;
    let Some(nl) = buf[start..].iter().take(32).position(|&b| b == b'\r') else {
        if buf.len() - start > 32 {
            return Err(ProtocolError(if marker == b'*' {
                "invalid multibulk length".into()
            } else {
                "invalid bulk length".into()
            }));
        }
        return Ok(None);
    };
    let end = start + nl;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if buf[end + 1] != b'\n' {
        return Err(ProtocolError("line not terminated by CRLF".into()));
    }
    // Digits with an optional minus, as Redis's string2ll reads them: no `+`, no spaces.
    let n = std::str::from_utf8(&buf[start..end])
        .ok()
        .filter(|s| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            ProtocolError(if marker == b'*' {
                "invalid multibulk length".into()
            } else {
                "invalid bulk length".into()
            })
        })?;
    *pos = end + 2;
    Ok(Some(n))
}

/// An inline command: space-separated words, with `"…"` and `'…'` quoting as redis-cli's.
fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Vec<u8>>>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_INLINE {
            return Err(ProtocolError("too big inline request".into()));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_inline(line)
        .map(Some)
        .ok_or_else(|| ProtocolError("unbalanced quotes in request".into()))
}

fn split_inline(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut word = Vec::new();
        match line[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let &c = line.get(i)?;
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c == b'\\' && quote == b'"' {
                        let &e = line.get(i)?;
                        i += 1;
                        word.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'x' => {
                                let hex = std::str::from_utf8(line.get(i..i + 2)?).ok()?;
                                i += 2;
                                u8::from_str_radix(hex, 16).ok()?
                            }
                            other => other,
                        });
                    } else {
                        word.push(c);
                    }
                }
                // A closing quote must be followed by a space or the end.
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return None;
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    word.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(word);
    }
    Some(args)
}

/// Appends `reply` to `out` in protocol version `proto` (2 or 3).
pub fn encode(out: &mut Vec<u8>, reply: &Reply, proto: u8) {
    let resp3 = proto >= 3;
    match reply {
        Reply::Simple(s) => {
            out.push(b'+');
            out.extend_from_slice(single_line(s).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Error(e) => {
            out.push(b'-');
            out.extend_from_slice(single_line(e).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Integer(n) => {
            out.extend_from_slice(format!(":{n}\r\n").as_bytes());
        }
        Reply::Bulk(b) => bulk(out, b),
        Reply::Nil => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Reply::NilArray => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Reply::Array(items) => aggregate(out, b'*', items, proto),
        Reply::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
        Reply::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
        Reply::Double(d) => {
            let text = format_double(*d);
            if resp3 {
                out.push(b',');
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Reply::Bool(b) => {
            if resp3 {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            } else {
                out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" });
            }
        }
        Reply::Pairs(pairs) => {
            if resp3 {
                out.extend_from_slice(format!("*{}\r\n", pairs.len()).as_bytes());
                for (k, v) in pairs {
                    out.extend_from_slice(b"*2\r\n");
                    encode(out, k, proto);
                    encode(out, v, proto);
                }
            } else {
                out.extend_from_slice(format!("*{}\r\n", pairs.len() * 2).as_bytes());
                for (k, v) in pairs {
                    encode(out, k, proto);
                    encode(out, v, proto);
                }
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                out.extend_from_slice(format!("%{}\r\n", pairs.len()).as_bytes());
            } else {
                out.extend_from_slice(format!("*{}\r\n", pairs.len() * 2).as_bytes());
            }
            for (k, v) in pairs {
                encode(out, k, proto);
                encode(out, v, proto);
            }
        }
    }
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, marker: u8, items: &[Reply], proto: u8) {
    out.push(marker);
    out.extend_from_slice(format!("{}\r\n", items.len()).as_bytes());
    for item in items {
        encode(out, item, proto);
    }
}

/// Simple strings and errors cannot hold line breaks.
fn single_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        s.replace(['\r', '\n'], " ").into()
    } else {
        s.into()
    }
}

/// A double as Redis 7.0 prints it: `inf`, `-inf`, else C's `%.17g` (17 significant digits,
/// trailing zeros dropped, exponent form below 1e-4 or from 1e17).
fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{d:.16e}");
    let (mantissa, exponent) = sci.split_once('e').expect("exponent form");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..17).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exponent.abs())
    } else {
        let decimals = (16 - exponent).max(0) as usize;
        trim(&format!("{d:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        parse_request(&mut buf, &mut RequestState::default(), MAX_ARGS, MAX_BULK)
    }

    #[test]
    fn a_request_in_pieces_is_read_as_it_arrives() {
        let full = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n";
        let mut buf = BytesMut::new();
        let mut state = RequestState::default();
        let mut got = Vec::new();
        for &b in full.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(args) = parse_request(&mut buf, &mut state, MAX_ARGS, MAX_BULK).unwrap()
            {
                got.push(args);
            }
        }
        assert_eq!(
            got,
            vec![
                vec![b"SET".to_vec(), b"k".to_vec(), b"hello".to_vec()],
                vec![b"PING".to_vec()]
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn multibulk_requests() {
        assert_eq!(
            parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap(),
            Some(vec![b"GET".to_vec(), b"k".to_vec()])
        );
        // Incomplete at every cut point.
        let full = b"*2\r\n$3\r\nSET\r\n$5\r\nva\r\nl\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(
            parse(full).unwrap(),
            Some(vec![b"SET".to_vec(), b"va\r\nl".to_vec()])
        );
    }

    #[test]
    fn malformed_requests_are_protocol_errors() {
        assert!(parse(b"*x\r\n").is_err());
        assert!(parse(b"*1\r\n:3\r\n").is_err());
        assert!(parse(b"*1\r\n$-5\r\n").is_err());
        assert!(parse(b"*1\r\n$+4\r\nPING\r\n").is_err());
        assert!(parse(b"*+1\r\n$4\r\nPING\r\n").is_err());
        assert!(parse(b"*1\r\n$3\r\nabcXY").is_err());
        assert!(parse(b"*99999999999\r\n").is_err());
        assert!(parse(b"*1\r\n$99999999999999\r\n").is_err());
        let mut buf = BytesMut::from(&b"*20\r\n"[..]);
        let mut state = RequestState::default();
        assert!(parse_request(&mut buf, &mut state, UNAUTHENTICATED_MAX_ARGS, 100).is_err());
    }

    #[test]
    fn inline_requests() {
        assert_eq!(parse(b"PING\r\n").unwrap(), Some(vec![b"PING".to_vec()]));
        assert_eq!(
            parse(b"set k \"a b\\n\" 'c d'\n").unwrap(),
            Some(vec![
                b"set".to_vec(),
                b"k".to_vec(),
                b"a b\n".to_vec(),
                b"c d".to_vec()
            ])
        );
        assert_eq!(parse(b"\r\n").unwrap(), Some(vec![]));
        assert!(parse(b"get \"k\n").is_err());
    }

    #[test]
    fn replies_in_both_protocols() {
        let r = Reply::Map(vec![(Reply::bulk("a"), Reply::Double(1.5))]);
        let mut two = Vec::new();
        encode(&mut two, &r, 2);
        assert_eq!(two, b"*2\r\n$1\r\na\r\n$3\r\n1.5\r\n");
        let mut three = Vec::new();
        encode(&mut three, &r, 3);
        assert_eq!(three, b"%1\r\n$1\r\na\r\n,1.5\r\n");
        let mut nil = Vec::new();
        encode(&mut nil, &Reply::NilArray, 2);
        assert_eq!(nil, b"*-1\r\n");
    }

    #[test]
    fn doubles_print_like_redis_7_0() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(0.6090947145638497), "0.60909471456384967");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
    }
}
