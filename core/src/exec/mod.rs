//! Statement execution: runs parsed statements (filters, updates, sorts,
//! projections) against the tables, inside a read snapshot or a write transaction.

pub mod read;
pub mod write;

use bson::raw::RawDocument;
use heed::RoTxn;

use crate::catalog::CollectionMeta;
use crate::doc::ValRef;
use crate::error::{Error, Result};
use crate::keys;
use crate::storage::{Store, Wtx};

/// Runs statements either in their own transaction or inside a caller's one.
pub(crate) trait Executor {
    /// Runs `f` on a read view: a fresh snapshot, or the enclosing write transaction.
    fn read_dyn(&self, f: &mut dyn FnMut(&Store, &RoTxn<'_>) -> Result<()>) -> Result<()>;
    /// Runs `f` as one atomic statement: its own committed transaction, or a
    /// nested transaction of the enclosing one (a failure undoes only `f`).
    fn write_dyn(&self, f: &mut dyn FnMut(&mut Wtx<'_, '_>) -> Result<()>) -> Result<()>;
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
pub(crate) fn doc_key(meta: &CollectionMeta, id: ValRef<'_>) -> Vec<u8> {
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
    })
}
