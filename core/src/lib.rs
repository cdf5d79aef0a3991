//! # collection-store
//!
//! An embedded document database: collections of JSON-like documents queried
//! with the MongoDB filter, update, sort and projection language, stored in
//! LMDB with ACID transactions that span collections.
//!
//! ```
//! use collection_store::{Database, UpdateOptions};
//! use serde_json::json;
//!
//! # fn main() -> collection_store::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path())?;
//! let users = db.collection("users")?;
//! users.insert_one(json!({"_id": 1, "name": "Ann", "age": 30}))?;
//! let adults = users.find(json!({"age": {"$gte": 18}})).sort(json!({"age": -1})).to_vec()?;
//! assert_eq!(adults.len(), 1);
//!
//! db.transaction(|tx| {
//!     let orders = tx.collection("orders")?;
//!     orders.insert_one(json!({"user": 1, "total": 9.5}))?;
//!     tx.collection("users")?.update_one(json!({"_id": 1}), json!({"$inc": {"orders": 1}}))?;
//!     Ok(())
//! })?;
//! assert_eq!(users.find_one(json!({"_id": 1}))?.unwrap()["orders"], 1);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod aggregate;
#[cfg(feature = "async")]
pub mod async_api;
pub mod catalog;
pub mod collection;
pub mod db;
pub mod doc;
pub mod error;
pub(crate) mod exec;
pub mod find;
pub mod index;
pub mod keys;
pub mod log;
pub mod plan;
pub mod query;
#[cfg(feature = "replication")]
pub mod replication;
pub mod storage;
pub mod txn;
pub mod typed;
pub mod verify;
pub mod write;

#[cfg(feature = "async")]
pub use aggregate::AsyncAggregate;
pub use aggregate::{Aggregate, AggregateAs, AggregateExplain, AggregateIter};
#[cfg(feature = "async")]
pub use async_api::{AsyncCollection, AsyncDatabase, AsyncFind};
pub use catalog::CollectionOptions;
pub use collection::{
    Collection, CollectionHandle, ExecSource, TxCollection, TxExec, UpdateOptions, UpdateResult,
};
#[cfg(feature = "derive")]
pub use collection_store_derive::{Document, Embedded};
pub use db::{Database, DatabaseOptions};
pub use error::{Error, Result};
pub use find::{Find, FindIter};
pub use index::IndexSpec;
#[cfg(feature = "async")]
pub use log::AsyncChangeStream;
pub use log::{ChangeEvent, ChangeStream, Consumer, LogRetention, Lsn, OpKind};
pub use plan::{ExecStats, Explain};
pub use txn::Transaction;
pub use typed::{Document, Embedded, SchemaSync, TypedCollection, TypedOptions};
pub use verify::VerifyReport;
pub use write::Durability;

/// The largest encoded document accepted (16 MiB, as in MongoDB).
pub const MAX_DOCUMENT_SIZE: usize = 16 * 1024 * 1024;
