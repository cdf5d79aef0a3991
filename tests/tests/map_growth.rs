//! Map growth while other threads read: the resize gate must not turn a live
//! `Find` iterator into a process-wide stall.

use std::sync::mpsc;
use std::time::Duration;

use collection_store::{testing, Database, DatabaseOptions};
use collection_store_tests::poll_until;
use serde_json::json;

/// Only a hang comes near these.
const HANG: Duration = Duration::from_secs(120);

/// Before c1b258b, `Store::grow` queued for the resize gate exclusively
/// (parking_lot `try_write_for(30 s)`), which queued every new reader of the
/// process behind it: with a `Find` iterator open in one thread and a growth
/// needed by another, an unrelated `count()` in a third thread waited until
/// the growth gave up (30 s, 90 s across consecutive attempts).
///
/// Checked as an order of events, not a duration: with the writer proven to
/// be waiting to grow the map (the iterator holds the gate), the `count()`
/// must finish while that growth is still waiting — not after it gave up —
/// and once the iterator ends, every write succeeds.
#[test]
fn a_live_iterator_and_a_map_growth_do_not_stall_other_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        tmp.path(),
        DatabaseOptions::default().initial_map_size(1 << 20),
    )
    .unwrap();
    let a = db.collection("a").unwrap();
    for i in 0..10 {
        a.insert_one(json!({"_id": i})).unwrap();
    }
    let big = db.collection("big").unwrap();
    let before = testing::map_growth(&db);
    assert_eq!(before.waiting, 0);
    // Thread 1 (here): an iterator in progress, e.g. an export.
    let mut it = a.find(json!({})).into_iter();
    assert!(it.next().is_some());
    // Thread 2: writes that outgrow the 1 MiB map.
    let writer = std::thread::spawn(move || {
        let pad = "p".repeat(200_000);
        (0..8)
            .map(|i| {
                let r = big.insert_one(json!({"_id": i, "pad": pad}));
                (i, r.map(|_| ()).map_err(|e| e.to_string()))
            })
            .collect::<Vec<_>>()
    });
    // The writer now waits to grow the map: the live iterator holds the gate.
    poll_until("the writer to wait for a map growth", HANG, || {
        (testing::map_growth(&db).waiting > 0).then_some(())
    })
    .unwrap();
    // Thread 3: an unrelated read.
    let (tx, rx) = mpsc::channel();
    let db3 = db.clone();
    std::thread::spawn(move || {
        let n = db3.collection("a").unwrap().count(json!({})).unwrap();
        let _ = tx.send((n, testing::map_growth(&db3)));
    });
    let (n, during) = rx
        .recv_timeout(HANG)
        .expect("hang: a count() in another thread never finished while a map growth waited");
    assert_eq!(n, 10);
    assert!(
        during.waiting > 0 && during.gave_up == before.gave_up,
        "the count() finished only after the pending growth stopped waiting \
         ({before:?} -> {during:?}): readers queued behind the growth"
    );
    // The iterator ends: the pending growth can proceed.
    drop(it);
    let writes = writer.join().unwrap();
    let failed: Vec<_> = writes.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "writes failed although the iterator ended: {failed:#?}"
    );
    let after = testing::map_growth(&db);
    assert!(after.grown > before.grown, "the map never grew: {after:?}");
    assert_eq!(after.gave_up, before.gave_up);
    let r = db.verify().unwrap();
    assert!(r.is_ok(), "{:#?}", r.problems);
}
