//! The in-memory layer: every version of every key, applied from the WAL stream in LSN order.

use crate::{PageError, PageService, Value};
use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use thunderdb_common::Lsn;
use thunderdb_common::wal::WalRecord;
use thunderdb_walservice::{WalError, WalService};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Versions of one key, oldest first; `None` is a deletion.
type Versions = Vec<(Lsn, Option<Value>)>;

/// How a pageserver starts.
#[derive(Clone)]
pub struct PageServerOptions {
    /// How long a read waits for its LSN to be applied before failing.
    pub wait_timeout: Duration,
}

impl Default for PageServerOptions {
    fn default() -> Self {
        PageServerOptions {
            wait_timeout: Duration::from_secs(30),
        }
    }
}

/// A pageserver whose whole state is one in-memory layer fed by a WAL subscription.
pub struct LocalPageServer {
    layer: RwLock<BTreeMap<Vec<u8>, Versions>>,
    /// For each index prefix of the catalog table, the LSNs of the records that wrote under it,
    /// ascending.
    writes_by_prefix: RwLock<HashMap<[u8; 8], Vec<Lsn>>>,
    applied_tx: watch::Sender<Lsn>,
    applied: watch::Receiver<Lsn>,
    opts: PageServerOptions,
    cancel: CancellationToken,
}

impl LocalPageServer {
    /// Starts following `wal` from the beginning of the log.
    pub fn start(
        wal: Arc<dyn WalService>,
        opts: PageServerOptions,
        cancel: CancellationToken,
    ) -> Arc<LocalPageServer> {
        let (applied_tx, applied) = watch::channel(Lsn::ZERO);
        let ps = Arc::new(LocalPageServer {
            layer: RwLock::new(BTreeMap::new()),
            writes_by_prefix: RwLock::new(HashMap::new()),
            applied_tx,
            applied,
            opts,
            cancel,
        });
        let follower = ps.clone();
        tokio::spawn(async move { follower.follow(wal).await });
        ps
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
        {
            let mut layer = self.layer.write();
            let mut by_prefix = self.writes_by_prefix.write();
            for w in &rec.writes {
                let value: Option<Value> = w.value.as_deref().map(Arc::from);
                layer
                    .entry(w.key.clone())
                    .or_default()
                    .push((rec.lsn, value));
                // Only the catalog's changes are asked for; data keys would grow this without
                // bound.
                if let Some(prefix) = w.key.first_chunk::<8>()
                    && prefix[..4] == thunderdb_common::TableId::CATALOG.0.to_be_bytes()
                {
                    let lsns = by_prefix.entry(*prefix).or_default();
                    if lsns.last() != Some(&rec.lsn) {
                        lsns.push(rec.lsn);
                    }
                }
            }
        }
        self.applied_tx.send_replace(rec.lsn);
    }

    async fn wait_for(&self, lsn: Lsn) -> Result<(), PageError> {
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
}

/// The newest version at or below `lsn` (a deletion too).
fn newest_at(versions: &Versions, lsn: Lsn) -> Option<&(Lsn, Option<Value>)> {
    versions.iter().rev().find(|(v, _)| *v <= lsn)
}

fn visible(versions: &Versions, lsn: Lsn) -> Option<&Value> {
    newest_at(versions, lsn).and_then(|(_, value)| value.as_ref())
}

#[async_trait]
impl PageService for LocalPageServer {
    async fn get(&self, key: &[u8], lsn: Lsn) -> Result<Option<Value>, PageError> {
        self.wait_for(lsn).await?;
        Ok(self
            .layer
            .read()
            .get(key)
            .and_then(|v| visible(v, lsn))
            .cloned())
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
        let layer = self.layer.read();
        let limit = limit.unwrap_or(usize::MAX);
        Ok(layer
            .range::<[u8], _>((
                std::ops::Bound::Included(start),
                std::ops::Bound::Excluded(end),
            ))
            .filter_map(|(k, v)| visible(v, lsn).map(|value| (k.clone(), value.clone())))
            .take(limit)
            .collect())
    }

    async fn version_lsn(&self, key: &[u8], lsn: Lsn) -> Result<Lsn, PageError> {
        self.wait_for(lsn).await?;
        Ok(self
            .layer
            .read()
            .get(key)
            .and_then(|versions| newest_at(versions, lsn))
            .map_or(Lsn::ZERO, |(v, _)| *v))
    }

    async fn newest_write(&self, prefixes: &[[u8; 8]], lsn: Lsn) -> Result<Lsn, PageError> {
        self.wait_for(lsn).await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use thunderdb_common::TxnId;
    use thunderdb_common::wal::KeyWrite;
    use thunderdb_walservice::{CommitOutcome, CommitRequest, LocalWalService, WalServiceOptions};

    #[tokio::test]
    async fn reads_are_versioned_by_lsn() {
        let dir = tempfile::tempdir().unwrap();
        let wal =
            LocalWalService::start(WalServiceOptions::single(dir.path().to_owned(), false, 16))
                .await
                .unwrap();
        wal.wait_ready(Duration::from_secs(10)).await.unwrap();
        let commit = |snapshot: u64, key: &str, value: Option<&str>| CommitRequest {
            txn_id: TxnId::random(),
            snapshot_lsn: Lsn(snapshot),
            writes: vec![KeyWrite {
                key: key.as_bytes().to_vec(),
                value: value.map(|v| v.as_bytes().to_vec()),
            }],
            read_keys: vec![],
            read_ranges: vec![],
        };
        assert_eq!(
            wal.commit(commit(0, "a", Some("1"))).await.unwrap(),
            CommitOutcome::Committed(Lsn(1))
        );
        assert_eq!(
            wal.commit(commit(1, "a", Some("2"))).await.unwrap(),
            CommitOutcome::Committed(Lsn(2))
        );
        assert_eq!(
            wal.commit(commit(2, "b", Some("x"))).await.unwrap(),
            CommitOutcome::Committed(Lsn(3))
        );
        assert_eq!(
            wal.commit(commit(3, "a", None)).await.unwrap(),
            CommitOutcome::Committed(Lsn(4))
        );
        // A loser: snapshot 0 but "b" was written at LSN 3.
        assert!(matches!(
            wal.commit(commit(0, "b", Some("y"))).await.unwrap(),
            CommitOutcome::Conflict { .. }
        ));
        let ps = LocalPageServer::start(
            wal.clone(),
            PageServerOptions::default(),
            CancellationToken::new(),
        );
        assert_eq!(
            ps.get(b"a", Lsn(1)).await.unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(
            ps.get(b"a", Lsn(2)).await.unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(ps.get(b"a", Lsn(4)).await.unwrap(), None);
        let rows = ps.scan(b"a", b"z", Lsn(3), None).await.unwrap();
        assert_eq!(rows.len(), 2);
        let rows = ps.scan(b"a", b"z", Lsn(4), None).await.unwrap();
        assert_eq!(rows.len(), 1);
        // Writes under two index prefixes of the catalog table: one at 5 and 7, two at 6.
        let catalog = thunderdb_common::TableId::CATALOG.0.to_be_bytes();
        let prefix = |index: u8| {
            let mut p = [0u8; 8];
            p[..4].copy_from_slice(&catalog);
            p[4..].copy_from_slice(&[0, 0, 0, index]);
            p
        };
        let (one, two) = (prefix(1), prefix(2));
        for (snapshot, p) in [(4, one), (5, two), (6, one)] {
            let key = String::from_utf8([p.as_slice(), b"k"].concat()).unwrap();
            wal.commit(commit(snapshot, &key, Some("v"))).await.unwrap();
        }
        assert_eq!(ps.newest_write(&[one], Lsn(4)).await.unwrap(), Lsn::ZERO);
        assert_eq!(ps.newest_write(&[one], Lsn(6)).await.unwrap(), Lsn(5));
        assert_eq!(ps.newest_write(&[one], Lsn(7)).await.unwrap(), Lsn(7));
        assert_eq!(ps.newest_write(&[two], Lsn(7)).await.unwrap(), Lsn(6));
        assert_eq!(ps.newest_write(&[one, two], Lsn(6)).await.unwrap(), Lsn(6));
        assert_eq!(
            ps.newest_write(&[*b"nothing!"], Lsn(7)).await.unwrap(),
            Lsn::ZERO
        );
        wal.shutdown().await;
    }

    #[tokio::test]
    async fn log_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal =
                LocalWalService::start(WalServiceOptions::single(dir.path().to_owned(), true, 16))
                    .await
                    .unwrap();
            wal.wait_ready(Duration::from_secs(10)).await.unwrap();
            for i in 0..5u64 {
                let r = CommitRequest {
                    txn_id: TxnId::random(),
                    snapshot_lsn: Lsn(i),
                    writes: vec![KeyWrite {
                        key: vec![i as u8],
                        value: Some(vec![1]),
                    }],
                    read_keys: vec![],
                    read_ranges: vec![],
                };
                wal.commit(r).await.unwrap();
            }
            wal.shutdown().await;
        }
        let wal =
            LocalWalService::start(WalServiceOptions::single(dir.path().to_owned(), true, 16))
                .await
                .unwrap();
        wal.wait_ready(Duration::from_secs(10)).await.unwrap();
        assert_eq!(wal.last_committed_lsn().await.unwrap(), Lsn(5));
        wal.shutdown().await;
    }
}
