//! Operand and stored-value checks shared by the operators.

use bson::Bson;
use serde_json::Value;

use super::*;

/// Converts an operand to BSON.
pub(super) fn operand_value(op: &str, at: &str, v: &Value) -> Result<Bson> {
    bson_from_json(v, Context::Operand).map_err(|e| match e {
        Error::InvalidFilter(m) | Error::InvalidDocument(m) => invalid(format!("{op} '{at}': {m}")),
        other => other,
    })
}

/// Converts an operand that will be written into a document: embedded field
/// names must be legal in stored documents.
pub(super) fn stored_value(op: &str, at: &str, v: &Value) -> Result<Bson> {
    let b = operand_value(op, at, v)?;
    check_stored(&b, at).map_err(|m| {
        invalid(format!(
            "{op} '{at}': the value would be stored in the document, but {m}"
        ))
    })?;
    Ok(b)
}

pub(super) fn check_stored(b: &Bson, at: &str) -> std::result::Result<(), String> {
    match b {
        Bson::Document(d) => {
            for (k, v) in d {
                let here = format!("{at}.{k}");
                check_field_name(k, &here)?;
                check_stored(v, &here)?;
            }
        }
        Bson::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_stored(v, &format!("{at}.{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}
