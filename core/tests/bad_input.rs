//! Bad input gets a typed error with an actionable message, changes nothing,
//! and never panics.

use collection_store::{Collection, Database, Error, MAX_DOCUMENT_SIZE};
use serde_json::{json, Value};

fn setup() -> (tempfile::TempDir, Database, Collection) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    c.insert_many(vec![
        json!({"_id": 1, "name": "Ann", "n": 1, "tags": ["a"]}),
        json!({"_id": 2, "name": "Bob", "n": 2, "tags": []}),
    ])
    .unwrap();
    (dir, db, c)
}

fn snapshot(c: &Collection) -> Vec<Value> {
    c.find(json!({})).to_vec().unwrap()
}

#[test]
fn malformed_documents() {
    let (_d, _db, c) = setup();
    let before = snapshot(&c);
    let cases: Vec<(Value, &str)> = vec![
        (json!([1, 2]), "must be a JSON object"),
        (json!("text"), "must be a JSON object"),
        (json!({"$set": 1}), "starts with '$'"),
        (json!({"a": {"$x": 1}}), "starts with '$'"),
        (json!({"a\u{0}b": 1}), "NUL"),
        (json!({"a.b": 1}), "contains '.'"),
        (json!({"a": [{"b.c": 1}]}), "contains '.'"),
        (json!({"_id": [1, 2]}), "cannot be an array"),
        (json!({"_id": {"k": [1]}}), "cannot be an array"),
        (json!({"d": {"$date": "yesterday"}}), "Extended JSON"),
    ];
    for (doc, needle) in cases {
        let err = c.insert_one(doc.clone()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidDocument(_)),
            "{doc}: expected InvalidDocument, got {err:?}"
        );
        assert!(
            err.to_string().contains(needle),
            "{doc}: message {err} lacks {needle:?}"
        );
    }
    // insert_many with one bad document inserts none of them.
    assert!(c
        .insert_many(vec![json!({"_id": 5}), json!({"$bad": 1})])
        .is_err());
    assert_eq!(snapshot(&c), before);
}

#[test]
fn duplicate_primary_key() {
    let (_d, _db, c) = setup();
    let err = c
        .insert_one(json!({"_id": 1, "name": "again"}))
        .unwrap_err();
    match &err {
        Error::DuplicateKey { index, key } => {
            assert_eq!(index, "_id_");
            assert!(key.contains('1'));
        }
        other => panic!("expected DuplicateKey, got {other:?}"),
    }
    // 1 and 1.0 are the same key, as in MongoDB.
    assert!(matches!(
        c.insert_one(json!({"_id": 1.0})).unwrap_err(),
        Error::DuplicateKey { .. }
    ));
    // Duplicates inside one insert_many: nothing is inserted.
    assert!(c
        .insert_many(vec![json!({"_id": 7}), json!({"_id": 7})])
        .is_err());
    assert_eq!(c.count(json!({"_id": 7})).unwrap(), 0);
}

#[test]
fn oversized_document() {
    let (_d, _db, c) = setup();
    let big = "x".repeat(MAX_DOCUMENT_SIZE);
    let err = c.insert_one(json!({"_id": 9, "blob": big})).unwrap_err();
    assert!(
        matches!(err, Error::DocumentTooLarge { limit, .. } if limit == MAX_DOCUMENT_SIZE),
        "{err:?}"
    );
    assert_eq!(c.count(json!({"_id": 9})).unwrap(), 0);
    // Growing a document past the limit through an update fails the same way.
    let half = "y".repeat(MAX_DOCUMENT_SIZE / 2 + 10);
    c.update_one(json!({"_id": 1}), json!({"$set": {"a": half.clone()}}))
        .unwrap();
    let err = c
        .update_one(json!({"_id": 1}), json!({"$set": {"b": half}}))
        .unwrap_err();
    assert!(matches!(err, Error::DocumentTooLarge { .. }), "{err:?}");
    assert!(c
        .find_one(json!({"_id": 1}))
        .unwrap()
        .unwrap()
        .get("b")
        .is_none());
}

#[test]
fn malformed_updates() {
    let (_d, _db, c) = setup();
    let before = snapshot(&c);
    let cases: Vec<Value> = vec![
        json!({}),
        json!([1]),
        json!({"$set": {"a": 1}, "b": 2}),
        json!({"$sett": {"a": 1}}),
        json!({"$set": 5}),
        json!({"$set": {"a": 1}, "$inc": {"a": 1}}),
        json!({"$set": {"a": 1}, "$unset": {"a.b": ""}}),
        json!({"$inc": {"n": "one"}}),
        json!({"$pop": {"tags": 2}}),
        json!({"$set": {"a.$": 1}}),
        json!({"$set": {"": 1}}),
        json!({"$push": {"tags": {"$slice": 1}}}),
        json!({"$rename": {"a": 5}}),
    ];
    for u in cases {
        let err = c.update_many(json!({}), u.clone()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidUpdate(_)),
            "{u}: expected InvalidUpdate, got {err:?}"
        );
    }
    // A replacement document is refused by update_*, operators by replace_one.
    assert!(matches!(
        c.update_one(json!({"_id": 1}), json!({"name": "x"}))
            .unwrap_err(),
        Error::InvalidUpdate(_)
    ));
    assert!(matches!(
        c.replace_one(json!({"_id": 1}), json!({"$set": {"name": "x"}}))
            .unwrap_err(),
        Error::InvalidUpdate(_)
    ));
    assert_eq!(snapshot(&c), before);
}

#[test]
fn updates_that_fail_on_stored_values() {
    let (_d, _db, c) = setup();
    let before = snapshot(&c);
    let err = c
        .update_many(json!({}), json!({"$inc": {"name": 1}}))
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("name"));
    let err = c
        .update_one(json!({"_id": 1}), json!({"$push": {"name": 1}}))
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err:?}");
    let err = c
        .update_one(json!({"_id": 1}), json!({"$set": {"name.first": "A"}}))
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err:?}");
    let err = c
        .update_one(json!({"_id": 1}), json!({"$set": {"_id": 5}}))
        .unwrap_err();
    assert!(matches!(err, Error::ImmutableField { .. }), "{err:?}");
    let err = c
        .replace_one(json!({"_id": 1}), json!({"_id": 5, "x": 1}))
        .unwrap_err();
    assert!(matches!(err, Error::ImmutableField { .. }), "{err:?}");
    let err = c
        .update_one(
            json!({"_id": 1}),
            json!({"$set": {"big": i64::MAX}, "$inc": {"n": i64::MAX}}),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Overflow { .. }), "{err:?}");
    assert_eq!(snapshot(&c), before);
}

#[test]
fn malformed_filters_change_nothing() {
    let (_d, _db, c) = setup();
    let before = snapshot(&c);
    let filters = vec![
        json!({"n": {"$gtx": 1}}),
        json!({"n": {"$size": "x"}}),
        json!({"n": {"$in": 3}}),
        json!({"$where": "this.n > 1"}),
        json!({"name": {"$regex": "("}}),
        json!(5),
    ];
    for f in filters {
        assert!(c.delete_many(f.clone()).is_err(), "{f}");
        assert!(
            c.update_many(f.clone(), json!({"$set": {"x": 1}})).is_err(),
            "{f}"
        );
        assert!(c.count(f.clone()).is_err(), "{f}");
        assert!(
            c.find(f.clone()).into_iter().next().unwrap().is_err(),
            "{f}"
        );
    }
    assert!(matches!(
        c.find(json!({"name": {"$regex": "("}}))
            .to_vec()
            .unwrap_err(),
        Error::InvalidRegex { .. }
    ));
    assert_eq!(snapshot(&c), before);
}

#[test]
fn errors_are_std_errors_with_messages() {
    let (_d, _db, c) = setup();
    let err: Box<dyn std::error::Error> =
        Box::new(c.find(json!({"n": {"$bad": 1}})).to_vec().unwrap_err());
    let msg = err.to_string();
    assert!(msg.contains("$bad") && msg.contains("$eq"), "{msg}");
}
