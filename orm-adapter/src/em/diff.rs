//! Dirty checking: the update operators that turn one JSON image of a
//! document into another, touching only the paths that changed.

use serde_json::{Map, Value};

/// `$set` and `$unset` of the changed paths.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Changes {
    pub(crate) set: Map<String, Value>,
    pub(crate) unset: Map<String, Value>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty() && self.unset.is_empty()
    }

    /// The update document (`{"$set": .., "$unset": ..}`, plus `extra` operators).
    pub(crate) fn into_update(self, extra: Option<(&str, Value)>) -> Value {
        let mut u = Map::new();
        if !self.set.is_empty() {
            u.insert("$set".into(), Value::Object(self.set));
        }
        if !self.unset.is_empty() {
            u.insert("$unset".into(), Value::Object(self.unset));
        }
        if let Some((op, v)) = extra {
            u.insert(op.into(), v);
        }
        Value::Object(u)
    }
}

/// A field name that can be addressed as a part of a dotted path.
fn addressable(key: &str) -> bool {
    !key.is_empty() && !key.contains('.') && !key.starts_with('$')
}

/// The changes from `base` to `cur` (both documents), ignoring the top-level
/// fields in `skip`. Nested documents are compared field by field; arrays and
/// values that change type are set whole.
pub(crate) fn diff(base: &Value, cur: &Value, skip: &[&str]) -> Changes {
    let mut out = Changes::default();
    if let (Value::Object(b), Value::Object(c)) = (base, cur) {
        walk("", b, c, skip, &mut out);
    }
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk(
    prefix: &str,
    base: &Map<String, Value>,
    cur: &Map<String, Value>,
    skip: &[&str],
    out: &mut Changes,
) {
    for (k, c) in cur {
        if prefix.is_empty() && skip.contains(&k.as_str()) {
            continue;
        }
        match base.get(k) {
            Some(b) if b == c => {}
            Some(Value::Object(bo)) => match c {
                Value::Object(co)
                    if !bo.is_empty() && bo.keys().chain(co.keys()).all(|k| addressable(k)) =>
                {
                    walk(&join(prefix, k), bo, co, &[], out)
                }
                _ => {
                    out.set.insert(join(prefix, k), c.clone());
                }
            },
            _ => {
                out.set.insert(join(prefix, k), c.clone());
            }
        }
    }
    for k in base.keys() {
        if !cur.contains_key(k) && (!prefix.is_empty() || !skip.contains(&k.as_str())) {
            out.unset.insert(join(prefix, k), Value::from(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_changed_paths() {
        let base = json!({"id": 1, "name": "a", "address": {"city": "Oslo", "zip": "1"}, "tags": ["x"], "n": null});
        let cur = json!({"id": 1, "name": "a", "address": {"city": "Bergen", "zip": "1"}, "tags": ["x", "y"]});
        let d = diff(&base, &cur, &[]);
        assert_eq!(
            Value::Object(d.set),
            json!({"address.city": "Bergen", "tags": ["x", "y"]})
        );
        assert_eq!(Value::Object(d.unset), json!({"n": 1}));
        assert!(diff(&base, &base, &[]).is_empty());
    }

    #[test]
    fn unaddressable_keys_and_type_changes_set_whole_values() {
        let base = json!({"m": {"a.b": 1}, "o": {"x": 1}, "e": {}});
        let cur = json!({"m": {"a.b": 2}, "o": 5, "e": {"k": 1}});
        let d = diff(&base, &cur, &[]);
        assert_eq!(
            Value::Object(d.set),
            json!({"m": {"a.b": 2}, "o": 5, "e": {"k": 1}})
        );
    }

    #[test]
    fn skipped_fields() {
        let d = diff(&json!({"v": 1, "a": 1}), &json!({"v": 9, "a": 2}), &["v"]);
        assert_eq!(Value::Object(d.set), json!({"a": 2}));
        assert!(d.unset.is_empty());
    }
}
