//! How pipelines run: the leading `$match`/`$sort`/`$skip`/`$limit` through
//! the planner (explain shows the index and the stages it absorbed),
//! `$lookup` through the foreign collection's index (same results without
//! one), the per-stage memory limit, and two property tests:
//!
//! * `match_sort_skip_limit_equal_find`: random documents, random secondary
//!   indexes, random filters, sorts, skips and limits; the pipeline
//!   `[$match, $sort, $skip, $limit]` must return exactly what `find` returns
//!   (the same JSON sequence), also when the stages are split or run after a
//!   stage that stops the planner from absorbing them.
//! * `group_equals_reference`: `$group` with every accumulator against a
//!   straightforward reference implementation written below (its own value
//!   equality and BSON order over JSON values).
//!
//! Cases: 96 and 128 by default, or `PROPTEST_CASES`.

use std::cmp::Ordering;

use collection_store::{Collection, Database, Error, IndexSpec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestError, TestRunner};
use serde_json::{json, Map, Value};

struct Fx {
    db: Database,
    _dir: tempfile::TempDir,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    Fx {
        db: Database::open(dir.path()).unwrap(),
        _dir: dir,
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// 2,000 users `{_id, name, age 18..80, city (10 values), score}` with an
/// index on `age`.
fn users(f: &Fx) -> Collection {
    let c = f.db.collection("users").unwrap();
    let docs: Vec<Value> = (0..2000)
        .map(|i: i64| {
            json!({"_id": i, "name": format!("user {i}"), "age": 18 + (i * 7919) % 63,
                   "city": format!("city{}", (i * 31) % 10), "score": ((i * 37) % 1000) as f64 / 10.0})
        })
        .collect();
    c.insert_many(docs).unwrap();
    c.create_index(IndexSpec::new([("age", 1)])).unwrap();
    c
}

// ---------------------------------------------------------------------------
// Explain and push-down
// ---------------------------------------------------------------------------

#[test]
fn leading_match_sort_limit_use_the_index() {
    let f = fx();
    let c = users(&f);
    // $match on the indexed field: an index scan, the $match absorbed.
    let e = c
        .aggregate(json!([{"$match": {"age": {"$gte": 70}}}, {"$group": {"_id": "$city", "n": {"$sum": 1}}}]))
        .explain()
        .unwrap();
    assert_eq!(e.source.stage, "IXSCAN");
    assert_eq!(e.source.index.as_deref(), Some("age_1"));
    assert_eq!(e.absorbed, vec!["$match"]);
    assert_eq!(
        e.stages
            .iter()
            .map(|s| s.stage.as_str())
            .collect::<Vec<_>>(),
        vec!["$group"]
    );
    let matching = c.count(json!({"age": {"$gte": 70}})).unwrap();
    assert_eq!(e.source.stats.docs_examined, matching);
    assert_eq!(e.source.stats.returned, matching);
    assert_eq!(e.stages[0].groups, Some(10));
    // $match + $sort on the index + $limit: the index gives the order and the
    // walk stops after the limit.
    let p = json!([{"$match": {"age": {"$gte": 30}}}, {"$sort": {"age": -1}}, {"$skip": 5}, {"$limit": 10}, {"$project": {"age": 1}}]);
    let e = c.aggregate(p.clone()).explain().unwrap();
    assert_eq!(e.absorbed, vec!["$match", "$sort", "$skip", "$limit"]);
    assert!(e.source.sort_by_index && !e.source.in_memory_sort, "{e:?}");
    assert!(e.source.stats.docs_examined <= 15 + 1, "{e:?}");
    assert_eq!(e.source.stats.returned, 10);
    let got = c.aggregate(p).to_vec().unwrap();
    let want = c
        .find(json!({"age": {"$gte": 30}}))
        .sort(json!({"age": -1}))
        .skip(5)
        .limit(10)
        .projection(json!({"age": 1}))
        .to_vec()
        .unwrap();
    assert_eq!(got, want);
    // A sort no index provides: in memory (top-k), reported with its memory.
    let e = c
        .aggregate(
            json!([{"$match": {"age": {"$lt": 25}}}, {"$sort": {"score": -1}}, {"$limit": 3}]),
        )
        .explain()
        .unwrap();
    assert!(e.source.in_memory_sort, "{e:?}");
    assert!(e.source_sort_memory.unwrap() > 0);
    // No $match: a collection scan; $sort on _id is the scan's order.
    let e = c
        .aggregate(json!([{"$sort": {"_id": -1}}, {"$limit": 2}]))
        .explain()
        .unwrap();
    assert_eq!(e.source.stage, "COLLSCAN");
    assert!(e.source.reverse && e.source.sort_by_index);
    assert_eq!(e.source.stats.docs_examined, 2);
    // An equality on the primary key is a point lookup.
    let e = c
        .aggregate(json!([{"$match": {"_id": 42}}]))
        .explain()
        .unwrap();
    assert_eq!(e.source.stage, "IDHACK");
    // $expr stays a stage, but its field = constant equality becomes bounds.
    let e = c
        .aggregate(json!([{"$match": {"$expr": {"$eq": ["$age", 33]}}}]))
        .explain()
        .unwrap();
    assert_eq!(e.source.stage, "IXSCAN", "{e:?}");
    assert_eq!(e.stages[0].stage, "$match");
    assert_eq!(
        c.aggregate(json!([{"$match": {"$expr": {"$eq": ["$age", 33]}}}, {"$count": "n"}]))
            .to_vec()
            .unwrap(),
        vec![json!({"n": c.count(json!({"age": 33})).unwrap()})]
    );
    // A $match after another stage is not planned.
    let e = c
        .aggregate(json!([{"$project": {"age": 1}}, {"$match": {"age": 40}}]))
        .explain()
        .unwrap();
    assert_eq!(e.source.stage, "COLLSCAN");
    assert!(e.absorbed.is_empty());
    // Consecutive $match stages merge into one planned filter.
    let e = c
        .aggregate(json!([{"$match": {"city": "city3"}}, {"$match": {"age": 50}}]))
        .explain()
        .unwrap();
    assert_eq!(e.source.stage, "IXSCAN");
    assert_eq!(e.absorbed, vec!["$match", "$match"]);
}

#[test]
fn lookup_uses_the_foreign_index_and_agrees_without_it() {
    let f = fx();
    let orders = f.db.collection("orders").unwrap();
    let docs: Vec<Value> = (0..300)
        .map(|i: i64| match i % 10 {
            0 => json!({"_id": i, "user": [i % 40, (i + 1) % 40], "amount": i}),
            1 => json!({"_id": i, "amount": i}),
            2 => json!({"_id": i, "user": null, "amount": i}),
            _ => json!({"_id": i, "user": (i * 7) % 50, "amount": i}),
        })
        .collect();
    orders.insert_many(docs).unwrap();
    let people = |name: &str| {
        let c = f.db.collection(name).unwrap();
        let docs: Vec<Value> = (0..45)
            .map(|i: i64| match i {
                44 => json!({"_id": 1000 + i, "uid": null, "name": "nobody"}),
                43 => json!({"_id": 1000 + i, "name": "no uid"}),
                _ => json!({"_id": 1000 + i, "uid": i % 42, "name": format!("u{i}")}),
            })
            .collect();
        c.insert_many(docs).unwrap();
        c
    };
    people("plain");
    people("indexed")
        .create_index(IndexSpec::new([("uid", 1)]))
        .unwrap();
    let equality = |from: &str| {
        json!([{"$lookup": {"from": from, "localField": "user", "foreignField": "uid", "as": "u"}},
               {"$project": {"names": "$u.name", "amount": 1}}])
    };
    let plain = orders.aggregate(equality("plain")).to_vec().unwrap();
    let indexed = orders.aggregate(equality("indexed")).to_vec().unwrap();
    assert_eq!(plain.len(), 300);
    assert_eq!(plain, indexed);
    assert!(plain
        .iter()
        .any(|d| d["names"].as_array().unwrap().len() >= 2));
    // A missing or null user joins the null and the missing uid (primary-key order).
    assert_eq!(plain[1]["names"], json!(["no uid", "nobody"]));
    assert_eq!(plain[2]["names"], json!(["no uid", "nobody"]));
    // Explain shows how the foreign documents were found.
    let e = orders.aggregate(equality("indexed")).explain().unwrap();
    let l = e.stages[0].lookup.as_ref().unwrap();
    assert_eq!((l.from.as_str(), l.lookups), ("indexed", 300));
    assert_eq!(l.foreign_field.as_deref(), Some("uid"));
    let plan = l.plan.as_ref().unwrap();
    assert_eq!(plan.stage, "IXSCAN");
    assert_eq!(plan.index.as_deref(), Some("uid_1"));
    let e = orders.aggregate(equality("plain")).explain().unwrap();
    let plan = e.stages[0].lookup.as_ref().unwrap().plan.clone().unwrap();
    assert_eq!(plan.stage, "COLLSCAN");
    assert_eq!(plan.stats.docs_examined, 300 * 45);
    // The foreign primary key is a point lookup.
    let e = orders
        .aggregate(json!([{"$lookup": {"from": "indexed", "localField": "amount", "foreignField": "_id", "as": "u"}}]))
        .explain()
        .unwrap();
    assert_eq!(
        e.stages[0]
            .lookup
            .as_ref()
            .unwrap()
            .plan
            .as_ref()
            .unwrap()
            .stage,
        "IDHACK"
    );
    // Pipeline form: {$eq: ["$uid", "$$u"]} is looked up through the index
    // once the variable is known; results equal the unindexed collection's.
    let correlated = |from: &str| {
        json!([{"$lookup": {"from": from, "let": {"u": "$user"}, "as": "u", "pipeline": [
            {"$match": {"$expr": {"$eq": ["$uid", "$$u"]}}}, {"$project": {"_id": 0, "name": 1}}]}}])
    };
    let a = orders.aggregate(correlated("plain")).to_vec().unwrap();
    let b = orders.aggregate(correlated("indexed")).to_vec().unwrap();
    assert_eq!(a, b);
    // $expr equality is exact (unlike the equality form): a variable bound to a
    // missing user equals only a missing uid, null only null.
    assert_eq!(a[1]["u"], json!([{"name": "no uid"}]));
    assert_eq!(a[2]["u"], json!([{"name": "nobody"}]));
    // (The first order's user is an array, which $eq compares whole: no index
    // bounds for it, so explain starts at an order with a scalar user.)
    let mut p = correlated("indexed");
    p.as_array_mut()
        .unwrap()
        .insert(0, json!({"$match": {"_id": {"$gte": 3}}}));
    let e = orders.aggregate(p).explain().unwrap();
    let l = e.stages[0].lookup.as_ref().unwrap();
    assert_eq!(l.plan.as_ref().unwrap().stage, "IXSCAN");
    assert_eq!(l.plan.as_ref().unwrap().index.as_deref(), Some("uid_1"));
    assert_eq!(
        l.pipeline
            .iter()
            .map(|s| s.stage.as_str())
            .collect::<Vec<_>>(),
        vec!["$match", "$project"]
    );
}

// ---------------------------------------------------------------------------
// Memory limits
// ---------------------------------------------------------------------------

fn memory_error(r: Result<Vec<Value>, Error>, stage: &str) {
    match r {
        Err(Error::MemoryLimitExceeded { stage: s, limit }) => {
            assert_eq!(s, stage);
            assert!(limit > 0);
        }
        other => panic!("expected a memory-limit error in {stage}, got {other:?}"),
    }
}

#[test]
fn blocking_stages_respect_the_memory_limit() {
    let f = fx();
    let c = users(&f);
    assert_eq!(collection_store::DEFAULT_MEMORY_LIMIT, 100 * 1024 * 1024);
    let limit = 64 * 1024;
    // $group: 2,000 groups do not fit in 64 KiB, 10 do.
    memory_error(
        c.aggregate(json!([{"$group": {"_id": "$name", "n": {"$sum": 1}}}]))
            .memory_limit(limit)
            .to_vec(),
        "stage 1 ($group)",
    );
    assert_eq!(
        c.aggregate(json!([{"$group": {"_id": "$city", "n": {"$sum": 1}}}]))
            .memory_limit(limit)
            .to_vec()
            .unwrap()
            .len(),
        10
    );
    // $push grows a single group past the limit.
    memory_error(
        c.aggregate(json!([{"$group": {"_id": null, "all": {"$push": "$$ROOT"}}}]))
            .memory_limit(limit)
            .to_vec(),
        "stage 1 ($group)",
    );
    // A sort no index provides, absorbed by the source or as a stage.
    memory_error(
        c.aggregate(json!([{"$sort": {"score": 1}}]))
            .memory_limit(limit)
            .to_vec(),
        "stage 1 ($sort)",
    );
    memory_error(
        c.aggregate(json!([{"$project": {"score": 1}}, {"$sort": {"score": 1}}]))
            .memory_limit(limit)
            .to_vec(),
        "stage 2 ($sort)",
    );
    // ... but a top-k keeps only the first documents, whatever the input size.
    assert_eq!(
        c.aggregate(json!([{"$sort": {"score": 1}}, {"$limit": 5}]))
            .memory_limit(limit)
            .to_vec()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        c.aggregate(json!([{"$project": {"score": 1}}, {"$sort": {"score": -1}}, {"$skip": 2}, {"$limit": 5}])).memory_limit(limit).to_vec().unwrap().len(),
        5
    );
    // The sort an index provides holds nothing.
    assert_eq!(
        c.aggregate(json!([{"$sort": {"age": 1}}]))
            .memory_limit(limit)
            .to_vec()
            .unwrap()
            .len(),
        2000
    );
    // $bucket and $facet.
    memory_error(
        c.aggregate(json!([{"$bucket": {"groupBy": "$age", "boundaries": [0, 50, 100], "output": {"docs": {"$push": "$$ROOT"}}}}])).memory_limit(limit).to_vec(),
        "stage 1 ($bucket)",
    );
    memory_error(
        c.aggregate(json!([{"$facet": {"all": [{"$match": {}}]}}]))
            .memory_limit(limit)
            .to_vec(),
        "stage 1 ($facet)",
    );
    // Streaming stages need no memory.
    assert_eq!(
        c.aggregate(json!([{"$project": {"name": 1}}, {"$unwind": "$name"}, {"$count": "n"}]))
            .memory_limit(1)
            .to_vec()
            .unwrap(),
        vec![json!({"n": 2000})]
    );
    // $lookup: one document's joined array is bounded by the limit too.
    memory_error(
        c.aggregate(json!([{"$limit": 1}, {"$lookup": {"from": "users", "pipeline": [], "as": "everyone"}}])).memory_limit(limit).to_vec(),
        "stage 2 ($lookup)",
    );
    // The message says what to do.
    let e = c
        .aggregate(json!([{"$sort": {"score": 1}}]))
        .memory_limit(limit)
        .to_vec()
        .unwrap_err();
    assert!(e.to_string().contains("Aggregate::memory_limit"), "{e}");
    // Explain reports what a blocking stage held.
    let e = c
        .aggregate(json!([{"$group": {"_id": "$city", "n": {"$sum": 1}}}]))
        .explain()
        .unwrap();
    assert!(e.stages[0].memory_peak.unwrap() > 0);
}

// ---------------------------------------------------------------------------
// Property test: $match + $sort + $skip + $limit == find
// ---------------------------------------------------------------------------

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        6 => (-3i64..=3).prop_map(Value::from),
        2 => select(vec![1.5f64, -0.0, 2.0, 0.5]).prop_map(Value::from),
        2 => select(vec!["", "x", "y"]).prop_map(Value::from),
    ]
    .boxed()
}

fn field_value() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => scalar(),
        2 => prop::collection::vec(scalar(), 0..=3).prop_map(Value::Array),
        1 => scalar().prop_map(|b| json!({"b": b})),
        1 => prop::collection::vec(scalar().prop_map(|b| json!({"b": b})), 1..=2).prop_map(Value::Array),
    ]
    .boxed()
}

fn document(id: usize) -> impl Strategy<Value = Value> {
    let field = || prop::option::weighted(0.8, field_value());
    (field(), field(), field()).prop_map(move |(a, b, c)| {
        let mut m = Map::new();
        m.insert("_id".into(), json!(id));
        for (k, v) in [("a", a), ("b", b), ("c", c)] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    })
}

fn documents() -> impl Strategy<Value = Vec<Value>> {
    (0usize..40).prop_flat_map(|n| (0..n).map(document).collect::<Vec<_>>())
}

fn filter() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(json!({})),
        (select(vec!["a", "b", "c", "a.b"]), scalar()).prop_map(|(p, v)| json!({ p: v })),
        (
            select(vec!["a", "b"]),
            select(vec!["$gt", "$gte", "$lt", "$lte"]),
            scalar()
        )
            .prop_map(|(p, op, v)| json!({ p: { op: v } })),
        (scalar(), scalar()).prop_map(|(lo, hi)| json!({"a": {"$gte": lo, "$lt": hi}})),
        prop::collection::vec(scalar(), 0..=3).prop_map(|v| json!({"b": {"$in": v}})),
        any::<bool>().prop_map(|b| json!({"c": {"$exists": b}})),
        scalar().prop_map(|v| json!({"a": {"$ne": v}})),
        (0i64..40).prop_map(|i| json!({"_id": {"$lt": i}})),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(x, y)| json!({"$or": [x, y]})),
            (inner.clone(), inner).prop_map(|(x, y)| json!({"$and": [x, y]})),
        ]
    })
    .boxed()
}

fn sort() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(json!({"a": 1}))),
        1 => Just(Some(json!({"a": -1}))),
        1 => Just(Some(json!({"b": -1, "a": 1}))),
        1 => Just(Some(json!({"_id": -1}))),
        1 => Just(Some(json!({"a": 1, "_id": -1}))),
        1 => Just(Some(json!({"c": 1}))),
    ]
}

fn index_defs() -> impl Strategy<Value = Vec<Vec<(&'static str, i32)>>> {
    prop::collection::vec(
        select(vec![
            vec![("a", 1)],
            vec![("b", -1)],
            vec![("a", 1), ("b", 1)],
            vec![("c", 1)],
            vec![("a.b", 1)],
        ]),
        0..=2,
    )
}

#[derive(Debug, Clone)]
struct FindCase {
    docs: Vec<Value>,
    indexes: Vec<Vec<(&'static str, i32)>>,
    queries: Vec<(Value, Option<Value>, u64, u64)>,
}

fn find_case() -> impl Strategy<Value = FindCase> {
    (
        documents(),
        index_defs(),
        prop::collection::vec((filter(), sort(), 0u64..4, 0u64..6), 1..6),
    )
        .prop_map(|(docs, indexes, queries)| FindCase {
            docs,
            indexes,
            queries,
        })
}

fn text(v: &[Value]) -> String {
    serde_json::to_string(v).unwrap()
}

fn by_id_text(v: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = v.iter().map(|d| d.to_string()).collect();
    t.sort();
    t
}

fn pipeline_of(f: &Value, s: &Option<Value>, skip: u64, limit: u64) -> Vec<Value> {
    let mut p = vec![json!({"$match": f})];
    if let Some(s) = s {
        p.push(json!({"$sort": s}));
    }
    if skip > 0 {
        p.push(json!({"$skip": skip}));
    }
    if limit > 0 {
        p.push(json!({"$limit": limit}));
    }
    p
}

/// What the checked queries covered (asserted at the end, so the generators
/// keep exercising index plans, in-memory sorts and non-empty answers).
#[derive(Debug, Default)]
struct Coverage {
    non_empty: usize,
    index_plans: usize,
    in_memory_sorts: usize,
}

fn check_query(
    c: &Collection,
    f: &Value,
    s: &Option<Value>,
    skip: u64,
    limit: u64,
    cov: &mut Coverage,
) -> Result<(), String> {
    let mut find = c.find(f.clone()).skip(skip).limit(limit);
    if let Some(s) = s {
        find = find.sort(s.clone());
    }
    let want = find.to_vec().map_err(|e| format!("find: {e}"))?;
    let p = pipeline_of(f, s, skip, limit);
    let got = c
        .aggregate(Value::Array(p.clone()))
        .to_vec()
        .map_err(|e| format!("{}: {e}", Value::Array(p.clone())))?;
    let ordered = s.is_some() || skip > 0 || limit > 0;
    let same = if ordered {
        text(&got) == text(&want)
    } else {
        by_id_text(&got) == by_id_text(&want)
    };
    if !same {
        let explain = c
            .aggregate(Value::Array(p.clone()))
            .explain()
            .map(|e| serde_json::to_string(&e).unwrap());
        return Err(format!(
            "pipeline {}\n  gave {}\n  find {}\n  explain {explain:?}",
            Value::Array(p),
            text(&got),
            text(&want)
        ));
    }
    let e = c
        .aggregate(Value::Array(p.clone()))
        .explain()
        .map_err(|e| e.to_string())?;
    cov.non_empty += usize::from(!got.is_empty());
    cov.index_plans += usize::from(e.source.stage == "IXSCAN" || e.source.stage == "OR");
    cov.in_memory_sorts += usize::from(e.source.in_memory_sort);
    // Iterating gives the same sequence.
    let iterated: Vec<Value> = c
        .aggregate(Value::Array(pipeline_of(f, s, skip, limit)))
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if text(&iterated) != text(&got) {
        return Err(format!(
            "iteration gave {} but to_vec {}",
            text(&iterated),
            text(&got)
        ));
    }
    // The same stages split over two $match stages.
    let split = {
        let mut p = vec![json!({"$match": {}}), json!({"$match": f})];
        p.extend(pipeline_of(f, s, skip, limit).into_iter().skip(1));
        c.aggregate(Value::Array(p))
            .to_vec()
            .map_err(|e| e.to_string())?
    };
    if text(&split) != text(&got) {
        return Err(format!(
            "split $match gave {} but one $match {}",
            text(&split),
            text(&got)
        ));
    }
    // Run as stages (a $set first stops the absorption), with _id ending the
    // sort so that ties cannot differ.
    let mut total = match s {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    total.entry("_id").or_insert(json!(1));
    let want_total = c
        .find(f.clone())
        .sort(Value::Object(total.clone()))
        .skip(skip)
        .limit(limit)
        .to_vec()
        .map_err(|e| e.to_string())?;
    let mut p = vec![
        json!({"$set": {"zz": 1}}),
        json!({"$match": f}),
        json!({"$sort": total}),
    ];
    if skip > 0 {
        p.push(json!({"$skip": skip}));
    }
    if limit > 0 {
        p.push(json!({"$limit": limit}));
    }
    p.push(json!({"$unset": "zz"}));
    let staged = c
        .aggregate(Value::Array(p.clone()))
        .to_vec()
        .map_err(|e| e.to_string())?;
    if text(&staged) != text(&want_total) {
        return Err(format!(
            "staged {}\n  gave {}\n  find {}",
            Value::Array(p),
            text(&staged),
            text(&want_total)
        ));
    }
    // $count agrees with count().
    let n = c.count(f.clone()).map_err(|e| e.to_string())?;
    let counted = c
        .aggregate(json!([{"$match": f}, {"$count": "n"}]))
        .to_vec()
        .map_err(|e| e.to_string())?;
    let want_count = if n == 0 {
        vec![]
    } else {
        vec![json!({"n": n})]
    };
    if counted != want_count {
        return Err(format!("$count of {f} gave {counted:?}, count() {n}"));
    }
    Ok(())
}

#[test]
fn match_sort_skip_limit_equal_find() {
    let f = fx();
    let counter = std::cell::Cell::new(0usize);
    let cov = std::cell::RefCell::new(Coverage::default());
    let mut runner = TestRunner::new(Config {
        cases: cases(96),
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&find_case(), |case| {
        let n = counter.get();
        counter.set(n + 1);
        let name = format!("c{n}");
        let c = f.db.collection(&name).unwrap();
        if !case.docs.is_empty() {
            c.insert_many(case.docs.clone()).unwrap();
        }
        for (i, ix) in case.indexes.iter().enumerate() {
            // Parallel arrays in a compound index or a repeated definition: skip it.
            let _ = c.create_index(IndexSpec::new(ix.iter().copied()).name(format!("ix{i}")));
        }
        let mut result = Ok(());
        for (flt, s, skip, limit) in &case.queries {
            if let Err(m) = check_query(&c, flt, s, *skip, *limit, &mut cov.borrow_mut()) {
                result = Err(m);
                break;
            }
        }
        f.db.drop_collection(&name).unwrap();
        result.map_err(TestCaseError::fail)
    });
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => panic!(
            "pipeline and find differ\n{reason}\nminimal case: docs {} indexes {:?}",
            Value::Array(case.docs.clone()),
            case.indexes
        ),
        Err(e) => panic!("{e}"),
    }
    let cov = cov.into_inner();
    eprintln!("aggregate vs find coverage: {cov:?}");
    if cases(96) >= 64 {
        assert!(
            cov.non_empty > 50 && cov.index_plans > 5 && cov.in_memory_sorts > 20,
            "{cov:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Property test: $group == a reference implementation
// ---------------------------------------------------------------------------

/// The reference's BSON type rank for the JSON values used here.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Object(_) => 5,
        Value::Array(_) => 6,
        Value::Bool(_) => 9,
    }
}

/// The reference's total order (MongoDB's comparison order restricted to
/// null, numbers, strings, documents, arrays and booleans).
fn ref_cmp(a: &Value, b: &Value) -> Ordering {
    let r = rank(a).cmp(&rank(b));
    if r != Ordering::Equal {
        return r;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap()
            .partial_cmp(&y.as_f64().unwrap())
            .unwrap(),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = ref_cmp(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y) {
                let o = rank(va)
                    .cmp(&rank(vb))
                    .then_with(|| ka.cmp(kb))
                    .then_with(|| ref_cmp(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => Ordering::Equal,
    }
}

fn ref_eq(a: &Value, b: &Value) -> bool {
    ref_cmp(a, b) == Ordering::Equal
}

#[derive(Default, Debug)]
struct RefGroup {
    id: Value,
    n: i64,
    ints: Option<i64>,
    float_sum: f64,
    any_float: bool,
    numeric: i64,
    min: Option<Value>,
    max: Option<Value>,
    first: Option<Value>,
    last: Value,
    push: Vec<Value>,
    set: Vec<Value>,
}

fn reference_group(docs: &[Value]) -> Vec<RefGroup> {
    let mut groups: Vec<RefGroup> = Vec::new();
    for d in docs {
        let key = d.get("g").cloned().unwrap_or(Value::Null);
        let pos = match groups.iter().position(|g| ref_eq(&g.id, &key)) {
            Some(p) => p,
            None => {
                groups.push(RefGroup {
                    id: key,
                    ints: Some(0),
                    ..RefGroup::default()
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[pos];
        g.n += 1;
        let v = d.get("v");
        if let Some(Value::Number(num)) = v {
            g.numeric += 1;
            g.float_sum += num.as_f64().unwrap();
            match (num.as_i64(), g.ints) {
                (Some(i), Some(acc)) if !num.is_f64() => g.ints = acc.checked_add(i),
                _ => g.any_float = true,
            }
        }
        if let Some(x) = v.filter(|x| !x.is_null()) {
            if g.min
                .as_ref()
                .is_none_or(|m| ref_cmp(x, m) == Ordering::Less)
            {
                g.min = Some(x.clone());
            }
            if g.max
                .as_ref()
                .is_none_or(|m| ref_cmp(x, m) == Ordering::Greater)
            {
                g.max = Some(x.clone());
            }
        }
        if g.first.is_none() {
            g.first = Some(v.cloned().unwrap_or(Value::Null));
        }
        g.last = v.cloned().unwrap_or(Value::Null);
        if let Some(x) = v {
            g.push.push(x.clone());
            if !g.set.iter().any(|s| ref_eq(s, x)) {
                g.set.push(x.clone());
            }
        }
    }
    groups
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|x| (x - b).abs() <= 1e-9 * b.abs().max(1.0))
}

fn group_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (-3i64..=3).prop_map(Value::from),
        2 => select(vec![1.0f64, 2.0, 2.5, -0.0, 0.25]).prop_map(Value::from),
        1 => Just(json!(4611686018427387904i64)),
        2 => select(vec!["a", "b", ""]).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => prop::collection::vec((0i64..2).prop_map(Value::from), 0..=2).prop_map(Value::Array),
        1 => (0i64..2).prop_map(|x| json!({"k": x})),
    ]
    .boxed()
}

fn group_docs() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        (
            prop::option::weighted(0.85, group_value()),
            prop::option::weighted(0.8, group_value()),
        ),
        0..60,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (g, v))| {
                let mut m = Map::new();
                m.insert("_id".into(), json!(i));
                if let Some(g) = g {
                    m.insert("g".into(), g);
                }
                if let Some(v) = v {
                    m.insert("v".into(), v);
                }
                Value::Object(m)
            })
            .collect()
    })
}

fn check_group(got: &[Value], want: &[RefGroup]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{} groups, reference has {}",
            got.len(),
            want.len()
        ));
    }
    for (g, w) in got.iter().zip(want) {
        let fail = |what: &str| {
            Err(format!(
                "group {}: {what} is {}, reference {w:?}",
                g["_id"], g
            ))
        };
        if g["_id"] != w.id {
            return fail("_id");
        }
        if g["n"] != json!(w.n) {
            return fail("n");
        }
        let sum_ok = match (w.any_float, w.ints) {
            (false, Some(i)) => g["s"] == json!(i),
            _ => close(&g["s"], w.float_sum),
        };
        if !sum_ok {
            return fail("s");
        }
        let avg_ok = if w.numeric == 0 {
            g["a"].is_null()
        } else {
            close(&g["a"], w.float_sum / w.numeric as f64)
        };
        if !avg_ok {
            return fail("a");
        }
        if g["mn"] != w.min.clone().unwrap_or(Value::Null)
            || g["mx"] != w.max.clone().unwrap_or(Value::Null)
        {
            return fail("mn/mx");
        }
        if g["f"] != w.first.clone().unwrap_or(Value::Null) || g["l"] != w.last {
            return fail("f/l");
        }
        if g["p"] != Value::Array(w.push.clone()) || g["set"] != Value::Array(w.set.clone()) {
            return fail("p/set");
        }
    }
    Ok(())
}

#[test]
fn group_equals_reference() {
    let f = fx();
    let counter = std::cell::Cell::new(0usize);
    let mut runner = TestRunner::new(Config {
        cases: cases(128),
        failure_persistence: None,
        ..Config::default()
    });
    let pipeline = json!([{"$group": {"_id": "$g", "n": {"$sum": 1}, "s": {"$sum": "$v"}, "a": {"$avg": "$v"},
        "mn": {"$min": "$v"}, "mx": {"$max": "$v"}, "f": {"$first": "$v"}, "l": {"$last": "$v"},
        "p": {"$push": "$v"}, "set": {"$addToSet": "$v"}}}]);
    let outcome = runner.run(&group_docs(), |docs| {
        let n = counter.get();
        counter.set(n + 1);
        let name = format!("g{n}");
        let c = f.db.collection(&name).unwrap();
        if !docs.is_empty() {
            c.insert_many(docs.clone()).unwrap();
        }
        let got = c.aggregate(pipeline.clone()).to_vec().unwrap();
        // Unsorted input arrives in _id order, which is also the reference's order.
        let result = check_group(&got, &reference_group(&docs));
        // Grouping after a sort on v follows the sorted order.
        let sorted = c
            .aggregate(
                json!([{"$sort": {"v": -1}}, {"$group": {"_id": null, "p": {"$push": "$v"}}}]),
            )
            .to_vec()
            .unwrap();
        let via_find: Vec<Value> = c
            .find(json!({}))
            .sort(json!({"v": -1}))
            .to_vec()
            .unwrap()
            .into_iter()
            .filter_map(|d| d.get("v").cloned())
            .collect();
        f.db.drop_collection(&name).unwrap();
        result.map_err(TestCaseError::fail)?;
        let want = if docs.is_empty() {
            vec![]
        } else {
            vec![json!({"_id": null, "p": via_find})]
        };
        prop_assert_eq!(sorted, want);
        Ok(())
    });
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(reason, docs)) => panic!(
            "$group differs from the reference\n{reason}\ndocs {}",
            Value::Array(docs)
        ),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn lookup_then_unwind_runs_as_one_stage_with_the_same_results() {
    let f = fx();
    f.db.collection("o")
        .unwrap()
        .insert_many(vec![
            json!({"_id": 1, "u": 1, "j": "old value, replaced in place", "x": 1}),
            json!({"_id": 2, "u": 9, "x": 2}),
            json!({"_id": 3, "u": [1, 2], "x": 3}),
            json!({"_id": 4, "x": 4}),
        ])
        .unwrap();
    f.db.collection("p")
        .unwrap()
        .insert_many(vec![
            json!({"_id": 1, "k": 1, "n": "a"}),
            json!({"_id": 2, "k": 2, "n": "b"}),
            json!({"_id": 3, "k": 1, "n": "c"}),
        ])
        .unwrap();
    let o = f.db.collection("o").unwrap();
    for (as_field, preserve, before) in [
        ("j", false, json!({"$match": {}})),
        ("j", true, json!({"$match": {}})),
        ("deep.j", true, json!({"$match": {}})),
        ("j", true, json!({"$project": {"u": 1, "j": 1}})),
    ] {
        let lookup = json!({"$lookup": {"from": "p", "localField": "u", "foreignField": "k", "as": as_field}});
        let unwind = json!({"$unwind": {"path": format!("${as_field}"), "preserveNullAndEmptyArrays": preserve}});
        // Together (one stage), and kept apart by a $match that does nothing.
        let together = o
            .aggregate(json!([before.clone(), lookup.clone(), unwind.clone()]))
            .to_vec()
            .unwrap();
        let apart = o
            .aggregate(json!([before.clone(), lookup.clone(), {"$match": {}}, unwind.clone()]))
            .to_vec()
            .unwrap();
        assert_eq!(
            together, apart,
            "as {as_field}, preserve {preserve}, after {before}"
        );
        let e = o
            .aggregate(json!([before, lookup, unwind]))
            .explain()
            .unwrap();
        let names: Vec<&str> = e.stages.iter().map(|s| s.stage.as_str()).collect();
        assert!(names.ends_with(&["$lookup", "$unwind"]), "{names:?}");
        assert!(
            e.stages
                .iter()
                .find_map(|s| s.lookup.as_ref())
                .unwrap()
                .unwinding
        );
    }
    let out = o
        .aggregate(json!([{"$lookup": {"from": "p", "localField": "u", "foreignField": "k", "as": "j"}}, {"$unwind": "$j"}]))
        .to_vec()
        .unwrap();
    assert_eq!(
        out,
        vec![
            json!({"_id": 1, "u": 1, "j": {"_id": 1, "k": 1, "n": "a"}, "x": 1}),
            json!({"_id": 1, "u": 1, "j": {"_id": 3, "k": 1, "n": "c"}, "x": 1}),
            json!({"_id": 3, "u": [1, 2], "x": 3, "j": {"_id": 1, "k": 1, "n": "a"}}),
            json!({"_id": 3, "u": [1, 2], "x": 3, "j": {"_id": 2, "k": 2, "n": "b"}}),
            json!({"_id": 3, "u": [1, 2], "x": 3, "j": {"_id": 3, "k": 1, "n": "c"}}),
        ]
    );
    // With includeArrayIndex the $unwind stays a stage of its own.
    let e = o
        .aggregate(
            json!([{"$lookup": {"from": "p", "localField": "u", "foreignField": "k", "as": "j"}},
                          {"$unwind": {"path": "$j", "includeArrayIndex": "i"}}]),
        )
        .explain()
        .unwrap();
    assert!(!e.stages[0].lookup.as_ref().unwrap().unwinding);
}
