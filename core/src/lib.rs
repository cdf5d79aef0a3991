//! # collection-store
//!
//! An embedded document database: collections of JSON-like documents queried
//! with the MongoDB filter, update, sort and projection language, stored in
//! LMDB with ACID transactions that span collections.

#![warn(missing_docs)]

pub mod doc;
pub mod error;
pub mod keys;

pub use error::{Error, Result};

/// The largest encoded document accepted (16 MiB, as in MongoDB).
pub const MAX_DOCUMENT_SIZE: usize = 16 * 1024 * 1024;
