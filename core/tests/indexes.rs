//! Secondary indexes: which query shapes use them (checked through explain),
//! sort by index with early stop, covered counts, the index kinds (unique,
//! sparse, partial, multikey) against MongoDB's documented behaviour, unique
//! violations inside transactions, the index lifecycle (build with progress,
//! drop, list, persistence across reopen, validation) and index maintenance
//! under updates and deletes.
//!
//! Correctness is checked against a "twin": an identical collection without
//! secondary indexes, whose answers come from a plain collection scan and the
//! matcher. An index must change how a query runs, never what it returns.

use collection_store::{Collection, Database, Error, Explain, IndexSpec};
use serde_json::{json, Value};
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn open() -> (TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    (dir, db)
}

/// A person: `age` cycles 0..100 (20 people per age among 2,000), `city` is
/// independent of `age`, `name` is unique and sorts like `_id`, `score` takes
/// every value 0..1000 twice among 2,000.
fn person(i: i64) -> Value {
    json!({
        "_id": i,
        "age": i % 100,
        "city": format!("c{}", (i / 7) % 5),
        "name": format!("p{i:05}"),
        "score": (i * 37) % 1000,
    })
}

fn people(n: i64) -> Vec<Value> {
    (0..n).map(person).collect()
}

fn ids(docs: &[Value]) -> Vec<Value> {
    docs.iter().map(|d| d["_id"].clone()).collect()
}

fn field(docs: &[Value], name: &str) -> Vec<Value> {
    docs.iter().map(|d| d[name].clone()).collect()
}

fn count_where(docs: &[Value], pred: impl Fn(&Value) -> bool) -> u64 {
    docs.iter().filter(|d| pred(d)).count() as u64
}

fn age_of(d: &Value) -> Option<i64> {
    d["age"].as_i64()
}

fn no_duplicate_ids(docs: &[Value]) -> bool {
    let mut v: Vec<String> = docs.iter().map(|d| d["_id"].to_string()).collect();
    let n = v.len();
    v.sort();
    v.dedup();
    v.len() == n
}

/// An indexed collection and an identical unindexed one.
struct Twin {
    ix: Collection,
    plain: Collection,
}

fn twin_named(db: &Database, name: &str, docs: &[Value], specs: &[IndexSpec]) -> Twin {
    let ix = db.collection(&format!("{name}_indexed")).unwrap();
    let plain = db.collection(&format!("{name}_plain")).unwrap();
    for s in specs {
        ix.create_index(s.clone()).unwrap();
    }
    if !docs.is_empty() {
        ix.insert_many(docs.to_vec()).unwrap();
        plain.insert_many(docs.to_vec()).unwrap();
    }
    Twin { ix, plain }
}

fn twin(db: &Database, docs: &[Value], specs: &[IndexSpec]) -> Twin {
    twin_named(db, "t", docs, specs)
}

impl Twin {
    /// Runs `filter` on both collections, asserts identical results (in
    /// primary-key order) and counts, and returns the indexed collection's
    /// results and explain.
    fn check(&self, filter: Value) -> (Vec<Value>, Explain) {
        let want = self.plain.find(filter.clone()).to_vec().unwrap();
        let got = self.ix.find(filter.clone()).to_vec().unwrap();
        assert_eq!(got, want, "find({filter}) differs from the unindexed twin");
        assert_eq!(
            self.ix.count(filter.clone()).unwrap(),
            want.len() as u64,
            "count({filter}) differs from the unindexed twin"
        );
        let e = self.ix.explain(filter.clone()).unwrap();
        assert_eq!(e.stats.returned, want.len() as u64, "explain({filter})");
        (got, e)
    }

    /// Same with a sort and a limit (0: none).
    fn check_sorted(&self, filter: Value, sort: Value, limit: u64) -> (Vec<Value>, Explain) {
        let want = self
            .plain
            .find(filter.clone())
            .sort(sort.clone())
            .limit(limit)
            .to_vec()
            .unwrap();
        let got = self
            .ix
            .find(filter.clone())
            .sort(sort.clone())
            .limit(limit)
            .to_vec()
            .unwrap();
        assert_eq!(
            got, want,
            "find({filter}).sort({sort}).limit({limit}) differs from the unindexed twin"
        );
        let e = self
            .ix
            .find(filter)
            .sort(sort)
            .limit(limit)
            .explain()
            .unwrap();
        assert_eq!(e.stats.returned, want.len() as u64);
        (got, e)
    }
}

fn assert_ixscan(e: &Explain, index: &str) {
    assert_eq!(e.stage, "IXSCAN", "expected an index scan: {e:#?}");
    assert_eq!(e.index.as_deref(), Some(index), "{e:#?}");
}

fn assert_collscan(e: &Explain) {
    assert_eq!(e.stage, "COLLSCAN", "expected a collection scan: {e:#?}");
    assert_eq!(e.index, None, "{e:#?}");
}

fn dup_key(e: Error) -> (String, String) {
    match e {
        Error::DuplicateKey { index, key } => (index, key),
        other => panic!("expected Error::DuplicateKey, got {other:?}"),
    }
}

/// A small deterministic pseudo-random generator (no dependencies).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

// ---------------------------------------------------------------------------
// 1. Which shapes use an index
// ---------------------------------------------------------------------------

// MongoDB manual, Single Field Indexes
// (https://www.mongodb.com/docs/manual/core/index-single/): an index on a
// field supports equality matches on it; explain reports the index scan as an
// IXSCAN stage with totalKeysExamined / totalDocsExamined
// (https://www.mongodb.com/docs/manual/reference/explain-results/).
#[test]
fn equality_uses_the_index_and_examines_only_matching_entries() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("age", 1)])]);

    let (docs, e) = t.check(json!({"age": 42}));
    assert_eq!(docs.len(), 20);
    assert!(docs.iter().all(|d| d["age"] == 42));
    assert_ixscan(&e, "age_1");
    assert_eq!(e.bounds.len(), 1);
    assert_eq!(e.bounds[0].field, "age");
    assert_eq!(e.bounds[0].intervals, vec!["[42, 42]".to_string()]);
    assert_eq!(e.stats.keys_examined, 20);
    assert_eq!(e.stats.docs_examined, 20);

    // `$eq` is the same predicate, and 42.0 equals 42 (numbers compare by value).
    let (docs2, e2) = t.check(json!({"age": {"$eq": 42.0}}));
    assert_eq!(ids(&docs2), ids(&docs));
    assert_ixscan(&e2, "age_1");
    assert_eq!(e2.stats.docs_examined, 20);

    // A value nobody has: the index proves it without fetching anything.
    let (none, e3) = t.check(json!({"age": 1000}));
    assert!(none.is_empty());
    assert_ixscan(&e3, "age_1");
    assert_eq!(e3.stats.docs_examined, 0);
}

// MongoDB manual, Comparison Query Operators and type bracketing
// (https://www.mongodb.com/docs/manual/reference/method/db.collection.find/#type-bracketing):
// "$gt, $gte, $lt, $lte only match documents whose field is of the same type
// bracket as the query value". The index bounds are therefore limited to the
// numbers: string ages are neither returned nor examined.
#[test]
fn each_comparison_operator_uses_a_bounded_index_range() {
    let (_d, db) = open();
    let mut docs = people(2000);
    docs.push(json!({"_id": 5000, "age": "ninety"}));
    docs.push(json!({"_id": 5001, "age": "a"}));
    docs.push(json!({"_id": 5002, "age": null}));
    docs.push(json!({"_id": 5003}));
    let t = twin(&db, &docs, &[IndexSpec::new([("age", 1)])]);

    type AgePredicate = fn(i64) -> bool;
    let cases: [(Value, AgePredicate); 4] = [
        (json!({"age": {"$gt": 90}}), |a| a > 90),
        (json!({"age": {"$gte": 90}}), |a| a >= 90),
        (json!({"age": {"$lt": 5}}), |a| a < 5),
        (json!({"age": {"$lte": 5}}), |a| a <= 5),
    ];
    for (filter, pred) in cases {
        let expected = count_where(&docs, |d| age_of(d).is_some_and(pred));
        let (found, e) = t.check(filter.clone());
        assert_eq!(found.len() as u64, expected, "{filter}");
        assert!(found.iter().all(|d| d["age"].is_number()), "{filter}");
        assert_ixscan(&e, "age_1");
        assert_eq!(e.bounds[0].field, "age");
        // Exactly the matching entries are read: the range stops at the bounds.
        assert_eq!(e.stats.keys_examined, expected, "{filter}: {e:#?}");
        assert_eq!(e.stats.docs_examined, expected, "{filter}: {e:#?}");
    }

    // A string range stays within the strings.
    let (strings, e) = t.check(json!({"age": {"$gte": "a"}}));
    assert_eq!(ids(&strings), vec![json!(5000), json!(5001)]);
    assert_ixscan(&e, "age_1");
    assert_eq!(e.stats.keys_examined, 2);
}

// A two-sided range on one field is one interval (the intersection of both
// predicates): MongoDB manual, Multikey Index Bounds, "Intersect Bounds" for a
// non-multikey index (https://www.mongodb.com/docs/manual/core/multikey-index-bounds/).
#[test]
fn two_sided_range_is_one_interval() {
    let (_d, db) = open();
    let docs = people(2000);
    let t = twin(&db, &docs, &[IndexSpec::new([("age", 1)])]);

    let (found, e) = t.check(json!({"age": {"$gte": 20, "$lt": 25}}));
    assert_eq!(found.len(), 100);
    assert!(found.iter().all(|d| (20..25).contains(&age_of(d).unwrap())));
    assert_ixscan(&e, "age_1");
    assert_eq!(e.bounds.len(), 1);
    assert_eq!(e.stats.keys_examined, 100);
    assert_eq!(e.stats.docs_examined, 100);

    let (found, e) = t.check(json!({"age": {"$gt": 20, "$lte": 25}}));
    assert_eq!(found.len(), 100);
    assert_eq!(e.stats.keys_examined, 100);

    // Contradictory bounds: empty interval, nothing read.
    let (none, e) = t.check(json!({"age": {"$gt": 50, "$lt": 40}}));
    assert!(none.is_empty());
    assert_ixscan(&e, "age_1");
    assert_eq!(e.stats.keys_examined, 0);
    assert_eq!(e.stats.docs_examined, 0);
}

// MongoDB manual, $in (https://www.mongodb.com/docs/manual/reference/operator/query/in/)
// and Multikey Index Bounds: an `$in` becomes one point interval per value.
#[test]
fn in_scans_one_point_interval_per_value() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("age", 1)])]);

    let (found, e) = t.check(json!({"age": {"$in": [95, 5, 50, 5]}}));
    assert_eq!(found.len(), 60);
    assert_ixscan(&e, "age_1");
    for v in ["[5, 5]", "[50, 50]", "[95, 95]"] {
        assert!(e.bounds[0].intervals.contains(&v.to_string()), "{e:#?}");
    }
    // Each value is scanned once although 5 is listed twice.
    assert_eq!(e.stats.keys_examined, 60);
    assert_eq!(e.stats.docs_examined, 60);

    // Mixed types in $in each get their own interval.
    let (found, e) = t.check(json!({"age": {"$in": [7, "7", null]}}));
    assert_eq!(found.len(), 20);
    assert_ixscan(&e, "age_1");
    assert_eq!(e.stats.docs_examined, 20);
}

// MongoDB manual, Explain Results, indexBounds
// (https://www.mongodb.com/docs/manual/reference/explain-results/#mongodb-data-explain.queryPlanner.winningPlan.inputStage.indexBounds):
// the bounds describe the intervals actually scanned — for `$in` one point
// interval per distinct value, in index order.
#[test]

fn in_bounds_in_explain_are_sorted_and_distinct() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("age", 1)])]);
    let (_, e) = t.check(json!({"age": {"$in": [95, 5, 50, 5]}}));
    assert_eq!(e.bounds[0].intervals, ["[5, 5]", "[50, 50]", "[95, 95]"]);
    let t2 = twin_named(&db, "desc", &people(200), &[IndexSpec::new([("age", -1)])]);
    let (_, e) = t2.check(json!({"age": {"$in": [5, 50]}}));
    assert_eq!(e.bounds[0].intervals, ["[50, 50]", "[5, 5]"]);
}

// MongoDB manual, Compound Indexes, Index Prefixes
// (https://www.mongodb.com/docs/manual/core/index-compound/#prefixes): an
// index on {city: 1, age: 1} supports queries on city, and on city plus age;
// a query on age alone cannot use it (age is not a prefix).
#[test]
fn compound_index_prefix_equality_then_range() {
    let (_d, db) = open();
    let docs = people(2000);
    let t = twin(&db, &docs, &[IndexSpec::new([("city", 1), ("age", 1)])]);

    let expected = count_where(&docs, |d| d["city"] == "c1" && age_of(d).unwrap() >= 50);
    assert!(expected > 0);
    let (found, e) = t.check(json!({"city": "c1", "age": {"$gte": 50}}));
    assert_eq!(found.len() as u64, expected);
    assert_ixscan(&e, "city_1_age_1");
    let fields: Vec<&str> = e.bounds.iter().map(|b| b.field.as_str()).collect();
    assert_eq!(fields, ["city", "age"]);
    assert_eq!(e.stats.keys_examined, expected);
    assert_eq!(e.stats.docs_examined, expected);

    // Equality on both fields.
    let expected = count_where(&docs, |d| d["city"] == "c3" && d["age"] == 10);
    let (found, e) = t.check(json!({"age": 10, "city": "c3"}));
    assert_eq!(found.len() as u64, expected);
    assert_ixscan(&e, "city_1_age_1");
    assert_eq!(e.stats.keys_examined, expected);

    // The prefix alone.
    let expected = count_where(&docs, |d| d["city"] == "c1");
    let (found, e) = t.check(json!({"city": "c1"}));
    assert_eq!(found.len() as u64, expected);
    assert_ixscan(&e, "city_1_age_1");
    assert_eq!(e.stats.keys_examined, expected);

    // Not a prefix: a collection scan, still correct.
    let (found, e) = t.check(json!({"age": 10}));
    assert_eq!(found.len(), 20);
    assert_collscan(&e);
    assert_eq!(e.stats.docs_examined, 2000);
}

// MongoDB manual, Query for Null or Missing Fields
// (https://www.mongodb.com/docs/manual/tutorial/query-for-null-fields/):
// `{item: null}` matches documents whose item is null or missing;
// `{item: {$exists: false}}` only those without the field. A non-sparse index
// stores null for missing fields
// (https://www.mongodb.com/docs/manual/core/index-sparse/: "non-sparse indexes
// contain all documents in a collection, storing null values for those
// documents that do not contain the indexed field"), so both can use it.
#[test]
fn null_equality_and_exists_false_use_a_non_sparse_index() {
    let (_d, db) = open();
    let mut docs = people(2000);
    for i in 0..30 {
        docs.push(json!({"_id": 3000 + i, "name": format!("missing{i}")}));
    }
    for i in 0..10 {
        docs.push(json!({"_id": 4000 + i, "age": null}));
    }
    let t = twin(&db, &docs, &[IndexSpec::new([("age", 1)])]);

    for filter in [json!({"age": null}), json!({"age": {"$eq": null}})] {
        let (found, e) = t.check(filter.clone());
        assert_eq!(found.len(), 40, "{filter}");
        assert_ixscan(&e, "age_1");
        assert_eq!(e.bounds[0].intervals, vec!["[null, null]".to_string()]);
        assert_eq!(e.stats.keys_examined, 40);
        assert_eq!(e.stats.docs_examined, 40);
    }

    let (found, e) = t.check(json!({"age": {"$exists": false}}));
    assert_eq!(found.len(), 30);
    assert!(found.iter().all(|d| d.get("age").is_none()));
    assert_ixscan(&e, "age_1");
    // The null entries hold both kinds; the fetched documents are re-checked.
    assert_eq!(e.stats.keys_examined, 40);
    assert_eq!(e.stats.docs_examined, 40);
}

// MongoDB manual, $or Clauses and Indexes
// (https://www.mongodb.com/docs/manual/reference/operator/query/or/#-or-clauses-and-indexes):
// "When evaluating the clauses in the $or expression, MongoDB either performs
// a collection scan or, if all the clauses are supported by indexes, MongoDB
// performs index scans." A document matching several clauses is returned once.
#[test]
fn or_with_every_branch_indexed_is_a_deduplicated_union() {
    let (_d, db) = open();
    let docs = people(2000);
    let t = twin(
        &db,
        &docs,
        &[IndexSpec::new([("age", 1)]), IndexSpec::new([("city", 1)])],
    );
    let a = count_where(&docs, |d| d["age"] == 7);
    let b = count_where(&docs, |d| d["city"] == "c2");
    let both = count_where(&docs, |d| d["age"] == 7 && d["city"] == "c2");
    assert!(
        both > 0,
        "the fixture must have documents matching both branches"
    );

    let (found, e) = t.check(json!({"$or": [{"age": 7}, {"city": "c2"}]}));
    assert_eq!(found.len() as u64, a + b - both);
    assert!(no_duplicate_ids(&found));
    assert_eq!(e.stage, "OR", "{e:#?}");
    assert_eq!(e.branches.len(), 2);
    assert_eq!(e.branches[0].stage, "IXSCAN");
    assert_eq!(e.branches[0].index.as_deref(), Some("age_1"));
    assert_eq!(e.branches[1].stage, "IXSCAN");
    assert_eq!(e.branches[1].index.as_deref(), Some("city_1"));
    // Every entry of both branches is read, each document fetched once.
    assert_eq!(e.stats.keys_examined, a + b);
    assert_eq!(e.stats.docs_examined, a + b - both);

    // A document in both branches (age 7 and city c2) appears exactly once.
    let dup = docs
        .iter()
        .find(|d| d["age"] == 7 && d["city"] == "c2")
        .unwrap()["_id"]
        .clone();
    assert_eq!(ids(&found).iter().filter(|i| **i == dup).count(), 1);

    // With a sort and limit the union is sorted in memory.
    let (sorted, e) = t.check_sorted(
        json!({"$or": [{"age": 7}, {"city": "c2"}]}),
        json!({"name": -1}),
        5,
    );
    assert_eq!(sorted.len(), 5);
    assert_eq!(e.stage, "OR");
    assert!(e.in_memory_sort);
}

// Same rule ($or clauses and indexes, link above) when one branch is a
// primary-key lookup: the document matched by both branches must be returned
// once, and counted once.
#[test]
fn or_with_id_branch_and_index_branch_returns_each_document_once() {
    let (_d, db) = open();
    let docs = people(2000);
    let t = twin(&db, &docs, &[IndexSpec::new([("age", 1)])]);
    // Document 7 has age 7: it matches both branches.
    let (found, e) = t.check(json!({"$or": [{"_id": 7}, {"age": 7}]}));
    assert_eq!(found.len(), 20);
    assert!(no_duplicate_ids(&found), "{:?}", ids(&found));
    assert_eq!(e.stage, "OR");
}

// Same rule, two primary-key ranges that overlap.
#[test]
fn or_with_overlapping_id_branches_returns_each_document_once() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[]);
    let (found, _) = t.check(json!({"$or": [{"_id": {"$lt": 10}}, {"_id": {"$lt": 20}}]}));
    assert_eq!(ids(&found), (0..20).map(|i| json!(i)).collect::<Vec<_>>());
    let (found, _) = t.check(json!({"$or": [{"_id": 1}, {"_id": {"$in": [1, 2]}}]}));
    assert_eq!(ids(&found), vec![json!(1), json!(2)]);
}

// MongoDB manual, db.collection.deleteMany
// (https://www.mongodb.com/docs/manual/reference/method/db.collection.deleteMany/):
// "Removes all documents that match the filter" — each matching document once;
// the count of remaining documents must stay exact.
#[test]
fn write_with_overlapping_or_branches_touches_each_document_once() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    c.insert_many(people(100)).unwrap();
    let r = c
        .update_many(
            json!({"$or": [{"_id": {"$lt": 10}}, {"_id": {"$lt": 20}}]}),
            json!({"$inc": {"hits": 1}}),
        )
        .unwrap();
    assert_eq!(r.matched_count, 20);
    assert_eq!(r.modified_count, 20);
    let n = c
        .delete_many(json!({"$or": [{"_id": {"$lt": 10}}, {"_id": {"$lt": 20}}]}))
        .unwrap();
    assert_eq!(n, 20);
    assert_eq!(c.count(json!({})).unwrap(), 80);
    assert_eq!(c.find(json!({})).to_vec().unwrap().len(), 80);
}

// MongoDB manual, Explain Results
// (https://www.mongodb.com/docs/manual/reference/explain-results/): "IDHACK
// for selecting documents by _id"; the _id index
// (https://www.mongodb.com/docs/manual/indexes/#default-_id-index) serves
// equality, $in and ranges on the primary key.
#[test]
fn primary_key_lookups_and_ranges() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("age", 1)])]);

    let (found, e) = t.check(json!({"_id": 5}));
    assert_eq!(ids(&found), vec![json!(5)]);
    assert_eq!(e.stage, "IDHACK");
    assert_eq!(e.index.as_deref(), Some("_id_"));
    assert_eq!(e.stats.docs_examined, 1);
    assert_eq!(e.stats.keys_examined, 0);

    // $in on _id: point lookups, results in primary-key order, unknown keys skipped.
    let (found, e) = t.check(json!({"_id": {"$in": [3, 1, 99999, 2]}}));
    assert_eq!(ids(&found), vec![json!(1), json!(2), json!(3)]);
    assert_eq!(e.stage, "IDHACK");
    assert_eq!(e.stats.docs_examined, 3);

    // _id equality wins even over a selective secondary index, and the rest of
    // the filter is still applied.
    let (found, e) = t.check(json!({"_id": 5, "age": 6}));
    assert!(found.is_empty());
    assert_eq!(e.stage, "IDHACK");

    // Ranges on the primary key.
    let (found, e) = t.check(json!({"_id": {"$gte": 100, "$lt": 110}}));
    assert_eq!(
        ids(&found),
        (100..110).map(|i| json!(i)).collect::<Vec<_>>()
    );
    assert_eq!(e.stage, "IDSCAN");
    assert_eq!(e.index.as_deref(), Some("_id_"));
    assert_eq!(e.stats.docs_examined, 10);

    let (found, e) = t.check(json!({"_id": {"$gt": 1990}}));
    assert_eq!(found.len(), 9);
    assert_eq!(e.stage, "IDSCAN");
    assert_eq!(e.stats.docs_examined, 9);

    // A range on _id with a sort on _id and a limit walks backwards and stops early.
    let (found, e) = t.check_sorted(json!({"_id": {"$lt": 1500}}), json!({"_id": -1}), 3);
    assert_eq!(ids(&found), vec![json!(1499), json!(1498), json!(1497)]);
    assert_eq!(e.stage, "IDSCAN");
    assert!(e.reverse && e.sort_by_index && !e.in_memory_sort, "{e:#?}");
    assert!(e.stats.docs_examined <= 5, "{e:#?}");
}

// MongoDB manual, $regex (https://www.mongodb.com/docs/manual/reference/operator/query/regex/#index-use)
// "for case sensitive regular expression queries, if an index exists for the
// field, then MongoDB matches the regular expression against the values in the
// index" — this engine does not derive bounds from regexes; negations ($ne,
// $nin, $not) and an $or with an unindexed clause ($or clauses and indexes,
// above) need a collection scan. Either way the results must be right.
#[test]
fn non_indexable_shapes_fall_back_to_a_collection_scan() {
    let (_d, db) = open();
    let t = twin(
        &db,
        &people(2000),
        &[IndexSpec::new([("age", 1)]), IndexSpec::new([("name", 1)])],
    );
    let cases = [
        (json!({"name": {"$regex": "7$"}}), 200u64),
        (json!({"age": {"$ne": 5}}), 1980),
        (json!({"age": {"$nin": [1, 2, 3]}}), 1940),
        (json!({"age": {"$not": {"$lt": 90}}}), 200),
        (json!({"$or": [{"age": 5}, {"score": 10}]}), 22),
        (json!({"age": {"$type": "string"}}), 0),
    ];
    for (filter, expected) in cases {
        let (found, e) = t.check(filter.clone());
        assert_eq!(found.len() as u64, expected, "{filter}");
        assert_collscan(&e);
        assert_eq!(e.stats.docs_examined, 2000, "{filter}");
        assert_eq!(e.stats.keys_examined, 0, "{filter}");
    }
}

// ---------------------------------------------------------------------------
// 2. Sort by index and early stop
// ---------------------------------------------------------------------------

// MongoDB manual, Use Indexes to Sort Query Results
// (https://www.mongodb.com/docs/manual/tutorial/sort-results-with-indexes/):
// "Since indexes contain ordered records, MongoDB can obtain the results of a
// sort from an index ... MongoDB can traverse the index in either direction."
// With a limit the walk stops after `limit` matches.
#[test]
fn range_with_sort_on_the_index_field_stops_early() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("age", 1)])]);

    let (found, e) = t.check_sorted(json!({"age": {"$gt": 30}}), json!({"age": 1}), 10);
    assert_eq!(found.len(), 10);
    assert!(found.iter().all(|d| d["age"] == 31));
    assert_ixscan(&e, "age_1");
    assert!(e.sort_by_index, "{e:#?}");
    assert!(!e.in_memory_sort, "{e:#?}");
    assert!(!e.reverse);
    assert!(e.stats.keys_examined <= 12, "{e:#?}");
    assert!(e.stats.docs_examined <= 12, "{e:#?}");

    // skip + limit: the walk stops after skip + limit.
    let want: Vec<Value> = t
        .plain
        .find(json!({"age": {"$gt": 30}}))
        .sort(json!({"age": 1}))
        .skip(15)
        .limit(10)
        .to_vec()
        .unwrap();
    let got =
        t.ix.find(json!({"age": {"$gt": 30}}))
            .sort(json!({"age": 1}))
            .skip(15)
            .limit(10)
            .to_vec()
            .unwrap();
    assert_eq!(got, want);
    let e =
        t.ix.find(json!({"age": {"$gt": 30}}))
            .sort(json!({"age": 1}))
            .skip(15)
            .limit(10)
            .explain()
            .unwrap();
    assert!(e.sort_by_index && !e.in_memory_sort);
    assert!(e.stats.docs_examined <= 27, "{e:#?}");

    // Without a limit every match is returned, still in index order.
    let (all, e) = t.check_sorted(json!({"age": {"$gte": 90}}), json!({"age": 1}), 0);
    assert_eq!(all.len(), 200);
    assert!(e.sort_by_index);
}

// Same manual page: "MongoDB can traverse the index in either direction" — a
// descending sort walks the ascending index backwards. Ties on `age` are
// broken by `_id` in the index, so `{age: -1, _id: -1}` is also index-provided.
#[test]
fn descending_sort_walks_the_index_backwards() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("age", 1)])]);

    let found =
        t.ix.find(json!({"age": {"$gt": 30}}))
            .sort(json!({"age": -1}))
            .limit(25)
            .to_vec()
            .unwrap();
    let want = t
        .plain
        .find(json!({"age": {"$gt": 30}}))
        .sort(json!({"age": -1}))
        .limit(25)
        .to_vec()
        .unwrap();
    // Ties may come in any order (MongoDB does not order ties); the ages may not.
    assert_eq!(field(&found, "age"), field(&want, "age"));
    assert_eq!(found[0]["age"], 99);
    assert_eq!(found[24]["age"], 98);
    let e =
        t.ix.find(json!({"age": {"$gt": 30}}))
            .sort(json!({"age": -1}))
            .limit(25)
            .explain()
            .unwrap();
    assert_ixscan(&e, "age_1");
    assert!(e.reverse && e.sort_by_index && !e.in_memory_sort, "{e:#?}");
    assert!(e.stats.docs_examined <= 27, "{e:#?}");

    let (found, e) = t.check_sorted(
        json!({"age": {"$lt": 50}}),
        json!({"age": -1, "_id": -1}),
        10,
    );
    assert_eq!(found[0]["age"], 49);
    assert_eq!(found[0]["_id"], 1949);
    assert!(e.reverse && e.sort_by_index && !e.in_memory_sort, "{e:#?}");
    assert!(e.stats.keys_examined <= 12, "{e:#?}");
}

// A descending index field (`{score: -1}`) serves both sort directions
// (https://www.mongodb.com/docs/manual/tutorial/sort-results-with-indexes/#sort-with-a-single-field-index).
#[test]
fn descending_index_serves_both_sort_directions() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("score", -1)])]);

    let (found, e) = t.check_sorted(json!({"score": {"$gte": 500}}), json!({"score": -1}), 5);
    assert_eq!(found[0]["score"], 999);
    assert_ixscan(&e, "score_-1");
    assert!(!e.reverse && e.sort_by_index && !e.in_memory_sort, "{e:#?}");
    assert!(e.stats.docs_examined <= 7);

    let (found, e) = t.check_sorted(
        json!({"score": {"$gte": 500}}),
        json!({"score": 1, "_id": -1}),
        5,
    );
    assert_eq!(found[0]["score"], 500);
    assert_ixscan(&e, "score_-1");
    assert!(e.reverse && e.sort_by_index && !e.in_memory_sort, "{e:#?}");
    assert!(e.stats.docs_examined <= 7);

    // Range predicates on a descending field still select the right values.
    for filter in [
        json!({"score": {"$gt": 990}}),
        json!({"score": {"$lt": 10}}),
        json!({"score": {"$gte": 100, "$lte": 110}}),
        json!({"score": {"$in": [0, 999, 500]}}),
    ] {
        let (_, e) = t.check(filter);
        assert_ixscan(&e, "score_-1");
        assert_eq!(e.stats.keys_examined, e.stats.returned);
    }
}

// MongoDB manual, Sort and Non-prefix Subset of an Index
// (https://www.mongodb.com/docs/manual/tutorial/sort-results-with-indexes/#sort-and-non-prefix-subset-of-an-index):
// "An index can support sort operations on a non-prefix subset of the index
// key pattern ... the query must include equality conditions on all the
// prefix keys that precede the sort keys."
#[test]
fn compound_index_equality_prefix_provides_the_sort_on_the_next_field() {
    let (_d, db) = open();
    let t = twin(
        &db,
        &people(2000),
        &[IndexSpec::new([("city", 1), ("age", 1)])],
    );

    let (found, e) = t.check_sorted(json!({"city": "c1"}), json!({"age": 1}), 5);
    assert_eq!(found.len(), 5);
    assert!(found.iter().all(|d| d["city"] == "c1"));
    assert_ixscan(&e, "city_1_age_1");
    assert!(e.sort_by_index && !e.in_memory_sort && !e.reverse, "{e:#?}");
    assert!(
        e.stats.keys_examined <= 7 && e.stats.docs_examined <= 7,
        "{e:#?}"
    );

    let (_, e) = t.check_sorted(json!({"city": "c1"}), json!({"age": -1, "_id": -1}), 5);
    assert!(e.sort_by_index && e.reverse, "{e:#?}");
    assert!(e.stats.docs_examined <= 7);

    let (_, e) = t.check_sorted(
        json!({"city": "c4", "age": {"$gte": 50}}),
        json!({"age": 1}),
        3,
    );
    assert!(e.sort_by_index && !e.in_memory_sort, "{e:#?}");
    assert!(e.stats.docs_examined <= 5);

    // Sorting on the full key pattern with the prefix pinned is fine too.
    let (_, e) = t.check_sorted(json!({"city": "c2"}), json!({"city": 1, "age": 1}), 4);
    assert!(e.sort_by_index, "{e:#?}");
}

// Same page, the counter-example: without equality on the prefix (here `$in`
// on city, or a sort on a field outside the index) the index order is not the
// sort order, so MongoDB sorts in memory ("blocking SORT stage").
#[test]
fn a_sort_the_index_cannot_provide_is_done_in_memory() {
    let (_d, db) = open();
    let t = twin_named(
        &db,
        "single",
        &people(2000),
        &[IndexSpec::new([("age", 1)])],
    );

    let (found, e) = t.check_sorted(json!({"age": {"$gt": 30}}), json!({"name": -1}), 10);
    assert_eq!(found[0]["name"], "p01999");
    let names = field(&found, "name");
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.as_str().cmp(&a.as_str()));
    assert_eq!(names, sorted);
    assert!(e.in_memory_sort && !e.sort_by_index, "{e:#?}");
    assert_ixscan(&e, "age_1");

    let t = twin_named(
        &db,
        "compound",
        &people(2000),
        &[IndexSpec::new([("city", 1), ("age", 1)])],
    );
    let (found, e) = t.check_sorted(
        json!({"city": {"$in": ["c1", "c2"]}}),
        json!({"age": 1, "_id": 1}),
        0,
    );
    let ages: Vec<i64> = found.iter().map(|d| age_of(d).unwrap()).collect();
    assert!(ages.windows(2).all(|w| w[0] <= w[1]));
    assert!(e.in_memory_sort && !e.sort_by_index, "{e:#?}");
    assert_ixscan(&e, "city_1_age_1");
}

// `{}` with a sort and a limit: MongoDB walks the whole index in order and
// stops after `limit` entries (Use Indexes to Sort Query Results, above). This
// needs every document in the index (non-sparse, non-partial); missing and
// null sort first (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/).
#[test]
fn full_index_scan_provides_a_sort_without_a_filter() {
    let (_d, db) = open();
    let mut docs = people(2000);
    docs.push(json!({"_id": 9001}));
    docs.push(json!({"_id": 9002, "age": null}));
    docs.push(json!({"_id": 9003, "age": "old"}));
    let t = twin(&db, &docs, &[IndexSpec::new([("age", 1)])]);

    let (found, e) = t.check_sorted(json!({}), json!({"age": 1}), 5);
    assert_eq!(ids(&found)[..2], [json!(9001), json!(9002)]);
    assert_eq!(found[2]["age"], 0);
    assert_ixscan(&e, "age_1");
    assert!(e.bounds.is_empty(), "{e:#?}");
    assert!(e.sort_by_index && !e.in_memory_sort, "{e:#?}");
    assert!(
        e.stats.keys_examined <= 7 && e.stats.docs_examined <= 7,
        "{e:#?}"
    );

    let (found, e) = t.check_sorted(json!({}), json!({"age": -1, "_id": -1}), 3);
    assert_eq!(found[0]["_id"], 9003, "strings sort after numbers");
    assert!(e.sort_by_index && e.reverse, "{e:#?}");
    assert!(e.stats.docs_examined <= 5);

    // The complete ordering equals the in-memory sort.
    let (all, e) = t.check_sorted(json!({}), json!({"age": 1}), 0);
    assert_eq!(all.len(), docs.len());
    assert!(e.sort_by_index);
}

// Without a filter, a sort on `_id` is the collection's own (primary-key)
// order: no index and no sort are needed, and a limit stops the scan.
#[test]
fn sort_on_id_uses_the_collection_order() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("age", 1)])]);

    let (found, e) = t.check_sorted(json!({}), json!({"_id": 1}), 5);
    assert_eq!(ids(&found), (0..5).map(|i| json!(i)).collect::<Vec<_>>());
    assert_collscan(&e);
    assert!(e.sort_by_index && !e.in_memory_sort && !e.reverse, "{e:#?}");
    assert!(e.stats.docs_examined <= 5, "{e:#?}");

    let (found, e) = t.check_sorted(json!({}), json!({"_id": -1}), 5);
    assert_eq!(
        ids(&found),
        (1995..2000).rev().map(|i| json!(i)).collect::<Vec<_>>()
    );
    assert_collscan(&e);
    assert!(e.sort_by_index && e.reverse && !e.in_memory_sort, "{e:#?}");
    assert!(e.stats.docs_examined <= 5, "{e:#?}");

    // Equality on an indexed field: its entries are in _id order, so a sort on
    // _id is still index-provided.
    let (found, e) = t.check_sorted(json!({"age": 5}), json!({"_id": -1}), 3);
    assert_eq!(ids(&found), vec![json!(1905), json!(1805), json!(1705)]);
    assert_ixscan(&e, "age_1");
    assert!(e.sort_by_index && e.reverse, "{e:#?}");
    assert!(e.stats.docs_examined <= 5);
}

// An `$in` on the sort field: the point intervals are walked in order.
#[test]
fn in_with_a_sort_on_the_same_field_is_index_ordered() {
    let (_d, db) = open();
    let t = twin(&db, &people(2000), &[IndexSpec::new([("age", 1)])]);
    let (found, e) = t.check_sorted(
        json!({"age": {"$in": [50, 5, 95]}}),
        json!({"age": -1, "_id": -1}),
        25,
    );
    assert_eq!(found[0]["age"], 95);
    assert_eq!(found[24]["age"], 50);
    assert!(e.sort_by_index && e.reverse && !e.in_memory_sort, "{e:#?}");
    assert!(e.stats.docs_examined <= 27, "{e:#?}");
}

// ---------------------------------------------------------------------------
// 3. Covered counts
// ---------------------------------------------------------------------------

// MongoDB manual, Covered Query
// (https://www.mongodb.com/docs/manual/core/query-optimization/#covered-query):
// "An index covers a query when ... all the fields in the query are part of
// an index"; "querying only the index can be much faster than querying
// documents" — explain shows totalDocsExamined 0.
#[test]
fn count_of_an_indexed_range_is_covered() {
    let (_d, db) = open();
    let mut docs = people(2000);
    docs.push(json!({"_id": 9001}));
    docs.push(json!({"_id": 9002, "age": null}));
    let t = twin(
        &db,
        &docs,
        &[
            IndexSpec::new([("age", 1)]),
            IndexSpec::new([("city", 1), ("age", 1)]),
        ],
    );

    let cases = [
        (json!({"age": {"$gte": 40}}), "age_1"),
        (json!({"age": {"$gte": 20, "$lt": 30}}), "age_1"),
        (json!({"age": 17}), "age_1"),
        (json!({"age": null}), "age_1"),
        // Selective enough that the compound index is estimated below the
        // single-field one (both probes capped would tie, and ties keep the
        // first index).
        (json!({"city": "c1", "age": {"$gte": 90}}), "city_1_age_1"),
    ];
    for (filter, index) in cases {
        let expected = t.plain.count(filter.clone()).unwrap();
        assert!(expected > 0, "{filter}");
        assert_eq!(t.ix.count(filter.clone()).unwrap(), expected, "{filter}");
        let e = t.ix.explain_count(filter.clone()).unwrap();
        assert_ixscan(&e, index);
        assert!(e.covered, "{filter}: {e:#?}");
        assert_eq!(e.stats.docs_examined, 0, "{filter}: {e:#?}");
        assert_eq!(e.stats.keys_examined, expected, "{filter}: {e:#?}");
        assert_eq!(e.stats.returned, expected);
    }
    assert_eq!(t.ix.count(json!({"age": {"$gte": 40}})).unwrap(), 1200);
}

// Covered Query (above) — restrictions: "Multikey Covering: ... an index
// cannot cover a query on an array field", and a predicate on a field outside
// the index means documents must be fetched.
#[test]
fn counts_that_need_documents_are_not_covered() {
    let (_d, db) = open();
    let mut docs = people(2000);
    for d in docs.iter_mut() {
        let i = d["_id"].as_i64().unwrap();
        d["tags"] = json!([format!("t{}", i % 50), format!("t{}", (i * 7) % 50)]);
    }
    let t = twin(
        &db,
        &docs,
        &[IndexSpec::new([("age", 1)]), IndexSpec::new([("tags", 1)])],
    );

    // Multikey index.
    let expected = t.plain.count(json!({"tags": "t3"})).unwrap();
    assert!(expected > 0);
    assert_eq!(t.ix.count(json!({"tags": "t3"})).unwrap(), expected);
    let e = t.ix.explain_count(json!({"tags": "t3"})).unwrap();
    assert_ixscan(&e, "tags_1");
    assert!(!e.covered, "{e:#?}");
    assert_eq!(e.stats.docs_examined, expected, "{e:#?}");

    // A residual predicate on a field outside the index.
    let f = json!({"age": {"$gte": 40}, "name": {"$regex": "5$"}});
    let expected = t.plain.count(f.clone()).unwrap();
    assert_eq!(expected, 120);
    assert_eq!(t.ix.count(f.clone()).unwrap(), expected);
    let e = t.ix.explain_count(f).unwrap();
    assert_ixscan(&e, "age_1");
    assert!(!e.covered, "{e:#?}");
    assert!(e.stats.docs_examined > 0);

    // $exists: false shares the null entries with null values: not exact.
    let c = db.collection("nulls").unwrap();
    c.create_index(IndexSpec::new([("age", 1)])).unwrap();
    c.insert_many(people(500)).unwrap();
    c.insert_many(vec![
        json!({"_id": 9001}),
        json!({"_id": 9002, "age": null}),
    ])
    .unwrap();
    assert_eq!(c.count(json!({"age": {"$exists": false}})).unwrap(), 1);
    let e = c.explain_count(json!({"age": {"$exists": false}})).unwrap();
    assert_ixscan(&e, "age_1");
    assert!(!e.covered, "{e:#?}");
}

// MongoDB manual, $in (https://www.mongodb.com/docs/manual/reference/operator/query/in/):
// an `$in` may list many values; a count must equal the number of matching
// documents whatever the length of the list.
#[test]

fn count_with_a_very_long_in_list_is_exact() {
    let (_d, db) = open();
    let t = twin(&db, &[], &[IndexSpec::new([("a", 1)])]);
    let docs: Vec<Value> = (0..10)
        .map(|i| json!({"_id": i, "a": 10_000 + i}))
        .chain([json!({"_id": 100, "a": 1}), json!({"_id": 101, "a": 4999})])
        .collect();
    t.ix.insert_many(docs.clone()).unwrap();
    t.plain.insert_many(docs).unwrap();
    let list: Vec<i64> = (0..5000).collect();
    let filter = json!({"a": {"$in": list}});
    assert_eq!(t.plain.count(filter.clone()).unwrap(), 2);
    assert_eq!(t.ix.count(filter.clone()).unwrap(), 2);
    let (found, _) = t.check(filter);
    assert_eq!(ids(&found), vec![json!(100), json!(101)]);
}

// ---------------------------------------------------------------------------
// 4. Index kinds against MongoDB's documented behaviour
// ---------------------------------------------------------------------------

// MongoDB manual, Unique Indexes
// (https://www.mongodb.com/docs/manual/core/index-unique/): "A unique index
// ensures that the indexed fields do not store duplicate values"; a violating
// write fails with a duplicate key error (E11000) naming the index, and
// changes nothing.
#[test]
fn unique_index_rejects_a_duplicate_insert_and_changes_nothing() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    let name = users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    assert_eq!(name, "email_1");
    users
        .insert_many(vec![
            json!({"_id": 1, "email": "a@x"}),
            json!({"_id": 2, "email": "b@x"}),
        ])
        .unwrap();

    let (index, key) = dup_key(
        users
            .insert_one(json!({"_id": 3, "email": "a@x", "name": "dup"}))
            .unwrap_err(),
    );
    assert_eq!(index, "email_1");
    assert!(key.contains("a@x"), "{key}");
    assert_eq!(users.count(json!({})).unwrap(), 2);
    assert_eq!(users.find_one(json!({"_id": 3})).unwrap(), None);
    assert_eq!(
        users.find(json!({"email": "a@x"})).to_vec().unwrap(),
        vec![json!({"_id": 1, "email": "a@x"})]
    );
    assert_eq!(users.count(json!({"name": "dup"})).unwrap(), 0);

    // insert_many is all or nothing.
    let (index, _) = dup_key(
        users
            .insert_many(vec![
                json!({"_id": 4, "email": "c@x"}),
                json!({"_id": 5, "email": "b@x"}),
            ])
            .unwrap_err(),
    );
    assert_eq!(index, "email_1");
    assert_eq!(users.count(json!({})).unwrap(), 2);
    assert_eq!(users.count(json!({"email": "c@x"})).unwrap(), 0);

    // Two duplicates inside one insert_many.
    dup_key(
        users
            .insert_many(vec![
                json!({"_id": 6, "email": "d@x"}),
                json!({"_id": 7, "email": "d@x"}),
            ])
            .unwrap_err(),
    );
    assert_eq!(users.count(json!({})).unwrap(), 2);

    // The key is free again once its holder is deleted.
    users.delete_one(json!({"_id": 1})).unwrap();
    users.insert_one(json!({"_id": 8, "email": "a@x"})).unwrap();
    assert_eq!(
        ids(&users.find(json!({"email": "a@x"})).to_vec().unwrap()),
        vec![json!(8)]
    );

    // A named index is reported by its name.
    let c = db.collection("named").unwrap();
    c.create_index(IndexSpec::new([("k", 1)]).unique().name("by_k"))
        .unwrap();
    c.insert_one(json!({"k": 1})).unwrap();
    assert_eq!(
        dup_key(c.insert_one(json!({"k": 1})).unwrap_err()).0,
        "by_k"
    );
    // 1 and 1.0 are the same key.
    assert_eq!(
        dup_key(c.insert_one(json!({"k": 1.0})).unwrap_err()).0,
        "by_k"
    );
}

// Unique Indexes (above): updates are checked too — an update that would
// give a document another document's key fails and leaves both unchanged;
// rewriting a document's own key is not a violation.
#[test]
fn unique_index_rejects_a_violating_update() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users
        .insert_many(vec![
            json!({"_id": 1, "email": "a@x", "n": 0}),
            json!({"_id": 2, "email": "b@x", "n": 0}),
            json!({"_id": 3, "email": "c@x", "n": 0}),
        ])
        .unwrap();
    let before = users.find(json!({})).to_vec().unwrap();

    let (index, key) = dup_key(
        users
            .update_one(json!({"_id": 2}), json!({"$set": {"email": "a@x", "n": 1}}))
            .unwrap_err(),
    );
    assert_eq!(index, "email_1");
    assert!(key.contains("a@x"), "{key}");
    dup_key(
        users
            .replace_one(json!({"_id": 2}), json!({"email": "c@x"}))
            .unwrap_err(),
    );
    // update_many: the second document to be rewritten collides with the first.
    dup_key(
        users
            .update_many(json!({}), json!({"$set": {"email": "z@x"}}))
            .unwrap_err(),
    );
    // An upsert that would insert a duplicate.
    dup_key(
        users
            .update_one_with(
                json!({"_id": 9}),
                json!({"$set": {"email": "b@x"}}),
                collection_store::UpdateOptions::upsert(),
            )
            .unwrap_err(),
    );
    assert_eq!(users.find(json!({})).to_vec().unwrap(), before);
    for (email, id) in [("a@x", 1), ("b@x", 2), ("c@x", 3)] {
        assert_eq!(
            ids(&users.find(json!({"email": email})).to_vec().unwrap()),
            vec![json!(id)],
            "index entries unchanged for {email}"
        );
    }
    assert_eq!(users.count(json!({"email": "z@x"})).unwrap(), 0);

    // Updates that keep the key, or set it to its own value, are fine.
    let r = users
        .update_one(json!({"_id": 1}), json!({"$inc": {"n": 1}}))
        .unwrap();
    assert_eq!(r.modified_count, 1);
    users
        .update_one(json!({"_id": 1}), json!({"$set": {"email": "a@x"}}))
        .unwrap();
    users
        .replace_one(json!({"_id": 1}), json!({"email": "a@x", "n": 5}))
        .unwrap();
    // Moving to a free key frees the old one.
    users
        .update_one(json!({"_id": 1}), json!({"$set": {"email": "q@x"}}))
        .unwrap();
    users.insert_one(json!({"_id": 4, "email": "a@x"})).unwrap();
    assert_eq!(
        ids(&users.find(json!({"email": "q@x"})).to_vec().unwrap()),
        vec![json!(1)]
    );
}

// Unique Indexes, "Missing Document Field in a Unique Single-Field Index"
// (https://www.mongodb.com/docs/manual/core/index-unique/#missing-document-field-in-a-unique-single-field-index):
// "If a document has a null or missing value for the indexed field in a
// unique single-field index, the index stores a null value for that document.
// Because of the unique constraint, a single-field unique index can only
// contain one document that contains a null value in its index entry."
#[test]
fn unique_index_treats_missing_as_null() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users
        .insert_one(json!({"_id": 1, "name": "no email"}))
        .unwrap();
    let (index, _) = dup_key(users.insert_one(json!({"_id": 2})).unwrap_err());
    assert_eq!(index, "email_1");
    dup_key(
        users
            .insert_one(json!({"_id": 3, "email": null}))
            .unwrap_err(),
    );
    // Removing the field from a document counts as setting it to null.
    users.insert_one(json!({"_id": 4, "email": "d@x"})).unwrap();
    dup_key(
        users
            .update_one(json!({"_id": 4}), json!({"$unset": {"email": ""}}))
            .unwrap_err(),
    );
    assert_eq!(users.count(json!({})).unwrap(), 2);
    assert_eq!(users.count(json!({"email": "d@x"})).unwrap(), 1);

    // Compound: uniqueness of the combination; missing fields are null.
    let c = db.collection("compound").unwrap();
    c.create_index(IndexSpec::new([("last", 1), ("first", 1)]).unique())
        .unwrap();
    c.insert_one(json!({"last": "Doe", "first": "Ann"}))
        .unwrap();
    c.insert_one(json!({"last": "Doe", "first": "Bob"}))
        .unwrap();
    c.insert_one(json!({"last": "Roe", "first": "Ann"}))
        .unwrap();
    c.insert_one(json!({"last": "Doe"})).unwrap();
    dup_key(
        c.insert_one(json!({"last": "Doe", "first": "Ann"}))
            .unwrap_err(),
    );
    dup_key(
        c.insert_one(json!({"last": "Doe", "first": null}))
            .unwrap_err(),
    );
    assert_eq!(c.count(json!({})).unwrap(), 4);
}

// MongoDB manual, Sparse Indexes, "Sparse Index with Unique Constraint"
// (https://www.mongodb.com/docs/manual/core/index-sparse/#sparse-index-with-unique-constraint):
// "An index that is both sparse and unique prevents collection from having
// documents with duplicate values for a field but allows multiple documents
// that omit the key." A null value is still indexed by a sparse index.
#[test]
fn unique_sparse_index_allows_many_documents_without_the_field() {
    let (_d, db) = open();
    let c = db.collection("scores").unwrap();
    c.create_index(IndexSpec::new([("score", 1)]).unique().sparse())
        .unwrap();
    for i in 0..5 {
        c.insert_one(json!({"_id": i, "userid": "x"})).unwrap();
    }
    c.insert_one(json!({"_id": 10, "score": 82})).unwrap();
    c.insert_one(json!({"_id": 11, "score": 90})).unwrap();
    let (index, _) = dup_key(c.insert_one(json!({"_id": 12, "score": 82})).unwrap_err());
    assert_eq!(index, "score_1");
    c.insert_one(json!({"_id": 13, "score": null})).unwrap();
    dup_key(c.insert_one(json!({"_id": 14, "score": null})).unwrap_err());
    assert_eq!(c.count(json!({})).unwrap(), 8);
    // Removing the field takes the document out of the index: no conflict.
    c.update_many(json!({"_id": {"$lt": 5}}), json!({"$set": {"n": 1}}))
        .unwrap();
    c.update_one(json!({"_id": 10}), json!({"$unset": {"score": ""}}))
        .unwrap();
    c.insert_one(json!({"_id": 15, "score": 82})).unwrap();
}

// MongoDB manual, Partial Indexes, "Partial Index with Unique Constraint"
// (https://www.mongodb.com/docs/manual/core/index-partial/#partial-index-with-unique-constraint):
// with `{username: 1}` unique and partialFilterExpression `{age: {$gte: 21}}`,
// "the unique constraint only applies to the documents that meet the filter
// expression": `{username: "david", age: 27}` is rejected next to david 29,
// while david 20, amanda without age and rajiv with age null are allowed.
#[test]
fn unique_partial_index_only_constrains_matching_documents() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    users
        .create_index(
            IndexSpec::new([("username", 1)])
                .unique()
                .partial(json!({"age": {"$gte": 21}})),
        )
        .unwrap();
    users
        .insert_many(vec![
            json!({"username": "david", "age": 29}),
            json!({"username": "amanda", "age": 35}),
            json!({"username": "rajiv", "age": 57}),
        ])
        .unwrap();
    let (index, key) = dup_key(
        users
            .insert_one(json!({"username": "david", "age": 27}))
            .unwrap_err(),
    );
    assert_eq!(index, "username_1");
    assert!(key.contains("david"), "{key}");
    users
        .insert_many(vec![
            json!({"username": "david", "age": 20}),
            json!({"username": "amanda"}),
            json!({"username": "rajiv", "age": null}),
            json!({"username": "david", "age": 3}),
        ])
        .unwrap();
    assert_eq!(users.count(json!({})).unwrap(), 7);
    assert_eq!(users.count(json!({"username": "david"})).unwrap(), 3);

    // An update that brings a document under the filter is checked.
    dup_key(
        users
            .update_one(
                json!({"username": "david", "age": 20}),
                json!({"$set": {"age": 40}}),
            )
            .unwrap_err(),
    );
    assert_eq!(
        users
            .count(json!({"username": "david", "age": 20}))
            .unwrap(),
        1
    );
    // ... and one that takes the holder out of the filter frees the key.
    users
        .update_one(
            json!({"username": "david", "age": 29}),
            json!({"$set": {"age": 19}}),
        )
        .unwrap();
    users
        .update_one(
            json!({"username": "david", "age": 20}),
            json!({"$set": {"age": 40}}),
        )
        .unwrap();
}

// Unique Indexes, "Unique Constraint Across Separate Documents"
// (https://www.mongodb.com/docs/manual/core/index-unique/#unique-constraint-across-separate-documents):
// "the unique index prevents separate documents from having the same value
// for the indexed key, but the index does not prevent a document from having
// multiple elements ... in an indexed array from having the same value."
#[test]
fn unique_multikey_index_is_checked_across_documents_only() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    c.create_index(IndexSpec::new([("a.b", 1)]).unique())
        .unwrap();
    c.insert_one(json!({"_id": 1, "a": [{"b": 5}, {"b": 5}]}))
        .unwrap();
    c.insert_one(json!({"_id": 2, "a": [{"b": 6}, {"b": 7}]}))
        .unwrap();
    dup_key(c.insert_one(json!({"_id": 3, "a": {"b": 7}})).unwrap_err());
    dup_key(
        c.insert_one(json!({"_id": 4, "a": [{"b": 8}, {"b": 5}]}))
            .unwrap_err(),
    );
    assert_eq!(c.count(json!({})).unwrap(), 2);
    assert_eq!(
        ids(&c.find(json!({"a.b": 7})).to_vec().unwrap()),
        vec![json!(2)]
    );
    // A document may add a value it already holds.
    c.update_one(json!({"_id": 2}), json!({"$push": {"a": {"b": 6}}}))
        .unwrap();
}

// MongoDB manual, Sparse Indexes (https://www.mongodb.com/docs/manual/core/index-sparse/):
// "Sparse indexes only contain entries for documents that have the indexed
// field, even if the index field contains a null value." "If a sparse index
// would result in an incomplete result set for queries and sort operations,
// MongoDB will not use that index unless a hint() explicitly specifies the
// index. For example, the query { x: { $exists: false } } will not use a
// sparse index on the x field."
#[test]
fn sparse_index_is_not_used_when_it_would_miss_documents() {
    let (_d, db) = open();
    let mut docs = people(2000);
    for d in docs.iter_mut() {
        let i = d["_id"].as_i64().unwrap();
        if i % 100 == 0 {
            d.as_object_mut().unwrap().remove("age");
        } else if i % 100 == 1 {
            d["age"] = Value::Null;
        }
    }
    let t = twin(&db, &docs, &[IndexSpec::new([("age", 1)]).sparse()]);

    // Values: the sparse index is complete for them, and used.
    let (found, e) = t.check(json!({"age": 42}));
    assert_eq!(found.len(), 20);
    assert_ixscan(&e, "age_1");
    let (_, e) = t.check(json!({"age": {"$gt": 90}}));
    assert_ixscan(&e, "age_1");

    // {age: null} must also return the documents without age: not from the index.
    let (found, e) = t.check(json!({"age": null}));
    assert_eq!(found.len(), 40);
    assert_eq!(found.iter().filter(|d| d.get("age").is_none()).count(), 20);
    assert_ne!(e.index.as_deref(), Some("age_1"), "{e:#?}");
    assert_collscan(&e);
    let (found, e) = t.check(json!({"age": {"$exists": false}}));
    assert_eq!(found.len(), 20);
    assert_collscan(&e);
    let (found, e) = t.check(json!({"age": {"$in": [null, 5]}}));
    assert_eq!(found.len(), 60);
    assert_collscan(&e);
    let (_, e) = t.check(json!({"age": {"$gte": null}}));
    assert_collscan(&e);

    // A sort on the sparse field must return every document.
    let (all, e) = t.check_sorted(json!({}), json!({"age": 1, "_id": 1}), 0);
    assert_eq!(all.len(), 2000);
    assert!(e.in_memory_sort && !e.sort_by_index, "{e:#?}");
    assert_ne!(e.stage, "IXSCAN");
    let (first, _) = t.check_sorted(json!({}), json!({"age": 1, "_id": 1}), 3);
    assert_eq!(ids(&first), vec![json!(0), json!(1), json!(100)]);

    // The documents without the field are not in the index: a covered count of
    // the whole number range equals the documents holding numbers.
    let e = t.ix.explain_count(json!({"age": {"$gte": 0}})).unwrap();
    assert!(e.covered);
    assert_eq!(e.stats.keys_examined, 1960);
}

// MongoDB manual, Partial Indexes (https://www.mongodb.com/docs/manual/core/index-partial/):
// "Partial indexes only index the documents in a collection that meet a
// specified filter expression." "To use the partial index, a query must
// contain the filter expression ... as part of its query condition." "MongoDB
// will not use the partial index for a query or sort operation if using the
// index results in an incomplete result set."
#[test]
fn partial_index_is_used_only_when_the_query_implies_its_filter() {
    let (_d, db) = open();
    let mut docs = people(2000);
    for d in docs.iter_mut() {
        let i = d["_id"].as_i64().unwrap();
        d["active"] = json!(i % 4 == 0);
    }
    let t = twin(
        &db,
        &docs,
        &[IndexSpec::new([("score", 1)]).partial(json!({"active": true}))],
    );

    let expected = count_where(&docs, |d| {
        d["active"] == true && d["score"].as_i64().unwrap() > 500
    });
    let (found, e) = t.check(json!({"score": {"$gt": 500}, "active": true}));
    assert_eq!(found.len() as u64, expected);
    assert_ixscan(&e, "score_1");
    assert_eq!(e.stats.keys_examined, expected);

    // The count is answered from the index alone, which proves that inactive
    // documents are not in it (otherwise it would count them).
    let e =
        t.ix.explain_count(json!({"score": {"$gt": 500}, "active": true}))
            .unwrap();
    assert!(e.covered, "{e:#?}");
    assert_eq!(e.stats.keys_examined, expected);
    assert_eq!(e.stats.returned, expected);

    // Without the filter expression the index would miss documents: scan.
    let (found, e) = t.check(json!({"score": {"$gt": 500}}));
    assert_eq!(
        found.len() as u64,
        count_where(&docs, |d| d["score"].as_i64().unwrap() > 500)
    );
    assert_collscan(&e);
    let (_, e) = t.check(json!({"score": {"$gt": 500}, "active": false}));
    assert_collscan(&e);
    let (_, e) = t.check_sorted(json!({}), json!({"score": 1, "_id": 1}), 5);
    assert!(e.in_memory_sort, "{e:#?}");
    assert_ne!(e.stage, "IXSCAN");

    // With the filter and a sort on the indexed field, the index gives the order.
    let (_, e) = t.check_sorted(json!({"active": true}), json!({"score": 1}), 5);
    assert_ixscan(&e, "score_1");
    assert!(e.sort_by_index, "{e:#?}");

    // Leaving the filter removes the entry; entering it adds one.
    t.ix.update_many(
        json!({"score": {"$gt": 900}}),
        json!({"$set": {"active": false}}),
    )
    .unwrap();
    t.plain
        .update_many(
            json!({"score": {"$gt": 900}}),
            json!({"$set": {"active": false}}),
        )
        .unwrap();
    t.ix.update_many(
        json!({"_id": {"$lt": 40}}),
        json!({"$set": {"active": true}}),
    )
    .unwrap();
    t.plain
        .update_many(
            json!({"_id": {"$lt": 40}}),
            json!({"$set": {"active": true}}),
        )
        .unwrap();
    let f = json!({"score": {"$gt": 500}, "active": true});
    let (_, e) = t.check(f.clone());
    assert_ixscan(&e, "score_1");
    let e = t.ix.explain_count(f.clone()).unwrap();
    assert!(e.covered);
    assert_eq!(e.stats.returned, t.plain.count(f).unwrap());
}

// MongoDB manual, Multikey Indexes (https://www.mongodb.com/docs/manual/core/index-multikey/):
// "MongoDB creates an index key for each element in the array"; queries on an
// element use the index, and a document is returned once even when several
// of its elements fall in the bounds.
#[test]
fn multikey_index_indexes_each_array_element() {
    let (_d, db) = open();
    let docs: Vec<Value> = (0..2000)
        .map(|i| {
            json!({
                "_id": i,
                "tags": [format!("t{}", i % 50), format!("t{}", (i * 7) % 50)],
                "items": [{"sku": format!("s{}", i % 40), "qty": i % 9}],
            })
        })
        .chain([
            json!({"_id": 5000, "tags": "t3"}),
            json!({"_id": 5001, "tags": []}),
            json!({"_id": 5002}),
        ])
        .collect();
    let t = twin(
        &db,
        &docs,
        &[
            IndexSpec::new([("tags", 1)]),
            IndexSpec::new([("items.sku", 1)]),
        ],
    );

    let (found, e) = t.check(json!({"tags": "t3"}));
    assert!(
        found.iter().any(|d| d["_id"] == 5000),
        "scalar value is indexed too"
    );
    assert!(no_duplicate_ids(&found));
    assert_ixscan(&e, "tags_1");
    assert_eq!(e.stats.docs_examined, found.len() as u64);

    let (found, e) = t.check(json!({"tags": {"$in": ["t7", "t49"]}}));
    assert!(no_duplicate_ids(&found));
    assert_ixscan(&e, "tags_1");
    // Document 7 holds t7 and t49: two keys in the bounds, returned once.
    assert_eq!(ids(&found).iter().filter(|i| **i == json!(7)).count(), 1);
    assert!(e.stats.keys_examined > e.stats.docs_examined, "{e:#?}");

    let (found, _) = t.check(json!({"tags": {"$gte": "t45", "$lt": "t5"}}));
    assert!(!found.is_empty());

    let (found, e) = t.check(json!({"items.sku": "s7"}));
    assert_eq!(found.len(), 50);
    assert_ixscan(&e, "items.sku_1");

    t.check(json!({"tags": {"$all": ["t1", "t7"]}}));
    t.check(json!({"tags": {"$size": 2}}));
    let (found, _) = t.check(json!({"tags": null}));
    assert_eq!(ids(&found), vec![json!(5002)]);
    let (found, _) = t.check(json!({"tags": []}));
    assert_eq!(ids(&found), vec![json!(5001)]);
    let (found, _) = t.check(json!({"tags": ["t0", "t0"]}));
    assert_eq!(found.len(), 40);
}

// MongoDB manual, Multikey Indexes, Compound Multikey Indexes
// (https://www.mongodb.com/docs/manual/core/index-multikey/#compound-multikey-indexes):
// "For a compound multikey index, each indexed document can have at most one
// indexed field whose value is an array ... You cannot insert a document that
// would violate this restriction" — MongoDB reports "cannot index parallel arrays".
#[test]
fn compound_index_rejects_parallel_arrays() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    c.create_index(IndexSpec::new([("a", 1), ("b", 1)]))
        .unwrap();
    c.insert_one(json!({"_id": 1, "a": [1, 2], "b": 1}))
        .unwrap();
    c.insert_one(json!({"_id": 2, "a": 1, "b": [1, 2]}))
        .unwrap();

    let err = c
        .insert_one(json!({"_id": 3, "a": [1, 2], "b": [3, 4]}))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDocument(_)), "{err:?}");
    assert!(
        err.to_string().contains("cannot index parallel arrays"),
        "{err}"
    );
    assert_eq!(c.count(json!({})).unwrap(), 2);
    assert_eq!(c.find_one(json!({"_id": 3})).unwrap(), None);

    // An update creating the second array fails and changes nothing.
    let err = c
        .update_one(json!({"_id": 1}), json!({"$set": {"b": [5, 6]}}))
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot index parallel arrays"),
        "{err}"
    );
    assert_eq!(
        c.find_one(json!({"_id": 1})).unwrap().unwrap(),
        json!({"_id": 1, "a": [1, 2], "b": 1})
    );
    assert_eq!(
        ids(&c.find(json!({"b": 1})).to_vec().unwrap()),
        vec![json!(1), json!(2)]
    );

    // Building such an index over a document with parallel arrays fails.
    let d = db.collection("d").unwrap();
    d.insert_one(json!({"_id": 1, "x": [1], "y": [1, 2]}))
        .unwrap();
    let err = d
        .create_index(IndexSpec::new([("x", 1), ("y", 1)]))
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot index parallel arrays"),
        "{err}"
    );
    assert!(d.list_indexes().unwrap().is_empty());

    // Two paths into the same array are not parallel arrays.
    let e = db.collection("e").unwrap();
    e.create_index(IndexSpec::new([("a.b", 1), ("a.c", 1)]))
        .unwrap();
    e.insert_one(json!({"_id": 1, "a": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]}))
        .unwrap();
    assert_eq!(e.count(json!({"a.b": 3, "a.c": 2})).unwrap(), 1);
    assert_eq!(
        e.count(json!({"a": {"$elemMatch": {"b": 3, "c": 2}}}))
            .unwrap(),
        0
    );
    assert_eq!(
        e.count(json!({"a": {"$elemMatch": {"b": 3, "c": 4}}}))
            .unwrap(),
        1
    );
}

// MongoDB manual, Multikey Index Bounds
// (https://www.mongodb.com/docs/manual/core/multikey-index-bounds/): for
// `{ratings: {$gte: 3, $lte: 6}}` on a multikey index the bounds cannot be
// intersected, because different elements may satisfy different predicates
// (`[2, 9]` matches); with `$elemMatch` one element must satisfy both.
#[test]
fn multikey_ranges_and_elem_match_return_correct_results() {
    let (_d, db) = open();
    let mut docs: Vec<Value> = vec![
        json!({"_id": "a", "scores": [70, 90]}),
        json!({"_id": "b", "scores": [80]}),
        json!({"_id": "c", "scores": [70, 72]}),
        json!({"_id": "d", "scores": [95, 99]}),
        json!({"_id": "e", "scores": 80}),
        json!({"_id": "f", "scores": [[80]]}),
    ];
    docs.extend(
        (0..100).map(
            |i| json!({"_id": format!("g{i:03}"), "scores": [(i * 13) % 100, (i * 29) % 100]}),
        ),
    );
    docs.extend((0..2000).map(|i| json!({"_id": format!("h{i:04}"), "other": i})));
    let t = twin(&db, &docs, &[IndexSpec::new([("scores", 1)])]);

    let (found, e) = t.check(json!({"scores": {"$gt": 75, "$lt": 85}}));
    let found_ids = ids(&found);
    for id in ["a", "b", "e"] {
        assert!(
            found_ids.contains(&json!(id)),
            "{id} must match: {found_ids:?}"
        );
    }
    for id in ["c", "d", "f"] {
        assert!(!found_ids.contains(&json!(id)), "{id} must not match");
    }
    assert!(no_duplicate_ids(&found));
    assert_ixscan(&e, "scores_1");

    let (found, _) = t.check(json!({"scores": {"$elemMatch": {"$gt": 75, "$lt": 85}}}));
    let found_ids = ids(&found);
    assert!(found_ids.contains(&json!("b")));
    assert!(
        !found_ids.contains(&json!("a")),
        "no single element of [70, 90] is in (75, 85)"
    );
    assert!(
        !found_ids.contains(&json!("e")),
        "$elemMatch needs an array"
    );

    for filter in [
        json!({"scores": {"$gte": 90}}),
        json!({"scores": {"$lte": 10}}),
        json!({"scores": {"$gt": 10, "$lte": 12}}),
        json!({"scores": {"$in": [13, 29, 80]}}),
        json!({"scores": 80}),
        json!({"scores": [80]}),
        json!({"scores": {"$elemMatch": {"$gte": 95}}}),
    ] {
        let (found, _) = t.check(filter);
        assert!(no_duplicate_ids(&found));
    }

    // A multikey index cannot provide a sort (MongoDB sorts an array by its
    // smallest element ascending, largest descending): sorted in memory.
    let (_, e) = t.check_sorted(
        json!({"scores": {"$gte": 50}}),
        json!({"scores": 1, "_id": 1}),
        0,
    );
    assert!(e.in_memory_sort && !e.sort_by_index, "{e:#?}");
    let (_, e) = t.check_sorted(
        json!({"scores": {"$gte": 50}}),
        json!({"scores": -1, "_id": 1}),
        7,
    );
    assert!(e.in_memory_sort, "{e:#?}");
}

// Null and missing through embedded paths (Query for Null or Missing Fields,
// above; Query an Array of Embedded Documents,
// https://www.mongodb.com/docs/manual/tutorial/query-array-of-documents/):
// whatever the shape of the document, the index must give the same answer as
// the matcher — including counts answered from the index alone.
#[test]
fn null_and_missing_on_embedded_paths_agree_with_the_matcher() {
    let (_d, db) = open();
    let tricky = [
        json!({"a": 5}),
        json!({"a": []}),
        json!({"a": [{"c": 1}]}),
        json!({"a": [1, 2]}),
        json!({"a": [[{"b": 1}]]}),
        json!({"a": {"b": null}}),
        json!({"a": {"b": [null]}}),
        json!({"a": {"b": []}}),
        json!({"a": {"b": [[]]}}),
        json!({"a": {"c": 1}}),
        json!({"a": null}),
        json!({}),
        json!({"a": [{"b": 3}]}),
        json!({"a": [{"b": null}]}),
    ];
    for (n, doc) in tricky.iter().enumerate() {
        let mut docs: Vec<Value> = (0..300).map(|i| json!({"_id": i, "a": {"b": i}})).collect();
        let mut d = doc.clone();
        d["_id"] = json!(1000);
        docs.push(d);
        let t = twin_named(
            &db,
            &format!("n{n}"),
            &docs,
            &[IndexSpec::new([("a.b", 1)])],
        );
        for filter in [
            json!({"a.b": null}),
            json!({"a.b": {"$exists": false}}),
            json!({"a.b": {"$gte": null}}),
            json!({"a.b": {"$in": [null, 3]}}),
            json!({"a.b": 3}),
            json!({"a.b": {"$lt": 2}}),
        ] {
            let (_, e) = t.check(filter.clone());
            assert_eq!(e.index.as_deref(), Some("a.b_1"), "{doc} {filter}: {e:#?}");
        }
        let (_, e) = t.check_sorted(json!({}), json!({"a.b": 1}), 0);
        assert!(e.sort_by_index, "{doc}: {e:#?}");
        let (_, e) = t.check_sorted(json!({}), json!({"a.b": -1, "_id": -1}), 0);
        assert!(e.sort_by_index, "{doc}: {e:#?}");
    }
}

// Sort order across types (BSON Comparison/Sort Order,
// https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/):
// an index-provided order must equal the in-memory sort for every value kind.
#[test]
fn index_order_equals_in_memory_sort_across_types() {
    let (_d, db) = open();
    let values = [
        json!(null),
        json!(-1.5),
        json!(0),
        json!(3),
        json!(3.0),
        json!(1e10),
        json!(-9_007_199_254_740_993i64),
        json!(9_007_199_254_740_993i64),
        json!(""),
        json!("a"),
        json!("a\u{0}b"),
        json!("ab"),
        json!("B"),
        json!({"x": 1}),
        json!({"x": 1, "y": 2}),
        json!({"a": 9}),
        json!(true),
        json!(false),
        json!({"$date": "2020-01-01T00:00:00Z"}),
        json!({"$oid": "5f0000000000000000000000"}),
        json!([5]),
        json!([]),
        json!([[1, 2]]),
    ];
    let mut docs: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"_id": i, "v": v}))
        .collect();
    docs.push(json!({"_id": 100}));
    let t = twin(&db, &docs, &[IndexSpec::new([("v", 1)])]);
    let (all, e) = t.check_sorted(json!({}), json!({"v": 1}), 0);
    assert_eq!(all.len(), docs.len());
    assert!(e.sort_by_index, "{e:#?}");
    let (_, e) = t.check_sorted(json!({}), json!({"v": -1, "_id": -1}), 0);
    assert!(e.sort_by_index && e.reverse, "{e:#?}");
    for v in &values {
        t.check(json!({"v": {"$gte": v}}));
        t.check(json!({"v": {"$lt": v}}));
        if !v.is_array() {
            t.check(json!({"v": v}));
        }
    }
}

// ---------------------------------------------------------------------------
// 5. Unique violations inside transactions
// ---------------------------------------------------------------------------

// MongoDB manual, Transactions (https://www.mongodb.com/docs/manual/core/transactions/):
// "When a transaction aborts, all data changes made in the transaction are
// discarded without ever becoming visible." A duplicate key error aborts the
// whole closure transaction, across collections.
#[test]
fn duplicate_key_in_a_closure_transaction_rolls_back_every_collection() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users.insert_one(json!({"_id": 1, "email": "a@x"})).unwrap();
    let orders = db.collection("orders").unwrap();
    orders.create_index(IndexSpec::new([("user", 1)])).unwrap();
    orders.insert_one(json!({"_id": 1, "user": 1})).unwrap();

    let err = db
        .transaction(|tx| {
            tx.collection("orders")?
                .insert_one(json!({"_id": 10, "user": 2}))?;
            tx.collection("users")?
                .update_one(json!({"_id": 1}), json!({"$set": {"orders": 1}}))?;
            tx.collection("users")?
                .insert_one(json!({"_id": 2, "email": "a@x"}))?;
            Ok(())
        })
        .unwrap_err();
    let (index, _) = dup_key(err);
    assert_eq!(index, "email_1");

    assert_eq!(
        ids(&orders.find(json!({})).to_vec().unwrap()),
        vec![json!(1)]
    );
    assert_eq!(orders.count(json!({"user": 2})).unwrap(), 0);
    let e = orders.explain(json!({"user": 2})).unwrap();
    assert_ixscan(&e, "user_1");
    assert_eq!(e.stats.keys_examined, 0, "no index entry left behind");
    assert_eq!(
        users.find(json!({})).to_vec().unwrap(),
        vec![json!({"_id": 1, "email": "a@x"})]
    );
    // The key stays taken, and nothing else was reserved.
    dup_key(
        users
            .insert_one(json!({"_id": 3, "email": "a@x"}))
            .unwrap_err(),
    );
    users.insert_one(json!({"_id": 2, "email": "b@x"})).unwrap();
}

// Same page: inside an explicit transaction a failed statement is undone on
// its own (the statement-level atomicity MongoDB gives every write); the
// application may go on and commit the statements that succeeded.
#[test]
fn duplicate_key_in_an_explicit_transaction_undoes_only_that_statement() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users.insert_one(json!({"_id": 1, "email": "a@x"})).unwrap();

    let tx = db.begin().unwrap();
    {
        let orders = tx.collection("orders").unwrap();
        let u = tx.collection("users").unwrap();
        orders.insert_one(json!({"_id": 10, "user": 2})).unwrap();
        u.insert_one(json!({"_id": 2, "email": "b@x"})).unwrap();
        let (index, _) = dup_key(u.insert_one(json!({"_id": 3, "email": "a@x"})).unwrap_err());
        assert_eq!(index, "email_1");
        // A multi-document statement failing half way leaves no trace either.
        dup_key(
            u.update_many(json!({}), json!({"$set": {"email": "same@x"}}))
                .unwrap_err(),
        );
        assert_eq!(u.count(json!({"email": "same@x"})).unwrap(), 0);
        u.insert_one(json!({"_id": 4, "email": "d@x"})).unwrap();
        // Reads inside the transaction see its writes, through the index.
        assert_eq!(
            ids(&u
                .find(json!({"email": {"$in": ["a@x", "b@x", "d@x"]}}))
                .to_vec()
                .unwrap()),
            vec![json!(1), json!(2), json!(4)]
        );
        assert_ixscan(&u.explain(json!({"email": "b@x"})).unwrap(), "email_1");
        // Not visible outside yet.
        assert_eq!(users.count(json!({})).unwrap(), 1);
    }
    tx.commit().unwrap();

    assert_eq!(
        ids(&users.find(json!({})).to_vec().unwrap()),
        vec![json!(1), json!(2), json!(4)]
    );
    assert_eq!(
        ids(&users.find(json!({"email": "b@x"})).to_vec().unwrap()),
        vec![json!(2)]
    );
    assert_eq!(users.count(json!({"email": "same@x"})).unwrap(), 0);
    assert_eq!(users.find_one(json!({"_id": 3})).unwrap(), None);
    assert_eq!(
        db.collection("orders").unwrap().count(json!({})).unwrap(),
        1
    );
    dup_key(
        users
            .insert_one(json!({"_id": 5, "email": "d@x"}))
            .unwrap_err(),
    );
}

// Index creation is part of the transaction too: rolled back with it
// (https://www.mongodb.com/docs/manual/core/transactions-operations/#create-collections-and-indexes-in-a-transaction).
#[test]
fn index_created_in_a_rolled_back_transaction_disappears() {
    let (_d, db) = open();
    let c = db.collection("people").unwrap();
    c.insert_many(people(500)).unwrap();
    let tx = db.begin().unwrap();
    {
        let tc = tx.collection("people").unwrap();
        tc.create_index(IndexSpec::new([("age", 1)])).unwrap();
        assert_eq!(tc.list_indexes().unwrap().len(), 1);
        assert_ixscan(&tc.explain(json!({"age": 3})).unwrap(), "age_1");
    }
    tx.rollback();
    assert!(c.list_indexes().unwrap().is_empty());
    assert_collscan(&c.explain(json!({"age": 3})).unwrap());
    // And it can be created again afterwards.
    assert_eq!(
        c.create_index(IndexSpec::new([("age", 1)])).unwrap(),
        "age_1"
    );
    assert_eq!(c.count(json!({"age": 3})).unwrap(), 5);
}

// ---------------------------------------------------------------------------
// 6. Index lifecycle
// ---------------------------------------------------------------------------

// MongoDB manual, db.collection.createIndex
// (https://www.mongodb.com/docs/manual/reference/method/db.collection.createIndex/)
// builds the index over the existing documents; index builds report progress
// (https://www.mongodb.com/docs/manual/core/index-creation/).
#[test]
fn create_index_builds_over_existing_documents_with_progress() {
    let (_d, db) = open();
    let c = db.collection("people").unwrap();
    c.insert_many(people(9000)).unwrap();
    let mut calls: Vec<(u64, u64)> = Vec::new();
    let name = c
        .create_index_with_progress(IndexSpec::new([("age", 1)]), |done, total| {
            calls.push((done, total))
        })
        .unwrap();
    assert_eq!(name, "age_1");
    assert!(calls.len() >= 3, "progress reported per batch: {calls:?}");
    assert!(calls.iter().all(|&(_, total)| total == 9000), "{calls:?}");
    assert!(
        calls.windows(2).all(|w| w[0].0 < w[1].0),
        "done increases: {calls:?}"
    );
    assert_eq!(*calls.last().unwrap(), (9000, 9000));

    let e = c.explain(json!({"age": 5})).unwrap();
    assert_ixscan(&e, "age_1");
    assert_eq!(e.stats.returned, 90);
    assert_eq!(e.stats.keys_examined, 90);
    let e = c.explain_count(json!({"age": {"$lt": 10}})).unwrap();
    assert!(e.covered);
    assert_eq!(e.stats.returned, 900);

    // Documents written afterwards are indexed as they are written.
    c.insert_one(json!({"_id": 20000, "age": 5})).unwrap();
    assert_eq!(c.count(json!({"age": 5})).unwrap(), 91);

    // An index on an empty (even not yet existing) collection.
    let empty = db.collection("empty").unwrap();
    let mut calls = Vec::new();
    empty
        .create_index_with_progress(IndexSpec::new([("x", 1)]), |d, t| calls.push((d, t)))
        .unwrap();
    assert_eq!(calls.last().copied(), Some((0, 0)));
    empty.insert_one(json!({"x": 1})).unwrap();
    assert_ixscan(&empty.explain(json!({"x": 1})).unwrap(), "x_1");
}

// db.collection.createIndex (above): "If you call db.collection.createIndex()
// multiple times with the same index specification ... all other operations
// will have no effect"; an existing index with the same name and different
// options is an error (IndexKeySpecsConflict / IndexOptionsConflict), as is
// the same key pattern and options under another name.
#[test]
fn create_index_is_idempotent_and_rejects_conflicts() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    c.insert_many(people(100)).unwrap();
    let spec = IndexSpec::new([("age", 1), ("city", -1)]);
    assert_eq!(c.create_index(spec.clone()).unwrap(), "age_1_city_-1");
    assert_eq!(c.create_index(spec.clone()).unwrap(), "age_1_city_-1");
    assert_eq!(c.list_indexes().unwrap().len(), 1);

    for conflicting in [
        IndexSpec::new([("age", 1), ("city", -1)])
            .unique()
            .name("age_1_city_-1"),
        IndexSpec::new([("age", 1)]).name("age_1_city_-1"),
        IndexSpec::new([("age", 1), ("city", -1)])
            .sparse()
            .name("age_1_city_-1"),
        IndexSpec::new([("age", 1), ("city", -1)]).name("other"),
    ] {
        let err = c.create_index(conflicting.clone()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidIndex(_)),
            "{conflicting:?}: {err:?}"
        );
    }
    assert_eq!(c.list_indexes().unwrap().len(), 1);

    // A different direction is a different index with its own default name.
    assert_eq!(
        c.create_index(IndexSpec::new([("age", 1), ("city", 1)]))
            .unwrap(),
        "age_1_city_1"
    );
    assert_eq!(c.list_indexes().unwrap().len(), 2);
}

// MongoDB manual, Unique Indexes, Restrictions
// (https://www.mongodb.com/docs/manual/core/index-unique/#restrictions):
// "MongoDB cannot create a unique index on the specified index field(s) if
// the collection already contains data that would violate the unique
// constraint for the index."
#[test]
fn unique_index_build_over_duplicates_fails_and_leaves_no_index() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    c.insert_many(people(5000)).unwrap();
    c.insert_one(json!({"_id": 9000, "name": "p00042"}))
        .unwrap();
    let err = c
        .create_index(IndexSpec::new([("name", 1)]).unique())
        .unwrap_err();
    let (index, key) = dup_key(err);
    assert_eq!(index, "name_1");
    assert!(key.contains("p00042"), "{key}");
    assert!(c.list_indexes().unwrap().is_empty());
    assert_collscan(&c.explain(json!({"name": "p00042"})).unwrap());
    // Nothing is enforced, nothing is left behind.
    c.insert_one(json!({"_id": 9001, "name": "p00042"}))
        .unwrap();
    // Missing values count as duplicates (null) too.
    let d = db.collection("d").unwrap();
    d.insert_many(vec![json!({"_id": 1}), json!({"_id": 2})])
        .unwrap();
    dup_key(
        d.create_index(IndexSpec::new([("email", 1)]).unique())
            .unwrap_err(),
    );
    assert!(d.list_indexes().unwrap().is_empty());
    // ...but not for a sparse unique index.
    d.create_index(IndexSpec::new([("email", 1)]).unique().sparse())
        .unwrap();

    // Once the duplicate is gone the index builds and then enforces.
    c.delete_many(json!({"_id": {"$gte": 9000}})).unwrap();
    c.create_index(IndexSpec::new([("name", 1)]).unique())
        .unwrap();
    dup_key(c.insert_one(json!({"name": "p00042"})).unwrap_err());
}

// MongoDB manual, db.collection.dropIndex
// (https://www.mongodb.com/docs/manual/reference/method/db.collection.dropIndex/):
// removes the index; queries then run without it. Dropping a non-existent
// index is an error (IndexNotFound), and the _id index cannot be dropped.
#[test]
fn drop_index_removes_it_and_queries_fall_back() {
    let (_d, db) = open();
    let t = twin(
        &db,
        &people(2000),
        &[
            IndexSpec::new([("age", 1)]),
            IndexSpec::new([("email", 1)]).unique().sparse(),
        ],
    );
    assert_ixscan(&t.check(json!({"age": 5})).1, "age_1");
    t.ix.drop_index("age_1").unwrap();
    let names: Vec<String> =
        t.ix.list_indexes()
            .unwrap()
            .iter()
            .map(|s| s.index_name())
            .collect();
    assert_eq!(names, ["email_1"]);
    let (found, e) = t.check(json!({"age": 5}));
    assert_eq!(found.len(), 20);
    assert_collscan(&e);
    let (_, e) = t.check_sorted(json!({"age": {"$gt": 10}}), json!({"age": 1}), 5);
    assert!(e.in_memory_sort);
    assert_eq!(t.ix.count(json!({"age": {"$gte": 40}})).unwrap(), 1200);

    // Writes after the drop are not constrained or indexed by it.
    t.ix.drop_index("email_1").unwrap();
    t.ix.insert_one(json!({"_id": 5000, "email": "x"})).unwrap();
    t.ix.insert_one(json!({"_id": 5001, "email": "x"})).unwrap();
    assert!(t.ix.list_indexes().unwrap().is_empty());

    match t.ix.drop_index("age_1").unwrap_err() {
        Error::IndexNotFound(name) => assert_eq!(name, "age_1"),
        other => panic!("expected IndexNotFound, got {other:?}"),
    }
    assert!(matches!(
        t.ix.drop_index("nope").unwrap_err(),
        Error::IndexNotFound(_)
    ));
    assert!(t.ix.drop_index("_id_").is_err());

    // Re-creating after a drop builds from the current documents.
    t.ix.create_index(IndexSpec::new([("age", 1)])).unwrap();
    assert_eq!(t.ix.find(json!({"age": 5})).to_vec().unwrap().len(), 20);
    assert_ixscan(&t.ix.explain(json!({"age": 5})).unwrap(), "age_1");
}

// MongoDB manual, db.collection.getIndexes
// (https://www.mongodb.com/docs/manual/reference/method/db.collection.getIndexes/):
// lists each index with its key pattern, name and options.
#[test]
fn list_indexes_returns_the_specifications_with_names() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    assert!(c.list_indexes().unwrap().is_empty());
    let specs = vec![
        IndexSpec::new([("email", 1)]).unique(),
        IndexSpec::new([("city", 1), ("age", -1)]).name("city_age"),
        IndexSpec::new([("nick", 1)]).sparse(),
        IndexSpec::new([("score", -1)]).partial(json!({"active": true, "score": {"$gt": 5}})),
        IndexSpec::new([("a.b.c", 1)]),
    ];
    for s in &specs {
        c.create_index(s.clone()).unwrap();
    }
    let listed = c.list_indexes().unwrap();
    let expected: Vec<IndexSpec> = specs
        .iter()
        .map(|s| s.clone().name(s.index_name()))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        listed.iter().map(|s| s.index_name()).collect::<Vec<_>>(),
        ["email_1", "city_age", "nick_1", "score_-1", "a.b.c_1"]
    );
    assert!(listed[0].unique && !listed[0].sparse);
    assert!(listed[2].sparse);
    assert_eq!(
        listed[3].partial,
        Some(json!({"active": true, "score": {"$gt": 5}}))
    );
}

// Index definitions are part of the database (MongoDB persists them in the
// catalog, https://www.mongodb.com/docs/manual/indexes/): they survive a
// restart and are maintained by writes made after it.
#[test]
fn indexes_survive_reopen_and_stay_maintained() {
    let dir = tempfile::tempdir().unwrap();
    let specs = vec![
        IndexSpec::new([("age", 1)]),
        IndexSpec::new([("email", 1)]).unique(),
        IndexSpec::new([("tags", 1)]),
        IndexSpec::new([("score", 1)]).partial(json!({"active": true})),
    ];
    let before = {
        let db = Database::open(dir.path()).unwrap();
        let c = db.collection("people").unwrap();
        for s in &specs {
            c.create_index(s.clone()).unwrap();
        }
        let docs: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"_id": i, "age": i % 50, "email": format!("u{i}@x"),
                       "tags": [format!("t{}", i % 7), format!("t{}", i % 11)],
                       "score": i, "active": i % 2 == 0})
            })
            .collect();
        c.insert_many(docs).unwrap();
        c.drop_index("score_1").unwrap();
        c.list_indexes().unwrap()
        // db and c dropped here: the environment closes.
    };
    assert_eq!(before.len(), 3);

    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("people").unwrap();
    assert_eq!(c.list_indexes().unwrap(), before);

    let e = c.explain(json!({"age": 7})).unwrap();
    assert_ixscan(&e, "age_1");
    assert_eq!(e.stats.returned, 20);
    // The multikey flag survived: tags cannot cover a count or give a sort.
    let e = c.explain_count(json!({"tags": "t3"})).unwrap();
    assert_ixscan(&e, "tags_1");
    assert!(!e.covered);
    // The unique constraint is still enforced.
    dup_key(
        c.insert_one(json!({"_id": 5000, "email": "u1@x"}))
            .unwrap_err(),
    );
    // The dropped index stayed dropped.
    assert_collscan(&c.explain(json!({"score": 5, "active": true})).unwrap());

    // Writes after reopen maintain the indexes.
    c.insert_one(json!({"_id": 5000, "age": 7, "email": "new@x", "tags": ["t3", "new"]}))
        .unwrap();
    c.update_many(json!({"age": 8}), json!({"$set": {"age": 7}}))
        .unwrap();
    c.delete_many(json!({"_id": {"$lt": 100}})).unwrap();
    let e = c.explain(json!({"age": 7})).unwrap();
    assert_ixscan(&e, "age_1");
    assert_eq!(e.stats.returned, 18 + 18 + 1);
    assert_eq!(e.stats.keys_examined, 37, "no stale entries: {e:#?}");
    assert_eq!(c.count(json!({"age": 8})).unwrap(), 0);
    assert_eq!(
        ids(&c.find(json!({"tags": "new"})).to_vec().unwrap()),
        vec![json!(5000)]
    );
    c.insert_one(json!({"_id": 5001, "email": "u1@x"})).unwrap();
    dup_key(
        c.insert_one(json!({"_id": 5002, "email": "new@x"}))
            .unwrap_err(),
    );
}

// db.collection.createIndex (above): key patterns with no field, a direction
// other than 1 / -1 for an ascending/descending index, repeated fields or
// `$`-prefixed path parts are invalid.
#[test]
fn invalid_index_specifications_are_rejected() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    c.insert_one(json!({"a": 1})).unwrap();
    let cases = vec![
        IndexSpec::new(Vec::<(&str, i32)>::new()),
        IndexSpec::new([("a", 2)]),
        IndexSpec::new([("a", 0)]),
        IndexSpec::new([("a", 1), ("a", -1)]),
        IndexSpec::new([("$a", 1)]),
        IndexSpec::new([("a.$b", 1)]),
        IndexSpec::new([("", 1)]),
        IndexSpec::new([("a..b", 1)]),
        IndexSpec::new([("a", 1)]).name("_id_"),
        IndexSpec::new([("a", 1)]).name(""),
        IndexSpec::new([("a", 1)]).partial(json!({"a": {"$bogus": 1}})),
    ];
    for spec in cases {
        let err = c.create_index(spec.clone()).unwrap_err();
        assert!(matches!(err, Error::InvalidIndex(_)), "{spec:?}: {err:?}");
    }
    assert!(c.list_indexes().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// 7. Index maintenance under updates and deletes
// ---------------------------------------------------------------------------

fn random_doc(r: &mut Lcg, id: i64) -> Value {
    let mut d = json!({"_id": id, "city": format!("c{}", r.below(6)), "score": r.below(500)});
    match r.below(20) {
        0 => {}
        1 => d["age"] = Value::Null,
        _ => d["age"] = json!(r.below(60)),
    }
    if r.below(5) != 0 {
        let n = r.below(4);
        let tags: Vec<String> = (0..n).map(|_| format!("t{}", r.below(30))).collect();
        d["tags"] = json!(tags);
    }
    if r.below(3) == 0 {
        d["nick"] = json!(format!("n{}", r.below(50)));
    }
    d["addr"] = json!({"zip": r.below(30)});
    d["active"] = json!(r.below(2) == 0);
    d
}

fn maintenance_queries(t: &Twin) {
    let filters = [
        json!({"age": 7}),
        json!({"age": {"$gte": 20, "$lt": 30}}),
        json!({"age": {"$gt": 50}}),
        json!({"age": null}),
        json!({"age": {"$exists": false}}),
        json!({"city": "c1", "age": {"$lt": 30}}),
        json!({"city": "c2"}),
        json!({"city": {"$in": ["c4", "c5"]}, "age": 3}),
        json!({"tags": "t3"}),
        json!({"tags": "t8"}),
        json!({"tags": {"$in": ["t1", "t7"]}}),
        json!({"tags": {"$all": ["t1", "t2"]}}),
        json!({"tags": {"$gte": "t5"}}),
        json!({"score": {"$gt": 400}}),
        json!({"score": {"$gte": 100, "$lte": 120}}),
        json!({"addr.zip": 7}),
        json!({"addr.zip": 99}),
        json!({"nick": "n3"}),
        json!({"nick": {"$exists": true}}),
        json!({"$or": [{"age": 5}, {"tags": "t9"}]}),
        json!({"score": {"$gt": 250}, "active": true}),
        json!({"active": true}),
    ];
    for f in filters {
        t.check(f);
    }
    let sorted = [
        (json!({"age": {"$gt": 10}}), json!({"age": 1, "_id": 1}), 15),
        (json!({"city": "c3"}), json!({"age": -1, "_id": 1}), 7),
        (json!({}), json!({"score": -1, "_id": 1}), 12),
        (json!({"active": true}), json!({"score": 1, "_id": 1}), 9),
        (json!({}), json!({"age": 1}), 0),
    ];
    for (f, s, l) in sorted {
        t.check_sorted(f, s, l);
    }
    // The indexes are really used, so the comparison above means something.
    assert_ixscan(&t.ix.explain(json!({"age": 7})).unwrap(), "age_1");
    assert_ixscan(&t.ix.explain(json!({"tags": "t3"})).unwrap(), "tags_1");
    assert_ixscan(&t.ix.explain(json!({"addr.zip": 7})).unwrap(), "addr.zip_1");
    assert_ixscan(&t.ix.explain(json!({"nick": "n3"})).unwrap(), "nick_1");
    // Covered counts read entries only: a stale or missing entry would show.
    for f in [
        json!({"age": {"$gte": 0}}),
        json!({"age": null}),
        json!({"addr.zip": {"$lt": 10}}),
        json!({"city": "c0", "age": {"$lt": 20}}),
        json!({"score": {"$gt": 250}, "active": true}),
    ] {
        let e = t.ix.explain_count(f.clone()).unwrap();
        assert!(e.covered, "{f}: {e:#?}");
        assert_eq!(e.stats.returned, t.plain.count(f.clone()).unwrap(), "{f}");
    }
}

// MongoDB manual, Indexes (https://www.mongodb.com/docs/manual/indexes/):
// indexes are kept up to date by every write; an indexed query must return
// exactly what a collection scan returns, after any sequence of writes.
#[test]
fn indexes_stay_consistent_under_updates_and_deletes() {
    let (_d, db) = open();
    let mut r = Lcg(42);
    let docs: Vec<Value> = (0..1500).map(|i| random_doc(&mut r, i)).collect();
    let t = twin(
        &db,
        &docs,
        &[
            IndexSpec::new([("age", 1)]),
            IndexSpec::new([("city", 1), ("age", -1)]),
            IndexSpec::new([("tags", 1)]),
            IndexSpec::new([("score", -1)]),
            IndexSpec::new([("addr.zip", 1)]),
            IndexSpec::new([("nick", 1)]).sparse(),
            IndexSpec::new([("score", 1)])
                .partial(json!({"active": true}))
                .name("active_score"),
        ],
    );
    maintenance_queries(&t);

    type Step = Box<dyn Fn(&Collection) -> Value>;
    let steps: Vec<(&str, Step)> = vec![
        (
            "update_many $inc on indexed field",
            Box::new(|c| {
                let r = c
                    .update_many(json!({"age": {"$gte": 50}}), json!({"$inc": {"age": -45}}))
                    .unwrap();
                json!([r.matched_count, r.modified_count])
            }),
        ),
        (
            "update_many $set on compound and embedded fields",
            Box::new(|c| {
                let r = c
                    .update_many(
                        json!({"city": "c1"}),
                        json!({"$set": {"city": "c5", "addr.zip": 99}}),
                    )
                    .unwrap();
                json!([r.matched_count, r.modified_count])
            }),
        ),
        (
            "$push into the multikey array",
            Box::new(|c| {
                let a = c
                    .update_many(json!({"tags": "t2"}), json!({"$push": {"tags": "t8"}}))
                    .unwrap();
                let b = c
                    .update_many(
                        json!({"age": {"$lt": 5}}),
                        json!({"$push": {"tags": {"$each": ["t0", "t1"]}}}),
                    )
                    .unwrap();
                json!([
                    a.matched_count,
                    a.modified_count,
                    b.matched_count,
                    b.modified_count
                ])
            }),
        ),
        (
            "$pull and $addToSet",
            Box::new(|c| {
                let a = c
                    .update_many(json!({"tags": "t5"}), json!({"$pull": {"tags": "t5"}}))
                    .unwrap();
                let b = c
                    .update_many(
                        json!({"score": {"$lt": 60}}),
                        json!({"$addToSet": {"tags": "t9"}}),
                    )
                    .unwrap();
                json!([a.modified_count, b.modified_count])
            }),
        ),
        (
            "$unset and $set of sparse and partial fields",
            Box::new(|c| {
                let a = c
                    .update_many(
                        json!({"score": {"$lt": 50}}),
                        json!({"$unset": {"age": "", "nick": ""}}),
                    )
                    .unwrap();
                let b = c
                    .update_many(
                        json!({"age": 7}),
                        json!({"$set": {"nick": "n3", "active": true}}),
                    )
                    .unwrap();
                let d = c
                    .update_many(
                        json!({"score": {"$gt": 450}}),
                        json!({"$set": {"active": false}}),
                    )
                    .unwrap();
                json!([a.modified_count, b.modified_count, d.modified_count])
            }),
        ),
        (
            "replace_one and upsert",
            Box::new(|c| {
                c.replace_one(
                    json!({"_id": 3}),
                    json!({"age": 1, "tags": ["t0", "t3"], "score": 7, "addr": {"zip": 1}}),
                )
                .unwrap();
                c.update_one_with(
                    json!({"_id": 7777, "age": 33}),
                    json!({"$set": {"tags": ["t4"], "score": 301, "active": true}}),
                    collection_store::UpdateOptions::upsert(),
                )
                .unwrap();
                json!(null)
            }),
        ),
        (
            "delete_many by indexed range and multikey value",
            Box::new(|c| {
                let a = c
                    .delete_many(json!({"age": {"$gte": 30, "$lt": 35}}))
                    .unwrap();
                let b = c.delete_many(json!({"tags": "t8"})).unwrap();
                let d = c.delete_one(json!({"city": "c0"})).unwrap();
                json!([a, b, d])
            }),
        ),
        (
            "insert after deletes",
            Box::new(|c| {
                let mut r = Lcg(7);
                let docs: Vec<Value> = (2000..2300).map(|i| random_doc(&mut r, i)).collect();
                c.insert_many(docs).unwrap();
                json!(null)
            }),
        ),
    ];
    for (what, step) in steps {
        let a = step(&t.ix);
        let b = step(&t.plain);
        assert_eq!(a, b, "{what}: statement results differ");
        maintenance_queries(&t);
    }
    assert_eq!(
        t.ix.count(json!({})).unwrap(),
        t.plain.count(json!({})).unwrap()
    );
}

// An update whose filter uses an index on the field it changes must still
// update each matching document exactly once (db.collection.updateMany,
// https://www.mongodb.com/docs/manual/reference/method/db.collection.updateMany/:
// "Updates all documents that match the specified filter").
#[test]
fn update_many_through_the_index_it_changes_updates_each_document_once() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    c.create_index(IndexSpec::new([("age", 1)])).unwrap();
    c.create_index(IndexSpec::new([("tags", 1)])).unwrap();
    let docs: Vec<Value> = people(2000)
        .into_iter()
        .map(|mut d| {
            let i = d["_id"].as_i64().unwrap();
            d["tags"] = json!([format!("t{}", i % 10), format!("t{}", (i + 1) % 10)]);
            d
        })
        .collect();
    c.insert_many(docs).unwrap();

    assert_ixscan(&c.explain(json!({"age": {"$gte": 95}})).unwrap(), "age_1");
    let r = c
        .update_many(json!({"age": {"$gte": 95}}), json!({"$inc": {"age": 1000}}))
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (100, 100));
    assert_eq!(
        c.count(json!({"age": {"$gte": 1095, "$lt": 1100}}))
            .unwrap(),
        100
    );
    assert_eq!(
        c.count(json!({"age": {"$gte": 95, "$lt": 1000}})).unwrap(),
        0
    );
    assert_eq!(c.count(json!({"age": {"$gte": 2000}})).unwrap(), 0);

    let r = c
        .update_many(json!({"tags": "t3"}), json!({"$push": {"tags": "t3"}}))
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (400, 400));
    let hit = c.find(json!({"tags": "t3"})).to_vec().unwrap();
    assert_eq!(hit.len(), 400);
    for d in &hit {
        let n = d["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| *t == "t3")
            .count();
        assert_eq!(n, 2, "{d}");
    }

    let n = c
        .delete_many(json!({"tags": {"$in": ["t3", "t4"]}}))
        .unwrap();
    assert_eq!(n, 600);
    assert_eq!(c.count(json!({})).unwrap(), 1400);
    assert_eq!(c.find(json!({})).to_vec().unwrap().len(), 1400);
    assert_eq!(c.count(json!({"tags": "t4"})).unwrap(), 0);
}
