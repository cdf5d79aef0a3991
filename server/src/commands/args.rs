//! Reading command fields with MongoDB's type rules and error codes.

use bson::{Bson, Document};

use crate::errors::{code, CmdResult, CommandError};

/// An integer from any numeric BSON type holding an integral value.
pub fn as_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

/// MongoDB's truthiness for boolean-ish options (`multi: 1`).
pub fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Null => false,
        other => as_i64(other).map(|i| i != 0).unwrap_or(true),
    }
}

/// A required string field.
pub fn str_field<'a>(cmd: &'a Document, key: &str) -> CmdResult<&'a str> {
    match cmd.get(key) {
        Some(Bson::String(s)) => Ok(s),
        Some(_) => Err(CommandError::new(
            code::INVALID_NAMESPACE,
            format!("collection name must be a string ('{key}' field)"),
        )),
        None => Err(CommandError::parse(format!("missing field '{key}'"))),
    }
}

/// An optional document field.
pub fn opt_doc(cmd: &Document, key: &str) -> CmdResult<Option<Document>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d.clone())),
        Some(_) => Err(CommandError::field_type(first_key(cmd), key, "a document")),
    }
}

/// An optional non-negative integer field.
pub fn opt_u64(cmd: &Document, key: &str) -> CmdResult<Option<u64>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => match as_i64(v) {
            Some(i) if i >= 0 => Ok(Some(i as u64)),
            Some(i) => Err(CommandError::bad_value(format!(
                "{}: '{key}' must be non-negative, got {i}",
                first_key(cmd)
            ))),
            None => Err(CommandError::field_type(first_key(cmd), key, "a number")),
        },
    }
}

/// An optional integer field (any sign).
pub fn opt_i64(cmd: &Document, key: &str) -> CmdResult<Option<i64>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => as_i64(v)
            .map(Some)
            .ok_or_else(|| CommandError::field_type(first_key(cmd), key, "an integer")),
    }
}

/// An optional boolean field.
pub fn opt_bool(cmd: &Document, key: &str) -> CmdResult<Option<bool>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(v) if as_i64(v).is_some() => Ok(Some(truthy(v))),
        Some(_) => Err(CommandError::field_type(first_key(cmd), key, "a boolean")),
    }
}

/// A required array of documents.
pub fn doc_array(cmd: &Document, key: &str) -> CmdResult<Vec<Document>> {
    match cmd.get(key) {
        Some(Bson::Array(items)) => items
            .iter()
            .map(|v| match v {
                Bson::Document(d) => Ok(d.clone()),
                _ => Err(CommandError::field_type(
                    first_key(cmd),
                    key,
                    "an array of documents",
                )),
            })
            .collect(),
        Some(_) => Err(CommandError::field_type(
            first_key(cmd),
            key,
            "an array of documents",
        )),
        None => Err(CommandError::parse(format!(
            "{}: missing field '{key}'",
            first_key(cmd)
        ))),
    }
}

fn first_key(cmd: &Document) -> &str {
    cmd.keys().next().map(|s| s.as_str()).unwrap_or("command")
}

/// Refuses options this server cannot honour (MongoDB's rule: ignoring
/// `collation` would return wrong results, so it is an error).
pub fn refuse(cmd: &Document, keys: &[&str]) -> CmdResult<()> {
    for k in keys {
        if let Some(v) = cmd.get(*k) {
            let simple =
                matches!(v, Bson::Document(d) if d.get_str("locale").ok() == Some("simple"));
            if *k == "collation" && simple {
                continue;
            }
            if matches!(v, Bson::Null | Bson::Boolean(false)) {
                continue;
            }
            return Err(CommandError::new(
                code::COMMAND_NOT_SUPPORTED,
                format!(
                    "{}: option '{k}' is not supported by collection-store-server",
                    first_key(cmd)
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a database name (MongoDB's rules: no `/\. "$`, NUL, at most 63 bytes).
pub fn check_db_name(db: &str) -> CmdResult<()> {
    if db.is_empty() || db.len() > 63 || db.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(CommandError::new(
            code::INVALID_NAMESPACE,
            format!("invalid database name '{db}': 1 to 63 bytes, none of / \\ . space \" $"),
        ));
    }
    Ok(())
}

/// The engine collection name of `db.coll`.
pub fn engine_name(db: &str, coll: &str) -> CmdResult<String> {
    if coll.is_empty()
        || coll.contains('\0')
        || coll.starts_with('$')
        || coll.starts_with("system.")
    {
        return Err(CommandError::new(
            code::INVALID_NAMESPACE,
            format!("invalid collection name '{coll}': it must be non-empty, not start with '$' or 'system.'"),
        ));
    }
    Ok(format!("{db}.{coll}"))
}

/// A `{cursor: {firstBatch, id, ns}}` reply.
pub fn cursor_reply(batch_key: &str, docs: Vec<Document>, id: i64, ns: &str) -> Document {
    let docs: Vec<Bson> = docs.into_iter().map(Bson::Document).collect();
    let mut cursor = Document::new();
    cursor.insert(batch_key, docs);
    cursor.insert("id", Bson::Int64(id));
    cursor.insert("ns", ns);
    bson::doc! {"cursor": cursor}
}
