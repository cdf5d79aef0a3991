//! Checkpoints: the protocol that lets LMDB commit without flushing.
//!
//! Every commit writes its log entries before LMDB commits (`MDB_NOSYNC`)
//! and is acknowledged once the log is flushed. LMDB's own writes reach the
//! disk whenever the operating system writes them, in any order, so after a
//! power loss its newest meta page may point at pages that never arrived.
//! A checkpoint makes one LMDB state safe to return to:
//!
//! 1. pin the current state `T` (a read transaction that holds LMDB's
//!    reader slot: no page of `T` can be reused while it is held — LMDB
//!    reuses a page only once no reader can see it) and read where the log
//!    ends in it;
//! 2. read `T`'s meta page from `data.mdb` (slot `T % 2` holds it until two
//!    more commits happen; then pin again);
//! 3. flush `data.mdb` (`force_sync`): every page of `T` is on disk;
//! 4. flush the log segments through `T`'s last entry;
//! 5. write the checkpoint record (`log/checkpoint.rs`: the LSN `T` holds,
//!    the meta page, where the log goes on, this boot's id) and flush it;
//! 6. drop the previous checkpoint's pin.
//!
//! Recovery (`write/recovery.rs`) trusts LMDB as it is when the record was
//! written in the current boot (a process crash loses nothing the operating
//! system holds); otherwise it writes the record's meta page into both meta
//! slots — `T`'s pages are intact because they were flushed and pinned —
//! and replays the log from `T`'s LSN on.
//!
//! One process per database directory owns the checkpoints (an exclusive
//! lock on `wal/owner.lock`): it pins and takes them on a background thread.
//! Every process about to write first makes sure an owner exists
//! ([`Engine::ensure_checkpoint_owner`], under LMDB's write lock); if none
//! does (the owner died), it becomes the owner and takes a checkpoint before
//! it writes anything, and only then clears the dead owner's stale reader
//! slots, whose pin protected the previous checkpoint until then.

use std::fs::{File, OpenOptions};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::log::checkpoint::{boot_id, Checkpoint, CheckpointFile};
use crate::log::state;
use crate::log::wal::WalPos;
use crate::storage::{meta, Pin};

/// When checkpoints are taken.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointPolicy {
    /// Take one at least this often while anything is written. Default 1 s.
    pub interval: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            interval: Duration::from_secs(1),
        }
    }
}

#[derive(Default)]
struct Timer {
    stop: bool,
    wake: bool,
}

/// Wakes the background thread; shared with it, so that it can wait
/// without keeping the database open.
#[derive(Default)]
struct Wakeup {
    timer: Mutex<Timer>,
    cv: Condvar,
}

/// The checkpoint state of one open database.
pub struct Checkpointer {
    file: Option<CheckpointFile>,
    owner_file: Option<File>,
    owner: Mutex<bool>,
    pin: Mutex<Option<Pin>>,
    last: Mutex<Option<Checkpoint>>,
    boot_id: String,
    policy: CheckpointPolicy,
    wakeup: Arc<Wakeup>,
    /// Serialises this process's checkpoints.
    running: Mutex<()>,
}

impl Checkpointer {
    /// The checkpoint state of the log directory `dir`, `last` being the
    /// current record.
    pub fn open(
        dir: &std::path::Path,
        file: CheckpointFile,
        last: Option<Checkpoint>,
        policy: CheckpointPolicy,
    ) -> Result<Checkpointer> {
        let owner_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("owner.lock"))?;
        Ok(Checkpointer {
            file: Some(file),
            owner_file: Some(owner_file),
            owner: Mutex::new(false),
            pin: Mutex::new(None),
            last: Mutex::new(last),
            boot_id: boot_id(),
            policy,
            wakeup: Arc::new(Wakeup::default()),
            running: Mutex::new(()),
        })
    }

    /// The checkpoint state of a read-only database: it never checkpoints.
    pub fn open_read_only(last: Option<Checkpoint>, policy: CheckpointPolicy) -> Checkpointer {
        Checkpointer {
            file: None,
            owner_file: None,
            owner: Mutex::new(false),
            pin: Mutex::new(None),
            last: Mutex::new(last),
            boot_id: boot_id(),
            policy,
            wakeup: Arc::new(Wakeup::default()),
            running: Mutex::new(()),
        }
    }

    /// The current checkpoint record.
    pub fn last(&self) -> Option<Checkpoint> {
        self.last.lock().clone()
    }

    /// Whether this process owns the checkpoints.
    pub fn is_owner(&self) -> bool {
        *self.owner.lock()
    }

    /// Stops the background thread.
    pub fn stop(&self) {
        self.wakeup.timer.lock().stop = true;
        self.wakeup.cv.notify_all();
    }
}

impl Engine {
    /// Makes sure a checkpoint owner exists before this process writes
    /// without flushing; if none does, becomes it and takes a checkpoint
    /// now. Called while holding LMDB's write lock (inside a write
    /// transaction), so that nothing is written between the check and the
    /// checkpoint.
    pub fn ensure_checkpoint_owner(&self) -> Result<()> {
        let cp = &self.checkpoints;
        {
            let mut owner = cp.owner.lock();
            if *owner {
                return Ok(());
            }
            let Some(owner_file) = &cp.owner_file else {
                return Err(Error::ReadOnly);
            };
            match owner_file.try_lock() {
                Ok(()) => *owner = true,
                // Another process owns the checkpoints (and pins the current one).
                Err(std::fs::TryLockError::WouldBlock) => return Ok(()),
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        self.checkpoint_with(false)?;
        // The previous owner's pin (if it died) is no longer needed.
        let cleared = self.store.clear_stale_readers()?;
        if cleared > 0 {
            tracing::info!(cleared, "released reader slots of processes that died");
        }
        Ok(())
    }

    /// Takes a checkpoint (see the module docs). Only the owner does.
    pub fn checkpoint(&self) -> Result<()> {
        self.checkpoint_with(true)
    }

    /// [`Engine::checkpoint`]; `lock`: take LMDB's write lock to pin and
    /// read the meta page (false: the caller holds it), so that no commit
    /// rewrites the meta slot while it is read.
    fn checkpoint_with(&self, lock: bool) -> Result<()> {
        let cp = &self.checkpoints;
        if !cp.is_owner() {
            return Ok(());
        }
        // Lock order: the writer lock, then `running` (a writer taking over
        // the checkpoints holds the first when it gets here).
        let held = if lock {
            Some(self.store.write()?)
        } else {
            None
        };
        let _one = cp.running.lock();
        let path = self.store.data_file();
        let (pin, end, meta) = {
            let (pin, end) = self.store.pin_reading(|txn| state::end(&self.store, txn))?;
            let meta = meta::read_txn(&path, pin.txnid())?.ok_or_else(|| Error::Corrupt {
                location: path.display().to_string(),
                message: format!("no meta page holds the committed state {}", pin.txnid()),
                lsn: None,
            })?;
            if let Some((_writing, _gate, txn)) = held {
                txn.abort();
            }
            (pin, end, meta)
        };
        // A state without a log yet (a new database, or one of format 1
        // about to move its log) is checkpointed like any other: its start
        // of the log is the first thing written after it.
        let end = end.unwrap_or(WalPos {
            segment: 0,
            offset: 0,
            next_lsn: 1,
            epoch: 0,
        });
        let from = cp
            .last
            .lock()
            .as_ref()
            .map_or(end.segment, |c| c.end.segment);
        self.store.force_sync()?;
        self.wal.sync_segments(from, end.segment)?;
        let seq = cp.last.lock().as_ref().map_or(1, |c| c.seq + 1);
        let record = Checkpoint {
            seq,
            boot_id: cp.boot_id.clone(),
            lsn: end.last_lsn(),
            txnid: pin.txnid(),
            end,
            meta,
        };
        cp.file.as_ref().ok_or(Error::ReadOnly)?.write(&record)?;
        self.wal.mark_synced(record.lsn, record.end.segment);
        self.log.durable.publish(record.lsn);
        *cp.pin.lock() = Some(pin);
        *cp.last.lock() = Some(record);
        Ok(())
    }

    /// Waits until a checkpoint covers LMDB transaction `txnid` (taking one
    /// when this process owns the checkpoints; otherwise waiting for the
    /// owner's next one): what is written to LMDB alone (consumer positions)
    /// is durable only then.
    pub fn checkpoint_through(&self, txnid: u64) -> Result<()> {
        let covered = |c: &Option<Checkpoint>| c.as_ref().is_some_and(|c| c.txnid >= txnid);
        if self.checkpoints.is_owner() {
            if !covered(&self.checkpoints.last()) {
                self.checkpoint()?;
            }
            return Ok(());
        }
        let Some(file) = &self.checkpoints.file else {
            return Err(Error::ReadOnly);
        };
        let deadline = std::time::Instant::now()
            + self.checkpoints.policy.interval * 5
            + Duration::from_secs(5);
        loop {
            let last = file.read()?;
            if covered(&last) {
                *self.checkpoints.last.lock() = last;
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                // The owner is gone or stuck: take over (or fail loudly).
                self.checkpoint_if_needed()?;
                if covered(&self.checkpoints.last()) {
                    return Ok(());
                }
                return Err(Error::Io(std::io::Error::other(
                    "no checkpoint covered this write in time; its durability is not confirmed",
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A checkpoint if anything was written since the last one, taking over
    /// the checkpoints if their owner died; then releases log segments no
    /// longer needed. Run by the background thread and at close.
    pub fn checkpoint_if_needed(&self) -> Result<()> {
        if !self.checkpoints.is_owner() {
            let (_writing, _gate, txn) = self.store.write()?;
            self.ensure_checkpoint_owner()?;
            txn.abort();
            if !self.checkpoints.is_owner() {
                return Ok(());
            }
        }
        let done = self.checkpoints.last().map(|c| c.txnid);
        if done != Some(self.store.last_txn_id() as u64) {
            self.checkpoint()?;
        }
        self.release_log()
    }

    /// Removes (or renames for reuse) the log segments that neither
    /// recovery (everything after the checkpoint) nor readers (everything
    /// retained) need. Under LMDB's write lock, so that no process starts a
    /// segment meanwhile.
    pub fn release_log(&self) -> Result<()> {
        let Some(c) = self.checkpoints.last() else {
            return Ok(());
        };
        let (_writing, _gate, txn) = self.store.write()?;
        let first = state::first_retained(&self.store, &txn)?;
        let current = state::end(&self.store, &txn)?.map_or(c.end.segment, |e| e.segment);
        let keep_from = first.min(c.lsn + 1);
        let r = self.wal.release_before(keep_from, current);
        txn.abort();
        r
    }

    /// Starts this process's background checkpoint thread.
    pub fn start_checkpoints(engine: &Arc<Engine>) -> Result<()> {
        let weak: Weak<Engine> = Arc::downgrade(engine);
        let wakeup = engine.checkpoints.wakeup.clone();
        let interval = engine.checkpoints.policy.interval;
        std::thread::Builder::new()
            .name("cs-checkpoint".into())
            .spawn(move || loop {
                {
                    let mut t = wakeup.timer.lock();
                    if !t.stop && !t.wake {
                        wakeup.cv.wait_for(&mut t, interval);
                    }
                    if t.stop {
                        return;
                    }
                    t.wake = false;
                }
                let Some(engine) = weak.upgrade() else { return };
                if let Err(e) = engine.checkpoint_if_needed() {
                    tracing::warn!(error = %e, "checkpoint failed; it will be retried");
                }
            })?;
        Ok(())
    }
}
