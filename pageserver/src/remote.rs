//! Object storage: where layer files and the manifest that names them are the source of truth.
//!
//! `local` is a directory (the `dev` default, under the data directory); `s3` is AWS S3 or any
//! S3-compatible server. Both go through `object_store`, so the pageserver code is the same.

use crate::PageError;
use crate::layer_file::{LayerKind, LayerSummary};
use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use thunderdb_common::Lsn;
use thunderdb_common::config::StorageConfig;

const MANIFEST_FORMAT: &str = "thunderdb-pageserver-manifest";
const MANIFEST_VERSION: u32 = 1;

/// Object storage under a key prefix.
#[derive(Clone)]
pub struct RemoteStorage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// Where it is, for logs and the storage view.
    pub description: String,
    /// The directory of a local store, whose writes are fsynced here (object_store does not).
    local_root: Option<std::path::PathBuf>,
}

fn remote_err(what: &str, e: impl std::fmt::Display) -> PageError {
    PageError::Storage(format!("{what}: {e}"))
}

impl RemoteStorage {
    /// Opens the store `cfg` describes; a `local` store without a path lives in
    /// `default_dir`.
    pub fn open(cfg: &StorageConfig, default_dir: &Path) -> Result<RemoteStorage, PageError> {
        let mut local_root = None;
        let (store, description): (Arc<dyn ObjectStore>, String) = match cfg.kind.as_str() {
            "s3" => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&cfg.bucket)
                    .with_region(&cfg.region)
                    .with_virtual_hosted_style_request(!cfg.path_style)
                    .with_allow_http(cfg.allow_http);
                if !cfg.endpoint.is_empty() {
                    b = b.with_endpoint(&cfg.endpoint);
                }
                if !cfg.access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&cfg.access_key_id)
                        .with_secret_access_key(&cfg.secret_access_key);
                }
                let store = b.build().map_err(|e| remote_err("storage (s3)", e))?;
                let at = if cfg.endpoint.is_empty() {
                    "aws".to_string()
                } else {
                    cfg.endpoint.clone()
                };
                (Arc::new(store), format!("s3://{} at {at}", cfg.bucket))
            }
            _ => {
                let dir = if cfg.path.is_empty() {
                    default_dir.to_owned()
                } else {
                    cfg.path.clone().into()
                };
                std::fs::create_dir_all(&dir)
                    .map_err(|e| remote_err(&format!("creating {}", dir.display()), e))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| remote_err("storage (local)", e))?;
                local_root = Some(dir.clone());
                (Arc::new(store), format!("file://{}", dir.display()))
            }
        };
        Ok(RemoteStorage {
            store,
            prefix: cfg.prefix.trim_matches('/').to_string(),
            description,
            local_root,
        })
    }

    fn path(&self, name: &str) -> ObjectPath {
        ObjectPath::from(self.object_name(name))
    }

    /// The full object path of `name` (names are relative to `<prefix>/pageserver/`).
    pub fn object_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            format!("pageserver/{name}")
        } else {
            format!("{}/pageserver/{name}", self.prefix)
        }
    }

    /// Whether the store is a local directory (no cache in front of it pays).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// The store itself, for readers that address objects by [`object_name`](Self::object_name).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Stores an object; once this returns it survives a crash (a local store's file and
    /// directory are fsynced, as S3 is durable when it answers).
    pub async fn put(&self, name: &str, bytes: Bytes) -> Result<(), PageError> {
        let path = self.path(name);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| remote_err(&format!("uploading {name}"), e))?;
        if let Some(root) = &self.local_root {
            let file = root.join(path.as_ref());
            tokio::task::spawn_blocking(move || {
                std::fs::File::open(&file)?.sync_all()?;
                match file.parent() {
                    Some(dir) => std::fs::File::open(dir)?.sync_all(),
                    None => Ok(()),
                }
            })
            .await
            .map_err(|e| remote_err(&format!("syncing {name}"), e))?
            .map_err(|e| remote_err(&format!("syncing {name}"), e))?;
        }
        Ok(())
    }

    pub async fn get_range(&self, name: &str, start: u64, len: u64) -> Result<Bytes, PageError> {
        let end = start
            .checked_add(len)
            .ok_or_else(|| PageError::Storage(format!("{name}: range out of bounds")))?;
        self.store
            .get_range(&self.path(name), start..end)
            .await
            .map_err(|e| remote_err(&format!("reading {name}"), e))
    }

    pub async fn delete(&self, name: &str) -> Result<(), PageError> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote_err(&format!("deleting {name}"), e)),
        }
    }

    /// The manifest, or `None` for a store that has never held one.
    pub async fn read_manifest(&self) -> Result<Option<Manifest>, PageError> {
        let got = match self.store.get(&self.path(MANIFEST_NAME)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(remote_err("reading the manifest", e)),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| remote_err("reading the manifest", e))?;
        Manifest::parse(&bytes).map(Some)
    }

    /// Replaces the manifest (a single PUT: readers see the old one or the new one).
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<(), PageError> {
        let bytes = serde_json::to_vec_pretty(manifest).expect("the manifest serializes");
        self.put(MANIFEST_NAME, Bytes::from(bytes)).await
    }
}

const MANIFEST_NAME: &str = "manifest.json";

/// A layer file as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// Object name under `pageserver/`.
    pub name: String,
    /// Random per layer: names its blocks in the cache, so a block never answers for another
    /// layer's.
    pub uid: u64,
    pub kind: LayerKind,
    pub lsn_start: Lsn,
    pub lsn_end: Lsn,
    /// First and last key held, hex.
    pub key_start: String,
    pub key_last: String,
    pub size: u64,
    pub entries: u64,
    pub blocks: u32,
    pub index_offset: u64,
    pub index_len: u32,
    /// Commit time of the newest record in it (µs since the epoch).
    pub max_commit_micros: i64,
}

impl LayerMeta {
    pub fn from_summary(
        summary: &LayerSummary,
        uid: u64,
        size: u64,
        max_commit_micros: i64,
    ) -> LayerMeta {
        let kind = summary.kind.name();
        LayerMeta {
            name: format!(
                "layers/{kind}-{:016x}-{:016x}-{uid:016x}",
                summary.lsn_start.0, summary.lsn_end.0
            ),
            uid,
            kind: summary.kind,
            lsn_start: summary.lsn_start,
            lsn_end: summary.lsn_end,
            key_start: hex(&summary.key_start),
            key_last: hex(&summary.key_last),
            size,
            entries: summary.entries,
            blocks: summary.blocks,
            index_offset: summary.index_offset,
            index_len: summary.index_len,
            max_commit_micros,
        }
    }
}

/// What object storage holds for a pageserver: the layers that make up its state and the LSN
/// up to which they hold every committed record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Every record at or below this LSN is in the layers; the WAL after it completes them.
    pub consistent_lsn: Lsn,
    /// Reads below this LSN are refused: the layers they need were collected.
    pub min_readable_lsn: Lsn,
    pub layers: Vec<LayerMeta>,
    /// For each index prefix of the catalog table (hex), the LSN of its newest write at or
    /// below `consistent_lsn`.
    pub catalog_writes: BTreeMap<String, Lsn>,
    /// The newest columnar segment of each table that has one.
    #[serde(default)]
    pub segments: Vec<SegmentMeta>,
    /// Files of replaced segments, deleted once no scan that began before can still read them.
    #[serde(default)]
    pub retired_segment_files: Vec<RetiredFile>,
}

/// A table's rows at one LSN as Parquet files: compute reads them and merges the rows written
/// after `lsn` from the layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub table: u32,
    /// Every row committed at or below this LSN, and nothing after it.
    pub lsn: Lsn,
    /// The files are also exact at every LSN from this one up to `lsn` (nothing changed in
    /// between: the segment was moved up without rewriting it); none: only at `lsn`.
    #[serde(default)]
    pub exact_from: Option<Lsn>,
    /// The table definition the files were written with (compute's fingerprint of its
    /// columns); a scan of another definition does not use them.
    pub schema: String,
    pub rows: u64,
    pub files: Vec<SegmentFile>,
    /// When the segment was found current at `lsn` (µs since the epoch).
    pub checked_micros: i64,
}

impl SegmentMeta {
    /// The oldest LSN the files are exact at.
    pub fn exact_from(&self) -> Lsn {
        self.exact_from.unwrap_or(self.lsn)
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// One Parquet file of a segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentFile {
    /// Object name under `pageserver/`.
    pub name: String,
    pub size: u64,
    pub rows: u64,
}

/// An object to delete once `retired_micros` is far enough in the past.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredFile {
    pub name: String,
    pub retired_micros: i64,
}

impl Manifest {
    pub fn empty() -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            consistent_lsn: Lsn::ZERO,
            min_readable_lsn: Lsn::ZERO,
            layers: Vec::new(),
            catalog_writes: BTreeMap::new(),
            segments: Vec::new(),
            retired_segment_files: Vec::new(),
        }
    }

    fn parse(bytes: &[u8]) -> Result<Manifest, PageError> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| PageError::Storage(format!("manifest is not readable: {e}")))?;
        if m.format != MANIFEST_FORMAT || m.version != MANIFEST_VERSION {
            return Err(PageError::Storage(format!(
                "manifest is {} version {}, this pageserver reads {MANIFEST_FORMAT} version \
                 {MANIFEST_VERSION}",
                m.format, m.version
            )));
        }
        Ok(m)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manifest_round_trips_through_a_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = RemoteStorage::open(&StorageConfig::default(), dir.path()).unwrap();
        assert_eq!(store.read_manifest().await.unwrap(), None);
        let mut m = Manifest::empty();
        m.consistent_lsn = Lsn(42);
        m.catalog_writes.insert(hex(b"\0\0\0\0\0\0\0\x01"), Lsn(7));
        m.layers.push(LayerMeta {
            name: "layers/x".into(),
            uid: 9,
            kind: LayerKind::Image,
            lsn_start: Lsn(42),
            lsn_end: Lsn(42),
            key_start: hex(b"a"),
            key_last: hex(b"z"),
            size: 100,
            entries: 2,
            blocks: 1,
            index_offset: 60,
            index_len: 16,
            max_commit_micros: 5,
        });
        m.segments.push(SegmentMeta {
            table: 3,
            lsn: Lsn(40),
            exact_from: Some(Lsn(30)),
            schema: "f".into(),
            rows: 10,
            files: vec![SegmentFile {
                name: "segments/t3/x.parquet".into(),
                size: 99,
                rows: 10,
            }],
            checked_micros: 1,
        });
        store.write_manifest(&m).await.unwrap();
        assert_eq!(store.read_manifest().await.unwrap(), Some(m));
        assert!(dir.path().join("pageserver/manifest.json").is_file());
        store.put("bad", Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(unhex(&hex(b"\x00\xffab")), Some(b"\x00\xffab".to_vec()));
        assert_eq!(unhex("0"), None);
    }
}
