//! Storage statistics: what `mdb_stat` shows for each table, and each
//! collection's document count and stored bytes.

use super::database::Database;
use crate::catalog::{self, Counter};
use crate::error::Result;
use crate::storage::Table;

/// LMDB's statistics of one table (`mdb_stat`), from one read snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableStats {
    /// The table: `meta`, `catalog`, `docs`, `indexes` or `log`.
    pub name: &'static str,
    /// Entries (keys) in the table.
    pub entries: u64,
    /// Height of its B-tree.
    pub depth: u32,
    /// Branch pages.
    pub branch_pages: u64,
    /// Leaf pages.
    pub leaf_pages: u64,
    /// Overflow pages (values larger than a page).
    pub overflow_pages: u64,
}

impl TableStats {
    /// All pages of the table.
    pub fn pages(&self) -> u64 {
        self.branch_pages + self.leaf_pages + self.overflow_pages
    }
}

/// One collection's size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionStats {
    /// The collection name.
    pub name: String,
    /// Documents (the collection's counter).
    pub documents: u64,
    /// Bytes of the stored (BSON) documents, keys excluded.
    pub document_bytes: u64,
    /// Secondary indexes.
    pub indexes: usize,
}

/// Sizes of a database ([`Database::stats`]), all from one read snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabaseStats {
    /// LMDB's page size in bytes.
    pub page_size: u32,
    /// Size of `data.mdb` in bytes.
    pub file_bytes: u64,
    /// Each table.
    pub tables: Vec<TableStats>,
    /// Each collection, by name.
    pub collections: Vec<CollectionStats>,
    /// The oldest retained and the newest LSN of the change log (`(0, 0)` when empty).
    pub log_bounds: (u64, u64),
}

impl Database {
    /// Table and collection sizes. Reads every document once (to add up the
    /// stored bytes), in one read snapshot that does not block writers.
    pub fn stats(&self) -> Result<DatabaseStats> {
        let store = &self.inner.store;
        let (_g, txn) = store.read()?;
        let mut tables = Vec::new();
        let mut page_size = 0;
        for t in [
            Table::Meta,
            Table::Catalog,
            Table::Docs,
            Table::Indexes,
            Table::Log,
        ] {
            let s = store.table(t).stat(&txn)?;
            page_size = s.page_size;
            tables.push(TableStats {
                name: t.name(),
                entries: s.entries as u64,
                depth: s.depth,
                branch_pages: s.branch_pages as u64,
                leaf_pages: s.leaf_pages as u64,
                overflow_pages: s.overflow_pages as u64,
            });
        }
        let mut collections = Vec::new();
        for meta in catalog::list(store, &txn)? {
            let documents = catalog::count(store, &txn, Counter::Docs(meta.id))?;
            let mut document_bytes = 0u64;
            store.scan_prefix(&txn, Table::Docs, &meta.prefix(), None, &mut |_, v| {
                document_bytes += v.len() as u64;
                Ok(true)
            })?;
            collections.push(CollectionStats {
                name: meta.name.clone(),
                documents,
                document_bytes,
                indexes: meta.indexes.len(),
            });
        }
        drop(txn);
        let file_bytes = std::fs::metadata(store.data_file())
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(DatabaseStats {
            page_size,
            file_bytes,
            tables,
            collections,
            log_bounds: self.log_bounds()?,
        })
    }
}
