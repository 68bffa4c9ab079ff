//! Little-endian readers and writers shared by the on-disk and on-wire codecs.

use crate::error::ThunderError;

/// Reads fixed-width little-endian values and length-prefixed byte strings from a slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the format in the error a truncated input produces.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn err(&self) -> ThunderError {
        ThunderError::internal(format!("corrupt {}", self.what))
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ThunderError> {
        if self.buf.len() < n {
            return Err(self.err());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ThunderError> {
        let bytes = self.take(N)?;
        bytes.try_into().map_err(|_| self.err())
    }

    pub fn u8(&mut self) -> Result<u8, ThunderError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, ThunderError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, ThunderError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, ThunderError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn u128(&mut self) -> Result<u128, ThunderError> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    /// A byte string written by [`put_bytes`].
    pub fn bytes(&mut self) -> Result<&'a [u8], ThunderError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Writes a u32 length then the bytes.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}
