//! Secondary indexes: specifications, key extraction (compound, multikey,
//! sparse, partial) and maintenance inside the document's write transaction.
//! Builds over existing documents are DDL and live in `exec/ddl.rs`.

pub mod entries;
pub mod maintain;
pub mod spec;

pub use spec::{IndexMeta, IndexSpec};
