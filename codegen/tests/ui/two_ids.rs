extern crate cstore as collection_store;
use collection_store::Document;
use serde::{Deserialize, Serialize};

#[derive(Document, Serialize, Deserialize)]
struct User {
    #[document(id)]
    id: u64,
    #[document(id)]
    email: String,
}

fn main() {}
