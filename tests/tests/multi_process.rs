//! Several real processes on one database directory at the same time
//! (children: `src/bin/mp_child.rs`): each sees the others' commits without
//! reopening, writes are serialized across processes (no lost update), and
//! catalog changes (a collection, a unique index, its removal) made by one
//! process are obeyed by the others, whose cached definitions must be refreshed.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use collection_store::Database;
use collection_store_tests::{signal, wait_signal};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(120);

fn spawn(sub: &str, db: &Path, sync: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mp_child"))
        .arg(sub)
        .arg(db)
        .arg(sync)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mp_child")
}

/// Waits for every child (killing all of them after `TIMEOUT`) and asserts
/// that each exited successfully.
fn join_all(children: Vec<(String, Child)>) -> Vec<Output> {
    let deadline = Instant::now() + TIMEOUT;
    let mut children = children;
    loop {
        let mut running = false;
        for (_, c) in children.iter_mut() {
            if c.try_wait().expect("try_wait").is_none() {
                running = true;
            }
        }
        if !running {
            break;
        }
        if Instant::now() > deadline {
            for (_, c) in children.iter_mut() {
                let _ = c.kill();
            }
            let outs: Vec<String> = children
                .into_iter()
                .map(|(name, c)| {
                    let o = c.wait_with_output().expect("output");
                    format!("{name}: {}", String::from_utf8_lossy(&o.stderr))
                })
                .collect();
            panic!("children still running after {TIMEOUT:?} (deadlock?):\n{outs:#?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    children
        .into_iter()
        .map(|(name, c)| {
            let o = c.wait_with_output().expect("output");
            assert!(
                o.status.success(),
                "child {name} failed ({:?}):\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            o
        })
        .collect()
}

fn dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let sync = tmp.path().join("sync");
    std::fs::create_dir_all(&sync).unwrap();
    // The database exists before the children open it concurrently.
    drop(Database::open(&db).unwrap());
    (tmp, db, sync)
}

fn assert_verified(db: &Database) {
    let r = db.verify().unwrap();
    assert!(r.is_ok(), "verify: {:#?}", r.problems);
}

#[test]
fn concurrent_increments_from_three_processes_are_all_counted() {
    let (_tmp, db_dir, sync) = dirs();
    const PROCS: u64 = 3;
    const THREADS: u64 = 2;
    const N: u64 = 150;
    let children: Vec<_> = (0..PROCS)
        .map(|p| {
            let c = spawn(
                "inc",
                &db_dir,
                &sync,
                &[&p.to_string(), &THREADS.to_string(), &N.to_string()],
            );
            (format!("inc-{p}"), c)
        })
        .collect();
    for p in 0..PROCS {
        wait_signal(&sync, &format!("opened-{p}"), Duration::from_secs(30)).unwrap();
    }
    // The parent has the database open too, and watches the counter grow.
    let db = Database::open(&db_dir).unwrap();
    let counters = db.collection("counters").unwrap();
    signal(&sync, "go");
    let total = (PROCS * THREADS * N) as i64;
    let mut last = 0;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let v = counters
            .find_one(json!({"_id": "shared"}))
            .unwrap()
            .map(|d| d["v"].as_i64().unwrap())
            .unwrap_or(0);
        assert!(v >= last, "the counter went backwards: {last} -> {v}");
        last = v;
        if v == total || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    join_all(children);
    let get = |id: &str| {
        counters.find_one(json!({"_id": id})).unwrap().unwrap()["v"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(get("shared"), total, "upsert $inc lost increments");
    assert_eq!(
        get("rmw"),
        total,
        "read-modify-write transactions of different processes were not serialized"
    );
    let log = db.collection("log").unwrap();
    assert_eq!(log.count(json!({})).unwrap(), total as u64);
    for p in 0..PROCS {
        assert_eq!(
            log.count(json!({"p": p})).unwrap(),
            THREADS * N,
            "process {p}"
        );
    }
    assert_verified(&db);
}

#[test]
fn each_process_sees_the_others_commits_without_reopening() {
    let (_tmp, db_dir, sync) = dirs();
    let rounds = "200";
    let children = vec![
        ("ping".to_string(), spawn("ping", &db_dir, &sync, &[rounds])),
        ("pong".to_string(), spawn("pong", &db_dir, &sync, &[rounds])),
    ];
    join_all(children);
    let db = Database::open(&db_dir).unwrap();
    let pp = db.collection("pp").unwrap();
    assert_eq!(pp.count(json!({"kind": "ping"})).unwrap(), 200);
    assert_eq!(pp.count(json!({"kind": "pong"})).unwrap(), 200);
    assert_verified(&db);
}

#[test]
fn catalog_changes_of_one_process_bind_the_other() {
    let (_tmp, db_dir, sync) = dirs();
    let children = vec![
        ("A".to_string(), spawn("catalog-a", &db_dir, &sync, &[])),
        ("B".to_string(), spawn("catalog-b", &db_dir, &sync, &[])),
    ];
    join_all(children);
    let db = Database::open(&db_dir).unwrap();
    let users = db.collection("users").unwrap();
    let ids: Vec<_> = users
        .find(json!({}))
        .to_vec()
        .unwrap()
        .into_iter()
        .map(|d| d["_id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(2), json!(4), json!(6)]);
    assert!(users.list_indexes().unwrap().is_empty());
    assert_verified(&db);
}

#[test]
fn map_growth_in_two_processes_at_once() {
    let (_tmp, db_dir, sync) = dirs();
    let n = 60u64;
    let children: Vec<_> = (0..2)
        .map(|p| {
            (
                format!("grow-{p}"),
                spawn("grow", &db_dir, &sync, &[&p.to_string(), &n.to_string()]),
            )
        })
        .collect();
    for p in 0..2 {
        wait_signal(&sync, &format!("opened-{p}"), Duration::from_secs(30)).unwrap();
    }
    signal(&sync, "go");
    let outs = join_all(children);
    for o in &outs {
        eprintln!("grow child: {}", String::from_utf8_lossy(&o.stdout).trim());
    }
    let db = Database::open(&db_dir).unwrap();
    let blobs = db.collection("blobs").unwrap();
    for p in 0..2u64 {
        assert_eq!(blobs.count(json!({"p": p})).unwrap(), 3 * n, "process {p}");
    }
    assert!(
        std::fs::metadata(db_dir.join("data.mdb")).unwrap().len() > 4 << 20,
        "the test did not make the database outgrow its 1 MiB map"
    );
    assert_verified(&db);
}
