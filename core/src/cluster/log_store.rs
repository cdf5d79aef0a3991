//! The Raft log and vote, in an LMDB environment of their own (not the
//! database's: the state machine's directory is replaced when a snapshot is
//! installed, the log is not).
//!
//! The environment is opened with LMDB's default flags, so every commit
//! flushes data and meta pages before it returns: `save_vote` returns, and
//! `append` calls openraft's `LogFlushed` callback, only after that flush.
//!
//! | key | value |
//! |---|---|
//! | `v` | the vote (JSON) |
//! | `p` | the last purged log id (JSON) |
//! | `l` ‖ index (u64 BE) | the entry (JSON) |

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use heed::types::Bytes;
use heed::{CommitOrAbort, Env, EnvOpenOptions, WithoutTls};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};

use super::types::{NodeId, TypeConfig};
use crate::error::{Error, Result};

type Db = heed::Database<'static, Bytes, Bytes>;

const VOTE: &[u8] = b"v";
const PURGED: &[u8] = b"p";
const ENTRY: u8 = b'l';
/// The largest entry key (a place of its own, so that a range may borrow it).
static LAST_ENTRY_KEY: [u8; 9] = [ENTRY, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

/// Address space of the log's map: 16 GiB (the file grows as used).
const MAP_SIZE: usize = 16 << 30;

fn entry_key(index: u64) -> [u8; 9] {
    let mut k = [ENTRY; 9];
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn io<E: std::fmt::Display>(e: E) -> AnyError {
    AnyError::error(e.to_string())
}

/// The Raft log store of one member. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct LogStore {
    env: Arc<Env<WithoutTls>>,
    db: Db,
}

impl LogStore {
    /// Opens (creating) the log in directory `dir`. A directory must be
    /// opened by one `LogStore` per process at a time.
    pub fn open(dir: &Path) -> Result<LogStore> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io_at(dir, e))?;
        let mut builder = EnvOpenOptions::new().read_txn_without_tls();
        builder.map_size(MAP_SIZE).max_dbs(2);
        // SAFETY: the default flags (every commit flushed); the node opens
        // each log directory once per process.
        let env = unsafe { builder.open(dir) }?;
        let wtxn = env.write_txn()?;
        let created = env.create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            Ok(CommitOrAbort::<_, ()>::Commit(
                opener.create_database::<Bytes, Bytes>(wtxn, Some("raft"))?,
            ))
        })?;
        let db = match created {
            CommitOrAbort::Commit(db) => db,
            CommitOrAbort::Abort(()) => {
                return Err(Error::Replication(
                    "the Raft log's table was not created".into(),
                ))
            }
        };
        Ok(LogStore {
            env: Arc::new(env),
            db,
        })
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> std::result::Result<Option<T>, AnyError> {
        let rtxn = self.env.read_txn().map_err(io)?;
        match self.db.get(&rtxn, key).map_err(io)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v).map(Some).map_err(io),
        }
    }

    fn entries(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> std::result::Result<Vec<Entry<TypeConfig>>, AnyError> {
        let rtxn = self.env.read_txn().map_err(io)?;
        let lo = entry_key(from);
        let hi = to.map(entry_key);
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (
            Bound::Included(&lo[..]),
            match &hi {
                Some(h) => Bound::Excluded(&h[..]),
                None => Bound::Included(&LAST_ENTRY_KEY[..]),
            },
        );
        let mut out = Vec::new();
        for item in self.db.range(&rtxn, &range).map_err(io)? {
            let (_, v) = item.map_err(io)?;
            out.push(serde_json::from_slice(v).map_err(io)?);
        }
        Ok(out)
    }

    fn last_entry_id(&self) -> std::result::Result<Option<LogId<NodeId>>, AnyError> {
        let rtxn = self.env.read_txn().map_err(io)?;
        let mut it = self.db.rev_prefix_iter(&rtxn, &[ENTRY]).map_err(io)?;
        match it.next() {
            None => Ok(None),
            Some(item) => {
                let (_, v) = item.map_err(io)?;
                let e: Entry<TypeConfig> = serde_json::from_slice(v).map_err(io)?;
                Ok(Some(e.log_id))
            }
        }
    }

    /// Deletes entries with index in `[from, to]` and, with `purged`,
    /// records it; one flushed commit.
    fn delete(
        &self,
        from: u64,
        to: u64,
        purged: Option<&LogId<NodeId>>,
    ) -> std::result::Result<(), AnyError> {
        let mut wtxn = self.env.write_txn().map_err(io)?;
        let (lo, hi) = (entry_key(from), entry_key(to));
        let range: (Bound<&[u8]>, Bound<&[u8]>) =
            (Bound::Included(&lo[..]), Bound::Included(&hi[..]));
        self.db.delete_range(&mut wtxn, &range).map_err(io)?;
        if let Some(p) = purged {
            let v = serde_json::to_vec(p).map_err(io)?;
            self.db.put(&mut wtxn, PURGED, &v).map_err(io)?;
        }
        wtxn.commit().map_err(io)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> std::result::Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let from = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(x) => x.checked_add(1),
            Bound::Excluded(x) => Some(*x),
            Bound::Unbounded => None,
        };
        self.entries(from, to)
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(
        &mut self,
    ) -> std::result::Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let purged: Option<LogId<NodeId>> = self
            .get_json(PURGED)
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last = self
            .last_entry_id()
            .map_err(|e| StorageIOError::read_logs(&e))?
            .or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(
        &mut self,
        vote: &Vote<NodeId>,
    ) -> std::result::Result<(), StorageError<NodeId>> {
        let put = || -> std::result::Result<(), AnyError> {
            let v = serde_json::to_vec(vote).map_err(io)?;
            let mut wtxn = self.env.write_txn().map_err(io)?;
            self.db.put(&mut wtxn, VOTE, &v).map_err(io)?;
            // Flushed before it returns (default LMDB flags).
            wtxn.commit().map_err(io)
        };
        put().map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(
        &mut self,
    ) -> std::result::Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.get_json(VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> std::result::Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let write = || -> std::result::Result<(), AnyError> {
            let mut wtxn = self.env.write_txn().map_err(io)?;
            for entry in entries {
                let v = serde_json::to_vec(&entry).map_err(io)?;
                self.db
                    .put(&mut wtxn, &entry_key(entry.log_id.index), &v)
                    .map_err(io)?;
            }
            wtxn.commit().map_err(io)
        };
        match write() {
            Ok(()) => {
                // Only now: the commit above flushed the entries.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(
        &mut self,
        log_id: LogId<NodeId>,
    ) -> std::result::Result<(), StorageError<NodeId>> {
        self.delete(log_id.index, u64::MAX, None)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(
        &mut self,
        log_id: LogId<NodeId>,
    ) -> std::result::Result<(), StorageError<NodeId>> {
        self.delete(0, log_id.index, Some(&log_id))
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
