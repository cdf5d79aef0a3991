//! Child process of `tests/replication_processes.rs`.
//!
//! - `repl_child replica <primary_addr> <dir>`: follows the primary into `dir` and
//!   prints `{"t":"applied","lsn":n}` whenever the applied LSN changes, until killed.
//! - `repl_child primary <dir> <threads> [run]`: serves `dir` with
//!   semi-synchronous replication (1 replica, `Fail` on a 30 s timeout),
//!   prints `{"t":"ready","addr":"127.0.0.1:port"}`, then inserts documents
//!   from `threads` threads (`_id` = run × 10⁹ + thread × 10⁶ + i, so restarts
//!   on the same directory never collide) and prints `{"t":"ack","id":n}`
//!   after each acknowledged insert (`{"t":"err","id":n,"msg":..}` after a
//!   failed one), until killed.

use std::time::Duration;

use collection_store::replication::{Primary, PrimaryConfig, Replica, ReplicaConfig, SemiSync};
use collection_store::Database;
use collection_store_tests::emit;
use serde_json::json;

/// The secret shared by the test and its children.
const SECRET: &[u8] = b"process test secret 0123456789";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("replica") if args.len() == 4 => replica(&args[2], &args[3]),
        Some("primary") if args.len() == 4 || args.len() == 5 => primary(
            &args[2],
            args[3].parse().expect("threads"),
            args.get(4).map_or(0, |r| r.parse().expect("run")),
        ),
        _ => {
            eprintln!("usage: repl_child replica <addr> <dir> | primary <dir> <threads> [run]");
            std::process::exit(2);
        }
    }
}

fn replica(addr: &str, dir: &str) {
    let cfg =
        ReplicaConfig::new(SECRET).backoff(Duration::from_millis(10), Duration::from_millis(100));
    let r = Replica::follow(addr, dir, cfg).expect("follow");
    let mut seen = r.status().applied_lsn;
    emit(&json!({"t": "applied", "lsn": seen}));
    loop {
        let now = r.wait_for_change(seen, Duration::from_secs(1));
        if now != seen {
            seen = now;
            emit(&json!({"t": "applied", "lsn": seen}));
        }
    }
}

fn primary(dir: &str, threads: u64, run: u64) {
    let db = Database::open(dir).expect("open");
    // Created before serving: in semi-synchronous mode this write would wait for a replica.
    let c = db.collection("acked").expect("collection");
    let cfg = PrimaryConfig::new(SECRET)
        .heartbeat_interval(Duration::from_millis(100))
        .semi_sync(SemiSync::new(1).timeout(Duration::from_secs(30)));
    let p = Primary::serve(db.clone(), "127.0.0.1:0", cfg).expect("serve");
    emit(&json!({"t": "ready", "addr": p.local_addr().to_string()}));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let id = run * 1_000_000_000 + t * 1_000_000 + i;
                    match c.insert_one(
                        json!({"_id": id, "t": t, "pad": "p".repeat((i % 7) as usize * 40)}),
                    ) {
                        Ok(_) => emit(&json!({"t": "ack", "id": id})),
                        Err(e) => emit(&json!({"t": "err", "id": id, "msg": e.to_string()})),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    drop(p);
}
