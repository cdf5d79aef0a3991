//! Collection handles: the untyped statement API (insert, find, update,
//! replace, delete, count, distinct) over `serde_json::Value` documents.

use std::sync::Arc;

use serde_json::Value;

use crate::catalog::{self, CollectionOptions};
use crate::db::Database;
use crate::doc::json::document_from_json;
use crate::doc::FieldPath;
use crate::error::{Error, Result};
use crate::exec::read::{self as exec_read, Target};
pub use crate::exec::write::UpdateResult;
use crate::exec::write::{self as exec_write, WriteCtx};
use crate::exec::{Executor, ExecutorExt, TargetCache};
use crate::find::Find;
use crate::index::{build, IndexSpec};
use crate::plan::Explain;
use crate::query::filter::Filter;
use crate::query::update::Update;
use crate::storage::Wtx;

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

fn parse_filter(filter: &Value) -> Result<Filter> {
    Filter::parse(filter)
}

fn operator_update(update: &Value, statement: &str) -> Result<Update> {
    let upd = Update::parse(update)?;
    if upd.is_replacement() {
        return Err(Error::InvalidUpdate(format!(
            "{statement} takes update operators such as {{\"$set\": {{...}}}}; to replace a whole document use replace_one"
        )));
    }
    Ok(upd)
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

    /// This collection's compiled definition in the given read view (None when dropped).
    pub(crate) fn target_in(
        &self,
        store: &crate::storage::Store,
        txn: &heed::RoTxn<'_>,
    ) -> Result<Option<Arc<Target>>> {
        let ex = self.exec.executor();
        ex.targets()
            .get(store, txn, &self.name, ex.reads_committed())
    }

    /// Runs one write statement with the collection's definition and indexes,
    /// then records its statistics. The statement owns its inputs, so that it
    /// can run on the group-commit writer.
    fn write_statement<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut Wtx<'_, '_>, &mut WriteCtx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let ex = self.exec.executor();
        let targets = ex.targets().clone();
        let name = self.name.clone();
        let options = self.options.clone();
        ex.write_owned(move |w| {
            let mut ctx = ctx_for_write(w, &targets, &name, &options)?;
            let out = f(w, &mut ctx)?;
            ctx.finish(w)?;
            Ok(out)
        })
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
        let ex = self.exec.executor();
        ex.write(|w| {
            let mut meta = ctx_for_write(w, ex.targets(), &self.name, &self.options)?
                .target
                .meta;
            build::create(w, &mut meta, spec.clone(), &mut progress)
        })?;
        Ok(name)
    }

    /// Drops the secondary index called `name`.
    pub fn drop_index(&self, name: &str) -> Result<()> {
        let ex = self.exec.executor();
        ex.write(|w| {
            let mut meta = ctx_for_write(w, ex.targets(), &self.name, &self.options)?
                .target
                .meta;
            build::drop(w, &mut meta, name)
        })
    }

    /// The secondary indexes' specifications (each with its name filled in).
    pub fn list_indexes(&self) -> Result<Vec<IndexSpec>> {
        self.exec.executor().read(|store, txn| {
            Ok(self
                .target_in(store, txn)?
                .map(|t| {
                    t.meta
                        .indexes
                        .clone()
                        .into_iter()
                        .map(|ix| {
                            let name = ix.name();
                            ix.spec.name(name)
                        })
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    /// Inserts one document; returns its primary key (generated as a 24-digit
    /// hex ObjectId string when the document has none).
    pub fn insert_one(&self, doc: Value) -> Result<Value> {
        let doc = document_from_json(&doc)?;
        self.write_statement(move |w, ctx| {
            let (id, doc) = exec_write::with_id(&ctx.target.meta, doc.clone())?;
            exec_write::insert(w, ctx, &id, &doc)?;
            Ok(crate::doc::json::json_from_bson(&id))
        })
    }

    /// Inserts several documents atomically: all of them or, on any error, none.
    pub fn insert_many(&self, docs: Vec<Value>) -> Result<Vec<Value>> {
        let docs = docs
            .iter()
            .map(document_from_json)
            .collect::<Result<Vec<_>>>()?;
        self.write_statement(move |w, ctx| {
            let mut ids = Vec::with_capacity(docs.len());
            for doc in &docs {
                let (id, doc) = exec_write::with_id(&ctx.target.meta, doc.clone())?;
                exec_write::insert(w, ctx, &id, &doc)?;
                ids.push(crate::doc::json::json_from_bson(&id));
            }
            Ok(ids)
        })
    }

    /// Starts a find statement; refine it with `sort`, `skip`, `limit` and
    /// `projection`, then run it with `to_vec` or by iterating.
    pub fn find(&self, filter: Value) -> Find<X> {
        Find::new(self.clone(), filter)
    }

    /// Starts an aggregation pipeline (`json!([{"$match": ...}, {"$group": ...}])`);
    /// run it with `to_vec`, `to_vec_as`, `explain` or by iterating.
    pub fn aggregate(&self, pipeline: Value) -> crate::aggregate::Aggregate<X> {
        crate::aggregate::Aggregate::new(self.clone(), pipeline)
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
            crate::find::decode_as(raw, None, name, &id_field)
        })
    }

    fn get_with<T>(
        &self,
        id: Value,
        decode: impl Fn(&bson::raw::RawDocument, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        let id = crate::doc::json::bson_from_json(&id, crate::doc::json::Context::Operand)?;
        exec_write::check_id(&id, &self.options.id_field)?;
        self.exec.executor().read(|store, txn| {
            let Some(t) = self.target_in(store, txn)? else {
                return Ok(None);
            };
            let key = crate::exec::doc_key(&t.meta, crate::doc::ValRef::from(&id));
            match store.table(crate::storage::Table::Docs).get(txn, &key)? {
                Some(bytes) => Ok(Some(decode(
                    crate::exec::raw_doc(bytes, &t.meta)?,
                    &t.meta.name,
                )?)),
                None => Ok(None),
            }
        })
    }

    /// The first document matching `filter` (in primary-key order).
    pub fn find_one(&self, filter: Value) -> Result<Option<Value>> {
        Ok(self.find(filter).limit(1).to_vec()?.into_iter().next())
    }

    /// Counts the documents matching `filter`.
    pub fn count(&self, filter: Value) -> Result<u64> {
        let filter = parse_filter(&filter)?;
        self.exec
            .executor()
            .read(|store, txn| match self.target_in(store, txn)? {
                Some(t) => Ok(exec_read::count(store, txn, &t, &filter, false)?.0),
                None => Ok(0),
            })
    }

    /// How `find(filter)` would run, with what running it cost: the chosen
    /// index or scan, its bounds, and entries and documents examined.
    pub fn explain(&self, filter: Value) -> Result<Explain> {
        self.find(filter).explain()
    }

    /// How `count(filter)` runs (`covered` when answered from index entries alone).
    pub fn explain_count(&self, filter: Value) -> Result<Explain> {
        let filter = parse_filter(&filter)?;
        self.exec
            .executor()
            .read(|store, txn| match self.target_in(store, txn)? {
                Some(t) => Ok(exec_read::count(store, txn, &t, &filter, true)?
                    .1
                    .unwrap_or_else(|| {
                        Explain::of(&crate::plan::Plan::collscan(false, true, 0), false)
                    })),
                None => Ok(Explain::of(
                    &crate::plan::Plan::collscan(false, true, 0),
                    false,
                )),
            })
    }

    /// The distinct values of the dotted `path` among documents matching
    /// `filter`; array elements count individually. Sorted in query order.
    pub fn distinct(&self, path: &str, filter: Value) -> Result<Vec<Value>> {
        let path = FieldPath::parse(path).map_err(Error::InvalidFilter)?;
        let filter = parse_filter(&filter)?;
        self.exec
            .executor()
            .read(|store, txn| match self.target_in(store, txn)? {
                Some(t) => exec_read::distinct(store, txn, &t, &path, &filter),
                None => Ok(Vec::new()),
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
        let upd = operator_update(&update, "update_one")?;
        self.run_update(&filter, upd, false, options.upsert)
    }

    /// [`update_many`](Self::update_many) with options (upsert).
    pub fn update_many_with(
        &self,
        filter: Value,
        update: Value,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let upd = operator_update(&update, "update_many")?;
        self.run_update(&filter, upd, true, options.upsert)
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
        let upd = Update::replacement_of(&doc)?;
        self.run_update(&filter, upd, false, options.upsert)
    }

    fn run_update(
        &self,
        filter: &Value,
        upd: Update,
        multi: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let filter = parse_filter(filter)?;
        self.write_statement(move |w, ctx| exec_write::update(w, ctx, &filter, &upd, multi, upsert))
    }

    /// Deletes the first matching document; returns how many were deleted (0 or 1).
    pub fn delete_one(&self, filter: Value) -> Result<u64> {
        self.run_delete(&filter, false)
    }

    /// Deletes every matching document, atomically; returns how many.
    pub fn delete_many(&self, filter: Value) -> Result<u64> {
        self.run_delete(&filter, true)
    }

    fn run_delete(&self, filter: &Value, multi: bool) -> Result<u64> {
        let filter = parse_filter(filter)?;
        let ex = self.exec.executor();
        let targets = ex.targets().clone();
        let name = self.name.clone();
        ex.write_owned(move |w| {
            let Some(t) = targets.get(w.store(), w.ro(), &name, false)? else {
                return Ok(0);
            };
            let mut ctx = WriteCtx::from_target(&t);
            let n = exec_write::delete(w, &mut ctx, &filter, multi)?;
            ctx.finish(w)?;
            Ok(n)
        })
    }
}

/// Resolves (re-creating if it was dropped) a collection's definition for a write.
fn ctx_for_write(
    w: &mut Wtx<'_, '_>,
    targets: &TargetCache,
    name: &str,
    options: &CollectionOptions,
) -> Result<WriteCtx> {
    if let Some(t) = targets.get(w.store(), w.ro(), name, false)? {
        if t.meta.options == *options {
            return Ok(WriteCtx::from_target(&t));
        }
    }
    WriteCtx::new(catalog::get_or_create(w, name, Some(options))?)
}
