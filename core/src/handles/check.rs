//! Checking a query's parts without a collection, and rendering a stored
//! document as JSON: for layers built on the public API (an ORM driver) that
//! answer reads of a collection that does not exist, or hold documents as raw
//! BSON.

use bson::raw::RawDocument;
use serde_json::Value;

use crate::error::Result;
use crate::query::{filter::Filter, projection::Projection, sort::SortSpec};

/// Parses a find's filter, sort and projection as a find on a collection whose
/// primary key is `id_field` would, and returns the error it would return.
/// Nothing is read or written.
///
/// ```
/// use serde_json::json;
/// assert!(collection_store::check_find(&json!({"a": 1}), Some(&json!({"a": -1})), None, "_id").is_ok());
/// assert!(collection_store::check_find(&json!({"a": {"$bogus": 1}}), None, None, "_id").is_err());
/// ```
pub fn check_find(
    filter: &Value,
    sort: Option<&Value>,
    projection: Option<&Value>,
    id_field: &str,
) -> Result<()> {
    Filter::parse(filter)?;
    if let Some(s) = sort {
        SortSpec::parse(s)?;
    }
    if let Some(p) = projection {
        Projection::parse(p, id_field)?;
    }
    Ok(())
}

/// Renders a stored document as JSON exactly as the untyped API returns it
/// (Extended JSON for types JSON cannot express).
///
/// ```
/// let raw = bson::rawdoc! {"_id": 1, "name": "Ann"};
/// assert_eq!(collection_store::document_json(&raw), serde_json::json!({"_id": 1, "name": "Ann"}));
/// ```
pub fn document_json(raw: &RawDocument) -> Value {
    crate::doc::json::json_from_raw(raw)
}
