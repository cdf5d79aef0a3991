//! The `collection-store` command-line tool, run as a real process against
//! real directories: export → import round trips (canonical Extended JSON keeps
//! every type), a bad import line is reported by number and nothing is
//! imported, backup → restore → verify while another thread writes, verify's
//! exit code on a damaged file, and the inspection commands.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use collection_store::{Database, IndexSpec};
use serde_json::{json, Value};

fn cli(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_collection-store"));
    for a in args {
        c.arg(a);
    }
    c.output().expect("run collection-store")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every document of a collection as exact BSON, in primary-key order.
fn dump(dir: &Path, collection: &str) -> Vec<bson::Document> {
    let db = Database::open(dir).unwrap();
    db.collection(collection)
        .unwrap()
        .find(json!({}))
        .to_vec_as::<bson::Document>()
        .unwrap()
}

fn typed_source(dir: &Path) {
    let db = Database::open(dir).unwrap();
    let c = db.collection("things").unwrap();
    c.create_index(IndexSpec::new([("n", 1)])).unwrap();
    c.insert_many(vec![
        json!({"_id": 1, "small": 5, "big": {"$numberLong": "5"}, "huge": 9_000_000_000i64,
               "real": 1.0, "neg": -0.5, "s": "text ✓", "none": null, "yes": true,
               "when": {"$date": "2024-01-31T12:00:00Z"},
               "oid": {"$oid": "65b9f8f0a1b2c3d4e5f60718"},
               "bin": {"$binary": {"base64": "AAEC", "subType": "00"}},
               "nested": {"list": [1, {"$numberLong": "2"}, 3.5, [{"deep": "x"}]]}, "n": 1}),
        json!({"_id": "two", "n": 2, "dec": {"$numberDecimal": "12"}}),
        json!({"_id": {"$oid": "65b9f8f0a1b2c3d4e5f60719"}, "n": 3}),
    ])
    .unwrap();
}

#[test]
fn export_import_round_trip_keeps_extended_json_types() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst, file) = (
        t.path().join("src"),
        t.path().join("dst"),
        t.path().join("things.jsonl"),
    );
    typed_source(&src);
    ok(&cli(&[
        &"export", &src, &"things", &"-o", &file, &"--quiet",
    ]));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains("\"$numberLong\":\"5\""), "{text}");
    assert!(text.contains("\"$date\""), "{text}");
    let out = ok(&cli(&[
        &"import", &dst, &"things", &"-i", &file, &"--quiet",
    ]));
    assert!(out.contains("imported 3 documents"), "{out}");
    let (a, b) = (dump(&src, "things"), dump(&dst, "things"));
    assert_eq!(
        a, b,
        "the imported documents equal the source, type for type"
    );
    // int64 5 stayed int64, not int32; 1.0 stayed a double.
    assert_eq!(b[0].get("big"), Some(&bson::Bson::Int64(5)));
    assert_eq!(b[0].get("real"), Some(&bson::Bson::Double(1.0)));
    assert!(matches!(b[0].get("when"), Some(bson::Bson::DateTime(_))));
    // The same through standard output and plain JSON: equal as JSON.
    let plain = ok(&cli(&[
        &"export",
        &src,
        &"things",
        &"--format",
        &"json",
        &"-q",
    ]));
    let file2 = t.path().join("plain.jsonl");
    std::fs::write(&file2, &plain).unwrap();
    let dst2 = t.path().join("dst2");
    ok(&cli(&[&"import", &dst2, &"things", &"-i", &file2, &"-q"]));
    let again = ok(&cli(&[
        &"export",
        &dst2,
        &"things",
        &"--format",
        &"json",
        &"-q",
    ]));
    assert_eq!(plain, again);
}

#[test]
fn a_bad_import_line_is_named_and_nothing_is_imported() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    let file = t.path().join("in.jsonl");
    // Line 3 is not JSON.
    std::fs::write(
        &file,
        "{\"_id\": 1}\n{\"_id\": 2}\n{\"_id\": 3,\n{\"_id\": 4}\n",
    )
    .unwrap();
    let o = cli(&[&"import", &dir, &"c", &"-i", &file, &"-q"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing imported"), "{}", stderr(&o));
    // Line 3 is a duplicate key: the engine refuses it, and lines 1-2 are rolled back.
    std::fs::write(&file, "{\"_id\": 1}\n\n{\"_id\": 1}\n{\"_id\": 4}\n").unwrap();
    let o = cli(&[&"import", &dir, &"c", &"-i", &file, &"-q"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    assert!(stderr(&o).contains("duplicate key"), "{}", stderr(&o));
    let db = Database::open(&dir).unwrap();
    assert_eq!(db.collection("c").unwrap().count(json!({})).unwrap(), 0);
    drop(db);
    // With --batch, the batches before the bad one stay.
    std::fs::write(&file, "{\"_id\": 1}\n{\"_id\": 2}\n{\"_id\": 2}\n").unwrap();
    let o = cli(&[&"import", &dir, &"c", &"-i", &file, &"-q", &"--batch", &"2"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("the 2 documents before its batch"),
        "{}",
        stderr(&o)
    );
    let db = Database::open(&dir).unwrap();
    assert_eq!(db.collection("c").unwrap().count(json!({})).unwrap(), 2);
}

#[test]
fn backup_restore_verify_while_writers_run() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("live");
    let db = Database::open(&dir).unwrap();
    let c = db.collection("events").unwrap();
    c.create_index(IndexSpec::new([("k", 1)])).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (c, stop, written) = (c.clone(), stop.clone(), written.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    c.insert_one(
                        json!({"_id": format!("{w}-{i}"), "k": i, "pad": "x".repeat(200)}),
                    )
                    .unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    while written.load(Ordering::Relaxed) < 200 {
        std::thread::yield_now();
    }
    let mut restored = Vec::new();
    for round in 0..3 {
        let file = t.path().join(format!("backup-{round}.mdb"));
        let into = t.path().join(format!("restored-{round}"));
        let out = ok(&cli(&[&"backup", &dir, &file]));
        assert!(out.contains("at LSN"), "{out}");
        let out = ok(&cli(&[&"restore", &file, &into]));
        assert!(out.contains("verify ok"), "{out}");
        ok(&cli(&[&"verify", &into]));
        restored.push(into);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let total = c.count(json!({})).unwrap();
    let mut last = 0;
    for into in &restored {
        let r = Database::open(into).unwrap();
        let n = r.collection("events").unwrap().count(json!({})).unwrap();
        assert!(n >= 200 && n <= total, "{n} of {total}");
        assert!(n >= last, "later backups hold at least as much");
        last = n;
        assert!(r.verify().unwrap().is_ok());
    }
    // Restoring over a directory that holds something is refused.
    let o = cli(&[&"restore", &t.path().join("backup-0.mdb"), &restored[0]]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
}

#[test]
fn inspection_commands_and_exit_codes() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("db");
    typed_source(&dir);
    let ls = ok(&cli(&[&"ls", &dir]));
    assert!(
        ls.lines()
            .any(|l| l.starts_with("things") && l.split_whitespace().nth(1) == Some("3")),
        "{ls}"
    );
    let idx = ok(&cli(&[&"indexes", &dir, &"things"]));
    assert!(idx.contains("\"n\""), "{idx}");
    let found = ok(&cli(&[
        &"find",
        &dir,
        &"things",
        &r#"{"n": {"$gte": 2}}"#,
        &"--sort",
        &r#"{"n": -1}"#,
    ]));
    let ns: Vec<i64> = found
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ns, vec![3, 2]);
    assert_eq!(
        ok(&cli(&[&"count", &dir, &"things", &r#"{"n": 1}"#])).trim(),
        "1"
    );
    let stats: Value = serde_json::from_str(&ok(&cli(&[&"stats", &dir, &"--json"]))).unwrap();
    assert_eq!(stats["collections"][0]["documents"], 3);
    assert!(stats["tables"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "docs" && t["entries"] == 3));
    assert!(stats["log"]["last"].as_u64().unwrap() >= 2);
    ok(&cli(&[&"stats", &dir]));
    let tail = ok(&cli(&[&"log", &"tail", &dir, &"-n", &"1"]));
    let ops: Vec<Value> = tail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        ops.len(),
        3,
        "the last transaction inserted three documents: {tail}"
    );
    assert!(ops.iter().all(|o| o["op"] == "insert"));
    assert!(ok(&cli(&[&"verify", &dir])).contains("ok"));
    let compacted = t.path().join("compacted");
    ok(&cli(&[&"compact", &dir, &compacted]));
    assert_eq!(dump(&compacted, "things"), dump(&dir, "things"));
    // Bad usage and missing things.
    assert_eq!(
        cli(&[&"find", &dir, &"things", &"{not json"]).status.code(),
        Some(2)
    );
    assert_eq!(cli(&[&"frobnicate"]).status.code(), Some(2));
    assert_eq!(cli(&[&"count", &dir, &"nothing"]).status.code(), Some(1));
    let o = cli(&[&"ls", &t.path().join("absent")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no database"), "{}", stderr(&o));
    for sub in [
        "ls", "indexes", "find", "count", "stats", "verify", "export", "import", "backup",
        "restore", "compact", "log",
    ] {
        let o = cli(&[&sub, &"--help"]);
        assert!(o.status.success() && !o.stdout.is_empty(), "{sub} --help");
    }
    // A damaged file: verify exits 3 and names the file.
    let data = dir.join("data.mdb");
    let len = std::fs::metadata(&data).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let o = cli(&[&"verify", &dir]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("data.mdb"), "{}", stderr(&o));
}
