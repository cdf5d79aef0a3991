//! Projections: inclusion (`{"name": 1}`) or exclusion (`{"password": 0}`) of
//! fields, with MongoDB's rule for the primary key (included unless excluded
//! explicitly, in either mode).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::doc::json::{json_from_val, json_type_name};
use crate::doc::{DocRef, FieldPath, ValRef};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// The whole field is selected.
    Leaf,
    /// Some sub-fields are selected.
    Branch(BTreeMap<String, Node>),
}

/// A parsed projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    include: bool,
    tree: BTreeMap<String, Node>,
    id_field: String,
    keep_id: bool,
}

fn bad(msg: String) -> Error {
    Error::InvalidProjection(msg)
}

impl Projection {
    /// Parses a projection; `Ok(None)` for `{}` (return whole documents).
    pub fn parse(spec: &Value, id_field: &str) -> Result<Option<Projection>> {
        let Value::Object(map) = spec else {
            return Err(bad(format!(
                "a projection must be an object such as {{\"name\": 1}}, got {}",
                json_type_name(spec)
            )));
        };
        let mut include: Option<bool> = None;
        let mut keep_id = true;
        let mut id_included = false;
        let mut tree = BTreeMap::new();
        for (key, v) in map {
            let on = match v {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                other => {
                    return Err(bad(format!(
                        "'{key}': projection values are 1/true (include) or 0/false (exclude); \
                         {} is not supported (no $slice, $elemMatch or expressions)",
                        json_type_name(other)
                    )))
                }
            };
            let path = FieldPath::parse(key).map_err(bad)?;
            if path.parts().iter().any(|p| p.starts_with('$')) {
                return Err(bad(format!(
                    "'{key}': positional projection ('$') is not supported"
                )));
            }
            if key == id_field {
                keep_id = on;
                id_included = on;
                continue;
            }
            match include {
                None => include = Some(on),
                Some(mode) if mode != on => {
                    return Err(bad(format!(
                        "'{key}': cannot mix inclusion and exclusion in one projection \
                         (only the primary key '{id_field}' may be excluded from an inclusion)"
                    )))
                }
                _ => {}
            }
            insert_path(&mut tree, path.parts(), key)?;
        }
        if include.is_none() && keep_id && !id_included {
            return Ok(None);
        }
        Ok(Some(Projection {
            // Only `{_id: 1}` includes just the key; only `{_id: 0}` excludes it.
            include: include.unwrap_or(id_included),
            tree,
            id_field: id_field.to_owned(),
            keep_id,
        }))
    }

    /// Applies the projection, producing JSON.
    pub fn apply(&self, doc: DocRef<'_>) -> Value {
        let mut out = Map::new();
        for (k, v) in doc.iter() {
            if k == self.id_field {
                if self.keep_id {
                    out.insert(k.to_owned(), json_from_val(v));
                }
                continue;
            }
            if let Some(x) = self.project_field(self.tree.get(k), v) {
                out.insert(k.to_owned(), x);
            }
        }
        Value::Object(out)
    }

    fn project_field(&self, node: Option<&Node>, v: ValRef<'_>) -> Option<Value> {
        match (self.include, node) {
            (true, None) => None,
            (true, Some(Node::Leaf)) => Some(json_from_val(v)),
            (false, None) => Some(json_from_val(v)),
            (false, Some(Node::Leaf)) => None,
            (_, Some(Node::Branch(sub))) => match v {
                ValRef::Document(d) => Some(self.project_doc(d, sub)),
                ValRef::Array(a) => Some(Value::Array(
                    a.iter()
                        .filter_map(|e| match e {
                            ValRef::Document(d) => Some(self.project_doc(d, sub)),
                            ValRef::Array(_) => self.project_field(node, e),
                            other if !self.include => Some(json_from_val(other)),
                            _ => None,
                        })
                        .collect(),
                )),
                other => {
                    if self.include {
                        None
                    } else {
                        Some(json_from_val(other))
                    }
                }
            },
        }
    }

    fn project_doc(&self, d: DocRef<'_>, tree: &BTreeMap<String, Node>) -> Value {
        let mut out = Map::new();
        for (k, v) in d.iter() {
            if let Some(x) = self.project_field(tree.get(k), v) {
                out.insert(k.to_owned(), x);
            }
        }
        Value::Object(out)
    }
}

fn insert_path(tree: &mut BTreeMap<String, Node>, parts: &[String], key: &str) -> Result<()> {
    let collision = || {
        bad(format!(
            "'{key}': path collision with another projected path"
        ))
    };
    let (head, rest) = match parts.split_first() {
        Some(x) => x,
        None => return Ok(()),
    };
    if rest.is_empty() {
        if tree.contains_key(head) {
            return Err(collision());
        }
        tree.insert(head.clone(), Node::Leaf);
        return Ok(());
    }
    let entry = tree
        .entry(head.clone())
        .or_insert_with(|| Node::Branch(BTreeMap::new()));
    match entry {
        Node::Leaf => Err(collision()),
        Node::Branch(sub) => insert_path(sub, rest, key),
    }
}
