//! Covered counts.
//! Runs on every front end (see `common/front.rs`).

use super::*;

// MongoDB manual, Covered Query
// (https://www.mongodb.com/docs/manual/core/query-optimization/#covered-query):
// "An index covers a query when ... all the fields in the query are part of
// an index"; "querying only the index can be much faster than querying
// documents" — explain shows totalDocsExamined 0.
fn count_of_an_indexed_range_is_covered() {
    let db = Db::new();
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
fn counts_that_need_documents_are_not_covered() {
    let db = Db::new();
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
    let c = db.collection("nulls");
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

fn count_with_a_very_long_in_list_is_exact() {
    let db = Db::new();
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

crate::suite!(
    count_of_an_indexed_range_is_covered,
    counts_that_need_documents_are_not_covered,
    count_with_a_very_long_in_list_is_exact,
);
