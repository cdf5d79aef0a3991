//! The README's Rust snippets, verbatim, each inside a function that gives it
//! what the surrounding prose assumes (a `Result` to return into; for the
//! replica snippet an open primary `db` and a `secret`). `tests/readme.rs`
//! checks that every rust block of README.md appears here unchanged and runs
//! the functions in a scratch directory; rustfmt skips this file (`lib.rs`)
//! so that it stays as the README shows it. The snippets create their
//! databases in the current directory: `./typed-data` (typed `users`, keyed on
//! `id`), `./data` (untyped `users`, keyed on `_id`, as in the quickstart) and
//! `./replica`; each function drops and recreates the collections it uses
//! (the aggregation snippet reuses `./data` with its own `users` and `orders`).

#![allow(clippy::all, unused_variables)]

use collection_store::Result;

/// The typed snippet.
pub fn typed() -> Result<()> {
    collection_store::Database::open("./typed-data")?.drop_collection("users")?;
    use collection_store::{Database, Document, Embedded, typed::Update};
    use serde::{Deserialize, Serialize};

    #[derive(Embedded, Serialize, Deserialize)]
    struct Address { city: String }

    #[derive(Document, Serialize, Deserialize)]
    #[document(collection = "users", index(fields(email, age desc), name = "email_age"))]
    struct User {
        #[document(id)] id: u64,
        #[document(index(unique))] email: String,
        age: u32,
        tags: Vec<String>,
        address: Address,
    }

    let db = Database::open("./typed-data")?;   // its own directory: `users` here keys on `id`
    let users = db.typed::<User>()?;            // creates the declared indexes (reconciles on later opens)
    let f = User::fields();
    let adults = users.find(f.age().gte(18).and(f.address().city().eq("Oslo"))).to_vec()?;
    users.update_one(f.id().eq(7), Update::new().inc(f.age(), 1).push(f.tags(), "rust"))?;
    let ann: Option<User> = users.get(&1)?;
    Ok(())
}

/// The untyped snippet, then the change-stream snippet on the same handles.
pub fn untyped_and_changes() -> Result<()> {
    for name in ["users", "orders"] {
        collection_store::Database::open("./data")?.drop_collection(name)?;
    }
    use collection_store::{Database, IndexSpec, UpdateOptions};
    use serde_json::json;

    let db = Database::open("./data")?;
    let users = db.collection("users")?;
    users.create_index(IndexSpec::new([("email", 1)]).unique())?;
    users.create_index(IndexSpec::new([("age", 1)]))?;
    users.insert_one(json!({"_id": 1, "name": "Ann", "email": "ann@example.com", "age": 30, "tags": ["rust"]}))?;
    let adults = users.find(json!({"age": {"$gte": 18}, "tags": "rust"}))
        .sort(json!({"age": -1})).limit(10).projection(json!({"name": 1}))
        .to_vec()?;                             // planned over the age index, stops after 10
    users.update_one_with(json!({"email": "bob@example.com"}), json!({"$inc": {"visits": 1}}), UpdateOptions::upsert())?;

    db.transaction(|tx| {                       // commits on Ok, rolls back on Err or panic
        tx.collection("orders")?.insert_one(json!({"user": 1, "total": 9.5}))?;
        tx.collection("users")?.update_one(json!({"_id": 1}), json!({"$inc": {"orders": 1}}))?;
        Ok(())
    })?;
    use std::time::Duration;

    let mut changes = users.watch(json!({"age": {"$gte": 18}}))?;   // only adults, from now on
    users.insert_one(json!({"_id": 2, "name": "Eve", "age": 41}))?;
    while let Some(event) = changes.next_timeout(Duration::from_millis(200))? {   // ChangeEvent
        println!("{} {} {:?} at LSN {}", event.operation.name(), event.collection, event.id, event.lsn);
    }
    let indexer = db.consumer("search-indexer")?;                     // position stored in the database
    let mut pending = indexer.changes()?;
    while let Some(event) = pending.try_next()? {                     // what is there now, never blocks
        if event.last_in_entry { indexer.ack(event.lsn)?; }           // resumes here after a restart
    }
    Ok(())
}

/// The replica snippet, on the database of the untyped snippet.
pub fn replica() -> Result<()> {
    use serde_json::json;
    use std::time::Duration;
    let db = collection_store::Database::open("./data")?;
    let secret = b"a shared secret of 16 bytes or more".to_vec();
    use collection_store::replication::{Primary, PrimaryConfig, Replica, ReplicaConfig, SemiSync};

    let primary = Primary::serve(db.clone(), "127.0.0.1:0",                 // port 0: any free port
        PrimaryConfig::new(secret.clone()).semi_sync(SemiSync::new(1)))?;   // optional
    let replica = Replica::follow(primary.local_addr(), "./replica", ReplicaConfig::new(secret))?;
    replica.wait_connected(Duration::from_secs(5))?;                          // else: why not (e.g. refused)
    replica.wait_for_lsn(db.last_lsn()?, Duration::from_secs(5))?;           // read-your-writes
    let adults = replica.database().collection("users")?.find(json!({"age": {"$gte": 18}})).to_vec()?;
    println!("{:?}", replica.status());   // state, applied LSN, lag (None while disconnected), reconnects
    Ok(())
}

/// The aggregation snippet, on the untyped `users` of `./data` and an
/// `orders` collection joined to them.
pub fn aggregation() -> Result<()> {
    for name in ["users", "orders"] {
        collection_store::Database::open("./data")?.drop_collection(name)?;
    }
    use collection_store::{Database, IndexSpec};
    use serde_json::json;

    #[derive(serde::Deserialize, Debug)]
    struct CityRevenue {
        #[serde(rename = "_id")]
        city: String,
        total: f64,
    }

    let db = Database::open("./data")?;
    let users = db.collection("users")?;
    users.create_index(IndexSpec::new([("age", 1)]))?;
    users.insert_many(vec![
        json!({"_id": 1, "name": "Ann", "age": 31, "city": "Oslo", "score": 7}),
        json!({"_id": 2, "name": "Bob", "age": 35, "city": "Oslo", "score": 9}),
        json!({"_id": 3, "name": "Eve", "age": 33, "city": "Rome", "score": 4}),
        json!({"_id": 4, "name": "Joe", "age": 52, "city": "Rome", "score": 5}),
    ])?;
    let orders = db.collection("orders")?;
    orders.insert_many(vec![
        json!({"_id": 10, "user": 1, "amount": 20}),
        json!({"_id": 11, "user": 2, "amount": 5}),
        json!({"_id": 12, "user": 4, "amount": 7}),
    ])?;
    let pipeline = json!([{"$match": {"age": {"$gte": 30}}}, {"$count": "n"}]);

    let by_city = users
        .aggregate(json!([
            {"$match": {"age": {"$gte": 30, "$lt": 40}}},                  // planned over the age index
            {"$group": {"_id": "$city", "n": {"$sum": 1}, "avg": {"$avg": "$score"}}},
            {"$sort": {"n": -1}},
            {"$limit": 5}
        ]))
        .to_vec()?;                                                          // Vec<serde_json::Value>
    let revenue: Vec<CityRevenue> = orders
        .aggregate(json!([
            {"$lookup": {"from": "users", "localField": "user", "foreignField": "_id", "as": "u"}},
            {"$unwind": "$u"},
            {"$group": {"_id": "$u.city", "total": {"$sum": "$amount"}}}
        ]))
        .to_vec_as()?;                                                       // or .aggregate_as::<T>(), or iterate
    let plan = users.aggregate(pipeline).explain()?;                         // source plan, absorbed stages, $lookup plans

    assert_eq!(by_city[0], json!({"_id": "Oslo", "n": 2, "avg": 8.0}));
    assert_eq!(by_city.len(), 2);
    let mut totals: Vec<(String, f64)> = revenue.into_iter().map(|r| (r.city, r.total)).collect();
    totals.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(totals, vec![("Oslo".to_owned(), 25.0), ("Rome".to_owned(), 7.0)]);
    let _ = plan;
    Ok(())
}
