//! [`Wtx`]: the handle through which every statement writes. It wraps the LMDB
//! write transaction and, inside multi-statement transactions, records each
//! write so that the transaction can be re-applied after the map was grown.
//! It also collects the statement's logical operations for the change log.

use heed::{RoTxn, RwTxn};

use super::{Store, Table};
use crate::error::Result;
use crate::log::LogOp;

/// One recorded write: a put (`Some`) or a delete (`None`).
#[derive(Debug, Clone)]
pub struct WriteRecord {
    /// The table written.
    pub table: Table,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// A statement's view of the write transaction.
pub struct Wtx<'a, 'e> {
    txn: &'a mut RwTxn<'e>,
    store: &'a Store,
    record: Option<&'a mut Vec<WriteRecord>>,
    ops: Vec<LogOp>,
}

impl<'a, 'e> Wtx<'a, 'e> {
    /// Wraps a write transaction; with `record`, writes are appended to it.
    pub fn new(
        store: &'a Store,
        txn: &'a mut RwTxn<'e>,
        record: Option<&'a mut Vec<WriteRecord>>,
    ) -> Self {
        Wtx {
            txn,
            store,
            record,
            ops: Vec::new(),
        }
    }

    /// Records a logical operation for the change log entry of this statement.
    pub fn log(&mut self, op: LogOp) {
        self.ops.push(op);
    }

    /// Takes the logical operations recorded so far.
    pub fn take_ops(&mut self) -> Vec<LogOp> {
        std::mem::take(&mut self.ops)
    }

    /// The store.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// The transaction for reading (sees this transaction's own writes).
    pub fn ro(&self) -> &RoTxn<'e> {
        self.txn
    }

    /// Reads a value.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>> {
        Ok(self.store.table(table).get(self.txn, key)?)
    }

    /// Writes a value.
    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.store.table(table).put(self.txn, key, value)?;
        if let Some(rec) = self.record.as_deref_mut() {
            rec.push(WriteRecord {
                table,
                key: key.to_vec(),
                value: Some(value.to_vec()),
            });
        }
        Ok(())
    }

    /// Deletes a key; returns whether it existed.
    pub fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        let existed = self.store.table(table).delete(self.txn, key)?;
        if existed {
            if let Some(rec) = self.record.as_deref_mut() {
                rec.push(WriteRecord {
                    table,
                    key: key.to_vec(),
                    value: None,
                });
            }
        }
        Ok(existed)
    }
}

/// Re-applies recorded writes to a fresh transaction.
pub fn replay(store: &Store, txn: &mut RwTxn<'_>, records: &[WriteRecord]) -> Result<()> {
    for r in records {
        let db = store.table(r.table);
        match &r.value {
            Some(v) => db.put(txn, &r.key, v)?,
            None => {
                db.delete(txn, &r.key)?;
            }
        }
    }
    Ok(())
}
