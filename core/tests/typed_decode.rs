//! Stored documents that do not fit the struct are reported as
//! `Error::Decode { collection, id, .. }` naming them, never a panic; the
//! untyped view (`find_raw`) still reads them.

use collection_store::typed::Filter;
use collection_store::{CollectionOptions, Database, Error};
use collection_store_schemas::sample::{self, EPOCH_2024};
use collection_store_schemas::{Order, User};
use serde_json::{json, Value};

fn decode_err(e: Error) -> (String, String, String) {
    match e {
        Error::Decode {
            collection,
            id,
            message,
            ..
        } => (collection, id, message),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

/// The field path and the stored type a decode error names.
fn decode_at(e: &Error) -> (&str, &str) {
    match e {
        Error::Decode { path, found, .. } => (path.as_str(), found.as_str()),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

fn good_user_json(id: u64) -> Value {
    serde_json::to_value(sample::user(id)).unwrap()
}

#[test]
fn documents_that_do_not_fit_name_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let users = db.typed::<User>().unwrap();
    users.insert_one(&sample::user(1)).unwrap();
    let raw = db
        .collection_with("users", CollectionOptions::with_id_field("id"))
        .unwrap();
    // Written through the untyped API (or by an older schema).
    raw.insert_one(json!({"id": 7, "email": "seven@example.com"}))
        .unwrap();
    let mut wrong_type = good_user_json(8);
    wrong_type["age"] = json!("old");
    raw.insert_one(wrong_type).unwrap();
    let mut negative = good_user_json(9);
    negative["age"] = json!(-1);
    raw.insert_one(negative).unwrap();
    let mut too_big = good_user_json(10);
    too_big["age"] = json!(5_000_000_000u64);
    raw.insert_one(too_big).unwrap();
    let mut huge_id = good_user_json(11);
    huge_id["id"] = json!(u64::MAX);
    raw.insert_one(huge_id).unwrap();
    let mut bad_nested = good_user_json(12);
    bad_nested["address"]["city"] = json!(42);
    raw.insert_one(bad_nested).unwrap();

    let (c, id, msg) = decode_err(users.get(&7).unwrap_err());
    assert_eq!((c.as_str(), id.as_str()), ("users", "7"));
    assert!(msg.contains("missing field"), "{msg}");
    let (_, id, msg) = decode_err(users.get(&8).unwrap_err());
    assert_eq!(id, "8");
    assert!(msg.contains("invalid type"), "{msg}");
    let e = users.get(&8).unwrap_err();
    assert_eq!(decode_at(&e), ("age", "string"));
    assert!(
        e.to_string().contains("at field 'age' (found string)"),
        "{e}"
    );
    assert_eq!(
        decode_at(&users.get(&12).unwrap_err()),
        ("address.city", "number")
    );
    assert_eq!(
        decode_at(&users.get(&7).unwrap_err()).0,
        "",
        "a missing field: the document"
    );
    for n in [9u64, 10, 12] {
        let (_, id, _) = decode_err(users.get(&n).unwrap_err());
        assert_eq!(id, n.to_string());
    }
    // Integers beyond i64 (stored as an integral Decimal128) decode exactly.
    let big = users
        .find(User::fields().email().eq("user11@example.com"))
        .to_vec()
        .unwrap();
    assert_eq!(big.len(), 1);
    assert_eq!(big[0].id, u64::MAX);

    // A query over everything fails on the first misfit; one that avoids them works.
    let (_, id, _) = decode_err(users.find(Filter::all()).to_vec().unwrap_err());
    assert_eq!(id, "7");
    assert_eq!(
        users.find(User::fields().id().eq(1)).to_vec().unwrap(),
        vec![sample::user(1)]
    );
    // Iteration reports each misfit and goes on (document 11, with a u64 key
    // beyond i64, is not a misfit).
    let results: Vec<_> = users.find(Filter::all()).into_iter().collect();
    assert_eq!(results.len(), 7);
    assert_eq!(results[0].as_ref().unwrap(), &sample::user(1));
    let bad_ids: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err())
        .map(|e| decode_err(e).1)
        .collect();
    assert_eq!(bad_ids, ["7", "8", "9", "10", "12"]);
    // The untyped view reads everything.
    let all = users.find_raw(json!({})).to_vec().unwrap();
    assert_eq!(all.len(), 7);
    assert_eq!(all[1], json!({"id": 7, "email": "seven@example.com"}));
    let projected = users
        .find_raw(json!({"id": 8}))
        .projection(json!({"age": 1}))
        .to_vec()
        .unwrap();
    assert_eq!(projected, vec![json!({"id": 8, "age": "old"})]);
}

#[test]
fn string_ids_are_named_in_decode_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let orders = db.typed::<Order>().unwrap();
    let id = orders
        .insert_one(&sample::order(1, &[(1, 1)], EPOCH_2024))
        .unwrap();
    orders
        .raw()
        .update_one(json!({"_id": id}), json!({"$set": {"status": "lost"}}))
        .unwrap();
    let (c, shown, msg) = decode_err(orders.get(id.as_str()).unwrap_err());
    assert_eq!(c, "orders");
    assert_eq!(shown, format!("\"{id}\""));
    assert!(msg.contains("unknown variant"), "{msg}");
}
