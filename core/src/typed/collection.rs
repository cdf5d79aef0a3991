//! [`TypedCollection<T>`]: a collection of `T` documents, and its typed find builder.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::filter::{Filter, Sort};
use super::sync::{self, SyncReport, TypedOptions};
use super::update::Update;
use super::Document;
use crate::catalog::CollectionOptions;
use crate::error::{Error, Result};
use crate::handles::collection::{
    CollectionHandle, ExecSource, TxExec, UpdateOptions, UpdateResult,
};
use crate::handles::database::Database;
use crate::handles::find::{Find, FindIter};
use crate::handles::transaction::Transaction;
use crate::plan::Explain;

/// A collection whose documents are `T` values. Obtain one with
/// [`Database::typed`] (each statement runs in its own transaction) or
/// [`Transaction::typed`] (statements run inside the transaction).
///
/// Every method lowers its typed arguments to the JSON documents of the untyped
/// [`CollectionHandle`] API and runs that, so behaviour is identical.
pub struct TypedCollection<T, X: ExecSource = Database> {
    coll: CollectionHandle<X>,
    report: Arc<SyncReport>,
    _marker: PhantomData<fn() -> T>,
}

impl<T, X: ExecSource> Clone for TypedCollection<T, X> {
    fn clone(&self) -> Self {
        TypedCollection {
            coll: self.coll.clone(),
            report: self.report.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T, X: ExecSource> fmt::Debug for TypedCollection<T, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedCollection")
            .field("name", &self.coll.name())
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

/// A [`TypedCollection`] inside an explicit transaction ([`Transaction::typed`]).
pub type TxTypedCollection<'t, T> = TypedCollection<T, TxExec<'t>>;

fn options_of<T: Document>() -> CollectionOptions {
    CollectionOptions::with_id_field(T::ID_FIELD)
}

impl Database {
    /// The collection of `T` documents, created on first use, with its indexes
    /// reconciled with the ones `T` declares (missing ones built, changed ones
    /// rebuilt, undeclared ones kept with a warning) and `T`'s schema version
    /// recorded. See [`Database::typed_with`] for other policies.
    pub fn typed<T: Document>(&self) -> Result<TypedCollection<T>> {
        self.typed_with(TypedOptions::default())
    }

    /// [`Database::typed`] with options: the policy for undeclared indexes
    /// ([`super::SchemaSync`]) and a progress callback for index builds.
    ///
    /// When the stored indexes already match, nothing is written; otherwise the
    /// reconciliation runs in one transaction (all of it, or none of it).
    pub fn typed_with<T: Document>(&self, mut options: TypedOptions) -> Result<TypedCollection<T>> {
        let coll = self.collection_with(T::COLLECTION, options_of::<T>())?;
        let report = match sync::sync::<T>(&coll, &mut options, true)? {
            Some(report) => report,
            None => {
                let res = self.transaction(|tx| {
                    let c = tx.collection_with(T::COLLECTION, options_of::<T>())?;
                    sync::sync::<T>(&c, &mut options, false)
                });
                match res {
                    Ok(report) => report.unwrap_or_default(),
                    Err(Error::ReadOnly) => {
                        tracing::warn!(
                            collection = T::COLLECTION,
                            "read-only database: indexes not reconciled with the schema"
                        );
                        SyncReport {
                            collection: T::COLLECTION.to_owned(),
                            skipped: true,
                            ..SyncReport::default()
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(TypedCollection::new(coll, report))
    }
}

impl<'db> Transaction<'db> {
    /// The collection of `T` documents inside this transaction, reconciled with
    /// `T`'s declared indexes as [`Database::typed`] does (as part of the transaction).
    pub fn typed<T: Document>(&self) -> Result<TxTypedCollection<'_, T>> {
        self.typed_with(TypedOptions::default())
    }

    /// [`Transaction::typed`] with options.
    pub fn typed_with<T: Document>(
        &self,
        mut options: TypedOptions,
    ) -> Result<TxTypedCollection<'_, T>> {
        let coll = self.collection_with(T::COLLECTION, options_of::<T>())?;
        let report = sync::sync::<T>(&coll, &mut options, false)?.unwrap_or_default();
        Ok(TypedCollection::new(coll, report))
    }
}

impl<T: Document, X: ExecSource> TypedCollection<T, X> {
    fn new(coll: CollectionHandle<X>, report: SyncReport) -> Self {
        TypedCollection {
            coll,
            report: Arc::new(report),
            _marker: PhantomData,
        }
    }

    /// The untyped handle on the same collection.
    pub fn raw(&self) -> &CollectionHandle<X> {
        &self.coll
    }

    /// The collection name.
    pub fn name(&self) -> &str {
        self.coll.name()
    }

    /// What opening this collection did to its indexes and schema version.
    pub fn sync_report(&self) -> &SyncReport {
        &self.report
    }

    fn to_document(&self, doc: &T) -> Result<Value> {
        let mut v = serde_json::to_value(doc).map_err(|e| {
            Error::InvalidDocument(format!(
                "a {} cannot be serialized: {e}",
                std::any::type_name::<T>()
            ))
        })?;
        let Value::Object(m) = &mut v else {
            return Err(Error::InvalidDocument(format!(
                "a {} serializes to {}, not a document",
                std::any::type_name::<T>(),
                crate::doc::json::json_type_name(&v)
            )));
        };
        if doc.id().is_none() {
            m.remove(T::ID_FIELD);
        }
        Ok(v)
    }

    fn decode_id(&self, id: Value) -> Result<T::Id> {
        serde_json::from_value(id.clone()).map_err(|e| Error::Decode {
            collection: self.coll.name().to_owned(),
            id: id.to_string(),
            message: format!("primary key: {e}"),
        })
    }

    fn id_filter<Q: Serialize + ?Sized>(&self, id: &Q) -> Result<Value> {
        let id = serde_json::to_value(id)
            .map_err(|e| Error::InvalidFilter(format!("primary key cannot be serialized: {e}")))?;
        let mut m = Map::new();
        m.insert(T::ID_FIELD.to_owned(), id);
        Ok(Value::Object(m))
    }

    fn own_id_filter(&self, doc: &T) -> Result<Value> {
        match doc.id() {
            Some(id) => self.id_filter(id),
            None => Err(Error::InvalidDocument(format!(
                "this {} has no primary key ('{}' is None)",
                std::any::type_name::<T>(),
                T::ID_FIELD
            ))),
        }
    }

    /// Inserts `doc`; returns its primary key (generated when the id is `None`).
    pub fn insert_one(&self, doc: &T) -> Result<T::Id> {
        let id = self.coll.insert_one(self.to_document(doc)?)?;
        self.decode_id(id)
    }

    /// Inserts every document atomically: all of them or, on any error, none.
    pub fn insert_many<'a>(&self, docs: impl IntoIterator<Item = &'a T>) -> Result<Vec<T::Id>> {
        let docs = docs
            .into_iter()
            .map(|d| self.to_document(d))
            .collect::<Result<Vec<_>>>()?;
        self.coll
            .insert_many(docs)?
            .into_iter()
            .map(|id| self.decode_id(id))
            .collect()
    }

    /// The document with primary key `id`: `get(&7)`, `get("abc")`.
    pub fn get<Q>(&self, id: &Q) -> Result<Option<T>>
    where
        T::Id: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let id = serde_json::to_value(id)
            .map_err(|e| Error::InvalidFilter(format!("primary key cannot be serialized: {e}")))?;
        self.coll.get_as::<T>(id)
    }

    /// Starts a find statement; refine it with `sort`, `skip`, `limit`.
    pub fn find(&self, filter: Filter<T>) -> TypedFind<T, X> {
        TypedFind {
            find: filter.into_json().map(|f| self.coll.find(f)),
            id_field: T::ID_FIELD,
            _marker: PhantomData,
        }
    }

    /// The first document matching `filter` (in primary-key order).
    pub fn find_one(&self, filter: Filter<T>) -> Result<Option<T>> {
        self.find(filter).first()
    }

    /// The untyped view: a find statement returning JSON documents (with
    /// projections), for data that does not fit `T`.
    pub fn find_raw(&self, filter: Value) -> Find<X> {
        self.coll.find(filter)
    }

    /// Counts the documents matching `filter`.
    pub fn count(&self, filter: Filter<T>) -> Result<u64> {
        self.coll.count(filter.into_json()?)
    }

    /// How `find(filter)` runs (index or scan, bounds, work done).
    pub fn explain(&self, filter: Filter<T>) -> Result<Explain> {
        self.coll.explain(filter.into_json()?)
    }

    /// Applies `update` to the first document matching `filter`.
    pub fn update_one(&self, filter: Filter<T>, update: Update<T>) -> Result<UpdateResult> {
        self.update_one_with(filter, update, UpdateOptions::default())
    }

    /// Applies `update` to every document matching `filter`, atomically.
    pub fn update_many(&self, filter: Filter<T>, update: Update<T>) -> Result<UpdateResult> {
        self.update_many_with(filter, update, UpdateOptions::default())
    }

    /// [`update_one`](Self::update_one) with options (upsert).
    pub fn update_one_with(
        &self,
        filter: Filter<T>,
        update: Update<T>,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        self.coll
            .update_one_with(filter.into_json()?, update.into_json()?, options)
    }

    /// [`update_many`](Self::update_many) with options (upsert).
    pub fn update_many_with(
        &self,
        filter: Filter<T>,
        update: Update<T>,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        self.coll
            .update_many_with(filter.into_json()?, update.into_json()?, options)
    }

    /// Replaces the first document matching `filter` with `doc`.
    pub fn replace_one(&self, filter: Filter<T>, doc: &T) -> Result<UpdateResult> {
        self.coll
            .replace_one(filter.into_json()?, self.to_document(doc)?)
    }

    /// Replaces the stored document that has `doc`'s primary key.
    pub fn replace(&self, doc: &T) -> Result<UpdateResult> {
        self.coll
            .replace_one(self.own_id_filter(doc)?, self.to_document(doc)?)
    }

    /// Replaces the document with `doc`'s primary key, or inserts `doc`.
    pub fn save(&self, doc: &T) -> Result<UpdateResult> {
        self.coll.replace_one_with(
            self.own_id_filter(doc)?,
            self.to_document(doc)?,
            UpdateOptions::upsert(),
        )
    }

    /// Deletes the document with primary key `id`; false when there was none.
    pub fn delete<Q>(&self, id: &Q) -> Result<bool>
    where
        T::Id: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        Ok(self.coll.delete_one(self.id_filter(id)?)? == 1)
    }

    /// Deletes the first document matching `filter`; returns how many (0 or 1).
    pub fn delete_one(&self, filter: Filter<T>) -> Result<u64> {
        self.coll.delete_one(filter.into_json()?)
    }

    /// Deletes every document matching `filter`; returns how many.
    pub fn delete_many(&self, filter: Filter<T>) -> Result<u64> {
        self.coll.delete_many(filter.into_json()?)
    }
}

/// A typed find statement; nothing runs until [`to_vec`](Self::to_vec),
/// [`first`](Self::first) or iteration.
pub struct TypedFind<T, X: ExecSource = Database> {
    find: Result<Find<X>>,
    id_field: &'static str,
    _marker: PhantomData<fn() -> T>,
}

impl<T, X: ExecSource> fmt::Debug for TypedFind<T, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedFind")
            .field("type", &std::any::type_name::<T>())
            .field("ok", &self.find.is_ok())
            .finish()
    }
}

impl<T: Document, X: ExecSource> TypedFind<T, X> {
    fn map(mut self, f: impl FnOnce(Find<X>) -> Find<X>) -> Self {
        self.find = self.find.map(f);
        self
    }

    /// Orders results: `.sort(User::fields().age().desc().then(User::fields().email().asc()))`.
    pub fn sort(self, sort: Sort<T>) -> Self {
        self.map(|f| f.sort(sort.to_json()))
    }

    /// Skips the first `n` results.
    pub fn skip(self, n: u64) -> Self {
        self.map(|f| f.skip(n))
    }

    /// Returns at most `n` results (`0` means no limit).
    pub fn limit(self, n: u64) -> Self {
        self.map(|f| f.limit(n))
    }

    /// Runs the statement; every result deserialized straight from its stored
    /// encoding. A document that does not fit `T` fails with [`Error::Decode`].
    pub fn to_vec(self) -> Result<Vec<T>> {
        self.find?.to_vec_as::<T>()
    }

    /// The first result.
    pub fn first(self) -> Result<Option<T>> {
        Ok(self.limit(1).to_vec()?.into_iter().next())
    }

    /// How the statement runs.
    pub fn explain(self) -> Result<Explain> {
        self.find?.explain()
    }
}

impl<T: Document, X: ExecSource> IntoIterator for TypedFind<T, X> {
    type Item = Result<T>;
    type IntoIter = TypedIter<T, X>;

    fn into_iter(self) -> TypedIter<T, X> {
        match self.find {
            Ok(find) => TypedIter {
                id_field: self.id_field,
                inner: Ok(find.into_iter()),
                _marker: PhantomData,
            },
            Err(e) => TypedIter {
                id_field: self.id_field,
                inner: Err(Some(e)),
                _marker: PhantomData,
            },
        }
    }
}

/// Streaming iterator over a [`TypedFind`]'s results (see [`FindIter`]).
pub struct TypedIter<T, X: ExecSource = Database> {
    id_field: &'static str,
    inner: std::result::Result<FindIter<X>, Option<Error>>,
    _marker: PhantomData<fn() -> T>,
}

impl<T: Document, X: ExecSource> Iterator for TypedIter<T, X> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let it = match &mut self.inner {
            Ok(it) => it,
            Err(e) => return e.take().map(Err),
        };
        let v = match it.next()? {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let id = v
            .get(self.id_field)
            .map(Value::to_string)
            .unwrap_or_else(|| "(no id)".into());
        Some(serde_json::from_value(v).map_err(|e| Error::Decode {
            collection: T::COLLECTION.to_owned(),
            id,
            message: e.to_string(),
        }))
    }
}
