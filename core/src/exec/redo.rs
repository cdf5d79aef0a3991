//! Redoing change-log entries on another database (a replica): documents go
//! through the same document primitives as statements, so indexes, counters
//! and the catalog stay in step; the frames themselves are copied into this
//! database's log under the same LSNs.

use std::collections::HashMap;

use bson::raw::RawDocument;

use super::ddl;
use super::docs::{delete_document, doc_key, put_document, WriteCtx};
use crate::catalog;
use crate::doc::ValRef;
use crate::error::{Error, Result};
use crate::log::{LogEntry, LogOp, Lsn};
use crate::storage::{Table, Wtx};

/// Redoes the entries of `frames` (consecutive LSNs) that come after
/// `last`, the state's newest; a gap is an error. Returns the frames
/// applied, for the caller to copy into this database's log.
pub(crate) fn apply_frames<'f>(
    w: &mut Wtx<'_, '_>,
    frames: &'f [(Lsn, Vec<u8>)],
    mut last: Lsn,
) -> Result<Vec<(Lsn, &'f [u8])>> {
    let mut applied = Vec::new();
    for (lsn, frame) in frames {
        if *lsn <= last {
            continue;
        }
        if *lsn != last + 1 {
            return Err(Error::LogGap {
                expected: last + 1,
                found: *lsn,
            });
        }
        redo_frame(w, *lsn, frame)?;
        applied.push((*lsn, frame.as_slice()));
        last = *lsn;
    }
    Ok(applied)
}

/// Decodes one frame and redoes its operations.
pub(crate) fn redo_frame(w: &mut Wtx<'_, '_>, lsn: Lsn, frame: &[u8]) -> Result<()> {
    apply_entry(w, &LogEntry::decode(lsn, frame)?)
}

fn diverged(lsn: Lsn, message: String) -> Error {
    Error::Corrupt {
        location: format!("log entry {lsn}"),
        message: format!("cannot be applied here: {message}"),
        lsn: Some(lsn),
    }
}

/// The statement state of `collection`, prepared once per entry.
fn ctx_for<'c>(
    w: &Wtx<'_, '_>,
    ctxs: &'c mut HashMap<String, WriteCtx>,
    collection: &str,
    lsn: Lsn,
) -> Result<&'c mut WriteCtx> {
    if !ctxs.contains_key(collection) {
        let meta = load_meta(w, collection, lsn)?;
        ctxs.insert(collection.to_owned(), WriteCtx::new(meta)?.unlogged());
    }
    ctxs.get_mut(collection)
        .ok_or_else(|| diverged(lsn, format!("collection '{collection}' vanished")))
}

fn flush(w: &mut Wtx<'_, '_>, ctxs: &mut HashMap<String, WriteCtx>) -> Result<()> {
    for (_, ctx) in ctxs.drain() {
        ctx.finish(w)?;
    }
    Ok(())
}

fn key_of(ctx: &WriteCtx, doc: &[u8], lsn: Lsn) -> Result<Vec<u8>> {
    let raw = RawDocument::from_bytes(doc)
        .map_err(|e| diverged(lsn, format!("undecodable document: {e}")))?;
    let field = ctx.target.meta.id_field();
    let id = raw
        .get(field)
        .map_err(|e| diverged(lsn, format!("undecodable document: {e}")))?
        .ok_or_else(|| diverged(lsn, format!("document without '{field}'")))?;
    Ok(doc_key(&ctx.target.meta, ValRef::from(id)))
}

fn load_meta(w: &Wtx<'_, '_>, collection: &str, lsn: Lsn) -> Result<catalog::CollectionMeta> {
    catalog::load(w.store(), w.ro(), collection)?
        .ok_or_else(|| diverged(lsn, format!("collection '{collection}' does not exist")))
}

/// Redoes one entry's operations.
fn apply_entry(w: &mut Wtx<'_, '_>, entry: &LogEntry) -> Result<()> {
    let lsn = entry.lsn;
    let mut ctxs: HashMap<String, WriteCtx> = HashMap::new();
    for op in &entry.ops {
        match op {
            LogOp::Put {
                kind,
                collection,
                document,
            } => {
                let ctx = ctx_for(w, &mut ctxs, collection, lsn)?;
                let key = key_of(ctx, document, lsn)?;
                let old = w.get(Table::Docs, &key)?.map(<[u8]>::to_vec);
                put_document(w, ctx, &key, old.as_deref(), document, *kind)?;
            }
            LogOp::Delete { collection, key } => {
                let ctx = ctx_for(w, &mut ctxs, collection, lsn)?;
                let key = key_of(ctx, key, lsn)?;
                if let Some(old) = w.get(Table::Docs, &key)?.map(<[u8]>::to_vec) {
                    delete_document(w, ctx, &key, &old)?;
                }
            }
            ddl => {
                flush(w, &mut ctxs)?;
                apply_ddl(w, ddl, lsn)?;
            }
        }
    }
    flush(w, &mut ctxs)
}

fn apply_ddl(w: &mut Wtx<'_, '_>, op: &LogOp, lsn: Lsn) -> Result<()> {
    // The entry being copied already describes these operations.
    let mut unlogged = Vec::new();
    let ops = &mut unlogged;
    match op {
        LogOp::CreateCollection {
            collection,
            options,
        } => {
            ddl::ensure_collection(w, collection, Some(options), ops)?;
        }
        LogOp::DropCollection { collection } => {
            ddl::drop_collection(w, collection, ops)?;
        }
        LogOp::CreateIndex { collection, spec } => {
            let mut meta = load_meta(w, collection, lsn)?;
            ddl::create_index(w, &mut meta, spec.clone(), &mut |_, _| {}, ops)?;
        }
        LogOp::DropIndex { collection, name } => {
            let mut meta = load_meta(w, collection, lsn)?;
            ddl::drop_index(w, &mut meta, name, ops)?;
        }
        LogOp::SchemaVersion {
            collection,
            version,
        } => {
            let mut meta = load_meta(w, collection, lsn)?;
            ddl::set_schema_version(w, &mut meta, *version, ops)?;
        }
        LogOp::Put { .. } | LogOp::Delete { .. } => {}
    }
    Ok(())
}
