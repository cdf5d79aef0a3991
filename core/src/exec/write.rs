//! Write statements: insert, update (operators, replacement, upsert), delete.
//! Each finds its documents through the planner and writes them through
//! [`put_document`] / [`delete_document`].

use bson::{Bson, Document};
use serde_json::Value;

use super::docs::{
    check_names, delete_document, doc_key, encode, place_id, put_document, raw_doc, WriteCtx,
};
use super::read::Target;
use crate::catalog::CollectionMeta;
use crate::doc::json::json_from_bson;
use crate::doc::{values_equal, ValRef};
use crate::error::{Error, Result};
use crate::log::OpKind;
use crate::query::filter::Filter;
use crate::query::update::{ApplyContext, Update};
use crate::storage::{Table, Wtx};

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

/// Inserts a document that already carries its primary key first (see [`place_id`]).
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

/// What an update statement is given besides its filter and update, all fixed
/// before it is applied so that every node applying it gets the same result.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateMode {
    /// Update every matching document (else the first in primary-key order).
    pub multi: bool,
    /// Insert when nothing matches, with this primary key unless the filter or
    /// the update provides one.
    pub upsert: Option<Bson>,
    /// The time `$currentDate` writes.
    pub now: bson::DateTime,
}

/// Runs an update statement.
pub fn update(
    w: &mut Wtx<'_, '_>,
    ctx: &mut WriteCtx,
    filter: &Filter,
    upd: &Update,
    mode: &UpdateMode,
) -> Result<UpdateResult> {
    let field = ctx.target.meta.id_field().to_owned();
    let field = field.as_str();
    let (multi, now) = (mode.multi, mode.now);
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
    if let (0, Some(new_id)) = (result.matched_count, &mode.upsert) {
        let doc = upsert_document(&ctx.target.meta, filter, upd, now)?;
        let (id, doc) = place_id(ctx.target.meta.id_field(), doc, || new_id.clone())?;
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
