//! Child process of `tests/multi_process.rs` and `tests/group_commit.rs`.
//!
//! `mp_child <subcommand> <db dir> <sync dir> [args..]`; the processes of one
//! test coordinate through marker files in the sync dir
//! ([`collection_store_tests::signal`] / [`collection_store_tests::wait_signal`]).
//! A failed expectation prints `FAIL: ...` on stderr and exits with status 1;
//! every wait is bounded.
//!
//! Subcommands:
//! - `inc <id> <threads> <n>`: after signal `go`, each thread increments the
//!   shared counter `n` times through an upsert, `n` times through a
//!   read-modify-write transaction, and inserts `n` log documents;
//! - `ping <rounds>` / `pong <rounds>`: alternate inserts, each process polling
//!   until it sees the other's last write (through an index the ping process
//!   created after both had opened the database);
//! - `catalog-a` / `catalog-b`: one process creates a collection, a unique
//!   index and drops it; the other, which cached the collection's definition
//!   before, must obey the index (DuplicateKey) and its removal without reopening;
//! - `grow <id> <n>`: both processes start with a 1 MiB map and insert large
//!   documents, so the map grows in both (foreign-resize adoption);
//! - `acked <durability> <threads>`: writes until killed, printing each
//!   acknowledged `_id` on stdout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use collection_store::{Database, DatabaseOptions, Error, IndexSpec, Result, UpdateOptions};
use collection_store_tests::{durability_from_str, emit, poll_until, signal, wait_signal};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("FAIL: {msg}");
    std::process::exit(1);
}

trait OrFail<T> {
    fn or_fail(self, what: &str) -> T;
}

impl<T, E: std::fmt::Debug> OrFail<T> for std::result::Result<T, E> {
    fn or_fail(self, what: &str) -> T {
        self.unwrap_or_else(|e| fail(format!("{what}: {e:?}")))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        fail("usage: mp_child <subcommand> <db dir> <sync dir> [args..]");
    }
    let dir = PathBuf::from(&args[2]);
    let sync = PathBuf::from(&args[3]);
    let rest = &args[4..];
    let arg = |i: usize| -> u64 {
        rest.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fail(format!("argument {i} missing or not a number")))
    };
    match args[1].as_str() {
        "inc" => inc(&dir, &sync, arg(0), arg(1), arg(2)),
        "ping" => ping_pong(&dir, &sync, true, arg(0)),
        "pong" => ping_pong(&dir, &sync, false, arg(0)),
        "catalog-a" => catalog_a(&dir, &sync),
        "catalog-b" => catalog_b(&dir, &sync),
        "grow" => grow(&dir, &sync, arg(0), arg(1)),
        "acked" => acked(&dir, rest.first().map(String::as_str).unwrap_or(""), arg(1)),
        other => fail(format!("unknown subcommand {other:?}")),
    }
}

fn inc(dir: &Path, sync: &Path, id: u64, threads: u64, n: u64) {
    let db = Database::open(dir).or_fail("open");
    signal(sync, &format!("opened-{id}"));
    wait_signal(sync, "go", WAIT).or_fail("wait go");
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let counters = db.collection("counters").or_fail("counters");
                let log = db.collection("log").or_fail("log");
                for i in 0..n {
                    counters
                        .update_one_with(
                            json!({"_id": "shared"}),
                            json!({"$inc": {"v": 1}}),
                            UpdateOptions::upsert(),
                        )
                        .or_fail("upsert $inc");
                    // Read-modify-write: correct only if write transactions
                    // of all processes are serialized and read the latest commit.
                    db.transaction(|tx| {
                        let c = tx.collection("counters")?;
                        let v = c
                            .find_one(json!({"_id": "rmw"}))?
                            .and_then(|d| d["v"].as_i64())
                            .unwrap_or(0);
                        c.replace_one_with(
                            json!({"_id": "rmw"}),
                            json!({"_id": "rmw", "v": v + 1}),
                            UpdateOptions::upsert(),
                        )?;
                        Ok(())
                    })
                    .or_fail("read-modify-write transaction");
                    log.insert_one(
                        json!({"_id": format!("p{id}-t{t}-{i}"), "p": id, "t": t, "i": i}),
                    )
                    .or_fail("log insert");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap_or_else(|_| fail("thread panicked"));
    }
}

fn ping_pong(dir: &Path, sync: &Path, ping: bool, rounds: u64) {
    let db = Database::open(dir).or_fail("open");
    let pp = db.collection("pp").or_fail("pp");
    let (me, other) = if ping {
        ("ping", "pong")
    } else {
        ("pong", "ping")
    };
    signal(sync, &format!("opened-{me}"));
    wait_signal(sync, &format!("opened-{other}"), WAIT).or_fail("wait for the other process");
    if ping {
        // Created after both processes opened the database and the collection.
        pp.create_index(IndexSpec::new([("round", 1), ("kind", 1)]).unique())
            .or_fail("create index");
        signal(sync, "indexed");
    } else {
        wait_signal(sync, "indexed", WAIT).or_fail("wait indexed");
        let names: Vec<String> = pp
            .list_indexes()
            .or_fail("list indexes")
            .iter()
            .map(|s| s.index_name())
            .collect();
        if names != ["round_1_kind_1"] {
            fail(format!(
                "the index created by the other process is not listed: {names:?}"
            ));
        }
    }
    let sees = |round: u64, kind: &str| -> bool {
        pp.find(json!({"round": round, "kind": kind}))
            .to_vec()
            .or_fail("find")
            .len()
            == 1
    };
    for r in 0..rounds {
        if !ping {
            poll_until(&format!("ping {r} from the other process"), WAIT, || {
                sees(r, "ping").then_some(())
            })
            .or_fail("poll");
        }
        pp.insert_one(json!({"_id": format!("{me}-{r}"), "round": r, "kind": me}))
            .or_fail("insert");
        if ping {
            poll_until(&format!("pong {r} from the other process"), WAIT, || {
                sees(r, "pong").then_some(())
            })
            .or_fail("poll");
        }
    }
    // The index is used for the lookups, and its uniqueness holds across processes.
    let ex = pp
        .explain(json!({"round": 0, "kind": other}))
        .or_fail("explain");
    let ex = serde_json::to_string(&ex).or_fail("explain json");
    if !ex.contains("round_1_kind_1") {
        fail(format!("lookup does not use the index: {ex}"));
    }
    match pp.insert_one(json!({"_id": format!("{me}-dup"), "round": 0, "kind": other})) {
        Err(Error::DuplicateKey { index, .. }) if index == "round_1_kind_1" => {}
        other => fail(format!(
            "duplicate of the other process's document: {other:?}"
        )),
    }
}

fn catalog_a(dir: &Path, sync: &Path) {
    let db = Database::open(dir).or_fail("open");
    signal(sync, "a-open");
    wait_signal(sync, "b-open", WAIT).or_fail("wait b-open");
    let users = db.collection("users").or_fail("users");
    users
        .insert_one(json!({"_id": 1, "email": "a@x"}))
        .or_fail("insert 1");
    signal(sync, "s1");
    wait_signal(sync, "s2", WAIT).or_fail("wait s2");
    // B has read and written `users` (its definition is cached); now add a unique index.
    users
        .create_index(IndexSpec::new([("email", 1)]).unique())
        .or_fail("create unique index");
    signal(sync, "s3");
    wait_signal(sync, "s4", WAIT).or_fail("wait s4");
    let docs = users.find(json!({})).to_vec().or_fail("find");
    let ids: Vec<Value> = docs.iter().map(|d| d["_id"].clone()).collect();
    if ids != [json!(1), json!(2), json!(4)] {
        fail(format!(
            "A sees {ids:?} after B's writes, expected [1, 2, 4]"
        ));
    }
    match users.insert_one(json!({"_id": 5, "email": "c@x"})) {
        Err(Error::DuplicateKey { index, .. }) if index == "email_1" => {}
        other => fail(format!("A inserting B's email c@x: {other:?}")),
    }
    let report = db.verify().or_fail("verify");
    if !report.is_ok() {
        fail(format!("verify: {:?}", report.problems));
    }
    users.drop_index("email_1").or_fail("drop index");
    signal(sync, "s5");
    wait_signal(sync, "s6", WAIT).or_fail("wait s6");
    let n = users.count(json!({"email": "a@x"})).or_fail("count");
    if n != 2 {
        fail(format!(
            "A counts {n} documents with a@x after B's insert, expected 2"
        ));
    }
}

fn catalog_b(dir: &Path, sync: &Path) {
    let db = Database::open(dir).or_fail("open");
    signal(sync, "b-open");
    wait_signal(sync, "s1", WAIT).or_fail("wait s1");
    let users = db.collection("users").or_fail("users");
    // Sees A's collection and document, and caches the definition (no index yet).
    let d = users.find_one(json!({"_id": 1})).or_fail("find 1");
    if d != Some(json!({"_id": 1, "email": "a@x"})) {
        fail(format!("B does not see A's document: {d:?}"));
    }
    users
        .insert_one(json!({"_id": 2, "email": "b@x"}))
        .or_fail("insert 2");
    signal(sync, "s2");
    wait_signal(sync, "s3", WAIT).or_fail("wait s3");
    // The index A created must be enforced by this process without reopening.
    match users.insert_one(json!({"_id": 3, "email": "a@x"})) {
        Err(Error::DuplicateKey { index, .. }) if index == "email_1" => {}
        other => fail(format!(
            "B inserting a duplicate email after A created a unique index: {other:?}"
        )),
    }
    // Inside a transaction too, and the failed statement leaves no trace.
    let r: Result<()> = db.transaction(|tx| {
        let u = tx.collection("users")?;
        match u.update_one(json!({"_id": 2}), json!({"$set": {"email": "a@x"}})) {
            Err(Error::DuplicateKey { .. }) => {}
            other => fail(format!(
                "B updating to a duplicate email in a transaction: {other:?}"
            )),
        }
        u.insert_one(json!({"_id": 4, "email": "c@x"}))?;
        Ok(())
    });
    r.or_fail("transaction");
    let listed: Vec<String> = users
        .list_indexes()
        .or_fail("list")
        .iter()
        .map(|s| s.index_name())
        .collect();
    if listed != ["email_1"] {
        fail(format!("B lists indexes {listed:?}, expected [email_1]"));
    }
    let ex = serde_json::to_string(&users.explain(json!({"email": "c@x"})).or_fail("explain"))
        .or_fail("json");
    if !ex.contains("email_1") {
        fail(format!("B's lookup by email does not use A's index: {ex}"));
    }
    signal(sync, "s4");
    wait_signal(sync, "s5", WAIT).or_fail("wait s5");
    // A dropped the index: duplicates are allowed again, without reopening.
    users
        .insert_one(json!({"_id": 6, "email": "a@x"}))
        .or_fail("insert after the index was dropped");
    if !users.list_indexes().or_fail("list").is_empty() {
        fail("B still lists the dropped index");
    }
    signal(sync, "s6");
}

fn grow(dir: &Path, sync: &Path, id: u64, n: u64) {
    let db = Database::open_with(dir, DatabaseOptions::default().initial_map_size(1 << 20))
        .or_fail("open");
    signal(sync, &format!("opened-{id}"));
    wait_signal(sync, "go", WAIT).or_fail("wait go");
    let big = "x".repeat(20_000);
    let blobs = db.collection("blobs").or_fail("blobs");
    let mut conflicts = 0u64;
    for i in 0..n {
        blobs
            .insert_one(json!({"_id": format!("p{id}-{i}"), "p": id, "pad": big}))
            .or_fail("insert");
        // A transaction that may have to move to a larger map: it is rebuilt,
        // or refused with WriteConflict when the other process committed meanwhile.
        loop {
            let r = db.transaction(|tx| {
                let c = tx.collection("blobs")?;
                c.insert_one(json!({"_id": format!("t{id}-{i}-a"), "p": id, "pad": big}))?;
                c.insert_one(json!({"_id": format!("t{id}-{i}-b"), "p": id, "pad": big}))?;
                Ok(())
            });
            match r {
                Ok(()) => break,
                Err(Error::WriteConflict) => conflicts += 1,
                Err(e) => fail(format!("transaction {i}: {e:?}")),
            }
        }
    }
    emit(&json!({"conflicts": conflicts}));
}

fn acked(dir: &Path, durability: &str, threads: u64) {
    let db = Database::open_with(
        dir,
        DatabaseOptions::default().durability(durability_from_str(durability)),
    )
    .or_fail("open");
    emit(&json!({"t": "ready"}));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let c = db.collection("acked").or_fail("collection");
            std::thread::spawn(move || {
                for i in 0.. {
                    let id = format!("t{t}-{i}");
                    c.insert_one(json!({"_id": id, "t": t, "i": i}))
                        .or_fail("insert");
                    emit(&json!({"id": id}));
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}
