//! Collection handles: the untyped statement API (insert, find, update,
//! replace, delete, count, distinct) over `serde_json::Value` documents.

use std::sync::Arc;

use heed::RoTxn;
use serde_json::Value;

use super::database::Database;
use super::find::Find;
use crate::catalog::{self, CollectionOptions};
use crate::doc::json::{document_from_json, json_from_bson};
use crate::doc::FieldPath;
use crate::error::{Error, Result};
use crate::exec::docs::{check_id, new_id, place_id};
use crate::exec::read::{self as exec_read, Reads, Target};
use crate::exec::statement::{Outcome, Parsed, Statement};
use crate::exec::write::UpdateMode;
pub use crate::exec::write::UpdateResult;
use crate::exec::TargetCache;
use crate::index::IndexSpec;
use crate::plan::Explain;
use crate::query::filter::Filter;
use crate::query::update::Update;
use crate::storage::Store;

/// Runs statements either in their own transaction or inside a caller's one.
pub(crate) trait Executor {
    /// The cache of compiled collection definitions.
    fn targets(&self) -> &Arc<TargetCache>;
    /// True when reads see committed snapshots only (not an open write transaction).
    fn reads_committed(&self) -> bool;
    /// Runs `f` on a read view — a fresh snapshot, or the enclosing write
    /// transaction — with the read set its reads are recorded in (none
    /// outside transactions).
    fn read_dyn(
        &self,
        f: &mut dyn FnMut(&Store, &RoTxn<'_>, &mut Reads<'_>) -> Result<()>,
    ) -> Result<()>;
    /// Runs one statement: its own committed transaction (through group
    /// commit, or on this thread when it reports `progress`), or a nested
    /// transaction of the enclosing one (a failure undoes only it).
    fn execute(
        &self,
        statement: Statement,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> Result<Outcome>;
}

/// A typed wrapper over [`Executor::read_dyn`].
pub(crate) trait ExecutorExt: Executor {
    fn read<T>(
        &self,
        mut f: impl FnMut(&Store, &RoTxn<'_>, &mut Reads<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut out = None;
        self.read_dyn(&mut |s, t, r| {
            out = Some(f(s, t, r)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::TransactionClosed("the read did not run".into()))
    }
}

impl<E: Executor + ?Sized> ExecutorExt for E {}

/// Options of `update_*_with` and `replace_one_with`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpdateOptions {
    /// Insert a document when nothing matches: built from the filter's equality
    /// fields plus the update (or the replacement document).
    pub upsert: bool,
}

impl UpdateOptions {
    /// Options with `upsert` set.
    pub fn upsert() -> Self {
        UpdateOptions { upsert: true }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Where a collection handle's statements run: [`Database`] (each statement in
/// its own transaction) or [`TxExec`] (inside an explicit transaction). Sealed.
#[allow(private_interfaces)]
pub trait ExecSource: sealed::Sealed + Clone {
    #[doc(hidden)]
    fn executor(&self) -> &dyn Executor;
    #[doc(hidden)]
    fn database(&self) -> Option<&Database>;
}

impl sealed::Sealed for Database {}
#[allow(private_interfaces)]
impl ExecSource for Database {
    fn executor(&self) -> &dyn Executor {
        self
    }
    fn database(&self) -> Option<&Database> {
        Some(self)
    }
}

/// The executor of a collection handle inside an explicit transaction.
#[derive(Clone, Copy)]
#[allow(private_interfaces)]
pub struct TxExec<'t>(pub(crate) &'t (dyn Executor + 't));

impl sealed::Sealed for TxExec<'_> {}
#[allow(private_interfaces)]
impl ExecSource for TxExec<'_> {
    fn executor(&self) -> &dyn Executor {
        self.0
    }
    fn database(&self) -> Option<&Database> {
        None
    }
}

/// A handle on one collection. Use it through the aliases [`Collection`]
/// (statements run in their own transaction; `Send + Sync`, cheap to clone)
/// and [`TxCollection`] (statements run inside an explicit [`crate::Transaction`]).
#[derive(Clone)]
pub struct CollectionHandle<X: ExecSource = Database> {
    exec: X,
    name: String,
    options: CollectionOptions,
}

/// A collection whose statements each run in their own durable transaction.
pub type Collection = CollectionHandle<Database>;

/// A collection inside an explicit transaction: reads see the transaction's
/// own writes, and nothing is visible to others until it commits.
pub type TxCollection<'t> = CollectionHandle<TxExec<'t>>;

impl<X: ExecSource> std::fmt::Debug for CollectionHandle<X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .finish()
    }
}

/// Opens collection `name` through `exec`: its stored definition (whose
/// options must equal `options` when given) or, when there is none and
/// `may_create` allows it, a new one created by a statement.
pub(crate) fn open_handle<X: ExecSource>(
    exec: X,
    name: &str,
    options: Option<CollectionOptions>,
    may_create: impl FnOnce() -> Result<()>,
) -> Result<CollectionHandle<X>> {
    catalog::validate_name(name)?;
    let stored = exec
        .executor()
        .read(|store, txn, _| catalog::load(store, txn, name))?;
    let options = match stored {
        Some(meta) => {
            catalog::check_options(&meta, options.as_ref())?;
            meta.options
        }
        None => {
            may_create()?;
            let options = options.unwrap_or_default();
            exec.executor().execute(
                Statement::CreateCollection {
                    collection: name.to_owned(),
                    options: options.clone(),
                },
                None,
            )?;
            options
        }
    };
    Ok(CollectionHandle::new(exec, name.to_owned(), options))
}

fn parse_filter(filter: &Value) -> Result<Filter> {
    Filter::parse(filter)
}

impl<X: ExecSource> CollectionHandle<X> {
    pub(crate) fn new(exec: X, name: String, options: CollectionOptions) -> Self {
        CollectionHandle {
            exec,
            name,
            options,
        }
    }

    /// The collection name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The primary key field (`_id` unless configured otherwise).
    pub fn id_field(&self) -> &str {
        &self.options.id_field
    }

    pub(crate) fn exec(&self) -> &X {
        &self.exec
    }

    /// This collection's compiled definition in the given read view (None when
    /// dropped; a transaction records that it found none).
    pub(crate) fn target_in(
        &self,
        store: &Store,
        txn: &RoTxn<'_>,
        reads: &mut Reads<'_>,
    ) -> Result<Option<Arc<Target>>> {
        let ex = self.exec.executor();
        let t = ex
            .targets()
            .get(store, txn, &self.name, ex.reads_committed())?;
        if let (None, Some(r)) = (&t, reads.as_deref_mut()) {
            r.no_collection(&self.name);
        }
        Ok(t)
    }

    /// Runs one read with this collection's definition, or returns `absent`
    /// when the collection does not exist.
    fn read_target<T>(
        &self,
        absent: impl Fn() -> T,
        mut f: impl FnMut(&Store, &RoTxn<'_>, &Target, &mut Reads<'_>) -> Result<T>,
    ) -> Result<T> {
        self.exec.executor().read(
            |store, txn, reads| match self.target_in(store, txn, reads)? {
                Some(t) => f(store, txn, &t, reads),
                None => Ok(absent()),
            },
        )
    }

    /// Runs one write statement.
    fn execute(&self, statement: Statement) -> Result<Outcome> {
        self.exec.executor().execute(statement, None)
    }

    /// Creates a secondary index and builds it over the existing documents.
    /// Creating an index that exists with the same specification does nothing;
    /// with a different one it is an error. Returns the index name.
    pub fn create_index(&self, spec: IndexSpec) -> Result<String> {
        self.create_index_with_progress(spec, |_, _| {})
    }

    /// [`create_index`](Self::create_index), calling `progress(done, total)`
    /// as documents are indexed.
    pub fn create_index_with_progress(
        &self,
        spec: IndexSpec,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<String> {
        let name = spec.index_name();
        self.exec.executor().execute(
            Statement::CreateIndex {
                collection: self.name.clone(),
                options: self.options.clone(),
                spec,
            },
            Some(&mut progress),
        )?;
        Ok(name)
    }

    /// Drops the secondary index called `name`.
    pub fn drop_index(&self, name: &str) -> Result<()> {
        self.execute(Statement::DropIndex {
            collection: self.name.clone(),
            options: self.options.clone(),
            name: name.to_owned(),
        })?;
        Ok(())
    }

    /// The secondary indexes' specifications (each with its name filled in).
    pub fn list_indexes(&self) -> Result<Vec<IndexSpec>> {
        self.read_target(Vec::new, |_, _, t, _| {
            Ok(t.meta
                .indexes
                .iter()
                .cloned()
                .map(|ix| {
                    let name = ix.name();
                    ix.spec.name(name)
                })
                .collect())
        })
    }

    /// The schema version recorded for this collection (typed collections).
    pub(crate) fn schema_version(&self) -> Result<Option<u32>> {
        self.read_target(|| None, |_, _, t, _| Ok(t.meta.schema_version))
    }

    /// Records the schema version of a typed collection.
    pub(crate) fn set_schema_version(&self, version: u32) -> Result<()> {
        self.execute(Statement::SchemaVersion {
            collection: self.name.clone(),
            version,
        })?;
        Ok(())
    }

    /// Inserts one document; returns its primary key (generated as a 24-digit
    /// hex ObjectId string when the document has none).
    pub fn insert_one(&self, doc: Value) -> Result<Value> {
        Ok(self.insert_many(vec![doc])?.pop().unwrap_or(Value::Null))
    }

    /// Inserts several documents atomically: all of them or, on any error, none.
    pub fn insert_many(&self, docs: Vec<Value>) -> Result<Vec<Value>> {
        let mut ids = Vec::with_capacity(docs.len());
        let mut documents = Vec::with_capacity(docs.len());
        for doc in &docs {
            let (id, doc) = place_id(&self.options.id_field, document_from_json(doc)?, new_id)?;
            ids.push(json_from_bson(&id));
            documents.push(doc);
        }
        self.execute(Statement::Insert {
            collection: self.name.clone(),
            options: self.options.clone(),
            documents,
        })?;
        Ok(ids)
    }

    /// Starts a find statement; refine it with `sort`, `skip`, `limit` and
    /// `projection`, then run it with `to_vec` or by iterating.
    pub fn find(&self, filter: Value) -> Find<X> {
        Find::new(self.clone(), filter)
    }

    /// The document whose primary key equals `id` (a point lookup that skips
    /// filter parsing and planning).
    pub fn get(&self, id: Value) -> Result<Option<Value>> {
        self.get_with(id, |raw, _| Ok(crate::doc::json::json_from_raw(raw)))
    }

    /// [`get`](Self::get), deserialized straight from the stored encoding into `T`.
    pub fn get_as<T: serde::de::DeserializeOwned>(&self, id: Value) -> Result<Option<T>> {
        let id_field = self.options.id_field.clone();
        self.get_with(id, move |raw, name| {
            super::find::decode_as(raw, None, name, &id_field)
        })
    }

    fn get_with<T>(
        &self,
        id: Value,
        decode: impl Fn(&bson::raw::RawDocument, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        let id = crate::doc::json::bson_from_json(&id, crate::doc::json::Context::Operand)?;
        check_id(&id, &self.options.id_field)?;
        self.read_target(
            || None,
            |store, txn, t, reads| {
                let key = crate::exec::doc_key(&t.meta, crate::doc::ValRef::from(&id));
                let bytes = store.table(crate::storage::Table::Docs).get(txn, &key)?;
                if let Some(r) = reads.as_deref_mut() {
                    r.doc(&t.meta, &key, bytes);
                }
                match bytes {
                    Some(bytes) => Ok(Some(decode(
                        crate::exec::raw_doc(bytes, &t.meta)?,
                        &t.meta.name,
                    )?)),
                    None => Ok(None),
                }
            },
        )
    }

    /// The first document matching `filter` (in primary-key order).
    pub fn find_one(&self, filter: Value) -> Result<Option<Value>> {
        Ok(self.find(filter).limit(1).to_vec()?.into_iter().next())
    }

    /// Counts the documents matching `filter`.
    pub fn count(&self, filter: Value) -> Result<u64> {
        let filter = parse_filter(&filter)?;
        self.read_target(
            || 0,
            |store, txn, t, reads| Ok(exec_read::count(store, txn, t, &filter, false, reads)?.0),
        )
    }

    /// How `find(filter)` would run, with what running it cost: the chosen
    /// index or scan, its bounds, and entries and documents examined.
    pub fn explain(&self, filter: Value) -> Result<Explain> {
        self.find(filter).explain()
    }

    /// How `count(filter)` runs (`covered` when answered from index entries alone).
    pub fn explain_count(&self, filter: Value) -> Result<Explain> {
        let filter = parse_filter(&filter)?;
        let empty = || Explain::of(&crate::plan::Plan::collscan(false, true, 0), false);
        self.read_target(empty, |store, txn, t, reads| {
            Ok(exec_read::count(store, txn, t, &filter, true, reads)?
                .1
                .unwrap_or_else(empty))
        })
    }

    /// The distinct values of the dotted `path` among documents matching
    /// `filter`; array elements count individually. Sorted in query order.
    pub fn distinct(&self, path: &str, filter: Value) -> Result<Vec<Value>> {
        let path = FieldPath::parse(path).map_err(Error::InvalidFilter)?;
        let filter = parse_filter(&filter)?;
        self.read_target(Vec::new, |store, txn, t, reads| {
            exec_read::distinct(store, txn, t, &path, &filter, reads)
        })
    }

    /// Applies update operators to the first matching document.
    pub fn update_one(&self, filter: Value, update: Value) -> Result<UpdateResult> {
        self.update_one_with(filter, update, UpdateOptions::default())
    }

    /// Applies update operators to every matching document, atomically.
    pub fn update_many(&self, filter: Value, update: Value) -> Result<UpdateResult> {
        self.update_many_with(filter, update, UpdateOptions::default())
    }

    /// [`update_one`](Self::update_one) with options (upsert).
    pub fn update_one_with(
        &self,
        filter: Value,
        update: Value,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let upd = Parsed::operators(update, "update_one")?;
        self.run_update(filter, upd, false, options.upsert)
    }

    /// [`update_many`](Self::update_many) with options (upsert).
    pub fn update_many_with(
        &self,
        filter: Value,
        update: Value,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let upd = Parsed::operators(update, "update_many")?;
        self.run_update(filter, upd, true, options.upsert)
    }

    /// Replaces the first matching document with `doc`, keeping its primary key.
    pub fn replace_one(&self, filter: Value, doc: Value) -> Result<UpdateResult> {
        self.replace_one_with(filter, doc, UpdateOptions::default())
    }

    /// [`replace_one`](Self::replace_one) with options (upsert).
    pub fn replace_one_with(
        &self,
        filter: Value,
        doc: Value,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let upd = Parsed::replacement(doc)?;
        self.run_update(filter, upd, false, options.upsert)
    }

    fn run_update(
        &self,
        filter: Value,
        update: Parsed<Update>,
        multi: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        self.execute(Statement::Update {
            collection: self.name.clone(),
            options: self.options.clone(),
            filter: Parsed::filter(filter)?,
            update,
            mode: UpdateMode {
                multi,
                upsert: upsert.then(new_id),
                now: bson::DateTime::now(),
            },
        })?
        .into_updated()
    }

    /// Deletes the first matching document; returns how many were deleted (0 or 1).
    pub fn delete_one(&self, filter: Value) -> Result<u64> {
        self.run_delete(filter, false)
    }

    /// Deletes every matching document, atomically; returns how many.
    pub fn delete_many(&self, filter: Value) -> Result<u64> {
        self.run_delete(filter, true)
    }

    fn run_delete(&self, filter: Value, multi: bool) -> Result<u64> {
        self.execute(Statement::Delete {
            collection: self.name.clone(),
            filter: Parsed::filter(filter)?,
            multi,
        })?
        .into_count()
    }
}
