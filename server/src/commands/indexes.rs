//! `createIndexes`, `listIndexes`, `dropIndexes`.

use bson::{doc, Bson, Document};

use super::{args, Request};
use crate::engine::{Access, IndexInfo};
use crate::errors::{code, CmdResult, CommandError};

const ID_INDEX: &str = "_id_";

fn parse_index(d: &Document) -> CmdResult<IndexInfo> {
    for (k, _) in d {
        match k.as_str() {
            "key" | "name" | "unique" | "sparse" | "partialFilterExpression" | "v" | "background" | "ns" => {}
            "collation" => args::refuse(d, &["collation"])?,
            "expireAfterSeconds" => {
                return Err(CommandError::new(code::CANNOT_CREATE_INDEX, "TTL indexes (expireAfterSeconds) are not supported"))
            }
            other => {
                return Err(CommandError::new(
                    code::CANNOT_CREATE_INDEX,
                    format!("index option '{other}' is not supported (supported: key, name, unique, sparse, partialFilterExpression)"),
                ))
            }
        }
    }
    let key = match d.get("key") {
        Some(Bson::Document(k)) if !k.is_empty() => k.clone(),
        _ => {
            return Err(CommandError::new(
                code::CANNOT_CREATE_INDEX,
                "an index needs a non-empty 'key' document",
            ))
        }
    };
    let mut norm = Document::new();
    for (field, dir) in &key {
        match args::as_i64(dir).or_else(|| match dir {
            Bson::Double(f) if *f != 0.0 => Some(f.signum() as i64),
            _ => None,
        }) {
            Some(d) if d != 0 => {
                norm.insert(field.clone(), if d < 0 { -1 } else { 1 });
            }
            _ => {
                return Err(CommandError::new(
                    code::CANNOT_CREATE_INDEX,
                    format!(
                        "index key '{field}': {dir} is not supported; only ascending (1) and descending (-1) fields (no text, 2dsphere or hashed indexes)"
                    ),
                ))
            }
        }
    }
    let name = match d.get("name") {
        Some(Bson::String(s)) => s.clone(),
        None => norm
            .iter()
            .map(|(k, v)| format!("{k}_{v}"))
            .collect::<Vec<_>>()
            .join("_"),
        Some(_) => {
            return Err(CommandError::field_type(
                "createIndexes",
                "name",
                "a string",
            ))
        }
    };
    Ok(IndexInfo {
        name,
        key: norm,
        unique: args::opt_bool(d, "unique")?.unwrap_or(false),
        sparse: args::opt_bool(d, "sparse")?.unwrap_or(false),
        partial: args::opt_doc(d, "partialFilterExpression")?,
    })
}

/// `createIndexes`.
pub fn create_indexes(r: &mut Request<'_>) -> CmdResult<Document> {
    let name = r.collection()?;
    let specs = args::doc_array(r.cmd, "indexes")?
        .iter()
        .map(parse_index)
        .collect::<CmdResult<Vec<_>>>()?;
    if specs.is_empty() {
        return Err(CommandError::bad_value(
            "createIndexes: 'indexes' must not be empty",
        ));
    }
    let existed = r
        .shared
        .engine
        .list_collections()?
        .iter()
        .any(|n| n == &name);
    let (before, after) = r
        .shared
        .engine
        .with_coll(&r.scope, &name, Access::Write, move |c| {
            let Some(c) = c else { return Ok((1, 1)) };
            let current = c.indexes()?;
            let before = current.len() + 1;
            let mut created = 0;
            for spec in &specs {
                if spec.name == ID_INDEX {
                    if spec.key.len() == 1
                        && spec.key.keys().next().map(String::as_str) == Some("_id")
                    {
                        continue;
                    }
                    return Err(CommandError::new(
                        code::CANNOT_CREATE_INDEX,
                        "the name _id_ is reserved for the primary key",
                    ));
                }
                if let Some(same) = current.iter().find(|i| i.name == spec.name) {
                    if same == spec {
                        continue;
                    }
                    return Err(CommandError::new(
                        code::INDEX_OPTIONS_CONFLICT,
                        format!(
                            "an index named '{}' exists with different options or keys",
                            spec.name
                        ),
                    ));
                }
                if let Some(other) = current.iter().find(|i| i.key == spec.key) {
                    return Err(CommandError::new(
                        code::INDEX_OPTIONS_CONFLICT,
                        format!(
                            "index '{}' already exists with the same key pattern",
                            other.name
                        ),
                    ));
                }
                c.create_index(spec)?;
                created += 1;
            }
            Ok((before, before + created))
        })?;
    let mut reply = doc! {
        "numIndexesBefore": before as i32,
        "numIndexesAfter": after as i32,
        "createdCollectionAutomatically": !existed,
    };
    if before == after {
        reply.insert("note", "all indexes already exist");
    }
    Ok(reply)
}

fn describe(i: &IndexInfo) -> Document {
    let mut d = doc! {"v": 2, "key": i.key.clone(), "name": i.name.clone()};
    if i.unique {
        d.insert("unique", true);
    }
    if i.sparse {
        d.insert("sparse", true);
    }
    if let Some(p) = &i.partial {
        d.insert("partialFilterExpression", p.clone());
    }
    d
}

fn not_found(name: &str) -> CommandError {
    CommandError::new(
        code::NAMESPACE_NOT_FOUND,
        format!("ns does not exist: {name}"),
    )
}

/// `listIndexes`.
pub fn list_indexes(r: &mut Request<'_>) -> CmdResult<Document> {
    let name = r.collection()?;
    let n2 = name.clone();
    let docs = r
        .shared
        .engine
        .with_coll(&r.scope, &name, Access::Read, move |c| {
            let Some(c) = c else {
                return Err(not_found(&n2));
            };
            let id = c.id_field();
            let mut out = vec![doc! {"v": 2, "key": {id: 1}, "name": ID_INDEX}];
            out.extend(c.indexes()?.iter().map(describe));
            Ok(out)
        })?;
    Ok(args::cursor_reply("firstBatch", docs, 0, &name))
}

/// `dropIndexes`: by name, by key pattern, a list of names, or `"*"`.
pub fn drop_indexes(r: &mut Request<'_>) -> CmdResult<Document> {
    let name = r.collection()?;
    let which = r
        .cmd
        .get("index")
        .cloned()
        .ok_or_else(|| CommandError::parse("dropIndexes: missing 'index'"))?;
    let n2 = name.clone();
    let was = r
        .shared
        .engine
        .with_coll(&r.scope, &name, Access::Read, move |c| {
            let Some(c) = c else {
                return Err(not_found(&n2));
            };
            let current = c.indexes()?;
            let was = current.len() + 1;
            let names: Vec<String> = match &which {
                Bson::String(s) if s == "*" => current.iter().map(|i| i.name.clone()).collect(),
                Bson::String(s) => vec![s.clone()],
                Bson::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Bson::Document(key) => match current.iter().find(|i| &i.key == key) {
                    Some(i) => vec![i.name.clone()],
                    None => {
                        return Err(CommandError::new(
                            code::INDEX_NOT_FOUND,
                            format!("can't find index with key: {key}"),
                        ))
                    }
                },
                _ => {
                    return Err(CommandError::field_type(
                        "dropIndexes",
                        "index",
                        "a name, a key pattern, a list of names or \"*\"",
                    ))
                }
            };
            for n in &names {
                if n == ID_INDEX {
                    return Err(CommandError::new(
                        code::INVALID_OPTIONS,
                        "cannot drop the _id index",
                    ));
                }
                if !current.iter().any(|i| &i.name == n) {
                    return Err(CommandError::new(
                        code::INDEX_NOT_FOUND,
                        format!("index not found with name [{n}]"),
                    ));
                }
            }
            for n in &names {
                c.drop_index(n)?;
            }
            Ok(was)
        })?;
    Ok(doc! {"nIndexesWas": was as i32})
}
