//! Write statements: insert, update (operators, replacement, upsert), delete.
//! Every write of a document goes through [`put_document`] / [`delete_document`],
//! the single place where secondary structures are kept in step with documents.

use std::collections::BTreeMap;

use bson::raw::RawDocument;
use bson::{Bson, Document};
use serde_json::Value;

use super::read::Target;
use super::{doc_key, raw_doc};
use crate::catalog::{self, CollectionMeta, Counter};
use crate::doc::json::{check_field_name, json_from_bson};
use crate::doc::DocRef;
use crate::doc::{values_equal, ValRef};
use crate::error::{Error, Result};
use crate::index::maintain;
use crate::log::{LogOp, OpKind};
use crate::query::filter::Filter;
use crate::query::update::{ApplyContext, Update};
use crate::storage::{Table, Wtx};
use crate::MAX_DOCUMENT_SIZE;

/// What an update statement did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateResult {
    /// Documents that matched the filter.
    pub matched_count: u64,
    /// Documents that were changed (a no-op update matches but does not modify).
    pub modified_count: u64,
    /// The primary key of the inserted document when an upsert inserted one.
    pub upserted_id: Option<Value>,
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

/// Gives the document a primary key (a new ObjectId in hex when absent) and
/// moves the key to the front, as MongoDB does.
pub fn with_id(meta: &CollectionMeta, mut doc: Document) -> Result<(Bson, Document)> {
    let field = meta.id_field();
    let id = match doc.remove(field) {
        Some(id) => id,
        None => Bson::String(bson::oid::ObjectId::new().to_hex()),
    };
    check_id(&id, field)?;
    let mut out = Document::new();
    out.insert(field.to_owned(), id.clone());
    out.extend(doc);
    Ok((id, out))
}

/// The state of one write statement on one collection: its definition, its
/// compiled indexes, and statistics deltas written once when it finishes.
pub struct WriteCtx {
    /// The collection definition and its compiled indexes (also used to plan
    /// the statement's reads).
    pub target: Target,
    counts: BTreeMap<Counter, i64>,
    catalog_dirty: bool,
}

impl WriteCtx {
    /// Prepares a statement on `meta`.
    pub fn new(meta: CollectionMeta) -> Result<WriteCtx> {
        Ok(WriteCtx {
            target: Target::new(meta)?,
            counts: BTreeMap::new(),
            catalog_dirty: false,
        })
    }

    /// Prepares a statement from an already compiled definition.
    pub fn from_target(t: &Target) -> WriteCtx {
        WriteCtx {
            target: t.clone(),
            counts: BTreeMap::new(),
            catalog_dirty: false,
        }
    }

    /// Adds to a statistics counter.
    pub fn count(&mut self, c: Counter, delta: i64) {
        *self.counts.entry(c).or_insert(0) += delta;
    }

    /// Writes the statistics and any catalog change (an index became multikey).
    pub fn finish(self, w: &mut Wtx<'_, '_>) -> Result<CollectionMeta> {
        for (c, d) in &self.counts {
            catalog::add_count(w, *c, *d)?;
        }
        if self.catalog_dirty {
            catalog::save(w, &self.target.meta)?;
        }
        Ok(self.target.meta)
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
    w.log(LogOp::Put {
        kind,
        collection: ctx.target.meta.name.clone(),
        document: new.to_vec(),
    });
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
    let key_doc = key_document(&ctx.target.meta, old_doc)?;
    w.log(LogOp::Delete {
        collection: ctx.target.meta.name.clone(),
        key: key_doc,
    });
    Ok(())
}

/// Inserts a document that already carries its primary key first (see [`with_id`]).
pub fn insert(w: &mut Wtx<'_, '_>, ctx: &mut WriteCtx, id: &Bson, doc: &Document) -> Result<()> {
    let bytes = encode(doc)?;
    let meta = &ctx.target.meta;
    let key = doc_key(meta, ValRef::from(id));
    if w.get(Table::Docs, &key)?.is_some() {
        return Err(Error::DuplicateKey {
            index: format!("{}_", meta.id_field()),
            key: format!("{{\"{}\": {}}}", meta.id_field(), json_from_bson(id)),
        });
    }
    put_document(w, ctx, &key, None, &bytes, OpKind::Insert)
}

/// Collects the keys and bytes of matching documents (all, or the first one).
fn matching(
    w: &Wtx<'_, '_>,
    t: &Target,
    filter: &Filter,
    multi: bool,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    super::read::matching_keys(w.store(), w.ro(), t, filter, !multi)
}

/// Runs an update statement.
pub fn update(
    w: &mut Wtx<'_, '_>,
    ctx: &mut WriteCtx,
    filter: &Filter,
    upd: &Update,
    multi: bool,
    upsert: bool,
) -> Result<UpdateResult> {
    let field = ctx.target.meta.id_field().to_owned();
    let field = field.as_str();
    let now = bson::DateTime::now();
    let mut result = UpdateResult::default();
    for (key, old_bytes) in matching(w, &ctx.target, filter, multi)? {
        result.matched_count += 1;
        let old = Document::try_from(raw_doc(&old_bytes, &ctx.target.meta)?).map_err(|e| {
            Error::Corrupt {
                location: format!("collection '{}'", ctx.target.meta.name),
                message: e.to_string(),
                lsn: None,
            }
        })?;
        let old_id = old.get(field).cloned().unwrap_or(Bson::Null);
        let new = match upd.replacement() {
            Some(rep) => {
                if let Some(rep_id) = rep.get(field) {
                    if !values_equal(&ValRef::from(rep_id), &ValRef::from(&old_id)) {
                        return Err(Error::ImmutableField {
                            field: field.to_owned(),
                        });
                    }
                }
                let mut d = Document::new();
                d.insert(field.to_owned(), old_id.clone());
                for (k, v) in rep {
                    if k != field {
                        d.insert(k.clone(), v.clone());
                    }
                }
                d
            }
            None => {
                let mut d = old;
                upd.apply(
                    &mut d,
                    &ApplyContext {
                        is_insert: false,
                        now,
                    },
                )?;
                match d.get(field) {
                    Some(new_id) if values_equal(&ValRef::from(new_id), &ValRef::from(&old_id)) => {
                    }
                    _ => {
                        return Err(Error::ImmutableField {
                            field: field.to_owned(),
                        })
                    }
                }
                check_names(&d, "")?;
                d
            }
        };
        let bytes = encode(&new)?;
        if bytes != old_bytes {
            let kind = if upd.replacement().is_some() {
                OpKind::Replace
            } else {
                OpKind::Update
            };
            put_document(w, ctx, &key, Some(&old_bytes), &bytes, kind)?;
            result.modified_count += 1;
        }
    }
    if result.matched_count == 0 && upsert {
        let doc = upsert_document(&ctx.target.meta, filter, upd, now)?;
        let (id, doc) = with_id(&ctx.target.meta, doc)?;
        insert(w, ctx, &id, &doc)?;
        result.upserted_id = Some(json_from_bson(&id));
    }
    Ok(result)
}

/// Builds the document an upsert inserts: the filter's equality fields, then
/// the update applied with `$setOnInsert` enabled (or the replacement document).
fn upsert_document(
    meta: &CollectionMeta,
    filter: &Filter,
    upd: &Update,
    now: bson::DateTime,
) -> Result<Document> {
    let field = meta.id_field();
    let mut doc = Document::new();
    if let Some(rep) = upd.replacement() {
        if !rep.contains_key(field) {
            if let Some((_, id)) = filter
                .equality_fields()
                .into_iter()
                .find(|(p, _)| p.as_str() == field)
            {
                doc.insert(field.to_owned(), id.clone());
            }
        }
        doc.extend(rep.clone());
        return Ok(doc);
    }
    for (path, value) in filter.equality_fields() {
        set_path(&mut doc, path.parts(), value.clone());
    }
    upd.apply(
        &mut doc,
        &ApplyContext {
            is_insert: true,
            now,
        },
    )?;
    check_names(&doc, "")?;
    Ok(doc)
}

/// Sets a dotted path in a document, creating intermediate documents; a path
/// blocked by a non-document value is left alone.
fn set_path(doc: &mut Document, parts: &[String], value: Bson) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        doc.insert(head.clone(), value);
        return;
    }
    let child = doc
        .entry(head.clone())
        .or_insert_with(|| Bson::Document(Document::new()));
    if let Bson::Document(d) = child {
        set_path(d, rest, value);
    }
}

/// Runs a delete statement; returns the number of documents deleted.
pub fn delete(
    w: &mut Wtx<'_, '_>,
    ctx: &mut WriteCtx,
    filter: &Filter,
    multi: bool,
) -> Result<u64> {
    let victims = matching(w, &ctx.target, filter, multi)?;
    for (key, old) in &victims {
        delete_document(w, ctx, key, old)?;
    }
    Ok(victims.len() as u64)
}

/// Removes a collection's documents, index entries and counters (for dropping it).
pub fn drop_all(w: &mut Wtx<'_, '_>, meta: &CollectionMeta) -> Result<()> {
    let mut prefixes: Vec<(Table, [u8; 4])> = vec![(Table::Docs, meta.prefix())];
    prefixes.extend(meta.indexes.iter().map(|ix| (Table::Indexes, ix.prefix())));
    for (table, prefix) in prefixes {
        delete_prefix(w, table, &prefix)?;
    }
    catalog::clear_count(w, Counter::Docs(meta.id))?;
    for ix in &meta.indexes {
        catalog::clear_count(w, Counter::Entries(ix.id))?;
    }
    Ok(())
}

/// Deletes every key starting with `prefix`, in batches.
pub fn delete_prefix(w: &mut Wtx<'_, '_>, table: Table, prefix: &[u8]) -> Result<()> {
    loop {
        let keys: Vec<Vec<u8>> = w
            .store()
            .table(table)
            .prefix_iter(w.ro(), prefix)?
            .take(1024)
            .map(|r| r.map(|(k, _)| k.to_vec()))
            .collect::<std::result::Result<_, _>>()?;
        if keys.is_empty() {
            return Ok(());
        }
        for k in keys {
            w.delete(table, &k)?;
        }
    }
}
