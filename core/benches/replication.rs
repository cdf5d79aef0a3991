//! Replication lag on loopback at a steady write rate.
//!
//! `cargo bench -p collection-store --bench replication`; environment:
//! `CS_BENCH_SECONDS` (seconds per configuration, default 5), `CS_BENCH_RATES`
//! (comma-separated target writes per second, default `1000,5000,10000`),
//! `CS_BENCH_WRITERS` (writer threads, default 16).
//!
//! A primary and a replica run in this process, each in its own temporary
//! directory, connected over 127.0.0.1. Writer threads insert one document of
//! the benchmark shape (~150 bytes of JSON) per durable statement, paced to the
//! target rate (open loop: a writer that falls behind does not sleep). After
//! each acknowledged insert the writer records the primary's last LSN `L` and
//! the time; an observer records when the replica's applied LSN changes. The
//! lag of a write is the time from its acknowledgement on the primary to the
//! replica having durably applied `L` (which includes every write acknowledged
//! before it), on one clock. Rows: asynchronous replication at each rate, then
//! semi-synchronous (K = 1) at the highest rate, where the writer's own
//! latency includes the replica's durable apply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collection_store::replication::{Primary, PrimaryConfig, Replica, ReplicaConfig, SemiSync};
use collection_store::{Database, Lsn};
use serde_json::json;

const SECRET: &[u8] = b"benchmark secret 0123456789";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct Row {
    mode: &'static str,
    target: u64,
    achieved: f64,
    n: usize,
    lag: Vec<Duration>,
    write_lat: Vec<Duration>,
}

fn run(rate: u64, writers: usize, secs: f64, semi_sync: bool) -> Row {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let db = Database::open(pdir.path()).unwrap();
    let users = db.collection("users").unwrap();
    let mut cfg = PrimaryConfig::new(SECRET);
    if semi_sync {
        cfg = cfg.semi_sync(SemiSync::new(1).timeout(Duration::from_secs(10)));
    }
    let primary = Primary::serve(db.clone(), "127.0.0.1:0", cfg).unwrap();
    let replica = Arc::new(
        Replica::follow(
            primary.local_addr(),
            rdir.path(),
            ReplicaConfig::new(SECRET),
        )
        .unwrap(),
    );
    replica
        .wait_for_lsn(db.last_lsn().unwrap(), Duration::from_secs(30))
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let observer = {
        let replica = replica.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = replica.status().applied_lsn;
            let mut points: Vec<(Lsn, Instant)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let now = replica.wait_for_change(seen, Duration::from_millis(50));
                if now != seen {
                    points.push((now, Instant::now()));
                    seen = now;
                }
            }
            points
        })
    };
    let interval = Duration::from_secs_f64(writers as f64 / rate as f64);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let users = users.clone();
            let db = db.clone();
            std::thread::spawn(move || {
                let mut acks: Vec<(Lsn, Instant)> = Vec::new();
                let mut lat = Vec::new();
                // Spread the writers' schedules over one interval.
                let mut next = start + interval.mul_f64(t as f64 / writers as f64);
                let mut i = 0u64;
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    next += interval;
                    let t0 = Instant::now();
                    users
                        .insert_one(json!({"_id": format!("{t}-{i}"), "name": "user",
                            "email": format!("u{t}.{i}@example.com"), "age": 18 + i % 60,
                            "city": "city7", "tags": ["a", "b"], "score": 3.5}))
                        .unwrap();
                    let acked = Instant::now();
                    lat.push(acked - t0);
                    acks.push((db.last_lsn().unwrap(), acked));
                    i += 1;
                }
                (acks, lat)
            })
        })
        .collect();
    let mut acks = Vec::new();
    let mut write_lat = Vec::new();
    for h in handles {
        let (a, l) = h.join().unwrap();
        acks.extend(a);
        write_lat.extend(l);
    }
    let elapsed = start.elapsed();
    replica
        .wait_for_lsn(db.last_lsn().unwrap(), Duration::from_secs(60))
        .unwrap();
    // Let the observer see the final change.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let points = observer.join().unwrap();
    let mut lag: Vec<Duration> = acks
        .iter()
        .map(|(lsn, t)| {
            let i = points.partition_point(|(l, _)| l < lsn);
            let (_, seen) = points.get(i).expect("the replica applied every write");
            seen.saturating_duration_since(*t)
        })
        .collect();
    lag.sort();
    write_lat.sort();
    assert_eq!(
        replica
            .database()
            .collection("users")
            .unwrap()
            .count(json!({}))
            .unwrap(),
        acks.len() as u64,
        "the replica holds every acknowledged write"
    );
    Row {
        mode: if semi_sync { "semi-sync K=1" } else { "async" },
        target: rate,
        achieved: acks.len() as f64 / elapsed.as_secs_f64(),
        n: acks.len(),
        lag,
        write_lat,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: f64 = env_or("CS_BENCH_SECONDS", 5.0);
    let writers: usize = env_or("CS_BENCH_WRITERS", 16);
    let rates: Vec<u64> = std::env::var("CS_BENCH_RATES")
        .unwrap_or_else(|_| "1000,5000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut rows = Vec::new();
    for &rate in &rates {
        rows.push(run(rate, writers, secs, false));
    }
    if let Some(&top) = rates.iter().max() {
        rows.push(run(top, writers, secs, true));
    }
    println!("| mode | target writes/s | achieved writes/s | lag p50 (ms) | lag p99 (ms) | lag max (ms) | write p50 (ms) | write p99 (ms) | N |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            r.mode,
            r.target,
            r.achieved,
            ms(percentile(&r.lag, 0.50)),
            ms(percentile(&r.lag, 0.99)),
            ms(r.lag.last().copied().unwrap_or_default()),
            ms(percentile(&r.write_lat, 0.50)),
            ms(percentile(&r.write_lat, 0.99)),
            r.n
        );
    }
    println!("\n{writers} writer threads, {secs} s per row, primary Durability::Immediate, replica applies each received batch in one durable LMDB transaction.");
}
