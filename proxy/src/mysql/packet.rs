//! MySQL packet framing: a 3-byte little-endian length, a sequence number, the payload. A
//! payload of 2^24-1 bytes or more continues in the next packet.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest payload one packet carries; longer payloads continue in the next packet.
const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// The largest request the server accepts (`max_allowed_packet`).
pub const MAX_ALLOWED_PACKET: usize = 64 << 20;

/// Why reading a packet failed.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// Longer than `max_allowed_packet`: answered with error 1153, then the connection closes.
    TooLarge,
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads and writes packets on one stream, keeping the sequence number of the exchange.
pub struct PacketIo<S> {
    pub stream: S,
    seq: u8,
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketIo<S> {
    pub fn new(stream: S) -> Self {
        PacketIo {
            stream,
            seq: 0,
            out: Vec::with_capacity(16 * 1024),
        }
    }

    /// The next request's payload (`None` at a clean end of stream); the sequence continues
    /// from the request's.
    pub async fn read(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        self.read_limited(MAX_ALLOWED_PACKET).await
    }

    /// Like [`PacketIo::read`] for payloads of at most `limit` bytes. Memory grows with the
    /// bytes that arrive, not with what a header claims.
    pub async fn read_limited(&mut self, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            match self.stream.read_exact(&mut header).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && payload.is_empty() => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            self.seq = header[3].wrapping_add(1);
            if payload.len() + len > limit {
                return Err(ReadError::TooLarge);
            }
            let read = (&mut self.stream)
                .take(len as u64)
                .read_to_end(&mut payload)
                .await?;
            if read < len {
                return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if len < MAX_PAYLOAD {
                return Ok(Some(payload));
            }
        }
    }

    /// The stream and the sequence number reached (to continue on another stream, TLS).
    pub fn into_parts(self) -> (S, u8) {
        (self.stream, self.seq)
    }

    /// Continues an exchange on `stream` at sequence number `seq`.
    pub fn from_parts(stream: S, seq: u8) -> Self {
        let mut io = PacketIo::new(stream);
        io.seq = seq;
        io
    }

    /// Starts a new exchange (a command): the next packet written is number 0.
    pub fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// Queues one packet (split as needed) for the next flush.
    pub fn write(&mut self, payload: &[u8]) {
        let mut chunks = payload.chunks(MAX_PAYLOAD).peekable();
        if payload.is_empty() {
            self.frame(&[]);
        }
        while let Some(chunk) = chunks.next() {
            self.frame(chunk);
            if chunks.peek().is_none() && chunk.len() == MAX_PAYLOAD {
                self.frame(&[]);
            }
        }
    }

    fn frame(&mut self, chunk: &[u8]) {
        let len = (chunk.len() as u32).to_le_bytes();
        self.out
            .extend_from_slice(&[len[0], len[1], len[2], self.seq]);
        self.out.extend_from_slice(chunk);
        self.seq = self.seq.wrapping_add(1);
    }

    /// Sends what was queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        self.stream.flush().await
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(buf: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => buf.push(n as u8),
        251..=0xFFFF => {
            buf.push(0xFC);
            buf.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            buf.push(0xFD);
            buf.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            buf.push(0xFE);
            buf.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_lenenc_int(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// A cursor over a request payload; every read checks the length (a short packet is an error,
/// never a panic).
pub struct Reader<'a> {
    data: &'a [u8],
}

/// A request ended before a field it must carry.
#[derive(Debug)]
pub struct Malformed;

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.data.len() < n {
            return Err(Malformed);
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn lenenc_int(&mut self) -> Result<u64, Malformed> {
        Ok(match self.u8()? {
            0xFC => self.u16()? as u64,
            0xFD => {
                let b = self.bytes(3)?;
                u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64
            }
            0xFE => self.u64()?,
            n @ 0..=0xFA => n as u64,
            _ => return Err(Malformed),
        })
    }

    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.lenenc_int()?;
        let n = usize::try_from(n).map_err(|_| Malformed)?;
        self.bytes(n)
    }

    /// A NUL-terminated string (without the NUL).
    pub fn cstr(&mut self) -> Result<&'a [u8], Malformed> {
        let end = self.data.iter().position(|&b| b == 0).ok_or(Malformed)?;
        let s = &self.data[..end];
        self.data = &self.data[end + 1..];
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trip() {
        for n in [
            0u64,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_lenenc_int(&mut buf, n);
            assert_eq!(Reader::new(&buf).lenenc_int().unwrap(), n);
        }
        assert!(Reader::new(&[0xFC, 1]).lenenc_int().is_err());
        assert!(Reader::new(&[0xFF]).lenenc_int().is_err());
    }

    #[tokio::test]
    async fn long_payloads_split_and_join() {
        let (a, b) = tokio::io::duplex(64 << 20);
        let mut w = PacketIo::new(a);
        let mut r = PacketIo::new(b);
        let big = vec![7u8; MAX_PAYLOAD + 10];
        w.write(&big);
        w.write(&vec![1u8; MAX_PAYLOAD]);
        w.flush().await.unwrap();
        assert_eq!(r.read().await.unwrap().unwrap(), big);
        assert_eq!(r.read().await.unwrap().unwrap().len(), MAX_PAYLOAD);
    }
}
