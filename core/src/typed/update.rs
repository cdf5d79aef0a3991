//! [`Update<R>`]: update operators on documents of type `R`, built from typed
//! paths; lowers to the same update document the untyped API takes.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde_json::{Map, Value};

use super::filter::{to_json, Filter};
use super::path::{Accepts, Array, FieldRef, Numeric};
use super::Embedded;
use crate::error::{Error, Result};

/// Update operators for documents of type `R`.
///
/// ```
/// # use collection_store::typed::{Field, Update};
/// # struct User;
/// let age: Field<User, u32> = Field::new("age");
/// let tags: Field<User, Vec<String>> = Field::new("tags");
/// let u = Update::new().inc(&age, 1).push(&tags, "x");
/// assert_eq!(u.to_json().unwrap(), serde_json::json!({"$inc": {"age": 1}, "$push": {"tags": "x"}}));
/// ```
///
/// Each method adds `path: value` under its operator; naming the same path
/// twice under one operator keeps the last value (naming it under two
/// operators is refused by the engine as a conflict).
pub struct Update<R> {
    ops: std::result::Result<Map<String, Value>, String>,
    _marker: PhantomData<fn() -> R>,
}

impl<R> Clone for Update<R> {
    fn clone(&self) -> Self {
        Update {
            ops: self.ops.clone(),
            _marker: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Update<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ops {
            Ok(m) => write!(f, "Update({})", Value::Object(m.clone())),
            Err(e) => write!(f, "Update(<error: {e}>)"),
        }
    }
}

impl<R> Default for Update<R> {
    fn default() -> Self {
        Update::new()
    }
}

impl<R> Update<R> {
    /// An empty update (running it as is is refused: an update needs an operator).
    pub fn new() -> Self {
        Update {
            ops: Ok(Map::new()),
            _marker: PhantomData,
        }
    }

    /// An untyped update document, for what the typed operators do not cover.
    pub fn raw(update: Value) -> Self {
        Update {
            ops: match update {
                Value::Object(m) => Ok(m),
                other => Err(format!("an update must be a document, got {other}")),
            },
            _marker: PhantomData,
        }
    }

    fn add(mut self, op: &str, path: &str, value: std::result::Result<Value, String>) -> Self {
        self.ops = match (self.ops, value) {
            (Ok(mut ops), Ok(v)) => {
                let entry = ops
                    .entry(op.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(path.to_owned(), v);
                }
                Ok(ops)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self
    }

    /// Sets the field (`$set`).
    pub fn set<F, T>(self, field: F, value: T) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Accepts<T>,
        T: Serialize,
    {
        self.add("$set", field.path(), to_json(&value))
    }

    /// Sets the field only when an upsert inserts a new document (`$setOnInsert`).
    pub fn set_on_insert<F, T>(self, field: F, value: T) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Accepts<T>,
        T: Serialize,
    {
        self.add("$setOnInsert", field.path(), to_json(&value))
    }

    /// Removes an optional field (`$unset`). Only `Option` fields can be unset,
    /// so the document still deserializes afterwards.
    pub fn unset<F, T>(self, field: F) -> Self
    where
        F: FieldRef<Root = R, Value = Option<T>>,
    {
        self.add("$unset", field.path(), Ok(Value::from(1)))
    }

    /// Adds `by` to a numeric field (`$inc`); integers take an `i64` delta, so
    /// unsigned counters can be decremented.
    pub fn inc<F>(self, field: F, by: <F::Value as Numeric>::Delta) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Numeric,
    {
        self.add("$inc", field.path(), to_json(&by))
    }

    /// Multiplies a numeric field by `by` (`$mul`).
    pub fn mul<F>(self, field: F, by: <F::Value as Numeric>::Delta) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Numeric,
    {
        self.add("$mul", field.path(), to_json(&by))
    }

    /// Lowers the field to `value` if `value` is smaller (`$min`).
    pub fn min<F, T>(self, field: F, value: T) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Accepts<T>,
        T: Serialize,
    {
        self.add("$min", field.path(), to_json(&value))
    }

    /// Raises the field to `value` if `value` is larger (`$max`).
    pub fn max<F, T>(self, field: F, value: T) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Accepts<T>,
        T: Serialize,
    {
        self.add("$max", field.path(), to_json(&value))
    }

    /// Appends an element to an array field (`$push`).
    pub fn push<F, T>(self, field: F, value: T) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
        <F::Value as Array>::Elem: Accepts<T>,
        T: Serialize,
    {
        self.add("$push", field.path(), to_json(&value))
    }

    /// Appends several elements (`$push` with `$each`).
    pub fn push_each<F, T>(self, field: F, values: impl IntoIterator<Item = T>) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
        <F::Value as Array>::Elem: Accepts<T>,
        T: Serialize,
    {
        let each = each_json(values);
        self.add("$push", field.path(), each)
    }

    /// Appends an element unless the array already holds an equal one (`$addToSet`).
    pub fn add_to_set<F, T>(self, field: F, value: T) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
        <F::Value as Array>::Elem: Accepts<T>,
        T: Serialize,
    {
        self.add("$addToSet", field.path(), to_json(&value))
    }

    /// [`add_to_set`](Self::add_to_set) for several elements (`$each`).
    pub fn add_to_set_each<F, T>(self, field: F, values: impl IntoIterator<Item = T>) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
        <F::Value as Array>::Elem: Accepts<T>,
        T: Serialize,
    {
        let each = each_json(values);
        self.add("$addToSet", field.path(), each)
    }

    /// Removes every element equal to `value` (`$pull`).
    pub fn pull<F, T>(self, field: F, value: T) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
        <F::Value as Array>::Elem: Accepts<T>,
        T: Serialize,
    {
        self.add("$pull", field.path(), to_json(&value))
    }

    /// Removes every embedded-document element matching `filter` (`$pull` with a
    /// condition), e.g. `pull_matching(order.items(), LineItem::fields().qty().eq(0))`.
    pub fn pull_matching<F>(self, field: F, filter: Filter<<F::Value as Array>::Elem>) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
        <F::Value as Array>::Elem: Embedded,
    {
        let cond = filter.to_json().map_err(|e| e.to_string());
        self.add("$pull", field.path(), cond)
    }

    /// Removes every element equal to one of `values` (`$pullAll`).
    pub fn pull_all<F, T>(self, field: F, values: impl IntoIterator<Item = T>) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
        <F::Value as Array>::Elem: Accepts<T>,
        T: Serialize,
    {
        let list = values
            .into_iter()
            .map(|v| to_json(&v))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Value::Array);
        self.add("$pullAll", field.path(), list)
    }

    /// Removes the first element of an array (`$pop: -1`).
    pub fn pop_first<F>(self, field: F) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
    {
        self.add("$pop", field.path(), Ok(Value::from(-1)))
    }

    /// Removes the last element of an array (`$pop: 1`).
    pub fn pop_last<F>(self, field: F) -> Self
    where
        F: FieldRef<Root = R>,
        F::Value: Array,
    {
        self.add("$pop", field.path(), Ok(Value::from(1)))
    }

    /// The update document the untyped API would take.
    pub fn to_json(&self) -> Result<Value> {
        self.ops
            .clone()
            .map(Value::Object)
            .map_err(Error::InvalidUpdate)
    }

    /// [`to_json`](Self::to_json), consuming the update.
    pub fn into_json(self) -> Result<Value> {
        self.ops.map(Value::Object).map_err(Error::InvalidUpdate)
    }
}

fn each_json<T: Serialize>(
    values: impl IntoIterator<Item = T>,
) -> std::result::Result<Value, String> {
    let items = values
        .into_iter()
        .map(|v| to_json(&v))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut m = Map::new();
    m.insert("$each".into(), Value::Array(items));
    Ok(Value::Object(m))
}
