//! The shared domain model used by examples, tests and benchmarks: [`User`],
//! [`Product`], [`Order`] (with embedded [`LineItem`]s) and [`Inventory`], each
//! a `#[derive(Document)]` struct.
//!
//! Conventions:
//! * Timestamps are `i64` milliseconds since the Unix epoch (fields ending in
//!   `_at`): they compare and index as numbers. [`now_millis`] gives the current one.
//! * Money is `f64` in the currency unit (the examples are not an accounting system).
//! * Enums are stored the serde way: unit variants as strings
//!   (`"pending"`), data-carrying variants as `{"card": {"last4": "4242"}}`.
//!
//! ```
//! use collection_store_schemas::{User, Order};
//! assert_eq!(User::fields().address().city().path(), "address.city");
//! assert_eq!(Order::fields().items().sku().path(), "items.sku");
//! ```

#![warn(missing_docs)]

use collection_store::{Document, Embedded};
use serde::{Deserialize, Serialize};

/// A customer (collection `users`, primary key field `id`).
#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "users")]
#[document(index(fields(email, age), name = "email_age"))]
#[document(index(fields(address.city), partial = r#"{"active": true}"#))]
#[document(index(fields(tags)))]
pub struct User {
    /// Primary key.
    #[document(id)]
    pub id: u64,
    /// Login; unique.
    #[document(index(unique))]
    pub email: String,
    /// Display name.
    pub name: String,
    /// Age in years.
    #[document(index(desc))]
    pub age: u32,
    /// Free-form labels (a multikey index).
    pub tags: Vec<String>,
    /// Postal address.
    pub address: Address,
    /// False once the account is closed.
    pub active: bool,
    /// Optional nickname.
    pub nickname: Option<String>,
    /// Ids of the user's orders, oldest first.
    #[serde(default)]
    pub orders: Vec<String>,
    /// Account balance.
    pub balance: f64,
    /// Sign-up time (milliseconds since the Unix epoch).
    pub created_at: i64,
}

/// A postal address, embedded in [`User`].
#[derive(Embedded, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// ISO 3166 country code.
    pub country: String,
    /// Postal code, where there is one.
    pub zip: Option<String>,
}

/// What a product is.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Books.
    Books,
    /// Electronics.
    Electronics,
    /// Garden supplies.
    Garden,
    /// Toys.
    Toys,
}

/// Size and weight of a packaged product.
#[derive(Embedded, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Dimensions {
    /// Width in millimetres.
    pub width_mm: u32,
    /// Height in millimetres.
    pub height_mm: u32,
    /// Weight in grams.
    pub weight_g: u32,
}

/// A catalog entry (collection `products`, keyed by SKU in `_id`).
#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "products")]
#[document(index(fields(category, price desc)))]
pub struct Product {
    /// Stock-keeping unit; the primary key, stored as `_id`.
    #[document(id)]
    #[serde(rename = "_id")]
    pub sku: String,
    /// Name.
    pub name: String,
    /// Unit price.
    pub price: f64,
    /// Category.
    pub category: Category,
    /// Labels.
    pub tags: Vec<String>,
    /// Packaging, when known.
    pub dimensions: Option<Dimensions>,
    /// Average review score (0 to 5), when reviewed.
    pub rating: Option<f32>,
    /// When the product was listed (milliseconds since the Unix epoch).
    pub created_at: i64,
}

/// Where an order stands.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, not paid.
    Pending,
    /// Paid.
    Paid,
    /// Shipped.
    Shipped,
    /// Cancelled.
    Cancelled,
}

/// How an order is paid (a data-carrying enum).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Payment {
    /// By card.
    Card {
        /// The card's last four digits.
        last4: String,
    },
    /// On invoice.
    Invoice {
        /// Days until due.
        due_days: u16,
    },
    /// Cash on delivery.
    Cash,
}

/// One line of an [`Order`].
#[derive(Embedded, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LineItem {
    /// The product's SKU.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Price per unit when ordered.
    pub unit_price: f64,
}

/// An order (collection `orders`; its `_id` is generated on insert).
#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "orders")]
#[document(index(fields(user_id, placed_at desc)))]
#[document(index(fields(items.sku)))]
pub struct Order {
    /// Primary key, stored as `_id`; `None` before insertion (a 24-digit hex
    /// string is generated).
    #[document(id)]
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The ordering user's id.
    pub user_id: u64,
    /// Lines.
    pub items: Vec<LineItem>,
    /// Status.
    #[document(index)]
    pub status: OrderStatus,
    /// Payment method.
    pub payment: Payment,
    /// Sum of the lines.
    pub total: f64,
    /// A note from the customer.
    pub note: Option<String>,
    /// When the order was placed (milliseconds since the Unix epoch).
    pub placed_at: i64,
}

impl Order {
    /// The sum of quantity × unit price over the lines.
    pub fn computed_total(&self) -> f64 {
        self.items
            .iter()
            .map(|l| f64::from(l.quantity) * l.unit_price)
            .sum()
    }
}

/// Stock of one product in one warehouse (collection `inventory`, keyed by SKU).
#[derive(Document, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[document(collection = "inventory")]
pub struct Inventory {
    /// The product's SKU; the primary key, stored as `sku`.
    #[document(id)]
    pub sku: String,
    /// Units available.
    #[document(index)]
    pub quantity: u32,
    /// Units reserved by unpaid orders.
    pub reserved: u32,
    /// Below this many units, reorder (may be negative to disable).
    pub reorder_level: i32,
    /// Warehouse code.
    pub warehouse: String,
    /// Last change (milliseconds since the Unix epoch).
    pub updated_at: i64,
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Small deterministic data sets for examples, tests and benchmarks.
pub mod sample {
    use super::*;

    /// A fixed timestamp (2024-01-01T00:00:00Z) so samples are reproducible.
    pub const EPOCH_2024: i64 = 1_704_067_200_000;

    /// User number `n` (ids from 1): varied ages, cities, tags and options.
    pub fn user(n: u64) -> User {
        const CITIES: [(&str, &str); 4] = [
            ("Oslo", "NO"),
            ("Lima", "PE"),
            ("Rome", "IT"),
            ("Kyiv", "UA"),
        ];
        const TAGS: [&str; 5] = ["rust", "db", "go", "ml", "ops"];
        let (city, country) = CITIES[(n % 4) as usize];
        User {
            id: n,
            email: format!("user{n}@example.com"),
            name: format!("User {n}"),
            age: 16 + (n * 7 % 60) as u32,
            tags: (0..n % 3)
                .map(|i| TAGS[((n + i) % 5) as usize].to_owned())
                .collect(),
            address: Address {
                street: format!("{} Main St", n * 3),
                city: city.to_owned(),
                country: country.to_owned(),
                zip: (n.is_multiple_of(2)).then(|| format!("{:05}", n * 11)),
            },
            active: !n.is_multiple_of(5),
            nickname: (n.is_multiple_of(3)).then(|| format!("u{n}")),
            orders: Vec::new(),
            balance: n as f64 * 12.5,
            created_at: EPOCH_2024 + n as i64 * 86_400_000,
        }
    }

    /// Users 1..=n.
    pub fn users(n: u64) -> Vec<User> {
        (1..=n).map(user).collect()
    }

    /// Product number `n`.
    pub fn product(n: u64) -> Product {
        const CATS: [Category; 4] = [
            Category::Books,
            Category::Electronics,
            Category::Garden,
            Category::Toys,
        ];
        Product {
            sku: format!("SKU-{n:04}"),
            name: format!("Product {n}"),
            price: 5.0 + (n % 20) as f64 * 2.25,
            category: CATS[(n % 4) as usize],
            tags: if n.is_multiple_of(2) {
                vec!["sale".into()]
            } else {
                Vec::new()
            },
            dimensions: (!n.is_multiple_of(3)).then(|| Dimensions {
                width_mm: 100 + n as u32,
                height_mm: 50,
                weight_g: 250 * (1 + n as u32 % 4),
            }),
            rating: (!n.is_multiple_of(4)).then_some(2.5 + (n % 5) as f32 * 0.5),
            created_at: EPOCH_2024 + n as i64 * 3_600_000,
        }
    }

    /// Products 1..=n.
    pub fn products(n: u64) -> Vec<Product> {
        (1..=n).map(product).collect()
    }

    /// Stock for product `n`.
    pub fn inventory(n: u64, quantity: u32) -> Inventory {
        Inventory {
            sku: format!("SKU-{n:04}"),
            quantity,
            reserved: 0,
            reorder_level: if n.is_multiple_of(7) { -1 } else { 5 },
            warehouse: if n.is_multiple_of(2) {
                "OSL-1".into()
            } else {
                "LIM-2".into()
            },
            updated_at: EPOCH_2024,
        }
    }

    /// An order by `user_id` of `quantity` units of each listed product (id not yet assigned).
    pub fn order(user_id: u64, lines: &[(u64, u32)], placed_at: i64) -> Order {
        let items: Vec<LineItem> = lines
            .iter()
            .map(|&(n, quantity)| LineItem {
                sku: format!("SKU-{n:04}"),
                quantity,
                unit_price: product(n).price,
            })
            .collect();
        let mut o = Order {
            id: None,
            user_id,
            items,
            status: OrderStatus::Pending,
            payment: match user_id % 3 {
                0 => Payment::Card {
                    last4: format!("{:04}", user_id % 10_000),
                },
                1 => Payment::Invoice { due_days: 30 },
                _ => Payment::Cash,
            },
            total: 0.0,
            note: (user_id.is_multiple_of(2)).then(|| "leave at the door".to_owned()),
            placed_at,
        };
        o.total = o.computed_total();
        o
    }
}
