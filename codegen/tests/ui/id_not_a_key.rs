extern crate cstore as collection_store;
use collection_store::Document;
use serde::{Deserialize, Serialize};

#[derive(Document, Serialize, Deserialize)]
struct Measurement {
    #[document(id)]
    at: f64,
    value: f64,
}

#[derive(Document, Serialize, Deserialize)]
struct Tagged {
    #[document(id)]
    tags: Vec<String>,
}

fn main() {}
