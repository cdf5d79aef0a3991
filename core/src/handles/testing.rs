//! Raw access to a database's tables for tests that plant damage or
//! inconsistencies behind the engine's back (to prove that `verify()` and the
//! decoders notice). Not part of the API: nothing here keeps indexes,
//! counters or the change log in step, and its names may change at any time.

use super::database::Database;
use crate::error::Result;
use crate::storage::Table;

/// The engine's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawTable {
    /// Metadata: counters, id allocation, catalog version, consumer positions.
    Meta,
    /// Collection definitions by name.
    Catalog,
    /// Documents: collection id ‖ encoded primary key → BSON.
    Docs,
    /// Index entries: index id ‖ encoded key [‖ primary key] → primary key.
    Indexes,
    /// The change log: LSN → frame.
    Log,
}

impl RawTable {
    fn table(self) -> Table {
        match self {
            RawTable::Meta => Table::Meta,
            RawTable::Catalog => Table::Catalog,
            RawTable::Docs => Table::Docs,
            RawTable::Indexes => Table::Indexes,
            RawTable::Log => Table::Log,
        }
    }
}

/// Every key and value of `table` that starts with `prefix`, in key order.
pub fn entries(db: &Database, table: RawTable, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let store = &db.inner.store;
    let (_g, txn) = store.read()?;
    let mut out = Vec::new();
    store.scan_prefix(&txn, table.table(), prefix, None, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        Ok(true)
    })?;
    Ok(out)
}

/// Writes (`Some`) or deletes (`None`) one raw key in its own durable
/// transaction, bypassing everything the engine keeps in step.
pub fn set(db: &Database, table: RawTable, key: &[u8], value: Option<&[u8]>) -> Result<()> {
    let store = &db.inner.store;
    let (_writing, _gate, mut txn) = store.write()?;
    let t = store.table(table.table());
    match value {
        Some(v) => t.put(&mut txn, key, v)?,
        None => {
            t.delete(&mut txn, key)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// The 4-byte key prefix of a collection's documents (its internal id).
pub fn collection_prefix(db: &Database, name: &str) -> Result<Option<[u8; 4]>> {
    let store = &db.inner.store;
    let (_g, txn) = store.read()?;
    Ok(crate::catalog::load(store, &txn, name)?.map(|m| m.prefix()))
}

/// The 4-byte key prefix of an index's entries (its internal id).
pub fn index_prefix(db: &Database, collection: &str, index: &str) -> Result<Option<[u8; 4]>> {
    let store = &db.inner.store;
    let (_g, txn) = store.read()?;
    Ok(
        crate::catalog::load(store, &txn, collection)?.and_then(|m| {
            m.indexes
                .iter()
                .find(|ix| ix.name() == index)
                .map(|ix| ix.prefix())
        }),
    )
}

/// Where log entry `lsn` is stored: its segment file and the byte offset of
/// its frame in it (to damage it from a test).
pub fn log_frame(db: &Database, lsn: crate::log::Lsn) -> Result<(std::path::PathBuf, u64)> {
    db.inner.wal.frame_location(lsn)
}

/// How many log flushes acknowledged commits of this process so far (each
/// covers every commit written before it started: concurrent writers share
/// them).
pub fn log_flushes(db: &Database) -> u64 {
    db.inner.wal.flushes()
}
