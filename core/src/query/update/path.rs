//! Walking dotted paths inside a document being updated: finding or creating
//! the parent of the target field, padding arrays, writing the leaf.

use bson::{Bson, Document};

use super::*;

/// The operator and path being applied, for error messages.
pub(super) struct At<'p> {
    pub(super) op: &'static str,
    pub(super) path: &'p FieldPath,
}

impl At<'_> {
    pub(super) fn mismatch(&self, message: String) -> Error {
        Error::TypeMismatch {
            operator: self.op.to_owned(),
            path: self.path.as_str().to_owned(),
            message,
        }
    }

    pub(super) fn overflow(&self) -> Error {
        Error::Overflow {
            operator: self.op.to_owned(),
            path: self.path.as_str().to_owned(),
        }
    }

    /// The last part of the path.
    pub(super) fn leaf(&self) -> &str {
        self.path.parts().last().map_or("", String::as_str)
    }

    /// The part naming the container of the leaf (empty at the top level).
    pub(super) fn leaf_parent(&self) -> &str {
        let parts = self.path.parts();
        parts
            .len()
            .checked_sub(2)
            .and_then(|i| parts.get(i))
            .map_or("", String::as_str)
    }
}

/// The container holding the last part of a path.
pub(super) enum Parent<'a> {
    Doc(&'a mut Document),
    Arr(&'a mut Vec<Bson>),
}

pub(super) fn cannot_create(field: &str, parent_key: &str, element: &str) -> String {
    format!("Cannot create field '{field}' in element {{{parent_key}: {element}}}")
}

/// Grows `a` with nulls so that `index` is its length (the next push lands at `index`).
pub(super) fn pad(a: &mut Vec<Bson>, index: usize, at: &At<'_>) -> Result<()> {
    let missing = index.saturating_sub(a.len());
    if missing > MAX_PADDING {
        return Err(at.mismatch(format!(
            "index {index} is {missing} elements past the end of the array; at most {MAX_PADDING} nulls may be added to reach an index"
        )));
    }
    if index > a.len() {
        a.resize(index, Bson::Null);
    }
    Ok(())
}

/// Walks to the container of the path's last part. With `create`, missing
/// intermediate documents are created (and arrays padded) and a scalar in the
/// way is an error; without it, `None` is returned instead. Unless
/// `through_arrays`, reaching into an array is an error.
pub(super) fn find_parent<'a>(
    doc: &'a mut Document,
    at: &At<'_>,
    create: bool,
    through_arrays: bool,
) -> Result<Option<Parent<'a>>> {
    let parts = at.path.parts();
    let Some((_, inner)) = parts.split_last() else {
        return Ok(None);
    };
    let array_error = |key: &str| {
        at.mismatch(format!(
            "{} cannot move a field into or out of an array element ('{key}' is an array)",
            at.op
        ))
    };
    let mut cur = Parent::Doc(doc);
    let mut cur_key = "";
    for (i, part) in inner.iter().enumerate() {
        let next = parts.get(i + 1).map_or("", String::as_str);
        let child: &'a mut Bson = match cur {
            Parent::Doc(d) => {
                if !d.contains_key(part) {
                    if !create {
                        return Ok(None);
                    }
                    d.insert(part.clone(), Bson::Document(Document::new()));
                }
                match d.get_mut(part) {
                    Some(c) => c,
                    None => return Ok(None),
                }
            }
            Parent::Arr(a) => {
                if !through_arrays {
                    return Err(array_error(cur_key));
                }
                let Some(idx) = array_index(part) else {
                    if !create {
                        return Ok(None);
                    }
                    return Err(at.mismatch(cannot_create(part, cur_key, &render_array(a))));
                };
                if idx >= a.len() {
                    if !create {
                        return Ok(None);
                    }
                    pad(a, idx, at)?;
                    a.push(Bson::Document(Document::new()));
                }
                match a.get_mut(idx) {
                    Some(c) => c,
                    None => return Ok(None),
                }
            }
        };
        cur = match child {
            Bson::Document(d) => Parent::Doc(d),
            Bson::Array(a) => Parent::Arr(a),
            other => {
                if !create {
                    return Ok(None);
                }
                return Err(at.mismatch(cannot_create(next, part, &render(other))));
            }
        };
        cur_key = part;
    }
    if !through_arrays && matches!(cur, Parent::Arr(_)) {
        return Err(array_error(cur_key));
    }
    Ok(Some(cur))
}

pub(super) fn leaf_mut<'a>(parent: &'a mut Parent<'_>, key: &str) -> Option<&'a mut Bson> {
    match parent {
        Parent::Doc(d) => d.get_mut(key),
        Parent::Arr(a) => array_index(key).and_then(|i| a.get_mut(i)),
    }
}

/// Stores `value` at `key` of the container (appending a new field to a
/// document; padding an array with nulls up to a numeric key).
pub(super) fn put(parent: Parent<'_>, value: Bson, at: &At<'_>) -> Result<()> {
    let key = at.leaf();
    match parent {
        Parent::Doc(d) => {
            d.insert(key.to_owned(), value);
        }
        Parent::Arr(a) => {
            let Some(idx) = array_index(key) else {
                return Err(at.mismatch(cannot_create(key, at.leaf_parent(), &render_array(a))));
            };
            if let Some(slot) = a.get_mut(idx) {
                *slot = value;
            } else {
                pad(a, idx, at)?;
                a.push(value);
            }
        }
    }
    Ok(())
}

/// Calls `f` with the value at the path (`None` when missing; it may modify the
/// value in place) and stores the value `f` returns, if any. Without `create`,
/// a path that cannot be reached is a no-op and `f` is not called.
pub(super) fn update_leaf(
    doc: &mut Document,
    at: &At<'_>,
    create: bool,
    f: impl FnOnce(Option<&mut Bson>) -> Result<Option<Bson>>,
) -> Result<()> {
    let Some(mut parent) = find_parent(doc, at, create, true)? else {
        return Ok(());
    };
    let new = match leaf_mut(&mut parent, at.leaf()) {
        Some(cur) => {
            if let Some(v) = f(Some(&mut *cur))? {
                *cur = v;
            }
            None
        }
        None => f(None)?,
    };
    match new {
        Some(v) => put(parent, v, at),
        None => Ok(()),
    }
}

pub(super) fn not_array(v: &Bson) -> String {
    format!(
        "the field must be an array but is of type {} ({})",
        type_name(v),
        render(v)
    )
}
