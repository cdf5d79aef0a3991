//! The only module that calls the engine. Everything above it speaks BSON
//! (`bson::Document`); this module turns that into calls of collection-store's
//! public JSON API (`Database`, `Collection`, `Transaction`, `IndexSpec`) and
//! turns results and errors back. When the engine gains a BSON-native
//! statement API, this module is what changes.
//!
//! Namespaces: a MongoDB namespace `db.coll` is the engine collection named
//! `db.coll` in the one database directory the server opens.

pub mod errors;
pub mod json;
pub mod txn;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use bson::{doc, Bson, Document};
use collection_store::{
    Collection, Database, DatabaseOptions, IndexSpec, Transaction, TxCollection, UpdateOptions,
};

pub use errors::command_error;
use json::{doc_from_json, doc_to_json, from_json};
pub use txn::{TxnLimits, TxnWorker};

use crate::errors::{code, CmdResult, CommandError};

/// The open database and a cache of collection handles.
pub struct Engine {
    db: Database,
    handles: RwLock<HashMap<String, Collection>>,
}

/// Where a statement runs.
#[derive(Clone)]
pub enum Scope {
    /// In its own durable transaction (group-committed with concurrent ones).
    Auto,
    /// Inside a session's open transaction.
    Txn(Arc<TxnWorker>),
}

/// A collection handle in either scope.
pub enum Coll<'t> {
    /// Statements commit on their own.
    Auto(Collection),
    /// Statements run inside a transaction.
    Tx(TxCollection<'t>),
}

macro_rules! on {
    ($c:expr, $x:ident => $body:expr) => {
        match $c {
            Coll::Auto($x) => $body,
            Coll::Tx($x) => $body,
        }
    };
}

/// Whether a statement may create a missing collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads: a missing collection is empty and stays missing.
    Read,
    /// Writes: a missing collection is created, as MongoDB does.
    Write,
}

/// A find statement.
#[derive(Debug, Clone, Default)]
pub struct FindSpec {
    /// The filter.
    pub filter: Document,
    /// The sort, if any (else primary-key order).
    pub sort: Option<Document>,
    /// The projection, if any.
    pub projection: Option<Document>,
    /// Documents to skip.
    pub skip: u64,
    /// At most this many documents (`None`: all).
    pub limit: Option<u64>,
}

/// The change an update applies.
#[derive(Debug, Clone)]
pub enum Change {
    /// Update operators (`$set`, `$inc`, ...).
    Operators(Document),
    /// A replacement document.
    Replacement(Document),
}

/// What an update did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// Documents matched.
    pub matched: u64,
    /// Documents changed.
    pub modified: u64,
    /// The primary key of an upserted document.
    pub upserted: Option<Bson>,
}

/// An index as MongoDB describes it (`listIndexes`).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    /// The index name.
    pub name: String,
    /// `{field: 1|-1, ...}`.
    pub key: Document,
    /// Unique index.
    pub unique: bool,
    /// Sparse index.
    pub sparse: bool,
    /// Partial filter.
    pub partial: Option<Document>,
}

impl Engine {
    /// Opens (or creates) the database directory.
    pub fn open(path: &Path) -> collection_store::Result<Engine> {
        Ok(Engine::new(Database::open_with(
            path,
            DatabaseOptions::default(),
        )?))
    }

    /// Wraps an open database.
    pub fn new(db: Database) -> Engine {
        Engine {
            db,
            handles: RwLock::new(HashMap::new()),
        }
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Size of the data file in bytes.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(self.db.path().join("data.mdb"))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// The newest change-log LSN.
    pub fn last_lsn(&self) -> u64 {
        self.db.last_lsn().unwrap_or(0)
    }

    /// Names of every collection.
    pub fn list_collections(&self) -> CmdResult<Vec<String>> {
        self.db.list_collections().map_err(command_error)
    }

    /// Creates a collection; false when it already existed.
    pub fn create_collection(&self, name: &str) -> CmdResult<bool> {
        if self.list_collections()?.iter().any(|n| n == name) {
            return Ok(false);
        }
        self.handle(name, Access::Write).map(|_| true)
    }

    /// Drops a collection; false when it did not exist.
    pub fn drop_collection(&self, name: &str) -> CmdResult<bool> {
        if let Ok(mut h) = self.handles.write() {
            h.remove(name);
        }
        self.db.drop_collection(name).map_err(command_error)
    }

    fn handle(&self, name: &str, access: Access) -> CmdResult<Option<Collection>> {
        if let Some(c) = self.handles.read().ok().and_then(|h| h.get(name).cloned()) {
            return Ok(Some(c));
        }
        if access == Access::Read && !self.list_collections()?.iter().any(|n| n == name) {
            return Ok(None);
        }
        let c = self.db.collection(name).map_err(command_error)?;
        if let Ok(mut h) = self.handles.write() {
            h.insert(name.to_owned(), c.clone());
        }
        Ok(Some(c))
    }

    /// Starts a session transaction on its own thread.
    pub fn begin_session_txn(&self, limits: TxnLimits) -> CmdResult<TxnWorker> {
        TxnWorker::start(self.db.clone(), limits)
    }

    /// Runs `f` on collection `name` in `scope`. With [`Access::Read`] outside a
    /// transaction, a missing collection gives `None` and is not created.
    pub fn with_coll<R: Send + 'static>(
        &self,
        scope: &Scope,
        name: &str,
        access: Access,
        f: impl for<'t> FnOnce(Option<Coll<'t>>) -> CmdResult<R> + Send + 'static,
    ) -> CmdResult<R> {
        match scope {
            Scope::Auto => f(self.handle(name, access)?.map(Coll::Auto)),
            Scope::Txn(worker) => {
                let name = name.to_owned();
                worker.run(move |tx| {
                    let c = tx.collection(&name).map_err(command_error)?;
                    f(Some(Coll::Tx(c)))
                })
            }
        }
    }

    /// Runs `f` atomically: inside the session transaction, or in a transaction
    /// of its own that commits when `f` succeeds.
    pub fn atomically<R: Send + 'static>(
        &self,
        scope: &Scope,
        name: &str,
        f: impl for<'t> FnOnce(Coll<'t>) -> CmdResult<R> + Send + 'static,
    ) -> CmdResult<R> {
        match scope {
            Scope::Txn(_) => self.with_coll(scope, name, Access::Write, move |c| match c {
                Some(c) => f(c),
                None => Err(CommandError::new(code::INTERNAL_ERROR, "no collection")),
            }),
            Scope::Auto => {
                let tx = self.db.begin().map_err(command_error)?;
                let out = run_in(&tx, name, f);
                match out {
                    Ok(v) => {
                        tx.commit().map_err(command_error)?;
                        Ok(v)
                    }
                    Err(e) => {
                        tx.rollback();
                        Err(e)
                    }
                }
            }
        }
    }
}

fn run_in<'a, R>(
    tx: &'a Transaction<'_>,
    name: &str,
    f: impl FnOnce(Coll<'a>) -> CmdResult<R>,
) -> CmdResult<R> {
    let c = tx.collection(name).map_err(command_error)?;
    f(Coll::Tx(c))
}

fn filter_json(filter: &Document) -> serde_json::Value {
    doc_to_json(filter)
}

impl Coll<'_> {
    /// The collection's primary-key field (`_id` unless created otherwise).
    pub fn id_field(&self) -> String {
        on!(self, c => c.id_field().to_owned())
    }

    /// Inserts documents (MongoDB semantics: `ordered` stops at the first
    /// failure, unordered tries every document). Returns how many were
    /// inserted and the failures by position.
    pub fn insert(&self, docs: Vec<Document>, ordered: bool) -> (u64, Vec<(usize, CommandError)>) {
        let json: Vec<_> = docs.iter().map(doc_to_json).collect();
        // Fast path: one atomic statement; on any failure, one statement per
        // document tells which ones fail.
        let all = on!(self, c => c.insert_many(json.clone()));
        if all.is_ok() {
            return (docs.len() as u64, Vec::new());
        }
        let mut n = 0;
        let mut failures = Vec::new();
        for (i, d) in json.into_iter().enumerate() {
            match on!(self, c => c.insert_one(d)) {
                Ok(_) => n += 1,
                Err(e) => {
                    failures.push((i, self.explain_error(e)));
                    if ordered {
                        break;
                    }
                }
            }
        }
        (n, failures)
    }

    /// Runs a find statement to completion.
    pub fn find(&self, spec: &FindSpec) -> CmdResult<Vec<Document>> {
        let rows = on!(self, c => {
            let mut f = c.find(filter_json(&spec.filter)).skip(spec.skip);
            if let Some(s) = &spec.sort {
                f = f.sort(doc_to_json(s));
            }
            if let Some(p) = &spec.projection {
                f = f.projection(doc_to_json(p));
            }
            if let Some(l) = spec.limit {
                f = f.limit(l);
            }
            f.to_vec()
        })
        .map_err(command_error)?;
        Ok(rows.into_iter().map(doc_from_json).collect())
    }

    /// The document with primary key `id`.
    pub fn get(&self, id: &Bson) -> CmdResult<Option<Document>> {
        let id = json::to_json(id);
        on!(self, c => c.get(id))
            .map(|d| d.map(doc_from_json))
            .map_err(command_error)
    }

    /// Counts matching documents.
    pub fn count(&self, filter: &Document) -> CmdResult<u64> {
        on!(self, c => c.count(filter_json(filter))).map_err(command_error)
    }

    /// Distinct values of `key` among matching documents.
    pub fn distinct(&self, key: &str, filter: &Document) -> CmdResult<Vec<Bson>> {
        on!(self, c => c.distinct(key, filter_json(filter)))
            .map(|v| v.into_iter().map(from_json).collect())
            .map_err(command_error)
    }

    /// Applies an update to the first (or every, with `multi`) matching document.
    pub fn update(
        &self,
        filter: &Document,
        change: &Change,
        multi: bool,
        upsert: bool,
    ) -> CmdResult<UpdateOutcome> {
        let opts = if upsert {
            UpdateOptions::upsert()
        } else {
            UpdateOptions::default()
        };
        let f = filter_json(filter);
        let r = match change {
            Change::Operators(u) => {
                let u = doc_to_json(u);
                if multi {
                    on!(self, c => c.update_many_with(f, u, opts))
                } else {
                    on!(self, c => c.update_one_with(f, u, opts))
                }
            }
            Change::Replacement(d) => {
                if multi {
                    return Err(CommandError::parse(
                        "multi update is not supported for replacement-style update",
                    ));
                }
                on!(self, c => c.replace_one_with(f, doc_to_json(d), opts))
            }
        }
        .map_err(|e| self.explain_error(e))?;
        Ok(UpdateOutcome {
            matched: r.matched_count,
            modified: r.modified_count,
            upserted: r.upserted_id.map(from_json),
        })
    }

    /// Deletes the first (or every) matching document; returns how many.
    pub fn delete(&self, filter: &Document, multi: bool) -> CmdResult<u64> {
        let f = filter_json(filter);
        if multi {
            on!(self, c => c.delete_many(f))
        } else {
            on!(self, c => c.delete_one(f))
        }
        .map_err(command_error)
    }

    /// The secondary indexes (not the primary key).
    pub fn indexes(&self) -> CmdResult<Vec<IndexInfo>> {
        let specs = on!(self, c => c.list_indexes()).map_err(command_error)?;
        Ok(specs
            .into_iter()
            .map(|s| IndexInfo {
                name: s.index_name(),
                key: s
                    .fields
                    .iter()
                    .map(|(p, d)| (p.clone(), Bson::Int32(*d)))
                    .collect(),
                unique: s.unique,
                sparse: s.sparse,
                partial: s.partial.map(doc_from_json),
            })
            .collect())
    }

    /// Creates an index (built over existing documents).
    pub fn create_index(&self, info: &IndexInfo) -> CmdResult<()> {
        let fields: Vec<(String, i32)> = info
            .key
            .iter()
            .map(|(k, v)| {
                let dir = match v {
                    Bson::Int32(i) => *i as f64,
                    Bson::Int64(i) => *i as f64,
                    Bson::Double(f) => *f,
                    _ => 0.0,
                };
                (k.clone(), if dir < 0.0 { -1 } else { 1 })
            })
            .collect();
        let mut spec = IndexSpec::new(fields).name(info.name.clone());
        if info.unique {
            spec = spec.unique();
        }
        if info.sparse {
            spec = spec.sparse();
        }
        if let Some(p) = &info.partial {
            spec = spec.partial(doc_to_json(p));
        }
        on!(self, c => c.create_index(spec))
            .map(|_| ())
            .map_err(|e| self.explain_error(e))
    }

    /// Drops the named index.
    pub fn drop_index(&self, name: &str) -> CmdResult<()> {
        on!(self, c => c.drop_index(name)).map_err(command_error)
    }

    /// Maps an engine error, adding `keyPattern`/`keyValue` to duplicate keys.
    fn explain_error(&self, e: collection_store::Error) -> CommandError {
        let details = match &e {
            collection_store::Error::DuplicateKey { index, key } => {
                Some((index.clone(), key.clone()))
            }
            _ => None,
        };
        let mut err = command_error(e);
        if let Some((index, key)) = details {
            let key_value = serde_json::from_str::<serde_json::Value>(&key)
                .map(doc_from_json)
                .unwrap_or_default();
            let id = self.id_field();
            let pattern = if index == format!("{id}_") {
                doc! { id.clone(): 1 }
            } else {
                self.indexes()
                    .ok()
                    .and_then(|ix| ix.into_iter().find(|i| i.name == index))
                    .map(|i| i.key)
                    .unwrap_or_default()
            };
            let name = if index == format!("{id}_") {
                "_id_".to_owned()
            } else {
                index
            };
            err.message = format!(
                "E11000 duplicate key error collection index: {name} dup key: {}",
                bson::Bson::Document(key_value.clone()).into_relaxed_extjson()
            );
            err.extra = Some(Box::new(
                doc! {"keyPattern": pattern, "keyValue": key_value},
            ));
        }
        err
    }
}
