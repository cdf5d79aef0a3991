//! Storage behaviour: persistence across reopen, automatic map growth,
//! catalog, custom primary keys, and the process-wide handle registry.

use collection_store::{CollectionOptions, Database, DatabaseOptions, Error};
use serde_json::json;

#[test]
fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let c = db.collection("users").unwrap();
        c.insert_many(vec![
            json!({"_id": 1, "name": "Ann"}),
            json!({"_id": 2, "name": "Bob"}),
        ])
        .unwrap();
        db.collection_with("people", CollectionOptions::with_id_field("id"))
            .unwrap()
            .insert_one(json!({"id": "p1"}))
            .unwrap();
    }
    let db = Database::open(dir.path()).unwrap();
    let mut names = db.list_collections().unwrap();
    names.sort();
    assert_eq!(names, ["people", "users"]);
    let c = db.collection("users").unwrap();
    assert_eq!(
        c.find_one(json!({"_id": 2})).unwrap().unwrap()["name"],
        "Bob"
    );
    let p = db.collection("people").unwrap();
    assert_eq!(p.id_field(), "id");
    assert_eq!(
        p.find_one(json!({"id": "p1"})).unwrap().unwrap(),
        json!({"id": "p1"})
    );
}

#[test]
fn opening_twice_in_one_process_shares_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let a = Database::open(dir.path()).unwrap();
    let b = Database::open(dir.path()).unwrap();
    a.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 1}))
        .unwrap();
    assert_eq!(b.collection("c").unwrap().count(json!({})).unwrap(), 1);
}

#[test]
fn map_grows_past_its_initial_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().initial_map_size(1 << 20),
    )
    .unwrap();
    let c = db.collection("big").unwrap();
    let blob = "x".repeat(4000);
    // 6,000 documents of ~4 KB: ~24 MB, 24 times the initial 1 MiB map, in
    // single inserts, batches, and one explicit multi-statement transaction.
    for i in 0..1000 {
        c.insert_one(json!({"_id": i, "blob": blob})).unwrap();
    }
    for batch in 1..5 {
        c.insert_many(
            (0..1000)
                .map(|i| json!({"_id": batch * 1000 + i, "blob": blob}))
                .collect(),
        )
        .unwrap();
    }
    db.transaction(|tx| {
        let c = tx.collection("big")?;
        for i in 5000..6000 {
            c.insert_one(json!({"_id": i, "blob": blob}))?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(c.count(json!({})).unwrap(), 6000);
    drop(c);
    drop(db);
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().initial_map_size(1 << 20),
    )
    .unwrap();
    assert_eq!(
        db.collection("big").unwrap().count(json!({})).unwrap(),
        6000
    );
}

#[test]
fn custom_id_field_is_the_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db
        .collection_with("t", CollectionOptions::with_id_field("id"))
        .unwrap();
    let id = c.insert_one(json!({"name": "x"})).unwrap();
    assert!(
        id.as_str().is_some_and(|s| s.len() == 24),
        "generated ObjectId hex: {id}"
    );
    c.insert_one(json!({"id": 7, "name": "y"})).unwrap();
    assert!(matches!(
        c.insert_one(json!({"id": 7})).unwrap_err(),
        Error::DuplicateKey { .. }
    ));
    assert!(matches!(
        c.update_one(json!({"id": 7}), json!({"$set": {"id": 8}}))
            .unwrap_err(),
        Error::ImmutableField { .. }
    ));
    // `_id` is refused here: it would be a plain field beside the key.
    assert!(matches!(
        c.insert_one(json!({"id": 9, "_id": 1})).unwrap_err(),
        Error::IdFieldMismatch { .. }
    ));
    // The projection rule follows the configured key.
    let v = c
        .find(json!({"id": 7}))
        .projection(json!({"name": 1}))
        .to_vec()
        .unwrap();
    assert_eq!(v, vec![json!({"id": 7, "name": "y"})]);
    assert!(matches!(
        db.collection_with("t", CollectionOptions::with_id_field("other"))
            .unwrap_err(),
        Error::CollectionOptionsMismatch { .. }
    ));
}

#[test]
fn drop_collection_removes_documents() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    c.insert_many((0..10).map(|i| json!({"_id": i})).collect())
        .unwrap();
    assert!(db.drop_collection("c").unwrap());
    assert!(!db.drop_collection("c").unwrap());
    assert_eq!(c.count(json!({})).unwrap(), 0);
    // Writing through an old handle re-creates the collection, as in MongoDB.
    c.insert_one(json!({"_id": 1})).unwrap();
    assert_eq!(db.collection("c").unwrap().count(json!({})).unwrap(), 1);
}

#[test]
fn bad_collection_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for name in ["", "$x", "a\0b"] {
        assert!(
            matches!(
                db.collection(name).unwrap_err(),
                Error::InvalidCollection(_)
            ),
            "{name:?}"
        );
    }
}

#[test]
fn generated_ids_are_unique_and_returned() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    let ids = c
        .insert_many((0..100).map(|i| json!({"n": i})).collect())
        .unwrap();
    let mut uniq = ids.clone();
    uniq.sort_by_key(|v| v.to_string());
    uniq.dedup();
    assert_eq!(uniq.len(), 100);
    let first = c.find_one(json!({"_id": ids[0].clone()})).unwrap().unwrap();
    assert_eq!(first["n"], 0);
    // The key is stored first, as in MongoDB.
    assert_eq!(first.as_object().unwrap().keys().next().unwrap(), "_id");
}

#[test]
fn read_only_database_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        db.collection("c")
            .unwrap()
            .insert_one(json!({"_id": 1}))
            .unwrap();
    }
    let db = Database::open_with(dir.path(), DatabaseOptions::default().read_only(true)).unwrap();
    let c = db.collection("c").unwrap();
    assert_eq!(c.count(json!({})).unwrap(), 1);
    assert!(matches!(
        c.insert_one(json!({"_id": 2})).unwrap_err(),
        Error::ReadOnly
    ));
    assert!(matches!(db.begin().unwrap_err(), Error::ReadOnly));
}

#[test]
fn typed_reads_decode_integers_beyond_i64() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Row {
        _id: u64,
        big: u64,
        small: i32,
    }
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    c.insert_one(json!({"_id": 1, "big": u64::MAX, "small": -5}))
        .unwrap();
    c.insert_one(json!({"_id": 2, "big": 7, "small": 1}))
        .unwrap();
    let rows: Vec<Row> = c.find(json!({})).to_vec_as().unwrap();
    assert_eq!(
        rows,
        vec![
            Row {
                _id: 1,
                big: u64::MAX,
                small: -5
            },
            Row {
                _id: 2,
                big: 7,
                small: 1
            }
        ]
    );
    // u64::MAX stays exact through the untyped API and in comparisons.
    assert_eq!(
        c.find_one(json!({"big": {"$gt": i64::MAX}}))
            .unwrap()
            .unwrap()["big"],
        json!(u64::MAX)
    );
    // A document that does not fit names itself in the error.
    c.insert_one(json!({"_id": 3, "big": "not a number", "small": 0}))
        .unwrap();
    let err = c.find(json!({})).to_vec_as::<Row>().unwrap_err();
    assert!(
        matches!(&err, Error::Decode { id, .. } if id == "3"),
        "{err:?}"
    );
}

#[test]
fn get_by_primary_key() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Person {
        id: String,
        age: u32,
    }
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db
        .collection_with("people", CollectionOptions::with_id_field("id"))
        .unwrap();
    c.insert_many(vec![
        json!({"id": "a", "age": 3}),
        json!({"id": "b", "age": 4}),
    ])
    .unwrap();
    assert_eq!(
        c.get(json!("b")).unwrap(),
        Some(json!({"id": "b", "age": 4}))
    );
    assert_eq!(c.get(json!("zz")).unwrap(), None);
    assert_eq!(
        c.get_as::<Person>(json!("a")).unwrap(),
        Some(Person {
            id: "a".into(),
            age: 3
        })
    );
    assert!(matches!(
        c.get(json!([1])).unwrap_err(),
        Error::InvalidDocument(_)
    ));
    // Numbers compare by value: 1 and 1.0 are the same key.
    let n = db.collection("n").unwrap();
    n.insert_one(json!({"_id": 1, "v": true})).unwrap();
    assert_eq!(n.get(json!(1.0)).unwrap().unwrap()["v"], true);
    // A collection that does not exist yet has nothing.
    assert_eq!(db.collection("fresh").unwrap().get(json!(1)).unwrap(), None);
}
