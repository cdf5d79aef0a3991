extern crate cstore as collection_store;
use collection_store::Document;
use serde::{Deserialize, Serialize};

#[derive(Document, Serialize, Deserialize)]
struct Post {
    #[document(id)]
    id: u64,
    #[document(version)]
    version: String,
}

fn main() {}
