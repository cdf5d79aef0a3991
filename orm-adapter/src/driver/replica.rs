//! [`ReplicaDriver`]: the ORM reading from a read replica.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use collection_store::replication::Replica;
use collection_store::typed::{plan_sync, SchemaSync, SyncReport};
use collection_store::{Database, UpdateResult};
use parking_lot::Mutex;
use serde_json::Value;

use super::read::Reader;
use super::{
    off_thread, Capabilities, CollectionRef, Doc, Driver, EntitySchema, FindQuery, InsertMode,
    InsertReport, OpOutcome, WriteOp,
};
use crate::error::{OrmError, Result};

enum Source {
    /// A following replica: its current database changes with snapshot installs.
    Replica(Arc<Replica>),
    /// One fixed database.
    Fixed,
}

/// A read-only driver over a replica: queries are served from the replica's
/// local database (the current generation, which changes when the replica
/// installs a snapshot); every write, batch and transaction is refused with
/// [`OrmError::Unsupported`], and [`Driver::ensure_indexes`] checks that the
/// primary built the declared indexes instead of building them.
pub struct ReplicaDriver {
    source: Source,
    reader: Mutex<(PathBuf, Arc<Reader>)>,
}

impl std::fmt::Debug for ReplicaDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaDriver")
            .field("path", &self.reader.lock().0)
            .finish()
    }
}

impl ReplicaDriver {
    /// A driver reading from a running replica.
    pub fn new(replica: Arc<Replica>) -> Self {
        let db = replica.database();
        ReplicaDriver {
            reader: Mutex::new((db.path().to_path_buf(), Arc::new(Reader::new(db)))),
            source: Source::Replica(replica),
        }
    }

    /// A driver reading from a replica database opened without following
    /// (`collection_store::replication::open_replica_dir`), or any database
    /// that should only be read through the ORM.
    pub fn from_database(db: Database) -> Self {
        ReplicaDriver {
            reader: Mutex::new((db.path().to_path_buf(), Arc::new(Reader::new(db)))),
            source: Source::Fixed,
        }
    }

    /// The reader over the replica's current database generation.
    fn reader(&self) -> Arc<Reader> {
        let db = match &self.source {
            Source::Replica(r) => r.database(),
            Source::Fixed => return self.reader.lock().1.clone(),
        };
        let mut cur = self.reader.lock();
        if cur.0 != db.path() {
            *cur = (db.path().to_path_buf(), Arc::new(Reader::new(db)));
        }
        cur.1.clone()
    }

    fn refuse<T>(&self, operation: &'static str) -> Result<T> {
        Err(OrmError::Unsupported {
            driver: "replica",
            operation,
            reason: "a replica is read-only (write through the primary)",
        })
    }
}

#[async_trait]
impl Driver for ReplicaDriver {
    fn name(&self) -> &'static str {
        "replica"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { writes: false }
    }

    async fn find(&self, collection: &CollectionRef, query: FindQuery) -> Result<Vec<Doc>> {
        let (r, c) = (self.reader(), collection.clone());
        off_thread(move || r.find(&c, query)).await
    }

    async fn get(&self, collection: &CollectionRef, ids: Vec<Value>) -> Result<Vec<Doc>> {
        self.reader().get(collection, ids)
    }

    async fn count(&self, collection: &CollectionRef, filter: Value) -> Result<u64> {
        let (r, c) = (self.reader(), collection.clone());
        off_thread(move || r.count(&c, filter)).await
    }

    async fn insert_one(&self, _: &CollectionRef, _: Value) -> Result<Value> {
        self.refuse("insert")
    }

    async fn insert_many(
        &self,
        _: &CollectionRef,
        _: Vec<Value>,
        _: InsertMode,
    ) -> Result<InsertReport> {
        self.refuse("insert")
    }

    async fn update(
        &self,
        _: &CollectionRef,
        _: Value,
        _: Value,
        _: bool,
        _: bool,
    ) -> Result<UpdateResult> {
        self.refuse("update")
    }

    async fn delete(&self, _: &CollectionRef, _: Value, _: bool) -> Result<u64> {
        self.refuse("delete")
    }

    async fn execute(&self, _: Vec<WriteOp>) -> Result<Vec<OpOutcome>> {
        self.refuse("run a write batch")
    }

    async fn ensure_indexes(
        &self,
        schema: &EntitySchema,
        policy: SchemaSync,
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        report.collection = schema.collection.name.to_string();
        report.skipped = true;
        if policy == SchemaSync::Off {
            return Ok(report);
        }
        let (r, c, declared) = (
            self.reader(),
            schema.collection.clone(),
            schema.indexes.clone(),
        );
        let stored = off_thread(move || match r.collection(&c)? {
            Some(coll) => Ok(coll.list_indexes()?),
            None => Ok(Vec::new()),
        })
        .await?;
        let plan = plan_sync(&declared, &stored, SchemaSync::KeepUnknown)?;
        let missing: Vec<String> = plan
            .changes
            .iter()
            .map(|ch| match ch {
                collection_store::typed::IndexChange::Create(spec) => spec.index_name(),
                collection_store::typed::IndexChange::Rebuild { old, .. } => old.clone(),
                collection_store::typed::IndexChange::Drop(name) => name.clone(),
                _ => String::from("(unknown change)"),
            })
            .collect();
        if !missing.is_empty() {
            return Err(OrmError::SchemaMismatch {
                collection: schema.collection.name.to_string(),
                missing,
            });
        }
        report.kept_unknown = plan.kept_unknown;
        Ok(report)
    }
}
