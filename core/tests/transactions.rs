//! Transactions: atomicity across collections, statement-level failure,
//! rollback on error and panic, read-your-writes, snapshot isolation.

use collection_store::{Database, Error};
use serde_json::{json, Value};

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    (dir, db)
}

fn ids(v: Vec<Value>) -> Vec<Value> {
    v.into_iter().map(|d| d["_id"].clone()).collect()
}

#[test]
fn closure_commits_on_ok_across_collections() {
    let (_d, db) = open();
    db.collection("users")
        .unwrap()
        .insert_one(json!({"_id": 1, "orders": 0}))
        .unwrap();
    db.transaction(|tx| {
        tx.collection("orders")?
            .insert_one(json!({"_id": 10, "user": 1, "total": 9.5}))?;
        tx.collection("users")?
            .update_one(json!({"_id": 1}), json!({"$inc": {"orders": 1}}))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        db.collection("orders").unwrap().count(json!({})).unwrap(),
        1
    );
    assert_eq!(
        db.collection("users")
            .unwrap()
            .find_one(json!({"_id": 1}))
            .unwrap()
            .unwrap()["orders"],
        1
    );
}

#[test]
fn closure_error_rolls_back_every_collection() {
    let (_d, db) = open();
    let users = db.collection("users").unwrap();
    users.insert_one(json!({"_id": 1, "orders": 0})).unwrap();
    let err = db
        .transaction(|tx| {
            tx.collection("orders")?.insert_one(json!({"_id": 10}))?;
            tx.collection("users")?
                .update_one(json!({"_id": 1}), json!({"$inc": {"orders": 1}}))?;
            // Duplicate key: the statement fails and the closure propagates it.
            tx.collection("users")?.insert_one(json!({"_id": 1}))?;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateKey { .. }), "{err:?}");
    assert_eq!(
        users.find_one(json!({"_id": 1})).unwrap().unwrap()["orders"],
        0
    );
    // A collection created only inside the rolled-back transaction does not exist.
    assert!(!db
        .list_collections()
        .unwrap()
        .contains(&"orders".to_string()));
}

#[test]
fn collection_created_in_rolled_back_transaction_vanishes() {
    let (_d, db) = open();
    let err = db
        .transaction(|tx| {
            tx.collection("ghost")?.insert_one(json!({"_id": 1}))?;
            Err::<(), _>(Error::InvalidDocument("abort on purpose".into()))
        })
        .unwrap_err();
    // The closure's own error comes back, unchanged.
    assert!(
        matches!(&err, Error::InvalidDocument(m) if m == "abort on purpose"),
        "{err:?}"
    );
    assert!(!db
        .list_collections()
        .unwrap()
        .contains(&"ghost".to_string()));
}

#[test]
fn panic_in_closure_rolls_back() {
    let (_d, db) = open();
    let db2 = db.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let returned = db2.transaction(|tx| {
            tx.collection("c")?.insert_one(json!({"_id": 1}))?;
            panic!("boom");
            #[allow(unreachable_code)]
            Ok(())
        });
        returned.map(|()| "the transaction returned instead of propagating the panic")
    }));
    // The closure's panic itself reaches the caller (not an error, not another panic).
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(db.collection("c").unwrap().count(json!({})).unwrap(), 0);
    // The writer is free again after the panic.
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 2}))
        .unwrap();
}

#[test]
fn failed_statement_leaves_transaction_usable() {
    let (_d, db) = open();
    let tx = db.begin().unwrap();
    let c = tx.collection("c").unwrap();
    c.insert_many(vec![json!({"_id": 1, "n": "x"}), json!({"_id": 2, "n": 5})])
        .unwrap();
    // update_many fails on the string: no document of this statement changes.
    let err = c
        .update_many(json!({}), json!({"$inc": {"n": 1}}))
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err:?}");
    assert_eq!(c.find_one(json!({"_id": 2})).unwrap().unwrap()["n"], 5);
    // insert_many is all or nothing within the transaction too.
    assert!(c
        .insert_many(vec![json!({"_id": 3}), json!({"_id": 1})])
        .is_err());
    assert_eq!(c.count(json!({})).unwrap(), 2);
    c.insert_one(json!({"_id": 4})).unwrap();
    tx.commit().unwrap();
    let c = db.collection("c").unwrap();
    assert_eq!(
        ids(c.find(json!({})).to_vec().unwrap()),
        vec![json!(1), json!(2), json!(4)]
    );
}

#[test]
fn explicit_transaction_read_your_writes_and_isolation() {
    let (_d, db) = open();
    let outside = db.collection("c").unwrap();
    outside.insert_one(json!({"_id": 1, "v": 1})).unwrap();
    let tx = db.begin().unwrap();
    let inside = tx.collection("c").unwrap();
    inside
        .update_one(json!({"_id": 1}), json!({"$set": {"v": 2}}))
        .unwrap();
    inside.insert_one(json!({"_id": 2, "v": 3})).unwrap();
    // Read-your-writes inside.
    assert_eq!(inside.find_one(json!({"_id": 1})).unwrap().unwrap()["v"], 2);
    assert_eq!(inside.count(json!({})).unwrap(), 2);
    assert_eq!(
        inside
            .find(json!({"v": {"$gt": 1}}))
            .to_vec()
            .unwrap()
            .len(),
        2
    );
    // Nothing visible outside before commit (readers never block on the writer).
    assert_eq!(
        outside.find_one(json!({"_id": 1})).unwrap().unwrap()["v"],
        1
    );
    assert_eq!(outside.count(json!({})).unwrap(), 1);
    tx.commit().unwrap();
    assert_eq!(
        outside.find_one(json!({"_id": 1})).unwrap().unwrap()["v"],
        2
    );
    assert_eq!(outside.count(json!({})).unwrap(), 2);
}

#[test]
fn dropping_uncommitted_transaction_rolls_back() {
    let (_d, db) = open();
    {
        let tx = db.begin().unwrap();
        tx.collection("c")
            .unwrap()
            .insert_one(json!({"_id": 1}))
            .unwrap();
    }
    assert_eq!(db.collection("c").unwrap().count(json!({})).unwrap(), 0);
    let tx = db.begin().unwrap();
    tx.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 1}))
        .unwrap();
    tx.rollback();
    assert_eq!(db.collection("c").unwrap().count(json!({})).unwrap(), 0);
}

#[test]
fn second_write_transaction_on_same_thread_is_refused() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    let tx = db.begin().unwrap();
    assert!(matches!(
        db.begin().unwrap_err(),
        Error::TransactionInProgress
    ));
    assert!(matches!(
        c.insert_one(json!({"x": 1})).unwrap_err(),
        Error::TransactionInProgress
    ));
    // Reads outside the transaction still work.
    assert_eq!(c.count(json!({})).unwrap(), 0);
    drop(tx);
    c.insert_one(json!({"x": 1})).unwrap();
}

#[test]
fn reader_snapshot_is_stable_while_a_writer_commits() {
    let (_d, db) = open();
    let c = db.collection("c").unwrap();
    c.insert_many((0..600).map(|i| json!({"_id": i})).collect())
        .unwrap();
    // A streaming iterator reads one snapshot, even across its internal batches.
    let mut it = c.find(json!({})).into_iter();
    let first = it.next().unwrap().unwrap();
    assert_eq!(first["_id"], 0);
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let c = db.collection("c").unwrap();
            c.delete_many(json!({"_id": {"$gte": 300}})).unwrap();
            c.insert_one(json!({"_id": 1000})).unwrap();
        })
    };
    writer.join().unwrap();
    let rest: Vec<Value> = it.map(|r| r.unwrap()).collect();
    assert_eq!(
        rest.len(),
        599,
        "the snapshot still holds all 600 documents"
    );
    assert_eq!(
        c.count(json!({})).unwrap(),
        301,
        "a new read sees the commit"
    );
}

#[test]
fn concurrent_writers_from_threads_all_commit() {
    let (_d, db) = open();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    db.transaction(|tx| {
                        tx.collection("a")?
                            .insert_one(json!({"_id": t * 1000 + i}))?;
                        tx.collection("b")?.update_one_with(
                            json!({"_id": "counter"}),
                            json!({"$inc": {"n": 1}}),
                            collection_store::UpdateOptions::upsert(),
                        )?;
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(db.collection("a").unwrap().count(json!({})).unwrap(), 400);
    assert_eq!(
        db.collection("b")
            .unwrap()
            .find_one(json!({"_id": "counter"}))
            .unwrap()
            .unwrap()["n"],
        400
    );
}
