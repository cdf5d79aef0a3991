//! Statement execution: runs parsed statements against the tables, inside a
//! read snapshot or a write transaction. It knows nothing of the handles
//! above it or of how commits happen: it is given a transaction.
//!
//! - [`statement`]: statements and commands as data, and their encoding;
//! - [`apply`]: applying a statement (the one entry point of every write);
//! - [`write`]: insert, update, upsert, delete;
//! - [`ddl`]: collections, index builds, schema versions;
//! - [`docs`]: document keys, encoding, and the one place a document write
//!   keeps indexes, counters and the log record in step;
//! - [`read`]: find, count, distinct over the planner's access paths;
//! - [`readset`]: what a transaction read, and validating it again;
//! - [`redo`]: re-applying change-log entries (replicas).

pub mod apply;
pub mod ddl;
pub mod docs;
pub mod read;
pub mod readset;
pub mod redo;
pub mod statement;
#[cfg(test)]
mod tests;
pub mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use heed::RoTxn;

use crate::catalog;
use crate::error::Result;
use crate::storage::Store;
use read::Target;

pub use docs::{doc_key, raw_doc};

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
