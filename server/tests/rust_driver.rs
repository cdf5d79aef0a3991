//! The official Rust driver (`mongodb` crate) against the server: the core
//! cases of the pymongo suite through a second, independently written client
//! (it also exercises zstd and snappy compression, which pymongo needs extra
//! packages for).

mod common;

use bson::{doc, Document};
use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Client, IndexModel};

fn client(rt: &tokio::runtime::Runtime, uri: &str) -> Client {
    rt.block_on(Client::with_uri_str(uri)).expect("client")
}

fn code(e: &mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    }
}

#[test]
fn crud_cursors_indexes_counting_and_compression() {
    let s = TestServer::start(&[]);
    for compressor in ["zstd", "snappy", "none"] {
        let uri = if compressor == "none" {
            format!("mongodb://{}/?directConnection=true", s.addr())
        } else {
            format!(
                "mongodb://{}/?directConnection=true&compressors={compressor}",
                s.addr()
            )
        };
        let c = client(&s.runtime, &uri);
        let coll = c
            .database(&format!("rust_{compressor}"))
            .collection::<Document>("items");
        s.runtime.block_on(async {
            let docs: Vec<Document> = (0..300)
                .map(|i| doc! {"_id": i, "k": i % 3, "pad": "p".repeat(200)})
                .collect();
            coll.insert_many(docs).await.unwrap();
            let all: Vec<Document> = coll
                .find(doc! {})
                .batch_size(7)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            assert_eq!(all.len(), 300);
            assert!(all
                .windows(2)
                .all(|w| w[0].get_i32("_id").unwrap() < w[1].get_i32("_id").unwrap()));
            let sorted: Vec<Document> = coll
                .find(doc! {"k": 1})
                .sort(doc! {"_id": -1})
                .limit(5)
                .batch_size(2)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let ids: Vec<i32> = sorted.iter().map(|d| d.get_i32("_id").unwrap()).collect();
            assert_eq!(ids, [298, 295, 292, 289, 286]);
            assert_eq!(coll.count_documents(doc! {"k": 2}).await.unwrap(), 100);
            assert_eq!(coll.estimated_document_count().await.unwrap(), 300);
            let mut ks = coll.distinct("k", doc! {}).await.unwrap();
            ks.sort_by_key(|b| b.as_i32());
            assert_eq!(ks, vec![0.into(), 1.into(), 2.into()]);

            let r = coll
                .update_many(doc! {"k": 0}, doc! {"$set": {"zero": true}})
                .await
                .unwrap();
            assert_eq!((r.matched_count, r.modified_count), (100, 100));
            let after = coll
                .find_one_and_update(doc! {"_id": 1}, doc! {"$inc": {"k": 10}})
                .return_document(ReturnDocument::After)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(after.get_i32("k").unwrap(), 11);
            assert_eq!(
                coll.delete_many(doc! {"zero": true})
                    .await
                    .unwrap()
                    .deleted_count,
                100
            );

            coll.create_index(
                IndexModel::builder()
                    .keys(doc! {"k": 1})
                    .options(IndexOptions::builder().unique(false).build())
                    .build(),
            )
            .await
            .unwrap();
            let names = coll.list_index_names().await.unwrap();
            assert_eq!(names, ["_id_", "k_1"]);
        });
    }
}

#[test]
fn duplicate_keys_bulk_errors_and_bad_input() {
    let s = TestServer::start(&[]);
    let c = client(
        &s.runtime,
        &format!("mongodb://{}/?directConnection=true", s.addr()),
    );
    let coll = c.database("errs").collection::<Document>("u");
    s.runtime.block_on(async {
        coll.create_index(
            IndexModel::builder()
                .keys(doc! {"email": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .unwrap();
        coll.insert_one(doc! {"_id": 1, "email": "a"})
            .await
            .unwrap();
        let e = coll
            .insert_one(doc! {"_id": 2, "email": "a"})
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(11000));
        let e = coll
            .insert_many(vec![
                doc! {"_id": 3, "email": "b"},
                doc! {"_id": 1, "email": "c"},
                doc! {"_id": 4, "email": "d"},
            ])
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(11000));
        assert_eq!(
            coll.count_documents(doc! {}).await.unwrap(),
            2,
            "ordered: stops at the duplicate"
        );
        let e = coll.find_one(doc! {"a": {"$frob": 1}}).await.unwrap_err();
        assert_eq!(code(&e), Some(2));
        let e = c
            .database("errs")
            .run_command(doc! {"frobnicate": 1})
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(59));
    });
}

async fn balance(coll: &mongodb::Collection<Document>, id: &str) -> i32 {
    let d = coll.find_one(doc! {"_id": id}).await.unwrap().unwrap();
    d.get_i32("bal").unwrap()
}

#[test]
fn authentication_and_transactions() {
    let s = TestServer::start(&["ann:s3cret"]);
    let good = client(
        &s.runtime,
        &format!("mongodb://ann:s3cret@{}/?directConnection=true", s.addr()),
    );
    let bad = client(
        &s.runtime,
        &format!("mongodb://ann:nope@{}/?directConnection=true", s.addr()),
    );
    let anon = client(
        &s.runtime,
        &format!("mongodb://{}/?directConnection=true", s.addr()),
    );
    s.runtime.block_on(async {
        let coll = good.database("bank").collection::<Document>("acct");
        coll.insert_many(vec![
            doc! {"_id": "a", "bal": 10},
            doc! {"_id": "b", "bal": 0},
        ])
        .await
        .unwrap();
        let e = bad
            .database("bank")
            .collection::<Document>("acct")
            .find_one(doc! {})
            .await
            .unwrap_err();
        assert!(
            matches!(&*e.kind, ErrorKind::Authentication { .. }) || code(&e) == Some(18),
            "wrong password: {e}"
        );
        let e = anon
            .database("bank")
            .collection::<Document>("acct")
            .find_one(doc! {})
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(13));

        let mut session = good.start_session().await.unwrap();
        session.start_transaction().await.unwrap();
        coll.update_one(doc! {"_id": "a"}, doc! {"$inc": {"bal": -5}})
            .session(&mut session)
            .await
            .unwrap();
        coll.update_one(doc! {"_id": "b"}, doc! {"$inc": {"bal": 5}})
            .session(&mut session)
            .await
            .unwrap();
        assert_eq!(balance(&coll, "b").await, 0);
        session.commit_transaction().await.unwrap();
        assert_eq!(balance(&coll, "b").await, 5);

        session.start_transaction().await.unwrap();
        coll.insert_one(doc! {"_id": "c"})
            .session(&mut session)
            .await
            .unwrap();
        session.abort_transaction().await.unwrap();
        assert!(coll.find_one(doc! {"_id": "c"}).await.unwrap().is_none());
    });
}
