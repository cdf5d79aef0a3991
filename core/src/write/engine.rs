//! [`Engine`]: the shared state of one open database — the store, the cache
//! of compiled collection definitions, the change-log state and the group
//! commit queue. Handles (`Database` and everything built on it) hold it in
//! an `Arc`; nothing below the handles holds a handle.

use std::sync::Arc;

use super::group::Group;
use super::Durability;
use crate::error::{Error, Result};
use crate::exec::TargetCache;
use crate::log::signal::CommitSignal;
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
    /// Compiled collection definitions.
    pub targets: Arc<TargetCache>,
    /// Change-log state.
    pub log: LogState,
    /// What writes are accepted.
    pub access: Access,
    pub(super) group: Group,
    /// Every command committed, in commit order (tests replay them).
    #[cfg(test)]
    pub(crate) recorded: parking_lot::Mutex<Vec<crate::exec::statement::Command>>,
    /// Called when an explicit transaction that filled the map has released
    /// its LMDB transaction and the resize gate, before the map grows and
    /// the transaction is rebuilt (a unit test commits another writer there).
    #[cfg(test)]
    pub(crate) rebuild_hook: parking_lot::Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl Engine {
    /// State over an opened store.
    pub fn new(
        store: Store,
        access: Access,
        durability: Durability,
        retention: LogRetention,
    ) -> Engine {
        Engine {
            store,
            targets: Arc::new(TargetCache::default()),
            log: LogState {
                signal: CommitSignal::default(),
                retention,
                waiter: parking_lot::RwLock::new(None),
            },
            access,
            group: Group::new(durability),
            #[cfg(test)]
            recorded: parking_lot::Mutex::new(Vec::new()),
            #[cfg(test)]
            rebuild_hook: parking_lot::Mutex::new(None),
        }
    }

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
