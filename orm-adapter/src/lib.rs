//! # collection-store-orm
//!
//! An ORM layer over collection-store, the Rust counterpart of the original
//! store's MikroORM integration: an [`EntityManager`] with an identity map and
//! a unit of work, typed [`Repository`]s, relations loaded with `populate`
//! (select-in, one query per relation level), cascading persist and remove,
//! optimistic locking, schema-driven indexes, and filters from sea-query
//! conditions ([`condition`]) — all over a pluggable async [`Driver`].
//!
//! ```
//! use collection_store::{Database, Document, SchemaSync};
//! use collection_store_orm::{Orm, Ref, Query};
//! use sea_query::{Expr, ExprTrait};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Document, Serialize, Deserialize, Debug, Clone)]
//! #[document(collection = "authors")]
//! #[document(has_many(posts, Post.author, cascade(remove)))]
//! struct Author {
//!     #[document(id)] id: u64,
//!     name: String,
//! }
//!
//! #[derive(Document, Serialize, Deserialize, Debug, Clone)]
//! #[document(collection = "posts")]
//! struct Post {
//!     #[document(id)] id: u64,
//!     #[document(reference(cascade(persist)))] author: Ref<Author>,
//!     #[document(index)] title: String,
//!     #[document(version)] version: u64,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> collection_store_orm::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let orm = Orm::embedded(Database::open(dir.path())?)
//!     .entity::<Author>().entity::<Post>()
//!     .init(SchemaSync::KeepUnknown).await?;
//!
//! let em = orm.em();
//! let ann = collection_store_orm::Managed::new(Author { id: 1, name: "Ann".into() });
//! em.persist(Post { id: 10, author: Ref::to(&ann)?, title: "Hello".into(), version: 0 })?;
//! em.flush().await?;                                  // inserts the author (cascade), then the post
//!
//! let em = orm.em();                                  // a new request
//! let posts = em.find::<Post>(Query::from(Expr::col(PostIden::Title).like("Hel%"))).await?;
//! let authors = em.populate(&posts, Post::fields().author()).await?;   // one query
//! assert_eq!(authors[0].read().name, "Ann");
//! posts[0].write().title = "Hello again".into();
//! let report = em.flush().await?;                     // {"$set": {"title": ..}, "$inc": {"version": 1}}
//! assert_eq!((report.updated, posts[0].read().version), (1, 2));
//! # Ok(()) }
//! ```
//!
//! Crate map: [`driver`] (the boundary and its implementations), [`em`] (the
//! entity manager, its flush and populate), [`repository`], [`query`],
//! [`condition`] (sea-query translation), [`entity`] (`Managed`, `Ref`),
//! [`orm`] (registration and schema sync), [`blocking`].

#![warn(missing_docs)]

pub mod blocking;
pub mod condition;
pub mod driver;
pub mod em;
pub mod entity;
pub mod error;
pub mod orm;
pub mod query;
pub mod repository;

pub use blocking::Wait;
pub use driver::{Driver, EmbeddedDriver, ReplicaDriver};
pub use em::{Children, EntityManager, FlushReport};
pub use entity::{Entity, Managed, Ref};
pub use error::{OrmError, Result};
pub use orm::Orm;
pub use query::Query;
pub use repository::Repository;
pub use sea_query;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;
