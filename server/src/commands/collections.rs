//! `create`, `drop`, `listCollections`.

use bson::{doc, Bson, Document};

use super::{args, Request};
use crate::errors::{code, CmdResult, CommandError};

/// The collections of database `db`, by their MongoDB names.
pub fn collections_of(r: &Request<'_>, db: &str) -> CmdResult<Vec<String>> {
    let prefix = format!("{db}.");
    Ok(r.shared
        .engine
        .list_collections()?
        .into_iter()
        .filter_map(|n| n.strip_prefix(&prefix).map(str::to_owned))
        .collect())
}

/// `create`.
pub fn create(r: &mut Request<'_>) -> CmdResult<Document> {
    let name = r.collection()?;
    for (k, v) in r.cmd.iter().skip(1) {
        let ignorable = k.starts_with('$')
            || matches!(
                k.as_str(),
                "lsid"
                    | "txnNumber"
                    | "autocommit"
                    | "startTransaction"
                    | "writeConcern"
                    | "comment"
                    | "apiVersion"
                    | "apiStrict"
                    | "apiDeprecationErrors"
                    | "readPreference"
            )
            || matches!(v, Bson::Boolean(false) | Bson::Null);
        if !ignorable {
            return Err(CommandError::new(
                code::COMMAND_NOT_SUPPORTED,
                format!("create: option '{k}' is not supported (no capped collections, views, validators or time series)"),
            ));
        }
    }
    if !r.shared.engine.create_collection(&name)? {
        return Err(CommandError::new(
            code::NAMESPACE_EXISTS,
            format!("Collection {name} already exists."),
        ));
    }
    Ok(Document::new())
}

/// `drop`.
pub fn drop(r: &mut Request<'_>) -> CmdResult<Document> {
    let name = r.collection()?;
    r.shared.cursors.kill_namespace(&name);
    if !r.shared.engine.drop_collection(&name)? {
        return Err(CommandError::new(
            code::NAMESPACE_NOT_FOUND,
            format!("ns not found: {name}"),
        ));
    }
    Ok(doc! {"ns": name})
}

/// Whether a collection description matches a `listCollections` filter
/// (equality on `name` or `type`, `$in`/`$eq`/`$ne` on `name`).
fn matches(filter: &Document, name: &str) -> CmdResult<bool> {
    for (k, cond) in filter {
        let value = match k.as_str() {
            "name" => name,
            "type" => "collection",
            other => {
                return Err(CommandError::bad_value(format!(
                    "listCollections: filter on '{other}' is not supported (only name and type)"
                )))
            }
        };
        let ok = match cond {
            Bson::String(s) => s == value,
            Bson::Document(ops) => {
                let mut all = true;
                for (op, arg) in ops {
                    all &= match (op.as_str(), arg) {
                        ("$eq", Bson::String(s)) => s == value,
                        ("$ne", Bson::String(s)) => s != value,
                        ("$in", Bson::Array(a)) => a.iter().any(|v| v.as_str() == Some(value)),
                        ("$nin", Bson::Array(a)) => !a.iter().any(|v| v.as_str() == Some(value)),
                        _ => {
                            return Err(CommandError::bad_value(format!(
                                "listCollections: operator {op} is not supported in the filter ($eq, $ne, $in, $nin)"
                            )))
                        }
                    };
                }
                all
            }
            _ => false,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `listCollections`.
pub fn list_collections(r: &mut Request<'_>) -> CmdResult<Document> {
    let filter = args::opt_doc(r.cmd, "filter")?.unwrap_or_default();
    let name_only = args::opt_bool(r.cmd, "nameOnly")?.unwrap_or(false);
    let db = r.db.clone();
    let mut out = Vec::new();
    for name in collections_of(r, &db)? {
        if !matches(&filter, &name)? {
            continue;
        }
        out.push(if name_only {
            doc! {"name": name, "type": "collection"}
        } else {
            doc! {
                "name": name,
                "type": "collection",
                "options": {},
                "info": {"readOnly": false},
                "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
            }
        });
    }
    Ok(args::cursor_reply(
        "firstBatch",
        out,
        0,
        &format!("{db}.$cmd.listCollections"),
    ))
}
