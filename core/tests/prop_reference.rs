//! Property tests against the independent reference model of
//! `common/reference.rs` (MongoDB's documented query and update semantics over
//! `serde_json::Value`, sharing no code with the engine):
//!
//! * `find_agrees_with_reference_evaluator`: `find` and `count` with random
//!   filters over random documents select exactly what the reference selects.
//! * `indexed_writes_agree_with_reference_model`: the same over a collection
//!   with zero to three random secondary indexes (ascending or descending,
//!   sparse, partial, multikey whenever the data holds arrays), then random
//!   `update_many` (`$set`, `$unset`, `$inc`, `$push` on `a`, `b`, `c`, `a.b`,
//!   `a.c`) and `delete_many` statements: matched and modified counts, refused
//!   statements (which must leave every document as it was) and the stored
//!   documents (compared as serialized text: field order and `1` vs `1.0`
//!   count) must equal the reference's, and the filters are checked again
//!   after each write.
//!
//! Cases: 256 by default, or `PROPTEST_CASES`.

#[path = "common/reference.rs"]
mod reference;

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use collection_store::{Collection, Database, Error, IndexSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------
// Reference self-checks (examples straight from the rules)
// ---------------------------------------------------------------------------

#[test]
fn reference_evaluator_follows_the_rules() {
    let m = |doc: Value, filter: Value| reference::matches(&doc, &filter);
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
    // Integers beyond 2^53 compare exactly with doubles.
    assert!(m(
        json!({"a": 9007199254740993i64}),
        json!({"a": {"$gt": 9007199254740992.0f64}})
    ));
    assert!(!m(
        json!({"a": 9007199254740993i64}),
        json!({"a": 9007199254740992.0f64})
    ));
    assert!(m(json!({"a": 2.0}), json!({"a": {"$type": "double"}})));
    assert!(!m(json!({"a": 2}), json!({"a": {"$type": "double"}})));
    // $regex matches strings only, with the implicit array rule.
    assert!(m(json!({"a": [1, "xy"]}), json!({"a": {"$regex": "y$"}})));
    assert!(!m(json!({"a": 1}), json!({"a": {"$regex": ""}})));
    // The reference refuses to guess outside its rules.
    assert!(reference::supported(
        &json!({"a": {"$in": [1, null]}, "$or": [{"b": 1}]})
    ));
    assert!(!reference::supported(&json!({"a": {"$where": "1"}})));
    assert!(!reference::supported(&json!({"a": {"$date": 1}})));
    assert!(!reference::supported(&json!({"$text": {"$search": "x"}})));
}

#[test]
fn reference_updates_follow_the_rules() {
    use reference::{apply_update, UpdateOutcome::*};
    let u = |doc: Value, update: Value| apply_update(&doc, &update);
    let applied = |v: Value| Applied(v);
    // $set replaces in place and appends new fields; x.y creates x.
    assert_eq!(
        u(
            json!({"_id": 1, "a": 1, "b": 2}),
            json!({"$set": {"a": 3, "c": 4}})
        ),
        applied(json!({"_id": 1, "a": 3, "b": 2, "c": 4}))
    );
    assert_eq!(
        u(json!({"_id": 1}), json!({"$set": {"a.b": 1}})),
        applied(json!({"_id": 1, "a": {"b": 1}}))
    );
    assert_eq!(
        u(json!({"_id": 1, "a": 5}), json!({"$set": {"a.b": 1}})),
        Refused
    );
    assert_eq!(
        u(json!({"_id": 1, "a": [5]}), json!({"$set": {"a.b": 1}})),
        Refused
    );
    // $unset removes; through a scalar it does nothing.
    assert_eq!(
        u(
            json!({"_id": 1, "a": {"b": 1, "c": 2}}),
            json!({"$unset": {"a.b": ""}})
        ),
        applied(json!({"_id": 1, "a": {"c": 2}}))
    );
    assert_eq!(
        u(json!({"_id": 1, "a": 3}), json!({"$unset": {"a.b": ""}})),
        applied(json!({"_id": 1, "a": 3}))
    );
    // $inc: ints stay ints, a double widens; non-numbers are refused.
    assert_eq!(
        u(
            json!({"_id": 1, "a": 2}),
            json!({"$inc": {"a": 3, "b": 0.5}})
        ),
        applied(json!({"_id": 1, "a": 5, "b": 0.5}))
    );
    assert_eq!(
        u(json!({"_id": 1, "a": 2}), json!({"$inc": {"a": 0.5}})),
        applied(json!({"_id": 1, "a": 2.5}))
    );
    assert_eq!(
        u(json!({"_id": 1, "a": null}), json!({"$inc": {"a": 1}})),
        Refused
    );
    // $push appends or creates; a non-array is refused.
    assert_eq!(
        u(
            json!({"_id": 1, "a": [1]}),
            json!({"$push": {"a": 2, "b": 3}})
        ),
        applied(json!({"_id": 1, "a": [1, 2], "b": [3]}))
    );
    assert_eq!(
        u(json!({"_id": 1, "a": 1}), json!({"$push": {"a": 2}})),
        Refused
    );
    // Conflicting paths.
    assert!(reference::conflicting(
        &json!({"$set": {"a": 1}, "$inc": {"a.b": 1}})
    ));
    assert!(!reference::conflicting(
        &json!({"$set": {"a.b": 1}, "$inc": {"a.c": 1}})
    ));
    // Strict sameness: field order and number types count.
    assert!(!reference::same(
        &json!({"a": 1, "b": 2}),
        &json!({"b": 2, "a": 1})
    ));
    assert!(!reference::same(&json!({"a": 1}), &json!({"a": 1.0})));
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
// The properties
// ---------------------------------------------------------------------------

fn ids(docs: &[Value]) -> Vec<Value> {
    docs.iter().map(|d| d["_id"].clone()).collect()
}

fn text(docs: &[Value]) -> String {
    serde_json::to_string(docs).expect("serializable")
}

/// Every filter must select on `c` exactly what the reference selects from
/// `docs` (the collection's contents in `_id` order), by `find` and `count`.
fn check_filters(c: &Collection, docs: &[Value], filters: &[Value]) -> Result<(), String> {
    filters.iter().try_for_each(|filter| {
        let expected = reference::select(docs, filter);
        let got = c
            .find(filter.clone())
            .sort(json!({"_id": 1}))
            .to_vec()
            .map_err(|e| format!("find({filter}) failed: {e}"))?;
        if text(&got) != text(&expected) {
            let only_engine: Vec<&Value> = got.iter().filter(|d| !expected.contains(d)).collect();
            let only_reference: Vec<&Value> =
                expected.iter().filter(|d| !got.contains(d)).collect();
            return Err(format!(
                "filter {filter}\n  engine ids    {}\n  reference ids {}\n  \
                 selected only by engine:    {}\n  selected only by reference: {}\n  \
                 plan: {}",
                json!(ids(&got)),
                json!(ids(&expected)),
                json!(only_engine),
                json!(only_reference),
                c.explain(filter.clone())
                    .map(|e| serde_json::to_string(&e).expect("serializable"))
                    .unwrap_or_else(|e| e.to_string()),
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
    })
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
    let result = check_filters(&c, docs, filters);
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

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        // Shrunk failures are printed below; write no regression files.
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn find_agrees_with_reference_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let counter = AtomicUsize::new(0);
    let strategy = (documents(), prop::collection::vec(filter(), 1..=4));
    let outcome = runner().run(&strategy, |(docs, filters)| {
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

// ---------------------------------------------------------------------------
// Indexed collections and writes
// ---------------------------------------------------------------------------

/// A single-field secondary index (no unique ones: a refused insert would
/// make the contents depend on the index, not on the reference).
#[derive(Debug, Clone)]
struct Ix {
    path: &'static str,
    direction: i32,
    sparse: bool,
    partial: Option<Value>,
}

impl Ix {
    fn spec(&self, name: String) -> IndexSpec {
        let mut spec = IndexSpec::new([(self.path, self.direction)]).name(name);
        if self.sparse {
            spec = spec.sparse();
        }
        if let Some(p) = &self.partial {
            spec = spec.partial(p.clone());
        }
        spec
    }

    fn to_json(&self) -> Value {
        json!({
            "key": {self.path: self.direction},
            "sparse": self.sparse,
            "partialFilterExpression": self.partial,
        })
    }
}

fn index() -> impl Strategy<Value = Ix> {
    (
        prop::sample::select(vec!["a", "b", "c", "a.b", "a.c"]),
        prop_oneof![Just(1), Just(-1)],
        prop::bool::weighted(0.3),
        prop::option::weighted(
            0.25,
            prop::sample::select(vec![
                json!({"b": {"$exists": true}}),
                json!({"a": {"$gt": 0}}),
                json!({"c": {"$type": "string"}}),
            ]),
        ),
    )
        .prop_map(|(path, direction, sparse, partial)| Ix {
            path,
            direction,
            sparse,
            partial,
        })
}

/// A write statement.
#[derive(Debug, Clone)]
enum Write {
    UpdateMany(Value, Value),
    DeleteMany(Value),
}

impl Write {
    fn to_json(&self) -> Value {
        match self {
            Write::UpdateMany(f, u) => json!({"update_many": [f, u]}),
            Write::DeleteMany(f) => json!({"delete_many": f}),
        }
    }
}

/// An update document of one or two operators on `a`, `b`, `c`, `a.b`, `a.c`.
fn update() -> impl Strategy<Value = Value> {
    let path = || prop::sample::select(vec!["a", "b", "c", "a.b", "a.c"]);
    let step = prop_oneof![
        3 => (path(), value()).prop_map(|(p, v)| ("$set", p, v)),
        1 => path().prop_map(|p| ("$unset", p, json!(""))),
        2 => (path(), prop::sample::select(vec![json!(1), json!(-2), json!(0.5), json!(3)]))
            .prop_map(|(p, v)| ("$inc", p, v)),
        1 => (path(), scalar()).prop_map(|(p, v)| ("$push", p, v)),
    ];
    prop::collection::vec(step, 1..=2).prop_map(|steps| {
        let mut u = Map::new();
        for (op, p, v) in steps {
            let fields = u
                .entry(op.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            fields.as_object_mut().unwrap().insert(p.to_string(), v);
        }
        Value::Object(u)
    })
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        5 => (filter(), update()).prop_map(|(f, u)| Write::UpdateMany(f, u)),
        1 => filter().prop_map(Write::DeleteMany),
    ]
}

/// What the reference expects of a write: `Some(Ok((matched, modified),
/// documents after))`, `Some(Err(()))` for a refused statement, `None` when
/// the reference cannot tell.
type Expected = Option<Result<((u64, u64), Vec<Value>), ()>>;

fn expect_write(docs: &[Value], w: &Write) -> Expected {
    use reference::UpdateOutcome;
    match w {
        Write::DeleteMany(f) => {
            let kept: Vec<Value> = docs
                .iter()
                .filter(|d| !reference::matches(d, f))
                .cloned()
                .collect();
            let deleted = (docs.len() - kept.len()) as u64;
            Some(Ok(((deleted, 0), kept)))
        }
        Write::UpdateMany(f, u) => {
            if reference::conflicting(u) {
                return Some(Err(()));
            }
            let (mut matched, mut modified, mut out) = (0, 0, Vec::new());
            for d in docs {
                if !reference::matches(d, f) {
                    out.push(d.clone());
                    continue;
                }
                matched += 1;
                match reference::apply_update(d, u) {
                    UpdateOutcome::Applied(new) => {
                        modified += u64::from(!reference::same(d, &new));
                        out.push(new);
                    }
                    UpdateOutcome::Refused => return Some(Err(())),
                    UpdateOutcome::Unknown => return None,
                }
            }
            Some(Ok(((matched, modified), out)))
        }
    }
}

fn contents(c: &Collection) -> Result<Vec<Value>, String> {
    c.find(json!({}))
        .sort(json!({"_id": 1}))
        .to_vec()
        .map_err(|e| format!("reading the collection: {e}"))
}

#[derive(Debug, Default)]
struct WriteCoverage {
    indexes: u64,
    applied: u64,
    modified: u64,
    refused: u64,
    unknown: u64,
    deleted: u64,
}

#[allow(clippy::type_complexity)]
fn run_writes_case(
    db: &Database,
    name: &str,
    (docs, indexes, filters, writes): &(Vec<Value>, Vec<Ix>, Vec<Value>, Vec<Write>),
    cov: &mut WriteCoverage,
) -> Result<(), String> {
    let c = db
        .collection(name)
        .map_err(|e| format!("collection: {e}"))?;
    for (i, ix) in indexes.iter().enumerate() {
        match c.create_index(ix.spec(format!("ix{i}"))) {
            Ok(_) => cov.indexes += 1,
            // The same definition twice.
            Err(Error::InvalidIndex(_)) => {}
            Err(e) => return Err(format!("create_index {}: {e}", ix.to_json())),
        }
    }
    if !docs.is_empty() {
        c.insert_many(docs.to_vec())
            .map_err(|e| format!("insert_many: {e}"))?;
    }
    let mut model = docs.clone();
    check_filters(&c, &model, filters).map_err(|m| format!("before the writes: {m}"))?;
    for (i, w) in writes.iter().enumerate() {
        let at = |m: String| format!("write {i} {}: {m}", w.to_json());
        let expected = expect_write(&model, w);
        let got = match w {
            Write::UpdateMany(f, u) => c
                .update_many(f.clone(), u.clone())
                .map(|r| (r.matched_count, r.modified_count)),
            Write::DeleteMany(f) => c.delete_many(f.clone()).map(|n| (n, 0)),
        };
        let stored = contents(&c)?;
        match (expected, got) {
            (None, _) => {
                cov.unknown += 1;
                model = stored;
            }
            (Some(Err(())), Err(_)) => {
                cov.refused += 1;
                if text(&stored) != text(&model) {
                    return Err(at(format!(
                        "the refused statement changed documents\n  before {}\n  after  {}",
                        text(&model),
                        text(&stored)
                    )));
                }
            }
            (Some(Err(())), Ok(r)) => {
                return Err(at(format!(
                    "the reference refuses it but the engine gave {r:?}; documents now {}",
                    text(&stored)
                )))
            }
            (Some(Ok((want, _))), Err(e)) => {
                return Err(at(format!(
                    "the engine failed ({e}) but the reference gives {want:?}"
                )))
            }
            (Some(Ok((want, after))), Ok(r)) => {
                if r != want {
                    return Err(at(format!("(matched, modified) {r:?}, reference {want:?}")));
                }
                if text(&stored) != text(&after) {
                    return Err(at(format!(
                        "documents differ\n  before     {}\n  engine     {}\n  reference  {}",
                        text(&model),
                        text(&stored),
                        text(&after)
                    )));
                }
                cov.applied += 1;
                cov.modified += r.1;
                if matches!(w, Write::DeleteMany(_)) {
                    cov.deleted += r.0;
                }
                model = after;
            }
        }
        check_filters(&c, &model, filters).map_err(|m| at(format!("after it: {m}")))?;
    }
    Ok(())
}

#[test]
fn indexed_writes_agree_with_reference_model() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let counter = AtomicUsize::new(0);
    let cov = std::cell::RefCell::new(WriteCoverage::default());
    let strategy = (
        documents(),
        prop::collection::vec(index(), 0..=3),
        prop::collection::vec(filter(), 1..=3),
        prop::collection::vec(write(), 1..=4),
    );
    let outcome = runner().run(&strategy, |case| {
        let name = format!("w{}", counter.fetch_add(1, AtomicOrdering::Relaxed));
        let result = run_writes_case(&db, &name, &case, &mut cov.borrow_mut());
        db.drop_collection(&name)
            .map_err(|e| TestCaseError::fail(format!("drop_collection: {e}")))?;
        result.map_err(TestCaseError::fail)
    });
    let cov = cov.into_inner();
    eprintln!("prop_reference write coverage: {cov:?}");
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(reason, (docs, indexes, filters, writes))) => panic!(
            "engine and reference disagree\n{reason}\nminimal input:\n  docs    {}\n  \
             indexes {}\n  filters {}\n  writes  {}",
            json!(docs),
            Value::Array(indexes.iter().map(Ix::to_json).collect()),
            json!(filters),
            Value::Array(writes.iter().map(Write::to_json).collect()),
        ),
        Err(e) => panic!("{e}"),
    }
    // Each kind of outcome was exercised (the default case count is far
    // above what these need).
    if cases() >= 64 {
        assert!(
            cov.indexes > 0 && cov.applied > 0 && cov.modified > 0,
            "{cov:?}"
        );
        assert!(cov.refused > 0 && cov.deleted > 0, "{cov:?}");
    }
}
