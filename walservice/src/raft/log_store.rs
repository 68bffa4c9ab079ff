//! The Raft log on disk: an append-only file of CRC-framed entries, fsynced before an append is
//! acknowledged, plus the vote and committed marker in a small file replaced atomically.
//!
//! File layout: `magic "TRLG" | version u16`, then `len u32 | crc32c u32 | bincode(Entry)` per
//! entry. A torn tail (short frame or bad CRC) after a crash is cut off at open.

use super::{Entry, LogId, NodeId, StorageError, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, StorageIOError, Vote};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LOG_MAGIC: &[u8; 4] = b"TRLG";
const LOG_VERSION: u16 = 1;
const HEADER_LEN: u64 = 6;

#[derive(Default, Serialize, Deserialize)]
struct HardState {
    vote: Option<Vote<NodeId>>,
    last_purged: Option<LogId>,
}

struct Inner {
    dir: PathBuf,
    /// Highest log id known committed; a hint kept in its own unsynced file (see save_committed).
    committed: Option<LogId>,
    /// `raft.committed`, opened at the first save.
    committed_file: Option<File>,
    file: File,
    entries: BTreeMap<u64, Entry>,
    hard: HardState,
    fsync: bool,
}

/// The on-disk Raft log. Cloning shares the same log (the reader openraft asks for is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    /// Opens (or creates) the log under `dir`, cutting off a torn tail.
    pub fn open(dir: &Path, fsync: bool) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("raft.log");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut entries = BTreeMap::new();
        let valid_len = if bytes.len() < HEADER_LEN as usize {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(LOG_MAGIC)?;
            file.write_all(&LOG_VERSION.to_le_bytes())?;
            file.sync_all()?;
            HEADER_LEN
        } else {
            if &bytes[0..4] != LOG_MAGIC || bytes[4..6] != LOG_VERSION.to_le_bytes() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a ThunderDB raft log", path.display()),
                ));
            }
            let mut pos = HEADER_LEN as usize;
            while pos + 8 <= bytes.len() {
                let len =
                    u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
                let Some(body) = bytes.get(pos + 8..pos + 8 + len) else {
                    break;
                };
                if crc32c::crc32c(body) != crc {
                    break;
                }
                let entry: Entry = bincode::deserialize(body).map_err(io_err)?;
                entries.insert(entry.log_id.index, entry);
                pos += 8 + len;
            }
            if pos < bytes.len() {
                tracing::warn!(path = %path.display(), valid = pos, total = bytes.len(), "cutting torn tail off the raft log");
                file.set_len(pos as u64)?;
                file.sync_all()?;
            }
            pos as u64
        };
        file.seek(SeekFrom::Start(valid_len))?;
        let hard = match std::fs::read(dir.join("raft.state")) {
            Ok(b) => bincode::deserialize(&b).map_err(io_err)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => HardState::default(),
            Err(e) => return Err(e),
        };
        // A torn or missing hint only means the log is re-applied after the next election.
        let committed: Option<LogId> = std::fs::read(dir.join("raft.committed"))
            .ok()
            .and_then(|b| read_committed_hint(&b))
            .flatten();
        // Never claim more committed than the log holds (possible only with fsync off).
        let committed = committed.filter(|c| entries.get(&c.index).is_some_and(|e| e.log_id == *c));
        if let Some(purged) = hard.last_purged {
            entries.retain(|&i, _| i > purged.index);
        }
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_owned(),
                committed,
                committed_file: None,
                file,
                entries,
                hard,
                fsync,
            })),
        })
    }

    /// True when this node has never voted nor logged anything (a brand-new node).
    pub fn is_pristine(&self) -> bool {
        let g = self.inner.lock();
        g.entries.is_empty() && g.hard.vote.is_none() && g.hard.last_purged.is_none()
    }
}

/// `raft.committed`'s content: `len u32 | crc32c u32 | bincode(committed)`.
fn committed_hint_frame(committed: &Option<LogId>) -> io::Result<Vec<u8>> {
    let body = bincode::serialize(committed).map_err(io_err)?;
    let mut frame = Vec::with_capacity(8 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// The committed hint read back from `raft.committed`; `None` when the frame is torn or of
/// another format.
fn read_committed_hint(bytes: &[u8]) -> Option<Option<LogId>> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let body = bytes.get(8..8 + len)?;
    if crc32c::crc32c(body) != crc {
        return None;
    }
    bincode::deserialize(body).ok()
}

/// Appends `len u32 | crc32c u32 | bincode(entry)` to `buf`.
fn frame(e: &Entry, buf: &mut Vec<u8>) -> io::Result<()> {
    let body = bincode::serialize(e).map_err(io_err)?;
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    buf.extend_from_slice(&body);
    Ok(())
}

impl Inner {
    fn save_hard_state(&self) -> io::Result<()> {
        let tmp = self.dir.join("raft.state.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&bincode::serialize(&self.hard).map_err(io_err)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join("raft.state"))?;
        File::open(&self.dir)?.sync_all()
    }

    fn append_frames(&mut self, entries: &[Entry]) -> io::Result<()> {
        let mut buf = Vec::new();
        for e in entries {
            frame(e, &mut buf)?;
        }
        self.file.write_all(&buf)?;
        if self.fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Rewrites the file from the in-memory entries (after a truncate or purge). The new file
    /// is complete and fsynced before it replaces the old one, so a crash leaves one or the
    /// other, never a log without the entries after the snapshot.
    fn rewrite(&mut self) -> io::Result<()> {
        let tmp = self.dir.join("raft.log.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(LOG_MAGIC)?;
        f.write_all(&LOG_VERSION.to_le_bytes())?;
        let mut buf = Vec::new();
        for e in self.entries.values() {
            frame(e, &mut buf)?;
        }
        f.write_all(&buf)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, self.dir.join("raft.log"))?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join("raft.log"))?;
        self.file.seek(SeekFrom::End(0))?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self
            .inner
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let g = self.inner.lock();
        let last_purged_log_id = g.hard.last_purged;
        let last_log_id = g
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let mut g = self.inner.lock();
        g.hard.vote = Some(*vote);
        g.save_hard_state()
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.inner.lock().hard.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // The committed marker only lets a restarted node re-apply its log at once instead of
        // after the next election; it may lag, so it is not fsynced on every commit.
        // It is overwritten in place (a CRC frame: a torn write reads as no hint), which costs
        // a page-cache write instead of a file created and renamed per commit.
        let mut g = self.inner.lock();
        g.committed = committed;
        let frame = committed_hint_frame(&committed).map_err(|e| StorageIOError::write(&e))?;
        let file = match g.committed_file.take() {
            Some(f) => f,
            None => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(g.dir.join("raft.committed"))
                .map_err(|e| StorageIOError::write(&e))?,
        };
        let written = std::os::unix::fs::FileExt::write_all_at(&file, &frame, 0);
        g.committed_file = Some(file);
        written.map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.inner.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let inner = self.inner.clone();
        // Writing and fsyncing blocks; keep it off the Raft core's task.
        let result = tokio::task::spawn_blocking(move || {
            let mut g = inner.lock();
            g.append_frames(&entries)?;
            for e in entries {
                g.entries.insert(e.log_id.index, e);
            }
            Ok::<_, io::Error>(())
        })
        .await
        .map_err(io_err)
        .and_then(|r| r);
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = StorageIOError::write_logs(&e).into();
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut g = self.inner.lock();
        let _ = g.entries.split_off(&log_id.index);
        g.rewrite()
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut g = self.inner.lock();
        g.hard.last_purged = Some(log_id);
        g.save_hard_state()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        g.entries.retain(|&i, _| i > log_id.index);
        g.rewrite()
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_hint_round_trips_and_a_torn_one_reads_as_none() {
        let id = LogId::new(openraft::CommittedLeaderId::new(3, 1), 42);
        let frame = committed_hint_frame(&Some(id)).unwrap();
        assert_eq!(read_committed_hint(&frame), Some(Some(id)));
        assert_eq!(
            read_committed_hint(&committed_hint_frame(&None).unwrap()),
            Some(None)
        );
        // Overwritten in place by a shorter frame: the bytes after it are ignored.
        let mut longer = frame.clone();
        longer.extend_from_slice(&[7; 16]);
        assert_eq!(read_committed_hint(&longer), Some(Some(id)));
        assert_eq!(read_committed_hint(&frame[..frame.len() - 1]), None);
        let mut flipped = frame.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(read_committed_hint(&flipped), None);
        // The earlier format (bare bincode) is no frame.
        assert_eq!(
            read_committed_hint(&bincode::serialize(&Some(id)).unwrap()),
            None
        );
    }
}
