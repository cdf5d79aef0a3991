//! An independent reference model of MongoDB's query and update semantics over
//! `serde_json::Value` documents, written from the MongoDB manual and sharing
//! no code with the engine (its matcher, comparator, path resolver or update
//! operators). Suites use it as a third opinion beside the engine's indexed
//! and unindexed answers.
//!
//! Query rules ([`matches`]):
//!
//! * Path resolution: a dotted path walks embedded documents; on an array with
//!   path parts left it applies the rest of the path to every element that is a
//!   document and, when the next part is a decimal index, to that element too.
//!   A path that reaches nothing yields "missing". Arrays of arrays are not
//!   flattened.
//! * Implicit array rule: a resolved array matches `$eq $gt $gte $lt $lte $in
//!   $type $mod $regex` if the array itself or any element matches (`$type:
//!   "array"` only looks at the array itself).
//! * Comparisons are type-bracketed; canonical order null < numbers < strings <
//!   objects < arrays < booleans; ints and doubles compare exactly by value
//!   (so `2^53 + 1` is greater than the double `2^53`).
//! * Missing equals null for `$eq/$in/$all` and for `$gte/$lte: null`.
//! * `$ne $nin $not` negate the positive condition; `$exists: true` means some
//!   resolved value is present.
//! * `$size`, `$elemMatch` (value and document forms), `$all`, `$mod`,
//!   `$regex` (a string pattern, no options; only strings match).
//! * Several operators on one path are ANDed, each evaluated independently.
//!
//! [`supported`] says whether a filter stays inside these rules; callers skip
//! the reference for anything else rather than guess.
//!
//! Update rules ([`apply_update`]): `$set`, `$unset`, `$inc`, `$push` on a
//! top-level field or a two-part path `x.y` (see [`UpdateOutcome`]).
#![allow(dead_code)]

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

/// Does document `doc` match the query `filter` (a JSON object)? Panics on a
/// filter outside [`supported`].
pub fn matches(doc: &Value, filter: &Value) -> bool {
    let Value::Object(filter) = filter else {
        panic!("filter must be an object: {filter}");
    };
    filter.iter().all(|(key, cond)| match key.as_str() {
        "$and" => clauses(cond).iter().all(|f| matches(doc, f)),
        "$or" => clauses(cond).iter().any(|f| matches(doc, f)),
        "$nor" => !clauses(cond).iter().any(|f| matches(doc, f)),
        path => field_matches(&resolve_path(doc, path), cond),
    })
}

/// The documents of `docs` that match `filter`, in their order.
pub fn select(docs: &[Value], filter: &Value) -> Vec<Value> {
    docs.iter()
        .filter(|d| matches(d, filter))
        .cloned()
        .collect()
}

/// Is `filter` inside the rules the reference implements?
pub fn supported(filter: &Value) -> bool {
    let Value::Object(m) = filter else {
        return false;
    };
    m.iter().all(|(k, v)| match k.as_str() {
        "$and" | "$or" | "$nor" => v
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(supported)),
        k if k.starts_with('$') => false,
        _ => cond_supported(v),
    })
}

fn cond_supported(cond: &Value) -> bool {
    if !is_operator_object(cond) {
        return value_supported(cond);
    }
    let ops = cond.as_object().unwrap();
    ops.iter().all(|(op, arg)| op_supported(op, arg))
}

/// Is `v` plain JSON (no Extended JSON objects, whose `$` keys stand for
/// types the reference does not model)? Documents must be, for [`select`].
pub fn plain_json(v: &Value) -> bool {
    value_supported(v)
}

/// Plain JSON values; objects with `$` keys (Extended JSON) are not.
fn value_supported(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .all(|(k, v)| !k.starts_with('$') && value_supported(v)),
        Value::Array(a) => a.iter().all(value_supported),
        Value::Number(n) => n.as_i64().is_some() || n.as_f64().is_some_and(f64::is_finite),
        _ => true,
    }
}

fn op_supported(op: &str, arg: &Value) -> bool {
    let list = || {
        arg.as_array().is_some_and(|a| {
            a.iter()
                .all(|v| !is_operator_object(v) && value_supported(v))
        })
    };
    match op {
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" => value_supported(arg),
        "$in" | "$nin" | "$all" => list(),
        "$exists" => arg.is_boolean(),
        "$type" => arg.as_str().is_some_and(|t| TYPE_ALIASES.contains(&t)),
        "$size" => arg.as_u64().is_some(),
        "$mod" => arg.as_array().is_some_and(|a| {
            a.len() == 2 && a[0].as_i64().is_some_and(|d| d != 0) && a[1].as_i64().is_some()
        }),
        "$regex" => arg.as_str().is_some_and(|p| regex::Regex::new(p).is_ok()),
        "$not" => arg
            .as_object()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|(o, a)| op_supported(o, a))),
        "$elemMatch" => {
            if is_operator_object(arg) {
                arg.as_object().unwrap().iter().all(|(o, a)| {
                    matches!(o.as_str(), "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte")
                        && value_supported(a)
                })
            } else {
                arg.as_object().is_some_and(|m| !m.is_empty()) && supported(arg)
            }
        }
        _ => false,
    }
}

const TYPE_ALIASES: [&str; 7] = [
    "number", "double", "string", "array", "object", "null", "bool",
];

fn clauses(v: &Value) -> &Vec<Value> {
    v.as_array().expect("logical operator takes an array")
}

/// One value reached by a path; `None` is "missing".
type Leaf<'a> = Option<&'a Value>;

fn resolve_path<'a>(doc: &'a Value, path: &str) -> Vec<Leaf<'a>> {
    let parts: Vec<&str> = path.split('.').collect();
    resolve(doc, &parts)
}

fn is_index(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

fn resolve<'a>(v: &'a Value, parts: &[&str]) -> Vec<Leaf<'a>> {
    let Some((first, rest)) = parts.split_first() else {
        return vec![Some(v)];
    };
    match v {
        Value::Object(m) => match m.get(*first) {
            Some(x) => resolve(x, rest),
            None => vec![None],
        },
        Value::Array(items) => {
            let index = if is_index(first) {
                first.parse::<usize>().ok()
            } else {
                None
            };
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if item.is_object() {
                    out.extend(resolve(item, parts));
                }
                if index == Some(i) {
                    out.extend(resolve(item, rest));
                }
            }
            if out.is_empty() {
                // The path reached nothing (e.g. `a.b` on `[]` or `[1, 2]`):
                // `{"a.b": null}` matches, as in current MongoDB servers.
                out.push(None);
            }
            out
        }
        _ => vec![None],
    }
}

/// A resolved value together with, for an array, its elements (the implicit
/// array rule).
fn candidates(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().chain(std::iter::once(v)).collect(),
        _ => vec![v],
    }
}

fn is_operator_object(cond: &Value) -> bool {
    matches!(cond, Value::Object(m) if m.keys().next().is_some_and(|k| k.starts_with('$')))
}

/// `{path: cond}` where cond is either an operator object or a value to equal.
fn field_matches(leaves: &[Leaf<'_>], cond: &Value) -> bool {
    if is_operator_object(cond) {
        operators_match(leaves, cond.as_object().unwrap())
    } else {
        eq_matches(leaves, cond)
    }
}

/// All operators of an operator object, each evaluated independently.
fn operators_match(leaves: &[Leaf<'_>], ops: &Map<String, Value>) -> bool {
    ops.iter()
        .all(|(op, arg)| operator_matches(leaves, op, arg))
}

fn eq_matches(leaves: &[Leaf<'_>], v: &Value) -> bool {
    leaves.iter().any(|leaf| match leaf {
        None => v.is_null(),
        Some(x) => candidates(x)
            .into_iter()
            .any(|c| compare(c, v) == Ordering::Equal),
    })
}

fn in_matches(leaves: &[Leaf<'_>], list: &Value) -> bool {
    list.as_array()
        .expect("$in takes an array")
        .iter()
        .any(|v| eq_matches(leaves, v))
}

/// `$gt/$gte/$lt/$lte`: type-bracketed; `$gte/$lte: null` also match missing.
fn range_matches(leaves: &[Leaf<'_>], op: &str, v: &Value) -> bool {
    leaves.iter().any(|leaf| match leaf {
        None => v.is_null() && (op == "$gte" || op == "$lte"),
        Some(x) => candidates(x).into_iter().any(|c| range_single(c, op, v)),
    })
}

fn range_single(c: &Value, op: &str, v: &Value) -> bool {
    if bracket(c) != bracket(v) {
        return false;
    }
    let o = compare(c, v);
    match op {
        "$gt" => o == Ordering::Greater,
        "$gte" => o != Ordering::Less,
        "$lt" => o == Ordering::Less,
        "$lte" => o != Ordering::Greater,
        _ => unreachable!("{op}"),
    }
}

fn type_is(v: &Value, alias: &str) -> bool {
    match alias {
        "number" => v.is_number(),
        "double" => v.is_f64(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        "bool" => v.is_boolean(),
        _ => panic!("unknown $type alias {alias}"),
    }
}

fn mod_matches_single(c: &Value, d: i64, r: i64) -> bool {
    let n = match c {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => n.as_f64().unwrap().trunc() as i64,
        },
        _ => return false,
    };
    n % d == r
}

/// An operator applied to one array element, as in `$elemMatch`'s value form.
fn element_op_matches(e: &Value, op: &str, v: &Value) -> bool {
    match op {
        "$eq" => compare(e, v) == Ordering::Equal,
        "$ne" => compare(e, v) != Ordering::Equal,
        "$gt" | "$gte" | "$lt" | "$lte" => range_single(e, op, v),
        _ => panic!("unsupported $elemMatch value operator {op}"),
    }
}

fn operator_matches(leaves: &[Leaf<'_>], op: &str, arg: &Value) -> bool {
    match op {
        "$eq" => eq_matches(leaves, arg),
        "$ne" => !eq_matches(leaves, arg),
        "$gt" | "$gte" | "$lt" | "$lte" => range_matches(leaves, op, arg),
        "$in" => in_matches(leaves, arg),
        "$nin" => !in_matches(leaves, arg),
        "$exists" => {
            let exists = leaves.iter().any(Option::is_some);
            exists == arg.as_bool().expect("$exists takes a bool")
        }
        "$type" => {
            let alias = arg.as_str().expect("$type takes a string alias");
            leaves.iter().flatten().any(|x| {
                if alias == "array" {
                    x.is_array()
                } else {
                    candidates(x).into_iter().any(|c| type_is(c, alias))
                }
            })
        }
        "$size" => {
            let n = arg.as_u64().expect("$size takes a count") as usize;
            leaves
                .iter()
                .flatten()
                .any(|x| matches!(x, Value::Array(items) if items.len() == n))
        }
        "$all" => {
            let list = arg.as_array().expect("$all takes an array");
            !list.is_empty() && list.iter().all(|v| eq_matches(leaves, v))
        }
        "$elemMatch" => leaves.iter().flatten().any(|x| match x {
            Value::Array(items) => items.iter().any(|e| {
                if is_operator_object(arg) {
                    arg.as_object()
                        .unwrap()
                        .iter()
                        .all(|(op, v)| element_op_matches(e, op, v))
                } else {
                    e.is_object() && matches(e, arg)
                }
            }),
            _ => false,
        }),
        "$not" => !operators_match(leaves, arg.as_object().expect("$not takes operators")),
        "$mod" => {
            let dr = arg.as_array().expect("$mod takes [d, r]");
            let (d, r) = (dr[0].as_i64().unwrap(), dr[1].as_i64().unwrap());
            leaves.iter().flatten().any(|x| {
                candidates(x)
                    .into_iter()
                    .any(|c| mod_matches_single(c, d, r))
            })
        }
        "$regex" => {
            let re = regex::Regex::new(arg.as_str().expect("$regex takes a pattern"))
                .expect("supported() checked the pattern");
            leaves.iter().flatten().any(|x| {
                candidates(x)
                    .into_iter()
                    .any(|c| c.as_str().is_some_and(|s| re.is_match(s)))
            })
        }
        _ => panic!("reference does not implement {op}"),
    }
}

/// Canonical type order: null < numbers < strings < objects < arrays < booleans.
fn bracket(v: &Value) -> u8 {
    match v {
        Value::Null => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Object(_) => 4,
        Value::Array(_) => 5,
        Value::Bool(_) => 6,
    }
}

/// An integer against a double, exactly (no rounding of the integer).
fn int_vs_double(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater;
    }
    if f >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    i.cmp(&(t as i64)).then_with(|| {
        if f > t {
            Ordering::Less
        } else if f < t {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    })
}

fn numbers(x: &Number, y: &Number) -> Ordering {
    match (x.as_i64(), y.as_i64(), x.as_f64(), y.as_f64()) {
        (Some(a), Some(b), _, _) => a.cmp(&b),
        (Some(a), None, _, Some(b)) => int_vs_double(a, b),
        (None, Some(b), Some(a), _) => int_vs_double(b, a).reverse(),
        (_, _, Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => unreachable!("numbers are i64 or f64"),
    }
}

/// Total order of values (MongoDB's BSON comparison order, restricted to JSON
/// types). Equal means "equal" for `$eq`.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    let by_type = bracket(a).cmp(&bracket(b));
    if by_type != Ordering::Equal {
        return by_type;
    }
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Number(x), Value::Number(y)) => numbers(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = compare(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            // Pair by pair, in document order: value type, then field name,
            // then value.
            for ((kp, p), (kq, q)) in x.iter().zip(y) {
                let o = bracket(p)
                    .cmp(&bracket(q))
                    .then_with(|| kp.as_bytes().cmp(kq.as_bytes()))
                    .then_with(|| compare(p, q));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => unreachable!(),
    }
}

// ---------------------------------------------------------------------------
// Updates
// ---------------------------------------------------------------------------

/// What an update document does to one document.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    /// The document after the update.
    Applied(Value),
    /// MongoDB refuses the update for this document (conflicting paths,
    /// `$inc` of a non-number, `$push` to a non-array, a field created inside
    /// a non-document).
    Refused,
    /// Outside the rules implemented here; callers skip the comparison.
    Unknown,
}

/// Applies an update document (`{"$set": {..}, "$inc": {..}, ..}`) to `doc`.
///
/// * Paths: a top-level field or `x.y`. Each operator's paths are applied in
///   the update document's order; a path equal to, or a prefix of, another
///   path of the same update is a conflict (refused).
/// * `$set p: v`: replaces the value in place or appends the field; `x.y`
///   where `x` is missing creates `x: {y: v}`; where `x` is not a document
///   (array, scalar, null): refused.
/// * `$unset p`: removes the field if present; `x.y` where `x` is not a
///   document: no change (unknown when `x` is an array).
/// * `$inc p: n`: missing becomes `n`; int + int stays an int, any double
///   makes a double; a non-number is refused.
/// * `$push p: v`: missing becomes `[v]`; an array gets `v` appended; anything
///   else is refused.
pub fn apply_update(doc: &Value, update: &Value) -> UpdateOutcome {
    let Some(ops) = update.as_object() else {
        return UpdateOutcome::Unknown;
    };
    let mut steps: Vec<(&str, &str, &Value)> = Vec::new();
    for (op, fields) in ops {
        let Some(fields) = fields.as_object() else {
            return UpdateOutcome::Unknown;
        };
        if !matches!(op.as_str(), "$set" | "$unset" | "$inc" | "$push") {
            return UpdateOutcome::Unknown;
        }
        for (path, arg) in fields {
            let parts = path.split('.').count();
            if parts > 2 || path.split('.').any(|p| p.is_empty() || is_index(p)) {
                return UpdateOutcome::Unknown;
            }
            if path == "_id" || path.starts_with("_id.") {
                return UpdateOutcome::Unknown;
            }
            steps.push((op, path, arg));
        }
    }
    if conflicting(update) {
        return UpdateOutcome::Refused;
    }
    let mut out = doc.clone();
    for (op, path, arg) in steps {
        let root = out.as_object_mut().expect("documents are objects");
        let (parent, name) = match path.split_once('.') {
            None => (root, path),
            Some((x, y)) => {
                match root.get(x) {
                    Some(Value::Object(_)) => {}
                    Some(Value::Array(_)) if op == "$unset" => return UpdateOutcome::Unknown,
                    Some(_) | None if op == "$unset" => continue,
                    Some(_) => return UpdateOutcome::Refused,
                    None => {
                        root.insert(x.to_string(), Value::Object(Map::new()));
                    }
                }
                match root.get_mut(x) {
                    Some(Value::Object(m)) => (m, y),
                    _ => unreachable!("checked above"),
                }
            }
        };
        let name = name.to_string();
        match op {
            "$set" => set_field(parent, name, arg.clone()),
            "$unset" => {
                parent.shift_remove(&name);
            }
            "$inc" => {
                let Value::Number(n) = arg else {
                    return UpdateOutcome::Unknown;
                };
                let sum = match parent.get(&name) {
                    None => Value::Number(n.clone()),
                    Some(Value::Number(m)) => match add(m, n) {
                        Some(v) => v,
                        None => return UpdateOutcome::Unknown,
                    },
                    Some(_) => return UpdateOutcome::Refused,
                };
                set_field(parent, name, sum);
            }
            "$push" => match parent.get_mut(&name) {
                None => set_field(parent, name, Value::Array(vec![arg.clone()])),
                Some(Value::Array(items)) => items.push(arg.clone()),
                Some(_) => return UpdateOutcome::Refused,
            },
            _ => unreachable!(),
        }
    }
    UpdateOutcome::Applied(out)
}

/// Does the update name one path twice, or a path and its prefix? MongoDB
/// refuses such an update whatever the documents.
pub fn conflicting(update: &Value) -> bool {
    let paths: Vec<&str> = update
        .as_object()
        .into_iter()
        .flat_map(|ops| ops.values())
        .filter_map(Value::as_object)
        .flat_map(|fields| fields.keys().map(String::as_str))
        .collect();
    let prefix = |a: &str, b: &str| b.starts_with(a) && b[a.len()..].starts_with('.');
    paths.iter().enumerate().any(|(i, p)| {
        paths[i + 1..]
            .iter()
            .any(|q| p == q || prefix(p, q) || prefix(q, p))
    })
}

fn set_field(m: &mut Map<String, Value>, name: String, v: Value) {
    match m.get_mut(&name) {
        Some(slot) => *slot = v,
        None => {
            m.insert(name, v);
        }
    }
}

/// `a + b` with MongoDB's numeric widening; `None` on integer overflow.
fn add(a: &Number, b: &Number) -> Option<Value> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.checked_add(y).map(Value::from),
        _ => Some(Value::from(a.as_f64()? + b.as_f64()?)),
    }
}

/// Exact equality of two documents: same fields in the same order, same
/// number types (`1` is not `1.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    serde_json::to_string(a).unwrap() == serde_json::to_string(b).unwrap()
}
