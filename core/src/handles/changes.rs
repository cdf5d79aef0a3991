//! The database's change-log entry points: positions, reading frames for
//! followers, applying them on a follower, snapshots, change streams,
//! durable consumers, and the acknowledgement hook used by semi-synchronous
//! replication.

use std::path::Path;
use std::time::{Duration, Instant};

use super::collection::Collection;
use super::database::Database;
use super::watch::{ChangeStream, Consumer};
use crate::error::{Error, Result};
use crate::log::{signal, state, LogEntry, Lsn};
use crate::storage::Store;
use crate::write::commit::{commit_now, Local, Output, Work};
use crate::write::CommitWaiter;

/// Longest accepted consumer name, in bytes.
const MAX_CONSUMER_NAME: usize = 255;

impl Database {
    /// The LSN of the newest committed transaction (0 when the log is empty).
    pub fn last_lsn(&self) -> Result<Lsn> {
        let store = &self.inner.store;
        let (_g, txn) = store.read()?;
        state::last_lsn(store, &txn)
    }

    /// The oldest retained and the newest LSN; `(0, 0)` for an empty log.
    pub fn log_bounds(&self) -> Result<(Lsn, Lsn)> {
        let store = &self.inner.store;
        let (_g, txn) = store.read()?;
        state::bounds(store, &txn)
    }

    /// Raw frames (see ARCHITECTURE.md, "Change log") with LSN greater than
    /// `after`, consecutive and checksum-verified, stopping once `max_bytes`
    /// is reached (at least one frame when any exists). Fails with
    /// [`Error::LogTruncated`] when retention already removed entry `after + 1`.
    pub fn read_log_frames(&self, after: Lsn, max_bytes: usize) -> Result<Vec<(Lsn, Vec<u8>)>> {
        self.read_frames_upto(after, max_bytes, None)
    }

    /// [`Database::read_log_frames`] restricted to entries known durable (a
    /// primary ships nothing a power loss here could still undo).
    #[cfg_attr(not(feature = "replication"), allow(dead_code))]
    pub(crate) fn read_durable_log_frames(
        &self,
        after: Lsn,
        max_bytes: usize,
    ) -> Result<Vec<(Lsn, Vec<u8>)>> {
        self.read_frames_upto(after, max_bytes, Some(self.inner.durable_lsn()))
    }

    fn read_frames_upto(
        &self,
        after: Lsn,
        max_bytes: usize,
        upto: Option<Lsn>,
    ) -> Result<Vec<(Lsn, Vec<u8>)>> {
        let engine = &self.inner;
        let (_g, txn) = engine.store.read()?;
        state::read_frames(&engine.store, &txn, &engine.wal, after, max_bytes, upto)
    }

    /// Waits until an entry newer than `after` is durable (returning the
    /// newest durable LSN) or `timeout` passes. Flushes of this process wake
    /// it at once; those of other processes are noticed within 50 ms.
    #[cfg_attr(not(feature = "replication"), allow(dead_code))]
    pub(crate) fn wait_for_durable(&self, after: Lsn, timeout: Duration) -> Result<Lsn> {
        let deadline = Instant::now() + timeout;
        loop {
            let durable = self.inner.durable_lsn().min(self.last_lsn()?);
            let now = Instant::now();
            if durable > after || now >= deadline {
                return Ok(durable);
            }
            let slice = deadline.min(now + signal::POLL_INTERVAL);
            self.inner.log.durable.wait_past(after, slice);
        }
    }

    /// Decoded entries with LSN greater than `after` (at most `max`).
    pub fn read_log(&self, after: Lsn, max: usize) -> Result<Vec<LogEntry>> {
        let engine = &self.inner;
        let (_g, txn) = engine.store.read()?;
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        state::visit_frames(
            &engine.store,
            &txn,
            &engine.wal,
            after,
            None,
            &mut |lsn, frame| {
                out.push(LogEntry::decode(lsn, frame)?);
                Ok(out.len() < max)
            },
        )?;
        Ok(out)
    }

    /// Waits until a transaction newer than `after` is committed (returning
    /// the newest LSN) or `timeout` passes (returning the newest LSN, which
    /// may still be `after`). Commits of this process wake it at once; those
    /// of other processes are noticed within 50 ms.
    pub fn wait_for_commit(&self, after: Lsn, timeout: Duration) -> Result<Lsn> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.last_lsn()?;
            let now = Instant::now();
            if last > after || now >= deadline {
                return Ok(last);
            }
            let slice = deadline.min(now + signal::POLL_INTERVAL);
            self.inner.log.signal.wait_past(after, slice);
        }
    }

    /// Applies another database's log frames (consecutive LSNs, as returned by
    /// [`Database::read_log_frames`]) in one durable transaction that also
    /// copies them into this database's log under the same LSNs. Frames at or
    /// below this database's newest LSN are skipped, so re-applying is
    /// harmless; a gap fails with [`Error::LogGap`]. Returns the newest LSN.
    ///
    /// This is how replicas follow a primary; it is also allowed on a database
    /// opened with [`crate::DatabaseOptions::replica`], which refuses every other write.
    pub fn apply_log_frames(&self, frames: &[(Lsn, Vec<u8>)]) -> Result<Lsn> {
        let work = Work::Local(Local::ApplyFrames(frames.to_vec()));
        Ok(local_lsn(commit_now(&self.inner, &work, None)?))
    }

    /// Writes a consistent, compacted copy of the database (one file, the
    /// layout of `data.mdb`) to `path`, without blocking writers, and returns
    /// the LSN the copy contains. A directory holding that file as `data.mdb`
    /// opens as a database positioned at that LSN.
    pub fn snapshot_to(&self, path: impl AsRef<Path>) -> Result<Lsn> {
        let path = path.as_ref();
        self.inner.store.copy_compacted(path)?;
        let copy = Store::open_copy(path)?;
        let (_g, txn) = copy.read()?;
        state::last_lsn(&copy, &txn)
    }

    /// Installs (or with `None` removes) the acknowledgement hook: after each
    /// write that produced a log entry is durable locally, the writer's thread
    /// calls `waiter(lsn)` before returning; its error is the writer's result
    /// (the data stays committed). Semi-synchronous replication waits for
    /// replicas here.
    pub fn set_commit_waiter(&self, waiter: Option<CommitWaiter>) {
        *self.inner.log.waiter.write() = waiter;
    }

    /// A change stream of every transaction committed from now on.
    pub fn watch(&self) -> Result<ChangeStream> {
        Ok(ChangeStream::new(self.clone(), self.last_lsn()?))
    }

    /// A change stream of the transactions after `lsn` (an event's `lsn`, or
    /// [`ChangeStream::position`]): resumes without gaps or duplicates.
    /// Fails on first use with [`Error::LogTruncated`] when the log no longer
    /// reaches back that far.
    pub fn watch_from(&self, lsn: Lsn) -> ChangeStream {
        ChangeStream::new(self.clone(), lsn)
    }

    /// The durable consumer `name`, registered at the newest LSN on first use.
    /// Its position lives in the database; unacknowledged entries are kept
    /// (up to the retention's hard limits).
    pub fn consumer(&self, name: &str) -> Result<Consumer> {
        if name.is_empty() || name.len() > MAX_CONSUMER_NAME {
            return Err(Error::InvalidConsumer(format!(
                "a consumer name must be 1 to {MAX_CONSUMER_NAME} bytes long"
            )));
        }
        self.inner
            .submit(Work::Local(Local::RegisterConsumer(name.to_owned())))?;
        Ok(Consumer::new(self.clone(), name.to_owned()))
    }

    /// Registered durable consumers and their acknowledged LSNs.
    pub fn consumers(&self) -> Result<Vec<(String, Lsn)>> {
        let store = &self.inner.store;
        let (_g, txn) = store.read()?;
        state::consumers(store, &txn)
    }

    /// Forgets a durable consumer (its entries are no longer held). Returns
    /// whether it existed.
    pub fn drop_consumer(&self, name: &str) -> Result<bool> {
        let work = Work::Local(Local::DropConsumer(name.to_owned()));
        Ok(local_flag(self.inner.submit(work)?))
    }
}

/// The newest LSN a local write reports.
fn local_lsn(output: Output) -> Lsn {
    match output {
        Output::Local(_, lsn) => lsn,
        Output::Statements(_) | Output::Replicated(_) => 0,
    }
}

/// Whether a local write changed anything.
pub(crate) fn local_flag(output: Output) -> bool {
    matches!(output, Output::Local(true, _))
}

impl Collection {
    /// A change stream of this collection's document changes from now on,
    /// restricted to documents matching `filter` (`{}` for all; with a
    /// non-empty filter, deletes match on `{_id: key}` and collection/index
    /// events are left out). Equivalent to
    /// `db.watch()?.collection(name).filter(&filter)`.
    pub fn watch(&self, filter: serde_json::Value) -> Result<ChangeStream> {
        self.exec().watch()?.collection(self.name()).filter(&filter)
    }
}
