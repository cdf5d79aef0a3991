//! Every `Driver` method against the embedded driver and a replica driver
//! (a real replica following a primary over loopback). The read suite is
//! written once and runs on both; the replica refuses every write with a
//! typed error; `ensure_indexes` builds on the embedded driver and checks on
//! the replica.

mod common;

use std::sync::Arc;
use std::time::Duration;

use collection_store::replication::{Primary, PrimaryConfig, Replica, ReplicaConfig};
use collection_store::typed::SchemaSync;
use collection_store::Database;
use collection_store_orm::driver::{
    CascadeRule, CollectionRef, Driver, EmbeddedDriver, EntitySchema, Expect, FindQuery,
    InsertMode, OpOutcome, ReplicaDriver, WriteOp,
};
use collection_store_orm::OrmError;
use common::{Author, Comment, Post};
use serde_json::{json, Value};

const SECRET: &[u8] = b"orm driver suite secret 0123456789";

fn users() -> CollectionRef {
    CollectionRef::new("people", "_id")
}

fn json_of(docs: &[bson::RawDocumentBuf]) -> Vec<Value> {
    docs.iter()
        .map(|d| collection_store::document_json(d))
        .collect()
}

async fn seed(d: &dyn Driver) {
    let docs: Vec<Value> = (1..=10)
        .map(|i| json!({"_id": i, "name": format!("n{i}"), "age": 20 + (i % 4), "city": if i % 2 == 0 {"Oslo"} else {"Rome"}}))
        .collect();
    let r = d
        .insert_many(&users(), docs, InsertMode::Atomic)
        .await
        .unwrap();
    assert!(r.is_complete());
    assert_eq!(r.inserted.len(), 10);
}

/// The read behaviour every driver must have (data from [`seed`]).
async fn read_suite(d: &dyn Driver) {
    let c = users();
    // find honours filter, sort, skip, limit and projection.
    let q = FindQuery {
        filter: json!({"city": "Oslo"}),
        sort: Some(json!({"age": -1, "_id": 1})),
        skip: 1,
        limit: Some(2),
        projection: Some(json!({"name": 1})),
    };
    assert_eq!(
        json_of(&d.find(&c, q).await.unwrap()),
        vec![
            json!({"_id": 6, "name": "n6"}),
            json!({"_id": 10, "name": "n10"})
        ]
    );
    assert_eq!(d.find(&c, FindQuery::default()).await.unwrap().len(), 10);
    // find_one replaces the limit.
    let one = d
        .find_one(
            &c,
            FindQuery {
                limit: Some(5),
                ..FindQuery::new(json!({"age": {"$gte": 22}}))
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(json_of(&[one])[0]["_id"], json!(2));
    assert!(d
        .find_one(&c, FindQuery::new(json!({"age": 99})))
        .await
        .unwrap()
        .is_none());
    // get keeps the order of the ids and leaves out missing ones.
    let got = d
        .get(&c, vec![json!(7), json!(99), json!(2)])
        .await
        .unwrap();
    assert_eq!(
        json_of(&got)
            .iter()
            .map(|v| v["_id"].clone())
            .collect::<Vec<_>>(),
        [json!(7), json!(2)]
    );
    // count.
    assert_eq!(d.count(&c, json!({"city": "Rome"})).await.unwrap(), 5);
    // A collection that does not exist reads as empty and is not created.
    let none = CollectionRef::new("nothing_here", "_id");
    assert!(d
        .find(&none, FindQuery::default())
        .await
        .unwrap()
        .is_empty());
    assert!(d.get(&none, vec![json!(1)]).await.unwrap().is_empty());
    assert_eq!(d.count(&none, json!({})).await.unwrap(), 0);
    // Bad input is a typed error, on existing and missing collections alike.
    for coll in [&c, &none] {
        let bad = d
            .find(coll, FindQuery::new(json!({"age": {"$nope": 1}})))
            .await;
        assert!(
            matches!(
                bad,
                Err(OrmError::Engine(collection_store::Error::InvalidFilter(_)))
            ),
            "{bad:?}"
        );
        let bad = d.count(coll, json!({"$where": "1"})).await;
        assert!(matches!(bad, Err(OrmError::Engine(_))), "{bad:?}");
        let bad = d
            .find(
                coll,
                FindQuery {
                    sort: Some(json!({"a": 2})),
                    ..FindQuery::default()
                },
            )
            .await;
        assert!(
            matches!(
                bad,
                Err(OrmError::Engine(collection_store::Error::InvalidSort(_)))
            ),
            "{bad:?}"
        );
    }
}

struct Cluster {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    primary_db: Database,
    _primary: collection_store::replication::PrimaryHandle,
    replica: Arc<Replica>,
}

impl Cluster {
    fn start() -> Cluster {
        let pdir = tempfile::tempdir().unwrap();
        let rdir = tempfile::tempdir().unwrap();
        let primary_db = Database::open(pdir.path()).unwrap();
        let primary = Primary::serve(
            primary_db.clone(),
            "127.0.0.1:0",
            PrimaryConfig::new(SECRET),
        )
        .unwrap();
        let replica = Replica::follow(
            primary.local_addr(),
            rdir.path(),
            ReplicaConfig::new(SECRET),
        )
        .unwrap();
        Cluster {
            _dirs: (pdir, rdir),
            primary_db,
            _primary: primary,
            replica: Arc::new(replica),
        }
    }

    async fn catch_up(&self) {
        let lsn = self.primary_db.last_lsn().unwrap();
        let replica = self.replica.clone();
        tokio::task::spawn_blocking(move || {
            replica.wait_for_lsn(lsn, Duration::from_secs(20)).unwrap()
        })
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_behave_the_same_on_embedded_and_replica_drivers() {
    let cluster = Cluster::start();
    let embedded = EmbeddedDriver::new(cluster.primary_db.clone());
    seed(&embedded).await;
    read_suite(&embedded).await;
    read_suite(&embedded.clone().inline_reads(true)).await;
    cluster.catch_up().await;
    let replica = ReplicaDriver::new(cluster.replica.clone());
    read_suite(&replica).await;
    // A replica opened without following reads the same.
    read_suite(&ReplicaDriver::from_database(cluster.replica.database())).await;
    assert!(cluster.replica.status().connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_driver_refuses_every_write() {
    let cluster = Cluster::start();
    let d = ReplicaDriver::new(cluster.replica.clone());
    assert!(!d.capabilities().writes);
    let c = users();
    let refused = |r: Result<(), OrmError>, what: &str| match r {
        Err(OrmError::Unsupported {
            driver: "replica",
            operation,
            ..
        }) => {
            assert!(operation.contains(what), "{operation}")
        }
        other => panic!("{what}: {other:?}"),
    };
    refused(
        d.insert_one(&c, json!({"_id": 1})).await.map(drop),
        "insert",
    );
    refused(
        d.insert_many(&c, vec![json!({})], InsertMode::Unordered)
            .await
            .map(drop),
        "insert",
    );
    refused(
        d.update(&c, json!({}), json!({"$set": {"a": 1}}), true, false)
            .await
            .map(drop),
        "update",
    );
    refused(d.delete(&c, json!({}), true).await.map(drop), "delete");
    refused(d.execute(vec![]).await.map(drop), "batch");
    refused(d.begin().await.map(drop), "transaction");
    // The error says what to do.
    let msg = d.delete(&c, json!({}), true).await.unwrap_err().to_string();
    assert!(msg.contains("write through the primary"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_indexes_builds_on_embedded_and_checks_on_replica() {
    let cluster = Cluster::start();
    let embedded = EmbeddedDriver::new(cluster.primary_db.clone());
    let replica = ReplicaDriver::new(cluster.replica.clone());
    let post = EntitySchema::of::<Post>();
    // Compound indexes keep every field.
    assert_eq!(
        post.indexes
            .iter()
            .map(|i| i.index_name())
            .collect::<Vec<_>>(),
        ["author_1_title_1"]
    );
    let r = embedded
        .ensure_indexes(&post, SchemaSync::KeepUnknown)
        .await
        .unwrap();
    assert_eq!(r.created, ["author_1_title_1"]);
    assert_eq!(r.version, Some(1));
    let again = embedded
        .ensure_indexes(&post, SchemaSync::KeepUnknown)
        .await
        .unwrap();
    assert!(again.unchanged());
    let stored = cluster
        .primary_db
        .collection("posts")
        .unwrap()
        .list_indexes()
        .unwrap();
    assert_eq!(
        stored[0].fields,
        vec![("author".to_owned(), 1), ("title".to_owned(), 1)]
    );
    cluster.catch_up().await;
    // The replica has them: fine. It lacks the author index: typed error naming it.
    let ok = replica
        .ensure_indexes(&post, SchemaSync::KeepUnknown)
        .await
        .unwrap();
    assert!(ok.skipped && ok.unchanged());
    match replica
        .ensure_indexes(&EntitySchema::of::<Author>(), SchemaSync::KeepUnknown)
        .await
    {
        Err(OrmError::SchemaMismatch {
            collection,
            missing,
        }) => {
            assert_eq!(
                (collection.as_str(), missing),
                ("authors", vec!["email_1".to_owned()])
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(replica
        .ensure_indexes(&EntitySchema::of::<Author>(), SchemaSync::Off)
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_writes_report_real_counts_and_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let d = EmbeddedDriver::new(db.clone());
    let c = users();
    db.collection("people")
        .unwrap()
        .create_index(collection_store::IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    assert_eq!(
        d.insert_one(&c, json!({"_id": 1, "email": "a"}))
            .await
            .unwrap(),
        json!(1)
    );
    let generated = d.insert_one(&c, json!({"email": "g"})).await.unwrap();
    assert_eq!(generated.as_str().unwrap().len(), 24);
    let docs = || {
        vec![
            json!({"_id": 2, "email": "b"}),
            json!({"_id": 1, "email": "dup id"}),
            json!({"_id": 3, "email": "c"}),
            json!({"_id": 4, "email": "a"}),
            json!({"_id": 5, "email": "e"}),
        ]
    };
    // Atomic: every failure reported, nothing kept.
    let r = d.insert_many(&c, docs(), InsertMode::Atomic).await.unwrap();
    assert_eq!(r.failed.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 3]);
    assert!(r.failed.iter().all(|(_, e)| matches!(
        e,
        OrmError::Engine(collection_store::Error::DuplicateKey { .. })
    )));
    assert_eq!(r.rolled_back, [0, 2, 4]);
    assert!(r.inserted.is_empty() && !r.is_complete());
    assert_eq!(d.count(&c, json!({})).await.unwrap(), 2);
    // Ordered: stops at the first failure, keeps what came before.
    let r = d
        .insert_many(&c, docs(), InsertMode::Ordered)
        .await
        .unwrap();
    assert_eq!(
        (r.inserted.len(), r.failed.len(), r.not_attempted.clone()),
        (1, 1, vec![2, 3, 4])
    );
    assert_eq!(d.count(&c, json!({})).await.unwrap(), 3);
    // Unordered: keeps everything that can be inserted.
    let r = d
        .insert_many(&c, docs(), InsertMode::Unordered)
        .await
        .unwrap();
    assert_eq!(
        r.inserted.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [2, 4]
    );
    assert_eq!(
        r.failed.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1, 3]
    );
    assert_eq!(d.count(&c, json!({})).await.unwrap(), 5);
    // Update and delete return the real counts.
    let u = d
        .update(
            &c,
            json!({"_id": {"$gte": 2}}),
            json!({"$set": {"k": 1}}),
            true,
            false,
        )
        .await
        .unwrap();
    assert_eq!((u.matched_count, u.modified_count), (3, 3));
    let u = d
        .update(
            &c,
            json!({"_id": {"$gte": 2}}),
            json!({"$set": {"k": 1}}),
            true,
            false,
        )
        .await
        .unwrap();
    assert_eq!((u.matched_count, u.modified_count), (3, 0));
    let u = d
        .update(
            &c,
            json!({"_id": 9}),
            json!({"$set": {"k": 2}}),
            false,
            true,
        )
        .await
        .unwrap();
    assert_eq!(u.upserted_id, Some(json!(9)));
    assert_eq!(d.delete(&c, json!({"k": 1}), false).await.unwrap(), 1);
    assert_eq!(
        d.delete(&c, json!({"k": {"$exists": true}}), true)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        d.delete(&CollectionRef::new("nothing_here", "_id"), json!({}), true)
            .await
            .unwrap(),
        0
    );
    assert!(matches!(
        d.update(&c, json!({}), json!({"a": 1}), true, false).await,
        Err(OrmError::Engine(collection_store::Error::InvalidUpdate(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_transactions_and_savepoints() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let d = EmbeddedDriver::new(db.clone());
    seed(&d).await;
    let c = users();
    let insert = |id: i64| WriteOp::Insert {
        collection: c.clone(),
        doc: json!({"_id": id}),
    };
    // A transaction with savepoints: rolled-back statements never run.
    let mut tx = d.begin().await.unwrap();
    tx.push(insert(100));
    tx.savepoint("a").unwrap();
    tx.push(insert(101));
    tx.savepoint("b").unwrap();
    tx.push(insert(102));
    assert!(matches!(tx.savepoint("a"), Err(OrmError::Savepoint(..))));
    tx.rollback_to("b").unwrap();
    tx.push(insert(103));
    tx.release("a").unwrap();
    assert!(matches!(tx.rollback_to("b"), Err(OrmError::Savepoint(..))));
    let before = db.last_lsn().unwrap();
    let out = d.commit(tx).await.unwrap();
    assert_eq!(
        out,
        vec![
            OpOutcome::Inserted(json!(100)),
            OpOutcome::Inserted(json!(101)),
            OpOutcome::Inserted(json!(103))
        ]
    );
    assert_eq!(db.last_lsn().unwrap(), before + 1, "one transaction");
    assert_eq!(d.count(&c, json!({"_id": 102})).await.unwrap(), 0);
    // Rollback: nothing reaches the store.
    let mut tx = d.begin().await.unwrap();
    tx.push(insert(200));
    d.rollback(tx).await.unwrap();
    assert_eq!(d.count(&c, json!({"_id": 200})).await.unwrap(), 0);
    // An unmet expectation rolls the whole batch back and names the statement.
    let before = db.last_lsn().unwrap();
    let err = d
        .execute(vec![
            insert(300),
            WriteOp::Update {
                collection: c.clone(),
                filter: json!({"_id": 1}),
                update: json!({"$set": {"x": 1}}),
                multi: false,
                expect: Expect::Exactly(1),
            },
            WriteOp::Check {
                collection: c.clone(),
                filter: json!({"city": "Oslo"}),
                expect: Expect::Exactly(4),
            },
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OrmError::Expectation {
                index: 2,
                what: "check",
                expected: 4,
                actual: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(db.last_lsn().unwrap(), before);
    // A failing statement likewise.
    let err = d.execute(vec![insert(301), insert(301)]).await.unwrap_err();
    assert!(
        matches!(
            err,
            OrmError::Statement {
                index: 1,
                what: "insert",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(d.count(&c, json!({"_id": 301})).await.unwrap(), 0);
    // Deletes follow cascades inside the batch and report every key.
    let posts = CollectionRef::of::<Post>();
    let comments = CollectionRef::of::<Comment>();
    let out = d
        .execute(vec![
            WriteOp::Insert { collection: posts.clone(), doc: json!({"id": 1, "author": 1, "title": "t", "body": "", "tags": [], "version": 1}) },
            WriteOp::Insert { collection: comments.clone(), doc: json!({"id": "c1", "post": 1, "text": ""}) },
            WriteOp::Insert { collection: comments.clone(), doc: json!({"id": "c2", "post": 2, "text": ""}) },
        ])
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    let out = d
        .execute(vec![WriteOp::Delete {
            collection: posts.clone(),
            filter: json!({"id": 1}),
            multi: false,
            expect: Expect::Exactly(1),
            cascade: CascadeRule::from_relations(&<Post as collection_store::Document>::relations()),
        }])
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![OpOutcome::Deleted(vec![
            ("comments".into(), json!("c1")),
            ("posts".into(), json!(1))
        ])]
    );
    assert_eq!(d.count(&comments, json!({})).await.unwrap(), 1);
}
