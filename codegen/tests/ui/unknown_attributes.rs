extern crate cstore as collection_store;
use collection_store::Document;
use serde::{Deserialize, Serialize};

#[derive(Document, Serialize, Deserialize)]
#[document(colection = "users")]
#[document(index(fields(email), uniq))]
struct User {
    #[document(id)]
    id: u64,
    #[document(primary)]
    email: String,
    #[document(index(descending))]
    age: u32,
}

fn main() {}
