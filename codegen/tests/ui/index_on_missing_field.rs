extern crate cstore as collection_store;
use collection_store::{Document, Embedded};
use serde::{Deserialize, Serialize};

#[derive(Embedded, Serialize, Deserialize)]
struct Address {
    city: String,
}

#[derive(Document, Serialize, Deserialize)]
#[document(index(fields(emial, age desc)))]
struct User {
    #[document(id)]
    id: u64,
    email: String,
    age: u32,
    address: Address,
}

#[derive(Document, Serialize, Deserialize)]
#[document(index(fields(address.cty)))]
struct Customer {
    #[document(id)]
    id: u64,
    address: Address,
}

fn main() {}
