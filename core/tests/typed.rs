//! Typed collections over the shared schemas: CRUD round-trips for every field
//! type the schemas use, typed filters and updates against their untyped
//! equivalents on the same data, and typed statements inside transactions.

use collection_store::typed::{Filter, Update};
use collection_store::{Database, Error, TypedCollection, UpdateOptions};
use collection_store_schemas::sample::{self, EPOCH_2024};
use collection_store_schemas::{
    Address, Category, Dimensions, Inventory, LineItem, Order, OrderStatus, Payment, Product, User,
};
use serde_json::{json, Value};

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    (dir, db)
}

fn edge_user() -> User {
    User {
        id: i64::MAX as u64,
        email: "édge+ünïcode@example.com".into(),
        name: String::new(),
        age: u32::MAX,
        tags: vec![String::new(), "multi word".into(), "日本".into()],
        address: Address {
            street: "quote \" and \\ backslash".into(),
            city: "Zürich".into(),
            country: "CH".into(),
            zip: None,
        },
        active: false,
        nickname: Some(String::new()),
        orders: vec!["a".into()],
        balance: -0.1,
        created_at: i64::MIN,
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TypedCollection<User>>();
    check::<Filter<User>>();
    check::<Update<User>>();
    check::<collection_store::typed::Field<User, Address>>();
}

#[test]
fn users_round_trip() {
    let (_d, db) = open();
    let users: TypedCollection<User> = db.typed::<User>().unwrap();
    let mut all = sample::users(30);
    all.push(edge_user());
    let ids = users.insert_many(&all).unwrap();
    assert_eq!(ids, all.iter().map(|u| u.id).collect::<Vec<_>>());
    for u in &all {
        assert_eq!(users.get(&u.id).unwrap().as_ref(), Some(u), "get {}", u.id);
    }
    assert_eq!(users.find(Filter::all()).to_vec().unwrap(), all);
    assert_eq!(users.count(Filter::all()).unwrap(), 31);
    assert_eq!(users.get(&999).unwrap(), None);
    // Stored as the untyped API sees it: primary key field `id`, nested document.
    let raw = users.find_raw(json!({"id": 1})).to_vec().unwrap();
    assert_eq!(raw[0]["address"]["city"], json!(all[0].address.city));
    assert_eq!(users.raw().id_field(), "id");
    // Streaming iteration gives the same documents.
    let streamed: Vec<User> = users
        .find(Filter::all())
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed, all);
}

#[test]
fn products_round_trip() {
    let (_d, db) = open();
    let products = db.typed::<Product>().unwrap();
    let mut all = sample::products(12);
    all.push(Product {
        sku: "EDGE".into(),
        name: "edge".into(),
        price: f64::MAX,
        category: Category::Garden,
        tags: Vec::new(),
        dimensions: Some(Dimensions {
            width_mm: 0,
            height_mm: u32::MAX,
            weight_g: 1,
        }),
        rating: Some(0.1),
        created_at: 0,
    });
    products.insert_many(&all).unwrap();
    assert_eq!(products.raw().id_field(), "_id");
    for p in &all {
        assert_eq!(products.get(p.sku.as_str()).unwrap().as_ref(), Some(p));
    }
    let raw = products
        .find_raw(json!({"_id": "SKU-0001"}))
        .to_vec()
        .unwrap();
    assert_eq!(raw[0]["category"], json!("electronics"));
    let garden = products
        .find(Product::fields().category().eq(Category::Garden))
        .to_vec()
        .unwrap();
    assert_eq!(
        garden.len(),
        all.iter()
            .filter(|p| p.category == Category::Garden)
            .count()
    );
}

#[test]
fn orders_round_trip_with_generated_ids() {
    let (_d, db) = open();
    let orders = db.typed::<Order>().unwrap();
    let mut all = vec![
        sample::order(1, &[(1, 2), (2, 1)], EPOCH_2024),
        sample::order(2, &[(3, 5)], EPOCH_2024 + 1),
        sample::order(3, &[], EPOCH_2024 + 2),
    ];
    all[1].status = OrderStatus::Shipped;
    let id0 = orders.insert_one(&all[0]).unwrap();
    assert_eq!(id0.len(), 24);
    assert!(id0.chars().all(|c| c.is_ascii_hexdigit()));
    let rest = orders.insert_many(&all[1..]).unwrap();
    for (o, id) in all.iter_mut().zip(std::iter::once(id0).chain(rest)) {
        o.id = Some(id);
    }
    for o in &all {
        let id = o.id.as_deref().unwrap();
        assert_eq!(orders.get(id).unwrap().as_ref(), Some(o));
    }
    // An explicit id is kept.
    let mut explicit = sample::order(4, &[(1, 1)], EPOCH_2024 + 3);
    explicit.id = Some("order-4".into());
    assert_eq!(orders.insert_one(&explicit).unwrap(), "order-4");
    assert_eq!(orders.get("order-4").unwrap(), Some(explicit));
    // The data-carrying enum and the embedded lines are stored as serde writes them.
    let raw = orders.find_raw(json!({"user_id": 3})).to_vec().unwrap();
    assert_eq!(raw[0]["payment"], json!({"card": {"last4": "0003"}}));
    let with_sku3 = orders
        .find(Order::fields().items().sku().eq("SKU-0003"))
        .to_vec()
        .unwrap();
    assert_eq!(with_sku3, vec![all[1].clone()]);
}

#[test]
fn inventory_round_trip_and_crud() {
    let (_d, db) = open();
    let inv = db.typed::<Inventory>().unwrap();
    let mut items: Vec<Inventory> = (1..=8)
        .map(|n| sample::inventory(n, n as u32 * 3))
        .collect();
    items[0].reorder_level = i32::MIN;
    inv.insert_many(&items).unwrap();
    for i in &items {
        assert_eq!(inv.get(i.sku.as_str()).unwrap().as_ref(), Some(i));
    }
    // replace / save / delete by primary key
    let mut changed = items[1].clone();
    changed.quantity = 0;
    changed.warehouse = "NEW".into();
    assert_eq!(inv.replace(&changed).unwrap().modified_count, 1);
    assert_eq!(inv.get("SKU-0002").unwrap(), Some(changed.clone()));
    let fresh = sample::inventory(99, 1);
    assert!(inv.save(&fresh).unwrap().upserted_id.is_some());
    assert_eq!(inv.get("SKU-0099").unwrap(), Some(fresh));
    assert!(inv.delete("SKU-0099").unwrap());
    assert!(!inv.delete("SKU-0099").unwrap());
    let f = Inventory::fields();
    // quantities 3, 0 (replaced), 9 are below 10
    assert_eq!(inv.delete_many(f.quantity().lt(10)).unwrap(), 3);
    assert_eq!(inv.count(Filter::all()).unwrap(), 5);
    assert_eq!(inv.delete_one(f.warehouse().eq("LIM-2")).unwrap(), 1);
    // Duplicate keys are the engine's error, unchanged.
    let err = inv.insert_one(&items[7]).unwrap_err();
    assert!(matches!(err, Error::DuplicateKey { .. }), "{err}");
}

#[test]
fn sort_skip_limit_first() {
    let (_d, db) = open();
    let users = db.typed::<User>().unwrap();
    users.insert_many(&sample::users(20)).unwrap();
    let f = User::fields();
    let typed: Vec<u64> = users
        .find(f.age().gte(30))
        .sort(f.age().desc().then(f.id().asc()))
        .skip(2)
        .limit(5)
        .to_vec()
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    let untyped: Vec<u64> = users
        .raw()
        .find(json!({"age": {"$gte": 30}}))
        .sort(json!({"age": -1, "id": 1}))
        .skip(2)
        .limit(5)
        .to_vec()
        .unwrap()
        .into_iter()
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    assert_eq!(typed, untyped);
    assert_eq!(typed.len(), 5);
    let youngest = users
        .find(Filter::all())
        .sort(f.age().asc())
        .first()
        .unwrap()
        .unwrap();
    assert_eq!(
        youngest.age,
        sample::users(20).iter().map(|u| u.age).min().unwrap()
    );
    assert_eq!(
        users
            .find_one(f.email().eq("user7@example.com"))
            .unwrap()
            .unwrap()
            .id,
        7
    );
}

/// Every typed filter lowers to the JSON given beside it, and both find the same documents.
#[test]
fn typed_filters_equal_untyped() {
    let (_d, db) = open();
    let users = db.typed::<User>().unwrap();
    users.insert_many(&sample::users(40)).unwrap();
    let orders = db.typed::<Order>().unwrap();
    for u in 1..=10u64 {
        orders
            .insert_one(&sample::order(
                u,
                &[(u, u as u32), (u + 1, 1)],
                EPOCH_2024 + u as i64,
            ))
            .unwrap();
    }
    let f = User::fields();
    let cases: Vec<(Filter<User>, Value)> = vec![
        (f.id().eq(7), json!({"id": 7})),
        (f.age().ne(30), json!({"age": {"$ne": 30}})),
        (f.age().gt(40), json!({"age": {"$gt": 40}})),
        (
            f.age().gte(18).and(f.age().lt(30)),
            json!({"age": {"$gte": 18, "$lt": 30}}),
        ),
        (f.age().lte(20), json!({"age": {"$lte": 20}})),
        (
            f.age().is_in([23, 30, 44]),
            json!({"age": {"$in": [23, 30, 44]}}),
        ),
        (f.age().not_in([23, 30]), json!({"age": {"$nin": [23, 30]}})),
        (
            f.email().eq("user3@example.com"),
            json!({"email": "user3@example.com"}),
        ),
        (f.active().eq(false), json!({"active": false})),
        (f.balance().gt(100.0), json!({"balance": {"$gt": 100.0}})),
        (
            f.created_at().lt(EPOCH_2024 + 5 * 86_400_000),
            json!({"created_at": {"$lt": EPOCH_2024 + 5 * 86_400_000}}),
        ),
        (f.nickname().eq(None), json!({"nickname": null})),
        (f.nickname().eq("u9"), json!({"nickname": "u9"})),
        (
            f.nickname().exists(true),
            json!({"nickname": {"$exists": true}}),
        ),
        (
            f.address().city().eq("Oslo"),
            json!({"address.city": "Oslo"}),
        ),
        (f.address().zip().eq(None), json!({"address.zip": null})),
        (
            f.address().eq(Address {
                street: "6 Main St".into(),
                city: "Lima".into(),
                country: "PE".into(),
                zip: None,
            }),
            json!({"address": {"$eq": {"street": "6 Main St", "city": "Lima", "country": "PE", "zip": null}}}),
        ),
        (f.tags().contains("rust"), json!({"tags": "rust"})),
        (
            f.tags().contains_all(["rust", "db"]),
            json!({"tags": {"$all": ["rust", "db"]}}),
        ),
        (
            f.tags().contains_any(["go", "ml"]),
            json!({"tags": {"$in": ["go", "ml"]}}),
        ),
        (f.tags().len_eq(2), json!({"tags": {"$size": 2}})),
        (f.tags().is_empty(), json!({"tags": {"$size": 0}})),
        (
            f.name().matches("^User 1"),
            json!({"name": {"$regex": "^User 1"}}),
        ),
        (
            f.name().matches_with("^user 2", "i"),
            json!({"name": {"$regex": "^user 2", "$options": "i"}}),
        ),
        (
            f.email().starts_with("user1"),
            json!({"email": {"$regex": "^user1"}}),
        ),
        (
            f.age().gte(18).and(f.tags().contains("rust")),
            json!({"age": {"$gte": 18}, "tags": "rust"}),
        ),
        (
            f.age().gte(18).and(f.age().gte(40)),
            json!({"$and": [{"age": {"$gte": 18}}, {"age": {"$gte": 40}}]}),
        ),
        (
            f.address()
                .city()
                .eq("Oslo")
                .or(f.address().city().eq("Rome"))
                .or(f.age().lt(20)),
            json!({"$or": [{"address.city": "Oslo"}, {"address.city": "Rome"}, {"age": {"$lt": 20}}]}),
        ),
        (!f.active().eq(true), json!({"$nor": [{"active": true}]})),
        (
            (f.age().gt(20) & f.active().eq(true)) | f.id().eq(1),
            json!({"$or": [{"age": {"$gt": 20}, "active": true}, {"id": 1}]}),
        ),
        (
            Filter::all_of([f.id().gt(3), f.id().lt(9)]),
            json!({"id": {"$gt": 3, "$lt": 9}}),
        ),
        (Filter::any_of(Vec::new()), json!({"$nor": [{}]})),
        (
            Filter::raw(json!({"age": {"$mod": [5, 0]}})),
            json!({"age": {"$mod": [5, 0]}}),
        ),
    ];
    for (typed, expected) in cases {
        let lowered = typed.to_json().unwrap();
        assert_eq!(lowered, expected);
        let typed_ids: Vec<u64> = users
            .find(typed)
            .to_vec()
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        let untyped_ids: Vec<u64> = users
            .raw()
            .find(expected.clone())
            .to_vec()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_u64().unwrap())
            .collect();
        assert_eq!(typed_ids, untyped_ids, "{expected}");
    }

    let o = Order::fields();
    let item = LineItem::fields();
    let order_cases: Vec<(Filter<Order>, Value)> = vec![
        (
            o.items().sku().eq("SKU-0003"),
            json!({"items.sku": "SKU-0003"}),
        ),
        (
            o.items()
                .elem_match(item.sku().eq("SKU-0004").and(item.quantity().gte(4))),
            json!({"items": {"$elemMatch": {"sku": "SKU-0004", "quantity": {"$gte": 4}}}}),
        ),
        (
            o.status().eq(OrderStatus::Pending),
            json!({"status": "pending"}),
        ),
        (o.payment().eq(Payment::Cash), json!({"payment": "cash"})),
        (
            o.payment().eq(Payment::Invoice { due_days: 30 }),
            json!({"payment": {"$eq": {"invoice": {"due_days": 30}}}}),
        ),
        (o.note().exists(false), json!({"note": {"$exists": false}})),
        (
            o.user_id().is_in([1u64, 2, 3]),
            json!({"user_id": {"$in": [1, 2, 3]}}),
        ),
    ];
    for (typed, expected) in order_cases {
        assert_eq!(typed.to_json().unwrap(), expected);
        let a: Vec<Order> = orders.find(typed).to_vec().unwrap();
        let b = orders.find_raw(expected.clone()).to_vec().unwrap();
        assert_eq!(
            a.iter().map(|o| o.id.clone().unwrap()).collect::<Vec<_>>(),
            b.iter()
                .map(|v| v["_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>(),
            "{expected}"
        );
        assert!(
            !a.is_empty() || expected == json!({"note": {"$exists": false}}),
            "{expected}"
        );
    }
    assert_eq!(
        users.count(f.age().gte(18)).unwrap(),
        users.raw().count(json!({"age": {"$gte": 18}})).unwrap()
    );
}

/// Each typed update lowers to the JSON beside it; applying the typed update to
/// one database and the JSON to another leaves identical documents.
#[test]
fn typed_updates_equal_untyped() {
    let f = User::fields();
    let cases: Vec<(Filter<User>, Update<User>, Value)> = vec![
        (
            f.id().eq(7),
            Update::new().inc(f.age(), 1).push(f.tags(), "x"),
            json!({"$inc": {"age": 1}, "$push": {"tags": "x"}}),
        ),
        (
            f.age().gte(30),
            Update::new()
                .set(f.address().city(), "Bergen")
                .set(f.nickname(), "nick"),
            json!({"$set": {"address.city": "Bergen", "nickname": "nick"}}),
        ),
        (
            f.id().eq(3),
            Update::new().unset(f.nickname()).unset(f.address().zip()),
            json!({"$unset": {"nickname": 1, "address.zip": 1}}),
        ),
        (
            Filter::all(),
            Update::new().inc(f.age(), -1).mul(f.balance(), 1.5),
            json!({"$inc": {"age": -1}, "$mul": {"balance": 1.5}}),
        ),
        (
            f.id().lt(10),
            Update::new()
                .min(f.age(), 25)
                .max(f.created_at(), EPOCH_2024 + 5),
            json!({"$min": {"age": 25}, "$max": {"created_at": EPOCH_2024 + 5}}),
        ),
        (
            Filter::all(),
            Update::new()
                .push_each(f.tags(), ["a", "b"])
                .add_to_set(f.orders(), "o1"),
            json!({"$push": {"tags": {"$each": ["a", "b"]}}, "$addToSet": {"orders": "o1"}}),
        ),
        (
            Filter::all(),
            Update::new().add_to_set_each(f.tags(), ["rust", "new"]),
            json!({"$addToSet": {"tags": {"$each": ["rust", "new"]}}}),
        ),
        (
            Filter::all(),
            Update::new().pull(f.tags(), "db").pop_last(f.orders()),
            json!({"$pull": {"tags": "db"}, "$pop": {"orders": 1}}),
        ),
        (
            Filter::all(),
            Update::new().pull_all(f.tags(), ["go", "ml"]),
            json!({"$pullAll": {"tags": ["go", "ml"]}}),
        ),
        (
            f.id().eq(5),
            Update::new().pop_first(f.tags()).set(f.active(), true),
            json!({"$pop": {"tags": -1}, "$set": {"active": true}}),
        ),
        (
            f.id().eq(4),
            Update::new().set(
                f.address(),
                Address {
                    street: "1 New Rd".into(),
                    city: "Paris".into(),
                    country: "FR".into(),
                    zip: Some("75001".into()),
                },
            ),
            json!({"$set": {"address": {"street": "1 New Rd", "city": "Paris", "country": "FR", "zip": "75001"}}}),
        ),
    ];
    let (_da, a) = open();
    let (_db, b) = open();
    let ta = a.typed::<User>().unwrap();
    let tb = b.typed::<User>().unwrap();
    let mut users = sample::users(12);
    users[1].orders = vec!["o0".into(), "o9".into()];
    ta.insert_many(&users).unwrap();
    tb.insert_many(&users).unwrap();
    for (filter, update, expected) in cases {
        assert_eq!(update.to_json().unwrap(), expected);
        let fj = filter.to_json().unwrap();
        let ra = ta.update_many(filter, update).unwrap();
        let rb = tb.raw().update_many(fj, expected.clone()).unwrap();
        assert_eq!(ra, rb, "{expected}");
        assert!(ra.matched_count > 0, "{expected}");
        assert_eq!(
            ta.find(Filter::all()).to_vec().unwrap(),
            tb.find(Filter::all()).to_vec().unwrap(),
            "{expected}"
        );
    }
    // update_one touches one document, like its untyped counterpart.
    let r = ta
        .update_one(f.age().gte(0), Update::new().set(f.name(), "first"))
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    // Upsert with $setOnInsert.
    let r = ta
        .update_one_with(
            f.id().eq(500),
            Update::new()
                .set(f.email(), "new@example.com")
                .set_on_insert(f.name(), "New")
                .set_on_insert(f.age(), 20)
                .set_on_insert(f.tags(), Vec::<String>::new())
                .set_on_insert(f.address(), users[0].address.clone())
                .set_on_insert(f.active(), true)
                .set_on_insert(f.nickname(), None)
                .set_on_insert(f.orders(), Vec::<String>::new())
                .set_on_insert(f.balance(), 0.0)
                .set_on_insert(f.created_at(), EPOCH_2024),
            UpdateOptions::upsert(),
        )
        .unwrap();
    assert_eq!(r.upserted_id, Some(json!(500)));
    let new = ta.get(&500).unwrap().unwrap();
    assert_eq!(
        (new.name.as_str(), new.age, new.nickname),
        ("New", 20, None)
    );
    // Engine errors come through unchanged.
    let err = ta
        .update_one(f.id().eq(1), Update::new().set(f.id(), 2))
        .unwrap_err();
    assert!(matches!(err, Error::ImmutableField { .. }), "{err}");
    let err = ta.update_one(f.id().eq(1), Update::new()).unwrap_err();
    assert!(matches!(err, Error::InvalidUpdate(_)), "{err}");
}

#[test]
fn pull_matching_embedded_elements() {
    let (_d, db) = open();
    let orders = db.typed::<Order>().unwrap();
    let id = orders
        .insert_one(&sample::order(1, &[(1, 1), (2, 5), (3, 1)], EPOCH_2024))
        .unwrap();
    let o = Order::fields();
    let update = Update::new().pull_matching(o.items(), LineItem::fields().quantity().eq(1));
    assert_eq!(
        update.to_json().unwrap(),
        json!({"$pull": {"items": {"quantity": 1}}})
    );
    orders.update_one(o.id().eq(id.clone()), update).unwrap();
    let got = orders.get(id.as_str()).unwrap().unwrap();
    assert_eq!(
        got.items.iter().map(|l| l.sku.as_str()).collect::<Vec<_>>(),
        ["SKU-0002"]
    );
}

#[test]
fn typed_statements_inside_transactions() {
    let (_d, db) = open();
    let inv = db.typed::<Inventory>().unwrap();
    inv.insert_one(&sample::inventory(1, 3)).unwrap();
    let users = db.typed::<User>().unwrap();
    users.insert_one(&sample::user(1)).unwrap();

    let place = |qty: u32| {
        db.transaction(|tx| {
            let orders = tx.typed::<Order>()?;
            let id = orders.insert_one(&sample::order(1, &[(1, qty)], EPOCH_2024))?;
            let i = Inventory::fields();
            let taken = tx.typed::<Inventory>()?.update_one(
                i.sku().eq("SKU-0001").and(i.quantity().gte(qty)),
                Update::new().inc(i.quantity(), -i64::from(qty)),
            )?;
            let u = User::fields();
            tx.typed::<User>()?
                .update_one(u.id().eq(1), Update::new().push(u.orders(), id.as_str()))?;
            // Reads inside the transaction see its writes.
            assert_eq!(orders.count(Filter::all())?, orders.count(Filter::all())?);
            if taken.modified_count == 0 {
                return Err(Error::Aborted(format!("only stock below {qty}")));
            }
            Ok(id)
        })
    };
    let id = place(2).unwrap();
    let err = place(2).unwrap_err();
    assert!(matches!(err, Error::Aborted(_)), "{err}");
    let orders = db.typed::<Order>().unwrap();
    assert_eq!(orders.count(Filter::all()).unwrap(), 1);
    assert_eq!(inv.get("SKU-0001").unwrap().unwrap().quantity, 1);
    assert_eq!(users.get(&1).unwrap().unwrap().orders, vec![id]);

    // Rolled back explicitly: nothing stays.
    let tx = db.begin().unwrap();
    tx.typed::<Inventory>()
        .unwrap()
        .insert_one(&sample::inventory(2, 1))
        .unwrap();
    tx.rollback();
    assert_eq!(inv.get("SKU-0002").unwrap(), None);
}

#[test]
fn bad_operands_are_reported_when_the_statement_runs() {
    let (_d, db) = open();
    let users = db.typed::<User>().unwrap();
    users.insert_one(&sample::user(1)).unwrap();
    // A value serde cannot turn into JSON (a map with non-string keys).
    let mut m = std::collections::HashMap::new();
    m.insert(vec![1u8], 1);
    let bad: Filter<User> = User::fields().id().eq(1).and(Filter::raw(json!({}))).and(
        collection_store::typed::Field::<User, std::collections::HashMap<Vec<u8>, i32>>::new("m")
            .eq(m),
    );
    let err = users.find(bad).to_vec().unwrap_err();
    assert!(matches!(err, Error::InvalidFilter(_)), "{err}");
    // A bad regex is the engine's error.
    let err = users
        .find(User::fields().name().matches("("))
        .to_vec()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRegex { .. }), "{err}");
}

mod oid {
    use collection_store::Document;
    use serde::{Deserialize, Serialize};

    /// A document keyed by a BSON ObjectId.
    #[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
    #[document(collection = "events")]
    pub struct Event {
        #[document(id)]
        #[serde(rename = "_id")]
        pub id: bson::oid::ObjectId,
        pub kind: String,
    }
}

#[test]
fn object_id_keys() {
    let (_d, db) = open();
    let events = db.typed::<oid::Event>().unwrap();
    let e = oid::Event {
        id: bson::oid::ObjectId::new(),
        kind: "login".into(),
    };
    assert_eq!(events.insert_one(&e).unwrap(), e.id);
    assert_eq!(events.get(&e.id).unwrap(), Some(e.clone()));
    assert_eq!(
        events
            .find(oid::Event::fields().id().eq(e.id))
            .to_vec()
            .unwrap(),
        vec![e.clone()]
    );
    assert!(events.delete(&e.id).unwrap());
}
