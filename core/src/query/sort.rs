//! Sort specifications (`{"age": -1, "_id": 1}`) and sort keys.
//!
//! As in MongoDB, a field that holds an array sorts by its smallest element in
//! ascending order and by its largest in descending order; a missing field sorts
//! as `null`, and an empty array sorts before `null`.

use std::cmp::Ordering;

use bson::Bson;
use serde_json::Value;

use super::matcher::visit;
use crate::doc::json::json_type_name;
use crate::doc::{compare, DocRef, FieldPath, ValRef};
use crate::error::{Error, Result};

/// One sort field.
#[derive(Debug, Clone, PartialEq)]
pub struct SortField {
    /// The dotted path.
    pub path: FieldPath,
    /// True for descending (`-1`).
    pub descending: bool,
}

/// A parsed sort specification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SortSpec {
    /// The fields, most significant first.
    pub fields: Vec<SortField>,
}

/// The value a document sorts by on one field.
#[derive(Debug, Clone)]
pub enum SortValue {
    /// An empty array: sorts before everything else.
    EmptyArray,
    /// A value (missing fields are `Null`).
    Value(Bson),
}

impl SortValue {
    fn cmp(&self, other: &SortValue) -> Ordering {
        match (self, other) {
            (SortValue::EmptyArray, SortValue::EmptyArray) => Ordering::Equal,
            (SortValue::EmptyArray, _) => Ordering::Less,
            (_, SortValue::EmptyArray) => Ordering::Greater,
            (SortValue::Value(a), SortValue::Value(b)) => {
                compare(&ValRef::from(a), &ValRef::from(b))
            }
        }
    }
}

impl SortSpec {
    /// Parses `{"field": 1 | -1, ...}`; field order is significance order.
    pub fn parse(spec: &Value) -> Result<SortSpec> {
        let Value::Object(map) = spec else {
            return Err(Error::InvalidSort(format!(
                "a sort must be an object such as {{\"age\": -1, \"_id\": 1}}, got {}",
                json_type_name(spec)
            )));
        };
        let mut fields = Vec::with_capacity(map.len());
        for (key, dir) in map {
            let path = FieldPath::parse(key).map_err(Error::InvalidSort)?;
            if path.parts().iter().any(|p| p.starts_with('$')) {
                return Err(Error::InvalidSort(format!(
                    "'{key}': sort paths cannot contain '$' parts"
                )));
            }
            let descending = match dir.as_f64() {
                Some(1.0) => false,
                Some(-1.0) => true,
                _ => {
                    return Err(Error::InvalidSort(format!(
                    "'{key}': sort direction must be 1 (ascending) or -1 (descending), got {dir}"
                )))
                }
            };
            fields.push(SortField { path, descending });
        }
        Ok(SortSpec { fields })
    }

    /// True when there is nothing to sort by.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The sort key of a document.
    pub fn key_of(&self, doc: DocRef<'_>) -> Vec<SortValue> {
        self.fields
            .iter()
            .map(|f| sort_value(doc, &f.path, f.descending))
            .collect()
    }

    /// Compares two sort keys made by [`SortSpec::key_of`].
    pub fn compare_keys(&self, a: &[SortValue], b: &[SortValue]) -> Ordering {
        for ((f, x), y) in self.fields.iter().zip(a).zip(b) {
            let ord = x.cmp(y);
            let ord = if f.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}

/// The value of `path` in `doc` used for sorting: the minimum (ascending) or
/// maximum (descending) of all values reached, with array elements expanded.
pub fn sort_value(doc: DocRef<'_>, path: &FieldPath, descending: bool) -> SortValue {
    let mut best: Option<SortValue> = None;
    let mut consider = |cand: SortValue| {
        let better = match &best {
            None => true,
            Some(b) => {
                let ord = cand.cmp(b);
                if descending {
                    ord == Ordering::Greater
                } else {
                    ord == Ordering::Less
                }
            }
        };
        if better {
            best = Some(cand);
        }
    };
    visit(ValRef::Document(doc), path.parts(), &mut |v| {
        match v {
            None => consider(SortValue::Value(Bson::Null)),
            Some(ValRef::Array(a)) => {
                let mut any = false;
                for e in a.iter() {
                    any = true;
                    consider(SortValue::Value(e.to_bson()));
                }
                if !any {
                    consider(SortValue::EmptyArray);
                }
            }
            Some(other) => consider(SortValue::Value(other.to_bson())),
        }
        false
    });
    best.unwrap_or(SortValue::Value(Bson::Null))
}
