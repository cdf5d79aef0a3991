//! The workload traced by the power-loss test (`tests/power_loss.rs`).
//!
//! `powerloss_workload <root> <immediate|batched|none> <transactions> [--ack-early]`
//!
//! Opens `<root>/db` and runs, acknowledging each durable write by writing
//! a line to `<root>/acks` after (with `--ack-early`, before: the test's
//! control, which must be caught) it returned:
//! 1. `transactions` cross-collection transactions: transaction `i` inserts
//!    `{_id: i}` into `a` and into `b` and increments `meta.n` (ack `t<i>`);
//! 2. every 20th one also acknowledges the durable consumer `c` at the
//!    newest LSN (ack `k<lsn>`);
//! 3. four threads each insert 25 documents into `g` through group commit
//!    (ack `g<id>`).
//!
//! Small segments and a short checkpoint interval exercise segment
//! switching, checkpoints and log release inside a short trace.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use collection_store::{Database, DatabaseOptions, Durability, UpdateOptions};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = std::path::PathBuf::from(&args[1]);
    let durability = match args[2].as_str() {
        "immediate" => Durability::Immediate,
        "batched" => Durability::Batched {
            max_delay: Duration::from_millis(2),
        },
        _ => Durability::None,
    };
    let txns: u64 = args[3].parse().expect("a transaction count");
    let early = args.iter().any(|a| a == "--ack-early");
    let acks = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("acks"))
            .expect("the acks file"),
    ));
    let ack = |what: String| {
        let mut f = acks.lock().unwrap();
        f.write_all(format!("{what}\n").as_bytes()).unwrap();
    };
    let db = Database::open_with(
        root.join("db"),
        DatabaseOptions::default()
            .durability(durability)
            .initial_map_size(1 << 20)
            .log_segment_size(64 << 10)
            .checkpoint_interval(Duration::from_millis(20)),
    )
    .expect("open");
    let consumer = db.consumer("c").expect("consumer");
    for i in 1..=txns {
        if early {
            ack(format!("t{i}"));
        }
        db.transaction(|tx| {
            let pad = "x".repeat(200 + (i as usize * 37) % 400);
            tx.collection("a")?
                .insert_one(json!({"_id": i, "pad": pad}))?;
            tx.collection("b")?.insert_one(json!({"_id": i}))?;
            tx.collection("meta")?.update_one_with(
                json!({"_id": "n"}),
                json!({"$inc": {"n": 1}}),
                UpdateOptions::upsert(),
            )?;
            Ok(())
        })
        .expect("transaction");
        if !early {
            ack(format!("t{i}"));
        }
        if i % 20 == 0 {
            let lsn = db.last_lsn().expect("lsn");
            consumer.ack(lsn).expect("consumer ack");
            ack(format!("k{lsn}"));
        }
    }
    let g = db.collection("g").expect("g");
    std::thread::scope(|s| {
        for t in 0..4 {
            let g = g.clone();
            let ack = &ack;
            s.spawn(move || {
                for j in 0..25 {
                    let id = format!("g{t}-{j}");
                    g.insert_one(json!({"_id": id})).expect("insert");
                    ack(id);
                }
            });
        }
    });
}
