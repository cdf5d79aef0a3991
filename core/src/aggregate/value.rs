//! The values expressions produce: missing, borrowed from a document, or owned.
//!
//! A field path into a stored document yields a view of its bytes (no copy); an
//! operator's result is an owned `Bson`. Comparisons go through
//! [`crate::doc::compare`]; this module only adds what the query language has
//! no notion of: the *missing* value, which sorts below `null` in expressions.

use std::cmp::Ordering;

use bson::Bson;

use crate::doc::{compare, DocRef, Num, ValRef};

/// The result of evaluating an expression.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    /// The field does not exist (or `$$REMOVE`).
    Missing,
    /// A value inside a document or the pipeline's specification.
    Ref(ValRef<'a>),
    /// A computed value.
    Own(Bson),
}

impl<'a> Val<'a> {
    /// `null`.
    pub(crate) const NULL: Val<'static> = Val::Ref(ValRef::Null);

    /// A view of the value; `None` when missing.
    pub(crate) fn view(&self) -> Option<ValRef<'_>> {
        match self {
            Val::Missing => None,
            Val::Ref(v) => Some(*v),
            Val::Own(b) => Some(ValRef::from(b)),
        }
    }

    /// The owned value; `None` when missing.
    pub(crate) fn into_bson(self) -> Option<Bson> {
        match self {
            Val::Missing => None,
            Val::Ref(v) => Some(v.to_bson()),
            Val::Own(b) => Some(b),
        }
    }

    /// The owned value, with missing as `null`.
    pub(crate) fn into_bson_or_null(self) -> Bson {
        self.into_bson().unwrap_or(Bson::Null)
    }

    /// True for missing, `null` and `undefined` (what `$ifNull` and most
    /// operators treat as "no value").
    pub(crate) fn is_nullish(&self) -> bool {
        self.view().is_none_or(|v| v.is_nullish())
    }

    /// True when missing.
    pub(crate) fn is_missing(&self) -> bool {
        matches!(self, Val::Missing)
    }

    /// MongoDB's truthiness: false, null, undefined, missing and zero are false.
    pub(crate) fn truthy(&self) -> bool {
        match self.view() {
            None => false,
            Some(ValRef::Boolean(b)) => b,
            Some(ValRef::Null | ValRef::Undefined) => false,
            Some(ValRef::Number(n)) => match n {
                Num::Int(i) => i != 0,
                Num::Big(b) => b != 0,
                Num::Double(f) => f != 0.0,
            },
            Some(_) => true,
        }
    }
}

impl From<Bson> for Val<'_> {
    fn from(b: Bson) -> Self {
        Val::Own(b)
    }
}

/// Compares two expression values: missing sorts below everything but MinKey
/// (and equals `undefined`); present values use the BSON order.
pub(crate) fn compare_vals(a: &Val<'_>, b: &Val<'_>) -> Ordering {
    match (a.view(), b.view()) {
        (None, None) => Ordering::Equal,
        (None, Some(y)) => missing_vs(&y),
        (Some(x), None) => missing_vs(&x).reverse(),
        (Some(x), Some(y)) => compare(&x, &y),
    }
}

fn missing_vs(v: &ValRef<'_>) -> Ordering {
    match v {
        ValRef::MinKey => Ordering::Greater,
        ValRef::Undefined => Ordering::Equal,
        _ => Ordering::Less,
    }
}

/// The BSON type name MongoDB's `$type` reports.
pub(crate) fn type_name(v: Option<ValRef<'_>>) -> &'static str {
    match v {
        None => "missing",
        Some(v) => match v {
            ValRef::MinKey => "minKey",
            ValRef::Null => "null",
            ValRef::Undefined => "undefined",
            ValRef::Number(Num::Int(i)) => {
                if i32::try_from(i).is_ok() {
                    "int"
                } else {
                    "long"
                }
            }
            ValRef::Number(Num::Big(_)) => "decimal",
            ValRef::Number(Num::Double(_)) => "double",
            ValRef::String(_) => "string",
            ValRef::Symbol(_) => "symbol",
            ValRef::Document(_) => "object",
            ValRef::Array(_) => "array",
            ValRef::Binary { .. } => "binData",
            ValRef::ObjectId(_) => "objectId",
            ValRef::Boolean(_) => "bool",
            ValRef::DateTime(_) => "date",
            ValRef::Timestamp { .. } => "timestamp",
            ValRef::Regex { .. } => "regex",
            ValRef::JavaScript(_) => "javascript",
            ValRef::MaxKey => "maxKey",
        },
    }
}

/// A number as `Bson`: integers as int32 when they fit, else int64.
pub(crate) fn int(i: i64) -> Bson {
    match i32::try_from(i) {
        Ok(s) => Bson::Int32(s),
        Err(_) => Bson::Int64(i),
    }
}

/// A number as `f64` (integers beyond 2^53 round).
pub(crate) fn to_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Big(b) => b as f64,
        Num::Double(f) => f,
    }
}

/// A short rendering of a value for error messages.
pub(crate) fn show(v: Option<ValRef<'_>>) -> String {
    match v {
        None => "missing".into(),
        Some(v) => {
            let mut s = crate::doc::json::json_from_val(v).to_string();
            if s.len() > 60 {
                let mut end = 57;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s.push_str("...");
            }
            format!("{} {s}", type_name(Some(v)))
        }
    }
}

/// Estimated bytes a value occupies in memory (for the per-stage memory limit):
/// its BSON size plus a fixed overhead per value.
pub(crate) fn size_of_bson(v: &Bson) -> usize {
    const OVERHEAD: usize = 16;
    OVERHEAD
        + match v {
            Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => s.len(),
            Bson::Document(d) => size_of_doc(d),
            Bson::Array(a) => a.iter().map(size_of_bson).sum::<usize>() + 8,
            Bson::Binary(b) => b.bytes.len(),
            Bson::RegularExpression(r) => r.pattern.len() + r.options.len(),
            Bson::JavaScriptCodeWithScope(c) => c.code.len() + size_of_doc(&c.scope),
            _ => 8,
        }
}

/// Estimated bytes of an owned document (see [`size_of_bson`]).
pub(crate) fn size_of_doc(d: &bson::Document) -> usize {
    d.iter()
        .map(|(k, v)| k.len() + size_of_bson(v))
        .sum::<usize>()
        + 16
}

/// Estimated bytes of a borrowed document.
pub(crate) fn size_of_docref(d: DocRef<'_>) -> usize {
    match d {
        DocRef::Raw(r) => r.as_bytes().len() + 16,
        DocRef::Owned(o) => size_of_doc(o),
    }
}
