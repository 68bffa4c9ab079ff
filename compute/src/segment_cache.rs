//! A local disk cache in front of remote object storage for segment files. A Parquet file
//! never changes once written, so a file read once from S3 is read from local disk after, up
//! to a byte budget: the least recently used files go first. Everything but reads passes
//! through to the store behind it.

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Which files are on local disk, their sizes and when each was last read.
#[derive(Default)]
struct Held {
    files: HashMap<Path, (u64, u64)>,
    bytes: u64,
    clock: u64,
    /// Files larger than the whole budget: always read remotely, never downloaded again.
    too_large: std::collections::HashSet<Path>,
}

#[derive(Debug)]
pub(crate) struct SegmentCache {
    inner: Arc<dyn ObjectStore>,
    local: LocalFileSystem,
    dir: std::path::PathBuf,
    budget: u64,
    held: Mutex<Held>,
    /// One download at a time: concurrent readers of a file wait for its copy.
    fetch: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} files, {} bytes", self.files.len(), self.bytes)
    }
}

impl std::fmt::Display for SegmentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SegmentCache({} in {})", self.inner, self.dir.display())
    }
}

impl SegmentCache {
    /// A cache of at most `budget` bytes in `dir`, which it empties first (what an earlier
    /// process left there is not known to be complete).
    pub(crate) fn new(
        inner: Arc<dyn ObjectStore>,
        dir: &std::path::Path,
        budget: u64,
    ) -> std::io::Result<SegmentCache> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(dir)?;
        let local = LocalFileSystem::new_with_prefix(dir).map_err(std::io::Error::other)?;
        Ok(SegmentCache {
            inner,
            local,
            dir: dir.to_owned(),
            budget,
            held: Default::default(),
            fetch: Default::default(),
        })
    }

    /// Whether `location` is on local disk; marks it as just used.
    fn touch(&self, location: &Path) -> bool {
        let mut held = self.held.lock();
        held.clock += 1;
        let now = held.clock;
        match held.files.get_mut(location) {
            Some(entry) => {
                entry.1 = now;
                true
            }
            None => false,
        }
    }

    /// Copies `location` to local disk unless it is there; `false` when it does not fit.
    async fn ensure(&self, location: &Path) -> Result<bool> {
        if self.touch(location) {
            return Ok(true);
        }
        if self.held.lock().too_large.contains(location) {
            return Ok(false);
        }
        let _one = self.fetch.lock().await;
        if self.touch(location) {
            return Ok(true);
        }
        let bytes = self.inner.get(location).await?.bytes().await?;
        let size = bytes.len() as u64;
        if size > self.budget {
            self.held.lock().too_large.insert(location.clone());
            return Ok(false);
        }
        // The local store writes a temporary file and renames it: a reader never sees half.
        self.local.put(location, PutPayload::from(bytes)).await?;
        let victims: Vec<Path> = {
            let mut held = self.held.lock();
            held.clock += 1;
            let now = held.clock;
            held.files.insert(location.clone(), (size, now));
            held.bytes += size;
            let mut by_age: Vec<(u64, Path, u64)> = held
                .files
                .iter()
                .filter(|(p, _)| *p != location)
                .map(|(p, (size, used))| (*used, p.clone(), *size))
                .collect();
            by_age.sort_by_key(|(used, _, _)| *used);
            let mut victims = Vec::new();
            for (_, p, size) in by_age {
                if held.bytes <= self.budget {
                    break;
                }
                held.files.remove(&p);
                held.bytes -= size;
                victims.push(p);
            }
            victims
        };
        for p in victims {
            // A reader that has the file open keeps reading it.
            let _ = self.local.delete(&p).await;
        }
        Ok(true)
    }
}

#[async_trait]
impl ObjectStore for SegmentCache {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none();
        if plain {
            match self.ensure(location).await {
                Ok(true) => match self.local.get_opts(location, options.clone()).await {
                    Ok(got) => return Ok(got),
                    // Evicted meanwhile: read it remotely this time.
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, path = %location, "segment cache: reading remotely");
                    }
                },
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, path = %location, "segment cache: reading remotely");
                }
            }
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn reads_come_from_local_disk_within_the_budget() {
        let remote = Arc::new(InMemory::new());
        for (name, len) in [("a", 40usize), ("b", 40), ("c", 40), ("huge", 500)] {
            remote
                .put(
                    &Path::from(name),
                    PutPayload::from(vec![name.as_bytes()[0]; len]),
                )
                .await
                .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = SegmentCache::new(remote.clone(), &dir.path().join("c"), 100).unwrap();
        let read = |p: &'static str| {
            let cache = &cache;
            async move {
                cache
                    .get_range(&Path::from(p), 2..6)
                    .await
                    .unwrap()
                    .to_vec()
            }
        };
        assert_eq!(read("a").await, vec![b'a'; 4]);
        assert!(dir.path().join("c/a").is_file());
        // Served locally: the remote copy can go.
        remote.delete(&Path::from("a")).await.unwrap();
        assert_eq!(read("a").await, vec![b'a'; 4]);
        assert_eq!(read("b").await, vec![b'b'; 4]);
        // A third file exceeds the budget: the least recently used (a) goes.
        assert_eq!(read("c").await, vec![b'c'; 4]);
        assert!(!dir.path().join("c/a").exists());
        assert!(dir.path().join("c/b").is_file());
        // A file larger than the budget is read remotely and not kept.
        assert_eq!(read("huge").await, vec![b'h'; 4]);
        assert!(!dir.path().join("c/huge").exists());
        assert!(cache.get_range(&Path::from("a"), 0..1).await.is_err());
    }
}
