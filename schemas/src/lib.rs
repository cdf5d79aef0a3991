//! The shared domain model (User, Product, Order, Inventory) used by examples, tests and benchmarks; the typed structs arrive with `#[derive(Document)]`.
