//! Which shapes use an index.
//! Runs on every front end (see `common/front.rs`).

use super::*;

// MongoDB manual, Single Field Indexes
// (https://www.mongodb.com/docs/manual/core/index-single/): an index on a
// field supports equality matches on it; explain reports the index scan as an
// IXSCAN stage with totalKeysExamined / totalDocsExamined
// (https://www.mongodb.com/docs/manual/reference/explain-results/).
fn equality_uses_the_index_and_examines_only_matching_entries() {
    let db = Db::new();
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
fn each_comparison_operator_uses_a_bounded_index_range() {
    let db = Db::new();
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
fn two_sided_range_is_one_interval() {
    let db = Db::new();
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
fn in_scans_one_point_interval_per_value() {
    let db = Db::new();
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

fn in_bounds_in_explain_are_sorted_and_distinct() {
    let db = Db::new();
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
fn compound_index_prefix_equality_then_range() {
    let db = Db::new();
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
fn null_equality_and_exists_false_use_a_non_sparse_index() {
    let db = Db::new();
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
fn or_with_every_branch_indexed_is_a_deduplicated_union() {
    let db = Db::new();
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
fn or_with_id_branch_and_index_branch_returns_each_document_once() {
    let db = Db::new();
    let docs = people(2000);
    let t = twin(&db, &docs, &[IndexSpec::new([("age", 1)])]);
    // Document 7 has age 7: it matches both branches.
    let (found, e) = t.check(json!({"$or": [{"_id": 7}, {"age": 7}]}));
    assert_eq!(found.len(), 20);
    assert!(no_duplicate_ids(&found), "{:?}", ids(&found));
    assert_eq!(e.stage, "OR");
}

// Same rule, two primary-key ranges that overlap.
fn or_with_overlapping_id_branches_returns_each_document_once() {
    let db = Db::new();
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
fn write_with_overlapping_or_branches_touches_each_document_once() {
    let db = Db::new();
    let c = db.collection("c");
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
fn primary_key_lookups_and_ranges() {
    let db = Db::new();
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
fn non_indexable_shapes_fall_back_to_a_collection_scan() {
    let db = Db::new();
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

crate::suite!(
    equality_uses_the_index_and_examines_only_matching_entries,
    each_comparison_operator_uses_a_bounded_index_range,
    two_sided_range_is_one_interval,
    in_scans_one_point_interval_per_value,
    in_bounds_in_explain_are_sorted_and_distinct,
    compound_index_prefix_equality_then_range,
    null_equality_and_exists_false_use_a_non_sparse_index,
    or_with_every_branch_indexed_is_a_deduplicated_union,
    or_with_id_branch_and_index_branch_returns_each_document_once,
    or_with_overlapping_id_branches_returns_each_document_once,
    write_with_overlapping_or_branches_touches_each_document_once,
    primary_key_lookups_and_ranges,
    non_indexable_shapes_fall_back_to_a_collection_scan,
);
