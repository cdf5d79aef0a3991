//! Property test: `find` with random filters over random documents must select
//! exactly the documents that a small reference evaluator selects.
//!
//! The reference evaluator below interprets the JSON filter directly over
//! `serde_json::Value` documents and implements MongoDB's documented query
//! semantics, written independently of the engine's matcher:
//!
//! * Path resolution: a dotted path walks embedded documents; on an array with
//!   path parts left it applies the rest of the path to every element that is a
//!   document and, when the next part is a decimal index, to that element too.
//!   A path that reaches nothing yields "missing". Arrays of arrays are not
//!   flattened.
//! * Implicit array rule: a resolved array matches `$eq $gt $gte $lt $lte $in
//!   $type $mod` if the array itself or any element matches (`$type: "array"`
//!   only looks at the array itself).
//! * Comparisons are type-bracketed; canonical order null < numbers < strings <
//!   objects < arrays < booleans; ints and doubles compare by value.
//! * Missing equals null for `$eq/$in` and for `$gte/$lte: null`.
//! * `$ne $nin $not` negate the positive condition; `$exists: true` means some
//!   resolved value is present.
//! * `$size`, `$elemMatch` (value and document forms), `$all`, `$mod`.
//! * Several operators on one path are ANDed, each evaluated independently.
//!
//! Cases: 256 by default, or `PROPTEST_CASES`.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use collection_store::Database;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------
// Reference evaluator
// ---------------------------------------------------------------------------

/// Does document `doc` match the query `filter` (a JSON object)?
fn ref_matches(doc: &Value, filter: &Value) -> bool {
    let Value::Object(filter) = filter else {
        panic!("filter must be an object: {filter}");
    };
    filter.iter().all(|(key, cond)| match key.as_str() {
        "$and" => clauses(cond).iter().all(|f| ref_matches(doc, f)),
        "$or" => clauses(cond).iter().any(|f| ref_matches(doc, f)),
        "$nor" => !clauses(cond).iter().any(|f| ref_matches(doc, f)),
        path => field_matches(&resolve_path(doc, path), cond),
    })
}

fn clauses(v: &Value) -> &Vec<Value> {
    v.as_array().expect("logical operator takes an array")
}

/// One value reached by a path; `None` is "missing".
type Leaf<'a> = Option<&'a Value>;

fn resolve_path<'a>(doc: &'a Value, path: &str) -> Vec<Leaf<'a>> {
    let parts: Vec<&str> = path.split('.').collect();
    resolve(doc, &parts)
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
            let index = if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
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
            .any(|c| cmp(c, v) == Ordering::Equal),
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
    let o = cmp(c, v);
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
        "$eq" => cmp(e, v) == Ordering::Equal,
        "$ne" => cmp(e, v) != Ordering::Equal,
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
                    e.is_object() && ref_matches(e, arg)
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

/// Total order of values (MongoDB's BSON comparison order, restricted to the
/// generated value types). Equal means "equal" for `$eq`.
fn cmp(a: &Value, b: &Value) -> Ordering {
    let by_type = bracket(a).cmp(&bracket(b));
    if by_type != Ordering::Equal {
        return by_type;
    }
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x.partial_cmp(&y).expect("no NaN generated")
        }
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = cmp(p, q);
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
                    .then_with(|| cmp(p, q));
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
// Reference self-checks (examples straight from the rules)
// ---------------------------------------------------------------------------

#[test]
fn reference_evaluator_follows_the_rules() {
    let m = |doc: Value, filter: Value| ref_matches(&doc, &filter);
    // Missing equals null.
    assert!(m(json!({}), json!({"a": null})));
    assert!(m(json!({}), json!({"a": {"$in": [null]}})));
    assert!(m(json!({}), json!({"a": {"$gte": null}})));
    assert!(!m(json!({}), json!({"a": {"$gt": null}})));
    assert!(!m(json!({"a": []}), json!({"a": null})));
    assert!(m(json!({"a": [null]}), json!({"a": null})));
    // Numbers are one type.
    assert!(m(json!({"a": 1.0}), json!({"a": 1})));
    assert!(m(json!({"a": [2.5, "x"]}), json!({"a": {"$gt": 2}})));
    assert!(!m(json!({"a": "x"}), json!({"a": {"$gt": 2}})));
    // Implicit array rule and whole-array equality.
    assert!(m(json!({"a": [1, 2]}), json!({"a": 2})));
    assert!(m(json!({"a": [1, 2]}), json!({"a": [1, 2]})));
    assert!(!m(json!({"a": [1, 2]}), json!({"a": [2, 1]})));
    // Independent operators: different elements may satisfy each.
    assert!(m(json!({"a": [0, 9]}), json!({"a": {"$gt": 5, "$lt": 1}})));
    assert!(!m(
        json!({"a": [0, 9]}),
        json!({"a": {"$elemMatch": {"$gt": 5, "$lt": 1}}})
    ));
    // Paths through arrays.
    assert!(m(json!({"a": [{"b": 1}, {"b": 2}]}), json!({"a.b": 2})));
    assert!(m(json!({"a": [{"c": 1}]}), json!({"a.b": null})));
    assert!(m(json!({"a": [5, 6]}), json!({"a.0": 5})));
    assert!(!m(json!({"a": [5, 6]}), json!({"a.0": 6})));
    assert!(m(
        json!({"a": [{"b": 1}]}),
        json!({"a.b": {"$exists": true}})
    ));
    assert!(!m(json!({"a": 3}), json!({"a.b": {"$exists": true}})));
    // Objects: order matters; type before name when comparing.
    assert!(!m(
        json!({"a": {"b": 1, "c": 2}}),
        json!({"a": {"c": 2, "b": 1}})
    ));
    assert!(m(
        json!({"a": {"b": 1}}),
        json!({"a": {"$gt": {"c": null}}})
    ));
    // $ne/$nin/$not negate.
    assert!(m(json!({}), json!({"a": {"$ne": 1}})));
    assert!(!m(json!({"a": [1, 2]}), json!({"a": {"$ne": 1}})));
    assert!(m(json!({}), json!({"a": {"$not": {"$gt": 1}}})));
    // $type, $size, $all, $mod.
    assert!(m(json!({"a": [1, "x"]}), json!({"a": {"$type": "string"}})));
    assert!(!m(json!({"a": [[1]]}), json!({"a": {"$size": 2}})));
    assert!(m(json!({"a": [1, 2]}), json!({"a": {"$size": 2}})));
    assert!(!m(json!({"a": [1, 2]}), json!({"a": {"$all": []}})));
    assert!(m(json!({"a": [1, 2]}), json!({"a": {"$all": [2, 1]}})));
    assert!(m(json!({"a": -2.5}), json!({"a": {"$mod": [2, 0]}})));
    assert!(m(json!({"a": -3}), json!({"a": {"$mod": [2, -1]}})));
    // $elemMatch document form needs objects.
    assert!(m(
        json!({"a": [1, {"b": 1}]}),
        json!({"a": {"$elemMatch": {"b": {"$gte": 1}}}})
    ));
    assert!(!m(
        json!({"a": [1]}),
        json!({"a": {"$elemMatch": {"b": null}}})
    ));
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..=3).prop_map(Value::from),
        prop::sample::select(vec![1.0f64, 2.5, -0.5, 0.0, -2.0]).prop_map(Value::from),
        prop::sample::select(vec!["", "x", "y", "xy"]).prop_map(Value::from),
    ]
    .boxed()
}

/// `{"b": .., "c": ..}` with either field possibly missing, in either order.
fn small_object(inner: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    (
        prop::option::weighted(0.7, inner.clone()),
        prop::option::weighted(0.7, inner),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(b, c, swap)| {
            let mut fields = vec![("b", b), ("c", c)];
            if swap {
                fields.reverse();
            }
            let mut m = Map::new();
            for (k, v) in fields {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            }
            Value::Object(m)
        })
        .boxed()
}

fn array_of(item: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop::collection::vec(item, 0..=3)
        .prop_map(Value::Array)
        .boxed()
}

/// A field value: scalars, arrays of scalars or small objects, and objects
/// nested up to depth 2.
fn value() -> BoxedStrategy<Value> {
    let flat_object = small_object(scalar());
    let inner = prop_oneof![
        3 => scalar(),
        1 => array_of(prop_oneof![2 => scalar(), 1 => flat_object.clone()]),
        1 => flat_object,
    ]
    .boxed();
    let array_item = prop_oneof![
        2 => scalar(),
        1 => small_object(prop_oneof![3 => scalar(), 1 => array_of(scalar())].boxed()),
    ];
    prop_oneof![
        4 => scalar(),
        2 => array_of(array_item),
        2 => small_object(inner),
    ]
    .boxed()
}

/// Operand values: mostly scalars so that conditions often match.
fn operand() -> BoxedStrategy<Value> {
    prop_oneof![3 => scalar(), 1 => value()].boxed()
}

fn documents() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        (
            prop::option::weighted(0.8, value()),
            prop::option::weighted(0.6, value()),
            prop::option::weighted(0.4, value()),
        ),
        0..30,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (a, b, c))| {
                let mut m = Map::new();
                m.insert("_id".into(), Value::from(i as i64));
                for (k, v) in [("a", a), ("b", b), ("c", c)] {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                }
                Value::Object(m)
            })
            .collect()
    })
}

fn ops_object(ops: Vec<(String, Value)>) -> Value {
    Value::Object(ops.into_iter().collect())
}

/// Operators that contain no `$elemMatch` or `$not`.
fn simple_op() -> impl Strategy<Value = (String, Value)> {
    let comparison = prop::sample::select(vec!["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]);
    let list = prop::sample::select(vec!["$in", "$nin", "$all"]);
    prop_oneof![
        6 => (comparison, operand()).prop_map(|(op, v)| (op.to_string(), v)),
        3 => (list, prop::collection::vec(operand(), 0..=3))
            .prop_map(|(op, vs)| (op.to_string(), Value::Array(vs))),
        1 => any::<bool>().prop_map(|b| ("$exists".to_string(), Value::Bool(b))),
        2 => prop::sample::select(vec!["number", "string", "array", "object", "null", "bool"])
            .prop_map(|t| ("$type".to_string(), Value::from(t))),
        1 => (0u64..=3).prop_map(|n| ("$size".to_string(), Value::from(n))),
        1 => (prop::sample::select(vec![2i64, 3, -2]), -1i64..=1)
            .prop_map(|(d, r)| ("$mod".to_string(), json!([d, r]))),
    ]
}

/// A condition without `$elemMatch`/`$not`: a value to equal or operators.
fn simple_cond() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => operand(),
        2 => prop::collection::vec(simple_op(), 1..=2).prop_map(ops_object),
    ]
}

fn elem_match_arg() -> impl Strategy<Value = Value> {
    let value_form = prop::collection::vec(
        (
            prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"]),
            operand(),
        )
            .prop_map(|(op, v)| (op.to_string(), v)),
        1..=2,
    )
    .prop_map(ops_object);
    let document_form = (
        prop::option::weighted(0.7, simple_cond()),
        prop::option::weighted(0.5, simple_cond()),
    )
        .prop_map(|(b, c)| {
            let mut m = Map::new();
            if let Some(b) = b {
                m.insert("b".into(), b);
            }
            // Keep the sub-filter non-empty.
            if c.is_some() || m.is_empty() {
                m.insert("c".into(), c.unwrap_or(Value::Null));
            }
            Value::Object(m)
        });
    prop_oneof![value_form, document_form]
}

fn op() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        10 => simple_op(),
        2 => elem_match_arg().prop_map(|v| ("$elemMatch".to_string(), v)),
        2 => prop::collection::vec(simple_op(), 1..=2)
            .prop_map(|ops| ("$not".to_string(), ops_object(ops))),
    ]
}

fn field_condition() -> impl Strategy<Value = (String, Value)> {
    let path = prop::sample::select(vec!["a", "b", "a.b", "a.c", "a.0"]);
    let cond = prop_oneof![
        1 => operand(),
        2 => op().prop_map(|op| ops_object(vec![op])),
        1 => prop::collection::vec(op(), 2..=3).prop_map(ops_object),
    ];
    (path, cond).prop_map(|(p, c)| (p.to_string(), c))
}

fn filter() -> impl Strategy<Value = Value> {
    let leaf = field_condition().prop_map(|(p, c)| json!({ p: c }));
    let tree = leaf.prop_recursive(3, 16, 3, |inner| {
        (
            prop::sample::select(vec!["$and", "$or", "$nor"]),
            prop::collection::vec(inner, 1..=3),
        )
            .prop_map(|(op, children)| json!({ op: children }))
    });
    prop_oneof![
        1 => Just(json!({})),
        16 => tree,
        4 => prop::collection::vec(field_condition(), 2..=3)
            .prop_map(|conds| Value::Object(conds.into_iter().collect())),
    ]
}

// ---------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------

fn ids(docs: &[Value]) -> Vec<Value> {
    docs.iter().map(|d| d["_id"].clone()).collect()
}

/// Runs every filter against `docs` in a fresh collection and compares with
/// the reference.
fn check(db: &Database, name: &str, docs: &[Value], filters: &[Value]) -> Result<(), String> {
    let c = db
        .collection(name)
        .map_err(|e| format!("collection: {e}"))?;
    if !docs.is_empty() {
        c.insert_many(docs.to_vec())
            .map_err(|e| format!("insert_many: {e}"))?;
    }
    let result = filters.iter().try_for_each(|filter| {
        let expected: Vec<Value> = docs
            .iter()
            .filter(|d| ref_matches(d, filter))
            .cloned()
            .collect();
        let got = c
            .find(filter.clone())
            .sort(json!({"_id": 1}))
            .to_vec()
            .map_err(|e| format!("find({filter}) failed: {e}"))?;
        if got != expected {
            let only_engine: Vec<&Value> = got.iter().filter(|d| !expected.contains(d)).collect();
            let only_reference: Vec<&Value> =
                expected.iter().filter(|d| !got.contains(d)).collect();
            return Err(format!(
                "filter {filter}\n  engine ids    {}\n  reference ids {}\n  \
                 selected only by engine:    {}\n  selected only by reference: {}",
                json!(ids(&got)),
                json!(ids(&expected)),
                json!(only_engine),
                json!(only_reference),
            ));
        }
        let count = c
            .count(filter.clone())
            .map_err(|e| format!("count({filter}) failed: {e}"))?;
        if count != expected.len() as u64 {
            return Err(format!(
                "filter {filter}: count {count}, reference selects {}",
                expected.len()
            ));
        }
        Ok(())
    });
    db.drop_collection(name)
        .map_err(|e| format!("drop_collection: {e}"))?;
    result
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

#[test]
fn find_agrees_with_reference_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let counter = AtomicUsize::new(0);
    let config = Config {
        cases: cases(),
        // Shrunk failures are printed below; write no regression files.
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = (documents(), prop::collection::vec(filter(), 1..=4));
    let outcome = runner.run(&strategy, |(docs, filters)| {
        let name = format!("c{}", counter.fetch_add(1, AtomicOrdering::Relaxed));
        check(&db, &name, &docs, &filters).map_err(TestCaseError::fail)
    });
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(reason, (docs, filters))) => panic!(
            "engine and reference disagree\n{reason}\nminimal input:\n  docs    {}\n  filters {}",
            json!(docs),
            json!(filters)
        ),
        Err(e) => panic!("{e}"),
    }
}
