//! Typed shop: the shared schemas (`collection-store-schemas`) as typed
//! collections. Places an order as one cross-collection transaction (insert
//! the order, take each line from inventory with `$inc` guarded by
//! `quantity >= n`, append the order to the user's list), once with enough
//! stock (committed) and once without (rolled back entirely).
//!
//! Run with `cargo run --release --example shop`; it uses `./data` and starts
//! from a clean slate, so it can be re-run.

use collection_store::typed::{Filter, Update};
use collection_store::{Database, Document, Error};
use collection_store_schemas::{
    now_millis, sample, Inventory, LineItem, Order, OrderStatus, Payment, Product, User,
};

/// Places an order for `lines` (SKU, quantity) on behalf of `user_id`: all of
/// it, or (on any error) none of it. Returns the new order's id.
fn place_order(db: &Database, user_id: u64, lines: &[(&str, u32)]) -> Result<String, Error> {
    db.transaction(|tx| {
        let products = tx.typed::<Product>()?;
        let inventory = tx.typed::<Inventory>()?;
        let orders = tx.typed::<Order>()?;
        let users = tx.typed::<User>()?;

        let mut items = Vec::new();
        for &(sku, quantity) in lines {
            let product = products
                .get(sku)?
                .ok_or_else(|| Error::Aborted(format!("unknown product {sku}")))?;
            items.push(LineItem {
                sku: sku.to_owned(),
                quantity,
                unit_price: product.price,
            });
        }
        let mut order = Order {
            id: None,
            user_id,
            items,
            status: OrderStatus::Pending,
            payment: Payment::Card {
                last4: "4242".into(),
            },
            total: 0.0,
            note: None,
            placed_at: now_millis(),
        };
        order.total = order.computed_total();
        let order_id = orders.insert_one(&order)?;

        let stock = Inventory::fields();
        for line in &order.items {
            let taken = inventory.update_one(
                stock
                    .sku()
                    .eq(&line.sku)
                    .and(stock.quantity().gte(line.quantity)),
                Update::new()
                    .inc(stock.quantity(), -i64::from(line.quantity))
                    .set(stock.updated_at(), now_millis()),
            )?;
            if taken.modified_count == 0 {
                // Returning an error rolls back the order insert and earlier lines too.
                return Err(Error::Aborted(format!(
                    "not enough {} in stock for {} unit(s)",
                    line.sku, line.quantity
                )));
            }
        }

        let u = User::fields();
        let found = users.update_one(
            u.id().eq(user_id),
            Update::new().push(u.orders(), order_id.as_str()),
        )?;
        if found.matched_count == 0 {
            return Err(Error::Aborted(format!("no user {user_id}")));
        }
        Ok(order_id)
    })
}

fn report(db: &Database) -> Result<(), Error> {
    let orders = db.typed::<Order>()?;
    let inventory = db.typed::<Inventory>()?;
    let user = db.typed::<User>()?.get(&1)?;
    let stock: Vec<String> = inventory
        .find(Filter::all())
        .sort(Inventory::fields().sku().asc())
        .to_vec()?
        .into_iter()
        .map(|i| format!("{}={}", i.sku, i.quantity))
        .collect();
    println!(
        "  now: {} order(s), stock [{}], user 1 has {} order(s)",
        orders.count(Filter::all())?,
        stock.join(", "),
        user.map(|u| u.orders.len()).unwrap_or(0)
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let db = Database::open("./data")?;
    // Start from a clean slate so the example prints the same thing every run.
    for name in [
        User::COLLECTION,
        Product::COLLECTION,
        Order::COLLECTION,
        Inventory::COLLECTION,
    ] {
        db.drop_collection(name)?;
    }

    // Opening a typed collection builds the indexes its struct declares.
    let users = db.typed::<User>()?;
    let products = db.typed::<Product>()?;
    let inventory = db.typed::<Inventory>()?;
    let orders = db.typed::<Order>()?;
    for (name, created) in [
        (users.name(), &users.sync_report().created),
        (products.name(), &products.sync_report().created),
        (inventory.name(), &inventory.sync_report().created),
        (orders.name(), &orders.sync_report().created),
    ] {
        println!("{name}: indexes {created:?}");
    }

    users.insert_many(&sample::users(3))?;
    products.insert_many(&sample::products(2))?;
    inventory.insert_many(&[sample::inventory(1, 5), sample::inventory(2, 1)])?;
    report(&db)?;

    let adults = users
        .find(User::fields().age().gte(18))
        .sort(User::fields().age().desc())
        .to_vec()?;
    println!(
        "adults, oldest first: {:?}",
        adults.iter().map(|u| (&u.name, u.age)).collect::<Vec<_>>()
    );

    let basket = [("SKU-0001", 2), ("SKU-0002", 1)];
    match place_order(&db, 1, &basket) {
        Ok(id) => println!(
            "order {basket:?}: committed (generated id: {} hex digits)",
            id.len()
        ),
        Err(e) => println!("order {basket:?}: rolled back: {e}"),
    }
    report(&db)?;

    match place_order(&db, 1, &basket) {
        Ok(_) => println!("order {basket:?}: committed"),
        Err(e) => println!("order {basket:?}: rolled back: {e}"),
    }
    report(&db)?;

    let placed = orders.find_one(Order::fields().user_id().eq(1))?;
    if let Some(o) = placed {
        println!(
            "user 1's order: {} line(s), total {:.2}, status {:?}",
            o.items.len(),
            o.total,
            o.status
        );
    }
    Ok(())
}
