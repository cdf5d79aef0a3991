//! [`Engine`]: the shared state of one open database — the store, the
//! write-ahead log and its checkpoints, the cache of compiled collection
//! definitions, the change-log state and the group commit queue. Handles
//! (`Database` and everything built on it) hold it in an `Arc`; nothing
//! below the handles holds a handle.

use std::fs::File;
use std::sync::Arc;

use super::checkpoint::Checkpointer;
use super::group::Group;
use super::Durability;
use crate::error::{Error, Result};
use crate::exec::TargetCache;
use crate::log::signal::CommitSignal;
use crate::log::wal::Wal;
use crate::log::{LogRetention, Lsn};
use crate::storage::Store;

/// Called with a commit's LSN after it is durable locally and before the
/// writer is acknowledged; an error is returned to the writer (whose data
/// stays committed). See `Database::set_commit_waiter`.
pub type CommitWaiter = Arc<dyn Fn(Lsn) -> Result<()> + Send + Sync>;

/// The change-log state of an open database.
pub struct LogState {
    /// Wakes waiters when a commit of this process lands.
    pub signal: CommitSignal,
    /// Wakes waiters when this process made entries durable.
    pub durable: CommitSignal,
    /// How much of the log to keep.
    pub retention: LogRetention,
    /// The acknowledgement hook (semi-synchronous replication).
    pub waiter: parking_lot::RwLock<Option<CommitWaiter>>,
}

/// What writes an open database accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Statements, transactions, DDL, consumers.
    ReadWrite,
    /// Nothing: opened read-only.
    ReadOnly,
    /// Only a primary's log frames and consumer positions (a replica).
    Replica,
}

/// The shared state of one open database.
pub struct Engine {
    /// The LMDB environment and its tables.
    pub store: Store,
    /// The write-ahead log (`None` only for a read-only database that has none).
    pub wal: Wal,
    /// Checkpoints of the LMDB state.
    pub checkpoints: Checkpointer,
    /// Compiled collection definitions.
    pub targets: Arc<TargetCache>,
    /// Change-log state.
    pub log: LogState,
    /// What writes are accepted.
    pub access: Access,
    /// When commits are acknowledged.
    pub durability: Durability,
    pub(super) group: Group,
    /// Held shared for as long as this process has the database open (an
    /// opener that gets it exclusively is alone and may recover).
    pub(super) _users: Option<File>,
    /// Every command committed, in commit order (tests replay them).
    #[cfg(test)]
    pub(crate) recorded: parking_lot::Mutex<Vec<crate::exec::statement::Command>>,
}

impl Engine {
    /// Fails unless statements may write.
    pub fn check_writable(&self) -> Result<()> {
        match self.access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly | Access::Replica => Err(Error::ReadOnly),
        }
    }

    /// Fails unless local (unlogged) writes are allowed: everywhere but read-only.
    pub fn check_local_writable(&self) -> Result<()> {
        match self.access {
            Access::ReadOnly => Err(Error::ReadOnly),
            Access::ReadWrite | Access::Replica => Ok(()),
        }
    }

    /// Makes the log durable through `lsn` as the durability mode asks
    /// (nothing for `Durability::None`, whose entries are flushed by
    /// checkpoints).
    pub fn make_durable(&self, lsn: Lsn) -> Result<()> {
        if lsn == 0 || self.durability == Durability::None {
            return Ok(());
        }
        self.wal.sync_to(lsn)?;
        self.log.durable.publish(lsn);
        Ok(())
    }

    /// The newest LSN known durable: flushed by this process, covered by
    /// the last checkpoint, or flushed by another process of this boot.
    #[cfg_attr(not(feature = "replication"), allow(dead_code))]
    pub fn durable_lsn(&self) -> Lsn {
        let checkpoint = self.checkpoints.last().map_or(0, |c| c.lsn);
        self.wal
            .synced()
            .max(checkpoint)
            .max(self.wal.shared_durable())
    }

    /// Runs the acknowledgement hook for a commit at `lsn` (nothing for 0).
    pub fn acknowledge(&self, lsn: Lsn) -> Result<()> {
        if lsn == 0 {
            return Ok(());
        }
        let waiter = self.log.waiter.read().clone();
        match waiter {
            Some(w) => w(lsn),
            None => Ok(()),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.checkpoints.stop();
        if self.access != Access::ReadOnly && self.checkpoints.is_owner() {
            // A clean close leaves nothing to replay, even after a reboot.
            if let Err(e) = self.checkpoint_if_needed() {
                tracing::warn!(error = %e, "final checkpoint at close failed; the next open replays the log");
            }
        }
    }
}
