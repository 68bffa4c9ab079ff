//! Layer files as reads see them: each one's index in memory, its blocks fetched from object
//! storage through a hybrid (memory + local disk) block cache, and the merge of several
//! layers into one key-ordered view at an LSN.

use crate::layer_file::{Block, LayerIndex, Version};
use crate::memory_layer::InMemoryLayer;
use crate::remote::{LayerMeta, RemoteStorage, unhex};
use crate::{PageError, Value};
use bytes::Bytes;
use foyer::{BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder};
use parking_lot::RwLock;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use thunderdb_common::Lsn;

/// Blocks of layer files, by `(layer uid << 32) | block number`.
#[derive(Clone)]
pub struct BlockCache {
    cache: HybridCache<u128, Bytes>,
    remote: RemoteStorage,
}

impl BlockCache {
    /// A cache keeping `memory_bytes` in memory and `disk_bytes` under `dir`.
    pub async fn open(
        remote: RemoteStorage,
        dir: &Path,
        memory_bytes: u64,
        disk_bytes: u64,
    ) -> Result<BlockCache, PageError> {
        let err = |e: foyer::Error| PageError::Storage(format!("block cache: {e}"));
        std::fs::create_dir_all(dir)
            .map_err(|e| PageError::Storage(format!("creating {}: {e}", dir.display())))?;
        let device = FsDeviceBuilder::new(dir)
            .with_capacity(disk_bytes as usize)
            .build()
            .map_err(err)?;
        let cache = HybridCacheBuilder::new()
            .with_name("thunderdb-layer-blocks")
            .memory(memory_bytes as usize)
            .with_weighter(|_: &u128, block: &Bytes| block.len() + 64)
            .storage()
            .with_engine_config(BlockEngineConfig::new(device))
            .build()
            .await
            .map_err(err)?;
        Ok(BlockCache { cache, remote })
    }

    /// Block `i` of `layer`, from the cache or from object storage (checked by its CRC).
    async fn block(&self, layer: &Layer, i: usize) -> Result<Block, PageError> {
        let key = ((layer.meta.uid as u128) << 32) | i as u128;
        // A block in memory costs a lookup, not the fetch closure's clones.
        if let Some(entry) = self.cache.memory().get(&key) {
            return Block::trusted(entry.value().clone())
                .map_err(|e| PageError::Storage(e.to_string()));
        }
        let r = &layer.index.blocks[i];
        let (remote, name) = (self.remote.clone(), layer.meta.name.clone());
        let (offset, len) = (r.offset, r.len as u64);
        let entry = self
            .cache
            .get_or_fetch(&key, move || async move {
                let bytes = remote.get_range(&name, offset, len).await?;
                Block::parse(bytes.clone()).map_err(|e| PageError::Storage(e.to_string()))?;
                Ok::<_, PageError>(bytes)
            })
            .await
            .map_err(|e| PageError::Storage(format!("reading {}: {e}", layer.meta.name)))?;
        Block::trusted(entry.value().clone()).map_err(|e| PageError::Storage(e.to_string()))
    }

    /// Puts a freshly written layer's blocks in the cache, so reads of it do not go remote.
    pub fn insert_layer(&self, layer: &Layer, bytes: &Bytes) {
        for (i, r) in layer.index.blocks.iter().enumerate() {
            let key = ((layer.meta.uid as u128) << 32) | i as u128;
            let block = bytes.slice(r.offset as usize..(r.offset + r.len as u64) as usize);
            self.cache.insert(key, block);
        }
    }

    pub async fn close(&self) {
        if let Err(e) = self.cache.close().await {
            tracing::warn!(error = %e, "closing the block cache");
        }
    }
}

/// A layer file: what the manifest says of it and its block index.
pub struct Layer {
    pub meta: LayerMeta,
    pub index: LayerIndex,
    key_start: Vec<u8>,
    key_last: Vec<u8>,
}

impl Layer {
    pub fn new(meta: LayerMeta, index: LayerIndex) -> Result<Layer, PageError> {
        let key = |hex: &str| {
            unhex(hex).ok_or_else(|| PageError::Storage(format!("{}: bad key range", meta.name)))
        };
        let (key_start, key_last) = (key(&meta.key_start)?, key(&meta.key_last)?);
        Ok(Layer {
            meta,
            index,
            key_start,
            key_last,
        })
    }

    /// Loads a layer's index from object storage.
    pub async fn load(meta: LayerMeta, remote: &RemoteStorage) -> Result<Layer, PageError> {
        let bytes = remote
            .get_range(&meta.name, meta.index_offset, meta.index_len as u64)
            .await?;
        let index = LayerIndex::parse(&bytes, meta.blocks)
            .map_err(|e| PageError::Storage(format!("{}: {e}", meta.name)))?;
        Layer::new(meta, index)
    }

    fn covers(&self, key: &[u8]) -> bool {
        self.meta.entries > 0 && self.key_start.as_slice() <= key && key <= self.key_last.as_slice()
    }

    /// Whether it holds keys of `[start, end)`; an empty `end` is no bound.
    fn overlaps(&self, start: &[u8], end: &[u8]) -> bool {
        self.meta.entries > 0
            && (end.is_empty() || self.key_start.as_slice() < end)
            && start <= self.key_last.as_slice()
    }

    /// The newest version of `key` at or below `lsn` held here.
    pub async fn get(
        &self,
        cache: &BlockCache,
        key: &[u8],
        lsn: Lsn,
    ) -> Result<Option<Version>, PageError> {
        if !self.covers(key) {
            return Ok(None);
        }
        let Some(b) = self.index.block_for(key, lsn) else {
            return Ok(None);
        };
        let block = cache.block(self, b).await?;
        let corrupt = |e: crate::layer_file::Corrupt| PageError::Storage(e.to_string());
        let Some(i) = block.last_at_or_before(key, lsn).map_err(corrupt)? else {
            return Ok(None);
        };
        let e = block.entry(i).map_err(corrupt)?;
        if e.key != key {
            return Ok(None);
        }
        Ok(Some((e.lsn, e.value.map(Value::from))))
    }
}

/// Everything but the open in-memory layer, replaced whole when a layer is frozen, written or
/// collected, so a read works on one consistent set.
#[derive(Default, Clone)]
pub struct LayerSet {
    /// Frozen in-memory layers waiting to be written, newest first.
    pub frozen: Vec<MemorySource>,
    /// Delta layer files, newest first; their LSN ranges do not overlap.
    pub deltas: Vec<Arc<Layer>>,
    /// Image layer generations, newest first: each covers every key at its LSN.
    pub images: Vec<(Lsn, Vec<Arc<Layer>>)>,
    /// Reads below this LSN are refused.
    pub min_readable: Lsn,
}

impl LayerSet {
    /// The file layers a read at `lsn` consults, in the order they answer: deltas newest
    /// first, then the image generation they sit on.
    pub fn files_for(&self, lsn: Lsn) -> (Vec<&Arc<Layer>>, &[Arc<Layer>]) {
        let image = self.images.iter().find(|(l, _)| *l <= lsn);
        let base = image.map_or(Lsn::ZERO, |(l, _)| *l);
        let deltas = self
            .deltas
            .iter()
            .filter(|d| d.meta.lsn_end > base && d.meta.lsn_start <= lsn)
            .collect();
        (deltas, image.map_or(&[][..], |(_, files)| files.as_slice()))
    }

    pub fn all_files(&self) -> impl Iterator<Item = &Arc<Layer>> {
        self.deltas
            .iter()
            .chain(self.images.iter().flat_map(|(_, f)| f.iter()))
    }
}

/// One source of a merged scan: yields `(key, newest version at or below the LSN)` in key
/// order, keys without such a version left out.
enum Source {
    Memory {
        layer: MemorySource,
        buf: VecDeque<(Vec<u8>, Version)>,
        after: Option<Vec<u8>>,
        done: bool,
    },
    File(FileCursor),
}

/// An in-memory layer: the open one, or a frozen one (which no longer changes).
pub type MemorySource = Arc<RwLock<InMemoryLayer>>;

const MEMORY_CHUNK: usize = 256;

struct FileCursor {
    layer: Arc<Layer>,
    next_block: usize,
    /// The key being gathered across a block boundary and its best version so far.
    pending: Option<(Vec<u8>, Option<Version>)>,
    buf: VecDeque<(Vec<u8>, Version)>,
    done: bool,
}

/// A key-ordered merge of memory and file layers at one LSN over `[start, end)` (an empty
/// `end` is no bound).
pub struct MergedScan {
    sources: Vec<Source>,
    /// Yield deletions too (as `None`), for writing images.
    deletions: bool,
    start: Vec<u8>,
    end: Vec<u8>,
    lsn: Lsn,
    cache: BlockCache,
}

impl MergedScan {
    /// `memory` and `files` in the order they answer (newest data first).
    pub fn new(
        memory: Vec<MemorySource>,
        files: Vec<Arc<Layer>>,
        cache: BlockCache,
        start: &[u8],
        end: &[u8],
        lsn: Lsn,
    ) -> MergedScan {
        let mut sources: Vec<Source> = memory
            .into_iter()
            .map(|layer| Source::Memory {
                layer,
                buf: VecDeque::new(),
                after: None,
                done: false,
            })
            .collect();
        for layer in files {
            if !layer.overlaps(start, end) {
                continue;
            }
            let next_block = layer.index.block_for(start, Lsn::ZERO).unwrap_or(0);
            sources.push(Source::File(FileCursor {
                layer,
                next_block,
                pending: None,
                buf: VecDeque::new(),
                done: false,
            }));
        }
        MergedScan {
            sources,
            deletions: false,
            start: start.to_vec(),
            end: end.to_vec(),
            lsn,
            cache,
        }
    }

    /// Makes sure source `i` has a head, unless it is exhausted.
    async fn fill(&mut self, i: usize) -> Result<(), PageError> {
        let (start, end, lsn) = (&self.start, &self.end, self.lsn);
        match &mut self.sources[i] {
            Source::Memory {
                layer,
                buf,
                after,
                done,
            } => {
                if buf.is_empty() && !*done {
                    let chunk = layer
                        .read()
                        .chunk(start, after.as_deref(), end, lsn, MEMORY_CHUNK);
                    *done = chunk.len() < MEMORY_CHUNK;
                    *after = chunk.last().map(|(k, _)| k.clone());
                    buf.extend(chunk);
                }
            }
            Source::File(c) => {
                while c.buf.is_empty() && !c.done {
                    c.load_next(&self.cache, start, end, lsn).await?;
                }
            }
        }
        Ok(())
    }

    fn head(&self, i: usize) -> Option<&(Vec<u8>, Version)> {
        match &self.sources[i] {
            Source::Memory { buf, .. } => buf.front(),
            Source::File(c) => c.buf.front(),
        }
    }

    fn pop(&mut self, i: usize) -> Option<(Vec<u8>, Version)> {
        match &mut self.sources[i] {
            Source::Memory { buf, .. } => buf.pop_front(),
            Source::File(c) => c.buf.pop_front(),
        }
    }

    /// Makes [`next_version`](Self::next_version) yield deleted keys too.
    pub fn with_deletions(mut self) -> MergedScan {
        self.deletions = true;
        self
    }

    /// The next live key, the LSN of its version and its value, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<(Vec<u8>, Lsn, Value)>, PageError> {
        while let Some((key, lsn, value)) = self.next_version().await? {
            if let Some(v) = value {
                return Ok(Some((key, lsn, v)));
            }
        }
        Ok(None)
    }

    /// The next key with its newest version (a deletion is `None`, and only comes with
    /// [`with_deletions`](Self::with_deletions)).
    pub async fn next_version(
        &mut self,
    ) -> Result<Option<(Vec<u8>, Lsn, Option<Value>)>, PageError> {
        loop {
            for i in 0..self.sources.len() {
                self.fill(i).await?;
            }
            // The smallest head key; the first source holding it has its newest version.
            let mut best: Option<usize> = None;
            for i in 0..self.sources.len() {
                if let Some((k, _)) = self.head(i)
                    && best.is_none_or(|b| k < &self.head(b).expect("best has a head").0)
                {
                    best = Some(i);
                }
            }
            let Some(best) = best else {
                return Ok(None);
            };
            let (key, (lsn, value)) = self.pop(best).expect("best has a head");
            for i in best + 1..self.sources.len() {
                if self.head(i).is_some_and(|(k, _)| *k == key) {
                    self.pop(i);
                }
            }
            if value.is_some() || self.deletions {
                return Ok(Some((key, lsn, value)));
            }
        }
    }
}

impl FileCursor {
    /// Reads the next block into `buf` (or ends the cursor).
    async fn load_next(
        &mut self,
        cache: &BlockCache,
        start: &[u8],
        end: &[u8],
        lsn: Lsn,
    ) -> Result<(), PageError> {
        let corrupt = |e: crate::layer_file::Corrupt| PageError::Storage(e.to_string());
        if self.next_block >= self.layer.index.blocks.len() {
            self.finish_pending();
            self.done = true;
            return Ok(());
        }
        let block = cache.block(&self.layer, self.next_block).await?;
        self.next_block += 1;
        let first = block.first_key_at_or_after(start).map_err(corrupt)?;
        for i in first..block.len() {
            let e = block.entry(i).map_err(corrupt)?;
            if !end.is_empty() && e.key >= end {
                self.finish_pending();
                self.done = true;
                return Ok(());
            }
            if self
                .pending
                .as_ref()
                .is_none_or(|(k, _)| k.as_slice() != e.key)
            {
                self.finish_pending();
                self.pending = Some((e.key.to_vec(), None));
            }
            if e.lsn <= lsn {
                let (_, best) = self.pending.as_mut().expect("pending was just set");
                *best = Some((e.lsn, e.value.map(Value::from)));
            }
        }
        Ok(())
    }

    fn finish_pending(&mut self) {
        if let Some((key, Some(version))) = self.pending.take() {
            self.buf.push_back((key, version));
        }
    }
}
