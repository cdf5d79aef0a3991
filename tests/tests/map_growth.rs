//! Map growth while other threads read: the resize gate must not turn a live
//! `Find` iterator into a process-wide stall.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use collection_store::{Database, DatabaseOptions};
use serde_json::json;

/// Before c1b258b, `Store::grow` queued for the resize gate exclusively
/// (parking_lot `try_write_for(30 s)`), which queued every new reader of the
/// process behind it: with a `Find` iterator open in one thread and a growth
/// needed by another, an unrelated `count()` in a third thread waited the
/// whole 30 s (90 s across consecutive attempts).
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
    // Thread 1 (here): an iterator in progress, e.g. an export.
    let mut it = a.find(json!({})).into_iter();
    assert!(it.next().is_some());
    // Thread 2: writes that outgrow the 1 MiB map.
    let writer = std::thread::spawn(move || {
        let pad = "p".repeat(200_000);
        (0..8)
            .map(|i| {
                let t = Instant::now();
                let r = big.insert_one(json!({"_id": i, "pad": pad}));
                (i, r.map(|_| ()).map_err(|e| e.to_string()), t.elapsed())
            })
            .collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_millis(300));
    // Thread 3: an unrelated read.
    let (tx, rx) = mpsc::channel();
    let db3 = db.clone();
    std::thread::spawn(move || {
        let t = Instant::now();
        let n = db3.collection("a").unwrap().count(json!({})).unwrap();
        let _ = tx.send((n, t.elapsed()));
    });
    let read = rx.recv_timeout(Duration::from_secs(5));
    // The iterator ends: the pending growth can proceed.
    drop(it);
    let writes = writer.join().unwrap();
    assert!(
        read.is_ok(),
        "a count() in another thread did not finish within 5 s while a map growth waited for a live iterator"
    );
    assert_eq!(read.unwrap().0, 10);
    let failed: Vec<_> = writes.iter().filter(|(_, r, _)| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "writes failed although the iterator ended well within the growth wait: {failed:#?}"
    );
    let r = db.verify().unwrap();
    assert!(r.is_ok(), "{:#?}", r.problems);
}
