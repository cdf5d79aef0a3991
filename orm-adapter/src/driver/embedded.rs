//! [`EmbeddedDriver`]: the ORM on a [`Database`] opened in this process.

use std::sync::Arc;

use async_trait::async_trait;
use collection_store::typed::{SchemaSync, SyncReport};
use collection_store::{Database, UpdateResult};
use serde_json::Value;

use super::read::Reader;
use super::{
    batch, off_thread, Capabilities, CollectionRef, Doc, Driver, EntitySchema, FindQuery,
    InsertMode, InsertReport, OpOutcome, WriteOp,
};
use crate::error::Result;

/// The default driver: an embedded [`Database`].
///
/// Point lookups ([`Driver::get`]) run inline on the calling task (a few
/// microseconds against LMDB's memory map); queries, counts and every write
/// run on tokio's blocking pool (inside a runtime) so that scans and durable
/// commits never stall async worker threads. Outside a runtime (the blocking
/// API) everything runs on the calling thread. Set
/// [`inline_reads`](Self::inline_reads) to run queries inline too, for
/// applications whose queries are all small.
#[derive(Debug, Clone)]
pub struct EmbeddedDriver {
    reader: Arc<Reader>,
    inline_reads: bool,
}

impl EmbeddedDriver {
    /// A driver over `db`.
    pub fn new(db: Database) -> Self {
        EmbeddedDriver {
            reader: Arc::new(Reader::new(db)),
            inline_reads: false,
        }
    }

    /// Runs queries and counts on the calling task instead of the blocking pool.
    pub fn inline_reads(mut self, inline: bool) -> Self {
        self.inline_reads = inline;
        self
    }

    /// The database.
    pub fn database(&self) -> &Database {
        self.reader.database()
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.inline_reads {
            return f(&self.reader);
        }
        let reader = self.reader.clone();
        off_thread(move || f(&reader)).await
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.database().clone();
        off_thread(move || f(&db)).await
    }
}

/// The collection's handle for a write (created with its primary key field on first use).
fn writable(
    db: &Database,
    c: &CollectionRef,
) -> collection_store::Result<collection_store::Collection> {
    db.collection_with(
        &c.name,
        collection_store::CollectionOptions::with_id_field(c.id_field.as_ref()),
    )
}

#[async_trait]
impl Driver for EmbeddedDriver {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { writes: true }
    }

    async fn find(&self, collection: &CollectionRef, query: FindQuery) -> Result<Vec<Doc>> {
        let c = collection.clone();
        self.read(move |r| r.find(&c, query)).await
    }

    async fn get(&self, collection: &CollectionRef, ids: Vec<Value>) -> Result<Vec<Doc>> {
        self.reader.get(collection, ids)
    }

    async fn count(&self, collection: &CollectionRef, filter: Value) -> Result<u64> {
        let c = collection.clone();
        self.read(move |r| r.count(&c, filter)).await
    }

    async fn insert_one(&self, collection: &CollectionRef, doc: Value) -> Result<Value> {
        let c = collection.clone();
        self.write(move |db| Ok(writable(db, &c)?.insert_one(doc)?))
            .await
    }

    async fn insert_many(
        &self,
        collection: &CollectionRef,
        docs: Vec<Value>,
        mode: InsertMode,
    ) -> Result<InsertReport> {
        let c = collection.clone();
        self.write(move |db| batch::insert_many(db, &c, docs, mode))
            .await
    }

    async fn update(
        &self,
        collection: &CollectionRef,
        filter: Value,
        update: Value,
        multi: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let c = collection.clone();
        self.write(move |db| {
            let coll = writable(db, &c)?;
            let options = if upsert {
                collection_store::UpdateOptions::upsert()
            } else {
                collection_store::UpdateOptions::default()
            };
            Ok(if multi {
                coll.update_many_with(filter, update, options)?
            } else {
                coll.update_one_with(filter, update, options)?
            })
        })
        .await
    }

    async fn delete(&self, collection: &CollectionRef, filter: Value, multi: bool) -> Result<u64> {
        let c = collection.clone();
        let reader = self.reader.clone();
        self.write(move |_| match reader.collection(&c)? {
            Some(coll) if multi => Ok(coll.delete_many(filter)?),
            Some(coll) => Ok(coll.delete_one(filter)?),
            None => {
                collection_store::check_find(&filter, None, None, &c.id_field)?;
                Ok(0)
            }
        })
        .await
    }

    async fn execute(&self, ops: Vec<WriteOp>) -> Result<Vec<OpOutcome>> {
        self.write(move |db| batch::run(db, ops)).await
    }

    async fn ensure_indexes(
        &self,
        schema: &EntitySchema,
        policy: SchemaSync,
    ) -> Result<SyncReport> {
        let sync = schema.sync_embedded;
        self.write(move |db| Ok(sync(db, policy)?)).await
    }
}
