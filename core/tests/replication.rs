//! Read replicas over real TCP sockets on 127.0.0.1 (port 0) and real
//! directories: convergence under concurrent writes, restarts without gaps or
//! duplicates, snapshot bootstrap after log truncation, semi-synchronous
//! acknowledgement, authentication, malformed frames, read-only replicas and
//! reconnection after network faults. Every wait is bounded and fails with a
//! message; no assertion depends on timing.
//!
//! The SIGKILL variants (a replica process killed mid-stream, a semi-synchronous
//! primary process killed right after acknowledging) are in
//! `tests/tests/replication_processes.rs`.
#![cfg(feature = "replication")]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collection_store::replication::protocol::{self, Message};
use collection_store::replication::{
    open_replica_dir, OnTimeout, Primary, PrimaryConfig, PrimaryHandle, Replica, ReplicaConfig,
    ReplicaState, SemiSync,
};
use collection_store::LogRetention;
use collection_store::{Database, DatabaseOptions, Error, IndexSpec, Lsn};
use serde_json::{json, Value};

const SECRET: &[u8] = b"test secret: 0123456789abcdef";
const WAIT: Duration = Duration::from_secs(20);

fn replica_config() -> ReplicaConfig {
    ReplicaConfig::new(SECRET).backoff(Duration::from_millis(10), Duration::from_millis(200))
}

fn serve(db: &Database) -> PrimaryHandle {
    Primary::serve(
        db.clone(),
        "127.0.0.1:0",
        PrimaryConfig::new(SECRET).heartbeat_interval(Duration::from_millis(100)),
    )
    .expect("serve")
}

fn catch_up(primary: &Database, replica: &Replica) -> Lsn {
    let last = primary.last_lsn().unwrap();
    replica.wait_for_lsn(last, WAIT).unwrap_or_else(|e| {
        panic!(
            "replica did not catch up: {e}; status {:?}",
            replica.status()
        )
    })
}

/// Polls `cond` every few milliseconds for up to [`WAIT`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every collection's documents (primary-key order) and index specifications.
fn dump(db: &Database) -> BTreeMap<String, (Vec<Value>, Value)> {
    let mut out = BTreeMap::new();
    for name in db.list_collections().unwrap() {
        let c = db.collection(&name).unwrap();
        let docs = c.find(json!({})).to_vec().unwrap();
        let indexes = serde_json::to_value(c.list_indexes().unwrap()).unwrap();
        out.insert(name, (docs, indexes));
    }
    out
}

/// The LSNs and bytes of every retained log frame.
fn log_of(db: &Database) -> Vec<(Lsn, Vec<u8>)> {
    let mut out = Vec::new();
    let mut after = db.log_bounds().unwrap().0.saturating_sub(1);
    loop {
        let frames = db.read_log_frames(after, 1 << 20).unwrap();
        let Some(last) = frames.last() else { break };
        after = last.0;
        out.extend(frames);
    }
    out
}

fn setup_primary(db: &Database) {
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .unwrap();
    users.create_index(IndexSpec::new([("age", 1)])).unwrap();
    db.collection("orders").unwrap();
}

/// Random-ish workload of one thread: inserts, updates, deletes and
/// cross-collection transactions.
fn workload(db: &Database, thread: u64, ops: u64) {
    let users = db.collection("users").unwrap();
    let orders = db.collection("orders").unwrap();
    for i in 0..ops {
        let id = thread * 1_000_000 + i;
        match i % 5 {
            0 | 1 => {
                users
                    .insert_one(json!({"_id": id, "email": format!("u{id}@x"), "age": (id * 7) % 60 + 18, "tags": ["a", format!("t{}", i % 3)]}))
                    .unwrap();
            }
            2 => {
                users
                    .update_one(
                        json!({"_id": id - 1}),
                        json!({"$inc": {"age": 1}, "$set": {"seen": true}}),
                    )
                    .unwrap();
            }
            3 => {
                db.transaction(|tx| {
                    tx.collection("orders")?
                        .insert_one(json!({"_id": id, "user": id - 2, "total": i as f64 * 1.5}))?;
                    tx.collection("users")?
                        .update_one(json!({"_id": id - 2}), json!({"$push": {"tags": "buyer"}}))?;
                    Ok(())
                })
                .unwrap();
            }
            _ => {
                if i % 10 == 9 {
                    users.delete_one(json!({"_id": id - 4})).unwrap();
                    orders.delete_many(json!({"user": id - 4})).unwrap();
                } else {
                    users
                        .replace_one(
                            json!({"_id": id - 3}),
                            json!({"email": format!("r{id}@x"), "age": 40}),
                        )
                        .unwrap();
                }
            }
        }
    }
}

fn assert_same(primary: &Database, replica: &Database) {
    let p = dump(primary);
    let r = dump(replica);
    assert_eq!(p.keys().collect::<Vec<_>>(), r.keys().collect::<Vec<_>>());
    for (name, (docs, idx)) in &p {
        let (rdocs, ridx) = &r[name];
        assert_eq!(docs.len(), rdocs.len(), "{name}: document count");
        assert_eq!(docs, rdocs, "{name}: documents differ");
        assert_eq!(idx, ridx, "{name}: indexes differ");
    }
    let report = replica.verify().unwrap();
    assert!(report.is_ok(), "replica verify: {:?}", report.problems);
}

#[test]
fn replica_converges_under_concurrent_writes() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    setup_primary(&db);
    let primary = serve(&db);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();

    let threads: Vec<_> = (1..=4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || workload(&db, t, 150))
        })
        .collect();
    // DDL while writes run.
    db.collection("users")
        .unwrap()
        .create_index(IndexSpec::new([("tags", 1)]))
        .unwrap();
    for t in threads {
        t.join().unwrap();
    }
    db.collection("scratch")
        .unwrap()
        .insert_one(json!({"x": 1}))
        .unwrap();
    assert!(db.drop_collection("scratch").unwrap());
    let lsn = catch_up(&db, &replica);
    assert_eq!(lsn, db.last_lsn().unwrap());

    let rdb = replica.database();
    assert_same(&db, &rdb);
    // Same answers to indexed queries, planned over the same indexes.
    let (pu, ru) = (
        db.collection("users").unwrap(),
        rdb.collection("users").unwrap(),
    );
    let q = json!({"age": {"$gte": 30, "$lt": 60}});
    let sorted = |c: &collection_store::Collection| {
        c.find(q.clone())
            .sort(json!({"age": -1}))
            .limit(25)
            .to_vec()
            .unwrap()
    };
    assert_eq!(sorted(&pu), sorted(&ru));
    assert!(!sorted(&ru).is_empty());
    assert_eq!(pu.count(q.clone()).unwrap(), ru.count(q.clone()).unwrap());
    assert_eq!(pu.count(json!({})).unwrap(), ru.count(json!({})).unwrap());
    let ex = ru.explain(q.clone()).unwrap();
    assert_eq!(ex.index.as_deref(), Some("age_1"), "replica plan: {ex:?}");
    assert_eq!(
        ru.find(json!({"tags": "buyer"})).to_vec().unwrap(),
        pu.find(json!({"tags": "buyer"})).to_vec().unwrap()
    );
    assert_eq!(
        ru.explain(json!({"tags": "buyer"}))
            .unwrap()
            .index
            .as_deref(),
        Some("tags_1")
    );
    // The replica stores the primary's log entries byte for byte, under the same LSNs.
    assert_eq!(log_of(&db), log_of(&rdb));
    let st = replica.status();
    assert_eq!(st.applied_lsn, lsn);
    assert!(st.connected);
    assert!(st.bytes_received > 0);
    assert_eq!(st.lag_entries, Some(0));
    assert_eq!(st.state, ReplicaState::Connected);
    let infos = primary.replicas();
    assert_eq!(infos.len(), 1);
    wait_until("the primary to record the acknowledgement", || {
        primary.replicas()[0].acked_lsn == lsn
    });
}

#[test]
fn replica_rejects_writes() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    setup_primary(&db);
    db.collection("users")
        .unwrap()
        .insert_one(json!({"_id": 1, "email": "a@x", "age": 20}))
        .unwrap();
    let primary = serve(&db);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    let rdb = replica.database();
    let users = rdb.collection("users").unwrap();
    let ro = |r: Result<(), Error>, what: &str| match r {
        Err(Error::ReadOnly) => {}
        other => panic!("{what}: expected Error::ReadOnly, got {other:?}"),
    };
    ro(users.insert_one(json!({"_id": 2})).map(drop), "insert");
    ro(
        users
            .update_one(json!({"_id": 1}), json!({"$set": {"age": 1}}))
            .map(drop),
        "update",
    );
    ro(users.delete_one(json!({"_id": 1})).map(drop), "delete");
    ro(
        users.create_index(IndexSpec::new([("name", 1)])).map(drop),
        "create_index",
    );
    ro(rdb.begin().map(drop), "begin");
    ro(rdb.transaction(|_| Ok(())), "transaction");
    ro(rdb.drop_collection("users").map(drop), "drop_collection");
    match rdb.collection("new_one") {
        Err(e) => assert!(e.to_string().contains("read-only"), "{e}"),
        Ok(_) => panic!("a replica created a collection"),
    }
    // Applying frames is the only way in; nothing changed.
    assert_eq!(users.count(json!({})).unwrap(), 1);
    assert_eq!(users.get(json!(1)).unwrap().unwrap()["age"], 20);
    // The directory opened without following is read-only too.
    drop(rdb);
    drop(users);
    replica.shutdown();
    let offline = open_replica_dir(rdir.path()).unwrap();
    ro(
        offline
            .collection("users")
            .unwrap()
            .insert_one(json!({"_id": 3}))
            .map(drop),
        "offline insert",
    );
}

#[test]
fn replica_restart_resumes_without_gaps_or_duplicates() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    setup_primary(&db);
    let primary = serve(&db);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let users = db.collection("users").unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                users
                    .insert_one(json!({"_id": i, "email": format!("e{i}"), "age": i % 50}))
                    .unwrap();
                if i.is_multiple_of(3) {
                    users
                        .update_one(json!({"_id": i / 2}), json!({"$inc": {"n": 1}}))
                        .unwrap();
                }
                i += 1;
            }
            i
        })
    };
    let mut seen = Vec::new();
    for round in 0..4 {
        let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
        // Let it apply something new, then stop it mid-stream.
        let start = replica.status().applied_lsn;
        let got = replica.wait_for_change(start, WAIT);
        assert!(
            got > start,
            "round {round}: replica made no progress: {:?}",
            replica.status()
        );
        seen.push(got);
        drop(replica);
        // Reopened offline: the log is contiguous and matches the primary's prefix.
        let off = open_replica_dir(rdir.path()).unwrap();
        let rlog = log_of(&off);
        assert_eq!(rlog.first().map(|f| f.0), Some(1));
        for w in rlog.windows(2) {
            assert_eq!(w[0].0 + 1, w[1].0, "gap or duplicate in the replica's log");
        }
        let plog = db.read_log_frames(0, usize::MAX).unwrap();
        assert_eq!(
            &plog[..rlog.len()],
            &rlog[..],
            "round {round}: replica log differs"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let n = writer.join().unwrap();
    assert!(n > 0);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    assert_same(&db, &replica.database());
    assert_eq!(log_of(&db), log_of(&replica.database()));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn snapshot_bootstrap_after_log_truncation() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        pdir.path(),
        DatabaseOptions::default().log_retention(LogRetention::default().max_entries(20)),
    )
    .unwrap();
    setup_primary(&db);
    let users = db.collection("users").unwrap();
    for i in 0..300u64 {
        users
            .insert_one(
                json!({"_id": i, "email": format!("s{i}"), "age": i % 70, "pad": "x".repeat(200)}),
            )
            .unwrap();
    }
    let (first, last) = db.log_bounds().unwrap();
    assert!(
        first > 1,
        "retention did not truncate the log: bounds ({first}, {last})"
    );

    // Small chunks, so the snapshot travels in many pieces.
    let primary = Primary::serve(
        db.clone(),
        "127.0.0.1:0",
        PrimaryConfig::new(SECRET).snapshot_chunk(64 * 1024),
    )
    .unwrap();
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    assert_eq!(replica.status().snapshots_installed, 1);
    assert_same(&db, &replica.database());
    // It keeps following the log after the snapshot.
    for i in 300..350u64 {
        users
            .insert_one(json!({"_id": i, "email": format!("s{i}"), "age": 1}))
            .unwrap();
    }
    users.delete_many(json!({"age": {"$lt": 5}})).unwrap();
    catch_up(&db, &replica);
    assert_same(&db, &replica.database());
    assert_eq!(replica.status().snapshots_installed, 1);

    // A replica stopped and left behind the retained log again: a reader holding
    // the old database keeps its consistent view while the new snapshot installs.
    let old_handle = replica.database();
    let old_count = old_handle
        .collection("users")
        .unwrap()
        .count(json!({}))
        .unwrap();
    drop(replica);
    for i in 350..500u64 {
        users
            .insert_one(json!({"_id": i, "email": format!("s{i}"), "age": 2}))
            .unwrap();
    }
    assert!(db.log_bounds().unwrap().0 > old_handle.last_lsn().unwrap() + 1);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    assert_eq!(
        replica.status().snapshots_installed,
        1,
        "one more snapshot on this run"
    );
    assert_same(&db, &replica.database());
    assert_eq!(
        old_handle
            .collection("users")
            .unwrap()
            .count(json!({}))
            .unwrap(),
        old_count
    );
    drop(old_handle);
    assert_eq!(primary.replicas()[0].snapshots_sent, 1);
    // No temporary snapshot file is left in the primary's directory.
    let leftovers: Vec<_> = std::fs::read_dir(pdir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("snapshot"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Restarted again, the installed generation is the one reopened.
    drop(replica);
    let off = open_replica_dir(rdir.path()).unwrap();
    assert_eq!(off.last_lsn().unwrap(), db.last_lsn().unwrap());
}

/// A replica restarted right after installing a snapshot (it has applied
/// nothing since, so its own log holds none of its entries) reconnects: once
/// while the primary still holds that position, once after the primary
/// released it (a second snapshot).
#[test]
fn a_replica_restarted_right_after_a_snapshot_reconnects() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        pdir.path(),
        DatabaseOptions::default().log_retention(LogRetention::default().max_entries(20)),
    )
    .unwrap();
    let c = db.collection("c").unwrap();
    let insert = |from: u64, to: u64| {
        for i in from..to {
            c.insert_one(json!({"_id": i})).unwrap();
        }
    };
    insert(0, 100);
    let primary = serve(&db);
    let follow = || Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();

    let replica = follow();
    let at = catch_up(&db, &replica);
    assert_eq!(replica.status().snapshots_installed, 1);
    drop(replica);
    // The primary still retains entry `at`; the replica's log does not.
    assert!(db.log_bounds().unwrap().0 <= at);
    let replica = follow();
    replica.wait_connected(WAIT).unwrap();
    insert(100, 101);
    catch_up(&db, &replica);
    assert_eq!(
        replica.status().snapshots_installed,
        0,
        "no snapshot needed"
    );
    assert_same(&db, &replica.database());

    // Installed from a snapshot again, then the primary moves past it.
    drop(replica);
    insert(101, 200);
    let replica = follow();
    let at = catch_up(&db, &replica);
    assert_eq!(replica.status().snapshots_installed, 1);
    drop(replica);
    insert(200, 300);
    assert!(db.log_bounds().unwrap().0 > at + 1);
    let replica = follow();
    catch_up(&db, &replica);
    assert_eq!(replica.status().snapshots_installed, 1);
    assert_same(&db, &replica.database());
}

#[test]
fn semi_sync_waits_for_the_replica() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    setup_primary(&db);
    let primary = Primary::serve(
        db.clone(),
        "127.0.0.1:0",
        PrimaryConfig::new(SECRET).semi_sync(SemiSync::new(1).timeout(Duration::from_secs(20))),
    )
    .unwrap();
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    let users = db.collection("users").unwrap();
    for i in 0..50u64 {
        users
            .insert_one(json!({"_id": i, "email": format!("m{i}"), "age": 30}))
            .unwrap();
        // Acknowledged means applied on the replica: no waiting needed here.
        let lsn = db.last_lsn().unwrap();
        assert!(
            replica.status().applied_lsn >= lsn,
            "write {i} acknowledged before the replica applied it"
        );
        assert!(replica
            .database()
            .collection("users")
            .unwrap()
            .get(json!(i))
            .unwrap()
            .is_some());
    }
    db.transaction(|tx| {
        tx.collection("users")?
            .insert_one(json!({"_id": 1000, "email": "t", "age": 1}))
    })
    .unwrap();
    assert!(replica.status().applied_lsn >= db.last_lsn().unwrap());
    drop(primary);
    drop(replica);
}

#[test]
fn semi_sync_timeout_fails_or_degrades() {
    let pdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    let users = db.collection("users").unwrap();
    let primary = Primary::serve(
        db.clone(),
        "127.0.0.1:0",
        PrimaryConfig::new(SECRET).semi_sync(SemiSync::new(1).timeout(Duration::from_millis(50))),
    )
    .unwrap();
    // No replica: Fail reports the write as committed locally but not confirmed.
    match users.insert_one(json!({"_id": 1})) {
        Err(Error::NotReplicated {
            confirmed: 0,
            required: 1,
            lsn,
            ..
        }) => {
            assert_eq!(lsn, db.last_lsn().unwrap());
        }
        other => panic!("expected NotReplicated, got {other:?}"),
    }
    let err = db
        .transaction(|tx| tx.collection("users")?.insert_one(json!({"_id": 2})))
        .unwrap_err();
    assert!(err.to_string().contains("committed locally"), "{err}");
    // Both writes are committed on the primary.
    assert_eq!(users.count(json!({})).unwrap(), 2);
    drop(primary);
    // Without the primary handle, writes no longer wait.
    users.insert_one(json!({"_id": 3})).unwrap();

    let primary = Primary::serve(
        db.clone(),
        "127.0.0.1:0",
        PrimaryConfig::new(SECRET).semi_sync(
            SemiSync::new(1)
                .timeout(Duration::from_millis(50))
                .on_timeout(OnTimeout::Degrade),
        ),
    )
    .unwrap();
    users.insert_one(json!({"_id": 4})).unwrap();
    assert!(primary.semi_sync_degraded());
    users.insert_one(json!({"_id": 5})).unwrap();
    // A replica catching up ends the degraded mode.
    let rdir = tempfile::tempdir().unwrap();
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    wait_until("semi-sync to leave degraded mode", || {
        !primary.semi_sync_degraded()
    });
    users.insert_one(json!({"_id": 6})).unwrap();
    assert!(replica.status().applied_lsn >= db.last_lsn().unwrap());
    drop(primary);

    // K = 2 with one replica connected: confirmed by 1 of 2, reported as such.
    let primary = Primary::serve(
        db.clone(),
        "127.0.0.1:0",
        PrimaryConfig::new(SECRET).semi_sync(SemiSync::new(2).timeout(Duration::from_millis(100))),
    )
    .unwrap();
    drop(replica);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    match users.insert_one(json!({"_id": 7})) {
        Err(Error::NotReplicated {
            confirmed: 1,
            required: 2,
            ..
        }) => {}
        other => panic!("expected NotReplicated with 1 of 2, got {other:?}"),
    }
    // The one replica has it anyway.
    catch_up(&db, &replica);
    assert!(replica
        .database()
        .collection("users")
        .unwrap()
        .get(json!(7))
        .unwrap()
        .is_some());
}

#[test]
fn wrong_secret_is_refused_both_ways() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 1, "secret": "data"}))
        .unwrap();
    let primary = serve(&db);
    let replica = Replica::follow(
        primary.local_addr(),
        rdir.path(),
        ReplicaConfig::new(b"another secret, 0123456789".to_vec())
            .backoff(Duration::from_millis(10), Duration::from_millis(50)),
    )
    .unwrap();
    wait_until("the primary to refuse the replica", || {
        primary.auth_failures() >= 1
    });
    wait_until("the replica to report the refusal", || {
        replica
            .status()
            .last_error
            .is_some_and(|e| e.contains("unauthorized"))
    });
    let st = replica.status();
    assert!(!st.connected);
    assert_eq!(
        st.applied_lsn, 0,
        "nothing may be streamed to an unauthenticated peer"
    );
    assert!(st.last_error.unwrap().contains("shared secret"));
    assert!(primary.replicas().is_empty());
    assert!(primary.last_error().unwrap().contains("unauthorized"));
    drop(replica);

    // A fake primary without the secret: the replica refuses before proving anything.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap();
    let rdir2 = tempfile::tempdir().unwrap();
    let replica = Replica::follow(addr, rdir2.path(), replica_config()).unwrap();
    let (mut s, _) = fake.accept().unwrap();
    let hello = read_frame(&mut s);
    assert!(matches!(hello, Message::Hello { .. }));
    let challenge = Message::Challenge {
        version: protocol::PROTOCOL_VERSION,
        nonce: [9; 32],
        proof: [0; 32],
    };
    s.write_all(&challenge.encode().unwrap()).unwrap();
    match read_frame(&mut s) {
        Message::Error { code, .. } => assert_eq!(code, protocol::code::UNAUTHORIZED),
        other => panic!("the replica answered a fake primary with {other:?}"),
    }
    wait_until("the replica to report the fake primary", || {
        replica
            .status()
            .last_error
            .is_some_and(|e| e.contains("did not prove"))
    });
    assert_eq!(replica.status().applied_lsn, 0);
}

fn read_frame(s: &mut TcpStream) -> Message {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    let len = u32::from_le_bytes(head) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    Message::decode(body[0], &body[1..]).unwrap()
}

/// The connection was closed by the peer (EOF or reset), possibly after an Error frame.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("peer neither answered nor closed: {e}"),
        }
    }
}

#[test]
fn malformed_frames_are_refused_without_panic() {
    let pdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    db.collection("c")
        .unwrap()
        .insert_one(json!({"_id": 1}))
        .unwrap();
    let primary = serve(&db);
    let addr = primary.local_addr();
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0, 0, 0, 0],
        vec![0xff, 0xff, 0xff, 0xff, 1],
        vec![5, 0, 0, 0, 0x99, 1, 2, 3, 4],
        vec![3, 0, 0, 0, 0x01, b'C', b'S'],
        // A well-formed Ack before authenticating.
        Message::Ack { applied: 1 }.encode().unwrap(),
        // A Hello with an unknown version.
        Message::Hello {
            version: 999,
            nonce: [1; 32],
        }
        .encode()
        .unwrap(),
    ];
    for g in &garbage {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(g).unwrap();
        assert!(closed_by_peer(&mut s), "{g:?}");
    }
    // Random bytes.
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).unwrap();
        let bytes: Vec<u8> = (0..64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        assert!(closed_by_peer(&mut s));
    }
    // After an authenticated handshake, a malformed frame still only ends that connection.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        collection_store::replication::auth::client_handshake(&mut s, SECRET)
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(&[2, 0, 0, 0, 0x10, 1]).await.unwrap(); // Follow without its fields
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
            .await
            .expect("closed");
    });
    // The primary still serves a real replica.
    let rdir = tempfile::tempdir().unwrap();
    let replica = Replica::follow(addr, rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    assert_eq!(
        replica
            .database()
            .collection("c")
            .unwrap()
            .count(json!({}))
            .unwrap(),
        1
    );
    assert!(primary.last_error().is_some());

    // A fake primary that authenticates nothing and sends garbage: the replica
    // reports a protocol error and keeps retrying, without panicking.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let rdir2 = tempfile::tempdir().unwrap();
    let replica2 =
        Replica::follow(fake.local_addr().unwrap(), rdir2.path(), replica_config()).unwrap();
    for g in &garbage {
        let (mut s, _) = fake.accept().unwrap();
        let _ = read_frame(&mut s);
        let _ = s.write_all(g);
        drop(s);
    }
    wait_until("the replica to record an error", || {
        replica2.status().last_error.is_some()
    });
    assert!(replica2.status().reconnects >= 1);
    assert_eq!(replica2.status().applied_lsn, 0);
}

#[test]
fn replica_reconnects_after_primary_restart() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    setup_primary(&db);
    let users = db.collection("users").unwrap();
    let primary = serve(&db);
    let addr = primary.local_addr();
    let replica = Replica::follow(addr, rdir.path(), replica_config()).unwrap();
    for i in 0..20u64 {
        users
            .insert_one(json!({"_id": i, "email": format!("f{i}"), "age": 1}))
            .unwrap();
    }
    catch_up(&db, &replica);
    // Network fault: the server goes away while writes continue.
    primary.shutdown();
    wait_until("the replica to notice the disconnection", || {
        !replica.status().connected
    });
    for i in 20..60u64 {
        users
            .insert_one(json!({"_id": i, "email": format!("f{i}"), "age": 2}))
            .unwrap();
    }
    // Restarted on the same port.
    let primary = Primary::serve(db.clone(), addr, PrimaryConfig::new(SECRET)).unwrap();
    catch_up(&db, &replica);
    assert!(replica.status().reconnects >= 1);
    assert_same(&db, &replica.database());
    // And the replica survives a primary that reappears on a new port after a
    // restart of the replica itself.
    drop(primary);
    drop(replica);
    for i in 60..80u64 {
        users
            .insert_one(json!({"_id": i, "email": format!("f{i}"), "age": 3}))
            .unwrap();
    }
    let primary = serve(&db);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    assert_same(&db, &replica.database());
}

#[test]
fn replica_ahead_of_primary_is_refused() {
    let pdir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    for i in 0..10 {
        db.collection("c")
            .unwrap()
            .insert_one(json!({"_id": i}))
            .unwrap();
    }
    let primary = serve(&db);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    catch_up(&db, &replica);
    drop(replica);
    drop(primary);
    // A different, shorter database served on a new port.
    let small = Database::open(other.path()).unwrap();
    small
        .collection("c")
        .unwrap()
        .insert_one(json!({"_id": 1}))
        .unwrap();
    let primary = serve(&small);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    wait_until("the replica to be refused", || {
        replica
            .status()
            .last_error
            .is_some_and(|e| e.contains("ahead") || e.contains("another database"))
    });
    assert_eq!(replica.status().applied_lsn, db.last_lsn().unwrap());
    drop(replica);
    drop(primary);
    // A different database with a longer log: same positions, different history.
    for i in 0..30 {
        small
            .collection("d")
            .unwrap()
            .insert_one(json!({"_id": i, "other": true}))
            .unwrap();
    }
    assert!(small.last_lsn().unwrap() > db.last_lsn().unwrap());
    let primary = serve(&small);
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    wait_until("the diverged replica to be refused", || {
        replica
            .status()
            .last_error
            .is_some_and(|e| e.contains("diverged"))
    });
    assert_eq!(replica.status().applied_lsn, db.last_lsn().unwrap());
    assert!(replica
        .database()
        .list_collections()
        .unwrap()
        .iter()
        .all(|c| c != "d"));
    drop(primary);
}

#[test]
fn corrupt_snapshot_is_discarded() {
    let rdir = tempfile::tempdir().unwrap();
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap();
    fake.set_nonblocking(true).unwrap();
    // A primary that knows the secret but sends snapshots that do not verify.
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(fake).unwrap();
            let bad: Vec<Vec<Message>> = vec![
                // Wrong checksum over an empty file.
                vec![
                    Message::SnapshotBegin { lsn: 5, size: 0 },
                    Message::SnapshotEnd { sha256: [0; 32] },
                ],
                // A chunk that is not zstd.
                vec![
                    Message::SnapshotBegin { lsn: 5, size: 10 },
                    Message::SnapshotChunk {
                        raw_len: 10,
                        data: vec![1, 2, 3],
                    },
                ],
                // More bytes than announced.
                vec![
                    Message::SnapshotBegin { lsn: 5, size: 1 },
                    Message::SnapshotChunk {
                        raw_len: 10,
                        data: vec![1, 2, 3],
                    },
                ],
            ];
            let mut errors = Vec::new();
            for msgs in bad {
                let (mut s, _) = listener.accept().await.unwrap();
                collection_store::replication::auth::server_handshake(&mut s, SECRET, 5)
                    .await
                    .unwrap();
                let follow = protocol::read_message(&mut s).await.unwrap();
                assert!(
                    matches!(follow, Message::Follow { after: 0, .. }),
                    "{follow:?}"
                );
                for m in &msgs {
                    protocol::write_message(&mut s, m).await.unwrap();
                }
                // The replica hangs up.
                let mut buf = [0u8; 64];
                use tokio::io::AsyncReadExt;
                loop {
                    match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        Ok(Ok(_)) => continue,
                        Err(_) => panic!("the replica kept a bad snapshot's connection open"),
                    }
                }
                errors.push(());
            }
            errors.len()
        })
    });
    let replica = Replica::follow(addr, rdir.path(), replica_config()).unwrap();
    assert_eq!(server.join().unwrap(), 3);
    wait_until("the replica to report the bad snapshot", || {
        replica
            .status()
            .last_error
            .is_some_and(|e| e.contains("snapshot"))
    });
    let st = replica.status();
    assert_eq!(st.applied_lsn, 0);
    assert_eq!(st.snapshots_installed, 0);
    drop(replica);
    // The replica directory still opens on its (empty) generation.
    assert_eq!(
        open_replica_dir(rdir.path()).unwrap().last_lsn().unwrap(),
        0
    );
    assert!(!rdir.path().join("gen-000002").exists());
}

#[test]
fn bad_configuration_is_a_typed_error() {
    let pdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    assert!(matches!(
        Primary::serve(
            db.clone(),
            "127.0.0.1:0",
            PrimaryConfig::new(b"short".to_vec())
        ),
        Err(Error::Replication(_))
    ));
    assert!(matches!(
        Primary::serve(
            db.clone(),
            "127.0.0.1:0",
            PrimaryConfig::new(SECRET).semi_sync(SemiSync::new(0))
        ),
        Err(Error::Replication(_))
    ));
    // A plain database directory is not a replica directory.
    assert!(matches!(
        Replica::follow("127.0.0.1:1", pdir.path(), replica_config()),
        Err(Error::Replication(_))
    ));
    let _ = Path::new("");
}

#[test]
fn follow_to_an_unreachable_primary_reports_the_connection_state() {
    // A port nobody listens on: connections are refused.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let rdir = tempfile::tempdir().unwrap();
    // `follow` returns once the local database is open; connecting happens in
    // the background, and the status says how it goes.
    let replica = Replica::follow(addr, rdir.path(), replica_config()).unwrap();
    wait_until("the first failed attempt", || {
        replica.status().last_error.is_some()
    });
    let st = replica.status();
    assert_eq!(st.state, ReplicaState::Connecting);
    assert!(!st.connected);
    assert_eq!(st.lag_entries, None, "the lag is unknown, not 0");
    assert_eq!(st.lag_ms, None);
    assert_eq!(st.since_contact_ms, None);
    let err = st.last_error.unwrap().to_lowercase();
    assert!(err.contains("refused"), "{err}");
    match replica
        .wait_connected(Duration::from_millis(200))
        .unwrap_err()
    {
        Error::Replication(m) => {
            assert!(m.contains(&addr.to_string()), "{m}");
            assert!(m.contains("never connected"), "{m}");
            assert!(m.to_lowercase().contains("refused"), "{m}");
        }
        other => panic!("expected a replication error, got {other:?}"),
    }
    // wait_for_lsn looks at the local position only; its timeout names the
    // connection state.
    assert_eq!(replica.wait_for_lsn(0, WAIT).unwrap(), 0);
    let m = replica
        .wait_for_lsn(1, Duration::from_millis(100))
        .unwrap_err()
        .to_string();
    assert!(m.contains("never connected"), "{m}");
}

#[test]
fn lag_is_unknown_while_disconnected_and_behind() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    let c = db.collection("c").unwrap();
    let primary = serve(&db);
    let addr = primary.local_addr();
    let replica = Replica::follow(addr, rdir.path(), replica_config()).unwrap();
    replica.wait_connected(WAIT).unwrap();
    for i in 0..5u64 {
        c.insert_one(json!({"_id": i})).unwrap();
    }
    let caught_up = catch_up(&db, &replica);
    primary.shutdown();
    wait_until("the replica to notice the disconnection", || {
        !replica.status().connected
    });
    // The primary moves on while the replica cannot hear it.
    for i in 5..15u64 {
        c.insert_one(json!({"_id": i})).unwrap();
    }
    let st = replica.status();
    assert_eq!(st.state, ReplicaState::Disconnected);
    assert_eq!(st.applied_lsn, caught_up);
    assert!(st.primary_lsn <= caught_up, "the last position heard");
    assert_eq!(
        st.lag_entries, None,
        "behind by an unknown number of entries, not 0"
    );
    assert_eq!(st.lag_ms, None);
    assert!(st.since_contact_ms.is_some());
    // Reconnected, the lag is known again and reaches 0.
    let _primary = Primary::serve(db.clone(), addr, PrimaryConfig::new(SECRET)).unwrap();
    replica.wait_connected(WAIT).unwrap();
    let last = catch_up(&db, &replica);
    assert!(last > caught_up);
    wait_until("the lag to be reported as 0", || {
        replica.status().lag_entries == Some(0)
    });
}
