//! Statement execution: runs parsed statements (filters, updates, sorts,
//! projections) against the tables, inside a read snapshot or a write transaction.

pub mod read;
pub mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bson::raw::RawDocument;
use heed::RoTxn;

use crate::catalog::{self, CollectionMeta};
use crate::doc::ValRef;
use crate::error::{Error, Result};
use crate::keys;
use crate::storage::{Store, Wtx};
use crate::write::group::Job;
use read::Target;

/// Compiled collection definitions, validated by the catalog version.
///
/// Only definitions read in committed snapshots are cached: catalog versions
/// of committed states are unique (one writer at a time, across processes),
/// while an uncommitted transaction's version may later be reused.
#[derive(Default)]
pub struct TargetCache {
    map: Mutex<HashMap<String, (u64, Arc<Target>)>>,
}

impl TargetCache {
    /// The compiled definition of `name` as seen by `txn` (None: no such collection).
    pub fn get(
        &self,
        store: &Store,
        txn: &RoTxn<'_>,
        name: &str,
        committed: bool,
    ) -> Result<Option<Arc<Target>>> {
        let version = catalog::version(store, txn)?;
        if let Some((v, t)) = self.lock().get(name) {
            if *v == version {
                return Ok(Some(t.clone()));
            }
        }
        let Some(meta) = catalog::load(store, txn, name)? else {
            return Ok(None);
        };
        let target = Arc::new(Target::new(meta)?);
        if committed {
            let mut map = self.lock();
            if map.len() > 4096 {
                map.clear();
            }
            map.insert(name.to_owned(), (version, target.clone()));
        }
        Ok(Some(target))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Arc<Target>)>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs statements either in their own transaction or inside a caller's one.
pub(crate) trait Executor {
    /// The cache of compiled collection definitions.
    fn targets(&self) -> &Arc<TargetCache>;
    /// True when reads see committed snapshots only (not an open write transaction).
    fn reads_committed(&self) -> bool;
    /// Runs `f` on a read view: a fresh snapshot, or the enclosing write transaction.
    fn read_dyn(&self, f: &mut dyn FnMut(&Store, &RoTxn<'_>) -> Result<()>) -> Result<()>;
    /// Runs `f` as one atomic statement: its own committed transaction, or a
    /// nested transaction of the enclosing one (a failure undoes only `f`).
    fn write_dyn(&self, f: &mut dyn FnMut(&mut Wtx<'_, '_>) -> Result<()>) -> Result<()>;
    /// Runs an owned statement: through the group-commit writer for a
    /// database, inline (as a nested transaction) inside an explicit transaction.
    fn write_job(&self, job: Job) -> Result<()>;
}

/// Typed wrappers over the object-safe [`Executor`] methods.
pub(crate) trait ExecutorExt: Executor {
    fn read<T>(&self, mut f: impl FnMut(&Store, &RoTxn<'_>) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.read_dyn(&mut |s, t| {
            out = Some(f(s, t)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::TransactionClosed("the read did not run".into()))
    }

    /// Runs an owned statement (see [`Executor::write_job`]) and returns its output.
    fn write_owned<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut Wtx<'_, '_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        self.write_job(Box::new(move |w| {
            let v = f(w)?;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
            Ok(())
        }))?;
        let v = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        v.ok_or_else(|| Error::TransactionClosed("the write did not run".into()))
    }

    fn write<T>(&self, mut f: impl FnMut(&mut Wtx<'_, '_>) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.write_dyn(&mut |w| {
            out = Some(f(w)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::TransactionClosed("the write did not run".into()))
    }
}

impl<E: Executor + ?Sized> ExecutorExt for E {}

/// The key of a document in the `docs` table: collection prefix + encoded primary key.
pub fn doc_key(meta: &CollectionMeta, id: ValRef<'_>) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(&meta.prefix());
    keys::encode_value(&mut key, &id, false);
    key
}

/// Views stored bytes as a document, reporting damage as corruption.
pub fn raw_doc<'a>(bytes: &'a [u8], meta: &CollectionMeta) -> Result<&'a RawDocument> {
    RawDocument::from_bytes(bytes).map_err(|e| Error::Corrupt {
        location: format!("collection '{}'", meta.name),
        message: format!("undecodable document: {e}"),
        lsn: None,
    })
}
