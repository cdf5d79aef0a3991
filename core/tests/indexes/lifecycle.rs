//! Index lifecycle.

use super::*;

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
    let db = Db::on(Front::Direct);
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
