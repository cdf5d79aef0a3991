//! A primary and a read replica in one process, over TCP on 127.0.0.1.
//!
//! The primary serves its change log; the replica follows it into its own
//! directory, and a change stream on the replica prints every change as it
//! is applied there. Writes on the replica are refused.
//!
//! `cargo run --release --example replica` (databases in a temporary directory).

use std::time::Duration;

use collection_store::replication::{Primary, PrimaryConfig, Replica, ReplicaConfig};
use collection_store::{Database, Error, IndexSpec};
use serde_json::json;

fn main() -> collection_store::Result<()> {
    let base = std::env::temp_dir().join(format!("cs-replica-example-{}", std::process::id()));
    let secret = b"example secret: use 32 random bytes".to_vec();

    let db = Database::open(base.join("primary"))?;
    let users = db.collection("users")?;
    users.create_index(IndexSpec::new([("age", 1)]))?;
    users.insert_one(json!({"_id": 1, "name": "Ann", "age": 31}))?;

    let primary = Primary::serve(
        db.clone(),
        "127.0.0.1:0",
        PrimaryConfig::new(secret.clone()),
    )?;
    println!("primary listening on {}", primary.local_addr());
    let replica = Replica::follow(
        primary.local_addr(),
        base.join("replica"),
        ReplicaConfig::new(secret),
    )?;
    replica.wait_for_lsn(db.last_lsn()?, Duration::from_secs(10))?;
    println!("replica caught up: {:?}", replica.status());

    // A change stream on the replica: events appear as the replica applies them.
    let mut changes = replica.database().watch()?;
    let printer = std::thread::spawn(move || -> collection_store::Result<usize> {
        let mut n = 0;
        while let Some(ev) = changes.next_timeout(Duration::from_secs(2))? {
            println!(
                "[replica] LSN {} {} {} {}",
                ev.lsn,
                ev.operation.name(),
                ev.collection,
                ev.document.map(|d| d.to_string()).unwrap_or_default()
            );
            n += 1;
        }
        Ok(n)
    });

    for (id, name, age) in [(2, "Bob", 45), (3, "Cid", 27), (4, "Dee", 52)] {
        users.insert_one(json!({"_id": id, "name": name, "age": age}))?;
    }
    users.update_one(json!({"_id": 1}), json!({"$inc": {"age": 1}}))?;
    db.transaction(|tx| {
        let users = tx.collection("users")?;
        users.delete_one(json!({"_id": 3}))?;
        tx.collection("audit")?.insert_one(json!({"removed": 3}))?;
        Ok(())
    })?;

    let applied = replica.wait_for_lsn(db.last_lsn()?, Duration::from_secs(10))?;
    let rdb = replica.database();
    let older = rdb
        .collection("users")?
        .find(json!({"age": {"$gte": 30}}))
        .sort(json!({"age": -1}))
        .to_vec()?;
    let older: Vec<String> = older.iter().map(|d| d.to_string()).collect();
    println!(
        "replica at LSN {applied}; users aged 30+ on the replica: {}",
        older.join(", ")
    );
    println!(
        "plan on the replica uses index {:?}",
        rdb.collection("users")?
            .explain(json!({"age": {"$gte": 30}}))?
            .index
    );
    match rdb.collection("users")?.insert_one(json!({"_id": 9})) {
        Err(Error::ReadOnly) => println!("writing on the replica: refused (read-only)"),
        other => println!("unexpected: {other:?}"),
    }
    let events = printer.join().expect("printer thread")?;
    println!(
        "the change stream on the replica printed {events} events; status {:?}",
        replica.status()
    );

    drop(rdb);
    replica.shutdown();
    primary.shutdown();
    drop(users);
    drop(db);
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}
