//! `update`: `{update: coll, updates: [{q, u, multi, upsert}], ordered}` →
//! `{n, nModified, upserted?, writeErrors?}`.

use bson::{doc, oid::ObjectId, Bson, Document};

use super::{args, Request};
use crate::engine::{Access, Change};
use crate::errors::{code, CmdResult, CommandError};

/// One parsed update statement.
pub struct Statement {
    /// `q`.
    pub filter: Document,
    /// `u`.
    pub change: Change,
    /// `multi`.
    pub multi: bool,
    /// `upsert`.
    pub upsert: bool,
}

/// Parses `u`: operators, a replacement, or (unsupported) a pipeline.
pub fn parse_change(u: Option<&Bson>, command: &str) -> CmdResult<Change> {
    match u {
        Some(Bson::Document(d)) => {
            if d.keys().next().is_some_and(|k| k.starts_with('$')) {
                Ok(Change::Operators(d.clone()))
            } else {
                Ok(Change::Replacement(d.clone()))
            }
        }
        Some(Bson::Array(_)) => Err(CommandError::new(
            code::COMMAND_NOT_SUPPORTED,
            format!("{command}: update pipelines (an array of stages) are not supported; use update operators"),
        )),
        _ => Err(CommandError::field_type(command, "u", "a document of update operators or a replacement")),
    }
}

fn parse(d: &Document) -> CmdResult<Statement> {
    args::refuse(d, &["collation", "arrayFilters", "sort"])?;
    let filter = args::opt_doc(d, "q")?.unwrap_or_default();
    let change = parse_change(d.get("u"), "update")?;
    Ok(Statement {
        filter,
        change,
        multi: args::opt_bool(d, "multi")?.unwrap_or(false),
        upsert: args::opt_bool(d, "upsert")?.unwrap_or(false),
    })
}

/// For upserts that may insert, fixes the new document's `_id` as an ObjectId
/// (mongod's choice) unless the filter or the update names `_id`.
pub fn with_upsert_id(filter: &Document, change: Change, id_field: &str) -> Change {
    if id_field != "_id" || filter.contains_key("_id") {
        return change;
    }
    match change {
        Change::Operators(mut u) => {
            let names_id = u
                .values()
                .any(|v| matches!(v, Bson::Document(d) if d.keys().any(|k| k == "_id" || k.starts_with("_id."))));
            if names_id {
                return Change::Operators(u);
            }
            match u.get_mut("$setOnInsert") {
                Some(Bson::Document(s)) => {
                    s.insert("_id", ObjectId::new());
                }
                _ => {
                    u.insert("$setOnInsert", doc! {"_id": ObjectId::new()});
                }
            }
            Change::Operators(u)
        }
        other => other,
    }
}

/// `update`.
pub fn update(r: &mut Request<'_>) -> CmdResult<Document> {
    let name = r.collection()?;
    let ordered = args::opt_bool(r.cmd, "ordered")?.unwrap_or(true);
    let raw = args::doc_array(r.cmd, "updates")?;
    let (n, modified, upserted, errors) =
        r.shared
            .engine
            .with_coll(&r.scope, &name, Access::Write, move |c| {
                let mut n = 0u64;
                let mut modified = 0u64;
                let mut upserted = Vec::new();
                let mut errors = Vec::new();
                let Some(c) = c else {
                    return Ok((n, modified, upserted, errors));
                };
                let id = c.id_field();
                for (i, d) in raw.iter().enumerate() {
                    let res = parse(d).and_then(|s| {
                        let change = if s.upsert {
                            with_upsert_id(&s.filter, s.change, &id)
                        } else {
                            s.change
                        };
                        c.update(&s.filter, &change, s.multi, s.upsert)
                    });
                    match res {
                        Ok(o) => {
                            n += o.matched;
                            modified += o.modified;
                            if let Some(idv) = o.upserted {
                                n += 1;
                                upserted.push(Bson::Document(doc! {"index": i as i32, "_id": idv}));
                            }
                        }
                        Err(e) => {
                            errors.push(Bson::Document(e.to_write_error(i)));
                            if ordered {
                                break;
                            }
                        }
                    }
                }
                Ok((n, modified, upserted, errors))
            })?;
    let mut reply = doc! {"n": n as i64, "nModified": modified as i64};
    if !upserted.is_empty() {
        reply.insert("upserted", upserted);
    }
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    Ok(reply)
}
