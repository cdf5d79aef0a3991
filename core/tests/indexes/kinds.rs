//! Index kinds against MongoDB's documented behaviour.
//! Runs on every front end (see `common/front.rs`).

use super::*;

// MongoDB manual, Unique Indexes
// (https://www.mongodb.com/docs/manual/core/index-unique/): "A unique index
// ensures that the indexed fields do not store duplicate values"; a violating
// write fails with a duplicate key error (E11000) naming the index, and
// changes nothing.
fn unique_index_rejects_a_duplicate_insert_and_changes_nothing() {
    let db = Db::new();
    let users = db.collection("users");
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
    let c = db.collection("named");
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
fn unique_index_rejects_a_violating_update() {
    let db = Db::new();
    let users = db.collection("users");
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
fn unique_index_treats_missing_as_null() {
    let db = Db::new();
    let users = db.collection("users");
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
    let c = db.collection("compound");
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
fn unique_sparse_index_allows_many_documents_without_the_field() {
    let db = Db::new();
    let c = db.collection("scores");
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
fn unique_partial_index_only_constrains_matching_documents() {
    let db = Db::new();
    let users = db.collection("users");
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
fn unique_multikey_index_is_checked_across_documents_only() {
    let db = Db::new();
    let c = db.collection("c");
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
fn sparse_index_is_not_used_when_it_would_miss_documents() {
    let db = Db::new();
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
fn partial_index_is_used_only_when_the_query_implies_its_filter() {
    let db = Db::new();
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
fn multikey_index_indexes_each_array_element() {
    let db = Db::new();
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
    // Duplicates are dropped before the fetch: every document is read from
    // the documents table once (docs_examined counts fetches), and each
    // matches (the bounds are exact).
    assert_eq!(e.stats.docs_examined, found.len() as u64, "{e:#?}");

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
fn compound_index_rejects_parallel_arrays() {
    let db = Db::new();
    let c = db.collection("c");
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
    let d = db.collection("d");
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
    let e = db.collection("e");
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
fn multikey_ranges_and_elem_match_return_correct_results() {
    let db = Db::new();
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
fn null_and_missing_on_embedded_paths_agree_with_the_matcher() {
    let db = Db::new();
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
fn index_order_equals_in_memory_sort_across_types() {
    let db = Db::new();
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

crate::suite!(
    unique_index_rejects_a_duplicate_insert_and_changes_nothing,
    unique_index_rejects_a_violating_update,
    unique_index_treats_missing_as_null,
    unique_sparse_index_allows_many_documents_without_the_field,
    unique_partial_index_only_constrains_matching_documents,
    unique_multikey_index_is_checked_across_documents_only,
    sparse_index_is_not_used_when_it_would_miss_documents,
    partial_index_is_used_only_when_the_query_implies_its_filter,
    multikey_index_indexes_each_array_element,
    compound_index_rejects_parallel_arrays,
    multikey_ranges_and_elem_match_return_correct_results,
    null_and_missing_on_embedded_paths_agree_with_the_matcher,
    index_order_equals_in_memory_sort_across_types,
);
