//! The [`Driver`] boundary: everything the ORM asks of a store, as the
//! MikroORM driver boundary does (filters in the engine's MongoDB-style
//! language, documents as BSON), and nothing more. The entity manager never
//! reaches past it.
//!
//! Implementations: [`EmbeddedDriver`] (a [`collection_store::Database`] in
//! this process), [`ReplicaDriver`] (a read-only replica: every write is a
//! typed [`OrmError::Unsupported`]), and [`Counted`] (wraps any driver and
//! counts its calls).
//!
//! **Transactions.** An engine write transaction is bound to one OS thread
//! and must not live across an `.await`, so an async transaction cannot hold
//! one open while application code awaits. A [`DriverTransaction`] therefore
//! *buffers* its statements (with savepoints as marks in the buffer) and
//! [`Driver::commit`] runs the whole list in one ACID engine transaction on the
//! blocking pool: all of it or, when any statement fails or affects another
//! number of documents than it [`Expect`]s, none of it. Reads issued while a
//! transaction is open see committed data, not its buffered writes; a
//! [`WriteOp::Check`] validates, at commit, what was read (optimistic read
//! validation).

mod batch;
mod counted;
mod embedded;
mod read;
mod replica;
mod transaction;

use std::borrow::Cow;

use async_trait::async_trait;
use bson::RawDocumentBuf;
use collection_store::typed::{SchemaSync, SyncReport};
use collection_store::{Database, IndexSpec, UpdateResult};
use serde_json::Value;

pub use counted::{CallCounts, Counted};
pub use embedded::EmbeddedDriver;
pub use replica::ReplicaDriver;
pub use transaction::DriverTransaction;

use crate::error::{OrmError, Result};

/// A stored document as drivers return it: its BSON bytes (decoded into an
/// entity only by whoever needs it).
pub type Doc = RawDocumentBuf;

/// A collection as the driver needs to know it: its name and primary key field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectionRef {
    /// The collection name.
    pub name: Cow<'static, str>,
    /// The primary key field (`_id` unless the schema says otherwise).
    pub id_field: Cow<'static, str>,
}

impl CollectionRef {
    /// A collection reference.
    pub fn new(name: impl Into<Cow<'static, str>>, id_field: impl Into<Cow<'static, str>>) -> Self {
        CollectionRef {
            name: name.into(),
            id_field: id_field.into(),
        }
    }

    /// The collection of documents of type `T` (no allocation).
    pub fn of<T: collection_store::Document>() -> Self {
        CollectionRef::new(T::COLLECTION, T::ID_FIELD)
    }
}

/// A find statement: filter, sort, skip, limit and projection, all honoured.
#[derive(Debug, Clone, PartialEq)]
pub struct FindQuery {
    /// The filter document (`{}` matches everything).
    pub filter: Value,
    /// Sort document, e.g. `{"age": -1}`; `None` gives primary-key order.
    pub sort: Option<Value>,
    /// Results to skip.
    pub skip: u64,
    /// At most this many results (`None`: no limit).
    pub limit: Option<u64>,
    /// Projection document, e.g. `{"name": 1}`.
    pub projection: Option<Value>,
}

impl Default for FindQuery {
    fn default() -> Self {
        FindQuery::new(Value::Object(Default::default()))
    }
}

impl FindQuery {
    /// A query with `filter` and nothing else.
    pub fn new(filter: Value) -> Self {
        FindQuery {
            filter,
            sort: None,
            skip: 0,
            limit: None,
            projection: None,
        }
    }
}

/// How [`Driver::insert_many`] treats failing documents. Every mode reports
/// each failing document with its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsertMode {
    /// All or nothing: when any document fails, none is inserted (every
    /// document is still tried, so that all failures are reported).
    #[default]
    Atomic,
    /// Stop at the first failure; the documents before it are inserted.
    Ordered,
    /// Insert every document that can be inserted; report the others.
    Unordered,
}

/// What [`Driver::insert_many`] did.
#[derive(Debug, Default)]
pub struct InsertReport {
    /// `(position in the input, primary key)` of every inserted document.
    pub inserted: Vec<(usize, Value)>,
    /// `(position in the input, why)` of every document that failed.
    pub failed: Vec<(usize, OrmError)>,
    /// Positions not tried (after the first failure in [`InsertMode::Ordered`]).
    pub not_attempted: Vec<usize>,
    /// Positions that could be inserted but were not kept, because another
    /// document failed in [`InsertMode::Atomic`].
    pub rolled_back: Vec<usize>,
}

impl InsertReport {
    /// True when every document was inserted.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.not_attempted.is_empty() && self.rolled_back.is_empty()
    }
}

/// How many documents a batch statement must affect, or the batch fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// Any number.
    #[default]
    Any,
    /// Exactly this many (matched, for updates).
    Exactly(u64),
}

/// A cascade the driver follows while deleting: documents of `child` whose
/// `foreign_path` holds the primary key of a deleted document are deleted too,
/// and their own cascades followed, inside the same transaction.
#[derive(Debug, Clone)]
pub struct CascadeRule {
    /// The child collection.
    pub child: CollectionRef,
    /// The child's field that references the deleted document.
    pub foreign_path: String,
    /// The child type's relations (rules that continue from the child).
    pub next: fn() -> Vec<collection_store::typed::Relation>,
}

impl CascadeRule {
    /// The cascade-remove rules declared by `relations` (one-to-many with
    /// `cascade(remove)`).
    pub fn from_relations(relations: &[collection_store::typed::Relation]) -> Vec<CascadeRule> {
        relations
            .iter()
            .filter(|r| {
                r.kind == collection_store::typed::RelationKind::OneToMany && r.cascade.remove
            })
            .map(|r| CascadeRule {
                child: CollectionRef::new(r.target, r.target_id_field),
                foreign_path: r.path.clone(),
                next: r.target_relations,
            })
            .collect()
    }
}

/// One statement of an atomic batch ([`Driver::execute`]).
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Insert one document.
    Insert {
        /// Where.
        collection: CollectionRef,
        /// The document (JSON, as the engine's untyped API takes it).
        doc: Value,
    },
    /// Update operators applied to the documents matching `filter`.
    Update {
        /// Where.
        collection: CollectionRef,
        /// Which documents.
        filter: Value,
        /// The update document (`{"$set": {...}}`).
        update: Value,
        /// All matching documents (`true`) or the first.
        multi: bool,
        /// Documents that must match.
        expect: Expect,
    },
    /// Delete the documents matching `filter`, following `cascade`.
    Delete {
        /// Where.
        collection: CollectionRef,
        /// Which documents.
        filter: Value,
        /// All matching documents (`true`) or the first.
        multi: bool,
        /// Documents (of this collection) that must be deleted.
        expect: Expect,
        /// Cascades to follow from each deleted document.
        cascade: Vec<CascadeRule>,
    },
    /// Count the documents matching `filter` (inside the transaction, at
    /// commit) and fail the batch unless the count is as expected.
    Check {
        /// Where.
        collection: CollectionRef,
        /// Which documents.
        filter: Value,
        /// How many must match.
        expect: Expect,
    },
}

impl WriteOp {
    /// The statement kind, for messages.
    pub fn what(&self) -> &'static str {
        match self {
            WriteOp::Insert { .. } => "insert",
            WriteOp::Update { .. } => "update",
            WriteOp::Delete { .. } => "delete",
            WriteOp::Check { .. } => "check",
        }
    }

    /// The collection the statement names.
    pub fn collection(&self) -> &CollectionRef {
        match self {
            WriteOp::Insert { collection, .. }
            | WriteOp::Update { collection, .. }
            | WriteOp::Delete { collection, .. }
            | WriteOp::Check { collection, .. } => collection,
        }
    }
}

/// What one statement of a batch did.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    /// The inserted document's primary key.
    Inserted(Value),
    /// Documents matched and modified by an update.
    Updated {
        /// Matched.
        matched: u64,
        /// Modified.
        modified: u64,
    },
    /// Every document deleted, cascades included: `(collection, primary key)`.
    Deleted(Vec<(String, Value)>),
    /// Documents counted by a check.
    Checked(u64),
}

/// What a driver can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Writes (statements, batches, transactions, index builds) are accepted.
    pub writes: bool,
}

/// The storage boundary of the ORM (async; implementations run blocking
/// engine work off the async worker threads).
///
/// Every method that changes data reports exactly what it changed; a method a
/// driver cannot honour returns [`OrmError::Unsupported`] naming it.
#[async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug + 'static {
    /// The driver's name, for messages (`"embedded"`, `"replica"`).
    fn name(&self) -> &'static str;

    /// What the driver supports.
    fn capabilities(&self) -> Capabilities;

    /// The documents matching `query`, honouring its sort, skip, limit and projection.
    async fn find(&self, collection: &CollectionRef, query: FindQuery) -> Result<Vec<Doc>>;

    /// The first document matching `query` (its limit is replaced by 1).
    async fn find_one(&self, collection: &CollectionRef, query: FindQuery) -> Result<Option<Doc>> {
        let query = FindQuery {
            limit: Some(1),
            ..query
        };
        Ok(self.find(collection, query).await?.into_iter().next())
    }

    /// The documents with these primary keys (missing ones are left out),
    /// in the order of `ids`. Point lookups: cheap enough to run inline.
    async fn get(&self, collection: &CollectionRef, ids: Vec<Value>) -> Result<Vec<Doc>>;

    /// How many documents match `filter`.
    async fn count(&self, collection: &CollectionRef, filter: Value) -> Result<u64>;

    /// Inserts one document; returns its primary key.
    async fn insert_one(&self, collection: &CollectionRef, doc: Value) -> Result<Value>;

    /// Inserts documents in one transaction, reporting every failure per document.
    async fn insert_many(
        &self,
        collection: &CollectionRef,
        docs: Vec<Value>,
        mode: InsertMode,
    ) -> Result<InsertReport>;

    /// Applies `update` to the first (or, with `multi`, every) document
    /// matching `filter`; returns the real matched and modified counts.
    async fn update(
        &self,
        collection: &CollectionRef,
        filter: Value,
        update: Value,
        multi: bool,
        upsert: bool,
    ) -> Result<UpdateResult>;

    /// Deletes the first (or, with `multi`, every) document matching
    /// `filter`; returns how many were deleted.
    async fn delete(&self, collection: &CollectionRef, filter: Value, multi: bool) -> Result<u64>;

    /// Runs `ops` in one ACID transaction: every statement or none.
    async fn execute(&self, ops: Vec<WriteOp>) -> Result<Vec<OpOutcome>>;

    /// Starts a buffered transaction (see the [module documentation](self)).
    async fn begin(&self) -> Result<DriverTransaction> {
        if !self.capabilities().writes {
            return Err(OrmError::Unsupported {
                driver: self.name(),
                operation: "begin a transaction",
                reason: "it is read-only",
            });
        }
        Ok(DriverTransaction::new())
    }

    /// Commits a transaction: its statements (up to the savepoints still in
    /// force) run as one batch ([`Driver::execute`]).
    async fn commit(&self, tx: DriverTransaction) -> Result<Vec<OpOutcome>> {
        self.execute(tx.into_ops()).await
    }

    /// Rolls a transaction back: nothing of it reaches the store.
    async fn rollback(&self, tx: DriverTransaction) -> Result<()> {
        drop(tx);
        Ok(())
    }

    /// Brings the collection's indexes in line with `schema` under `policy`
    /// (missing built, changed rebuilt, undeclared kept or dropped) and
    /// records its schema version.
    async fn ensure_indexes(&self, schema: &EntitySchema, policy: SchemaSync)
        -> Result<SyncReport>;
}

/// What [`Driver::ensure_indexes`] needs to know about an entity type.
#[derive(Clone)]
pub struct EntitySchema {
    /// The collection.
    pub collection: CollectionRef,
    /// The declared secondary indexes (compound indexes keep every field).
    pub indexes: Vec<IndexSpec>,
    /// The schema version.
    pub version: u32,
    /// Reconciles an embedded database through the engine's typed API (the
    /// same code path as `Database::typed_with::<T>`).
    pub(crate) sync_embedded: fn(&Database, SchemaSync) -> collection_store::Result<SyncReport>,
}

impl std::fmt::Debug for EntitySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntitySchema")
            .field("collection", &self.collection)
            .field("indexes", &self.indexes)
            .field("version", &self.version)
            .finish()
    }
}

impl EntitySchema {
    /// The schema `#[derive(Document)]` declared for `T`.
    pub fn of<T: collection_store::Document>() -> Self {
        fn sync<T: collection_store::Document>(
            db: &Database,
            policy: SchemaSync,
        ) -> collection_store::Result<SyncReport> {
            let options = collection_store::typed::TypedOptions::default().sync(policy);
            Ok(db.typed_with::<T>(options)?.sync_report().clone())
        }
        EntitySchema {
            collection: CollectionRef::of::<T>(),
            indexes: T::indexes(),
            version: T::VERSION,
            sync_embedded: sync::<T>,
        }
    }
}

/// Runs blocking engine work on tokio's blocking pool when called inside a
/// runtime, and on the calling thread otherwise (the blocking API).
pub(crate) async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn_blocking(f).await {
            Ok(r) => r,
            Err(e) => Err(OrmError::Task(e.to_string())),
        },
        Err(_) => f(),
    }
}
