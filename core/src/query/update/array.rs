//! The array operators: `$push` (with its modifiers), `$addToSet`, `$pop`,
//! `$pull` and `$pullAll`: parsing and applying.

use std::cmp::Ordering;

use bson::Bson;
use serde_json::Value;

use super::*;

pub(super) fn parse_each(op: &str, path: &FieldPath, v: &Value) -> Result<Vec<Bson>> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| stored_value(op, &format!("{path}.$each.{i}"), x))
            .collect(),
        other => Err(invalid(format!(
            "{op} '{path}': $each takes an array of values, such as {{\"$each\": [1, 2]}}; got {}",
            describe(other)
        ))),
    }
}

pub(super) fn parse_push(path: &FieldPath, v: &Value) -> Result<Push> {
    let op = "$push";
    let modifiers = match v {
        Value::Object(m) if m.keys().any(|k| PUSH_MODIFIERS.contains(&k.as_str())) => m,
        _ => {
            return Ok(Push {
                each: vec![stored_value(op, path.as_str(), v)?],
                position: None,
                sort: None,
                slice: None,
            })
        }
    };
    if let Some(k) = modifiers
        .keys()
        .find(|k| !PUSH_MODIFIERS.contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "$push '{path}': unrecognized field '{k}' beside the modifiers; the modifiers are $each, $position, $slice and $sort"
        )));
    }
    let Some(each) = modifiers.get("$each") else {
        return Err(invalid(format!(
            "$push '{path}': the modifiers $position, $slice and $sort require $each, such as \
             {{\"$push\": {{\"{path}\": {{\"$each\": [1], \"$slice\": -5}}}}}}"
        )));
    };
    let each = parse_each(op, path, each)?;
    let int_modifier = |name: &str| -> Result<Option<i64>> {
        match modifiers.get(name) {
            None => Ok(None),
            Some(x) => integer(x).map(Some).ok_or_else(|| {
                invalid(format!(
                    "$push '{path}': {name} takes an integer; got {}",
                    describe(x)
                ))
            }),
        }
    };
    let position = int_modifier("$position")?;
    let slice = int_modifier("$slice")?;
    let sort = modifiers
        .get("$sort")
        .map(|s| parse_push_sort(path, s))
        .transpose()?;
    Ok(Push {
        each,
        position,
        sort,
        slice,
    })
}

pub(super) fn parse_push_sort(path: &FieldPath, v: &Value) -> Result<PushSort> {
    let bad = || {
        invalid(format!(
            "$push '{path}': $sort takes 1 (ascending), -1 (descending), or an object of field paths \
             to 1 or -1 such as {{\"score\": -1}} for arrays of documents; got {}",
            describe(v)
        ))
    };
    match v {
        Value::Number(_) => match sign(v) {
            Some(s) => Ok(PushSort::Whole(s < 0)),
            None => Err(bad()),
        },
        Value::Object(m) if !m.is_empty() => {
            let mut fields = Vec::with_capacity(m.len());
            for (k, dir) in m {
                let p = parse_path("$push $sort", k)?;
                let s = sign(dir).ok_or_else(bad)?;
                fields.push((p, s < 0));
            }
            Ok(PushSort::Fields(fields))
        }
        _ => Err(bad()),
    }
}

pub(super) fn parse_add_to_set(path: &FieldPath, v: &Value) -> Result<Vec<Bson>> {
    let op = "$addToSet";
    if let Value::Object(m) = v {
        if let Some(each) = m.get("$each") {
            if let Some(k) = m.keys().find(|k| k.as_str() != "$each") {
                return Err(invalid(format!(
                    "$addToSet '{path}': found '{k}' beside $each; $addToSet accepts only the $each modifier"
                )));
            }
            return parse_each(op, path, each);
        }
    }
    Ok(vec![stored_value(op, path.as_str(), v)?])
}

pub(super) fn parse_pull(path: &FieldPath, v: &Value) -> Result<PullCond> {
    let b = operand_value("$pull", path.as_str(), v)?;
    match b {
        Bson::Document(_) => match parse_elem_match(path.as_str(), v) {
            Ok(em) => Ok(PullCond::Match(Box::new(em))),
            Err(Error::InvalidFilter(m)) => {
                Err(invalid(format!("$pull condition for '{path}': {m}")))
            }
            Err(e) => Err(e),
        },
        // MongoDB treats a regular expression like a query: it removes matching strings.
        Bson::RegularExpression(r) => Ok(PullCond::Match(Box::new(ElemMatch::Value(vec![
            Op::Regex(Box::new(compile_regex(
                r.pattern.as_str(),
                r.options.as_str(),
            )?)),
        ])))),
        other => Ok(PullCond::Equal(other)),
    }
}

pub(super) fn add_to_set(items: &mut Vec<Bson>, values: &[Bson]) {
    for v in values {
        let candidate = ValRef::from(v);
        if !items
            .iter()
            .any(|e| values_equal(&ValRef::from(e), &candidate))
        {
            items.push(v.clone());
        }
    }
}

impl Push {
    pub(super) fn apply(&self, items: &mut Vec<Bson>) {
        let len = items.len();
        let at = match self.position {
            None => len,
            Some(p) if p >= 0 => usize::try_from(p).unwrap_or(usize::MAX).min(len),
            Some(p) => len.saturating_sub(usize::try_from(p.unsigned_abs()).unwrap_or(usize::MAX)),
        };
        items.splice(at..at, self.each.iter().cloned());
        if let Some(sort) = &self.sort {
            sort.apply(items);
        }
        if let Some(n) = self.slice {
            let keep = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
            if n >= 0 {
                items.truncate(keep);
            } else if items.len() > keep {
                let drop = items.len() - keep;
                items.drain(..drop);
            }
        }
    }
}

/// The value at a sort path inside an array element (`null` when missing or
/// when the element is not a document).
pub(super) fn sort_key<'a>(element: &'a Bson, path: &FieldPath) -> ValRef<'a> {
    let Bson::Document(_) = element else {
        return ValRef::Null;
    };
    let mut cur = element;
    for part in path.parts() {
        let next = match cur {
            Bson::Document(d) => d.get(part),
            Bson::Array(a) => array_index(part).and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return ValRef::Null,
        }
    }
    ValRef::from(cur)
}

impl PushSort {
    pub(super) fn compare(&self, x: &Bson, y: &Bson) -> Ordering {
        let directed = |o: Ordering, desc: bool| if desc { o.reverse() } else { o };
        match self {
            PushSort::Whole(desc) => directed(compare(&ValRef::from(x), &ValRef::from(y)), *desc),
            PushSort::Fields(fields) => {
                for (path, desc) in fields {
                    let o = directed(compare(&sort_key(x, path), &sort_key(y, path)), *desc);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            }
        }
    }

    /// Stable sort. A merge sort on indices, so that no comparator can make it panic.
    pub(super) fn apply(&self, items: &mut Vec<Bson>) {
        let mut order: Vec<usize> = (0..items.len()).collect();
        merge_sort(&mut order, &mut |a, b| match (items.get(a), items.get(b)) {
            (Some(x), Some(y)) => self.compare(x, y),
            _ => Ordering::Equal,
        });
        let mut slots: Vec<Option<Bson>> = items.drain(..).map(Some).collect();
        for i in order {
            if let Some(v) = slots.get_mut(i).and_then(Option::take) {
                items.push(v);
            }
        }
    }
}

/// A stable top-down merge sort of indices.
pub(super) fn merge_sort(v: &mut Vec<usize>, cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    if v.len() <= 1 {
        return;
    }
    let mut right = v.split_off(v.len() / 2);
    merge_sort(v, cmp);
    merge_sort(&mut right, cmp);
    let left = std::mem::take(v);
    v.reserve(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (l.peek(), r.peek()) {
            (Some(&a), Some(&b)) => cmp(a, b) != Ordering::Greater,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { l.next() } else { r.next() };
        if let Some(x) = next {
            v.push(x);
        }
    }
}
