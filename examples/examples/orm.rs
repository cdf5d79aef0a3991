//! A small shop on the ORM layer (`collection-store-orm`): entities with
//! references, a repository with a custom method, and one unit of work that
//! changes three collections (customers, products, orders) in one flush.
//!
//! Run it twice: `cargo run --release --example orm`. The first run places
//! order A-1001 (committed). The second run places it again: the order number
//! is unique, so the flush fails and nothing of it is written — the stock and
//! the customer's order count stay as they were. Delete `./data-orm` to start over.

use collection_store::{Database, Document, SchemaSync};
use collection_store_orm::{EntityManager, Managed, Orm, OrmError, Query, Ref, Repository};
use serde::{Deserialize, Serialize};

#[derive(Document, Serialize, Deserialize, Debug, Clone)]
#[document(collection = "customers")]
#[document(has_many(orders, ShopOrder.customer, cascade(remove)))]
struct Customer {
    #[document(id)]
    id: u64,
    #[document(index(unique))]
    email: String,
    orders_placed: u32,
}

#[derive(Document, Serialize, Deserialize, Debug, Clone)]
#[document(collection = "catalog")]
struct Product {
    #[document(id)]
    #[serde(rename = "_id")]
    sku: String,
    name: String,
    price: f64,
    stock: u32,
    /// Optimistic lock: two requests selling the last item cannot both win.
    #[document(version)]
    version: u64,
}

#[derive(Document, Serialize, Deserialize, Debug, Clone)]
#[document(collection = "shop_orders")]
struct ShopOrder {
    #[document(id)]
    id: Option<String>,
    #[document(index(unique))]
    number: String,
    #[document(reference(cascade(persist)))]
    customer: Ref<Customer>,
    #[document(reference)]
    products: Vec<Ref<Product>>,
    total: f64,
}

/// A custom repository method: an extension trait on the repository of one type.
trait ProductRepository {
    /// Products with at least `n` items in stock, cheapest first.
    async fn with_stock(&self, n: u32) -> collection_store_orm::Result<Vec<Managed<Product>>>;
}

impl ProductRepository for Repository<'_, Product> {
    async fn with_stock(&self, n: u32) -> collection_store_orm::Result<Vec<Managed<Product>>> {
        let f = Product::fields();
        self.find(Query::from(f.stock().gte(n)).sort(f.price().asc()))
            .await
    }
}

/// One request: customer 1 buys one of each product in stock, as order `number`.
async fn place_order(em: &EntityManager, number: &str) -> collection_store_orm::Result<f64> {
    let customer = em
        .find_by_id::<Customer>(&1)
        .await?
        .expect("customer 1 exists");
    let products = em.repository::<Product>().with_stock(1).await?;
    let mut total = 0.0;
    for p in &products {
        let mut p = p.write();
        p.stock -= 1;
        total += p.price;
    }
    customer.write().orders_placed += 1;
    em.persist(ShopOrder {
        id: None,
        number: number.into(),
        customer: Ref::to(&customer)?,
        products: products.iter().map(Ref::to).collect::<Result<_, _>>()?,
        total,
    })?;
    // One transaction: an insert into shop_orders, a version-checked `$set` of
    // `stock` per product in catalog, a `$set` of `orders_placed` in customers.
    let report = em.flush().await?;
    println!(
        "  flushed: {} inserted, {} updated in one transaction",
        report.inserted, report.updated
    );
    Ok(total)
}

async fn show(em: &EntityManager) -> collection_store_orm::Result<()> {
    let c = em.find_by_id::<Customer>(&1).await?.expect("customer 1");
    let orders = em.find::<ShopOrder>(Query::all()).await?;
    let products = em.populate(&orders, ShopOrder::fields().products()).await?; // one query
    println!(
        "  customer {} has placed {} order(s); {} order(s) stored referencing {} product(s)",
        c.read().email,
        c.read().orders_placed,
        orders.len(),
        products.len()
    );
    for p in em.repository::<Product>().find_all().await? {
        let p = p.read();
        println!(
            "  {} {:<8} stock {} (version {})",
            p.sku, p.name, p.stock, p.version
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let orm = Orm::embedded(Database::open("./data-orm")?)
        .entity::<Customer>()
        .entity::<Product>()
        .entity::<ShopOrder>()
        .init(SchemaSync::KeepUnknown)
        .await?;

    let em = orm.em();
    if em.find_by_id::<Customer>(&1).await?.is_none() {
        println!("first run: creating the catalog");
        em.persist(Customer {
            id: 1,
            email: "ann@example.com".into(),
            orders_placed: 0,
        })?;
        for (sku, name, price) in [("P-1", "kettle", 30.0), ("P-2", "teapot", 18.5)] {
            em.persist(Product {
                sku: sku.into(),
                name: name.into(),
                price,
                stock: 5,
                version: 0,
            })?;
        }
        em.flush().await?;
    }

    println!("placing order A-1001:");
    match place_order(&orm.em(), "A-1001").await {
        Ok(total) => println!("  committed, total {total:.2}"),
        Err(OrmError::Statement { source, .. }) => {
            println!("  rolled back, nothing written: {source}")
        }
        Err(e) => return Err(e.into()),
    }
    show(&orm.em()).await?;
    Ok(())
}
