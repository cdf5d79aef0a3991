//! Durable single-document write transactions: 1, 8 and 64 concurrent writers
//! through group commit, beside a plain LMDB commit (heed) of the same bytes.
//!
//! `cargo bench -p collection-store --bench write` (`CS_BENCH_SECONDS`, default 5,
//! sets how long each configuration runs; `CS_BENCH_WRITERS=n` runs only n
//! writers). Prints transactions per second and
//! per-transaction latency percentiles.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collection_store::{Database, DatabaseOptions, Durability};
use heed::types::Bytes;
use serde_json::json;

fn seconds() -> Duration {
    Duration::from_secs_f64(
        std::env::var("CS_BENCH_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5.0),
    )
}

fn doc(t: usize, i: u64) -> serde_json::Value {
    json!({"_id": format!("{t}-{i}"), "name": "user", "email": format!("u{t}.{i}@example.com"),
           "age": 18 + i % 60, "city": "city7", "tags": ["a", "b"], "score": 3.5})
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn run_cs(writers: usize, durability: Durability, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().durability(durability),
    )
    .unwrap();
    let users = db.collection("users").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let users = users.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    users.insert_one(doc(t, i)).unwrap();
                    lat.push(t0.elapsed());
                    i += 1;
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(seconds());
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    lat.sort();
    let n = lat.len();
    assert_eq!(
        users.count(json!({})).unwrap(),
        n as u64,
        "every acknowledged insert is stored"
    );
    println!(
        "{label:<34} writers {writers:>3}: {:>9.0} txn/s   p50 {:>8.1?}   p99 {:>8.1?}   (n = {n})",
        n as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
    );
}

fn run_raw_lmdb() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: a fresh directory opened once in this process.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size(1 << 30)
            .max_dbs(4)
            .open(dir.path())
    }
    .unwrap();
    let wtxn = env.write_txn().unwrap();
    let db: heed::Database<'static, Bytes, Bytes> = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            let db: heed::Database<'_, Bytes, Bytes> =
                opener.create_database(wtxn, Some("docs"))?;
            Ok(heed::CommitOrAbort::<_, ()>::Commit(db))
        })
        .unwrap()
        .unwrap_commit();
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut i = 0u64;
    while start.elapsed() < seconds() {
        let t0 = Instant::now();
        let bytes = serde_json::to_vec(&doc(0, i)).unwrap();
        let mut wtxn = env.write_txn().unwrap();
        db.put(&mut wtxn, &i.to_be_bytes(), &bytes).unwrap();
        wtxn.commit().unwrap();
        lat.push(t0.elapsed());
        i += 1;
    }
    let elapsed = start.elapsed();
    lat.sort();
    println!(
        "{:<34} writers {:>3}: {:>9.0} txn/s   p50 {:>8.1?}   p99 {:>8.1?}   (n = {})",
        "raw LMDB commit (heed, JSON bytes)",
        1,
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `CS_BENCH_WRITERS=64` runs only that writer count (for profiling).
    if let Some(n) = std::env::var("CS_BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        run_cs(n, Durability::Immediate, "collection-store Immediate");
        return;
    }
    run_raw_lmdb();
    for writers in [1, 8, 64] {
        run_cs(writers, Durability::Immediate, "collection-store Immediate");
    }
    run_cs(
        64,
        Durability::Batched {
            max_delay: Duration::from_millis(2),
        },
        "collection-store Batched 2ms",
    );
    run_cs(
        64,
        Durability::None,
        "collection-store None (log flushed by checkpoints)",
    );
}
