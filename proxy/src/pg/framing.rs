//! Checks every frontend message's framing before pgwire decodes it.
//!
//! pgwire's decoders read past the end of a malformed message (a `Bind` whose counts overrun
//! its length, an `Execute` with no body) and can panic on the short read or desynchronize the
//! stream. PostgreSQL answers such input with `08P01 invalid message format` and closes the
//! connection; this reader does the same by handing pgwire only whole messages whose structure
//! it has verified, and failing the read otherwise.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// PostgreSQL's `PQ_SMALL_MESSAGE_LIMIT`: startup packets and small messages.
const SMALL_MESSAGE_LIMIT: usize = 10_000;
/// PostgreSQL's `PQ_LARGE_MESSAGE_LIMIT` (1 GiB - 1): queries, binds, COPY data.
const LARGE_MESSAGE_LIMIT: usize = 0x3fff_ffff;

const SSL_REQUEST_CODE: i32 = 80_877_103;
const GSSENC_REQUEST_CODE: i32 = 80_877_104;
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Until the startup packet: messages have a length but no type byte.
    Startup,
    /// After it: a type byte, then the length.
    Typed,
}

/// A byte stream that releases only complete, well-formed frontend messages to its reader.
pub(crate) struct CheckedStream<S> {
    inner: S,
    buf: BytesMut,
    /// How many bytes at the front of `buf` are verified and may be handed out.
    ready: usize,
    phase: Phase,
}

impl<S> CheckedStream<S> {
    pub(crate) fn new(inner: S) -> Self {
        CheckedStream {
            inner,
            buf: BytesMut::with_capacity(8192),
            ready: 0,
            phase: Phase::Startup,
        }
    }

    /// The stream inside, if nothing read from it is still buffered (switching to TLS).
    pub(crate) fn into_unread_inner(self) -> Option<S> {
        self.buf.is_empty().then_some(self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CheckedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready > 0 {
                let n = this.ready.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.advance(n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            match check_message(&this.buf, &mut this.phase) {
                Ok(Some(len)) => {
                    this.ready = len;
                    continue;
                }
                Ok(None) => {}
                Err(message) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, message)));
                }
            }
            this.buf.reserve(8192);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // End of stream; a trailing partial message is dropped, as PostgreSQL does.
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => {}
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CheckedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

fn read_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The length of the complete, valid message at the front of `buf`; `Ok(None)` if more bytes
/// are needed; `Err` with PostgreSQL's wording if the message is malformed.
fn check_message(buf: &[u8], phase: &mut Phase) -> Result<Option<usize>, String> {
    match *phase {
        Phase::Startup => {
            if buf.len() < 8 {
                // Reject an impossible length as soon as it is visible (HTTP, TLS records).
                if buf.len() >= 4 && !(8..=SMALL_MESSAGE_LIMIT as i32).contains(&read_i32(buf)) {
                    return Err("invalid length of startup packet".into());
                }
                return Ok(None);
            }
            let len = read_i32(buf);
            if !(8..=SMALL_MESSAGE_LIMIT as i32).contains(&len) {
                return Err("invalid length of startup packet".into());
            }
            let len = len as usize;
            if buf.len() < len {
                return Ok(None);
            }
            let body = &buf[8..len];
            match read_i32(&buf[4..8]) {
                SSL_REQUEST_CODE | GSSENC_REQUEST_CODE if len == 8 => {}
                CANCEL_REQUEST_CODE if (16..=12 + 256).contains(&len) => {}
                SSL_REQUEST_CODE | GSSENC_REQUEST_CODE | CANCEL_REQUEST_CODE => {
                    return Err("invalid length of startup packet".into());
                }
                version => {
                    if version >> 16 != 3 {
                        return Err(format!(
                            "unsupported frontend protocol {}.{}: server supports 3.0 to 3.2",
                            version >> 16,
                            version & 0xffff
                        ));
                    }
                    check_startup_parameters(body)
                        .ok_or("invalid startup packet layout: expected terminator as last byte")?;
                    *phase = Phase::Typed;
                }
            }
            Ok(Some(len))
        }
        Phase::Typed => {
            if buf.len() < 5 {
                return Ok(None);
            }
            let kind = buf[0];
            let limit = match kind {
                b'Q' | b'P' | b'B' | b'd' => LARGE_MESSAGE_LIMIT,
                b'D' | b'E' | b'C' | b'S' | b'H' | b'X' | b'c' | b'f' | b'p' => SMALL_MESSAGE_LIMIT,
                other => return Err(format!("invalid frontend message type {other}")),
            };
            let len = read_i32(&buf[1..5]);
            if len < 4 || len as usize > limit {
                return Err(format!("invalid message length {len}"));
            }
            let total = 1 + len as usize;
            if buf.len() < total {
                return Ok(None);
            }
            let mut body = Body(&buf[5..total]);
            let ok = match kind {
                b'Q' | b'f' => body.cstring().is_some() && body.is_empty(),
                b'P' => check_parse(&mut body).is_some(),
                b'B' => check_bind(&mut body).is_some(),
                b'D' | b'C' => {
                    body.take(1).is_some() && body.cstring().is_some() && body.is_empty()
                }
                b'E' => body.cstring().is_some() && body.take(4).is_some() && body.is_empty(),
                b'S' | b'H' | b'X' | b'c' => body.is_empty(),
                // CopyData is opaque; password messages are checked by the authenticator.
                _ => true,
            };
            if ok {
                Ok(Some(total))
            } else {
                Err("invalid message format".into())
            }
        }
    }
}

/// `name\0value\0 ... \0`: pairs of C strings ended by an empty one as the last byte.
fn check_startup_parameters(body: &[u8]) -> Option<()> {
    let mut body = Body(body);
    loop {
        let key = body.cstring()?;
        if key.is_empty() {
            return body.is_empty().then_some(());
        }
        body.cstring()?;
    }
}

fn check_parse(body: &mut Body) -> Option<()> {
    body.cstring()?;
    body.cstring()?;
    let types = body.u16()? as usize;
    body.take(4 * types)?;
    body.is_empty().then_some(())
}

fn check_bind(body: &mut Body) -> Option<()> {
    body.cstring()?;
    body.cstring()?;
    let formats = body.u16()? as usize;
    body.take(2 * formats)?;
    let params = body.u16()?;
    for _ in 0..params {
        let len = i32::from_be_bytes(body.take(4)?.try_into().ok()?);
        if len < -1 {
            return None;
        }
        if len > 0 {
            body.take(len as usize)?;
        }
    }
    let results = body.u16()? as usize;
    body.take(2 * results)?;
    body.is_empty().then_some(())
}

/// A bounds-checked reader over one message body.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn cstring(&mut self) -> Option<&'a [u8]> {
        let end = self.0.iter().position(|b| *b == 0)?;
        let s = self.take(end)?;
        self.take(1)?;
        Some(s)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn check_typed(msg: &[u8]) -> Result<Option<usize>, String> {
        check_message(msg, &mut Phase::Typed)
    }

    #[test]
    fn startup_packets() {
        let mut phase = Phase::Startup;
        let ssl = [0, 0, 0, 8, 4, 210, 22, 47];
        assert_eq!(check_message(&ssl, &mut phase), Ok(Some(8)));
        assert_eq!(phase, Phase::Startup);

        let mut startup = vec![0, 0, 0, 0, 0, 3, 0, 0];
        startup.extend_from_slice(b"user\0alice\0\0");
        let len = startup.len() as i32;
        startup[..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(check_message(&startup[..10], &mut phase), Ok(None));
        assert_eq!(check_message(&startup, &mut phase), Ok(Some(startup.len())));
        assert_eq!(phase, Phase::Typed);

        // An HTTP request or a TLS ClientHello is rejected from its first four bytes.
        assert!(check_message(b"GET / HTTP/1.1\r\n", &mut Phase::Startup).is_err());
        assert!(check_message(&[0x16, 3, 1, 2, 0], &mut Phase::Startup).is_err());
        // A startup packet whose parameters are not terminated.
        let mut bad = vec![0, 0, 0, 14, 0, 3, 0, 0];
        bad.extend_from_slice(b"user\0a");
        assert!(check_message(&bad, &mut Phase::Startup).is_err());
    }

    #[test]
    fn typed_messages() {
        assert_eq!(check_typed(&typed(b'Q', b"select 1\0")), Ok(Some(14)));
        assert!(check_typed(&typed(b'Q', b"select 1")).is_err());
        assert!(check_typed(&typed(b'Q', b"a\0b\0")).is_err());
        assert_eq!(check_typed(&typed(b'S', b"")), Ok(Some(5)));
        assert!(check_typed(&typed(b'S', b"x")).is_err());
        assert!(check_typed(&typed(b'E', b"")).is_err());
        assert_eq!(check_typed(&typed(b'E', b"\0\0\0\0\0")), Ok(Some(10)));
        // A Bind whose parameter length runs past the message.
        assert!(check_typed(&typed(b'B', b"\0\0\0\0\0\x01\0\0\0\x10ab\0\0")).is_err());
        assert!(check_typed(&typed(b'B', b"\0\0\0\0\0\x01\0\0\0\x02ab\0\0")).is_ok());
        // Unknown types, negative and oversized lengths.
        assert!(check_typed(b"Z\0\0\0\x04").is_err());
        assert!(check_typed(b"Q\xff\xff\xff\xff").is_err());
        assert!(check_typed(b"Q\x7f\xff\xff\xff").is_err());
        assert!(check_typed(b"S\0\0\0\x03").is_err());
        // A large declared length waits for its bytes without allocating them.
        assert_eq!(check_typed(b"Q\x00\x10\x00\x00sel"), Ok(None));
    }
}
