//! Typed collections: Rust structs in and out, typed field paths, schema-driven
//! indexes.
//!
//! ```
//! use collection_store::typed::{Filter, Update};
//! use collection_store::{Database, Document, Embedded};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Embedded, Serialize, Deserialize, Debug, Clone, PartialEq)]
//! struct Address { city: String, zip: String }
//!
//! #[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
//! #[document(collection = "users")]
//! #[document(index(fields(email, age desc), name = "email_age"))]
//! struct User {
//!     #[document(id)] id: u64,
//!     #[document(index(unique))] email: String,
//!     age: u32,
//!     tags: Vec<String>,
//!     address: Address,
//! }
//!
//! # fn main() -> collection_store::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path())?;
//! let users = db.typed::<User>()?; // creates the indexes the struct declares
//! let ann = User {
//!     id: 1, email: "ann@example.com".into(), age: 30, tags: vec!["rust".into()],
//!     address: Address { city: "Oslo".into(), zip: "0150".into() },
//! };
//! users.insert_one(&ann)?;
//! let f = User::fields();
//! let found = users.find(f.age().gte(18).and(f.address().city().eq("Oslo"))).to_vec()?;
//! assert_eq!(found, vec![ann.clone()]);
//! users.update_one(f.id().eq(1), Update::new().inc(f.age(), 1).push(f.tags(), "db"))?;
//! assert_eq!(users.get(&1)?.unwrap().age, 31);
//! # Ok(()) }
//! ```
//!
//! # How it maps
//! * The collection is `#[document(collection = "...")]` (default: the struct
//!   name in snake_case). Its primary key field is the *serialized* name of the
//!   `#[document(id)]` field (or of the field serialized as `_id`): a field
//!   `id` makes a collection whose `id_field` is `"id"`; rename it to `_id`
//!   with `#[serde(rename = "_id")]` to use the default key field instead.
//!   The untyped API on such a collection keeps the key in `id` as well: a
//!   document there with an `_id` field is refused with
//!   [`crate::Error::IdFieldMismatch`].
//! * Documents are written through `serde_json` and the untyped API (so field
//!   names are validated the same way) and read straight from their stored BSON
//!   with [`crate::Find::to_vec_as`]. A stored document that does not fit the
//!   struct is reported as [`crate::Error::Decode`] naming it; `find_raw`
//!   gives the untyped view.
//! * Paths use serialized names (`#[serde(rename)]` and `rename_all` are
//!   honoured), so typed filters and updates lower to exactly the JSON one
//!   would hand to the untyped API ([`Filter::to_json`], [`Update::to_json`]).
//! * Timestamps in the shared schemas are `i64` milliseconds since the Unix
//!   epoch (they sort and compare as numbers, and index well).
//! * Every `i64` and `u64` round-trips: `u64` values above `i64::MAX` are
//!   stored as integral Decimal128 values (they compare and sort by value)
//!   and decode back into `u64` exactly.

mod collection;
mod filter;
mod path;
mod relation;
mod sync;
mod update;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use collection::{TxTypedCollection, TypedCollection, TypedFind, TypedIter};
pub use filter::{Filter, Sort};
pub use path::{Accepts, Array, Field, FieldRef, Numeric, Prefix, Text};
pub use relation::{Cascade, Reference, ReferenceVisitor, Relation, RelationKind, VersionField};
pub use sync::{plan_sync, IndexChange, SchemaSync, SyncPlan, SyncReport, TypedOptions};
pub use update::Update;

use crate::index::IndexSpec;

/// The `sea-query` crate the generated `...Iden` enums implement
/// `sea_query::Iden` for (feature `sea-query`).
#[cfg(feature = "sea-query")]
pub use sea_query;

/// A struct stored inside documents (or as a document): it has typed field
/// paths. Implemented by `#[derive(Embedded)]` and `#[derive(Document)]`.
pub trait Embedded: 'static {
    /// The accessor struct generated for this type (`UserFields<R>`): one
    /// method per field returning a [`Field<R, _>`] under a prefix.
    type Fields<R: 'static>: Send + Sync + 'static;

    /// The accessors for this struct stored at `prefix` inside documents of type `R`.
    fn fields_at<R: 'static>(prefix: Prefix) -> Self::Fields<R>;
}

/// A struct stored as the documents of one collection. Implemented by
/// `#[derive(Document)]`; see the [module documentation](self).
pub trait Document: Embedded + Serialize + DeserializeOwned {
    /// The primary key's type (`u64`, `String`, ...; `String` for an
    /// `Option<String>` id field, which is generated when `None`).
    type Id: Serialize + DeserializeOwned + Clone + std::fmt::Debug;

    /// The collection name.
    const COLLECTION: &'static str;
    /// The primary key field's serialized name (the collection's `id_field`).
    const ID_FIELD: &'static str;
    /// The schema version recorded in the catalog (`#[document(version = N)]`, default 1).
    const VERSION: u32;

    /// The secondary indexes the schema declares.
    fn indexes() -> Vec<IndexSpec>;

    /// The document's primary key; `None` when it is to be generated on insert.
    fn id(&self) -> Option<&Self::Id>;

    /// The serialized name of the optimistic-lock field (`#[document(version)]`
    /// on an integer field), if any. The engine ignores it; an ORM layer checks
    /// and increments it on every write.
    const VERSION_FIELD: Option<&'static str> = None;

    /// The relations the schema declares (`#[document(reference)]` fields and
    /// `#[document(has_many(..))]`), in declaration order.
    fn relations() -> Vec<Relation> {
        Vec::new()
    }

    /// Calls `visitor` with every `#[document(reference)]` field of this document.
    fn visit_references<V: ReferenceVisitor>(&self, visitor: &mut V) {
        let _ = visitor;
    }
}

/// Types that can be a typed document's primary key, with the key type they
/// carry. Integers, `String`, `bson::oid::ObjectId`, and `Option<String>` (the
/// store generates a 24-digit hex string when `None`).
///
/// Implement it for a newtype key (`struct UserId(u64)` serialized
/// transparently): `impl IdKey for UserId { type Key = UserId; fn key(&self) -> Option<&UserId> { Some(self) } }`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the primary key of a document",
    label = "this type cannot be a key",
    note = "keys are integers, `String`, `bson::oid::ObjectId`, or `Option<String>` (generated when None); floats, arrays and structs are not; implement `IdKey` for a newtype key"
)]
pub trait IdKey {
    /// The key type (the field type, or `T` for `Option<T>`).
    type Key: Serialize + DeserializeOwned + Clone + std::fmt::Debug;
    /// The key, or `None` when it is to be generated.
    fn key(&self) -> Option<&Self::Key>;
}

macro_rules! id_key {
    ($($t:ty),*) => {$(
        impl IdKey for $t {
            type Key = $t;
            fn key(&self) -> Option<&$t> { Some(self) }
        }
    )*};
}
id_key!(
    i8,
    i16,
    i32,
    i64,
    isize,
    u8,
    u16,
    u32,
    u64,
    usize,
    String,
    bson::oid::ObjectId
);

impl IdKey for Option<String> {
    type Key = String;
    fn key(&self) -> Option<&String> {
        self.as_ref()
    }
}

/// Support for generated code; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::relation::relation;
    pub use serde_json;

    /// Makes the index spec of a generated `indexes()`.
    pub fn index(fields: Vec<(&str, i32)>) -> crate::IndexSpec {
        crate::IndexSpec::new(fields)
    }

    /// Parses a partial filter checked as JSON at compile time.
    pub fn partial(json: &str) -> serde_json::Value {
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
    }
}

/// Implements `sea_query::Iden` for a generated `...Iden` enum when the
/// `sea-query` feature is enabled (expands to nothing otherwise).
#[cfg(feature = "sea-query")]
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sea_query_iden {
    ($name:ident) => {
        impl $crate::typed::sea_query::Iden for $name {
            fn unquoted(&self) -> &str {
                self.as_str()
            }
        }
    };
}

/// Implements `sea_query::Iden` for a generated `...Iden` enum when the
/// `sea-query` feature is enabled (expands to nothing otherwise).
#[cfg(not(feature = "sea-query"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_sea_query_iden {
    ($name:ident) => {};
}
