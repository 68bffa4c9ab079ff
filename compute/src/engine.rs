//! The engine: what every session of one compute node shares.

use crate::catalog::RoleDef;
use crate::error::{Result, user_error};
use crate::session::Session;
use std::sync::Arc;
use thunderdb_common::SqlState;
use thunderdb_pageserver::PageService;
use thunderdb_walservice::WalService;

/// How the engine starts.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The database sessions may connect to.
    pub database: String,
    /// The bootstrap superuser, named in the configuration (OID 10).
    pub superuser: String,
    /// Columnar segments: whether and when the compactor writes them.
    pub columnar: thunderdb_common::config::ColumnarConfig,
    /// The compute node's own directory (its segment file cache); none: no cache.
    pub dir: Option<std::path::PathBuf>,
}

/// Shared state of a compute node: the services it reads from and commits to.
pub struct Engine {
    pub(crate) wal: Arc<dyn WalService>,
    pub(crate) pages: Arc<dyn PageService>,
    pub(crate) opts: EngineOptions,
    /// The catalog statements share while no DDL commits.
    pub(crate) catalogs: crate::catalog::CatalogCache,
    /// READ COMMITTED writers' row locks.
    pub(crate) row_locks: Arc<crate::row_locks::RowLocks>,
    /// Writes the tables' columnar segments.
    pub(crate) compactor: Arc<crate::columnar::Compactor>,
    /// Where scans read segment files: object storage, through a local cache when remote.
    pub(crate) segment_store: Arc<dyn object_store::ObjectStore>,
}

impl Engine {
    pub fn new(
        wal: Arc<dyn WalService>,
        pages: Arc<dyn PageService>,
        opts: EngineOptions,
    ) -> Arc<Engine> {
        let compactor = crate::columnar::Compactor::start(pages.clone(), opts.columnar.clone());
        let remote = pages.object_storage();
        let segment_store = match &opts.dir {
            Some(dir) if !remote.is_local() => {
                let dir = dir.join("segments");
                match crate::segment_cache::SegmentCache::new(
                    remote.store(),
                    &dir,
                    opts.columnar.cache_bytes,
                ) {
                    Ok(cache) => Arc::new(cache) as Arc<dyn object_store::ObjectStore>,
                    Err(e) => {
                        tracing::warn!(error = %e, dir = %dir.display(), "no segment cache");
                        remote.store()
                    }
                }
            }
            _ => remote.store(),
        };
        Arc::new(Engine {
            wal,
            pages,
            opts,
            compactor,
            segment_store,
            catalogs: Default::default(),
            row_locks: Default::default(),
        })
    }

    /// A new session for `user` on `database` (3D000 when the database does not exist).
    pub fn new_session(self: &Arc<Self>, user: &str, database: &str) -> Result<Session> {
        if database != self.opts.database {
            return Err(user_error(
                SqlState::INVALID_CATALOG_NAME,
                format!("database \"{database}\" does not exist"),
            ));
        }
        Ok(Session::new(self.clone(), user, database))
    }

    pub fn database(&self) -> &str {
        &self.opts.database
    }

    pub fn superuser(&self) -> &str {
        &self.opts.superuser
    }

    /// The role called `name` as last committed, for a frontend checking a login. The
    /// bootstrap superuser has no entry until `ALTER ROLE` gives it one; `None` then.
    pub async fn role(&self, name: &str) -> Result<Option<RoleDef>> {
        let lsn = self.wal.last_committed_lsn().await?;
        match self.pages.get(&crate::catalog::role_key(name), lsn).await? {
            Some(bytes) => crate::catalog::decode_role(&bytes).map(Some),
            None => Ok(None),
        }
    }
}
