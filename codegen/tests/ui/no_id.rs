extern crate cstore as collection_store;
use collection_store::Document;
use serde::{Deserialize, Serialize};

#[derive(Document, Serialize, Deserialize)]
#[document(collection = "users")]
struct User {
    id: u64,
    email: String,
}

fn main() {}
