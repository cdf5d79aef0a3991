//! [`Filter<R>`]: a filter over documents of type `R`, built from typed paths,
//! and [`Sort<R>`]. Both lower to the same JSON documents the untyped API takes.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{BitAnd, BitOr, Not};

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::path::{Accepts, Array, Field, Text};
use super::Embedded;
use crate::error::{Error, Result};

/// A filter over documents of type `R`; lowers to a MongoDB filter document.
///
/// ```
/// # use collection_store::typed::{Field, Filter};
/// # struct User;
/// let age: Field<User, u32> = Field::new("age");
/// let tags: Field<User, Vec<String>> = Field::new("tags");
/// let f = age.gte(18).and(tags.contains("rust"));
/// assert_eq!(f.to_json().unwrap(), serde_json::json!({"age": {"$gte": 18}, "tags": "rust"}));
/// ```
pub struct Filter<R> {
    doc: std::result::Result<Value, String>,
    _marker: PhantomData<fn() -> R>,
}

impl<R> Clone for Filter<R> {
    fn clone(&self) -> Self {
        Filter {
            doc: self.doc.clone(),
            _marker: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Filter<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.doc {
            Ok(v) => write!(f, "Filter({v})"),
            Err(e) => write!(f, "Filter(<error: {e}>)"),
        }
    }
}

impl<R> Default for Filter<R> {
    fn default() -> Self {
        Filter::all()
    }
}

/// Serializes a value given to an operator; errors are reported when the
/// statement runs (as `InvalidFilter` / `InvalidUpdate`).
pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> std::result::Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("value cannot be serialized: {e}"))
}

fn is_operator_doc(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty() && m.keys().all(|k| k.starts_with('$')))
}

impl<R> Filter<R> {
    fn from_result(doc: std::result::Result<Value, String>) -> Self {
        Filter {
            doc,
            _marker: PhantomData,
        }
    }

    /// Matches every document (`{}`).
    pub fn all() -> Self {
        Filter::from_result(Ok(Value::Object(Map::new())))
    }

    /// An untyped filter document, for what the typed operators do not cover.
    pub fn raw(filter: Value) -> Self {
        Filter::from_result(Ok(filter))
    }

    /// A condition `{path: {op: value}}`.
    pub(crate) fn op(path: &str, op: &str, value: std::result::Result<Value, String>) -> Self {
        Filter::from_result(value.map(|v| {
            let mut inner = Map::new();
            inner.insert(op.to_owned(), v);
            let mut m = Map::new();
            m.insert(path.to_owned(), Value::Object(inner));
            Value::Object(m)
        }))
    }

    /// Equality `{path: value}` (with `$eq` when the value is a document, so it
    /// is never mistaken for operators).
    pub(crate) fn equals(path: &str, value: std::result::Result<Value, String>) -> Self {
        match value {
            Ok(v @ Value::Object(_)) => Filter::op(path, "$eq", Ok(v)),
            Ok(v) => {
                let mut m = Map::new();
                m.insert(path.to_owned(), v);
                Filter::from_result(Ok(Value::Object(m)))
            }
            Err(e) => Filter::from_result(Err(e)),
        }
    }

    /// Both conditions. Conditions on different fields (or different operators on
    /// one field) merge into one document, as one would write by hand; anything
    /// else becomes `$and`.
    pub fn and(self, other: Filter<R>) -> Self {
        let (a, b) = match (self.doc, other.doc) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Filter::from_result(Err(e)),
        };
        Filter::from_result(Ok(and_json(a, b)))
    }

    /// Either condition (`$or`).
    pub fn or(self, other: Filter<R>) -> Self {
        let (a, b) = match (self.doc, other.doc) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Filter::from_result(Err(e)),
        };
        let mut list = Vec::new();
        for v in [a, b] {
            match v {
                Value::Object(mut m) if m.len() == 1 && m.contains_key("$or") => {
                    match m.remove("$or") {
                        Some(Value::Array(items)) => list.extend(items),
                        Some(other) => list.push(json!({ "$or": other })),
                        None => {}
                    }
                }
                other => list.push(other),
            }
        }
        Filter::from_result(Ok(json!({ "$or": list })))
    }

    /// Every filter of `filters` (`{}` when empty).
    pub fn all_of(filters: impl IntoIterator<Item = Filter<R>>) -> Self {
        filters.into_iter().fold(Filter::all(), Filter::and)
    }

    /// Any filter of `filters` (`$or`; matches nothing when empty).
    pub fn any_of(filters: impl IntoIterator<Item = Filter<R>>) -> Self {
        let mut it = filters.into_iter();
        match it.next() {
            // `{}` matches everything, so `$nor: [{}]` matches nothing.
            None => Filter::raw(json!({"$nor": [{}]})),
            Some(first) => it.fold(first, Filter::or),
        }
    }

    /// The negation (`$nor: [self]`).
    pub fn negate(self) -> Self {
        match self.doc {
            Ok(v) => Filter::from_result(Ok(json!({ "$nor": [v] }))),
            Err(e) => Filter::from_result(Err(e)),
        }
    }

    /// The filter document the untyped API would take.
    pub fn to_json(&self) -> Result<Value> {
        self.doc.clone().map_err(Error::InvalidFilter)
    }

    /// [`to_json`](Self::to_json), consuming the filter.
    pub fn into_json(self) -> Result<Value> {
        self.doc.map_err(Error::InvalidFilter)
    }
}

fn and_json(a: Value, b: Value) -> Value {
    let (mut am, bm) = match (a, b) {
        (Value::Object(am), Value::Object(bm)) => (am, bm),
        // Filters are always documents; should that ever change, `$and` still holds.
        (a, b) => return serde_json::json!({ "$and": [a, b] }),
    };
    if am.is_empty() {
        return Value::Object(bm);
    }
    if bm.is_empty() {
        return Value::Object(am);
    }
    // Try to merge b into a without changing meaning.
    let mergeable = bm.iter().all(|(k, bv)| {
        if k.starts_with('$') {
            return !am.contains_key(k);
        }
        match am.get(k) {
            None => true,
            Some(av) => {
                is_operator_doc(av)
                    && is_operator_doc(bv)
                    && bv
                        .as_object()
                        .into_iter()
                        .flat_map(|o| o.keys())
                        .all(|op| av.as_object().is_some_and(|ao| !ao.contains_key(op)))
            }
        }
    });
    if mergeable {
        for (k, bv) in bm {
            match (am.get_mut(&k), bv) {
                (Some(Value::Object(ao)), Value::Object(bo)) => ao.extend(bo),
                (_, bv) => {
                    am.insert(k, bv);
                }
            }
        }
        return Value::Object(am);
    }
    let mut list = Vec::new();
    for m in [am, bm] {
        let mut m = m;
        if m.len() == 1 {
            if let Some(Value::Array(items)) = m.remove("$and") {
                list.extend(items);
                continue;
            }
        }
        list.push(Value::Object(m));
    }
    json!({ "$and": list })
}

impl<R> BitAnd for Filter<R> {
    type Output = Filter<R>;
    fn bitand(self, rhs: Filter<R>) -> Filter<R> {
        self.and(rhs)
    }
}

impl<R> BitOr for Filter<R> {
    type Output = Filter<R>;
    fn bitor(self, rhs: Filter<R>) -> Filter<R> {
        self.or(rhs)
    }
}

impl<R> Not for Filter<R> {
    type Output = Filter<R>;
    fn not(self) -> Filter<R> {
        self.negate()
    }
}

/// Conditions on any field.
impl<R, V> Field<R, V> {
    /// Equal to `value` (for an array field: the whole array equals `value`).
    pub fn eq<T: Serialize>(&self, value: T) -> Filter<R>
    where
        V: Accepts<T>,
    {
        Filter::equals(self.path(), to_json(&value))
    }

    /// Not equal (`$ne`; also matches documents without the field).
    pub fn ne<T: Serialize>(&self, value: T) -> Filter<R>
    where
        V: Accepts<T>,
    {
        Filter::op(self.path(), "$ne", to_json(&value))
    }

    /// Greater than (`$gt`, type-bracketed as in MongoDB).
    pub fn gt<T: Serialize>(&self, value: T) -> Filter<R>
    where
        V: Accepts<T>,
    {
        Filter::op(self.path(), "$gt", to_json(&value))
    }

    /// Greater than or equal (`$gte`).
    pub fn gte<T: Serialize>(&self, value: T) -> Filter<R>
    where
        V: Accepts<T>,
    {
        Filter::op(self.path(), "$gte", to_json(&value))
    }

    /// Less than (`$lt`).
    pub fn lt<T: Serialize>(&self, value: T) -> Filter<R>
    where
        V: Accepts<T>,
    {
        Filter::op(self.path(), "$lt", to_json(&value))
    }

    /// Less than or equal (`$lte`).
    pub fn lte<T: Serialize>(&self, value: T) -> Filter<R>
    where
        V: Accepts<T>,
    {
        Filter::op(self.path(), "$lte", to_json(&value))
    }

    /// Equal to one of `values` (`$in`).
    pub fn is_in<T: Serialize>(&self, values: impl IntoIterator<Item = T>) -> Filter<R>
    where
        V: Accepts<T>,
    {
        Filter::op(self.path(), "$in", list_json(values))
    }

    /// Equal to none of `values` (`$nin`).
    pub fn not_in<T: Serialize>(&self, values: impl IntoIterator<Item = T>) -> Filter<R>
    where
        V: Accepts<T>,
    {
        Filter::op(self.path(), "$nin", list_json(values))
    }

    /// The field is present (`true`) or absent (`false`) (`$exists`).
    pub fn exists(&self, present: bool) -> Filter<R> {
        Filter::op(self.path(), "$exists", Ok(Value::Bool(present)))
    }

    /// Ascending sort on this field.
    pub fn asc(&self) -> Sort<R> {
        Sort::by(self.path(), 1)
    }

    /// Descending sort on this field.
    pub fn desc(&self) -> Sort<R> {
        Sort::by(self.path(), -1)
    }
}

fn list_json<T: Serialize>(
    values: impl IntoIterator<Item = T>,
) -> std::result::Result<Value, String> {
    values
        .into_iter()
        .map(|v| to_json(&v))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// Conditions on array fields (`Vec<T>`, sets, and `Option`s of them).
impl<R, V: Array> Field<R, V> {
    /// Some element equals `value` (`{path: value}`).
    pub fn contains<T: Serialize>(&self, value: T) -> Filter<R>
    where
        V::Elem: Accepts<T>,
    {
        Filter::equals(self.path(), to_json(&value))
    }

    /// Every one of `values` is an element (`$all`).
    pub fn contains_all<T: Serialize>(&self, values: impl IntoIterator<Item = T>) -> Filter<R>
    where
        V::Elem: Accepts<T>,
    {
        Filter::op(self.path(), "$all", list_json(values))
    }

    /// Some element is one of `values` (`$in`).
    pub fn contains_any<T: Serialize>(&self, values: impl IntoIterator<Item = T>) -> Filter<R>
    where
        V::Elem: Accepts<T>,
    {
        Filter::op(self.path(), "$in", list_json(values))
    }

    /// The array has exactly `len` elements (`$size`).
    pub fn len_eq(&self, len: u32) -> Filter<R> {
        Filter::op(self.path(), "$size", Ok(Value::from(len)))
    }

    /// The array is empty (`$size: 0`).
    pub fn is_empty(&self) -> Filter<R> {
        self.len_eq(0)
    }
}

/// Conditions on arrays of embedded documents.
impl<R, V> Field<R, V>
where
    V: Array,
    V::Elem: Embedded,
{
    /// Some single element matches `filter` (`$elemMatch`); build `filter` from
    /// the element type's own paths, e.g. `LineItem::fields().qty().gt(2)`.
    pub fn elem_match(&self, filter: Filter<V::Elem>) -> Filter<R> {
        Filter::op(self.path(), "$elemMatch", filter.doc)
    }
}

/// Conditions on string fields.
impl<R, V: Text> Field<R, V> {
    /// Matches the regular expression `pattern` (`$regex`; the `regex` crate's syntax).
    pub fn matches(&self, pattern: &str) -> Filter<R> {
        Filter::op(self.path(), "$regex", Ok(Value::String(pattern.to_owned())))
    }

    /// Matches `pattern` with options (`i` case-insensitive, `m`, `s`, `x`).
    pub fn matches_with(&self, pattern: &str, options: &str) -> Filter<R> {
        Filter::from_result(Ok(
            json!({ self.path(): {"$regex": pattern, "$options": options} }),
        ))
    }

    /// Starts with `prefix` (an anchored, escaped `$regex`).
    pub fn starts_with(&self, prefix: &str) -> Filter<R> {
        self.matches(&format!("^{}", regex::escape(prefix)))
    }
}

/// A sort specification over documents of type `R`: `age.desc().then(name.asc())`.
pub struct Sort<R> {
    keys: Vec<(String, i32)>,
    _marker: PhantomData<fn() -> R>,
}

impl<R> Clone for Sort<R> {
    fn clone(&self) -> Self {
        Sort {
            keys: self.keys.clone(),
            _marker: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Sort<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sort({})", self.to_json())
    }
}

impl<R> Sort<R> {
    fn by(path: &str, dir: i32) -> Self {
        Sort {
            keys: vec![(path.to_owned(), dir)],
            _marker: PhantomData,
        }
    }

    /// Breaks ties with `next`.
    pub fn then(mut self, next: Sort<R>) -> Self {
        self.keys.extend(next.keys);
        self
    }

    /// The sort document the untyped API would take (`{"age": -1, "name": 1}`).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.keys
                .iter()
                .map(|(k, d)| (k.clone(), Value::from(*d)))
                .collect(),
        )
    }
}
