//! The async facade for tokio applications (feature `async`, on by default).
//!
//! Every operation runs on tokio's blocking thread pool (`spawn_blocking`), so
//! neither scans nor durable commits ever block the runtime's worker threads;
//! concurrent async writes still share commits through group commit.
//!
//! **Cancellation.** Dropping a pending future does not cancel the operation:
//! it runs to completion on the blocking pool, exactly as if it had been
//! awaited, and its outcome is discarded. A write is therefore either fully
//! applied or (if it failed) not at all — never half-applied.
//!
//! **Transactions.** [`AsyncDatabase::transaction`] takes a synchronous
//! closure: an LMDB write transaction is bound to one thread, so the closure
//! runs on a blocking thread and cannot `.await` (which is what keeps it from
//! ever deadlocking the runtime).

use std::path::Path;

use serde_json::Value;

use crate::plan::Explain;
use crate::{
    Collection, Database, DatabaseOptions, Error, IndexSpec, Result, Transaction, UpdateOptions,
    UpdateResult, VerifyReport,
};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Error::TransactionClosed(format!(
            "the blocking task running this operation failed: {e}"
        ))),
    }
}

/// An open database for async code. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AsyncDatabase {
    db: Database,
}

impl From<Database> for AsyncDatabase {
    fn from(db: Database) -> Self {
        AsyncDatabase { db }
    }
}

impl AsyncDatabase {
    /// Opens (creating if needed) the database in `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<AsyncDatabase> {
        let path = path.as_ref().to_path_buf();
        blocking(move || Database::open(path))
            .await
            .map(AsyncDatabase::from)
    }

    /// Opens with explicit options.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: DatabaseOptions,
    ) -> Result<AsyncDatabase> {
        let path = path.as_ref().to_path_buf();
        blocking(move || Database::open_with(path, options))
            .await
            .map(AsyncDatabase::from)
    }

    /// The synchronous handle (for code that runs on a blocking thread).
    pub fn blocking(&self) -> &Database {
        &self.db
    }

    /// A handle on collection `name` (created on first use).
    pub async fn collection(&self, name: &str) -> Result<AsyncCollection> {
        let db = self.db.clone();
        let name = name.to_owned();
        blocking(move || db.collection(&name))
            .await
            .map(|inner| AsyncCollection { inner })
    }

    /// Runs `f` in a write transaction on a blocking thread: committed when it
    /// returns `Ok`, rolled back on `Err` or panic.
    pub async fn transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        blocking(move || db.transaction(f)).await
    }

    /// Names of all collections.
    pub async fn list_collections(&self) -> Result<Vec<String>> {
        let db = self.db.clone();
        blocking(move || db.list_collections()).await
    }

    /// Drops a collection.
    pub async fn drop_collection(&self, name: &str) -> Result<bool> {
        let db = self.db.clone();
        let name = name.to_owned();
        blocking(move || db.drop_collection(&name)).await
    }

    /// See [`Database::verify`].
    pub async fn verify(&self) -> Result<VerifyReport> {
        let db = self.db.clone();
        blocking(move || db.verify()).await
    }
}

/// A collection for async code. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AsyncCollection {
    inner: Collection,
}

/// A find statement for async code: a [`crate::Find`] run on the blocking pool.
#[derive(Clone, Debug)]
pub struct AsyncFind {
    find: crate::Find,
}

impl AsyncFind {
    /// See [`crate::Find::sort`].
    pub fn sort(self, spec: Value) -> Self {
        AsyncFind {
            find: self.find.sort(spec),
        }
    }

    /// See [`crate::Find::skip`].
    pub fn skip(self, n: u64) -> Self {
        AsyncFind {
            find: self.find.skip(n),
        }
    }

    /// See [`crate::Find::limit`].
    pub fn limit(self, n: u64) -> Self {
        AsyncFind {
            find: self.find.limit(n),
        }
    }

    /// See [`crate::Find::projection`].
    pub fn projection(self, spec: Value) -> Self {
        AsyncFind {
            find: self.find.projection(spec),
        }
    }

    /// Runs the statement and collects the results.
    pub async fn to_vec(self) -> Result<Vec<Value>> {
        blocking(move || self.find.to_vec()).await
    }

    /// Runs the statement and reports the plan.
    pub async fn explain(self) -> Result<Explain> {
        blocking(move || self.find.explain()).await
    }
}

impl AsyncCollection {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(Collection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let c = self.inner.clone();
        blocking(move || f(c)).await
    }

    /// The synchronous handle.
    pub fn blocking(&self) -> &Collection {
        &self.inner
    }

    /// See [`Collection::insert_one`](crate::CollectionHandle::insert_one).
    pub async fn insert_one(&self, doc: Value) -> Result<Value> {
        self.run(move |c| c.insert_one(doc)).await
    }

    /// See [`Collection::insert_many`](crate::CollectionHandle::insert_many).
    pub async fn insert_many(&self, docs: Vec<Value>) -> Result<Vec<Value>> {
        self.run(move |c| c.insert_many(docs)).await
    }

    /// Starts a find statement.
    pub fn find(&self, filter: Value) -> AsyncFind {
        AsyncFind {
            find: self.inner.find(filter),
        }
    }

    /// See [`Collection::find_one`](crate::CollectionHandle::find_one).
    pub async fn find_one(&self, filter: Value) -> Result<Option<Value>> {
        self.run(move |c| c.find_one(filter)).await
    }

    /// See [`Collection::count`](crate::CollectionHandle::count).
    pub async fn count(&self, filter: Value) -> Result<u64> {
        self.run(move |c| c.count(filter)).await
    }

    /// See [`Collection::distinct`](crate::CollectionHandle::distinct).
    pub async fn distinct(&self, path: &str, filter: Value) -> Result<Vec<Value>> {
        let path = path.to_owned();
        self.run(move |c| c.distinct(&path, filter)).await
    }

    /// See [`Collection::update_one_with`](crate::CollectionHandle::update_one_with).
    pub async fn update_one_with(
        &self,
        filter: Value,
        update: Value,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        self.run(move |c| c.update_one_with(filter, update, options))
            .await
    }

    /// See [`Collection::update_one`](crate::CollectionHandle::update_one).
    pub async fn update_one(&self, filter: Value, update: Value) -> Result<UpdateResult> {
        self.update_one_with(filter, update, UpdateOptions::default())
            .await
    }

    /// See [`Collection::update_many_with`](crate::CollectionHandle::update_many_with).
    pub async fn update_many_with(
        &self,
        filter: Value,
        update: Value,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        self.run(move |c| c.update_many_with(filter, update, options))
            .await
    }

    /// See [`Collection::update_many`](crate::CollectionHandle::update_many).
    pub async fn update_many(&self, filter: Value, update: Value) -> Result<UpdateResult> {
        self.update_many_with(filter, update, UpdateOptions::default())
            .await
    }

    /// See [`Collection::replace_one_with`](crate::CollectionHandle::replace_one_with).
    pub async fn replace_one_with(
        &self,
        filter: Value,
        doc: Value,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        self.run(move |c| c.replace_one_with(filter, doc, options))
            .await
    }

    /// See [`Collection::replace_one`](crate::CollectionHandle::replace_one).
    pub async fn replace_one(&self, filter: Value, doc: Value) -> Result<UpdateResult> {
        self.replace_one_with(filter, doc, UpdateOptions::default())
            .await
    }

    /// See [`Collection::delete_one`](crate::CollectionHandle::delete_one).
    pub async fn delete_one(&self, filter: Value) -> Result<u64> {
        self.run(move |c| c.delete_one(filter)).await
    }

    /// See [`Collection::delete_many`](crate::CollectionHandle::delete_many).
    pub async fn delete_many(&self, filter: Value) -> Result<u64> {
        self.run(move |c| c.delete_many(filter)).await
    }

    /// See [`Collection::create_index`](crate::CollectionHandle::create_index).
    pub async fn create_index(&self, spec: IndexSpec) -> Result<String> {
        self.run(move |c| c.create_index(spec)).await
    }

    /// See [`Collection::drop_index`](crate::CollectionHandle::drop_index).
    pub async fn drop_index(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.run(move |c| c.drop_index(&name)).await
    }

    /// See [`Collection::list_indexes`](crate::CollectionHandle::list_indexes).
    pub async fn list_indexes(&self) -> Result<Vec<IndexSpec>> {
        self.run(|c| c.list_indexes()).await
    }
}
