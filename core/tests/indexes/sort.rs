//! Sort by index and early stop.
//! Runs on every front end (see `common/front.rs`).

use super::*;

// MongoDB manual, Use Indexes to Sort Query Results
// (https://www.mongodb.com/docs/manual/tutorial/sort-results-with-indexes/):
// "Since indexes contain ordered records, MongoDB can obtain the results of a
// sort from an index ... MongoDB can traverse the index in either direction."
// With a limit the walk stops after `limit` matches.
fn range_with_sort_on_the_index_field_stops_early() {
    let db = Db::new();
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
fn descending_sort_walks_the_index_backwards() {
    let db = Db::new();
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
fn descending_index_serves_both_sort_directions() {
    let db = Db::new();
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
fn compound_index_equality_prefix_provides_the_sort_on_the_next_field() {
    let db = Db::new();
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
fn a_sort_the_index_cannot_provide_is_done_in_memory() {
    let db = Db::new();
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
fn full_index_scan_provides_a_sort_without_a_filter() {
    let db = Db::new();
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
fn sort_on_id_uses_the_collection_order() {
    let db = Db::new();
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
fn in_with_a_sort_on_the_same_field_is_index_ordered() {
    let db = Db::new();
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

crate::suite!(
    range_with_sort_on_the_index_field_stops_early,
    descending_sort_walks_the_index_backwards,
    descending_index_serves_both_sort_directions,
    compound_index_equality_prefix_provides_the_sort_on_the_next_field,
    a_sort_the_index_cannot_provide_is_done_in_memory,
    full_index_scan_provides_a_sort_without_a_filter,
    sort_on_id_uses_the_collection_order,
    in_with_a_sort_on_the_same_field_is_index_ordered,
);
