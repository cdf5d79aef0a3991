//! The tokio facade: many concurrent tasks, transactions, and cancellation.
#![cfg(feature = "async")]

use std::time::Duration;

use collection_store::{AsyncDatabase, Error, IndexSpec, UpdateOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_tasks_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = AsyncDatabase::open(dir.path()).await.unwrap();
    let users = db.collection("users").await.unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let users = users.clone();
            tokio::spawn(async move {
                users
                    .insert_one(json!({"_id": i, "email": format!("u{i}@x"), "n": i % 7}))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(users.count(json!({})).await.unwrap(), 1000);
    assert_eq!(
        users.count(json!({"n": 3})).await.unwrap(),
        (0..1000).filter(|i| i % 7 == 3).count() as u64
    );
    let dup = users
        .insert_one(json!({"_id": 5000, "email": "u1@x"}))
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::DuplicateKey { .. }), "{dup:?}");
    let top = users
        .find(json!({"n": 6}))
        .sort(json!({"_id": -1}))
        .limit(3)
        .to_vec()
        .await
        .unwrap();
    assert_eq!(
        top.iter()
            .map(|d| d["_id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [993, 986, 979]
    );
    assert!(db.verify().await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_transaction_commits_or_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = AsyncDatabase::open(dir.path()).await.unwrap();
    db.transaction(|tx| {
        tx.collection("a")?.insert_one(json!({"_id": 1}))?;
        tx.collection("b")?.insert_one(json!({"_id": 1}))?;
        Ok(())
    })
    .await
    .unwrap();
    let err = db
        .transaction(|tx| {
            tx.collection("a")?.insert_one(json!({"_id": 2}))?;
            tx.collection("b")?.insert_one(json!({"_id": 1}))?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateKey { .. }));
    let a = db.collection("a").await.unwrap();
    assert_eq!(
        a.count(json!({})).await.unwrap(),
        1,
        "the failed transaction left no trace"
    );
    // Upserts and updates through the facade.
    a.update_one_with(
        json!({"_id": 9}),
        json!({"$inc": {"n": 2}}),
        UpdateOptions::upsert(),
    )
    .await
    .unwrap();
    assert_eq!(
        a.find_one(json!({"_id": 9})).await.unwrap().unwrap()["n"],
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_pending_write_still_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = AsyncDatabase::open(dir.path()).await.unwrap();
    let c = db.collection("c").await.unwrap();
    // Start many writes and abandon their futures almost at once.
    for i in 0..200 {
        let fut = c.insert_one(json!({"_id": i}));
        let _ = tokio::time::timeout(Duration::from_micros(1), fut).await;
    }
    // Every abandoned write either completed fully or never started; since
    // a started blocking task always runs to the end, all of them land.
    let mut n = 0;
    for _ in 0..200 {
        n = c.count(json!({})).await.unwrap();
        if n == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(n, 200);
    assert!(db.verify().await.unwrap().is_ok());
}

#[tokio::test(flavor = "current_thread")]
async fn works_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let db = AsyncDatabase::open(dir.path()).await.unwrap();
    let c = db.collection("c").await.unwrap();
    c.insert_many(vec![json!({"_id": 1, "x": 1}), json!({"_id": 2, "x": 2})])
        .await
        .unwrap();
    assert_eq!(
        c.distinct("x", json!({})).await.unwrap(),
        vec![json!(1), json!(2)]
    );
    assert_eq!(c.delete_many(json!({"x": {"$gte": 2}})).await.unwrap(), 1);
    assert_eq!(db.list_collections().await.unwrap(), vec!["c".to_string()]);
}
