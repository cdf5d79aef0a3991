//! Paths of the write layer that ordinary workloads reach only by chance,
//! forced deterministically through `#[cfg(test)]` hooks: the group-commit
//! leader panicking mid-commit (its batch gets errors, leadership passes on),
//! and an explicit transaction rebuilt after map growth while another
//! process's writer committed (refused with `Error::WriteConflict`, nothing of it kept).
//!
//! Waits are on conditions; each has a generous deadline that only turns a
//! hang into a failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::group::{Group, Stage};
use crate::storage::Table;
use crate::{Database, DatabaseOptions, Error};

/// Generous: only a hang gets anywhere near it.
const HANG: Duration = Duration::from_secs(120);

/// Waits until `cond` holds; panics (a hang, not a slow machine) after [`HANG`].
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < deadline, "hang: {what}");
        std::thread::yield_now();
    }
}

/// Runs an insert of `_id: id` on its own thread; its result arrives on the
/// returned channel.
fn insert_on_thread(db: &Database, id: &str) -> mpsc::Receiver<crate::Result<serde_json::Value>> {
    let (tx, rx) = mpsc::channel();
    let c = db.collection("c").unwrap();
    let id = id.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(c.insert_one(json!({ "_id": id })));
    });
    rx
}

#[test]
fn a_leader_that_panics_mid_commit_fails_its_batch_and_hands_leadership_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.collection("c").unwrap();
    let (events, seen) = mpsc::channel::<Stage>();
    let turns = Arc::new(AtomicUsize::new(0));
    let t2 = turns.clone();
    // The first leader: before taking its batch it waits until a second unit
    // ("c") queued behind its own ("a"); with both taken it waits until a
    // third ("b") queued, then panics as if the commit had.
    let hook = move |g: &Group, stage: Stage| {
        if t2.load(Ordering::SeqCst) > 0 {
            return; // later leaders run normally
        }
        let _ = events.send(stage);
        match stage {
            Stage::BeforeTake => wait_until("a second statement to queue", || {
                g.queued_and_in_batch().0 >= 2
            }),
            Stage::BeforeCommit(n) => {
                assert_eq!(n, 2, "the first batch holds 'a' and 'c'");
                wait_until("a third statement to queue", || {
                    g.queued_and_in_batch().0 >= 1
                });
                t2.fetch_add(1, Ordering::SeqCst);
                panic!("injected panic in the group commit");
            }
        }
    };
    *db.inner.group.hook.lock() = Some(Arc::new(hook));

    let c = db.collection("c").unwrap();
    let leader = std::thread::spawn(move || c.insert_one(json!({"_id": "a"})));
    assert_eq!(seen.recv_timeout(HANG).unwrap(), Stage::BeforeTake);
    let member = insert_on_thread(&db, "c");
    assert_eq!(seen.recv_timeout(HANG).unwrap(), Stage::BeforeCommit(2));
    let next = insert_on_thread(&db, "b");

    // The leader's own statement propagates its panic.
    let panic = leader
        .join()
        .expect_err("the leader's insert did not panic");
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"injected panic in the group commit")
    );
    // Its batch mate gets an error saying nothing of it was committed.
    match member
        .recv_timeout(HANG)
        .expect("hang: the panicking leader's batch mate got no outcome")
    {
        Err(Error::TransactionClosed(m)) => assert!(m.contains("panicked"), "{m}"),
        other => panic!("the batch mate got {other:?}"),
    }
    // The statement queued behind the batch is led and committed by its own thread.
    let b = next
        .recv_timeout(HANG)
        .expect("hang: leadership was not handed over after the leader panicked");
    assert_eq!(b.unwrap(), json!("b"));
    assert_eq!(db.inner.group.queued_and_in_batch(), (0, 0));
    *db.inner.group.hook.lock() = None;

    let c = db.collection("c").unwrap();
    let ids: Vec<_> = c
        .find(json!({}))
        .to_vec()
        .unwrap()
        .into_iter()
        .map(|d| d["_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!("b")],
        "nothing of the panicked batch was committed"
    );
    // The queue works on: a lone writer leads again.
    c.insert_one(json!({"_id": "a"})).unwrap();
    assert_eq!(c.count(json!({})).unwrap(), 2);
    assert!(db.verify().unwrap().is_ok());
}

/// An explicit transaction that fills a 1 MiB map; `rebuild` runs where the
/// transaction has let go of LMDB and the resize gate, before it is rebuilt.
/// Returns the transaction's result and how often the rebuild point was reached.
fn fill_the_map_in_a_transaction(
    rebuild: impl Fn(&Database) + Send + Sync + 'static,
) -> (tempfile::TempDir, Database, crate::Result<()>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().initial_map_size(1 << 20),
    )
    .unwrap();
    db.collection("big").unwrap();
    db.collection("other").unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let r2 = reached.clone();
    let weak = Arc::downgrade(&db.inner);
    let db_for_hook = move || Database {
        inner: weak.upgrade().expect("the database is open"),
    };
    *db.inner.rebuild_hook.lock() = Some(Arc::new(move || {
        r2.fetch_add(1, Ordering::SeqCst);
        rebuild(&db_for_hook());
    }));
    let pad = "p".repeat(100_000);
    let result = db.transaction(|tx| {
        let big = tx.collection("big")?;
        for i in 0..30 {
            big.insert_one(json!({"_id": i, "pad": pad}))?;
        }
        Ok(())
    });
    *db.inner.rebuild_hook.lock() = None;
    let n = reached.load(Ordering::SeqCst);
    (dir, db, result, n)
}

#[test]
fn a_transaction_rebuilt_after_map_growth_commits_when_nobody_wrote_meanwhile() {
    let (_d, db, result, reached) = fill_the_map_in_a_transaction(|_| {});
    assert!(reached > 0, "the transaction never had to grow the map");
    result.unwrap();
    assert_eq!(db.collection("big").unwrap().count(json!({})).unwrap(), 30);
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn a_transaction_rebuilt_after_another_writer_committed_is_a_write_conflict() {
    // Another process commits while the transaction waits to grow the map
    // (a writer of this process cannot: the transaction holds the process's
    // writer lock throughout). Simulated by two LMDB commits that bypass that
    // lock and leave the data as it was: a key put, then deleted.
    let (_d, db, result, reached) = fill_the_map_in_a_transaction(|db| {
        let store = &db.inner.store;
        let meta = store.table(Table::Meta);
        for put in [true, false] {
            let (_gate, mut txn) = store.write_as_another_process().unwrap();
            if put {
                meta.put(&mut txn, b"~foreign", b"1").unwrap();
            } else {
                meta.delete(&mut txn, b"~foreign").unwrap();
            }
            txn.commit().unwrap();
        }
    });
    assert_eq!(reached, 1, "the transaction stops at its first rebuild");
    assert!(
        matches!(result, Err(Error::WriteConflict)),
        "expected a write conflict, got {result:?}"
    );
    // Nothing of the transaction is kept.
    assert_eq!(db.collection("big").unwrap().count(json!({})).unwrap(), 0);
    assert!(db.verify().unwrap().is_ok());
    // The writer is free again.
    db.transaction(|tx| {
        tx.collection("big")?
            .insert_one(json!({"_id": 1}))
            .map(|_| ())
    })
    .unwrap();
    assert_eq!(db.collection("big").unwrap().count(json!({})).unwrap(), 1);
}
