//! Property test: the query planner never changes a query's answer.
//!
//! Each case builds two collections holding the same random documents: `plain`
//! (no secondary index) and `indexed` (one to three random secondary indexes:
//! single or compound, ascending or descending, unique, sparse, partial, and
//! multikey whenever the data holds arrays). Random filters with sorts, skips
//! and limits then run three ways:
//!
//! * the reference: `plain` with the filter wrapped as `{$nor: [{$nor: [f]}]}`,
//!   which no planner rule can use, so it is a collection scan (asserted);
//! * `plain` with the filter as is (primary-key lookups and ranges);
//! * `indexed` with the filter as is (index scans, unions, index-provided sort,
//!   covered counts).
//!
//! All three (and iterating `indexed`'s `find`) must return the same JSON
//! sequence (compared as serialized text, so `1` vs `1.0` or `0.0` vs `-0.0`
//! count as different), `count` and `distinct` (over every path) must agree,
//! and `explain().stats.returned` must equal the number of results. Then
//! random `update_many`/`update_one`/`replace_one`/`delete_many`/`delete_one`
//! statements (`$set`, `$inc`, `$push`, `$unset` on indexed paths) run
//! identically on both collections inside one transaction (failing statements
//! must leave no trace, index entries included), the collections must still
//! hold the same documents, and more queries are checked.
//!
//! Documents: 0..40 (sometimes 150..260, so that index probes reach the
//! planner's cap), `_id` small ints or a few strings; fields `a`, `b`, `c`
//! (each possibly missing) holding null, booleans, ints, doubles (`1.0`, `2.5`,
//! `-0.0`, ...), integers beyond 2^53 and the double next to them, strings,
//! arrays (empty, scalars, `{b: ..}` objects, nested arrays) and `{b, c}`
//! objects. A document that an index rejects (duplicate key in a unique index,
//! parallel arrays in a compound index) is left out of both collections; an
//! index that cannot be built over the documents is left out.
//!
//! Filters: equality (scalars, documents, arrays), `$gt/$gte/$lt/$lte`
//! (null operands included), two-sided ranges, `$in` (with null; sometimes
//! long lists on two fields), `$ne`, `$nin`, `$exists`, `$elemMatch`, `$not`,
//! `$type`, `$size`, `$all`, `$regex`, on `a`, `b`, `c`, `a.b` and `_id`;
//! conjunctions (same or different fields, with a partial index's filter
//! verbatim), `$or` of 2-3 branches, two `$or`s, `$nor`. Sorts: none or 1-2
//! keys of `a`, `b`, `a.b`, `_id`; skip 0..3; limit 0..5.
//!
//! The filter's answer (and the result size after skip and limit) is also
//! checked against the independent reference model of `common/reference.rs`,
//! which shares no matcher or comparator with the engine (filters outside its
//! rules are counted and skipped; most are inside).
//!
//! Cases: 128 by default, or `PROPTEST_CASES`. A failure is shrunk and
//! printed with the documents, the indexes actually created and the failing
//! statement. `PROP_PLANNER_REPORT=<file>` instead runs every case, writes all
//! failures (unshrunk) to that file and fails at the end if there were any.

#[path = "common/reference.rs"]
mod reference;

use std::cell::RefCell;
use std::collections::BTreeMap;

use collection_store::{Collection, Database, Error, IndexSpec, UpdateResult};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------
// Generated input
// ---------------------------------------------------------------------------

/// Paths that documents, indexes, filters and updates use.
const PATHS: [&str; 4] = ["a", "b", "c", "a.b"];

/// An index definition.
#[derive(Debug, Clone)]
struct IxDef {
    fields: Vec<(&'static str, i32)>,
    unique: bool,
    sparse: bool,
    partial: Option<Value>,
}

impl IxDef {
    fn spec(&self, name: String) -> IndexSpec {
        let mut spec = IndexSpec::new(self.fields.iter().map(|(p, d)| (*p, *d))).name(name);
        if self.unique {
            spec = spec.unique();
        }
        if self.sparse {
            spec = spec.sparse();
        }
        if let Some(p) = &self.partial {
            spec = spec.partial(p.clone());
        }
        spec
    }

    fn to_json(&self) -> Value {
        let mut keys = Map::new();
        for (p, d) in &self.fields {
            keys.insert((*p).to_string(), json!(d));
        }
        let mut out = Map::new();
        out.insert("key".into(), Value::Object(keys));
        if self.unique {
            out.insert("unique".into(), json!(true));
        }
        if self.sparse {
            out.insert("sparse".into(), json!(true));
        }
        if let Some(p) = &self.partial {
            out.insert("partialFilterExpression".into(), p.clone());
        }
        Value::Object(out)
    }
}

/// A find statement (its filter also drives `count` and `distinct`).
#[derive(Debug, Clone)]
struct Query {
    filter: Value,
    sort: Option<Value>,
    skip: u64,
    limit: u64,
}

impl Query {
    fn to_json(&self) -> Value {
        json!({
            "filter": self.filter,
            "sort": self.sort,
            "skip": self.skip,
            "limit": self.limit,
        })
    }
}

/// A write statement run on both collections.
#[derive(Debug, Clone)]
enum Write {
    UpdateMany(Value, Value),
    UpdateOne(Value, Value),
    ReplaceOne(Value, Value),
    DeleteMany(Value),
    DeleteOne(Value),
}

impl Write {
    fn to_json(&self) -> Value {
        match self {
            Write::UpdateMany(f, u) => json!({"update_many": [f, u]}),
            Write::UpdateOne(f, u) => json!({"update_one": [f, u]}),
            Write::ReplaceOne(f, d) => json!({"replace_one": [f, d]}),
            Write::DeleteMany(f) => json!({"delete_many": f}),
            Write::DeleteOne(f) => json!({"delete_one": f}),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    docs: Vec<Value>,
    indexes: Vec<IxDef>,
    /// Create the indexes after inserting (index build) instead of before
    /// (index maintenance on insert).
    build_after: bool,
    queries: Vec<Query>,
    writes: Vec<Write>,
    requeries: Vec<Query>,
}

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Partial filters of indexes; queries include them verbatim so that partial
/// indexes can be chosen.
fn partials() -> Vec<Value> {
    vec![
        json!({"c": {"$exists": true}}),
        json!({"b": {"$gt": 0}}),
        json!({"a": {"$gte": 1}}),
        json!({"a.b": {"$lte": 2}}),
        json!({"c": {"$exists": true}, "b": {"$gt": 0}}),
    ]
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        6 => (-3i64..=3).prop_map(Value::from),
        3 => select(vec![1.0f64, 2.5, -0.0, 0.0, -1.5, 2.0, 0.5, 3.0]).prop_map(Value::from),
        1 => select(vec![
            json!(9007199254740993i64),
            json!(9007199254740992i64),
            json!(9007199254740992.0f64),
            json!(-9007199254740993i64),
        ]),
        2 => select(vec!["", "x", "y"]).prop_map(Value::from),
    ]
    .boxed()
}

fn array_element() -> BoxedStrategy<Value> {
    prop_oneof![
        5 => scalar(),
        3 => scalar().prop_map(|b| json!({"b": b})),
        1 => (scalar(), scalar()).prop_map(|(b, c)| json!({"c": c, "b": b})),
        1 => prop::collection::vec(scalar(), 0..=2).prop_map(Value::Array),
    ]
    .boxed()
}

fn field_value() -> BoxedStrategy<Value> {
    let inner_b = prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..=3).prop_map(Value::Array),
    ];
    prop_oneof![
        6 => scalar(),
        3 => prop::collection::vec(array_element(), 0..=3).prop_map(Value::Array),
        2 => (
            prop::option::weighted(0.8, inner_b),
            prop::option::weighted(0.5, scalar()),
        )
            .prop_map(|(b, c)| {
                let mut m = Map::new();
                if let Some(b) = b {
                    m.insert("b".into(), b);
                }
                if let Some(c) = c {
                    m.insert("c".into(), c);
                }
                Value::Object(m)
            }),
    ]
    .boxed()
}

fn id_value() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => (0i64..40).prop_map(Value::from),
        1 => select(vec!["", "k1", "k2", "x"]).prop_map(Value::from),
    ]
    .boxed()
}

/// The fields `a`, `b`, `c` of a document, each possibly missing.
fn fields() -> impl Strategy<Value = Map<String, Value>> {
    let field = || prop::option::weighted(0.75, field_value());
    (field(), field(), field()).prop_map(|(a, b, c)| {
        let mut m = Map::new();
        for (k, v) in [("a", a), ("b", b), ("c", c)] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        m
    })
}

fn with_id(id: Value, fields: Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), id);
    m.extend(fields);
    Value::Object(m)
}

/// Documents with distinct `_id`s: usually 0..40 (the first of each `_id` is
/// kept); sometimes 150..260 numbered ones, so that index probes reach the
/// planner's probe cap.
fn documents() -> impl Strategy<Value = Vec<Value>> {
    prop_oneof![
        15 => prop::collection::vec((id_value(), fields()), 0..40).prop_map(|docs| {
            let mut seen = std::collections::HashSet::new();
            docs.into_iter()
                .filter(|(id, _)| seen.insert(id.to_string()))
                .map(|(id, f)| with_id(id, f))
                .collect()
        }),
        1 => prop::collection::vec(fields(), 150..260).prop_map(|docs| {
            docs.into_iter()
                .enumerate()
                .map(|(i, f)| with_id(json!(i), f))
                .collect()
        }),
    ]
}

fn direction() -> impl Strategy<Value = i32> {
    prop_oneof![Just(1), Just(-1)]
}

fn index_def() -> impl Strategy<Value = IxDef> {
    (
        select(PATHS.to_vec()),
        direction(),
        prop::option::weighted(0.35, (select(PATHS.to_vec()), direction())),
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.3),
        prop::option::weighted(0.3, select(partials())),
    )
        .prop_map(|(p1, d1, second, unique, sparse, partial)| {
            let mut fields = vec![(p1, d1)];
            if let Some((p2, d2)) = second {
                if p2 != p1 {
                    fields.push((p2, d2));
                }
            }
            IxDef {
                fields,
                unique,
                sparse,
                partial,
            }
        })
}

/// Operands of predicates on `a`, `b`, `c`, `a.b`: mostly scalars, sometimes
/// a document or an array (whole-value equality).
fn operand() -> BoxedStrategy<Value> {
    prop_oneof![
        10 => scalar(),
        1 => scalar().prop_map(|b| json!({"b": b})),
        1 => prop::collection::vec(scalar(), 0..=2).prop_map(Value::Array),
    ]
    .boxed()
}

/// The condition of a field predicate (`{path: cond}`) over operands `o`.
fn condition(o: BoxedStrategy<Value>, scalars: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    let cmp = || select(vec!["$gt", "$gte", "$lt", "$lte"]);
    prop_oneof![
        4 => o.clone(),
        1 => o.clone().prop_map(|v| json!({"$eq": v})),
        5 => (cmp(), o.clone()).prop_map(|(op, v)| obj(vec![(op, v)])),
        3 => (
            select(vec!["$gt", "$gte"]),
            scalars.clone(),
            select(vec!["$lt", "$lte"]),
            scalars.clone(),
        )
            .prop_map(|(lo_op, lo, hi_op, hi)| obj(vec![(lo_op, lo), (hi_op, hi)])),
        3 => prop::collection::vec(scalars.clone(), 0..=3).prop_map(|v| json!({"$in": v})),
        1 => o.clone().prop_map(|v| json!({"$ne": v})),
        1 => prop::collection::vec(scalars.clone(), 0..=2).prop_map(|v| json!({"$nin": v})),
        2 => any::<bool>().prop_map(|b| json!({"$exists": b})),
        1 => (cmp(), scalars.clone(), cmp(), scalars.clone()).prop_map(|(o1, v1, o2, v2)| {
            json!({"$elemMatch": obj(vec![(o1, v1), (o2, v2)])})
        }),
        1 => scalars.clone().prop_map(|v| json!({"$elemMatch": {"b": v}})),
        1 => (cmp(), scalars.clone()).prop_map(|(op, v)| json!({"$not": obj(vec![(op, v)])})),
        1 => select(vec!["number", "string", "null", "array", "object", "bool", "double"])
            .prop_map(|t| json!({"$type": t})),
        1 => (0u64..=2).prop_map(|n| json!({"$size": n})),
        1 => prop::collection::vec(scalars, 1..=2).prop_map(|v| json!({"$all": v})),
        1 => select(vec!["^x", "y$", "^$"]).prop_map(|r| json!({"$regex": r})),
    ]
    .boxed()
}

/// One predicate on one field: `{path: cond}`.
fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        5 => (select(PATHS.to_vec()), condition(operand(), scalar()))
            .prop_map(|(p, c)| obj(vec![(p, c)])),
        1 => condition(id_value(), id_value()).prop_map(|c| obj(vec![("_id", c)])),
    ]
    .boxed()
}

/// Both filters: one object when their keys differ, else `$and`.
fn conjoin(x: Value, y: Value) -> Value {
    let (Value::Object(mx), Value::Object(my)) = (&x, &y) else {
        unreachable!("filters are objects")
    };
    if mx.keys().any(|k| my.contains_key(k)) {
        json!({"$and": [x, y]})
    } else {
        let mut m = mx.clone();
        m.extend(my.clone());
        Value::Object(m)
    }
}

/// A conjunction: a leaf, two leaves (same field or not), or a partial
/// index's filter plus a leaf.
fn conjunction() -> BoxedStrategy<Value> {
    prop_oneof![
        5 => leaf(),
        2 => (leaf(), leaf()).prop_map(|(x, y)| conjoin(x, y)),
        2 => (
            select(PATHS.to_vec()),
            condition(operand(), scalar()),
            condition(operand(), scalar()),
        )
            .prop_map(|(p, c1, c2)| json!({"$and": [obj(vec![(p, c1)]), obj(vec![(p, c2)])]})),
        1 => (select(PATHS.to_vec()), select(PATHS.to_vec())).prop_map(|(p1, p2)| {
            // Long $in lists on two fields: more point combinations than a
            // compound index expands.
            let many: Vec<Value> = (-40..=40)
                .map(Value::from)
                .chain([Value::Null, json!("x"), json!(2.5)])
                .collect();
            conjoin(obj(vec![(p1, json!({"$in": many}))]), obj(vec![(p2, json!({"$in": many}))]))
        }),
        3 => (select(partials()), leaf(), any::<bool>()).prop_map(|(pf, l, and)| {
            if and {
                json!({"$and": [pf, l]})
            } else {
                conjoin(pf, l)
            }
        }),
    ]
    .boxed()
}

fn or_filter() -> BoxedStrategy<Value> {
    prop::collection::vec(conjunction(), 2..=3)
        .prop_map(|branches| json!({"$or": branches}))
        .boxed()
}

fn filter() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(json!({})),
        8 => conjunction(),
        3 => or_filter(),
        2 => (or_filter(), conjunction()).prop_map(|(o, c)| conjoin(o, c)),
        1 => (or_filter(), or_filter()).prop_map(|(x, y)| json!({"$and": [x, y]})),
        1 => (leaf(), conjunction()).prop_map(|(l, c)| conjoin(json!({"$nor": [l]}), c)),
    ]
    .boxed()
}

fn sort() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.6,
        prop::collection::vec((select(vec!["a", "b", "_id", "a.b"]), direction()), 1..=2).prop_map(
            |keys| {
                let mut m = Map::new();
                for (p, d) in keys {
                    m.entry(p.to_string()).or_insert(json!(d));
                }
                Value::Object(m)
            },
        ),
    )
}

fn query() -> impl Strategy<Value = Query> {
    (filter(), sort(), 0u64..=3, 0u64..=5).prop_map(|(filter, sort, skip, limit)| Query {
        filter,
        sort,
        skip,
        limit,
    })
}

fn update() -> BoxedStrategy<Value> {
    let path = || select(PATHS.to_vec());
    prop_oneof![
        3 => (path(), field_value()).prop_map(|(p, v)| json!({"$set": obj(vec![(p, v)])})),
        2 => (path(), select(vec![json!(1), json!(-2), json!(0.5)]))
            .prop_map(|(p, v)| json!({"$inc": obj(vec![(p, v)])})),
        2 => (path(), scalar()).prop_map(|(p, v)| json!({"$push": obj(vec![(p, v)])})),
        1 => path().prop_map(|p| json!({"$unset": obj(vec![(p, json!(""))])})),
    ]
    .boxed()
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        4 => (filter(), update()).prop_map(|(f, u)| Write::UpdateMany(f, u)),
        2 => (filter(), update()).prop_map(|(f, u)| Write::UpdateOne(f, u)),
        1 => (filter(), fields()).prop_map(|(f, d)| Write::ReplaceOne(f, Value::Object(d))),
        1 => leaf().prop_map(Write::DeleteMany),
        1 => filter().prop_map(Write::DeleteOne),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        documents(),
        prop::collection::vec(index_def(), 1..=3),
        any::<bool>(),
        prop::collection::vec(query(), 1..=20),
        prop::collection::vec(write(), 0..=4),
        prop::collection::vec(query(), 1..=10),
    )
        .prop_map(
            |(docs, indexes, build_after, queries, writes, requeries)| Case {
                docs,
                indexes,
                build_after,
                queries,
                writes,
                requeries,
            },
        )
}

// ---------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------

/// What the cases exercised, printed at the end.
#[derive(Debug, Default)]
struct Coverage {
    stages: BTreeMap<String, u64>,
    sort_by_index: u64,
    covered_counts: u64,
    /// Index plans whose estimate reached the planner's probe cap (200).
    capped_estimates: u64,
    indexes_created: u64,
    indexes_rejected: u64,
    docs_rejected: u64,
    writes_ok: u64,
    writes_failed: u64,
    /// Filters also checked against the independent reference model.
    reference_checked: u64,
    /// Filters outside the reference's rules (not checked by it).
    reference_skipped: u64,
}

fn text(v: &[Value]) -> String {
    serde_json::to_string(v).expect("serializable")
}

fn ids(v: &[Value]) -> Value {
    Value::Array(v.iter().map(|d| d["_id"].clone()).collect())
}

/// The find statement of `q` with `filter` on collection `c` (a macro, so
/// that the builder's type is never named).
macro_rules! find {
    ($c:expr, $filter:expr, $q:expr) => {{
        let q: &Query = $q;
        let mut f = $c.find(Value::clone($filter)).skip(q.skip).limit(q.limit);
        if let Some(s) = &q.sort {
            f = f.sort(s.clone());
        }
        f
    }};
}

/// The reference form of a filter: equivalent, and opaque to the planner.
fn opaque(filter: &Value) -> Value {
    json!({"$nor": [{"$nor": [filter]}]})
}

fn explain_text(c: &Collection, filter: &Value, q: &Query) -> String {
    match find!(c, filter, q).explain() {
        Ok(e) => serde_json::to_string(&e).expect("serializable"),
        Err(e) => format!("explain failed: {e}"),
    }
}

fn check_query(
    plain: &Collection,
    indexed: &Collection,
    q: &Query,
    cov: &mut Coverage,
) -> Result<(), String> {
    let f = &q.filter;
    let reference = opaque(f);
    let q_text = q.to_json();
    let expected = find!(plain, &reference, q).to_vec();
    let from_indexed = find!(indexed, f, q).to_vec();
    let from_plain = find!(plain, f, q).to_vec();
    let expected = match expected {
        Ok(v) => v,
        Err(e) => {
            // An invalid statement must be invalid whatever the plan.
            return match (from_indexed, from_plain) {
                (Err(_), Err(_)) => Ok(()),
                (i, p) => Err(format!(
                    "query {q_text}: the reference fails ({e}) but indexed gives {i:?}, plain gives {p:?}"
                )),
            };
        }
    };
    let iterated = find!(indexed, f, q)
        .into_iter()
        .collect::<collection_store::Result<Vec<Value>>>();
    for (who, got, c) in [
        ("indexed", from_indexed, indexed),
        ("indexed (iterator)", iterated, indexed),
        ("plain (primary key plans)", from_plain, plain),
    ] {
        let got = got.map_err(|e| format!("query {q_text} on {who} failed: {e}"))?;
        if text(&got) != text(&expected) {
            return Err(format!(
                "query {q_text}\n  {who} returned ids {} but the collection scan returned ids {}\n  \
                 {who} result:   {}\n  scan result:  {}\n  {who} plan: {}",
                ids(&got),
                ids(&expected),
                text(&got),
                text(&expected),
                explain_text(c, f, q),
            ));
        }
    }

    // Explain: the reference is a collection scan; `returned` is the result size.
    let e_ref = find!(plain, &reference, q)
        .explain()
        .map_err(|e| format!("explain {q_text}: {e}"))?;
    if e_ref.stage != "COLLSCAN" {
        return Err(format!(
            "query {q_text}: the reference filter {reference} was planned as {}, not COLLSCAN",
            e_ref.stage
        ));
    }
    for (who, c) in [("indexed", indexed), ("plain", plain)] {
        let e = find!(c, f, q)
            .explain()
            .map_err(|e| format!("explain {q_text} on {who}: {e}"))?;
        if e.stats.returned != expected.len() as u64 {
            return Err(format!(
                "query {q_text}: {who} explain says returned {} but the query returns {} documents; plan {}",
                e.stats.returned,
                expected.len(),
                serde_json::to_string(&e).expect("serializable")
            ));
        }
        if who == "indexed" {
            *cov.stages.entry(e.stage.clone()).or_default() += 1;
            cov.sort_by_index += u64::from(e.sort_by_index);
            cov.capped_estimates += u64::from(e.stage == "IXSCAN" && e.estimate >= 200);
        }
    }

    // count
    let all = plain
        .find(reference.clone())
        .to_vec()
        .map_err(|e| format!("reference find {reference}: {e}"))?;
    for (who, c) in [("indexed", indexed), ("plain", plain)] {
        let n = c
            .count(f.clone())
            .map_err(|e| format!("count({f}) on {who}: {e}"))?;
        if n != all.len() as u64 {
            let plan = c
                .explain_count(f.clone())
                .map(|e| serde_json::to_string(&e).expect("serializable"))
                .unwrap_or_else(|e| e.to_string());
            return Err(format!(
                "count({f}) on {who} is {n} but {} documents match (ids {}); count plan {plan}",
                all.len(),
                ids(&all)
            ));
        }
    }
    // The third opinion: the independent reference model over the stored
    // documents, sharing no matcher with the engine.
    if reference::supported(f) {
        cov.reference_checked += 1;
        let stored = plain
            .find(json!({}))
            .to_vec()
            .map_err(|e| format!("reading plain: {e}"))?;
        let selected = reference::select(&stored, f);
        if text(&selected) != text(&all) {
            return Err(format!(
                "filter {f}: the collection scan selects ids {} but the reference model selects ids {}",
                ids(&all),
                ids(&selected)
            ));
        }
        let skipped = selected.len().saturating_sub(q.skip as usize);
        let want_len = if q.limit == 0 {
            skipped
        } else {
            skipped.min(q.limit as usize)
        };
        if expected.len() != want_len || expected.iter().any(|d| !selected.contains(d)) {
            return Err(format!(
                "query {q_text}: returned ids {}, but the reference model selects ids {} \
                 (so {want_len} of them after skip and limit)",
                ids(&expected),
                ids(&selected)
            ));
        }
    } else {
        cov.reference_skipped += 1;
    }
    if indexed
        .explain_count(f.clone())
        .is_ok_and(|e| e.covered && !f.as_object().is_some_and(Map::is_empty))
    {
        cov.covered_counts += 1;
    }

    // distinct, over every path
    for path in PATHS {
        let want = plain
            .distinct(path, reference.clone())
            .map_err(|e| format!("reference distinct: {e}"))?;
        for (who, c) in [("indexed", indexed), ("plain", plain)] {
            let got = c
                .distinct(path, f.clone())
                .map_err(|e| format!("distinct({path:?}, {f}) on {who}: {e}"))?;
            if text(&got) != text(&want) {
                let unsorted = Query {
                    filter: f.clone(),
                    sort: None,
                    skip: 0,
                    limit: 0,
                };
                return Err(format!(
                    "distinct({path:?}, {f}) on {who} is {} but with a collection scan it is {}; plan {}",
                    text(&got),
                    text(&want),
                    explain_text(c, f, &unsorted),
                ));
            }
        }
    }
    Ok(())
}

/// True when `e` is a legitimate refusal by one of the `created` indexes:
/// a duplicate key in a unique index, or parallel arrays in a compound one.
fn is_index_rejection(e: &Error, created: &[(String, IxDef)]) -> bool {
    match e {
        Error::DuplicateKey { index, .. } => {
            created.iter().any(|(name, ix)| name == index && ix.unique)
        }
        Error::InvalidDocument(m) => created.iter().any(|(name, ix)| {
            ix.fields.len() == 2
                && m.contains("parallel arrays")
                && m.contains(&format!("'{name}'"))
        }),
        _ => false,
    }
}

/// Creates the case's indexes on `indexed`, leaving out those that the
/// documents or the other indexes make impossible.
fn create_indexes(
    indexed: &Collection,
    case: &Case,
    created: &mut Vec<(String, IxDef)>,
    cov: &mut Coverage,
) -> Result<(), String> {
    for (i, ix) in case.indexes.iter().enumerate() {
        let name = format!("ix{i}");
        match indexed.create_index(ix.spec(name.clone())) {
            Ok(_) => {
                cov.indexes_created += 1;
                created.push((name, ix.clone()));
            }
            // Duplicate keys, parallel arrays, or the same definition twice.
            Err(
                Error::DuplicateKey { .. } | Error::InvalidDocument(_) | Error::InvalidIndex(_),
            ) => {
                cov.indexes_rejected += 1;
            }
            Err(e) => return Err(format!("create_index {}: {e}", ix.to_json())),
        }
    }
    Ok(())
}

/// Runs write `w` on collection handle `c`: (matched or deleted, modified).
macro_rules! apply {
    ($c:expr, $w:expr) => {{
        let res = |r: UpdateResult| (r.matched_count, r.modified_count);
        match $w {
            Write::UpdateMany(f, u) => $c.update_many(f.clone(), u.clone()).map(res),
            Write::UpdateOne(f, u) => $c.update_one(f.clone(), u.clone()).map(res),
            Write::ReplaceOne(f, d) => $c.replace_one(f.clone(), d.clone()).map(res),
            Write::DeleteMany(f) => $c.delete_many(f.clone()).map(|n| (n, 0)),
            Write::DeleteOne(f) => $c.delete_one(f.clone()).map(|n| (n, 0)),
        }
    }};
}

fn all_docs(c: &Collection) -> Result<Vec<Value>, String> {
    c.find(json!({})).to_vec().map_err(|e| e.to_string())
}

fn run_case(
    db: &Database,
    plain_name: &str,
    indexed_name: &str,
    case: &Case,
    cov: &mut Coverage,
) -> Result<(), String> {
    fn err(what: &'static str) -> impl Fn(Error) -> String {
        move |e| format!("{what}: {e}")
    }
    let plain = db.collection(plain_name).map_err(err("open plain"))?;
    let indexed = db.collection(indexed_name).map_err(err("open indexed"))?;

    let mut created: Vec<(String, IxDef)> = Vec::new();
    if !case.build_after {
        create_indexes(&indexed, case, &mut created, cov)?;
    }
    let mut kept = Vec::new();
    db.transaction(|tx| {
        let ti = tx.collection(indexed_name)?;
        let tp = tx.collection(plain_name)?;
        for d in &case.docs {
            match ti.insert_one(d.clone()) {
                Ok(_) => {
                    tp.insert_one(d.clone())?;
                    kept.push(d.clone());
                }
                Err(e) if is_index_rejection(&e, &created) => cov.docs_rejected += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
    .map_err(err("insert"))?;
    if case.build_after {
        create_indexes(&indexed, case, &mut created, cov)?;
    }
    let describe = |stage: &str, msg: String| {
        format!(
            "{msg}\n  at: {stage}\n  indexes created ({}): {}\n  documents ({}): {}",
            if case.build_after {
                "after inserting"
            } else {
                "before inserting"
            },
            Value::Array(created.iter().map(|(_, ix)| ix.to_json()).collect()),
            kept.len(),
            Value::Array(kept.clone()),
        )
    };

    for q in &case.queries {
        check_query(&plain, &indexed, q, cov).map_err(|m| describe("queries", m))?;
    }

    if !case.writes.is_empty() {
        let before = all_docs(&plain)?;
        let mut mismatch: Option<String> = None;
        db.transaction(|tx| {
            let ti = tx.collection(indexed_name)?;
            let tp = tx.collection(plain_name)?;
            for w in &case.writes {
                let ri = apply!(ti, w);
                if let Err(e) = &ri {
                    cov.writes_failed += 1;
                    if is_index_rejection(e, &created) {
                        continue;
                    }
                } else {
                    cov.writes_ok += 1;
                }
                let rp = apply!(tp, w);
                let same = match (&ri, &rp) {
                    (Ok(a), Ok(b)) => a == b,
                    (Err(_), Err(_)) => true,
                    _ => false,
                };
                if !same && mismatch.is_none() {
                    mismatch = Some(format!(
                        "write {} gave {ri:?} on indexed but {rp:?} on plain",
                        w.to_json()
                    ));
                }
            }
            Ok(())
        })
        .map_err(err("writes"))?;
        let writes = Value::Array(case.writes.iter().map(Write::to_json).collect());
        let with_writes = |m: String| {
            describe(
                "after writes",
                format!(
                    "{m}\n  writes: {writes}\n  documents before the writes: {}",
                    Value::Array(before.clone())
                ),
            )
        };
        if let Some(m) = mismatch {
            return Err(with_writes(m));
        }
        let (di, dp) = (all_docs(&indexed)?, all_docs(&plain)?);
        if text(&di) != text(&dp) {
            return Err(with_writes(format!(
                "after the writes the collections differ\n  indexed: {}\n  plain:   {}",
                text(&di),
                text(&dp)
            )));
        }
        for q in &case.requeries {
            check_query(&plain, &indexed, q, cov).map_err(with_writes)?;
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128)
}

fn case_json(case: &Case) -> Value {
    json!({
        "docs": case.docs,
        "indexes": case.indexes.iter().map(IxDef::to_json).collect::<Vec<_>>(),
        "build_after": case.build_after,
        "queries": case.queries.iter().map(Query::to_json).collect::<Vec<_>>(),
        "writes": case.writes.iter().map(Write::to_json).collect::<Vec<_>>(),
        "requeries": case.requeries.iter().map(Query::to_json).collect::<Vec<_>>(),
    })
}

#[test]
fn planned_results_equal_collection_scan_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let counter = std::cell::Cell::new(0usize);
    let cov = RefCell::new(Coverage::default());
    let config = Config {
        cases: cases(),
        // Shrunk failures are printed below; write no regression files.
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    // Diagnostics: with PROP_PLANNER_REPORT=<file>, every failing case is
    // written to that file (unshrunk) instead of stopping at the first one.
    let report = std::env::var("PROP_PLANNER_REPORT").ok();
    let keep_going = report.is_some();
    let found = RefCell::new(Vec::<String>::new());
    let outcome = runner.run(&case(), |case| {
        let n = counter.get();
        counter.set(n + 1);
        let (p, i) = (format!("plain_{n}"), format!("indexed_{n}"));
        let result = run_case(&db, &p, &i, &case, &mut cov.borrow_mut());
        for name in [&p, &i] {
            db.drop_collection(name)
                .map_err(|e| TestCaseError::fail(format!("drop_collection {name}: {e}")))?;
        }
        match result {
            Err(m) if keep_going => {
                found.borrow_mut().push(m);
                Ok(())
            }
            other => other.map_err(TestCaseError::fail),
        }
    });
    eprintln!("prop_planner coverage: {:?}", cov.borrow());
    if let Some(path) = &report {
        let found = found.borrow();
        std::fs::write(path, found.join("\n\n==========\n\n")).unwrap();
        assert!(
            found.is_empty(),
            "{} of {} cases failed; see {path}",
            found.len(),
            cases()
        );
    }
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => panic!(
            "planned and scanned results differ\n{reason}\nminimal case: {}",
            case_json(&case)
        ),
        Err(e) => panic!("{e}"),
    }
    let cov = cov.borrow();
    if cases() >= 64 {
        for stage in ["IXSCAN", "OR", "COLLSCAN", "IDHACK"] {
            assert!(
                cov.stages.get(stage).copied().unwrap_or(0) > 0,
                "no query was planned as {stage}: {cov:?}"
            );
        }
        assert!(
            cov.sort_by_index > 0,
            "no sort was provided by an index: {cov:?}"
        );
        assert!(cov.covered_counts > 0, "no count was covered: {cov:?}");
        assert!(
            cov.reference_checked > 4 * cov.reference_skipped,
            "the reference model checked too few filters: {cov:?}"
        );
    }
}
