//! # collection-store
//!
//! An embedded document database: collections of JSON-like documents queried
//! with the MongoDB filter, update, sort and projection language, stored in
//! LMDB with ACID transactions that span collections.
//!
//! ## Typed collections
//! Model documents as structs with `#[derive(Document)]`; filters and updates
//! are checked against the fields' types at compile time (the attributes are
//! listed in [`typed`]):
//!
//! ```
//! use collection_store::{typed::Update, Database, Document};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Document, Serialize, Deserialize)]
//! #[document(collection = "users")]
//! struct User {
//!     #[document(id)]
//!     id: u64,
//!     #[document(index(unique))]
//!     email: String,
//!     age: u32,
//! }
//!
//! # fn main() -> collection_store::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path())?;
//! let users = db.typed::<User>()?;
//! users.insert_one(&User { id: 1, email: "ann@example.com".into(), age: 30 })?;
//! let f = User::fields();
//! users.update_one(f.id().eq(1), Update::new().inc(f.age(), 1))?;
//! let adults = users.find(f.age().gte(18)).to_vec()?;
//! assert_eq!(adults[0].age, 31);
//! # Ok(()) }
//! ```
//!
//! ## Untyped documents and transactions
//! The same collections through `serde_json::Value`; a transaction spans
//! collections and commits on `Ok`:
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
//!
//! ## Change streams
//! [`Database::watch`], [`Collection::watch`] and [`Database::watch_from`]
//! stream committed changes in commit order; [`Database::consumer`] keeps a
//! durable position:
//!
//! ```
//! # fn main() -> collection_store::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let db = collection_store::Database::open(dir.path())?;
//! use serde_json::json;
//! let users = db.collection("users")?;
//! let mut changes = users.watch(json!({}))?;
//! users.insert_one(json!({"_id": 1}))?;
//! let event = changes.next_timeout(std::time::Duration::from_secs(5))?.expect("the insert");
//! assert_eq!(event.id, Some(json!(1)));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

// The engine's layers, bottom to top; each uses only the ones above it in
// this list (see ARCHITECTURE.md, "Layers").
pub(crate) mod aggregate;
pub(crate) mod catalog;
pub(crate) mod doc;
pub(crate) mod error;
pub(crate) mod exec;
pub(crate) mod index;
pub(crate) mod keys;
pub(crate) mod log;
pub(crate) mod plan;
pub(crate) mod query;
pub(crate) mod storage;
pub(crate) mod write;
// The handles: public entry points.
#[cfg(feature = "cluster")]
pub mod cluster;
pub(crate) mod handles;
#[cfg(feature = "replication")]
pub mod replication;
pub mod typed;
pub(crate) mod verify;

pub use aggregate::{AggregateExplain, LookupExplain, StageExplain, DEFAULT_MEMORY_LIMIT};
pub use catalog::CollectionOptions;
#[cfg(feature = "derive")]
pub use collection_store_derive::{Document, Embedded};
pub use error::{Error, Result};
pub use handles::aggregate::{Aggregate, AggregateAs, AggregateAsIter, AggregateIter};
#[cfg(feature = "async")]
pub use handles::aggregate_async::AsyncAggregate;
#[cfg(feature = "async")]
pub use handles::async_api::{AsyncCollection, AsyncDatabase, AsyncFind};
pub use handles::check::{check_find, decode_document, document_json};
pub use handles::collection::{
    Collection, CollectionHandle, ExecSource, TxCollection, TxExec, UpdateOptions, UpdateResult,
};
pub use handles::database::{Database, DatabaseOptions};
pub use handles::find::{Find, FindIter};
pub use handles::stats::{CollectionStats, DatabaseStats, TableStats};
#[cfg(feature = "async")]
pub use handles::stream::AsyncChangeStream;
pub use handles::transaction::Transaction;
pub use handles::watch::{ChangeEvent, ChangeStream, Consumer};
pub use index::IndexSpec;
pub use log::{LogEntry, LogOp, LogRetention, Lsn, OpKind};
pub use plan::{ExecStats, Explain};
pub use typed::{Document, Embedded, SchemaSync, TypedCollection, TypedOptions};
pub use verify::VerifyReport;
pub use write::{CommitWaiter, Durability};

#[doc(hidden)]
pub use handles::testing;

/// The largest encoded document accepted (16 MiB, as in MongoDB).
pub const MAX_DOCUMENT_SIZE: usize = 16 * 1024 * 1024;
