//! Document primitives: the keys and encoding of stored documents, and the one
//! place where a document write keeps its indexes, counters and change-log
//! record in step ([`put_document`] / [`delete_document`]). Statements,
//! log redo and DDL all write documents through here.

use std::collections::BTreeMap;

use bson::raw::RawDocument;
use bson::{Bson, Document};

use super::read::Target;
use crate::catalog::{self, CollectionMeta, Counter};
use crate::doc::json::check_field_name;
use crate::doc::{DocRef, ValRef};
use crate::error::{Error, Result};
use crate::index::maintain;
use crate::keys;
use crate::log::{LogOp, OpKind};
use crate::storage::{Table, Wtx};
use crate::MAX_DOCUMENT_SIZE;

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

/// Checks that a value can be a primary key: any value except arrays, regular
/// expressions and `undefined`, and documents that contain none of those.
pub fn check_id(v: &Bson, field: &str) -> Result<()> {
    match v {
        Bson::Array(_) => Err(Error::InvalidDocument(format!(
            "the primary key '{field}' cannot be an array"
        ))),
        Bson::RegularExpression(_) | Bson::Undefined => Err(Error::InvalidDocument(format!(
            "the primary key '{field}' cannot be a regular expression or undefined"
        ))),
        Bson::Document(d) => d.values().try_for_each(|x| check_id(x, field)),
        _ => Ok(()),
    }
}

/// Checks every field name of a document that is about to be stored.
pub fn check_names(doc: &Document, at: &str) -> Result<()> {
    for (k, v) in doc {
        let here = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        check_field_name(k, &here).map_err(Error::InvalidDocument)?;
        check_value_names(v, &here)?;
    }
    Ok(())
}

fn check_value_names(v: &Bson, at: &str) -> Result<()> {
    match v {
        Bson::Document(d) => check_names(d, at),
        Bson::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_value_names(x, &format!("{at}.{i}"))),
        _ => Ok(()),
    }
}

/// The primary key of a document a statement inserts (it must carry one).
pub fn statement_id<'d>(doc: &'d Document, field: &str) -> Result<&'d Bson> {
    let id = doc.get(field).ok_or_else(|| {
        Error::InvalidDocument(format!(
            "a document to insert has no primary key '{field}' (it is fixed before the statement is applied)"
        ))
    })?;
    check_id(id, field)?;
    Ok(id)
}

/// Encodes a document, enforcing the size limit.
pub fn encode(doc: &Document) -> Result<Vec<u8>> {
    let bytes = doc
        .to_vec()
        .map_err(|e| Error::InvalidDocument(format!("cannot encode document: {e}")))?;
    if bytes.len() > MAX_DOCUMENT_SIZE {
        return Err(Error::DocumentTooLarge {
            size: bytes.len(),
            limit: MAX_DOCUMENT_SIZE,
        });
    }
    Ok(bytes)
}

/// A new primary key: a fresh ObjectId as 24 hex digits. Called by whoever
/// accepts a request, before the statement is applied anywhere.
pub fn new_id() -> Bson {
    Bson::String(bson::oid::ObjectId::new().to_hex())
}

/// Gives the document a primary key in `field` (`id` when it has none) and
/// moves the key to the front, as MongoDB does. Returns the key.
pub fn place_id(
    field: &str,
    mut doc: Document,
    id: impl FnOnce() -> Bson,
) -> Result<(Bson, Document)> {
    let id = match doc.remove(field) {
        Some(id) => id,
        None => id(),
    };
    check_id(&id, field)?;
    let mut out = Document::new();
    out.insert(field.to_owned(), id.clone());
    out.extend(doc);
    Ok((id, out))
}

/// The state of one write statement on one collection: its definition, its
/// compiled indexes, statistics deltas written once when it finishes, and the
/// change-log operations it made.
pub struct WriteCtx {
    /// The collection definition and its compiled indexes (also used to plan
    /// the statement's reads).
    pub target: Target,
    counts: BTreeMap<Counter, i64>,
    catalog_dirty: bool,
    /// Record operations for the change log (off when redoing logged entries).
    logged: bool,
    ops: Vec<LogOp>,
}

impl WriteCtx {
    /// Prepares a statement on `meta`.
    pub fn new(meta: CollectionMeta) -> Result<WriteCtx> {
        Ok(WriteCtx::of(Target::new(meta)?))
    }

    /// Prepares a statement from an already compiled definition.
    pub fn from_target(t: &Target) -> WriteCtx {
        WriteCtx::of(t.clone())
    }

    fn of(target: Target) -> WriteCtx {
        WriteCtx {
            target,
            counts: BTreeMap::new(),
            catalog_dirty: false,
            logged: true,
            ops: Vec::new(),
        }
    }

    /// Stops recording change-log operations (the caller copies an entry that
    /// already describes them).
    pub fn unlogged(mut self) -> WriteCtx {
        self.logged = false;
        self
    }

    /// Adds to a statistics counter.
    pub fn count(&mut self, c: Counter, delta: i64) {
        *self.counts.entry(c).or_insert(0) += delta;
    }

    /// Records a change-log operation.
    pub fn log(&mut self, op: LogOp) {
        if self.logged {
            self.ops.push(op);
        }
    }

    /// Writes the statistics and any catalog change (an index became
    /// multikey); returns the definition and the operations to log.
    pub fn finish(self, w: &mut Wtx<'_, '_>) -> Result<(CollectionMeta, Vec<LogOp>)> {
        for (c, d) in &self.counts {
            catalog::add_count(w, *c, *d)?;
        }
        if self.catalog_dirty {
            catalog::save(w, &self.target.meta)?;
        }
        Ok((self.target.meta, self.ops))
    }

    fn record(&mut self, delta: maintain::IndexDelta) {
        for (pos, d) in delta.entry_deltas.iter().enumerate() {
            if *d != 0 {
                let id = self.target.indexes[pos].meta.id;
                self.count(Counter::Entries(id), *d);
            }
        }
        for pos in delta.became_multikey {
            self.target.indexes[pos].meta.multikey = true;
            self.target.meta.indexes[pos].multikey = true;
            self.catalog_dirty = true;
        }
    }
}

/// Stores a document under `key`, replacing `old` when given, updates the
/// indexes, and records the change (`kind`) for the change log.
pub fn put_document(
    w: &mut Wtx<'_, '_>,
    ctx: &mut WriteCtx,
    key: &[u8],
    old: Option<&[u8]>,
    new: &[u8],
    kind: OpKind,
) -> Result<()> {
    if !ctx.target.indexes.is_empty() {
        let pk = &key[4..];
        let old_doc = old.map(|b| raw_doc(b, &ctx.target.meta)).transpose()?;
        let new_doc = RawDocument::from_bytes(new)
            .map_err(|e| Error::InvalidDocument(format!("cannot encode document: {e}")))?;
        let delta = maintain::apply(
            w,
            &ctx.target.indexes,
            pk,
            old_doc.map(DocRef::Raw),
            Some(DocRef::Raw(new_doc)),
        )?;
        ctx.record(delta);
    }
    if old.is_none() {
        ctx.count(Counter::Docs(ctx.target.meta.id), 1);
    }
    w.put(Table::Docs, key, new)?;
    if ctx.logged {
        let collection = ctx.target.meta.name.clone();
        ctx.log(LogOp::Put {
            kind,
            collection,
            document: new.to_vec(),
        });
    }
    Ok(())
}

/// `{<id field>: <id>}` of a stored document, BSON-encoded (a deletion's log record).
fn key_document(meta: &CollectionMeta, doc: &RawDocument) -> Result<Vec<u8>> {
    let field = meta.id_field();
    let id = doc
        .get(field)
        .map_err(|e| Error::Corrupt {
            location: format!("collection '{}'", meta.name),
            message: format!("undecodable document: {e}"),
            lsn: None,
        })?
        .ok_or_else(|| Error::Corrupt {
            location: format!("collection '{}'", meta.name),
            message: format!("stored document without '{field}'"),
            lsn: None,
        })?;
    let name = <&bson::raw::CStr>::try_from(field)
        .map_err(|e| Error::InvalidDocument(format!("primary key field name '{field}': {e}")))?;
    let mut out = bson::RawDocumentBuf::new();
    out.append(name, id);
    Ok(out.into_bytes())
}

/// Removes the document stored under `key` and its index entries.
pub fn delete_document(
    w: &mut Wtx<'_, '_>,
    ctx: &mut WriteCtx,
    key: &[u8],
    old: &[u8],
) -> Result<()> {
    let old_doc = raw_doc(old, &ctx.target.meta)?;
    if !ctx.target.indexes.is_empty() {
        let delta = maintain::apply(
            w,
            &ctx.target.indexes,
            &key[4..],
            Some(DocRef::Raw(old_doc)),
            None,
        )?;
        ctx.record(delta);
    }
    ctx.count(Counter::Docs(ctx.target.meta.id), -1);
    w.delete(Table::Docs, key)?;
    if ctx.logged {
        let key_doc = key_document(&ctx.target.meta, old_doc)?;
        let collection = ctx.target.meta.name.clone();
        ctx.log(LogOp::Delete {
            collection,
            key: key_doc,
        });
    }
    Ok(())
}
