//! Side-by-side benchmarks: collection-store, SQLite (WAL, synchronous=FULL)
//! and raw LMDB (heed), measured in one run on one machine.
//!
//! `cargo run --release --manifest-path bench/Cargo.toml -- write --seconds 5`
//!
//! `write`: single-document durable insert transactions with 1, 8 and 64
//! concurrent writers (threads). collection-store merges concurrent writers
//! through group commit; SQLite serialises writers on its write lock (each
//! writer has its own connection, `busy_timeout` 10 s); raw LMDB is one
//! writer doing one `put` + commit per transaction (LMDB's default durable
//! sync, the practical floor of a durable LMDB commit).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use collection_store::{Database, DatabaseOptions, Durability};
use heed::types::Bytes;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "collection-store benchmarks beside SQLite and raw LMDB")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Durable single-document insert transactions at 1, 8 and 64 writers.
    Write {
        /// Seconds per configuration.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Writer counts to run.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 8, 64])]
        writers: Vec<usize>,
    },
}

fn doc(t: usize, i: u64) -> Value {
    json!({"_id": format!("{t}-{i}"), "name": format!("user {i}"), "email": format!("u{t}.{i}@example.com"),
           "age": 18 + i % 63, "city": format!("city{}", i % 50), "tags": ["a", "b"], "score": (i % 1000) as f64 / 10.0})
}

struct Outcome {
    txns: usize,
    elapsed: Duration,
    lat: Vec<Duration>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.txns as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        if self.lat.is_empty() {
            return Duration::ZERO;
        }
        self.lat[((self.lat.len() - 1) as f64 * p) as usize]
    }
}

/// Runs `writers` threads calling `op(thread, i)` until `seconds` pass.
fn drive<S: Send + 'static>(
    writers: usize,
    seconds: f64,
    mut make: impl FnMut(usize) -> S,
    op: fn(&mut S, usize, u64),
) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let mut state = make(t);
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    op(&mut state, t, i);
                    lat.push(t0.elapsed());
                    i += 1;
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let elapsed = start.elapsed();
    lat.sort();
    Outcome { txns: lat.len(), elapsed, lat }
}

fn cs_write(dir: &Path, writers: usize, seconds: f64) -> Outcome {
    let db = Database::open_with(dir, DatabaseOptions::default().durability(Durability::Immediate)).unwrap();
    let users = db.collection("users").unwrap();
    let out = drive(writers, seconds, |_| users.clone(), |c, t, i| {
        c.insert_one(doc(t, i)).unwrap();
    });
    assert_eq!(users.count(json!({})).unwrap(), out.txns as u64, "collection-store lost an acknowledged insert");
    out
}

fn sqlite_open(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn sqlite_write(dir: &Path, writers: usize, seconds: f64) -> Outcome {
    let path = dir.join("bench.sqlite");
    let c = sqlite_open(&path);
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, doc TEXT NOT NULL);",
    )
    .unwrap();
    let out = drive(writers, seconds, |_| sqlite_open(&path), |c, t, i| {
        let d = doc(t, i);
        let id = d["_id"].as_str().unwrap_or_default().to_owned();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
        tx.execute("INSERT INTO users (id, doc) VALUES (?1, ?2)", (id, d.to_string())).unwrap();
        tx.commit().unwrap();
    });
    let n: i64 = c.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!(n as usize, out.txns, "SQLite lost an acknowledged insert");
    out
}

fn lmdb_write(dir: &Path, seconds: f64) -> Outcome {
    // SAFETY: a fresh directory, opened once in this process.
    let env = unsafe { heed::EnvOpenOptions::new().map_size(1 << 30).max_dbs(4).open(dir) }.unwrap();
    let wtxn = env.write_txn().unwrap();
    let db: heed::Database<'static, Bytes, Bytes> = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            let db: heed::Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some("docs"))?;
            Ok(heed::CommitOrAbort::<_, ()>::Commit(db))
        })
        .unwrap()
        .unwrap_commit();
    drive(1, seconds, |_| (env.clone(), db), |(env, db), t, i| {
        let d = doc(t, i);
        let bytes = serde_json::to_vec(&d).unwrap();
        let mut w = env.write_txn().unwrap();
        db.put(&mut w, d["_id"].as_str().unwrap_or_default().as_bytes(), &bytes).unwrap();
        w.commit().unwrap();
    })
}

fn row(engine: &str, writers: usize, o: &Outcome, sqlite: Option<f64>) {
    let ratio = sqlite.map_or(String::from("-"), |s| format!("{:.2}x", o.rate() / s));
    println!(
        "| {engine} | {writers} | {:.0} | {:.0?} | {:.0?} | {ratio} | {} |",
        o.rate(),
        o.pct(0.5),
        o.pct(0.99),
        o.txns
    );
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Write { seconds, writers } => {
            println!("| engine | writers | durable txn/s | p50 | p99 | vs SQLite FULL | N |");
            println!("|---|---:|---:|---:|---:|---:|---:|");
            let dir = tempfile::tempdir().unwrap();
            let raw = lmdb_write(dir.path(), seconds);
            row("raw LMDB (heed, 1 put + commit)", 1, &raw, None);
            for w in writers {
                let d1 = tempfile::tempdir().unwrap();
                let s = sqlite_write(d1.path(), w, seconds);
                row("SQLite WAL synchronous=FULL", w, &s, Some(s.rate()));
                let d2 = tempfile::tempdir().unwrap();
                let c = cs_write(d2.path(), w, seconds);
                row("collection-store (Immediate)", w, &c, Some(s.rate()));
            }
        }
    }
}
