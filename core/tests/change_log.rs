//! The change log: one entry per committed logical transaction (atomic with
//! its data), checksums, retention, change streams with resume positions,
//! durable consumers, following another database's log, and snapshots.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use collection_store::testing;
use collection_store::{
    ChangeEvent, Database, DatabaseOptions, Error, IndexSpec, OpKind, UpdateOptions,
};
use collection_store::{LogOp, LogRetention};
use serde_json::{json, Value};

fn kinds(db: &Database, after: u64) -> Vec<Vec<(OpKind, String)>> {
    db.read_log(after, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| {
            e.ops
                .iter()
                .map(|o| (o.kind(), o.collection().to_owned()))
                .collect()
        })
        .collect()
}

/// Every collection's documents (sorted by `_id`) and index names.
fn contents(db: &Database) -> BTreeMap<String, (Vec<Value>, Vec<String>)> {
    db.list_collections()
        .unwrap()
        .into_iter()
        .map(|name| {
            let c = db.collection(&name).unwrap();
            let docs = c.find(json!({})).to_vec().unwrap();
            let indexes = c
                .list_indexes()
                .unwrap()
                .into_iter()
                .map(|s| s.index_name())
                .collect();
            (name, (docs, indexes))
        })
        .collect()
}

/// Rebuilds a database from another's complete log.
fn rebuild(from: &Database, dir: &std::path::Path) -> Database {
    let copy = Database::open_with(dir, DatabaseOptions::default().replica(true)).unwrap();
    let mut after = 0;
    loop {
        let frames = from.read_log_frames(after, 1 << 20).unwrap();
        let Some((last, _)) = frames.last() else {
            break;
        };
        after = *last;
        assert_eq!(copy.apply_log_frames(&frames).unwrap(), after);
    }
    copy
}

#[test]
fn every_write_kind_is_logged_once_in_commit_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.last_lsn().unwrap(), 0);
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users.insert_one(json!({"_id": 1, "email": "a"})).unwrap();
    users
        .update_one(json!({"_id": 1}), json!({"$set": {"x": 1}}))
        .unwrap();
    users
        .replace_one(json!({"_id": 1}), json!({"email": "b"}))
        .unwrap();
    // A no-op update and a failing insert log nothing.
    users
        .update_one(json!({"_id": 1}), json!({"$set": {"email": "b"}}))
        .unwrap();
    assert!(users.insert_one(json!({"_id": 2, "email": "b"})).is_err());
    users.delete_one(json!({"_id": 1})).unwrap();
    users
        .update_one_with(
            json!({"_id": 5}),
            json!({"$set": {"e": 1}}),
            UpdateOptions::upsert(),
        )
        .unwrap();
    users.drop_index("email_1").unwrap();
    db.drop_collection("users").unwrap();
    let u = |k| (k, "users".to_owned());
    assert_eq!(
        kinds(&db, 0),
        vec![
            vec![u(OpKind::CreateCollection)],
            vec![u(OpKind::CreateIndex)],
            vec![u(OpKind::Insert)],
            vec![u(OpKind::Update)],
            vec![u(OpKind::Replace)],
            vec![u(OpKind::Delete)],
            vec![u(OpKind::Insert)],
            vec![u(OpKind::DropIndex)],
            vec![u(OpKind::DropCollection)],
        ]
    );
    assert_eq!(db.log_bounds().unwrap(), (1, 9));
    let entries = db.read_log(0, 100).unwrap();
    let lsns: Vec<u64> = entries.iter().map(|e| e.lsn).collect();
    assert_eq!(lsns, (1..=9).collect::<Vec<_>>());
    assert!(entries
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    match &entries[4].ops[0] {
        LogOp::Put { document, .. } => {
            let d = bson::Document::from_reader(&mut &document[..]).unwrap();
            assert_eq!(
                d,
                bson::doc! {"_id": 1, "email": "b"},
                "after-image of the replace"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(db.verify().unwrap().is_ok());
    assert_eq!(db.verify().unwrap().log_entries, 9);
}

#[test]
fn a_transaction_is_one_entry_and_a_rollback_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.collection("a").unwrap();
    db.collection("b").unwrap();
    let start = db.last_lsn().unwrap();
    db.transaction(|tx| {
        let a = tx.collection("a")?;
        a.insert_one(json!({"_id": 1}))?;
        // A failing statement inside the transaction leaves no operation.
        assert!(a.insert_one(json!({"_id": 1})).is_err());
        tx.collection("b")?.insert_one(json!({"_id": 1}))?;
        a.update_one(json!({"_id": 1}), json!({"$inc": {"n": 1}}))?;
        Ok(())
    })
    .unwrap();
    let r: Result<(), Error> = db.transaction(|tx| {
        tx.collection("a")?.insert_one(json!({"_id": 2}))?;
        Err(Error::Aborted("no".into()))
    });
    assert!(r.is_err());
    let tx = db.begin().unwrap();
    tx.collection("a")
        .unwrap()
        .insert_one(json!({"_id": 3}))
        .unwrap();
    tx.rollback();
    assert_eq!(
        kinds(&db, start),
        vec![vec![
            (OpKind::Insert, "a".to_owned()),
            (OpKind::Insert, "b".to_owned()),
            (OpKind::Update, "a".to_owned()),
        ]]
    );
}

#[test]
fn concurrent_writers_get_consecutive_lsns_and_the_log_rebuilds_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    c.create_index(IndexSpec::new([("k", 1)])).unwrap();
    c.create_index(IndexSpec::new([("tags", 1)])).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..150 {
                    let id = t * 1000 + i;
                    c.insert_one(json!({"_id": id, "k": i % 7, "tags": ["x", format!("t{t}")]}))
                        .unwrap();
                    if i % 3 == 0 {
                        c.update_one(json!({"_id": id}), json!({"$inc": {"k": 100}}))
                            .unwrap();
                    }
                    if i % 5 == 0 {
                        c.delete_one(json!({"_id": id})).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (first, last) = db.log_bounds().unwrap();
    assert_eq!(first, 1);
    let entries = db.read_log(0, usize::MAX).unwrap();
    assert_eq!(entries.len() as u64, last);
    // 8 threads x (150 inserts + 50 updates + 30 deletes) + collection + 2 indexes.
    assert_eq!(last, 8 * 230 + 3);
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = rebuild(&db, copy_dir.path());
    assert_eq!(contents(&copy), contents(&db));
    assert_eq!(copy.last_lsn().unwrap(), last);
    assert!(copy.verify().unwrap().is_ok());
    let explain = copy
        .collection("c")
        .unwrap()
        .find(json!({"k": 3}))
        .explain()
        .unwrap();
    assert_eq!(
        explain.index.as_deref(),
        Some("k_1"),
        "the copy's indexes serve queries"
    );
}

#[test]
fn a_flipped_byte_is_reported_as_corruption_of_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let c = db.collection("c").unwrap();
        for i in 0..5 {
            c.insert_one(json!({"_id": i, "text": "hello"})).unwrap();
        }
    }
    // Damage entry 3 behind the database's back.
    let db = Database::open(dir.path()).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let (path, offset) = collection_store::testing::log_frame(&db, 3).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        // A byte inside the frame's checksummed part.
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, offset + 20).unwrap();
        b[0] ^= 0x01;
        file.write_all_at(&b, offset + 20).unwrap();
    }
    let is_corrupt_3 = |e: &Error| matches!(e, Error::Corrupt { lsn: Some(3), .. });
    assert!(is_corrupt_3(&db.read_log(0, 10).unwrap_err()));
    assert!(is_corrupt_3(&db.read_log_frames(1, 1 << 20).unwrap_err()));
    let mut stream = db.watch_from(1);
    assert_eq!(stream.next().unwrap().unwrap().lsn, 2);
    assert!(
        is_corrupt_3(&stream.next().unwrap().unwrap_err()),
        "never delivered"
    );
    let report = db.verify().unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("log entry 3")),
        "{report:?}"
    );
    // A follower is never handed it.
    assert!(is_corrupt_3(&db.read_log_frames(0, 1 << 20).unwrap_err()));
}

#[test]
fn a_change_stream_delivers_every_commit_once_in_order_and_resumes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let position;
    let mut seen: Vec<ChangeEvent> = Vec::new();
    {
        let db = Database::open(dir.path()).unwrap();
        let c = db.collection("c").unwrap();
        let mut stream = db.watch().unwrap();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        c.insert_one(json!({"_id": t * 1000 + i})).unwrap();
                    }
                })
            })
            .collect();
        while seen.len() < 250 {
            seen.push(stream.next().unwrap().unwrap());
        }
        for w in writers {
            w.join().unwrap();
        }
        // Stop in the middle; everything delivered so far is one transaction each.
        position = stream.position();
        assert_eq!(position, seen.last().unwrap().lsn);
    }
    let db = Database::open(dir.path()).unwrap();
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": "after restart"}))
        .unwrap();
    let mut stream = db.watch_from(position);
    while seen.len() < 401 {
        seen.push(
            stream
                .next_timeout(Duration::from_secs(10))
                .unwrap()
                .expect("an event"),
        );
    }
    assert_eq!(stream.try_next().unwrap(), None);
    let lsns: Vec<u64> = seen.iter().map(|e| e.lsn).collect();
    assert!(
        lsns.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive: {lsns:?}"
    );
    let mut ids: Vec<String> = seen
        .iter()
        .map(|e| e.id.clone().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 401, "no duplicates, nothing missing");
    assert!(seen
        .iter()
        .all(|e| e.operation == OpKind::Insert && e.last_in_entry));
    assert_eq!(seen[400].document, Some(json!({"_id": "after restart"})));
}

#[test]
fn collection_watch_filters_documents_and_operations() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let users = db.collection("users").unwrap();
    let other = db.collection("other").unwrap();
    let mut adults = users.watch(json!({"age": {"$gte": 18}})).unwrap();
    let mut deletes = db.watch().unwrap().operations([OpKind::Delete]);
    let mut everything = db.watch().unwrap();
    users.insert_one(json!({"_id": 1, "age": 30})).unwrap();
    users.insert_one(json!({"_id": 2, "age": 10})).unwrap();
    other.insert_one(json!({"_id": 3, "age": 50})).unwrap();
    users
        .update_one(json!({"_id": 2}), json!({"$set": {"age": 20}}))
        .unwrap();
    users.delete_one(json!({"_id": 1})).unwrap();
    users.create_index(IndexSpec::new([("age", 1)])).unwrap();
    let drain = |s: &mut collection_store::ChangeStream| {
        let mut out = Vec::new();
        while let Some(e) = s.try_next().unwrap() {
            out.push(e);
        }
        out
    };
    let a = drain(&mut adults);
    assert_eq!(
        a.iter()
            .map(|e| (e.operation, e.id.clone()))
            .collect::<Vec<_>>(),
        vec![
            (OpKind::Insert, Some(json!(1))),
            (OpKind::Update, Some(json!(2)))
        ]
    );
    assert_eq!(a[1].document, Some(json!({"_id": 2, "age": 20})));
    let d = drain(&mut deletes);
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].id.clone(), d[0].document.clone()),
        (Some(json!(1)), None)
    );
    let all = drain(&mut everything);
    assert_eq!(all.len(), 6);
    assert_eq!(all[5].operation, OpKind::CreateIndex);
    assert_eq!(all[5].detail.as_ref().unwrap()["name"], "age_1");
    #[derive(serde::Deserialize)]
    struct U {
        age: u32,
    }
    assert_eq!(all[0].document_as::<U>().unwrap().age, 30);
    assert!(
        all[4].document_as::<U>().is_err(),
        "a delete has no document"
    );
    assert!(users.watch(json!({"age": {"$bogus": 1}})).is_err());
}

#[test]
fn a_watcher_behind_the_retained_log_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().log_retention(LogRetention::default().max_entries(50)),
    )
    .unwrap();
    let c = db.collection("c").unwrap();
    let mut slow = db.watch().unwrap();
    for i in 0..200 {
        c.insert_one(json!({"_id": i})).unwrap();
    }
    let (first, last) = db.log_bounds().unwrap();
    assert_eq!(last, 201);
    assert!(
        first > 100 && last - first < 100,
        "retention kept {first}..{last}"
    );
    match slow.next().unwrap() {
        Err(Error::LogTruncated {
            requested,
            first_available,
        }) => assert_eq!((requested, first_available), (2, first)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        db.read_log_frames(0, 100),
        Err(Error::LogTruncated { .. })
    ));
    // From a retained position it works.
    let mut fresh = db.watch_from(first);
    assert_eq!(fresh.next().unwrap().unwrap().lsn, first + 1);
}

#[test]
fn durable_consumers_survive_restart_and_hold_back_retention() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || {
        DatabaseOptions::default().log_retention(
            LogRetention::default()
                .max_entries(20)
                .hard_limits(300, 1 << 30),
        )
    };
    {
        let db = Database::open_with(dir.path(), opts()).unwrap();
        let c = db.collection("c").unwrap();
        let indexer = db.consumer("search-indexer").unwrap();
        assert_eq!(indexer.position().unwrap(), 1);
        for i in 0..100 {
            c.insert_one(json!({"_id": i})).unwrap();
        }
        let mut changes = indexer.changes().unwrap();
        for _ in 0..10 {
            let ev = changes.next().unwrap().unwrap();
            assert!(ev.last_in_entry);
            indexer.ack(ev.lsn).unwrap();
        }
        assert_eq!(indexer.position().unwrap(), 11);
        assert!(indexer.ack(10).is_ok(), "an older ack is harmless");
        assert_eq!(indexer.position().unwrap(), 11);
        assert!(matches!(
            indexer.ack(10_000),
            Err(Error::InvalidConsumer(_))
        ));
        // Retention (20 entries, enforced as entries are appended) is held
        // back by the consumer at 11.
        for i in 100..140 {
            c.insert_one(json!({"_id": i})).unwrap();
        }
        assert_eq!(db.log_bounds().unwrap(), (12, 141));
    }
    let db = Database::open_with(dir.path(), opts()).unwrap();
    assert_eq!(
        db.consumers().unwrap(),
        vec![("search-indexer".to_owned(), 11)]
    );
    let indexer = db.consumer("search-indexer").unwrap();
    let ev = indexer.changes().unwrap().next().unwrap().unwrap();
    assert_eq!((ev.lsn, ev.id), (12, Some(json!(10))));
    // Past the hard limit entries go anyway, and the consumer is told.
    let c = db.collection("c").unwrap();
    for i in 140..500 {
        c.insert_one(json!({"_id": i})).unwrap();
    }
    assert!(matches!(
        indexer.changes().unwrap().next().unwrap(),
        Err(Error::LogTruncated { .. })
    ));
    assert!(db.drop_consumer("search-indexer").unwrap());
    assert!(db.consumer("").is_err());
}

#[test]
fn a_replica_database_refuses_writes_and_follows_frames_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    for i in 0..10 {
        c.insert_one(json!({"_id": i})).unwrap();
    }
    let replica =
        Database::open_with(rdir.path(), DatabaseOptions::default().replica(true)).unwrap();
    assert!(matches!(
        replica.collection("c"),
        Err(Error::InvalidCollection(_))
    ));
    let frames = db.read_log_frames(0, usize::MAX).unwrap();
    assert!(matches!(
        replica.apply_log_frames(&frames[3..]),
        Err(Error::LogGap {
            expected: 1,
            found: 4
        })
    ));
    assert_eq!(replica.apply_log_frames(&frames[..5]).unwrap(), 5);
    assert_eq!(
        replica.apply_log_frames(&frames).unwrap(),
        11,
        "overlap skipped"
    );
    assert_eq!(replica.apply_log_frames(&frames).unwrap(), 11);
    let rc = replica.collection("c").unwrap();
    assert_eq!(rc.count(json!({})).unwrap(), 10);
    assert!(matches!(
        rc.insert_one(json!({"_id": 99})),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(
        rc.create_index(IndexSpec::new([("a", 1)])),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(replica.begin(), Err(Error::ReadOnly)));
    assert!(matches!(replica.drop_collection("c"), Err(Error::ReadOnly)));
    // A consumer on a replica works (CDC from a follower).
    let cons = replica.consumer("cdc").unwrap();
    cons.ack(11).unwrap();
}

/// Commits with `commit(round)` while another thread sleeps in
/// `wait_for_commit`, until one round shows the commit woke it (not its poll
/// for other processes' commits); returns the last LSN.
fn commits_wake_the_waiter(db: &Database, start: u64, path: &str, commit: impl Fn(usize)) -> u64 {
    // A waiter asleep on the commit signal must be woken by the commit, not
    // by its next 50 ms poll for other processes' commits. A round in which a
    // poll deadline passed between "asleep" and "returned" proves nothing
    // either way and is repeated.
    let mut lsn = start;
    let mut conclusive = false;
    for round in 0..40 {
        let db2 = db.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(db2.wait_for_commit(lsn, Duration::from_secs(600)));
        });
        // A snapshot taken while it sleeps: from here on, only a wake-up or a
        // deadline can end its wait.
        let before = loop {
            let st = testing::commit_signal(db);
            if st.waiting > 0 {
                break st;
            }
            std::thread::yield_now();
        };
        commit(round);
        let woke = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                panic!("hang: {path}: wait_for_commit did not return after a commit")
            });
        assert_eq!(woke.unwrap(), lsn + 1);
        lsn += 1;
        let after = testing::commit_signal(db);
        if after.woken > before.woken {
            conclusive = true;
            break;
        }
        assert!(
            after.timed_out > before.timed_out,
            "{path}: wait_for_commit returned without a wake-up and without a poll: {before:?} -> {after:?}"
        );
    }
    assert!(
        conclusive,
        "{path}: in 40 rounds no commit woke the waiter: it only noticed commits by polling"
    );
    lsn
}

#[test]
fn a_snapshot_opens_at_its_lsn_and_wait_for_commit_wakes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    c.create_index(IndexSpec::new([("k", 1)])).unwrap();
    for i in 0..300 {
        c.insert_one(json!({"_id": i, "k": i % 10})).unwrap();
    }
    let snap_dir = tempfile::tempdir().unwrap();
    let lsn = db.snapshot_to(snap_dir.path().join("data.mdb")).unwrap();
    assert_eq!(lsn, db.last_lsn().unwrap());
    {
        let snap = Database::open(snap_dir.path()).unwrap();
        assert_eq!(snap.last_lsn().unwrap(), lsn);
        assert_eq!(contents(&snap), contents(&db));
        assert!(snap.verify().unwrap().is_ok());
    }
    // Both commit paths must wake a sleeping waiter: single statements
    // (group commit) and explicit transactions.
    let lsn = commits_wake_the_waiter(&db, lsn, "insert_one", |round| {
        c.insert_one(json!({"_id": format!("x{round}")})).unwrap();
    });
    let lsn = commits_wake_the_waiter(&db, lsn, "transaction", |round| {
        db.transaction(|tx| {
            tx.collection("c")?
                .insert_one(json!({"_id": format!("t{round}")}))
        })
        .unwrap();
    });
    assert_eq!(
        db.wait_for_commit(lsn, Duration::from_millis(10)).unwrap(),
        lsn,
        "times out with the current position"
    );
}

#[test]
fn the_commit_waiter_sees_every_acknowledged_lsn_and_its_error_reaches_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    db.set_commit_waiter(Some(Arc::new(move |lsn| {
        s2.lock().unwrap().push(lsn);
        if lsn == 3 {
            return Err(Error::Aborted("not replicated".into()));
        }
        Ok(())
    })));
    c.insert_one(json!({"_id": 1})).unwrap();
    assert!(matches!(
        c.insert_one(json!({"_id": 2})),
        Err(Error::Aborted(_))
    ));
    db.transaction(|tx| {
        tx.collection("c")?
            .insert_one(json!({"_id": 3}))
            .map(|_| ())
    })
    .unwrap();
    db.set_commit_waiter(None);
    c.insert_one(json!({"_id": 4})).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![2, 3, 4]);
    assert_eq!(c.count(json!({})).unwrap(), 4, "the data stays committed");
}

#[cfg(feature = "async")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_change_stream_yields_events() {
    use futures_core::Stream;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("c").unwrap();
    let mut stream = db.watch().unwrap().into_async();
    let writer = tokio::task::spawn_blocking(move || {
        for i in 0..50 {
            c.insert_one(json!({"_id": i})).unwrap();
        }
    });
    let mut got = Vec::new();
    while got.len() < 50 {
        let ev = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("an event within 30 s")
            .unwrap()
            .unwrap();
        got.push(ev.id.unwrap());
    }
    writer.await.unwrap();
    assert_eq!(got, (0..50).map(|i| json!(i)).collect::<Vec<_>>());
    fn is_stream<S: Stream>(_: &S) {}
    is_stream(&stream);
}
