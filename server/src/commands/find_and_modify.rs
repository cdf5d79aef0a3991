//! `findAndModify`: find one document (by `query` and `sort`), then update,
//! replace or remove it, atomically (one engine transaction, or the session's).
//! Returns `{lastErrorObject: {n, updatedExisting, upserted?}, value}`.

use bson::{doc, Bson, Document};

use super::update::{parse_change, with_upsert_id};
use super::{args, Request};
use crate::engine::FindSpec;
use crate::errors::{CmdResult, CommandError};

/// `findAndModify`.
pub fn find_and_modify(r: &mut Request<'_>) -> CmdResult<Document> {
    args::refuse(r.cmd, &["collation", "arrayFilters", "hint"])?;
    let name = r.collection()?;
    let query = args::opt_doc(r.cmd, "query")?.unwrap_or_default();
    let sort = args::opt_doc(r.cmd, "sort")?.filter(|s| !s.is_empty());
    let fields = args::opt_doc(r.cmd, "fields")?.filter(|f| !f.is_empty());
    let remove = args::opt_bool(r.cmd, "remove")?.unwrap_or(false);
    let new = args::opt_bool(r.cmd, "new")?.unwrap_or(false);
    let upsert = args::opt_bool(r.cmd, "upsert")?.unwrap_or(false);
    let change = match (remove, r.cmd.get("update")) {
        (true, Some(_)) => {
            return Err(CommandError::parse(
                "findAndModify: give either remove or update, not both",
            ))
        }
        (true, None) => None,
        (false, u @ Some(_)) => Some(parse_change(u, "findAndModify")?),
        (false, None) => {
            return Err(CommandError::parse(
                "findAndModify: either an update or remove=true is required",
            ))
        }
    };
    if remove && upsert {
        return Err(CommandError::parse(
            "findAndModify: upsert and remove cannot be combined",
        ));
    }
    r.shared.engine.atomically(&r.scope, &name, move |c| {
        let id_field = c.id_field();
        let found = c
            .find(&FindSpec {
                filter: query.clone(),
                sort: sort.clone(),
                projection: None,
                skip: 0,
                limit: Some(1),
            })?
            .pop();
        let project = |d: Option<Document>| -> CmdResult<Bson> {
            let Some(d) = d else { return Ok(Bson::Null) };
            match &fields {
                None => Ok(Bson::Document(d)),
                Some(f) => Ok(Bson::Document(project_doc(&d, f, &id_field)?)),
            }
        };
        match (found, change) {
            (Some(old), None) => {
                let id = old.get(&id_field).cloned().unwrap_or(Bson::Null);
                c.delete(&doc! {&id_field: id}, false)?;
                Ok(doc! {"lastErrorObject": {"n": 1}, "value": project(Some(old))?})
            }
            (None, None) => Ok(doc! {"lastErrorObject": {"n": 0}, "value": Bson::Null}),
            (Some(old), Some(change)) => {
                let id = old.get(&id_field).cloned().unwrap_or(Bson::Null);
                c.update(&doc! {&id_field: id.clone()}, &change, false, false)?;
                let value = if new {
                    project(c.get(&id)?)?
                } else {
                    project(Some(old))?
                };
                Ok(doc! {"lastErrorObject": {"n": 1, "updatedExisting": true}, "value": value})
            }
            (None, Some(change)) if upsert => {
                let change = with_upsert_id(&query, change, &id_field);
                let o = c.update(&query, &change, false, true)?;
                let id = o.upserted.unwrap_or(Bson::Null);
                let value = if new {
                    project(c.get(&id)?)?
                } else {
                    Bson::Null
                };
                Ok(doc! {
                    "lastErrorObject": {"n": 1, "updatedExisting": false, "upserted": id},
                    "value": value,
                })
            }
            (None, Some(_)) => Ok(
                doc! {"lastErrorObject": {"n": 0, "updatedExisting": false}, "value": Bson::Null},
            ),
        }
    })
}

/// Applies a simple top-level projection (inclusion or exclusion of fields;
/// `_id` follows MongoDB's default of being included).
fn project_doc(d: &Document, fields: &Document, id_field: &str) -> CmdResult<Document> {
    let truthy = |v: &Bson| args::truthy(v);
    let inclusion = fields.iter().any(|(k, v)| k != id_field && truthy(v));
    let exclusion = fields.iter().any(|(k, v)| k != id_field && !truthy(v));
    if inclusion && exclusion {
        return Err(CommandError::bad_value(
            "findAndModify: fields mixes inclusion and exclusion",
        ));
    }
    if fields.keys().any(|k| k.contains('.') || k.starts_with('$')) {
        return Err(CommandError::bad_value(
            "findAndModify: fields supports top-level field names only",
        ));
    }
    let keep_id = fields.get(id_field).map(truthy).unwrap_or(true);
    let mut out = Document::new();
    for (k, v) in d {
        let keep = if k == id_field {
            keep_id
        } else if inclusion {
            fields.get(k).is_some_and(truthy)
        } else {
            !fields.contains_key(k)
        };
        if keep {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(out)
}
