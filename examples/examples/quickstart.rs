//! Quickstart: opens (or creates) the database in `./data`, inserts users,
//! queries them, and moves stock and money in one cross-collection transaction.
//!
//! Run with `cargo run --release --example quickstart`.

use collection_store::{Database, Error, UpdateOptions};
use serde_json::json;

fn main() -> Result<(), Error> {
    let db = Database::open("./data")?;
    // Start from a clean slate so the example prints the same thing every run.
    for name in ["users", "orders", "inventory"] {
        db.drop_collection(name)?;
    }

    let users = db.collection("users")?;
    let ids = users.insert_many(vec![
        json!({"_id": 1, "name": "Ann", "age": 30, "city": "Oslo", "tags": ["rust", "db"]}),
        json!({"_id": 2, "name": "Bob", "age": 17, "city": "Lima", "tags": []}),
        json!({"_id": 3, "name": "Cid", "age": 45, "city": "Oslo", "tags": ["go"]}),
    ])?;
    println!("inserted users {}", json!(ids));
    let generated = users.insert_one(json!({"name": "Dee", "age": 52, "city": "Rome"}))?;
    println!("inserted a user without _id; generated id {generated}");

    let adults = users
        .find(json!({"age": {"$gte": 18}}))
        .sort(json!({"age": -1}))
        .projection(json!({"name": 1, "age": 1, "_id": 0}))
        .to_vec()?;
    println!("adults, oldest first: {}", json!(adults));
    println!(
        "users in Oslo tagged rust: {}",
        users.count(json!({"city": "Oslo", "tags": "rust"}))?
    );
    println!("cities: {}", json!(users.distinct("city", json!({}))?));

    let r = users.update_many(
        json!({"city": "Oslo"}),
        json!({"$inc": {"age": 1}, "$push": {"tags": "nordic"}}),
    )?;
    println!(
        "birthday in Oslo: matched {}, modified {}",
        r.matched_count, r.modified_count
    );
    let r = users.update_one_with(
        json!({"name": "Eve"}),
        json!({"$set": {"age": 28}, "$setOnInsert": {"city": "Kyiv"}}),
        UpdateOptions::upsert(),
    )?;
    println!("upserted Eve with id {}", r.upserted_id.unwrap_or_default());

    let inventory = db.collection("inventory")?;
    inventory.insert_one(json!({"_id": "widget", "quantity": 2}))?;

    // A cross-collection transaction: all of it commits, or none of it.
    let place_order = |qty: i64| {
        db.transaction(|tx| {
            let stock = tx.collection("inventory")?;
            let taken = stock.update_one(
                json!({"_id": "widget", "quantity": {"$gte": qty}}),
                json!({"$inc": {"quantity": -qty}}),
            )?;
            tx.collection("orders")?
                .insert_one(json!({"user": 1, "item": "widget", "quantity": qty}))?;
            tx.collection("users")?
                .update_one(json!({"_id": 1}), json!({"$inc": {"orders": 1}}))?;
            if taken.modified_count == 0 {
                // Returning an error rolls back the order insert and the user update too.
                return Err(Error::Aborted(format!(
                    "not enough widgets in stock for {qty}"
                )));
            }
            Ok(())
        })
    };
    println!("order 2 widgets: {:?}", place_order(2).map(|_| "committed"));
    println!("order 1 widget:  {:?}", place_order(1).map(|_| "committed"));
    println!(
        "afterwards: {} order(s), widget stock {}, Ann has {} order(s)",
        db.collection("orders")?.count(json!({}))?,
        inventory
            .find_one(json!({"_id": "widget"}))?
            .unwrap_or_default()["quantity"],
        users.find_one(json!({"_id": 1}))?.unwrap_or_default()["orders"]
    );

    match users.insert_one(json!({"_id": 1, "name": "dup"})) {
        Err(e) => println!("duplicate _id refused: {e}"),
        Ok(_) => println!("unexpected: duplicate accepted"),
    }
    match users.find(json!({"age": {"$gtx": 3}})).to_vec() {
        Err(e) => println!("bad filter refused: {e}"),
        Ok(_) => println!("unexpected: bad filter accepted"),
    }
    Ok(())
}
