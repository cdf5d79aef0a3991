//! One behaviour suite, several front ends (as BonsaiDB runs one suite
//! against its local, server and client backends): a test written against
//! [`Db`] and [`C`] — which mirror `Database` and `Collection` — runs, through
//! [`suite!`](crate::suite), against
//!
//! - `direct`: a [`Collection`] (each statement in its own transaction);
//! - `transaction`: a [`collection_store::TxCollection`], every call inside its
//!   own explicit transaction (reads go through the transaction's read view);
//! - `async_api`: an [`AsyncCollection`] on a tokio runtime;
//! - `rebuilt`: writes go to a primary, reads to a second database rebuilt
//!   only by applying the primary's change log (as a replica does).
//!
//! A test reads the front it runs on with [`current`]; fixtures call
//! [`Db::new`], which opens the right one.

use std::cell::Cell;

use collection_store::{
    AsyncCollection, AsyncDatabase, Collection, Database, DatabaseOptions, Explain, IndexSpec,
    Result, UpdateOptions, UpdateResult,
};
use serde_json::Value;
use tempfile::TempDir;

/// The front ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// `Collection`.
    Direct,
    /// `TxCollection`, one explicit transaction per call.
    Transaction,
    /// `AsyncCollection`.
    Async,
    /// Reads from a database rebuilt from the change log.
    Rebuilt,
}

thread_local! {
    static FRONT: Cell<Front> = const { Cell::new(Front::Direct) };
}

/// Runs `test` with `front` as the current front end (on this thread).
pub fn with(front: Front, test: fn()) {
    FRONT.with(|f| f.set(front));
    test();
}

/// The front end the running test uses.
pub fn current() -> Front {
    FRONT.with(|f| f.get())
}

/// Instantiates the listed test functions once per front end, in modules
/// `direct`, `transaction`, `async_api` and `rebuilt`.
#[macro_export]
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod direct {
            $( #[test] fn $name() { $crate::common::front::with($crate::common::front::Front::Direct, super::$name) } )*
        }
        mod transaction {
            $( #[test] fn $name() { $crate::common::front::with($crate::common::front::Front::Transaction, super::$name) } )*
        }
        mod async_api {
            $( #[test] fn $name() { $crate::common::front::with($crate::common::front::Front::Async, super::$name) } )*
        }
        mod rebuilt {
            $( #[test] fn $name() { $crate::common::front::with($crate::common::front::Front::Rebuilt, super::$name) } )*
        }
    };
}

/// A database seen through one front end. Declared fields drop in order: the
/// databases close before their directories are removed.
pub struct Db {
    front: Front,
    primary: Database,
    rebuilt: Option<Database>,
    rt: Option<tokio::runtime::Runtime>,
    _dirs: Vec<TempDir>,
}

impl Db {
    /// A new database in a temporary directory, seen through the current front end.
    pub fn new() -> Db {
        Db::on(current())
    }

    /// A new database seen through `front`.
    pub fn on(front: Front) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let primary = Database::open(dir.path()).unwrap();
        let mut dirs = vec![dir];
        let rebuilt = (front == Front::Rebuilt).then(|| {
            let d = tempfile::tempdir().unwrap();
            let db =
                Database::open_with(d.path(), DatabaseOptions::default().replica(true)).unwrap();
            dirs.push(d);
            db
        });
        let rt = (front == Front::Async).then(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
        });
        Db {
            front,
            primary,
            rebuilt,
            rt,
            _dirs: dirs,
        }
    }

    /// The front end.
    pub fn front(&self) -> Front {
        self.front
    }

    /// The database writes go to (and, except for `rebuilt`, reads).
    pub fn primary(&self) -> &Database {
        &self.primary
    }

    /// A handle on collection `name` (created on first write).
    pub fn collection(&self, name: &str) -> C<'_> {
        C {
            db: self,
            name: name.to_owned(),
        }
    }

    /// Brings the rebuilt database up to date with the primary's log.
    fn catch_up(&self) -> &Database {
        let replica = self.rebuilt.as_ref().unwrap();
        loop {
            let have = replica.last_lsn().unwrap();
            let frames = self.primary.read_log_frames(have, 1 << 20).unwrap();
            if frames.is_empty() {
                return replica;
            }
            replica.apply_log_frames(&frames).unwrap();
        }
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.as_ref().unwrap().block_on(f)
    }
}

/// A collection seen through the database's front end; mirrors `Collection`.
pub struct C<'d> {
    db: &'d Db,
    name: String,
}

impl C<'_> {
    fn direct(&self) -> Collection {
        self.db.primary.collection(&self.name).unwrap()
    }

    fn asynchronous(&self) -> AsyncCollection {
        let db = AsyncDatabase::from(self.db.primary.clone());
        self.db.block(db.collection(&self.name)).unwrap()
    }

    /// Runs a write through the front end (`rebuilt` writes to the primary).
    fn write<T>(
        &self,
        direct: impl Fn(&Collection) -> Result<T>,
        tx: impl Fn(&collection_store::TxCollection<'_>) -> Result<T>,
        asynchronous: impl AsyncFn(&AsyncCollection) -> Result<T>,
    ) -> Result<T> {
        match self.db.front {
            Front::Direct | Front::Rebuilt => direct(&self.direct()),
            Front::Transaction => self
                .db
                .primary
                .transaction(|t| tx(&t.collection(&self.name)?)),
            Front::Async => {
                let c = self.asynchronous();
                self.db.block(asynchronous(&c))
            }
        }
    }

    /// Runs a read through the front end.
    fn read<T>(
        &self,
        direct: impl Fn(&Collection) -> Result<T>,
        tx: impl Fn(&collection_store::TxCollection<'_>) -> Result<T>,
        asynchronous: impl AsyncFn(&AsyncCollection) -> Result<T>,
    ) -> Result<T> {
        match self.db.front {
            Front::Rebuilt => {
                // Opening creates the collection on the primary if needed
                // (as `Database::collection` does); the replica learns of
                // it from the log.
                self.direct();
                let replica = self.db.catch_up();
                direct(&replica.collection(&self.name)?)
            }
            _ => self.write(direct, tx, asynchronous),
        }
    }

    /// See `Collection::insert_one`.
    pub fn insert_one(&self, doc: Value) -> Result<Value> {
        self.write(
            |c| c.insert_one(doc.clone()),
            |c| c.insert_one(doc.clone()),
            async |c| c.insert_one(doc.clone()).await,
        )
    }

    /// See `Collection::insert_many`.
    pub fn insert_many(&self, docs: Vec<Value>) -> Result<Vec<Value>> {
        self.write(
            |c| c.insert_many(docs.clone()),
            |c| c.insert_many(docs.clone()),
            async |c| c.insert_many(docs.clone()).await,
        )
    }

    /// See `Collection::create_index`.
    pub fn create_index(&self, spec: IndexSpec) -> Result<String> {
        self.write(
            |c| c.create_index(spec.clone()),
            |c| c.create_index(spec.clone()),
            async |c| c.create_index(spec.clone()).await,
        )
    }

    /// See `Collection::drop_index`.
    pub fn drop_index(&self, name: &str) -> Result<()> {
        self.write(
            |c| c.drop_index(name),
            |c| c.drop_index(name),
            async |c| c.drop_index(name).await,
        )
    }

    /// See `Collection::list_indexes`.
    pub fn list_indexes(&self) -> Result<Vec<IndexSpec>> {
        self.read(
            |c| c.list_indexes(),
            |c| c.list_indexes(),
            async |c| c.list_indexes().await,
        )
    }

    /// See `Collection::update_one_with`.
    pub fn update_one_with(&self, f: Value, u: Value, o: UpdateOptions) -> Result<UpdateResult> {
        self.write(
            |c| c.update_one_with(f.clone(), u.clone(), o.clone()),
            |c| c.update_one_with(f.clone(), u.clone(), o.clone()),
            async |c| c.update_one_with(f.clone(), u.clone(), o.clone()).await,
        )
    }

    /// See `Collection::update_many_with`.
    pub fn update_many_with(&self, f: Value, u: Value, o: UpdateOptions) -> Result<UpdateResult> {
        self.write(
            |c| c.update_many_with(f.clone(), u.clone(), o.clone()),
            |c| c.update_many_with(f.clone(), u.clone(), o.clone()),
            async |c| c.update_many_with(f.clone(), u.clone(), o.clone()).await,
        )
    }

    /// See `Collection::update_one`.
    pub fn update_one(&self, f: Value, u: Value) -> Result<UpdateResult> {
        self.update_one_with(f, u, UpdateOptions::default())
    }

    /// See `Collection::update_many`.
    pub fn update_many(&self, f: Value, u: Value) -> Result<UpdateResult> {
        self.update_many_with(f, u, UpdateOptions::default())
    }

    /// See `Collection::replace_one_with`.
    pub fn replace_one_with(&self, f: Value, d: Value, o: UpdateOptions) -> Result<UpdateResult> {
        self.write(
            |c| c.replace_one_with(f.clone(), d.clone(), o.clone()),
            |c| c.replace_one_with(f.clone(), d.clone(), o.clone()),
            async |c| c.replace_one_with(f.clone(), d.clone(), o.clone()).await,
        )
    }

    /// See `Collection::replace_one`.
    pub fn replace_one(&self, f: Value, d: Value) -> Result<UpdateResult> {
        self.replace_one_with(f, d, UpdateOptions::default())
    }

    /// See `Collection::delete_one`.
    pub fn delete_one(&self, f: Value) -> Result<u64> {
        self.write(
            |c| c.delete_one(f.clone()),
            |c| c.delete_one(f.clone()),
            async |c| c.delete_one(f.clone()).await,
        )
    }

    /// See `Collection::delete_many`.
    pub fn delete_many(&self, f: Value) -> Result<u64> {
        self.write(
            |c| c.delete_many(f.clone()),
            |c| c.delete_many(f.clone()),
            async |c| c.delete_many(f.clone()).await,
        )
    }

    /// See `Collection::count`.
    pub fn count(&self, f: Value) -> Result<u64> {
        self.read(
            |c| c.count(f.clone()),
            |c| c.count(f.clone()),
            async |c| c.count(f.clone()).await,
        )
    }

    /// See `Collection::distinct`.
    pub fn distinct(&self, path: &str, f: Value) -> Result<Vec<Value>> {
        self.read(
            |c| c.distinct(path, f.clone()),
            |c| c.distinct(path, f.clone()),
            async |c| c.distinct(path, f.clone()).await,
        )
    }

    /// See `Collection::find_one`.
    pub fn find_one(&self, f: Value) -> Result<Option<Value>> {
        self.read(
            |c| c.find_one(f.clone()),
            |c| c.find_one(f.clone()),
            async |c| c.find_one(f.clone()).await,
        )
    }

    /// See `Collection::explain`.
    pub fn explain(&self, f: Value) -> Result<Explain> {
        self.find(f).explain()
    }

    /// See `Collection::explain_count` (the async front end explains a
    /// count on the blocking handle, on the blocking pool).
    pub fn explain_count(&self, f: Value) -> Result<Explain> {
        self.read(
            |c| c.explain_count(f.clone()),
            |c| c.explain_count(f.clone()),
            async |c| {
                let c = c.blocking().clone();
                let f = f.clone();
                tokio::task::spawn_blocking(move || c.explain_count(f))
                    .await
                    .unwrap()
            },
        )
    }

    /// See `Collection::get` (the async front end finds by `_id`).
    pub fn get(&self, id: Value) -> Result<Option<Value>> {
        self.read(
            |c| c.get(id.clone()),
            |c| c.get(id.clone()),
            async |c| c.find_one(serde_json::json!({"_id": id.clone()})).await,
        )
    }

    /// See `Collection::find`.
    pub fn find(&self, filter: Value) -> Q<'_> {
        Q {
            c: self,
            filter,
            sort: None,
            skip: 0,
            limit: 0,
            projection: None,
        }
    }
}

/// A find statement through the front end; mirrors `Find`.
pub struct Q<'c> {
    c: &'c C<'c>,
    filter: Value,
    sort: Option<Value>,
    skip: u64,
    limit: u64,
    projection: Option<Value>,
}

macro_rules! build {
    ($find:expr, $q:expr) => {{
        let mut f = $find;
        if let Some(s) = &$q.sort {
            f = f.sort(s.clone());
        }
        if let Some(p) = &$q.projection {
            f = f.projection(p.clone());
        }
        f.skip($q.skip).limit($q.limit)
    }};
}

impl Q<'_> {
    /// See `Find::sort`.
    pub fn sort(mut self, spec: Value) -> Self {
        self.sort = Some(spec);
        self
    }

    /// See `Find::skip`.
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// See `Find::limit`.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = n;
        self
    }

    /// See `Find::projection`.
    pub fn projection(mut self, spec: Value) -> Self {
        self.projection = Some(spec);
        self
    }

    /// See `Find::to_vec` (named like it, so tests read the same).
    #[allow(clippy::wrong_self_convention)]
    pub fn to_vec(self) -> Result<Vec<Value>> {
        let f = &self.filter;
        self.c.read(
            |c| build!(c.find(f.clone()), self).to_vec(),
            |c| build!(c.find(f.clone()), self).to_vec(),
            async |c| build!(c.find(f.clone()), self).to_vec().await,
        )
    }

    /// See `Find::explain`.
    pub fn explain(self) -> Result<Explain> {
        let f = &self.filter;
        self.c.read(
            |c| build!(c.find(f.clone()), self).explain(),
            |c| build!(c.find(f.clone()), self).explain(),
            async |c| build!(c.find(f.clone()), self).explain().await,
        )
    }

    /// Iterates (`Find::into_iter`; the async front end has no iterator and
    /// yields `to_vec`'s results).
    fn iter(self) -> Vec<Result<Value>> {
        let f = &self.filter;
        let out = self.c.read(
            |c| {
                Ok(build!(c.find(f.clone()), self)
                    .into_iter()
                    .collect::<Vec<_>>())
            },
            |c| {
                Ok(build!(c.find(f.clone()), self)
                    .into_iter()
                    .collect::<Vec<_>>())
            },
            async |c| {
                Ok(match build!(c.find(f.clone()), self).to_vec().await {
                    Ok(v) => v.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                })
            },
        );
        out.unwrap_or_else(|e| vec![Err(e)])
    }
}

impl IntoIterator for Q<'_> {
    type Item = Result<Value>;
    type IntoIter = std::vec::IntoIter<Result<Value>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter().into_iter()
    }
}
