//! Checking a query's parts without a collection, and rendering or decoding
//! a stored document: for layers built on the public API (an ORM driver) that
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
/// use collection_store::{check_find, Error};
/// use serde_json::json;
///
/// let (filter, sort, fields) = (json!({"a": 1}), json!({"a": -1}), json!({"a": 1}));
/// assert!(check_find(&filter, Some(&sort), Some(&fields), "_id").is_ok());
/// let bad = check_find(&json!({"a": {"$bogus": 1}}), None, None, "_id");
/// assert!(matches!(bad, Err(Error::InvalidFilter(_))));
/// let bad = check_find(&filter, Some(&json!({"a": 2})), None, "_id");
/// assert!(matches!(bad, Err(Error::InvalidSort(_))));
/// let bad = check_find(&filter, None, Some(&json!({"a": 1, "b": 0})), "_id");
/// assert!(matches!(bad, Err(Error::InvalidProjection(_))));
/// // Excluding the primary key from an inclusion is allowed, whatever its name.
/// assert!(check_find(&filter, None, Some(&json!({"a": 1, "key": 0})), "key").is_ok());
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

/// Decodes a stored document into `T` exactly as the typed API does: straight
/// from BSON, integers beyond `i64` through JSON, and a document that does not
/// fit is [`crate::Error::Decode`] naming `collection`, the document's
/// `id_field`, the field's path and what it holds.
///
/// ```
/// use collection_store::{decode_document, Error};
///
/// #[derive(serde::Deserialize)]
/// struct User { name: String, age: u32 }
/// let raw = bson::rawdoc! {"_id": 1, "name": "Ann", "age": 31};
/// let user: User = decode_document(&raw, "users", "_id").unwrap();
/// assert_eq!((user.name.as_str(), user.age), ("Ann", 31));
/// let raw = bson::rawdoc! {"_id": 2, "name": "Bob", "age": "old"};
/// match decode_document::<User>(&raw, "users", "_id") {
///     Err(Error::Decode { path, found, .. }) => assert_eq!((path.as_str(), found.as_str()), ("age", "string")),
///     other => panic!("{:?}", other.err()),
/// }
/// ```
pub fn decode_document<T: serde::de::DeserializeOwned>(
    raw: &RawDocument,
    collection: &str,
    id_field: &str,
) -> Result<T> {
    super::find::decode_as(raw, None, collection, id_field)
}
