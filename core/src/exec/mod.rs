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
/// while an uncommitted transaction's version may later be reused. A
/// committed snapshot is identified by its LMDB transaction id, so repeated
/// reads of an unchanged database do not even read the version.
#[derive(Default)]
pub struct TargetCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    map: HashMap<String, (u64, Arc<Target>)>,
    /// The catalog version seen in the committed snapshot with this LMDB
    /// transaction id: later reads of the same snapshot skip reading it.
    snapshot: Option<(usize, u64)>,
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
        let txn_id = txn.id();
        let known = match self.lock().snapshot {
            Some((id, v)) if committed && id == txn_id => Some(v),
            _ => None,
        };
        let version = match known {
            Some(v) => v,
            None => catalog::version(store, txn)?,
        };
        {
            let mut st = self.lock();
            if committed {
                st.snapshot = Some((txn_id, version));
            }
            if let Some((v, t)) = st.map.get(name) {
                if *v == version {
                    return Ok(Some(t.clone()));
                }
            }
        }
        let Some(meta) = catalog::load(store, txn, name)? else {
            return Ok(None);
        };
        let target = Arc::new(Target::new(meta)?);
        if committed {
            let mut st = self.lock();
            if st.map.len() > 4096 {
                st.map.clear();
            }
            st.map.insert(name.to_owned(), (version, target.clone()));
        }
        Ok(Some(target))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state
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
