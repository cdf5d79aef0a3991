//! Change streams and a durable consumer.
//!
//! A writer thread places orders; a change stream prints each order as it
//! commits; a durable consumer ("mailer") handles events and acknowledges
//! them, so running the example again continues where it stopped.
//!
//! `cargo run --release --example change_stream` (database in `./data-changes`).

use std::time::Duration;

use collection_store::{Database, OpKind};
use serde_json::json;

fn main() -> collection_store::Result<()> {
    let db = Database::open("./data-changes")?;
    let orders = db.collection("orders")?;
    let mailer = db.consumer("mailer")?;
    println!(
        "log holds LSNs {:?}; consumer 'mailer' acknowledged up to {}",
        db.log_bounds()?,
        mailer.position()?
    );

    // Only large orders, from now on.
    let mut big = orders.watch(json!({"total": {"$gte": 100}}))?;

    let writer = {
        let orders = orders.clone();
        std::thread::spawn(move || -> collection_store::Result<()> {
            for i in 0..6 {
                orders.insert_one(json!({"item": format!("item {i}"), "total": 40 * i}))?;
            }
            orders.update_many(
                json!({"total": {"$lt": 100}}),
                json!({"$set": {"small": true}}),
            )?;
            Ok(())
        })
    };

    for _ in 0..3 {
        let ev = big
            .next_timeout(Duration::from_secs(10))?
            .expect("three orders of 100 or more");
        println!(
            "[watch] LSN {} {} {}: {}",
            ev.lsn,
            ev.operation.name(),
            ev.collection,
            ev.document.unwrap_or_default()
        );
    }
    writer.join().expect("writer thread")?;

    // The consumer sees everything since its last acknowledgement, including
    // earlier runs' changes it did not acknowledge.
    let mut changes = mailer
        .changes()?
        .operations([OpKind::Insert, OpKind::Update]);
    let mut handled = 0;
    while let Some(ev) = changes.next_timeout(Duration::from_millis(200))? {
        println!(
            "[mailer] LSN {} {} {}",
            ev.lsn,
            ev.operation.name(),
            ev.id.unwrap_or_default()
        );
        if ev.last_in_entry {
            mailer.ack(ev.lsn)?;
        }
        handled += 1;
    }
    println!(
        "mailer handled {handled} events and acknowledged up to LSN {}",
        mailer.position()?
    );
    Ok(())
}
