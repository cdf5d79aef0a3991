//! Explicit write transactions spanning collections.
//!
//! A [`Transaction`] is one LMDB write transaction (the commit loop's
//! [`OpenTxn`]). Each statement inside it runs in a nested LMDB transaction,
//! so a statement that fails (duplicate key, bad update, ...) leaves no trace
//! and the transaction stays usable; the caller decides whether to go on,
//! commit what succeeded, or roll back. What the transaction read and wrote
//! is recorded as a change set (statements as data plus a read set), which is
//! how it is rebuilt after the map had to grow and how a replicated mode can
//! validate it where it is applied.

use std::cell::RefCell;
use std::sync::Arc;

use heed::RoTxn;

use super::collection::{open_handle, Executor, TxCollection, TxExec};
use super::database::Database;
use crate::catalog::CollectionOptions;
use crate::error::{Error, Result};
use crate::exec::read::Reads;
use crate::exec::statement::{Command, Outcome, Statement};
use crate::exec::TargetCache;
use crate::log::state::now_ms;
use crate::storage::Store;
use crate::write::commit::OpenTxn;

/// An explicit write transaction; see [`Database::begin`] and [`Database::transaction`].
pub struct Transaction<'db> {
    db: &'db Database,
    open: RefCell<OpenTxn<'db>>,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").field("db", self.db).finish()
    }
}

fn busy() -> Error {
    Error::TransactionClosed("a statement of this transaction is running".into())
}

impl<'db> Transaction<'db> {
    pub(crate) fn begin(db: &'db Database) -> Result<Transaction<'db>> {
        Ok(Transaction {
            db,
            open: RefCell::new(OpenTxn::begin(&db.inner)?),
        })
    }

    /// A handle on collection `name` inside this transaction (created on first use).
    pub fn collection(&self, name: &str) -> Result<TxCollection<'_>> {
        self.open_collection(name, None)
    }

    /// Like [`Transaction::collection`], with options for a new collection.
    pub fn collection_with(
        &self,
        name: &str,
        options: CollectionOptions,
    ) -> Result<TxCollection<'_>> {
        self.open_collection(name, Some(options))
    }

    fn open_collection(
        &self,
        name: &str,
        options: Option<CollectionOptions>,
    ) -> Result<TxCollection<'_>> {
        open_handle(TxExec(self), name, options, || Ok(()))
    }

    /// What the transaction has done so far, as data: its statements with
    /// their outcomes and the reads they depended on. (A replicated mode
    /// sends this to where it is applied; tests check it here.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn change_set(&self) -> Result<Command> {
        let mut open = self.open.try_borrow_mut().map_err(|_| busy())?;
        Ok(open.change_set(now_ms()))
    }

    /// Commits: every statement that succeeded becomes visible and durable at
    /// once, with one change-log entry holding all their operations.
    pub fn commit(self) -> Result<()> {
        self.open.into_inner().commit(now_ms())?;
        Ok(())
    }

    /// Rolls back every statement of the transaction (dropping it does the same).
    pub fn rollback(self) {
        self.open.into_inner().rollback();
    }
}

impl Executor for Transaction<'_> {
    fn targets(&self) -> &Arc<TargetCache> {
        &self.db.inner.targets
    }

    fn reads_committed(&self) -> bool {
        false
    }

    fn read_dyn(
        &self,
        f: &mut dyn FnMut(&Store, &RoTxn<'_>, &mut Reads<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut open = self.open.try_borrow_mut().map_err(|_| busy())?;
        open.read(&mut |store, txn, reads| f(store, txn, &mut Some(reads)))
    }

    fn execute(
        &self,
        statement: Statement,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> Result<Outcome> {
        let mut open = self.open.try_borrow_mut().map_err(|_| busy())?;
        open.apply(statement, progress)
    }
}
