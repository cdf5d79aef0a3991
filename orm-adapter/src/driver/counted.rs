//! [`Counted`]: a driver wrapper that counts calls (query counts in tests,
//! cheap instrumentation in applications).

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use collection_store::typed::{SchemaSync, SyncReport};
use collection_store::UpdateResult;
use serde_json::Value;

use super::{
    Capabilities, CollectionRef, Doc, Driver, DriverTransaction, EntitySchema, FindQuery,
    InsertMode, InsertReport, OpOutcome, WriteOp,
};
use crate::error::Result;

/// Calls made through a [`Counted`] driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// `find` and `find_one`.
    pub finds: u64,
    /// `get` (point lookups by primary key).
    pub gets: u64,
    /// `count`.
    pub counts: u64,
    /// `insert_one`, `insert_many`, `update`, `delete`.
    pub writes: u64,
    /// `execute` and `commit` (atomic batches).
    pub batches: u64,
}

impl CallCounts {
    /// Every read (finds, gets and counts).
    pub fn reads(&self) -> u64 {
        self.finds + self.gets + self.counts
    }
}

/// Wraps a driver and counts its calls by kind.
#[derive(Debug, Default)]
pub struct Counted<D> {
    inner: D,
    finds: AtomicU64,
    gets: AtomicU64,
    counts: AtomicU64,
    writes: AtomicU64,
    batches: AtomicU64,
}

impl<D: Driver> Counted<D> {
    /// Counts the calls made to `inner`.
    pub fn new(inner: D) -> Self {
        Counted {
            inner,
            finds: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            counts: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        }
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The calls so far.
    pub fn calls(&self) -> CallCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CallCounts {
            finds: l(&self.finds),
            gets: l(&self.gets),
            counts: l(&self.counts),
            writes: l(&self.writes),
            batches: l(&self.batches),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

#[async_trait]
impl<D: Driver> Driver for Counted<D> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn find(&self, collection: &CollectionRef, query: FindQuery) -> Result<Vec<Doc>> {
        bump(&self.finds);
        self.inner.find(collection, query).await
    }

    async fn find_one(&self, collection: &CollectionRef, query: FindQuery) -> Result<Option<Doc>> {
        bump(&self.finds);
        self.inner.find_one(collection, query).await
    }

    async fn get(&self, collection: &CollectionRef, ids: Vec<Value>) -> Result<Vec<Doc>> {
        bump(&self.gets);
        self.inner.get(collection, ids).await
    }

    async fn count(&self, collection: &CollectionRef, filter: Value) -> Result<u64> {
        bump(&self.counts);
        self.inner.count(collection, filter).await
    }

    async fn insert_one(&self, collection: &CollectionRef, doc: Value) -> Result<Value> {
        bump(&self.writes);
        self.inner.insert_one(collection, doc).await
    }

    async fn insert_many(
        &self,
        collection: &CollectionRef,
        docs: Vec<Value>,
        mode: InsertMode,
    ) -> Result<InsertReport> {
        bump(&self.writes);
        self.inner.insert_many(collection, docs, mode).await
    }

    async fn update(
        &self,
        collection: &CollectionRef,
        filter: Value,
        update: Value,
        multi: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        bump(&self.writes);
        self.inner
            .update(collection, filter, update, multi, upsert)
            .await
    }

    async fn delete(&self, collection: &CollectionRef, filter: Value, multi: bool) -> Result<u64> {
        bump(&self.writes);
        self.inner.delete(collection, filter, multi).await
    }

    async fn execute(&self, ops: Vec<WriteOp>) -> Result<Vec<OpOutcome>> {
        bump(&self.batches);
        self.inner.execute(ops).await
    }

    async fn begin(&self) -> Result<DriverTransaction> {
        self.inner.begin().await
    }

    async fn commit(&self, tx: DriverTransaction) -> Result<Vec<OpOutcome>> {
        bump(&self.batches);
        self.inner.commit(tx).await
    }

    async fn rollback(&self, tx: DriverTransaction) -> Result<()> {
        self.inner.rollback(tx).await
    }

    async fn ensure_indexes(
        &self,
        schema: &EntitySchema,
        policy: SchemaSync,
    ) -> Result<SyncReport> {
        self.inner.ensure_indexes(schema, policy).await
    }
}
