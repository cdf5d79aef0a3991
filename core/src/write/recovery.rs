//! Opening a database directory: creating it crash-safely, deciding which
//! LMDB state to trust, and replaying the log after it (through the commit
//! loop), so the state always ends up holding every entry the log holds.
//!
//! - A new database is created in a temporary directory, flushed, and its
//!   `data.mdb` renamed into place before the directory is fsynced: a crash
//!   during creation leaves either no database or a complete empty one.
//! - The first process to open a directory (it gets `wal/users.lock`
//!   exclusively; every process holds it shared while open) recovers: when
//!   the checkpoint record was written in another boot (or the boot is
//!   unknown) and LMDB's newest state is not the checkpoint's, the
//!   checkpoint's meta page is written into both meta slots (see
//!   `write/checkpoint.rs` for why its pages are intact), and the log
//!   records after the state's end that parse and continue the sequence are
//!   re-applied. After a process crash (same boot) LMDB already holds every
//!   commit and nothing is replayed: records past its end are of commits
//!   that never completed. Either way the log's epoch is raised, so records
//!   left beyond the recovered end are never read as new ones. Later openers
//!   join the running state as it is.
//! - Replay is bounded by what was written since the last checkpoint
//!   (after a power loss) or since LMDB's last commit (after a process
//!   crash, when the operating system kept every write).

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;

use super::checkpoint::{CheckpointPolicy, Checkpointer};
use super::commit::{commit_batch, Local, Work};
use super::engine::{Access, Engine, LogState};
use super::group::Group;
use super::Durability;
use crate::error::{Error, Result};
use crate::exec::TargetCache;
use crate::log::checkpoint::{boot_id, CheckpointFile};
use crate::log::signal::CommitSignal;
use crate::log::wal::Wal;
use crate::log::{state, LogRetention};
use crate::storage::{meta, Store, StoreOptions};

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// LMDB options (map size, readers, read-only).
    pub store: StoreOptions,
    /// What writes are accepted.
    pub access: Access,
    /// When commits are acknowledged.
    pub durability: Durability,
    /// How much log to keep.
    pub retention: LogRetention,
    /// Size of new log segments.
    pub segment_size: u64,
    /// When checkpoints are taken.
    pub checkpoints: CheckpointPolicy,
}

fn corrupt(dir: &Path, message: impl Into<String>) -> Error {
    Error::Corrupt {
        location: dir.display().to_string(),
        message: message.into(),
        lsn: None,
    }
}

/// Creates an empty database in `dir` (which has no `data.mdb`) so that a
/// crash at any point leaves either nothing or a complete database.
fn create(dir: &Path, opts: &StoreOptions) -> Result<()> {
    let tmp = dir.join(format!(".creating-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    {
        let store = Store::open(&tmp, opts)?;
        store.force_sync()?;
    }
    std::fs::rename(tmp.join("data.mdb"), dir.join("data.mdb"))?;
    crate::log::segment::sync_dir(dir)?;
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}

impl Engine {
    /// Opens (creating, recovering) the database in `dir`.
    pub fn open(dir: &Path, opts: EngineOptions) -> Result<Arc<Engine>> {
        let read_only = opts.access == Access::ReadOnly;
        let data = dir.join("data.mdb");
        let wal_dir = dir.join("wal");
        if read_only {
            return Engine::open_read_only(dir, opts);
        }
        if !wal_dir.exists() {
            std::fs::create_dir_all(&wal_dir)?;
            crate::log::segment::sync_dir(dir)?;
        }
        let users = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(wal_dir.join("users.lock"))?;
        // Alone (the first to open): recover; otherwise join.
        let alone = match users.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => {
                users.lock_shared()?;
                false
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        };
        if alone {
            for entry in std::fs::read_dir(dir)? {
                let name = entry?.file_name();
                if name.to_string_lossy().starts_with(".creating-") {
                    std::fs::remove_dir_all(dir.join(&name))?;
                }
            }
            if !data.exists() {
                create(dir, &opts.store)?;
            }
        }
        let new_record = !wal_dir.join("checkpoint").exists();
        let file = CheckpointFile::open(&wal_dir)?;
        if new_record {
            crate::log::segment::sync_dir(&wal_dir)?;
        }
        let last = file.read()?;
        // Whether the machine may have restarted since the last checkpoint:
        // then LMDB's writes since it may be lost or torn.
        let rebooted = last.as_ref().is_some_and(|c| {
            let boot = boot_id();
            boot.is_empty() || c.boot_id != boot
        });
        if alone && rebooted {
            if let Some(c) = &last {
                {
                    let newest = meta::read_both(&data)
                        .ok()
                        .map(|(a, b)| a.txnid().max(b.txnid()));
                    if newest != Some(c.txnid) {
                        tracing::info!(
                            lsn = c.lsn,
                            "the machine restarted since the last checkpoint: returning to it and replaying the log"
                        );
                        meta::restore(&data, &c.meta)?;
                    }
                }
            }
        }
        let store = Store::open(
            dir,
            &StoreOptions {
                deferred_sync: true,
                ..opts.store.clone()
            },
        )?;
        let wal = Wal::open(&wal_dir, opts.segment_size, true)?;
        let checkpoints = Checkpointer::open(&wal_dir, file, last, opts.checkpoints.clone())?;
        let engine = Arc::new(Engine {
            store,
            wal,
            checkpoints,
            targets: Arc::new(TargetCache::default()),
            log: LogState {
                signal: CommitSignal::default(),
                durable: CommitSignal::default(),
                retention: opts.retention.clone(),
                waiter: parking_lot::RwLock::new(None),
            },
            access: opts.access,
            durability: opts.durability,
            group: Group::new(opts.durability),
            _users: Some(users),
            #[cfg(test)]
            recorded: parking_lot::Mutex::new(Vec::new()),
        });
        engine.recover(alone, rebooted)?;
        if alone {
            // Downgrade: later openers join instead of recovering.
            if let Some(u) = &engine._users {
                u.lock_shared()?;
            }
        }
        Engine::start_checkpoints(&engine)?;
        Ok(engine)
    }

    fn open_read_only(dir: &Path, opts: EngineOptions) -> Result<Arc<Engine>> {
        let data = dir.join("data.mdb");
        if !data.exists() {
            return Err(corrupt(dir, "no data.mdb: the directory holds no database"));
        }
        let wal_dir = dir.join("wal");
        let last = if wal_dir.join("checkpoint").exists() {
            CheckpointFile::open_read_only(&wal_dir)?.read()?
        } else {
            None
        };
        if let Some(c) = &last {
            let boot = boot_id();
            let newest = meta::read_both(&data)
                .ok()
                .map(|(a, b)| a.txnid().max(b.txnid()));
            if (boot.is_empty() || c.boot_id != boot) && newest != Some(c.txnid) {
                return Err(corrupt(
                    dir,
                    "the machine restarted since the last checkpoint; open the database read-write once to recover it",
                ));
            }
        }
        let store = Store::open(dir, &opts.store)?;
        let wal = Wal::open(&wal_dir, opts.segment_size, false)?;
        let checkpoints = Checkpointer::open_read_only(last, opts.checkpoints.clone());
        Ok(Arc::new(Engine {
            store,
            wal,
            checkpoints,
            targets: Arc::new(TargetCache::default()),
            log: LogState {
                signal: CommitSignal::default(),
                durable: CommitSignal::default(),
                retention: opts.retention.clone(),
                waiter: parking_lot::RwLock::new(None),
            },
            access: Access::ReadOnly,
            durability: opts.durability,
            group: Group::new(opts.durability),
            _users: None,
            #[cfg(test)]
            recorded: parking_lot::Mutex::new(Vec::new()),
        }))
    }

    /// Brings the log and the state together (see the module docs), then
    /// makes sure checkpoints are owned before anything is written.
    fn recover(&self, alone: bool, rebooted: bool) -> Result<()> {
        let end = {
            let (_g, txn) = self.store.read()?;
            state::end(&self.store, &txn)?
        };
        let work = match end {
            None => Some(Work::Local(Local::StartLog)),
            Some(end) if !self.wal.holds(end) => Some(Work::Local(Local::StartLog)),
            Some(end) if alone => {
                // After a restart, the log's durable tail is what LMDB may
                // have lost. After a process crash, LMDB holds every commit
                // (the operating system kept the writes), and records past
                // its end belong to commits that never happened: they are
                // left behind by raising the epoch, never replayed.
                let mut frames = Vec::new();
                let mut tail = if rebooted {
                    self.wal.scan_tail(end, &mut |lsn, frame| {
                        frames.push((lsn, frame.to_vec()));
                        Ok(())
                    })?
                } else {
                    end
                };
                tail.epoch = end.epoch.max(tail.epoch) + 1;
                if !frames.is_empty() {
                    tracing::info!(
                        from = frames[0].0,
                        entries = frames.len(),
                        "replaying log entries the state does not hold"
                    );
                }
                Some(Work::Local(Local::Replay { frames, end: tail }))
            }
            Some(_) => None,
        };
        if let Some(work) = work {
            let starts_log = matches!(work, Work::Local(Local::StartLog));
            if let Some(r) = commit_batch(self, &[&work], None).pop() {
                r?;
            }
            if starts_log {
                // No checkpoint record may exist yet (a new database, or one
                // from before the log): until the first checkpoint, recovery
                // trusts LMDB as it is, so this state must be on disk first.
                self.store.force_sync()?;
            }
        }
        // Before anything is written without flushing, checkpoints must be
        // owned (this takes one now when no other process owns them).
        let (_writing, _gate, txn) = self.store.write()?;
        let owned = self.ensure_checkpoint_owner();
        txn.abort();
        owned
    }
}
