//! `LocalPageServer`: follows the WAL into an in-memory layer, freezes it into delta layer
//! files in object storage, writes image layers over them, collects superseded layers, and
//! answers reads at any LSN it holds by searching memory, then files, newest first.
//!
//! Object storage is the source of truth: a manifest names the layer files and the LSN up to
//! which they hold every record. A pageserver started on an empty disk reads the manifest,
//! loads the layers' indexes and follows the WAL from the manifest's LSN on; its local
//! directory is only the block cache.

use crate::layer_file::{LayerIndex, LayerKind, LayerWriter, Version};
use crate::layers::{BlockCache, Layer, LayerSet, MemorySource, MergedScan};
use crate::remote::{LayerMeta, Manifest, RemoteStorage, RetiredFile, SegmentMeta, hex, unhex};
use crate::{LayerReport, PageError, PageService, SegmentChange, StorageReport, Value};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thunderdb_common::config::{PageServerConfig, StorageConfig};
use thunderdb_common::wal::WalRecord;
use thunderdb_common::{Lsn, TableId};
use thunderdb_walservice::{WalError, WalService};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// An image layer file is closed at about this size and the next one begins.
const IMAGE_FILE_BYTES: usize = 128 << 20;
/// How long the files of a replaced segment stay for the scans that began before (a scan
/// running longer than this fails to read them, with a clear error).
const SEGMENT_FILE_GRACE: Duration = Duration::from_secs(900);

/// How a pageserver starts.
#[derive(Clone)]
pub struct PageServerOptions {
    /// How long a read waits for its LSN to be applied before failing.
    pub wait_timeout: Duration,
    pub config: PageServerConfig,
    /// Object storage; a `local` store needs its `path` set.
    pub storage: StorageConfig,
    /// The pageserver's own directory: its block cache. Losing it loses nothing.
    pub dir: PathBuf,
}

impl PageServerOptions {
    /// Defaults with the local directory `dir` and a local object store in `dir/objects`.
    pub fn new(dir: PathBuf) -> PageServerOptions {
        let storage = StorageConfig {
            path: dir.join("objects").display().to_string(),
            ..Default::default()
        };
        PageServerOptions {
            wait_timeout: Duration::from_secs(30),
            config: PageServerConfig {
                cache_disk_bytes: 64 << 20,
                ..Default::default()
            },
            storage,
            dir: dir.join("pageserver"),
        }
    }
}

/// The open in-memory layer and everything else, swapped together.
struct State {
    open: MemorySource,
    set: Arc<LayerSet>,
}

/// A pageserver in this process.
pub struct LocalPageServer {
    state: RwLock<State>,
    /// For each index prefix of the catalog table, the LSNs of the records that wrote under it,
    /// ascending; complete from `catalog_floor` on.
    writes_by_prefix: RwLock<HashMap<[u8; 8], Vec<Lsn>>>,
    catalog_floor: Lsn,
    applied_tx: watch::Sender<Lsn>,
    applied: watch::Receiver<Lsn>,
    /// The LSN up to which object storage holds every record.
    consistent_tx: watch::Sender<Lsn>,
    opts: PageServerOptions,
    cancel: CancellationToken,
    remote: RemoteStorage,
    cache: BlockCache,
    flush_wake: Notify,
    /// The log it follows, told which records object storage now holds.
    wal: Arc<dyn WalService>,
    /// Collected layers whose objects are deleted once no read holds them.
    retired: parking_lot::Mutex<Vec<Arc<Layer>>>,
    /// The manifest as last written; whoever writes the next one holds this meanwhile (and
    /// only meanwhile: see `update_manifest`).
    manifest: tokio::sync::Mutex<Manifest>,
    /// The newest columnar segment of each table, as the manifest has it.
    segments: RwLock<BTreeMap<u32, Arc<SegmentMeta>>>,
    /// Row writes applied per table since start.
    row_writes: parking_lot::Mutex<HashMap<u32, u64>>,
    /// Replaced segments, kept while a scan holds them so their files stay.
    replaced_segments: parking_lot::Mutex<Vec<Arc<SegmentMeta>>>,
}

fn catalog_prefix(key: &[u8]) -> Option<[u8; 8]> {
    key.first_chunk::<8>()
        .filter(|p| p[..4] == TableId::CATALOG.0.to_be_bytes())
        .copied()
}

impl LocalPageServer {
    /// Restores from object storage and starts following `wal` after the manifest's LSN.
    pub async fn start(
        wal: Arc<dyn WalService>,
        opts: PageServerOptions,
        cancel: CancellationToken,
    ) -> Result<Arc<LocalPageServer>, PageError> {
        let remote = RemoteStorage::open(&opts.storage, &opts.dir.join("objects"))?;
        let manifest = remote
            .read_manifest()
            .await?
            .unwrap_or_else(Manifest::empty);
        let cache = BlockCache::open(
            remote.clone(),
            &opts.dir.join("cache"),
            opts.config.cache_memory_bytes,
            opts.config.cache_disk_bytes,
        )
        .await?;
        let loaded = futures::stream::iter(manifest.layers.iter().cloned())
            .map(|meta| Layer::load(meta, &remote))
            .buffered(16)
            .collect::<Vec<_>>()
            .await;
        let mut set = LayerSet {
            min_readable: manifest.min_readable_lsn,
            ..Default::default()
        };
        let mut images: BTreeMap<Lsn, Vec<Arc<Layer>>> = BTreeMap::new();
        for layer in loaded {
            let layer = Arc::new(layer?);
            match layer.meta.kind {
                LayerKind::Delta => set.deltas.push(layer),
                LayerKind::Image => images.entry(layer.meta.lsn_end).or_default().push(layer),
            }
        }
        set.deltas
            .sort_by_key(|d| std::cmp::Reverse(d.meta.lsn_end));
        set.images = images.into_iter().rev().collect();
        let mut by_prefix = HashMap::new();
        for (p, lsn) in &manifest.catalog_writes {
            if let Some(p) = unhex(p).and_then(|p| <[u8; 8]>::try_from(p).ok()) {
                by_prefix.insert(p, vec![*lsn]);
            }
        }
        let consistent = manifest.consistent_lsn;
        let wal_end = wal
            .last_committed_lsn()
            .await
            .map_err(|e| PageError::Wal(e.to_string()))?;
        if wal_end < consistent {
            return Err(PageError::Storage(format!(
                "object storage ({}) holds records up to LSN {consistent} but the WAL ends at \
                 {wal_end}: the storage belongs to another cluster, or the WAL lost commits",
                remote.description
            )));
        }
        if !manifest.layers.is_empty() {
            tracing::info!(
                layers = manifest.layers.len(),
                lsn = %consistent,
                storage = %remote.description,
                "restored layers from object storage"
            );
        }
        // A segment above the WAL's end holds commits the WAL no longer has (a lost tail):
        // its LSNs will be reused by other commits.
        let mut manifest = manifest;
        manifest.segments.retain(|s| {
            let keep = s.lsn <= wal_end;
            if !keep {
                tracing::warn!(table = s.table, lsn = %s.lsn, wal_end = %wal_end, "dropping a segment above the WAL's end");
            }
            keep
        });
        let segments = manifest
            .segments
            .iter()
            .map(|s| (s.table, Arc::new(s.clone())))
            .collect();
        let (applied_tx, applied) = watch::channel(consistent);
        let (consistent_tx, _) = watch::channel(consistent);
        let ps = Arc::new(LocalPageServer {
            state: RwLock::new(State {
                open: MemorySource::default(),
                set: Arc::new(set),
            }),
            writes_by_prefix: RwLock::new(by_prefix),
            catalog_floor: consistent,
            applied_tx,
            applied,
            consistent_tx,
            opts,
            cancel,
            remote,
            cache,
            flush_wake: Notify::new(),
            wal: wal.clone(),
            retired: parking_lot::Mutex::new(Vec::new()),
            manifest: tokio::sync::Mutex::new(manifest),
            segments: RwLock::new(segments),
            row_writes: Default::default(),
            replaced_segments: Default::default(),
        });
        ps.release_wal(consistent).await;
        tokio::spawn(ps.clone().follow(wal));
        tokio::spawn(ps.clone().flusher());
        Ok(ps)
    }

    async fn follow(self: Arc<Self>, wal: Arc<dyn WalService>) {
        loop {
            let from = self.applied_lsn().next();
            let mut stream = wal.subscribe(from);
            loop {
                let next = tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    n = stream.next() => n,
                };
                match next {
                    Some(Ok(rec)) => self.apply(&rec),
                    Some(Err(WalError::ShuttingDown)) | None => {
                        if self.cancel.is_cancelled() {
                            return;
                        }
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::error!(error = %e, lsn = %from, "WAL stream failed; resubscribing");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    fn apply(&self, rec: &WalRecord) {
        if rec.lsn <= self.applied_lsn() {
            return;
        }
        // The catalog's write list changes under the state lock too, so a freeze (which takes
        // it) never writes a manifest that has a record's rows but not its catalog writes.
        let state = self.state.read();
        let full = {
            let mut open = state.open.write();
            open.apply(rec);
            open.bytes() >= self.opts.config.freeze_bytes
        };
        {
            // Writes come sorted by key, so a table's rows are one run.
            let mut counts = self.row_writes.lock();
            let mut run: Option<(u32, u64)> = None;
            for w in &rec.writes {
                let Some((table, index)) = thunderdb_common::keys::split_prefix(&w.key) else {
                    continue;
                };
                if index != thunderdb_common::IndexId::PRIMARY {
                    continue;
                }
                match &mut run {
                    Some((t, n)) if *t == table.0 => *n += 1,
                    _ => {
                        if let Some((t, n)) = run.replace((table.0, 1)) {
                            *counts.entry(t).or_default() += n;
                        }
                    }
                }
            }
            if let Some((t, n)) = run {
                *counts.entry(t).or_default() += n;
            }
        }
        {
            let mut by_prefix = self.writes_by_prefix.write();
            for w in &rec.writes {
                // Only the catalog's changes are asked for; data keys would grow this without
                // bound.
                if let Some(prefix) = catalog_prefix(&w.key) {
                    let lsns = by_prefix.entry(prefix).or_default();
                    if lsns.last() != Some(&rec.lsn) {
                        lsns.push(rec.lsn);
                    }
                }
            }
        }
        drop(state);
        self.applied_tx.send_replace(rec.lsn);
        if full {
            self.freeze();
        }
    }

    /// Makes the open layer immutable and hands it to the flusher.
    fn freeze(&self) {
        let mut state = self.state.write();
        if state.open.read().is_empty() {
            return;
        }
        let frozen = std::mem::take(&mut state.open);
        let mut set = LayerSet::clone(&state.set);
        set.frozen.insert(0, frozen);
        state.set = Arc::new(set);
        drop(state);
        self.flush_wake.notify_one();
    }

    /// Writes everything applied so far to object storage and waits until the manifest says
    /// so; returns the LSN it covers.
    pub async fn checkpoint(&self) -> Result<Lsn, PageError> {
        let target = self.applied_lsn();
        self.freeze();
        let mut rx = self.consistent_tx.subscribe();
        let wait = rx.wait_for(|c| *c >= target);
        match tokio::time::timeout(Duration::from_secs(300), wait).await {
            Ok(Ok(_)) => Ok(target),
            Ok(Err(_)) => Err(PageError::ShuttingDown),
            Err(_) => Err(PageError::Storage(format!(
                "checkpoint did not reach LSN {target} in 300 s"
            ))),
        }
    }

    /// The background task that writes frozen layers, images, and collects old layers.
    async fn flusher(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            let pause = if failures == 0 {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(200 << failures.min(5))
            };
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = self.flush_wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
            let old_enough = {
                let state = self.state.read();
                let open = state.open.read();
                open.opened()
                    .is_some_and(|t| t.elapsed().as_secs() >= self.opts.config.freeze_after_secs)
            };
            if old_enough {
                self.freeze();
            }
            match self.write_out().await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "writing layers to object storage");
                }
            }
        }
        if let Err(e) = self.delete_retired().await {
            tracing::warn!(error = %e, "deleting collected layers at shutdown");
        }
        self.cache.close().await;
    }

    /// Flushes every frozen layer (oldest first), then writes an image generation and
    /// collects old layers when due.
    async fn write_out(&self) -> Result<(), PageError> {
        loop {
            let oldest = self.state.read().set.frozen.last().cloned();
            let Some(frozen) = oldest else { break };
            self.flush_frozen(&frozen).await?;
        }
        let set = self.state.read().set.clone();
        let image_lsn = set.images.first().map_or(Lsn::ZERO, |(l, _)| *l);
        let above: u64 = set
            .deltas
            .iter()
            .filter(|d| d.meta.lsn_end > image_lsn)
            .map(|d| d.meta.size)
            .sum();
        let image_size: u64 = set
            .images
            .first()
            .map_or(0, |(_, f)| f.iter().map(|l| l.meta.size).sum());
        drop(set);
        if above > 0 && above >= self.opts.config.image_after_delta_bytes.max(image_size / 2) {
            self.write_image().await?;
        }
        self.collect().await?;
        self.delete_retired_segment_files().await?;
        self.delete_retired().await
    }

    /// Writes the manifest with `change` applied to the one last written. The lock is held
    /// for this write only, so the flusher's writes and segment changes take turns rather
    /// than one waiting out the other's uploads.
    async fn update_manifest(&self, change: impl FnOnce(&mut Manifest)) -> Result<(), PageError> {
        let mut manifest = self.manifest.lock().await;
        let mut next = manifest.clone();
        change(&mut next);
        self.remote.write_manifest(&next).await?;
        *manifest = next;
        Ok(())
    }

    /// Deletes the files of segments replaced more than [`SEGMENT_FILE_GRACE`] ago that no
    /// scan in this process still holds. A failed delete is retried on the next pass.
    async fn delete_retired_segment_files(&self) -> Result<(), PageError> {
        let before = chrono::Utc::now().timestamp_micros() - SEGMENT_FILE_GRACE.as_micros() as i64;
        let held: Vec<String> = {
            let mut replaced = self.replaced_segments.lock();
            replaced.retain(|s| Arc::strong_count(s) > 1);
            replaced
                .iter()
                .flat_map(|s| s.files.iter().map(|f| f.name.clone()))
                .collect()
        };
        // Under the lock throughout: a change publishing one of these files again waits.
        let mut manifest = self.manifest.lock().await;
        let due: Vec<RetiredFile> = manifest
            .retired_segment_files
            .clone()
            .into_iter()
            .filter(|f| f.retired_micros <= before && !held.contains(&f.name))
            .collect();
        let mut deleted = Vec::new();
        for f in due {
            match self.remote.delete(&f.name).await {
                Ok(()) => deleted.push(f),
                Err(e) => {
                    tracing::warn!(error = %e, file = %f.name, "deleting a replaced segment file")
                }
            }
        }
        if deleted.is_empty() {
            return Ok(());
        }
        let mut next = manifest.clone();
        next.retired_segment_files.retain(|f| !deleted.contains(f));
        self.remote.write_manifest(&next).await?;
        *manifest = next;
        Ok(())
    }

    async fn flush_frozen(&self, frozen: &MemorySource) -> Result<(), PageError> {
        let layer = frozen.clone();
        let (bytes, summary, max_commit) = tokio::task::spawn_blocking(move || {
            let l = layer.read();
            let (bytes, summary) = l.write_delta();
            (bytes, summary, l.max_commit_micros())
        })
        .await
        .map_err(|e| PageError::Storage(format!("writing a delta layer: {e}")))?;
        let lsn_end = summary.lsn_end;
        let layer = self.upload(bytes, &summary, max_commit).await?;
        let catalog_writes = self.catalog_writes_at(lsn_end);
        self.update_manifest(|m| {
            m.layers.push(layer.meta.clone());
            m.consistent_lsn = lsn_end;
            m.catalog_writes = catalog_writes;
        })
        .await?;
        {
            let mut state = self.state.write();
            let mut set = LayerSet::clone(&state.set);
            set.frozen.retain(|f| !Arc::ptr_eq(f, frozen));
            set.deltas.insert(0, layer);
            state.set = Arc::new(set);
        }
        tracing::debug!(lsn = %lsn_end, "delta layer written");
        self.consistent_tx.send_replace(lsn_end);
        self.release_wal(lsn_end).await;
        Ok(())
    }

    /// Tells the WAL that object storage holds every record up to `consistent`.
    async fn release_wal(&self, consistent: Lsn) {
        if consistent == Lsn::ZERO {
            return;
        }
        if let Err(e) = self.wal.release_before(consistent.next()).await {
            tracing::warn!(error = %e, lsn = %consistent, "releasing the WAL below the stored LSN");
        }
    }

    /// Uploads a finished layer file and makes it readable.
    async fn upload(
        &self,
        bytes: Vec<u8>,
        summary: &crate::layer_file::LayerSummary,
        max_commit: i64,
    ) -> Result<Arc<Layer>, PageError> {
        let bytes = Bytes::from(bytes);
        let meta = LayerMeta::from_summary(summary, rand::random(), bytes.len() as u64, max_commit);
        let index = LayerIndex::parse(
            &bytes[summary.index_offset as usize..][..summary.index_len as usize],
            summary.blocks,
        )
        .map_err(|e| PageError::Storage(e.to_string()))?;
        self.remote.put(&meta.name, bytes.clone()).await?;
        let layer = Arc::new(Layer::new(meta, index)?);
        self.cache.insert_layer(&layer, &bytes);
        Ok(layer)
    }

    fn catalog_writes_at(&self, lsn: Lsn) -> BTreeMap<String, Lsn> {
        self.writes_by_prefix
            .read()
            .iter()
            .filter_map(|(p, lsns)| {
                let below = lsns.partition_point(|l| *l <= lsn);
                below.checked_sub(1).map(|i| (hex(p), lsns[i]))
            })
            .collect()
    }

    /// Writes every key's value at the newest delta layer's LSN as a new image generation.
    async fn write_image(&self) -> Result<(), PageError> {
        let set = self.state.read().set.clone();
        let Some(lsn) = set.deltas.first().map(|d| d.meta.lsn_end) else {
            return Ok(());
        };
        let (deltas, image) = set.files_for(lsn);
        // The image this one sits on: deletions after it are kept as deletions, so a key the
        // new image leaves out was last written at or before `below`.
        let below = set.images.first().map_or(Lsn::ZERO, |(l, _)| *l);
        let files: Vec<Arc<Layer>> = deltas.into_iter().chain(image).cloned().collect();
        drop(set);
        let max_commit = files
            .iter()
            .map(|l| l.meta.max_commit_micros)
            .max()
            .unwrap_or(0);
        let mut scan =
            MergedScan::new(Vec::new(), files, self.cache.clone(), &[], &[], lsn).with_deletions();
        let mut written = Vec::new();
        let mut writer = LayerWriter::new(LayerKind::Image, below, lsn);
        let mut n = 0u64;
        // Each entry keeps its version's own LSN, so `version_lsn` answers exactly for every
        // key the image holds.
        while let Some((key, version, value)) = scan.next_version().await? {
            if value.is_none() && version <= below {
                continue;
            }
            writer.push(&key, version, value.as_deref());
            n += 1;
            if writer.len() >= IMAGE_FILE_BYTES {
                let full =
                    std::mem::replace(&mut writer, LayerWriter::new(LayerKind::Image, below, lsn));
                let (bytes, summary) = full.finish();
                written.push(self.upload(bytes, &summary, max_commit).await?);
            }
            if n.is_multiple_of(4096) {
                tokio::task::yield_now().await;
            }
        }
        if !writer.is_empty() || written.is_empty() {
            let (bytes, summary) = writer.finish();
            written.push(self.upload(bytes, &summary, max_commit).await?);
        }
        self.update_manifest(|m| m.layers.extend(written.iter().map(|l| l.meta.clone())))
            .await?;
        {
            let mut state = self.state.write();
            let mut set = LayerSet::clone(&state.set);
            set.images.insert(0, (lsn, written));
            state.set = Arc::new(set);
        }
        tracing::info!(lsn = %lsn, keys = n, "image layer generation written");
        Ok(())
    }

    /// Drops the layers that only reads older than the history window could need: everything
    /// below the newest image generation that is older than the window.
    async fn collect(&self) -> Result<(), PageError> {
        let set = self.state.read().set.clone();
        let now = chrono::Utc::now().timestamp_micros();
        let window = (self.opts.config.history_retention_secs as i64).saturating_mul(1_000_000);
        let horizon = set.images.iter().find(|(_, files)| {
            files
                .iter()
                .map(|f| f.meta.max_commit_micros)
                .max()
                .is_some_and(|t| t <= now.saturating_sub(window))
        });
        let Some((horizon, _)) = horizon else {
            return Ok(());
        };
        let horizon = *horizon;
        let gone = |l: &Layer| match l.meta.kind {
            LayerKind::Delta => l.meta.lsn_end <= horizon,
            LayerKind::Image => l.meta.lsn_end < horizon,
        };
        let doomed: Vec<Arc<Layer>> = set.all_files().filter(|l| gone(l)).cloned().collect();
        if doomed.is_empty() {
            return Ok(());
        }
        self.update_manifest(|m| {
            m.layers
                .retain(|l| !doomed.iter().any(|d| d.meta.name == l.name));
            m.min_readable_lsn = horizon;
        })
        .await?;
        {
            let mut state = self.state.write();
            let mut set = LayerSet::clone(&state.set);
            set.deltas.retain(|l| !gone(l));
            set.images.retain(|(lsn, _)| *lsn >= horizon);
            set.min_readable = horizon;
            state.set = Arc::new(set);
        }
        tracing::info!(layers = doomed.len(), horizon = %horizon, "collected superseded layers");
        self.retired.lock().extend(doomed);
        Ok(())
    }

    /// Deletes the objects of collected layers that no read still holds (a read keeps the
    /// layer set it started with).
    async fn delete_retired(&self) -> Result<(), PageError> {
        let unused: Vec<Arc<Layer>> = {
            let mut retired = self.retired.lock();
            let (unused, held) = std::mem::take(&mut *retired)
                .into_iter()
                .partition(|l| Arc::strong_count(l) == 1);
            *retired = held;
            unused
        };
        for (i, layer) in unused.iter().enumerate() {
            if let Err(e) = self.remote.delete(&layer.meta.name).await {
                self.retired.lock().extend(unused[i..].iter().cloned());
                return Err(e);
            }
        }
        Ok(())
    }

    async fn wait_for(&self, lsn: Lsn) -> Result<(), PageError> {
        if *self.applied.borrow() >= lsn {
            return Ok(());
        }
        let mut rx = self.applied.clone();
        let wait = rx.wait_for(|applied| *applied >= lsn);
        match tokio::time::timeout(self.opts.wait_timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(PageError::ShuttingDown),
            Err(_) => Err(PageError::LsnTimeout {
                wanted: lsn,
                applied: self.applied_lsn(),
            }),
        }
    }

    /// The open layer and the rest, as one consistent view, after checking `lsn` is held.
    fn view(&self, lsn: Lsn) -> Result<(MemorySource, Arc<LayerSet>), PageError> {
        let state = self.state.read();
        if lsn < state.set.min_readable {
            return Err(PageError::SnapshotTooOld {
                lsn,
                oldest: state.set.min_readable,
            });
        }
        Ok((state.open.clone(), state.set.clone()))
    }

    /// The newest version of `key` at or below `lsn`, from wherever it is.
    async fn newest(&self, key: &[u8], lsn: Lsn) -> Result<Option<Version>, PageError> {
        self.wait_for(lsn).await?;
        let (open, set) = self.view(lsn)?;
        if let Some(v) = open.read().get(key, lsn) {
            return Ok(Some(v.clone()));
        }
        for frozen in &set.frozen {
            if let Some(v) = frozen.read().get(key, lsn) {
                return Ok(Some(v.clone()));
            }
        }
        let image = set.images.iter().find(|(l, _)| *l <= lsn);
        let base = image.map_or(Lsn::ZERO, |(l, _)| *l);
        for layer in &set.deltas {
            if layer.meta.lsn_end <= base {
                break;
            }
            if layer.meta.lsn_start > lsn {
                continue;
            }
            if let Some(v) = layer.get(&self.cache, key, lsn).await? {
                return Ok(Some(v));
            }
        }
        for layer in image.map_or(&[][..], |(_, files)| files.as_slice()) {
            if let Some(v) = layer.get(&self.cache, key, lsn).await? {
                return Ok(Some(v));
            }
        }
        // A key the image does not hold was last written (if ever) at or before the image it
        // sits on (its `lsn_start`): the conservative answer for `version_lsn`.
        Ok(image
            .and_then(|(_, files)| files.first())
            .map(|f| (f.meta.lsn_start, None)))
    }
}

#[async_trait]
impl PageService for LocalPageServer {
    async fn get(&self, key: &[u8], lsn: Lsn) -> Result<Option<Value>, PageError> {
        Ok(self.newest(key, lsn).await?.and_then(|(_, v)| v))
    }

    async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        lsn: Lsn,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Value)>, PageError> {
        self.wait_for(lsn).await?;
        if start >= end {
            return Ok(Vec::new());
        }
        let (open, set) = self.view(lsn)?;
        let memory = std::iter::once(open)
            .chain(set.frozen.iter().cloned())
            .collect();
        let (deltas, image) = set.files_for(lsn);
        let files = deltas.into_iter().chain(image).cloned().collect();
        let mut scan = MergedScan::new(memory, files, self.cache.clone(), start, end, lsn);
        let limit = limit.unwrap_or(usize::MAX);
        let mut rows = Vec::new();
        while rows.len() < limit {
            match scan.next().await? {
                Some((key, _, value)) => rows.push((key, value)),
                None => break,
            }
        }
        Ok(rows)
    }

    async fn version_lsn(&self, key: &[u8], lsn: Lsn) -> Result<Lsn, PageError> {
        Ok(self.newest(key, lsn).await?.map_or(Lsn::ZERO, |(v, _)| v))
    }

    async fn newest_write(&self, prefixes: &[[u8; 8]], lsn: Lsn) -> Result<Lsn, PageError> {
        self.wait_for(lsn).await?;
        if lsn < self.catalog_floor {
            // The writes before the restore point are not known one by one.
            return Ok(lsn);
        }
        let by_prefix = self.writes_by_prefix.read();
        Ok(prefixes
            .iter()
            .filter_map(|p| {
                let lsns = by_prefix.get(p)?;
                let below = lsns.partition_point(|l| *l <= lsn);
                below.checked_sub(1).map(|i| lsns[i])
            })
            .max()
            .unwrap_or(Lsn::ZERO))
    }

    fn applied_lsn(&self) -> Lsn {
        *self.applied.borrow()
    }

    async fn checkpoint(&self) -> Result<Lsn, PageError> {
        LocalPageServer::checkpoint(self).await
    }

    async fn changes(
        &self,
        start: &[u8],
        end: &[u8],
        since: Lsn,
        at: Lsn,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Option<Value>)>, PageError> {
        if since > at {
            return Err(PageError::Storage(format!(
                "changes since LSN {since} up to the earlier LSN {at}"
            )));
        }
        self.wait_for(at).await?;
        if start >= end || since == at {
            return Ok(Vec::new());
        }
        // Reads at `since` must be possible: below it, the layers that tell which versions
        // came after it may be gone.
        let (open, set) = self.view(since)?;
        let memory = std::iter::once(open)
            .chain(set.frozen.iter().cloned())
            .collect();
        // Every version newer than `since` is in memory or in a delta layer ending after
        // it: deltas go only with collection, below the oldest readable LSN, which `since`
        // is not (images repeat what the deltas hold). The merge takes each key's newest
        // version among these, which is its newest overall when it is newer than `since`.
        let files = set
            .deltas
            .iter()
            .filter(|d| d.meta.lsn_end > since && d.meta.lsn_start <= at)
            .cloned()
            .collect();
        let mut scan =
            MergedScan::new(memory, files, self.cache.clone(), start, end, at).with_deletions();
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        while out.len() < limit
            && let Some((key, version, value)) = scan.next_version().await?
        {
            if version > since {
                out.push((key, value));
            }
        }
        Ok(out)
    }

    fn row_writes(&self) -> HashMap<u32, u64> {
        self.row_writes.lock().clone()
    }

    fn object_storage(&self) -> RemoteStorage {
        self.remote.clone()
    }

    fn segments(&self) -> Vec<Arc<SegmentMeta>> {
        self.segments.read().values().cloned().collect()
    }

    async fn change_segments(&self, changes: Vec<SegmentChange>) -> Result<Vec<bool>, PageError> {
        let mut manifest = self.manifest.lock().await;
        let mut next = manifest.clone();
        let now = chrono::Utc::now().timestamp_micros();
        let mut applied = Vec::with_capacity(changes.len());
        for change in &changes {
            let current = next.segments.iter().find(|s| s.table == change.table);
            let ok = current.map(|s| s.lsn) == change.previous
                && change
                    .segment
                    .as_ref()
                    .is_none_or(|s| current.is_none_or(|c| s.lsn >= c.lsn));
            applied.push(ok);
            if !ok {
                continue;
            }
            let kept: Vec<&str> = change
                .segment
                .iter()
                .flat_map(|s| s.files.iter().map(|f| f.name.as_str()))
                .collect();
            let mut retired: Vec<RetiredFile> = current
                .into_iter()
                .flat_map(|old| old.files.iter())
                .filter(|f| !kept.contains(&f.name.as_str()))
                .map(|f| RetiredFile {
                    name: f.name.clone(),
                    retired_micros: now,
                })
                .collect();
            // A file published again is live again.
            next.retired_segment_files
                .retain(|f| !kept.contains(&f.name.as_str()));
            next.retired_segment_files.append(&mut retired);
            next.segments.retain(|s| s.table != change.table);
            next.segments.extend(change.segment.iter().cloned());
        }
        if !applied.contains(&true) {
            return Ok(applied);
        }
        self.remote.write_manifest(&next).await?;
        *manifest = next;
        let mut segments = self.segments.write();
        let mut replaced = self.replaced_segments.lock();
        for (change, ok) in changes.into_iter().zip(&applied) {
            if !ok {
                continue;
            }
            let old = match change.segment {
                Some(s) => segments.insert(change.table, Arc::new(s)),
                None => segments.remove(&change.table),
            };
            replaced.extend(old);
        }
        Ok(applied)
    }

    fn storage_report(&self) -> StorageReport {
        let (open, set) = {
            let state = self.state.read();
            (state.open.clone(), state.set.clone())
        };
        let memory = |kind: &'static str, l: &MemorySource| {
            let l = l.read();
            (!l.is_empty()).then(|| LayerReport {
                kind,
                name: String::new(),
                lsn_start: l.lsn_start(),
                lsn_end: l.lsn_end(),
                bytes: l.bytes(),
                entries: l.keys() as u64,
                key_start: String::new(),
                key_last: String::new(),
            })
        };
        let mut layers: Vec<LayerReport> = memory("memory", &open).into_iter().collect();
        layers.extend(set.frozen.iter().filter_map(|f| memory("frozen", f)));
        layers.extend(set.all_files().map(|l| LayerReport {
            kind: l.meta.kind.name(),
            name: l.meta.name.clone(),
            lsn_start: l.meta.lsn_start,
            lsn_end: l.meta.lsn_end,
            bytes: l.meta.size,
            entries: l.meta.entries,
            key_start: l.meta.key_start.clone(),
            key_last: l.meta.key_last.clone(),
        }));
        StorageReport {
            location: self.remote.description.clone(),
            applied_lsn: self.applied_lsn(),
            consistent_lsn: *self.consistent_tx.borrow(),
            min_readable_lsn: set.min_readable,
            layers,
            segments: self.segments(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use thunderdb_common::TxnId;
    use thunderdb_common::wal::KeyWrite;
    use thunderdb_walservice::{CommitOutcome, CommitRequest, LocalWalService, WalServiceOptions};

    async fn wal(dir: &std::path::Path) -> Arc<LocalWalService> {
        let wal = LocalWalService::start(WalServiceOptions::single(dir.join("wal"), false, 16))
            .await
            .unwrap();
        wal.wait_ready(Duration::from_secs(10)).await.unwrap();
        wal
    }

    fn commit(snapshot: u64, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> CommitRequest {
        CommitRequest {
            txn_id: TxnId::random(),
            snapshot_lsn: Lsn(snapshot),
            writes: writes
                .into_iter()
                .map(|(key, value)| KeyWrite { key, value })
                .collect(),
            read_keys: vec![],
            read_ranges: vec![],
        }
    }

    #[tokio::test]
    async fn reads_are_versioned_by_lsn() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal(dir.path()).await;
        let one = |snapshot: u64, key: &str, value: Option<&str>| {
            commit(
                snapshot,
                vec![(
                    key.as_bytes().to_vec(),
                    value.map(|v| v.as_bytes().to_vec()),
                )],
            )
        };
        assert_eq!(
            wal.commit(one(0, "a", Some("1"))).await.unwrap(),
            CommitOutcome::Committed(Lsn(1))
        );
        wal.commit(one(1, "a", Some("2"))).await.unwrap();
        wal.commit(one(2, "b", Some("x"))).await.unwrap();
        wal.commit(one(3, "a", None)).await.unwrap();
        let ps = LocalPageServer::start(
            wal.clone(),
            PageServerOptions::new(dir.path().to_owned()),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            ps.get(b"a", Lsn(1)).await.unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(
            ps.get(b"a", Lsn(2)).await.unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(ps.get(b"a", Lsn(4)).await.unwrap(), None);
        assert_eq!(ps.version_lsn(b"a", Lsn(4)).await.unwrap(), Lsn(4));
        assert_eq!(ps.scan(b"a", b"z", Lsn(3), None).await.unwrap().len(), 2);
        assert_eq!(ps.scan(b"a", b"z", Lsn(4), None).await.unwrap().len(), 1);
        // Writes under two index prefixes of the catalog table: one at 5 and 7, two at 6.
        let catalog = TableId::CATALOG.0.to_be_bytes();
        let prefix = |index: u8| {
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&catalog);
            p[4..].copy_from_slice(&[0, 0, 0, index]);
            p
        };
        let (one_p, two_p) = (prefix(1), prefix(2));
        for (snapshot, p) in [(4, one_p), (5, two_p), (6, one_p)] {
            let key = [p.as_slice(), b"k"].concat();
            wal.commit(commit(snapshot, vec![(key, Some(b"v".to_vec()))]))
                .await
                .unwrap();
        }
        assert_eq!(ps.newest_write(&[one_p], Lsn(4)).await.unwrap(), Lsn::ZERO);
        assert_eq!(ps.newest_write(&[one_p], Lsn(6)).await.unwrap(), Lsn(5));
        assert_eq!(ps.newest_write(&[one_p], Lsn(7)).await.unwrap(), Lsn(7));
        assert_eq!(ps.newest_write(&[two_p], Lsn(7)).await.unwrap(), Lsn(6));
        assert_eq!(
            ps.newest_write(&[one_p, two_p], Lsn(6)).await.unwrap(),
            Lsn(6)
        );
        assert_eq!(
            ps.newest_write(&[*b"nothing!"], Lsn(7)).await.unwrap(),
            Lsn::ZERO
        );
        wal.shutdown().await;
    }

    /// Every version the model has seen: key → [(lsn, value)].
    type Model = BTreeMap<Vec<u8>, Vec<(Lsn, Option<Vec<u8>>)>>;

    fn model_get(model: &Model, key: &[u8], lsn: Lsn) -> Option<Vec<u8>> {
        model
            .get(key)?
            .iter()
            .rev()
            .find(|(l, _)| *l <= lsn)
            .and_then(|(_, v)| v.clone())
    }

    async fn check(ps: &LocalPageServer, model: &Model, lsn: Lsn) {
        for key in model.keys() {
            let want = model_get(model, key, lsn);
            assert_eq!(
                ps.get(key, lsn).await.unwrap().map(|v| v.to_vec()),
                want,
                "key {key:?} at {lsn}"
            );
            // A live key's version is exact, wherever it is read from (images included); a
            // deleted key's is never older than its deletion.
            let newest = model[key]
                .iter()
                .rev()
                .find(|(l, _)| *l <= lsn)
                .map(|v| v.0);
            let version = ps.version_lsn(key, lsn).await.unwrap();
            match (want.is_some(), newest) {
                (true, Some(newest)) => assert_eq!(version, newest, "{key:?} at {lsn}"),
                (false, Some(deleted)) => assert!(version >= deleted, "{key:?} at {lsn}"),
                _ => {}
            }
        }
        let want: Vec<(Vec<u8>, Vec<u8>)> = model
            .keys()
            .filter_map(|k| model_get(model, k, lsn).map(|v| (k.clone(), v)))
            .collect();
        let got: Vec<(Vec<u8>, Vec<u8>)> = ps
            .scan(b"", b"\xff", lsn, None)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.to_vec()))
            .collect();
        assert_eq!(got, want, "scan at {lsn}");
        // A bounded range with a limit.
        let want: Vec<_> = want
            .into_iter()
            .filter(|(k, _)| k.as_slice() >= &b"k03"[..] && k.as_slice() < &b"k07"[..])
            .take(5)
            .collect();
        let got: Vec<_> = ps
            .scan(b"k03", b"k07", lsn, Some(5))
            .await
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.to_vec()))
            .collect();
        assert_eq!(got, want, "range scan at {lsn}");
        for since in [Lsn::ZERO, Lsn(lsn.0 / 2), Lsn(lsn.0.saturating_sub(1))] {
            check_changes(ps, model, since, lsn).await;
        }
    }

    /// `changes(since, at)` is every key whose newest version at `at` is newer than `since`.
    async fn check_changes(ps: &LocalPageServer, model: &Model, since: Lsn, at: Lsn) {
        if since < ps.storage_report().min_readable_lsn {
            let got = ps.changes(b"", b"\xff", since, at, None).await;
            assert!(
                matches!(got, Err(PageError::SnapshotTooOld { .. })),
                "{got:?}"
            );
            return;
        }
        let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = model
            .iter()
            .filter_map(|(k, versions)| {
                let (l, v) = versions.iter().rev().find(|(l, _)| *l <= at)?;
                (*l > since).then(|| (k.clone(), v.clone()))
            })
            .collect();
        let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = ps
            .changes(b"", b"\xff", since, at, None)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.map(|v| v.to_vec())))
            .collect();
        assert_eq!(got, want, "changes from {since} to {at}");
        let limited = ps.changes(b"", b"\xff", since, at, Some(2)).await.unwrap();
        assert_eq!(limited.len(), want.len().min(2));
    }

    #[tokio::test]
    async fn segments_change_only_from_the_segment_their_writer_saw() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal(dir.path()).await;
        let opts = PageServerOptions::new(dir.path().to_owned());
        let cancel = CancellationToken::new();
        let ps = LocalPageServer::start(wal.clone(), opts.clone(), cancel.clone())
            .await
            .unwrap();
        let seg = |lsn: u64, file: &str| SegmentMeta {
            table: 7,
            lsn: Lsn(lsn),
            exact_from: None,
            schema: "f".into(),
            rows: 1,
            files: vec![crate::remote::SegmentFile {
                name: format!("segments/t7/{file}"),
                size: 1,
                rows: 1,
            }],
            checked_micros: 0,
        };
        let change = |previous: Option<u64>, s: Option<SegmentMeta>| SegmentChange {
            table: 7,
            previous: previous.map(Lsn),
            segment: s,
        };
        let apply = |c: SegmentChange| {
            let ps = ps.clone();
            async move { ps.change_segments(vec![c]).await.unwrap() }
        };
        assert_eq!(apply(change(None, Some(seg(5, "a")))).await, vec![true]);
        // A writer that saw no segment, or another one, is refused.
        assert_eq!(apply(change(None, Some(seg(9, "b")))).await, vec![false]);
        assert_eq!(apply(change(Some(4), Some(seg(9, "b")))).await, vec![false]);
        // A segment never goes back in LSN.
        assert_eq!(apply(change(Some(5), Some(seg(3, "a")))).await, vec![false]);
        assert_eq!(apply(change(Some(5), Some(seg(9, "b")))).await, vec![true]);
        assert_eq!(ps.segments()[0].lsn, Lsn(9));
        // The replaced file waits for deletion; the manifest keeps all of it.
        let manifest = ps.manifest.lock().await.clone();
        assert_eq!(manifest.segments.len(), 1);
        assert_eq!(manifest.retired_segment_files[0].name, "segments/t7/a");
        // Published again, a retired file is live again.
        assert_eq!(apply(change(Some(9), Some(seg(10, "a")))).await, vec![true]);
        let manifest = ps.manifest.lock().await.clone();
        assert_eq!(manifest.retired_segment_files.len(), 1);
        assert_eq!(manifest.retired_segment_files[0].name, "segments/t7/b");
        // A segment above the WAL's end (its commits lost with the WAL's tail) is dropped
        // at start; one within it is restored from the manifest.
        let mut far = seg(1000, "far");
        far.table = 8;
        let far = SegmentChange {
            table: 8,
            previous: None,
            segment: Some(far),
        };
        assert_eq!(ps.change_segments(vec![far]).await.unwrap(), vec![true]);
        for i in 0..12u64 {
            let w = vec![(format!("k{i}").into_bytes(), Some(b"v".to_vec()))];
            let CommitOutcome::Committed(_) = wal.commit(commit(i, w)).await.unwrap() else {
                panic!("conflict")
            };
        }
        cancel.cancel();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(ps);
        let cancel = CancellationToken::new();
        let ps = LocalPageServer::start(wal.clone(), opts, cancel.clone())
            .await
            .unwrap();
        assert_eq!(ps.segments().len(), 1, "{:?}", ps.segments());
        assert_eq!(ps.segments()[0].lsn, Lsn(10));
        let drop_it = change(Some(10), None);
        assert_eq!(
            ps.change_segments(vec![drop_it.clone()]).await.unwrap(),
            vec![true]
        );
        assert_eq!(
            ps.change_segments(vec![drop_it]).await.unwrap(),
            vec![false]
        );
        assert!(ps.segments().is_empty());
        cancel.cancel();
    }

    #[tokio::test]
    async fn layers_in_object_storage_answer_as_memory_did_and_survive_a_lost_disk() {
        let dir = tempfile::tempdir().unwrap();
        let wal = wal(dir.path()).await;
        let mut opts = PageServerOptions::new(dir.path().to_owned());
        opts.config.freeze_bytes = 2048;
        opts.config.image_after_delta_bytes = 8192;
        let cancel = CancellationToken::new();
        let ps = LocalPageServer::start(wal.clone(), opts.clone(), cancel.clone())
            .await
            .unwrap();
        let mut model = Model::new();
        let mut last = Lsn::ZERO;
        // Big values spill into several blocks per layer; keys are rewritten and deleted.
        for round in 0..400u64 {
            let mut writes = Vec::new();
            for j in 0..3u64 {
                let key = format!("k{:04}", (round * 7 + j * 13) % 97).into_bytes();
                let value = if (round + j) % 5 == 0 {
                    None
                } else {
                    Some(
                        format!("{round}-{j}-{}", "x".repeat((round % 9) as usize * 300))
                            .into_bytes(),
                    )
                };
                writes.push((key, value));
            }
            let CommitOutcome::Committed(lsn) =
                wal.commit(commit(last.0, writes.clone())).await.unwrap()
            else {
                panic!("conflict")
            };
            for (k, v) in writes {
                model.entry(k).or_default().push((lsn, v));
            }
            last = lsn;
            if round % 50 == 0 {
                ps.checkpoint().await.unwrap();
            }
        }
        assert_eq!(ps.checkpoint().await.unwrap(), last);
        let report = ps.storage_report();
        assert_eq!(report.consistent_lsn, last);
        let kinds =
            |r: &StorageReport, kind: &str| r.layers.iter().filter(|l| l.kind == kind).count();
        assert!(kinds(&report, "delta") > 5, "{report:?}");
        assert!(kinds(&report, "image") >= 1, "{report:?}");
        for lsn in [1, 2, 57, 150, 151, 299, 300, last.0] {
            check(&ps, &model, Lsn(lsn)).await;
        }
        // A key never written does not look written by the newest image (a READ COMMITTED
        // statement that inserts it would run again for nothing).
        let newest_image = report
            .layers
            .iter()
            .filter(|l| l.kind == "image")
            .map(|l| l.lsn_end)
            .max()
            .unwrap();
        assert!(ps.version_lsn(b"never written", last).await.unwrap() < newest_image);
        // Writes after the checkpoint stay in memory and in the WAL only.
        let tail = vec![
            (b"k0001".to_vec(), Some(b"tail".to_vec())),
            (b"k0002".to_vec(), None),
        ];
        let CommitOutcome::Committed(tail_lsn) =
            wal.commit(commit(last.0, tail.clone())).await.unwrap()
        else {
            panic!("conflict")
        };
        for (k, v) in tail {
            model.entry(k).or_default().push((tail_lsn, v));
        }
        check(&ps, &model, tail_lsn).await;

        // Lose the pageserver and its disk; a new one restores from object storage + WAL.
        cancel.cancel();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(ps);
        std::fs::remove_dir_all(&opts.dir).unwrap();
        let cancel = CancellationToken::new();
        let ps = LocalPageServer::start(wal.clone(), opts.clone(), cancel.clone())
            .await
            .unwrap();
        let report = ps.storage_report();
        assert_eq!(report.consistent_lsn, last, "{report:?}");
        assert!(report.layers.iter().any(|l| l.kind == "image"));
        for lsn in [1, 150, last.0, tail_lsn.0] {
            check(&ps, &model, Lsn(lsn)).await;
        }

        // With no history window, layers below the newest image go and older reads are
        // refused rather than answered wrongly. (One pageserver writes the manifest at a time.)
        cancel.cancel();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut opts = opts.clone();
        opts.config.history_retention_secs = 0;
        opts.dir = dir.path().join("another");
        let ps = LocalPageServer::start(wal.clone(), opts, CancellationToken::new())
            .await
            .unwrap();
        let mut round = 0u64;
        let oldest = loop {
            let key = format!("k{:04}", round % 97).into_bytes();
            let v = Some(vec![b'y'; 900]);
            let CommitOutcome::Committed(lsn) = wal
                .commit(commit(
                    wal.last_committed_lsn().await.unwrap().0,
                    vec![(key.clone(), v.clone())],
                ))
                .await
                .unwrap()
            else {
                panic!("conflict")
            };
            model.entry(key).or_default().push((lsn, v));
            ps.checkpoint().await.unwrap();
            round += 1;
            let min = ps.storage_report().min_readable_lsn;
            if min > Lsn::ZERO {
                break min;
            }
            assert!(round < 500, "no layer was collected");
        };
        assert!(matches!(
            ps.get(b"k0001", Lsn(1)).await,
            Err(PageError::SnapshotTooOld { .. })
        ));
        check(&ps, &model, oldest).await;
        check(&ps, &model, ps.applied_lsn()).await;
        wal.shutdown().await;
    }
}
