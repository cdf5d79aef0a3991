//! [`Wtx`]: the handle through which every statement writes — the store and
//! its LMDB write transaction (or a nested one), nothing else. It knows no
//! document, index or log format: the layers above decide what to write.

use heed::{RoTxn, RwTxn};

use super::{Store, Table};
use crate::error::Result;

/// A statement's view of the write transaction.
pub struct Wtx<'a, 'e> {
    txn: &'a mut RwTxn<'e>,
    store: &'a Store,
}

impl<'a, 'e> Wtx<'a, 'e> {
    /// Wraps a write transaction.
    pub fn new(store: &'a Store, txn: &'a mut RwTxn<'e>) -> Self {
        Wtx { txn, store }
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
        Ok(())
    }

    /// Deletes a key; returns whether it existed.
    pub fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        Ok(self.store.table(table).delete(self.txn, key)?)
    }
}
