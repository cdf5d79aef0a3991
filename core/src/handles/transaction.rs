//! Explicit write transactions spanning collections.
//!
//! A [`Transaction`] is one LMDB write transaction. Each statement inside it
//! runs in a nested LMDB transaction, so a statement that fails (duplicate key,
//! bad update, ...) leaves no trace and the transaction stays usable; the
//! caller decides whether to go on, commit what succeeded, or roll back.

use std::cell::RefCell;

use heed::{RoTxn, RwTxn};

use crate::catalog::{self, CollectionOptions};
use crate::collection::{CollectionHandle, TxCollection, TxExec};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::exec::{Executor, TargetCache};
use crate::log::LogOp;
use crate::storage::{is_map_full, replay, GateGuard, Store, WriteRecord, Wtx};

thread_local! {
    static OPEN_WRITERS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks "this thread holds a write transaction on this database" so that a
/// second one on the same thread fails instead of waiting for itself.
pub(crate) struct WriterMark(usize);

impl WriterMark {
    pub(crate) fn acquire(db: &Database) -> Result<WriterMark> {
        let id = std::sync::Arc::as_ptr(&db.inner) as usize;
        OPEN_WRITERS.with(|w| {
            let mut w = w.borrow_mut();
            if w.contains(&id) {
                return Err(Error::TransactionInProgress);
            }
            w.push(id);
            Ok(WriterMark(id))
        })
    }
}

impl Drop for WriterMark {
    fn drop(&mut self) {
        let id = self.0;
        OPEN_WRITERS.with(|w| w.borrow_mut().retain(|x| *x != id));
    }
}

struct State<'db> {
    // Field order matters: the transaction must end before the gate opens.
    txn: Option<RwTxn<'db>>,
    gate: Option<GateGuard>,
    records: Vec<WriteRecord>,
    /// The logical operations of the statements that succeeded, for the log entry.
    ops: Vec<LogOp>,
    start_txn_id: usize,
}

/// An explicit write transaction; see [`Database::begin`] and [`Database::transaction`].
pub struct Transaction<'db> {
    db: &'db Database,
    state: RefCell<State<'db>>,
    _mark: WriterMark,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").field("db", self.db).finish()
    }
}

impl<'db> Transaction<'db> {
    pub(crate) fn begin(db: &'db Database) -> Result<Transaction<'db>> {
        let mark = WriterMark::acquire(db)?;
        let store = &db.inner.store;
        store.grow_if_nearly_full();
        let (gate, txn) = store.write()?;
        let start_txn_id = store.last_txn_id();
        Ok(Transaction {
            db,
            state: RefCell::new(State {
                txn: Some(txn),
                gate: Some(gate),
                records: Vec::new(),
                ops: Vec::new(),
                start_txn_id,
            }),
            _mark: mark,
        })
    }

    fn store(&self) -> &'db Store {
        &self.db.inner.store
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
        let meta = crate::exec::ExecutorExt::write(self, |w| {
            catalog::get_or_create(w, name, options.as_ref())
        })?;
        Ok(CollectionHandle::new(TxExec(self), meta.name, meta.options))
    }

    /// Commits: every statement that succeeded becomes visible and durable at
    /// once, with one change-log entry holding all their operations.
    pub fn commit(self) -> Result<()> {
        let db = self.db;
        let store = self.store();
        let mut st = self.state.into_inner();
        let lsn = loop {
            let mut txn = st
                .txn
                .take()
                .ok_or_else(|| Error::TransactionClosed("already finished".into()))?;
            let res = match db.inner.append_log(&mut txn, &st.ops) {
                Ok(lsn) => txn.commit().map(|()| lsn).map_err(Error::from),
                Err(e) => {
                    txn.abort();
                    Err(e)
                }
            };
            match res {
                Ok(lsn) => break lsn,
                Err(e) if is_map_full(&e) => grow_and_replay(store, &mut st)?,
                Err(e) => return Err(e),
            }
        };
        drop(st);
        drop(self._mark);
        db.inner.log.signal.publish(lsn);
        db.acknowledged(lsn)
    }

    /// Rolls back every statement of the transaction (dropping it does the same).
    pub fn rollback(self) {
        let mut st = self.state.into_inner();
        if let Some(txn) = st.txn.take() {
            txn.abort();
        }
    }
}

/// Aborts the LMDB transaction, doubles the map, and re-applies every write
/// made so far to a fresh transaction. Fails with [`Error::WriteConflict`] when
/// another process committed in between (this transaction's reads may be stale).
fn grow_and_replay<'db>(store: &'db Store, st: &mut State<'db>) -> Result<()> {
    loop {
        if let Some(txn) = st.txn.take() {
            txn.abort();
        }
        st.gate = None;
        store.grow()?;
        let (gate, mut txn) = store.write()?;
        if store.last_txn_id() != st.start_txn_id {
            txn.abort();
            return Err(Error::WriteConflict);
        }
        match replay(store, &mut txn, &st.records) {
            Ok(()) => {
                st.txn = Some(txn);
                st.gate = Some(gate);
                return Ok(());
            }
            Err(e) if is_map_full(&e) => {
                txn.abort();
                drop(gate);
            }
            Err(e) => return Err(e),
        }
    }
}

impl Executor for Transaction<'_> {
    fn targets(&self) -> &std::sync::Arc<TargetCache> {
        &self.db.inner.targets
    }

    fn write_job(&self, mut job: crate::write::group::Job) -> Result<()> {
        self.write_dyn(&mut |w| job(w))
    }

    fn reads_committed(&self) -> bool {
        false
    }

    fn read_dyn(&self, f: &mut dyn FnMut(&Store, &RoTxn<'_>) -> Result<()>) -> Result<()> {
        let st = self.state.try_borrow().map_err(|_| {
            Error::TransactionClosed("a statement of this transaction is running".into())
        })?;
        let txn = st
            .txn
            .as_ref()
            .ok_or_else(|| Error::TransactionClosed("already finished".into()))?;
        f(self.store(), txn)
    }

    fn write_dyn(&self, f: &mut dyn FnMut(&mut Wtx<'_, '_>) -> Result<()>) -> Result<()> {
        let store = self.store();
        let mut guard = self.state.try_borrow_mut().map_err(|_| {
            Error::TransactionClosed("a statement of this transaction is running".into())
        })?;
        let st = &mut *guard;
        loop {
            let parent = st
                .txn
                .as_mut()
                .ok_or_else(|| Error::TransactionClosed("already finished".into()))?;
            let mut child = store.nested(parent)?;
            let mut recs = Vec::new();
            let res = {
                let mut w = Wtx::new(store, &mut child, Some(&mut recs));
                f(&mut w).map(|()| w.take_ops())
            };
            let err = match res {
                Ok(ops) => match child.commit() {
                    Ok(()) => {
                        st.records.extend(recs);
                        st.ops.extend(ops);
                        return Ok(());
                    }
                    Err(e) => Error::from(e),
                },
                Err(e) => {
                    child.abort();
                    e
                }
            };
            if !is_map_full(&err) {
                return Err(err);
            }
            grow_and_replay(store, st)?;
        }
    }
}
