//! Group commit, in process: concurrent single statements share LMDB commits.
//! Mixed good and failing statements in one group commit exactly the good
//! ones, each failing statement gets its own typed error; an acknowledged
//! write is visible before any write made after the acknowledgement; every
//! durability mode acknowledges only committed writes (checked after reopening
//! and after a SIGKILL); a batch that outgrows the map is re-run exactly once
//! per statement; explicit transactions and group commits do not deadlock.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use collection_store::{Database, DatabaseOptions, Durability, Error, IndexSpec};
use collection_store_tests::lmdb_last_txnid;
use serde_json::{json, Value};

fn modes() -> [(&'static str, Durability); 3] {
    [
        ("immediate", Durability::Immediate),
        (
            "batched",
            Durability::Batched {
                max_delay: Duration::from_millis(3),
            },
        ),
        ("none", Durability::None),
    ]
}

fn open(dir: &std::path::Path, d: Durability) -> Database {
    Database::open_with(dir, DatabaseOptions::default().durability(d)).unwrap()
}

/// Runs `f` on a thread and fails the test if it does not finish in `secs`
/// (a deadlock shows up as a failure, not a hung test run).
fn with_watchdog(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p)
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("not finished after {secs} s: deadlock in the write path?")
        }
    }
}

fn assert_verified(db: &Database) {
    let r = db.verify().unwrap();
    assert!(r.is_ok(), "verify: {:#?}", r.problems);
}

/// What thread `i` of round `r` does, and what it must get back.
fn mixed_statement(c: &collection_store::Collection, r: u64, i: u64) -> Result<Value, Error> {
    match i {
        // Pairs of threads race to insert the same _id: exactly one wins.
        0..=15 => c.insert_one(
            json!({"_id": format!("r{r}-d{}", i / 2), "email": format!("r{r}-d{i}@x")}),
        ),
        // $inc on a string.
        16..=23 => c
            .update_one(json!({"_id": "s"}), json!({"$inc": {"v": 1}}))
            .map(|u| json!(u.modified_count)),
        // Existing _id.
        24..=31 => c.insert_one(json!({"_id": format!("p{}", i - 24)})),
        // Unique secondary index violated by a new _id.
        32..=39 => c.insert_one(json!({"_id": format!("r{r}-u{i}"), "email": "taken@x"})),
        // Good increments of one counter.
        40..=47 => c
            .update_one(json!({"_id": "c"}), json!({"$inc": {"n": 1}}))
            .map(|u| json!(u.modified_count)),
        // Atomic insert_many whose second document collides: nothing inserted.
        48..=55 => c
            .insert_many(vec![
                json!({"_id": format!("r{r}-m{i}"), "email": format!("r{r}-m{i}@x")}),
                json!({"_id": "p0"}),
            ])
            .map(Value::from),
        // Good inserts.
        _ => c.insert_one(json!({"_id": format!("r{r}-g{i}"), "email": format!("r{r}-g{i}@x")})),
    }
}

fn check_mixed(r: u64, results: &[Result<Value, Error>]) {
    for pair in 0..8 {
        let (a, b) = (&results[2 * pair], &results[2 * pair + 1]);
        let wins = [a, b].iter().filter(|x| x.is_ok()).count();
        assert_eq!(wins, 1, "round {r} pair {pair}: {a:?} / {b:?}");
        for x in [a, b] {
            if let Err(e) = x {
                assert!(
                    matches!(e, Error::DuplicateKey { index, .. } if index == "_id_"),
                    "round {r} pair {pair}: loser got {e:?}"
                );
            }
        }
    }
    for (i, res) in results.iter().enumerate() {
        let i = i as u64;
        match i {
            0..=15 => {}
            16..=23 => assert!(
                matches!(res, Err(Error::TypeMismatch { operator, path, .. }) if operator == "$inc" && path == "v"),
                "round {r} thread {i}: {res:?}"
            ),
            24..=31 | 48..=55 => assert!(
                matches!(res, Err(Error::DuplicateKey { index, .. }) if index == "_id_"),
                "round {r} thread {i}: {res:?}"
            ),
            32..=39 => assert!(
                matches!(res, Err(Error::DuplicateKey { index, .. }) if index == "email_1"),
                "round {r} thread {i}: {res:?}"
            ),
            40..=47 => assert_eq!(res.as_ref().unwrap(), &json!(1), "round {r} thread {i}"),
            _ => assert_eq!(
                res.as_ref().unwrap(),
                &json!(format!("r{r}-g{i}")),
                "round {r} thread {i}"
            ),
        }
    }
}

fn check_mixed_state(db: &Database, rounds: u64) {
    let c = db.collection("mixed").unwrap();
    assert_eq!(
        c.find_one(json!({"_id": "c"})).unwrap().unwrap()["n"],
        json!(8 * rounds),
        "lost or duplicated increments"
    );
    assert_eq!(
        c.find_one(json!({"_id": "s"})).unwrap().unwrap()["v"],
        json!("str")
    );
    // s, c, e, p0..p7 + per round 8 race winners + 8 good inserts.
    let expected = 11 + 16 * rounds;
    assert_eq!(c.count(json!({})).unwrap(), expected);
    assert_eq!(c.find(json!({})).to_vec().unwrap().len() as u64, expected);
    assert_eq!(
        c.count(json!({"_id": {"$regex": "-(u|m)"}})).unwrap(),
        0,
        "a failed statement left a document"
    );
    assert_eq!(c.count(json!({"email": "taken@x"})).unwrap(), 1);
    assert_verified(db);
}

#[test]
fn mixed_good_and_failing_statements_commit_exactly_the_good_ones() {
    const THREADS: u64 = 64;
    const ROUNDS: u64 = 15;
    for (name, mode) in modes() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let db = open(tmp.path(), mode);
            let c = db.collection("mixed").unwrap();
            c.create_index(IndexSpec::new([("email", 1)]).unique())
                .unwrap();
            c.insert_many(vec![
                json!({"_id": "s", "v": "str", "email": "s@x"}),
                json!({"_id": "c", "n": 0, "email": "c@x"}),
                json!({"_id": "e", "email": "taken@x"}),
            ])
            .unwrap();
            for p in 0..8 {
                c.insert_one(json!({"_id": format!("p{p}"), "email": format!("p{p}@x")}))
                    .unwrap();
            }
            let flushes_before = collection_store::testing::log_flushes(&db);
            let db2 = db.clone();
            with_watchdog(120, move || {
                let db = db2;
                for r in 0..ROUNDS {
                    let barrier = Arc::new(Barrier::new(THREADS as usize));
                    let handles: Vec<_> = (0..THREADS)
                        .map(|i| {
                            let c = db.collection("mixed").unwrap();
                            let barrier = barrier.clone();
                            std::thread::spawn(move || {
                                barrier.wait();
                                mixed_statement(&c, r, i)
                            })
                        })
                        .collect();
                    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
                    check_mixed(r, &results);
                }
            });
            let flushes = collection_store::testing::log_flushes(&db) - flushes_before;
            eprintln!(
                "mode {name}: {} statements acknowledged by {flushes} log flushes",
                THREADS * ROUNDS
            );
            // Failing statements need no flush of their own, and concurrent
            // ones share flushes: far fewer flushes than statements (none at
            // all without durability).
            assert!(
                flushes <= THREADS * ROUNDS / 4,
                "mode {name}: {flushes} flushes for {} concurrent statements: no group commit",
                THREADS * ROUNDS
            );
            check_mixed_state(&db, ROUNDS);
        }
        // Every handle dropped: the environment is closed; reopen and check again.
        let db = open(tmp.path(), Durability::Immediate);
        check_mixed_state(&db, ROUNDS);
        eprintln!("mixed group commit ok in mode {name}");
    }
}

#[test]
fn a_write_made_after_an_acknowledgement_is_never_visible_without_it() {
    for (name, mode) in modes() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path(), mode);
        let rounds: i64 = 800;
        let db2 = db.clone();
        with_watchdog(180, move || {
            let db = db2;
            let stop = Arc::new(AtomicBool::new(false));
            let frontier = Arc::new(AtomicI64::new(0));
            let (to_b, b_rx) = mpsc::channel::<i64>();
            let (to_a, a_rx) = mpsc::channel::<()>();
            let ord = db.collection("ord").unwrap();
            // Noise: other writers keep the group-commit queue busy so that X
            // and Y land in shared batches with unrelated statements.
            let noise: Vec<_> = (0..6)
                .map(|t| {
                    let c = db.collection("noise").unwrap();
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        let mut i = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            c.insert_one(json!({"_id": format!("n{t}-{i}")})).unwrap();
                            i += 1;
                        }
                    })
                })
                .collect();
            let a = {
                let ord = ord.clone();
                let frontier = frontier.clone();
                std::thread::spawn(move || {
                    for i in 0..rounds {
                        frontier.store(i, Ordering::SeqCst);
                        ord.insert_one(json!({"_id": format!("x{i}"), "i": i}))
                            .unwrap();
                        to_b.send(i).unwrap();
                        a_rx.recv().unwrap();
                    }
                })
            };
            let b = {
                let ord = ord.clone();
                std::thread::spawn(move || {
                    while let Ok(i) = b_rx.recv() {
                        ord.insert_one(json!({"_id": format!("y{i}"), "i": i}))
                            .unwrap();
                        let _ = to_a.send(());
                    }
                })
            };
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let ord = ord.clone();
                    let stop = stop.clone();
                    let frontier = frontier.clone();
                    std::thread::spawn(move || {
                        let mut checks = 0u64;
                        let mut saw_y = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let f = frontier.load(Ordering::SeqCst);
                            let ids: Vec<Value> = (f.saturating_sub(1)..=f + 1)
                                .flat_map(|i| [json!(format!("x{i}")), json!(format!("y{i}"))])
                                .collect();
                            // One statement, one snapshot.
                            let seen: BTreeSet<String> = ord
                                .find(json!({"_id": {"$in": ids}}))
                                .to_vec()
                                .unwrap()
                                .into_iter()
                                .map(|d| d["_id"].as_str().unwrap().to_string())
                                .collect();
                            for i in f.saturating_sub(1)..=f + 1 {
                                if seen.contains(&format!("y{i}")) {
                                    saw_y += 1;
                                    assert!(
                                        seen.contains(&format!("x{i}")),
                                        "y{i} is visible without x{i}, acknowledged before y{i} was written: {seen:?}"
                                    );
                                }
                            }
                            checks += 1;
                        }
                        (checks, saw_y)
                    })
                })
                .collect();
            a.join().unwrap();
            b.join().unwrap();
            stop.store(true, Ordering::Relaxed);
            for n in noise {
                n.join().unwrap();
            }
            let mut total_y = 0;
            for r in readers {
                let (checks, saw_y) = r.join().unwrap();
                assert!(checks > 0);
                total_y += saw_y;
            }
            assert!(total_y > 0, "the readers never observed a y document");
            assert_eq!(ord.count(json!({})).unwrap(), 2 * rounds as u64);
        });
        assert_verified(&db);
        eprintln!("acknowledged order ok in mode {name}");
    }
}

#[test]
fn every_mode_acknowledges_only_committed_writes_across_reopen() {
    for (name, mode) in modes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut acked: Vec<String> = Vec::new();
        let mut refused: Vec<String> = Vec::new();
        {
            let db = open(tmp.path(), mode);
            let handles: Vec<_> = (0..16)
                .map(|t| {
                    let c = db.collection("w").unwrap();
                    std::thread::spawn(move || {
                        let (mut ok, mut bad) = (Vec::new(), Vec::new());
                        for i in 0..60 {
                            // Every fifth statement repeats the previous _id.
                            let id = if i % 5 == 4 {
                                format!("t{t}-{}", i - 1)
                            } else {
                                format!("t{t}-{i}")
                            };
                            match c.insert_one(json!({"_id": id, "i": i})) {
                                Ok(_) => ok.push(id),
                                Err(Error::DuplicateKey { .. }) => bad.push((id, i)),
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                        (ok, bad)
                    })
                })
                .collect();
            for h in handles {
                let (ok, bad) = h.join().unwrap();
                acked.extend(ok);
                refused.extend(bad.into_iter().map(|(id, i)| format!("{id}/{i}")));
            }
        }
        assert_eq!(refused.len(), 16 * 12);
        let db = open(tmp.path(), Durability::Immediate);
        let c = db.collection("w").unwrap();
        assert_eq!(c.count(json!({})).unwrap(), acked.len() as u64);
        for id in &acked {
            let d = c.find_one(json!({"_id": id})).unwrap();
            assert!(d.is_some(), "mode {name}: acknowledged {id} is missing");
            // The refused duplicate did not overwrite the original.
            assert_ne!(d.unwrap()["i"].as_i64().unwrap() % 5, 4);
        }
        assert_verified(&db);
    }
}

#[test]
fn every_mode_keeps_acknowledged_writes_across_sigkill() {
    for mode in ["immediate", "batched", "none"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let threads = 8;
        let mut child = Command::new(env!("CARGO_BIN_EXE_mp_child"))
            .args(["acked"])
            .arg(&dir)
            .arg(tmp.path())
            .args([mode, &threads.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut ids = Vec::new();
            let mut buf = Vec::new();
            let mut ready_at = None;
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.last() != Some(&b'\n') => break,
                    Ok(_) => {
                        let v: Value = serde_json::from_slice(&buf).unwrap();
                        if v["t"] == "ready" {
                            ready_at = Some(Instant::now());
                        } else {
                            ids.push(v["id"].as_str().unwrap().to_string());
                        }
                    }
                }
            }
            (ids, ready_at)
        });
        std::thread::sleep(Duration::from_millis(400));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "child died on its own: {status:?}"
        );
        let (ids, ready) = reader.join().unwrap();
        assert!(
            ready.is_some() && ids.len() > 20,
            "mode {mode}: too few writes ({})",
            ids.len()
        );
        let db = Database::open(&dir).unwrap();
        let c = db.collection("acked").unwrap();
        for id in &ids {
            assert!(
                c.find_one(json!({"_id": id})).unwrap().is_some(),
                "mode {mode}: acknowledged {id} lost after SIGKILL"
            );
        }
        let n = c.count(json!({})).unwrap();
        // Each thread has at most one statement in flight.
        assert!(
            n >= ids.len() as u64 && n <= ids.len() as u64 + threads,
            "mode {mode}: {n} documents, {} acknowledged",
            ids.len()
        );
        // Per thread, the documents form a prefix: nothing after a missing one.
        for t in 0..threads {
            let docs = c.find(json!({"t": t})).to_vec().unwrap();
            let mut is: Vec<i64> = docs.iter().map(|d| d["i"].as_i64().unwrap()).collect();
            is.sort();
            assert!(
                is.iter().enumerate().all(|(k, i)| *i == k as i64),
                "mode {mode}: thread {t} has gaps: {is:?}"
            );
        }
        assert_verified(&db);
    }
}

#[test]
fn batched_mode_merges_concurrent_statements_into_shared_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let delay = Duration::from_millis(20);
    let db = open(tmp.path(), Durability::Batched { max_delay: delay });
    let threads = 64u64;
    let per = 5u64;
    let commits_before = lmdb_last_txnid(tmp.path()).unwrap();
    let flushes_before = collection_store::testing::log_flushes(&db);
    let start = Instant::now();
    let barrier = Arc::new(Barrier::new(threads as usize));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let c = db.collection("b").unwrap();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..per {
                    c.insert_one(json!({"_id": format!("{t}-{i}")})).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let took = start.elapsed();
    let commits = lmdb_last_txnid(tmp.path()).unwrap() - commits_before;
    let flushes = collection_store::testing::log_flushes(&db) - flushes_before;
    eprintln!(
        "batched: {} statements in {commits} commits, {flushes} log flushes, {took:?}",
        threads * per
    );
    // The leader waits `delay` to gather statements: each commit (and each
    // flush) serves many.
    assert!(
        commits <= threads * per / 8 && flushes <= threads * per / 8,
        "{commits} commits, {flushes} flushes for {} statements",
        threads * per
    );
    // One commit per statement would wait `delay` each: 320 x 20 ms = 6.4 s.
    assert!(
        took < delay * (threads * per) as u32 / 4,
        "{} statements took {took:?}: they were not grouped",
        threads * per
    );
    assert_eq!(
        db.collection("b").unwrap().count(json!({})).unwrap(),
        threads * per
    );
}

#[test]
fn a_batch_that_outgrows_the_map_runs_each_statement_once() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        tmp.path(),
        DatabaseOptions::default().initial_map_size(1 << 20),
    )
    .unwrap();
    let c = db.collection("big").unwrap();
    c.insert_one(json!({"_id": "counter", "n": 0})).unwrap();
    let threads = 32u64;
    let per = 6u64;
    let pad = "z".repeat(60_000);
    let db2 = db.clone();
    with_watchdog(120, move || {
        let barrier = Arc::new(Barrier::new(threads as usize));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let c = db2.collection("big").unwrap();
                let barrier = barrier.clone();
                let pad = pad.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    for i in 0..per {
                        c.insert_one(json!({"_id": format!("{t}-{i}"), "pad": pad}))
                            .unwrap();
                        let u = c
                            .update_one(json!({"_id": "counter"}), json!({"$inc": {"n": 1}}))
                            .unwrap();
                        assert_eq!(u.modified_count, 1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(
        c.find_one(json!({"_id": "counter"})).unwrap().unwrap()["n"],
        json!(threads * per),
        "a re-run batch applied an increment twice or lost one"
    );
    assert_eq!(c.count(json!({})).unwrap(), threads * per + 1);
    assert!(
        std::fs::metadata(tmp.path().join("data.mdb"))
            .unwrap()
            .len()
            > 8 << 20
    );
    assert_verified(&db);
}

#[test]
fn explicit_transactions_and_group_commits_do_not_deadlock() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path(), Durability::Immediate);
    db.collection("t").unwrap();
    let db2 = db.clone();
    with_watchdog(60, move || {
        let db = db2;
        for round in 0..20 {
            let tx = db.begin().unwrap();
            // This thread holds the writer: a statement outside the
            // transaction must fail fast instead of waiting for itself.
            let direct = db.collection("t").unwrap().insert_one(json!({"x": 1}));
            assert!(
                matches!(direct, Err(Error::TransactionInProgress)),
                "{direct:?}"
            );
            let started = Arc::new(Barrier::new(9));
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let c = db.collection("t").unwrap();
                    let started = started.clone();
                    std::thread::spawn(move || {
                        started.wait();
                        c.insert_one(json!({"_id": format!("r{round}-s{t}")}))
                            .unwrap();
                    })
                })
                .collect();
            started.wait();
            tx.collection("t")
                .unwrap()
                .insert_one(json!({"_id": format!("r{round}-tx")}))
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
            tx.commit().unwrap();
            for h in handles {
                h.join().unwrap();
            }
        }
        let c = db.collection("t").unwrap();
        assert_eq!(c.count(json!({})).unwrap(), 20 * 9);
    });
    assert_verified(&db);
}
