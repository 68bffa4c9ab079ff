//! The layer file format: immutable, sorted runs of key versions.
//!
//! A **delta layer** holds every version written in an LSN range `[lsn_start, lsn_end]` for a
//! key range, deletions included. An **image layer** holds every key of a key range as of
//! `lsn_end`, each with its own version's LSN: live values, and the deletions made after the
//! image below it (`lsn_start`), so a key it does not hold was last written at or before
//! `lsn_start`.
//!
//! ```text
//! header  magic "TDBLAYER" | version u16 | kind u8 | 5 reserved | lsn_start u64 | lsn_end u64
//! blocks  entries, sorted by (key, lsn):
//!           key_len u32 | key | lsn u64 | flag u8 (0 deletion, 1 value) | [value_len u32 | value]
//!         then each entry's offset in the block (u32), the entry count (u32), crc32c (u32)
//! index   per block: offset u64 | len u32 | first lsn u64 | first_key_len u32 | first key;
//!         then last_key_len u32 | last key | entry count u64 | crc32c u32
//! footer  index_offset u64 | index_len u32 | block count u32 | magic "TDBLEND1"
//! ```
//!
//! Integers are little-endian. A block closes once it reaches [`BLOCK_TARGET`] bytes, so one
//! entry bigger than that makes a block of its own. Every block and the index carry a CRC, so
//! a torn or corrupted read is an error rather than wrong rows.

use bytes::Bytes;
use std::cmp::Ordering;
use thunderdb_common::Lsn;

use crate::Value;

const MAGIC: &[u8; 8] = b"TDBLAYER";
const END_MAGIC: &[u8; 8] = b"TDBLEND1";
const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 32;
pub const FOOTER_LEN: usize = 24;
/// The size at which a block is closed.
pub const BLOCK_TARGET: usize = 16 * 1024;

/// Delta (versions over an LSN range) or image (values at one LSN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Delta,
    Image,
}

impl LayerKind {
    /// The kind as the manifest, object names and the storage view spell it.
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Delta => "delta",
            LayerKind::Image => "image",
        }
    }

    fn tag(self) -> u8 {
        match self {
            LayerKind::Delta => 1,
            LayerKind::Image => 2,
        }
    }
}

/// A damaged or foreign layer file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("corrupt layer file: {0}")]
pub struct Corrupt(pub String);

fn corrupt(what: impl Into<String>) -> Corrupt {
    Corrupt(what.into())
}

/// One key version: `None` is a deletion.
pub type Version = (Lsn, Option<Value>);

/// Writes a layer from entries given in (key, lsn) order.
pub struct LayerWriter {
    kind: LayerKind,
    out: Vec<u8>,
    block: Vec<u8>,
    offsets: Vec<u32>,
    index: Vec<u8>,
    /// Where the open block's index entry starts.
    open_entry: usize,
    blocks: u32,
    entries: u64,
    first_key: Option<Vec<u8>>,
    last: Option<(Vec<u8>, Lsn)>,
}

/// What a finished layer file holds, for the manifest.
#[derive(Clone, Debug)]
pub struct LayerSummary {
    pub kind: LayerKind,
    pub lsn_start: Lsn,
    pub lsn_end: Lsn,
    pub key_start: Vec<u8>,
    pub key_last: Vec<u8>,
    pub entries: u64,
    pub blocks: u32,
    pub index_offset: u64,
    pub index_len: u32,
}

impl LayerWriter {
    /// A layer of `kind` over `[lsn_start, lsn_end]`.
    pub fn new(kind: LayerKind, lsn_start: Lsn, lsn_end: Lsn) -> LayerWriter {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(kind.tag());
        out.extend_from_slice(&[0; 5]);
        out.extend_from_slice(&lsn_start.0.to_le_bytes());
        out.extend_from_slice(&lsn_end.0.to_le_bytes());
        debug_assert_eq!(out.len(), HEADER_LEN);
        LayerWriter {
            kind,
            out,
            block: Vec::with_capacity(BLOCK_TARGET + 1024),
            offsets: Vec::new(),
            index: Vec::new(),
            open_entry: 0,
            blocks: 0,
            entries: 0,
            first_key: None,
            last: None,
        }
    }

    /// Bytes written so far (closed blocks and the open one).
    pub fn len(&self) -> usize {
        self.out.len() + self.block.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Appends one version; keys must come in (key, lsn) order, each pair once.
    pub fn push(&mut self, key: &[u8], lsn: Lsn, value: Option<&[u8]>) {
        debug_assert!(
            self.last
                .as_ref()
                .is_none_or(|(k, l)| (k.as_slice(), *l) < (key, lsn)),
            "layer entries out of order"
        );
        if self.offsets.is_empty() {
            self.open_entry = self.index.len();
            self.index
                .extend_from_slice(&(self.out.len() as u64).to_le_bytes());
            // The block's length is patched in when it closes.
            self.index.extend_from_slice(&0u32.to_le_bytes());
            self.index.extend_from_slice(&lsn.0.to_le_bytes());
            put_bytes(&mut self.index, key);
        }
        self.offsets.push(self.block.len() as u32);
        put_bytes(&mut self.block, key);
        self.block.extend_from_slice(&lsn.0.to_le_bytes());
        match value {
            None => self.block.push(0),
            Some(v) => {
                self.block.push(1);
                put_bytes(&mut self.block, v);
            }
        }
        self.entries += 1;
        if self.first_key.is_none() {
            self.first_key = Some(key.to_vec());
        }
        match &mut self.last {
            Some((k, l)) if k.as_slice() == key => *l = lsn,
            last => *last = Some((key.to_vec(), lsn)),
        }
        if self.block.len() >= BLOCK_TARGET {
            self.close_block();
        }
    }

    fn close_block(&mut self) {
        if self.offsets.is_empty() {
            return;
        }
        for o in &self.offsets {
            self.block.extend_from_slice(&o.to_le_bytes());
        }
        self.block
            .extend_from_slice(&(self.offsets.len() as u32).to_le_bytes());
        let crc = crc32c::crc32c(&self.block);
        self.block.extend_from_slice(&crc.to_le_bytes());
        // Patch the block's length into its index entry (offset u64, then len u32).
        self.index[self.open_entry + 8..self.open_entry + 12]
            .copy_from_slice(&(self.block.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&self.block);
        self.block.clear();
        self.offsets.clear();
        self.blocks += 1;
    }

    /// Closes the file: its bytes and what it holds.
    pub fn finish(mut self) -> (Vec<u8>, LayerSummary) {
        self.close_block();
        let (lsn_start, lsn_end) = (Lsn(read_u64(&self.out, 16)), Lsn(read_u64(&self.out, 24)));
        let last_key = self.last.map(|(k, _)| k).unwrap_or_default();
        put_bytes(&mut self.index, &last_key);
        self.index.extend_from_slice(&self.entries.to_le_bytes());
        let crc = crc32c::crc32c(&self.index);
        self.index.extend_from_slice(&crc.to_le_bytes());
        let index_offset = self.out.len() as u64;
        let index_len = self.index.len() as u32;
        self.out.extend_from_slice(&self.index);
        self.out.extend_from_slice(&index_offset.to_le_bytes());
        self.out.extend_from_slice(&index_len.to_le_bytes());
        self.out.extend_from_slice(&self.blocks.to_le_bytes());
        self.out.extend_from_slice(END_MAGIC);
        let summary = LayerSummary {
            kind: self.kind,
            lsn_start,
            lsn_end,
            key_start: self.first_key.unwrap_or_default(),
            key_last: last_key,
            entries: self.entries,
            blocks: self.blocks,
            index_offset,
            index_len,
        };
        (self.out, summary)
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys and values come from WAL records, which are far below 4 GiB.
    let len = u32::try_from(bytes.len()).expect("a key or value under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Bounds-checked reads over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(read_u32(self.take(4)?, 0))
    }
    fn u64(&mut self) -> Result<u64, Corrupt> {
        Ok(read_u64(self.take(8)?, 0))
    }
    fn bytes(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The header of a layer file.
pub fn parse_header(bytes: &[u8]) -> Result<(LayerKind, Lsn, Lsn), Corrupt> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(corrupt("not a ThunderDB layer file"));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(corrupt(format!("unsupported layer version {version}")));
    }
    let kind = match bytes[10] {
        1 => LayerKind::Delta,
        2 => LayerKind::Image,
        k => return Err(corrupt(format!("unknown layer kind {k}"))),
    };
    Ok((kind, Lsn(read_u64(bytes, 16)), Lsn(read_u64(bytes, 24))))
}

/// Where the index sits, from the footer: (index offset, index length, block count).
pub fn parse_footer(footer: &[u8]) -> Result<(u64, u32, u32), Corrupt> {
    if footer.len() != FOOTER_LEN || &footer[16..24] != END_MAGIC {
        return Err(corrupt("bad footer"));
    }
    Ok((
        read_u64(footer, 0),
        read_u32(footer, 8),
        read_u32(footer, 12),
    ))
}

/// Where one block lies and the first (key, lsn) in it.
#[derive(Clone, Debug)]
pub struct BlockRef {
    pub offset: u64,
    pub len: u32,
    pub first_lsn: Lsn,
    pub first_key: Box<[u8]>,
}

/// The index of a layer file: its blocks in order.
#[derive(Clone, Debug)]
pub struct LayerIndex {
    pub blocks: Vec<BlockRef>,
    pub last_key: Vec<u8>,
    pub entries: u64,
}

impl LayerIndex {
    /// Parses the index bytes (`index_len` of them at `index_offset`).
    pub fn parse(bytes: &[u8], block_count: u32) -> Result<LayerIndex, Corrupt> {
        if bytes.len() < 4 {
            return Err(corrupt("index truncated"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != read_u32(crc, 0) {
            return Err(corrupt("index checksum mismatch"));
        }
        let mut r = Reader {
            bytes: body,
            pos: 0,
        };
        // The count comes from the manifest: never trust it for an allocation.
        let mut blocks = Vec::with_capacity((block_count as usize).min(bytes.len() / 24));
        for _ in 0..block_count {
            let offset = r.u64()?;
            let len = r.u32()?;
            let first_lsn = Lsn(r.u64()?);
            let first_key = r.bytes()?.into();
            blocks.push(BlockRef {
                offset,
                len,
                first_lsn,
                first_key,
            });
        }
        let last_key = r.bytes()?.to_vec();
        let entries = r.u64()?;
        Ok(LayerIndex {
            blocks,
            last_key,
            entries,
        })
    }

    /// The block that would hold `(key, lsn)`: the last one starting at or before it.
    pub fn block_for(&self, key: &[u8], lsn: Lsn) -> Option<usize> {
        let after = self
            .blocks
            .partition_point(|b| (&*b.first_key, b.first_lsn) <= (key, lsn));
        after.checked_sub(1)
    }
}

/// One checked block: entries found by binary search over their offsets.
#[derive(Clone)]
pub struct Block {
    bytes: Bytes,
    count: usize,
    offsets_at: usize,
}

/// An entry of a block, borrowing its bytes.
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub lsn: Lsn,
    pub value: Option<&'a [u8]>,
}

impl Block {
    /// Checks a block's CRC and layout.
    pub fn parse(bytes: Bytes) -> Result<Block, Corrupt> {
        if bytes.len() < 8 {
            return Err(corrupt("block truncated"));
        }
        let body_len = bytes.len() - 4;
        if crc32c::crc32c(&bytes[..body_len]) != read_u32(&bytes, body_len) {
            return Err(corrupt("block checksum mismatch"));
        }
        Block::trusted(bytes)
    }

    /// A block whose CRC was checked when it entered the cache.
    pub fn trusted(bytes: Bytes) -> Result<Block, Corrupt> {
        if bytes.len() < 8 {
            return Err(corrupt("block truncated"));
        }
        let count = read_u32(&bytes, bytes.len() - 8) as usize;
        let offsets_at = (bytes.len() - 8)
            .checked_sub(count * 4)
            .ok_or_else(|| corrupt("block offsets out of range"))?;
        let block = Block {
            bytes,
            count,
            offsets_at,
        };
        for i in 0..count {
            block.entry(i)?;
        }
        Ok(block)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`-th entry.
    pub fn entry(&self, i: usize) -> Result<Entry<'_>, Corrupt> {
        let at = read_u32(&self.bytes, self.offsets_at + i * 4) as usize;
        let mut r = Reader {
            bytes: &self.bytes[..self.offsets_at],
            pos: at,
        };
        let key = r.bytes()?;
        let lsn = Lsn(r.u64()?);
        let value = match r.take(1)?[0] {
            0 => None,
            1 => Some(r.bytes()?),
            f => return Err(corrupt(format!("bad entry flag {f}"))),
        };
        Ok(Entry { key, lsn, value })
    }

    /// The owned value of entry `i` (a zero-copy slice of the block).
    pub fn value(&self, i: usize) -> Result<Option<Value>, Corrupt> {
        Ok(self.entry(i)?.value.map(Value::from))
    }

    /// The index of the last entry at or before `(key, lsn)`.
    pub fn last_at_or_before(&self, key: &[u8], lsn: Lsn) -> Result<Option<usize>, Corrupt> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = self.entry(mid)?;
            match (e.key, e.lsn).cmp(&(key, lsn)) {
                Ordering::Greater => hi = mid,
                _ => lo = mid + 1,
            }
        }
        Ok(lo.checked_sub(1))
    }

    /// The index of the first entry whose key is at or after `key`.
    pub fn first_key_at_or_after(&self, key: &[u8]) -> Result<usize, Corrupt> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid)?.key < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(bytes: &[u8]) -> Vec<(Vec<u8>, Lsn, Option<Vec<u8>>)> {
        let (index_offset, index_len, blocks) =
            parse_footer(&bytes[bytes.len() - FOOTER_LEN..]).unwrap();
        let index = LayerIndex::parse(
            &bytes[index_offset as usize..index_offset as usize + index_len as usize],
            blocks,
        )
        .unwrap();
        let mut out = Vec::new();
        for b in &index.blocks {
            let block = Block::parse(Bytes::copy_from_slice(
                &bytes[b.offset as usize..(b.offset + b.len as u64) as usize],
            ))
            .unwrap();
            for i in 0..block.len() {
                let e = block.entry(i).unwrap();
                out.push((e.key.to_vec(), e.lsn, e.value.map(<[u8]>::to_vec)));
            }
        }
        assert_eq!(out.len() as u64, index.entries);
        out
    }

    proptest! {
        #[test]
        fn layers_round_trip(
            mut entries in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..40), 1u64..50,
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3000))),
                0..300)
        ) {
            entries.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            entries.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
            let mut w = LayerWriter::new(LayerKind::Delta, Lsn(1), Lsn(50));
            for (k, l, v) in &entries {
                w.push(k, Lsn(*l), v.as_deref());
            }
            let (bytes, summary) = w.finish();
            prop_assert_eq!(parse_header(&bytes).unwrap(), (LayerKind::Delta, Lsn(1), Lsn(50)));
            prop_assert_eq!(summary.entries as usize, entries.len());
            let back = read_all(&bytes);
            let want: Vec<_> = entries.iter().map(|(k, l, v)| (k.clone(), Lsn(*l), v.clone())).collect();
            prop_assert_eq!(back, want);
        }
    }

    #[test]
    fn lookups_find_the_newest_version_at_or_below() {
        let mut w = LayerWriter::new(LayerKind::Delta, Lsn(1), Lsn(30));
        // Enough keys for many blocks; each key has versions at 10 and 20 (deleted at 20 for
        // odd keys).
        for i in 0..2000u32 {
            let key = format!("k{i:05}");
            w.push(key.as_bytes(), Lsn(10), Some(&[b'a'; 40]));
            let v = (i % 2 == 0).then_some(&b"new"[..]);
            w.push(key.as_bytes(), Lsn(20), v);
        }
        let (bytes, summary) = w.finish();
        assert!(summary.blocks > 5, "{}", summary.blocks);
        let index = LayerIndex::parse(
            &bytes[summary.index_offset as usize..][..summary.index_len as usize],
            summary.blocks,
        )
        .unwrap();
        let find = |key: &str, lsn: u64| -> Option<(Lsn, Option<Vec<u8>>)> {
            let b = index.block_for(key.as_bytes(), Lsn(lsn))?;
            let r = &index.blocks[b];
            let block = Block::parse(Bytes::copy_from_slice(
                &bytes[r.offset as usize..][..r.len as usize],
            ))
            .unwrap();
            let i = block.last_at_or_before(key.as_bytes(), Lsn(lsn)).unwrap()?;
            let e = block.entry(i).unwrap();
            (e.key == key.as_bytes()).then(|| (e.lsn, e.value.map(<[u8]>::to_vec)))
        };
        assert_eq!(find("k00004", 5), None);
        assert_eq!(find("k00004", 15).unwrap().0, Lsn(10));
        assert_eq!(find("k00004", 25), Some((Lsn(20), Some(b"new".to_vec()))));
        assert_eq!(find("k00005", 25), Some((Lsn(20), None)));
        assert_eq!(find("k01999", 99).unwrap().0, Lsn(20));
        assert_eq!(find("k2", 99), None);
        assert_eq!(find("a", 99), None);
        assert_eq!(index.last_key, b"k01999");
    }

    #[test]
    fn damage_is_an_error() {
        let mut w = LayerWriter::new(LayerKind::Image, Lsn(7), Lsn(7));
        w.push(b"a", Lsn(7), Some(b"1"));
        let (mut bytes, summary) = w.finish();
        bytes[HEADER_LEN + 5] ^= 0xff;
        let block = Bytes::copy_from_slice(&bytes[HEADER_LEN..summary.index_offset as usize]);
        assert!(Block::parse(block).is_err());
        assert!(parse_header(b"nonsense, not a layer file at all").is_err());
        assert!(parse_footer(&[0; FOOTER_LEN]).is_err());
        let idx = &mut bytes[summary.index_offset as usize..][..summary.index_len as usize];
        idx[0] ^= 1;
        assert!(LayerIndex::parse(idx, summary.blocks).is_err());
    }
}
