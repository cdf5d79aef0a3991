//! Replication with real processes and SIGKILL (child: `repl_child`).
//!
//! - `replica_killed_mid_stream_resumes`: a replica process follows a primary
//!   that keeps writing in this process; it is SIGKILLed at random moments
//!   mid-stream and restarted on the same directory several times; finally the
//!   directory follows again in-process and must hold exactly the primary's
//!   documents, indexes and log (same LSNs, same bytes: no gap, no duplicate).
//! - `replica_killed_during_snapshots_recovers`: the same with a primary that
//!   keeps only ~40 log entries, so restarts bootstrap from snapshots and kills
//!   land while they are copied, streamed and installed; after every kill the
//!   replica directory opens on a complete generation that verifies.
//! - `semi_sync_primary_killed_after_ack_loses_nothing`: a primary process in
//!   semi-synchronous mode (K = 1) reports every acknowledged insert on a pipe;
//!   this process follows it as the replica; the primary is SIGKILLed while
//!   writing, and every insert it acknowledged must be on the replica (live and
//!   after reopening its directory).
//!
//! `CS_REPL_KILL_CYCLES` sets the kill cycles per test (default 8).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use collection_store::replication::{
    open_replica_dir, Primary, PrimaryConfig, Replica, ReplicaConfig,
};
use collection_store::{Database, DatabaseOptions, IndexSpec, LogRetention, Lsn};
use collection_store_tests::{clock_seed, Rng};
use serde_json::{json, Value};

const SECRET: &[u8] = b"process test secret 0123456789";
const WAIT: Duration = Duration::from_secs(30);

fn replica_config() -> ReplicaConfig {
    ReplicaConfig::new(SECRET).backoff(Duration::from_millis(10), Duration::from_millis(100))
}

/// Spawns the child and a thread forwarding its stdout lines as JSON.
fn spawn(args: &[&str]) -> (Child, mpsc::Receiver<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_repl_child"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn repl_child");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                panic!("child printed a non-JSON line: {line}");
            };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn kill(child: &mut Child) {
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
}

fn log_of(db: &Database) -> Vec<(Lsn, Vec<u8>)> {
    let mut out = Vec::new();
    let mut after = db.log_bounds().unwrap().0.saturating_sub(1);
    loop {
        let frames = db.read_log_frames(after, 1 << 20).unwrap();
        let Some(last) = frames.last() else { break };
        after = last.0;
        out.extend(frames);
    }
    out
}

fn dump(db: &Database) -> Vec<(String, Vec<Value>, Value)> {
    db.list_collections()
        .unwrap()
        .into_iter()
        .map(|name| {
            let c = db.collection(&name).unwrap();
            let docs = c.find(json!({})).to_vec().unwrap();
            let idx = serde_json::to_value(c.list_indexes().unwrap()).unwrap();
            (name, docs, idx)
        })
        .collect()
}

#[test]
fn replica_killed_mid_stream_resumes() {
    kill_cycles(None, cycles());
}

/// With a short retained log, restarted replicas keep falling behind it, so
/// kills also land while snapshots are copied, streamed and installed.
#[test]
fn replica_killed_during_snapshots_recovers() {
    kill_cycles(Some(40), cycles());
}

/// Kill cycles per test: `CS_REPL_KILL_CYCLES` (default 8).
fn cycles() -> usize {
    std::env::var("CS_REPL_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

fn kill_cycles(retention: Option<u64>, cycles: usize) {
    let seed = clock_seed();
    eprintln!("seed {seed}");
    let mut rng = Rng::new(seed);
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let mut opts = DatabaseOptions::default();
    if let Some(n) = retention {
        opts = opts.log_retention(LogRetention::default().max_entries(n));
    }
    let db = Database::open_with(pdir.path(), opts).unwrap();
    let items = db.collection("items").unwrap();
    items.create_index(IndexSpec::new([("k", 1)])).unwrap();
    let primary = Primary::serve(
        db.clone(),
        "127.0.0.1:0",
        PrimaryConfig::new(SECRET).heartbeat_interval(Duration::from_millis(50)),
    )
    .unwrap();
    let addr = primary.local_addr().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let db = db.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let items = db.collection("items").unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = t * 1_000_000 + i;
                    items.insert_one(json!({"_id": id, "k": i % 97, "v": "x".repeat((i % 5) as usize * 100)})).unwrap();
                    if i % 4 == 3 {
                        db.transaction(|tx| {
                            let c = tx.collection("items")?;
                            c.update_one(json!({"_id": id - 1}), json!({"$inc": {"n": 1}}))?;
                            c.delete_one(json!({"_id": id - 3}))?;
                            Ok(())
                        })
                        .unwrap();
                    }
                    i += 1;
                }
            })
        })
        .collect();

    let rpath = rdir.path().to_str().unwrap().to_string();
    let mut last_reported = 0;
    let mut snapshots_seen = 0;
    for cycle in 0..cycles {
        let (mut child, rx) = spawn(&["replica", &addr, &rpath]);
        // Wait until it applied something new in this run, then kill it at a random moment.
        let deadline = Instant::now() + WAIT;
        let start = last_reported;
        while last_reported <= start {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(v) if v["t"] == "applied" => {
                    let lsn = v["lsn"].as_u64().unwrap();
                    assert!(
                        lsn >= last_reported,
                        "cycle {cycle}: applied LSN went back from {last_reported} to {lsn}"
                    );
                    last_reported = lsn;
                }
                Ok(_) => {}
                Err(e) => {
                    kill(&mut child);
                    panic!("cycle {cycle}: replica child made no progress: {e}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rng.range(0, 40)));
        kill(&mut child);
        while let Ok(v) = rx.try_recv() {
            if let Some(l) = v["lsn"].as_u64() {
                last_reported = last_reported.max(l);
            }
        }
        // The killed replica's directory opens on a complete generation whose
        // retained log is contiguous and equals the primary's frames at the same LSNs.
        let off = open_replica_dir(rdir.path()).unwrap();
        let rlog = log_of(&off);
        let rlast = off.last_lsn().unwrap();
        assert!(
            rlast >= last_reported,
            "cycle {cycle}: reported LSN {last_reported} but the directory holds {rlast}"
        );
        for w in rlog.windows(2) {
            assert_eq!(
                w[0].0 + 1,
                w[1].0,
                "cycle {cycle}: gap or duplicate in the replica's log"
            );
        }
        match rlog.last() {
            Some(&(last, _)) => assert_eq!(last, rlast, "cycle {cycle}: log and state disagree"),
            // Killed right after installing a snapshot: the log starts after it.
            None => assert_eq!(
                off.log_bounds().unwrap().0,
                rlast + 1,
                "cycle {cycle}: an empty log must start after the snapshot's LSN"
            ),
        }
        let plog = log_of(&db);
        for (lsn, frame) in &rlog {
            if let Some((_, p)) = plog.iter().find(|(l, _)| l == lsn) {
                assert_eq!(
                    p, frame,
                    "cycle {cycle}: entry {lsn} differs from the primary's"
                );
            }
        }
        if retention.is_none() {
            assert_eq!(rlog.first().map(|f| f.0), Some(1));
        }
        assert!(off.verify().unwrap().is_ok());
        let current = std::fs::read_to_string(rdir.path().join("CURRENT")).unwrap();
        if current.trim() != "gen-000001" {
            snapshots_seen += 1;
        }
        drop(off);
        if retention.is_some() && cycle % 2 == 0 {
            // Let the primary's retained log move past this replica, so that
            // the next run starts with a snapshot (and may be killed inside it).
            let deadline = Instant::now() + WAIT;
            while db.log_bounds().unwrap().0 <= rlast + 1 {
                assert!(
                    Instant::now() < deadline,
                    "retention did not move past LSN {rlast}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let replica = Replica::follow(primary.local_addr(), rdir.path(), replica_config()).unwrap();
    replica.wait_for_lsn(db.last_lsn().unwrap(), WAIT).unwrap();
    let rdb = replica.database();
    assert_eq!(dump(&db), dump(&rdb));
    if retention.is_none() {
        assert_eq!(log_of(&db), log_of(&rdb));
    } else {
        assert!(snapshots_seen > 0, "no cycle bootstrapped from a snapshot");
    }
    assert!(rdb.verify().unwrap().is_ok());
}

#[test]
fn semi_sync_primary_killed_after_ack_loses_nothing() {
    let pdir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let (mut child, rx) = spawn(&["primary", pdir.path().to_str().unwrap(), "4"]);
    let ready = rx.recv_timeout(WAIT).expect("primary child ready");
    assert_eq!(ready["t"], "ready", "{ready}");
    let addr = ready["addr"].as_str().unwrap().to_string();
    let replica = Replica::follow(&addr, rdir.path(), replica_config()).unwrap();
    let mut acked = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while acked.len() < 400 {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = rx.recv_timeout(left).unwrap_or_else(|e| {
            kill(&mut child);
            panic!(
                "only {} acknowledgements: {e}; replica {:?}",
                acked.len(),
                replica.status()
            )
        });
        match v["t"].as_str() {
            Some("ack") => {
                acked.insert(v["id"].as_u64().unwrap());
            }
            Some("err") => {
                panic!("a semi-synchronous write failed while the replica was connected: {v}")
            }
            _ => {}
        }
    }
    kill(&mut child);
    // Everything the child wrote to the pipe before dying was acknowledged.
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(5)) {
        if v["t"] == "ack" {
            acked.insert(v["id"].as_u64().unwrap());
        }
    }
    // No wait: an acknowledged write was durably applied here before the ack.
    let check = |db: &Database, when: &str| {
        let c = db.collection("acked").unwrap();
        let missing: Vec<_> = acked
            .iter()
            .filter(|id| c.get(json!(id)).unwrap().is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "{when}: {} acknowledged writes missing on the replica, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    };
    check(&replica.database(), "live replica");
    drop(replica);
    let off = open_replica_dir(rdir.path()).unwrap();
    check(&off, "reopened replica directory");
    assert!(off.verify().unwrap().is_ok());
    // The replica's log is a prefix of the dead primary's log (or all of it).
    drop(off);
    let off = open_replica_dir(rdir.path()).unwrap();
    let rlog = log_of(&off);
    drop(off);
    let pdb = Database::open(pdir.path()).unwrap();
    let plog = log_of(&pdb);
    assert!(rlog.len() <= plog.len());
    assert_eq!(&plog[..rlog.len()], &rlog[..]);
    eprintln!(
        "{} acknowledged writes, replica at LSN {}, primary at LSN {}",
        acked.len(),
        rlog.len(),
        plog.len()
    );
}
