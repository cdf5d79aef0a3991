//! Typed and untyped access agree about the primary key. A collection declared
//! with `#[document(id)] id` keeps its key in `id`; an untyped document that
//! carries `_id` there is refused with `Error::IdFieldMismatch` (it would be
//! stored as a plain field under a generated `id`, and typed reads would fail),
//! by insert, replacement, update and upsert alike, and nothing is written.

use collection_store::{Database, Error, UpdateOptions};
use collection_store_schemas::sample;
use collection_store_schemas::User;
use serde_json::json;

fn mismatch(e: Error) -> String {
    match e {
        Error::IdFieldMismatch { ref id_field } => {
            assert!(e.to_string().contains("'id'"), "{e}");
            id_field.clone()
        }
        other => panic!("expected IdFieldMismatch, got {other:?}"),
    }
}

#[test]
fn untyped_writes_with_underscore_id_are_refused_in_an_id_collection() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let users = db.typed::<User>().unwrap();
    users.insert_one(&sample::user(1)).unwrap();
    // The untyped handle on the same collection picks up its stored id field.
    let raw = db.collection("users").unwrap();
    assert_eq!(raw.id_field(), "id");

    let mut with_underscore = serde_json::to_value(sample::user(2)).unwrap();
    with_underscore
        .as_object_mut()
        .unwrap()
        .remove("id")
        .unwrap();
    with_underscore["_id"] = json!(2);
    assert_eq!(
        mismatch(raw.insert_one(with_underscore.clone()).unwrap_err()),
        "id"
    );
    assert_eq!(
        mismatch(raw.insert_many(vec![with_underscore.clone()]).unwrap_err()),
        "id"
    );
    // Both fields at once is refused too: `_id` would still be a plain field.
    let mut both = with_underscore.clone();
    both["id"] = json!(3);
    mismatch(raw.insert_one(both).unwrap_err());

    // Updates that would add `_id` to a stored document.
    mismatch(
        raw.update_one(json!({"id": 1}), json!({"$set": {"_id": 1}}))
            .unwrap_err(),
    );
    mismatch(
        raw.update_one(json!({"id": 1}), json!({"$rename": {"name": "_id"}}))
            .unwrap_err(),
    );
    let mut replacement = serde_json::to_value(sample::user(1)).unwrap();
    replacement["_id"] = json!(1);
    mismatch(raw.replace_one(json!({"id": 1}), replacement).unwrap_err());
    // An upsert that would insert one.
    mismatch(
        raw.update_one_with(
            json!({"_id": 9}),
            json!({"$set": {"name": "Nine"}}),
            UpdateOptions::upsert(),
        )
        .unwrap_err(),
    );

    // Nothing was written: one document, which still reads as a `User`.
    assert_eq!(raw.count(json!({})).unwrap(), 1);
    assert_eq!(raw.count(json!({"_id": {"$exists": true}})).unwrap(), 0);
    let all: Vec<User> = users.find(User::fields().id().gte(0)).to_vec().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, 1);

    // Writes that use the declared key work untyped and read back typed.
    let mut good = serde_json::to_value(sample::user(4)).unwrap();
    good["id"] = json!(4);
    raw.insert_one(good).unwrap();
    assert_eq!(users.get(&4).unwrap().map(|u| u.id), Some(4));
}

#[test]
fn underscore_id_collections_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("plain").unwrap();
    assert_eq!(c.id_field(), "_id");
    // `id` is an ordinary field where the key is `_id`.
    c.insert_one(json!({"_id": 1, "id": "not the key"}))
        .unwrap();
    c.update_one(json!({"_id": 1}), json!({"$set": {"id": 2}}))
        .unwrap();
    assert_eq!(c.count(json!({"id": 2})).unwrap(), 1);
}
