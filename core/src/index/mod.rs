//! Secondary indexes: specifications, key extraction (compound, multikey,
//! sparse, partial), maintenance inside the document's write transaction, and
//! builds over existing documents.

pub mod build;
pub mod entries;
pub mod maintain;
pub mod spec;

pub use spec::{IndexMeta, IndexSpec};
