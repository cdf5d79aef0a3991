//! The cost of the change log on durable writes: the same documents written
//! through raw LMDB (heed) without a log, through raw LMDB with a framed log
//! entry in the same transaction (the log's floor), and through
//! collection-store (which always logs).
//!
//! `cargo bench -p collection-store --bench log_cost` (`CS_BENCH_SECONDS` per
//! single-commit configuration, default 5; `CS_BENCH_BATCHES` bulk
//! transactions of 10,000 documents, default 20).

use std::time::{Duration, Instant};

use collection_store::{Database, DatabaseOptions, Durability};
use collection_store::{LogEntry, LogOp, OpKind};
use heed::types::Bytes;
use serde_json::{json, Value};

fn doc(i: u64) -> Value {
    json!({"_id": i, "name": format!("user {i}"), "email": format!("u{i}@example.com"),
           "age": 18 + i % 63, "city": format!("city{}", i % 50), "tags": ["a", "b"],
           "score": (i % 1000) as f64 / 10.0})
}

fn bson_of(v: &Value) -> Vec<u8> {
    bson::serialize_to_vec(v).unwrap()
}

fn seconds() -> f64 {
    std::env::var("CS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0)
}

fn batches() -> u64 {
    std::env::var("CS_BENCH_BATCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

struct Raw {
    env: heed::Env<heed::WithTls>,
    docs: heed::Database<'static, Bytes, Bytes>,
    log: heed::Database<'static, Bytes, Bytes>,
    lsn: u64,
}

fn raw_open(dir: &std::path::Path) -> Raw {
    // SAFETY: a fresh directory opened once by this process; default flags
    // (durable sync on every commit).
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size(8 << 30)
            .max_dbs(4)
            .open(dir)
            .unwrap()
    };
    let wtxn = env.write_txn().unwrap();
    let (docs, log) = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            let docs: heed::Database<'_, Bytes, Bytes> =
                opener.create_database(wtxn, Some("docs"))?;
            let log: heed::Database<'_, Bytes, Bytes> =
                opener.create_database(wtxn, Some("log"))?;
            Ok(heed::CommitOrAbort::<_, ()>::Commit((docs, log)))
        })
        .unwrap()
        .unwrap_commit();
    Raw {
        env,
        docs,
        log,
        lsn: 0,
    }
}

/// One durable transaction writing `docs` (and their log entry when `with_log`).
fn raw_commit(r: &mut Raw, first: u64, docs: &[Vec<u8>], with_log: bool) {
    let mut w = r.env.write_txn().unwrap();
    for (i, d) in docs.iter().enumerate() {
        r.docs
            .put(&mut w, &(first + i as u64).to_be_bytes(), d)
            .unwrap();
    }
    if with_log {
        r.lsn += 1;
        let ops: Vec<LogOp> = docs
            .iter()
            .map(|d| LogOp::Put {
                kind: OpKind::Insert,
                collection: "users".into(),
                document: d.clone(),
            })
            .collect();
        let entry = LogEntry {
            lsn: r.lsn,
            timestamp_ms: 0,
            ops,
        };
        let frame = entry.encode().unwrap();
        r.log.put(&mut w, &r.lsn.to_be_bytes(), &frame).unwrap();
    }
    w.commit().unwrap();
}

fn row(name: &str, n: u64, elapsed: Duration, unit: &str, base: Option<f64>) -> f64 {
    let rate = n as f64 / elapsed.as_secs_f64();
    let ratio = base.map_or("1.00×".to_owned(), |b| format!("{:.2}×", rate / b));
    println!("| {name} | {rate:>12.0} {unit} | {ratio} | {n} |");
    rate
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = seconds();
    println!("| configuration | rate | vs raw LMDB without log | N |");
    println!("|---|---:|---:|---:|");

    // Single-document durable transactions, one writer.
    let one: Vec<Vec<u8>> = (0..1).map(|i| bson_of(&doc(i))).collect();
    let mut base = None;
    for with_log in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut r = raw_open(dir.path());
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed().as_secs_f64() < secs {
            raw_commit(&mut r, n, &one, with_log);
            n += 1;
        }
        let name = if with_log {
            "1 doc/txn: raw LMDB + log entry"
        } else {
            "1 doc/txn: raw LMDB, no log"
        };
        let rate = row(name, n, start.elapsed(), "txn/s", base);
        base.get_or_insert(rate);
    }
    {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open_with(
            dir.path(),
            DatabaseOptions::default().durability(Durability::Immediate),
        )
        .unwrap();
        let c = db.collection("users").unwrap();
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed().as_secs_f64() < secs {
            c.insert_one(doc(n)).unwrap();
            n += 1;
        }
        row(
            "1 doc/txn: collection-store insert_one (logged)",
            n,
            start.elapsed(),
            "txn/s",
            base,
        );
    }

    // Bulk: 10,000 documents per durable transaction.
    let batch: Vec<Vec<u8>> = (0..10_000).map(|i| bson_of(&doc(i))).collect();
    let mut base = None;
    for with_log in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut r = raw_open(dir.path());
        let start = Instant::now();
        for b in 0..batches() {
            raw_commit(&mut r, b * 10_000, &batch, with_log);
        }
        let name = if with_log {
            "10,000 docs/txn: raw LMDB + log entry"
        } else {
            "10,000 docs/txn: raw LMDB, no log"
        };
        let rate = row(name, batches() * 10_000, start.elapsed(), "docs/s", base);
        base.get_or_insert(rate);
    }
    {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let c = db.collection("users").unwrap();
        let start = Instant::now();
        for b in 0..batches() {
            c.insert_many((0..10_000).map(|i| doc(b * 10_000 + i)).collect::<Vec<_>>())
                .unwrap();
        }
        row(
            "10,000 docs/txn: collection-store insert_many (logged)",
            batches() * 10_000,
            start.elapsed(),
            "docs/s",
            base,
        );
    }
}
