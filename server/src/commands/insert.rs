//! `insert`: `{insert: coll, documents: [...], ordered}` → `{n, writeErrors?}`.

use bson::{doc, oid::ObjectId, Bson, Document};

use super::{args, Request};
use crate::engine::Access;
use crate::errors::{CmdResult, CommandError};
use crate::wire::MAX_WRITE_BATCH_SIZE;

/// `insert`.
pub fn insert(r: &mut Request<'_>) -> CmdResult<Document> {
    let name = r.collection()?;
    let docs = args::doc_array(r.cmd, "documents")?;
    if docs.len() > MAX_WRITE_BATCH_SIZE {
        return Err(CommandError::bad_value(format!(
            "insert: {} documents exceed maxWriteBatchSize {MAX_WRITE_BATCH_SIZE}",
            docs.len()
        )));
    }
    let ordered = args::opt_bool(r.cmd, "ordered")?.unwrap_or(true);
    let (n, failures) = r
        .shared
        .engine
        .with_coll(&r.scope, &name, Access::Write, move |c| {
            let Some(c) = c else {
                return Ok((0, Vec::new()));
            };
            let id = c.id_field();
            let docs = docs.into_iter().map(|d| with_object_id(d, &id)).collect();
            Ok(c.insert(docs, ordered))
        })?;
    let mut reply = doc! {"n": n as i64};
    if !failures.is_empty() {
        let errs: Vec<Bson> = failures
            .iter()
            .map(|(i, e)| Bson::Document(e.to_write_error(*i)))
            .collect();
        reply.insert("writeErrors", errs);
    }
    Ok(reply)
}

/// Adds `_id: ObjectId()` in front when a document has no `_id`, as mongod does
/// (collections with another primary-key field let the engine generate it).
pub fn with_object_id(d: Document, id_field: &str) -> Document {
    if id_field != "_id" || d.contains_key("_id") {
        return d;
    }
    let mut out = doc! {"_id": ObjectId::new()};
    out.extend(d);
    out
}
