//! Conversion between `serde_json::Value` (the untyped API) and BSON.
//!
//! Numbers: integers that fit in 32 bits are stored as BSON int32, other `i64`
//! values as int64, `u64` values above `i64::MAX` as an integral Decimal128 (so
//! they stay exact), and everything else as a double. Types JSON cannot express
//! travel as MongoDB (relaxed) Extended JSON objects: `{"$date": "2024-01-01T00:00:00Z"}`,
//! `{"$oid": "…"}`, `{"$timestamp": {"t": 1, "i": 1}}`, `{"$binary": …}`; these are
//! accepted on input and produced on output, so values round-trip.
//! Doubles that JSON cannot express (NaN, ±infinity) are returned as `null`.

use bson::raw::RawDocument;
use bson::{Bson, Document};
use serde_json::{Map, Number, Value};

use super::value::{decimal_from_i128, ArrRef, DocRef, Num, ValRef};
use crate::error::{Error, Result};

/// Where a JSON value is being converted, which decides which field names are legal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A document to be stored: field names may not start with `$`, contain `.` or NUL.
    Stored,
    /// An operand inside a filter or update: only NUL is refused in names.
    Operand,
}

/// Converts a JSON object into a BSON document for storage.
pub fn document_from_json(v: &Value) -> Result<Document> {
    match v {
        Value::Object(map) => object_to_document(map, Context::Stored, ""),
        other => Err(Error::InvalidDocument(format!(
            "a document must be a JSON object, got {}",
            json_type_name(other)
        ))),
    }
}

/// Converts any JSON value into BSON.
pub fn bson_from_json(v: &Value, ctx: Context) -> Result<Bson> {
    value_to_bson(v, ctx, "")
}

/// Names the JSON type of a value, for error messages.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn bad(ctx: Context, message: String) -> Error {
    match ctx {
        Context::Stored => Error::InvalidDocument(message),
        Context::Operand => Error::InvalidFilter(message),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Checks a field name of a stored document.
pub fn check_field_name(name: &str, at: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err(format!(
            "an empty field name{} cannot be reached by any filter, update or projection path; name the field",
            if at.is_empty() { String::new() } else { format!(" at '{at}'") }
        ));
    }
    if name.contains('\0') {
        return Err(format!("field name {name:?} at '{at}' contains a NUL byte"));
    }
    if name.starts_with('$') {
        return Err(format!(
            "field name '{name}' at '{at}' starts with '$', which is reserved for operators"
        ));
    }
    if name.contains('.') {
        return Err(format!(
            "field name '{name}' at '{at}' contains '.', which separates path parts; nest an object instead"
        ));
    }
    Ok(())
}

fn object_to_document(map: &Map<String, Value>, ctx: Context, at: &str) -> Result<Document> {
    let mut doc = Document::new();
    for (k, v) in map {
        let here = join(at, k);
        match ctx {
            Context::Stored => check_field_name(k, &here).map_err(|m| bad(ctx, m))?,
            Context::Operand => {
                if k.contains('\0') {
                    return Err(bad(ctx, format!("field name {k:?} contains a NUL byte")));
                }
            }
        }
        doc.insert(k.clone(), value_to_bson(v, ctx, &here)?);
    }
    Ok(doc)
}

fn number_to_bson(n: &Number) -> Bson {
    if let Some(i) = n.as_i64() {
        match i32::try_from(i) {
            Ok(small) => Bson::Int32(small),
            Err(_) => Bson::Int64(i),
        }
    } else if let Some(u) = n.as_u64() {
        Bson::Decimal128(decimal_from_i128(u as i128))
    } else {
        Bson::Double(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn value_to_bson(v: &Value, ctx: Context, at: &str) -> Result<Bson> {
    Ok(match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number_to_bson(n),
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| value_to_bson(x, ctx, &join(at, &i.to_string())))
                .collect::<Result<Vec<_>>>()?,
        ),
        Value::Object(map) => {
            if is_extended_json(map) {
                extended_json(map, ctx, at)?
            } else {
                Bson::Document(object_to_document(map, ctx, at)?)
            }
        }
    })
}

const EXTENDED_KEYS: &[&str] = &[
    "$date",
    "$oid",
    "$timestamp",
    "$binary",
    "$regularExpression",
    "$minKey",
    "$maxKey",
    "$numberLong",
    "$numberInt",
    "$numberDouble",
    "$numberDecimal",
    "$symbol",
    "$code",
    "$undefined",
];

fn is_extended_json(map: &Map<String, Value>) -> bool {
    map.len() == 1 && map.keys().all(|k| EXTENDED_KEYS.contains(&k.as_str()))
}

fn extended_json(map: &Map<String, Value>, ctx: Context, at: &str) -> Result<Bson> {
    let key = map.keys().next().cloned().unwrap_or_default();
    match Bson::try_from(Value::Object(map.clone())) {
        Ok(Bson::Document(_)) | Err(_) => Err(bad(
            ctx,
            format!(
                "'{key}' at '{}' is not valid Extended JSON (for example {{\"$date\": \"2024-01-31T12:00:00Z\"}} or {{\"$oid\": \"<24 hex digits>\"}})",
                if at.is_empty() { "<root>" } else { at }
            ),
        )),
        Ok(b) => Ok(b),
    }
}

/// Converts an encoded document to JSON, keeping field order.
pub fn json_from_raw(doc: &RawDocument) -> Value {
    json_from_doc(DocRef::Raw(doc))
}

/// Converts a borrowed document to JSON.
pub fn json_from_doc(doc: DocRef<'_>) -> Value {
    let mut map = Map::new();
    for (k, v) in doc.iter() {
        map.insert(k.to_owned(), json_from_val(v));
    }
    Value::Object(map)
}

/// Converts an owned BSON value to JSON.
pub fn json_from_bson(v: &Bson) -> Value {
    json_from_val(ValRef::from(v))
}

/// Converts a borrowed value to JSON.
pub fn json_from_val(v: ValRef<'_>) -> Value {
    match v {
        ValRef::Null | ValRef::Undefined => Value::Null,
        ValRef::Boolean(b) => Value::Bool(b),
        ValRef::Number(Num::Int(i)) => Value::Number(i.into()),
        ValRef::Number(Num::Big(b)) => match u64::try_from(b) {
            Ok(u) => Value::Number(u.into()),
            Err(_) => Number::from_f64(b as f64).map_or(Value::Null, Value::Number),
        },
        ValRef::Number(Num::Double(f)) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValRef::String(s) | ValRef::Symbol(s) => Value::String(s.to_owned()),
        ValRef::Document(d) => json_from_doc(d),
        ValRef::Array(a) => Value::Array(json_from_arr(a)),
        other => other.to_bson().into_relaxed_extjson(),
    }
}

fn json_from_arr(a: ArrRef<'_>) -> Vec<Value> {
    a.iter().map(json_from_val).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_numbers_and_order() {
        let v = json!({"z": 1, "a": 3000000000i64, "m": u64::MAX, "f": 1.5, "n": null,
                       "arr": [1, "x", {"k": true}], "d": {"$date": "2024-01-31T12:00:00Z"}});
        let doc = document_from_json(&v).unwrap();
        let bytes = doc.to_vec().unwrap();
        let back = json_from_raw(RawDocument::from_bytes(&bytes).unwrap());
        assert_eq!(back, v);
        let keys: Vec<_> = back.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a", "m", "f", "n", "arr", "d"]);
    }

    #[test]
    fn rejects_bad_names() {
        assert!(document_from_json(&json!({"$x": 1})).is_err());
        assert!(document_from_json(&json!({"a": {"b.c": 1}})).is_err());
        assert!(document_from_json(&json!({"a\u{0}": 1})).is_err());
        assert!(document_from_json(&json!([1])).is_err());
        assert!(document_from_json(&json!({"a": {"$date": "not a date"}})).is_err());
    }
}
