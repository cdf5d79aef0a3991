//! Index maintenance under updates and deletes.
//! Runs on every front end (see `common/front.rs`).

use super::*;

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
fn indexes_stay_consistent_under_updates_and_deletes() {
    let db = Db::new();
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

    type Step = Box<dyn Fn(&C<'_>) -> Value>;
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
fn update_many_through_the_index_it_changes_updates_each_document_once() {
    let db = Db::new();
    let c = db.collection("c");
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

crate::suite!(
    indexes_stay_consistent_under_updates_and_deletes,
    update_many_through_the_index_it_changes_updates_each_document_once,
);
